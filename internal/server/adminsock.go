package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/cmdlet"
)

// The admin socket lets `postern --data DIR <Cmdlet> ...` run against the
// server that owns DIR, so that a change takes effect in the running server
// at once, through the same admin service. It is a Unix socket inside the
// data directory, created with mode 0600 (never wider, not even between
// bind and chmod: see listenPrivateUnix): only the server's own user can
// reach it. A connection carries JSON requests, each answered by one JSON
// response, and is one shell session: variables assigned by one request are
// there for the next (the interactive shell sends a request per line).

// AdminRequest is a cmdlet invocation: Args (one cmdlet, from argv) or
// Script (shell source).
type AdminRequest struct {
	Args   []string `json:"args,omitempty"`
	Script string   `json:"script,omitempty"`
	// Dir is the client's working directory, for relative paths in
	// Get-Content and Export-Csv.
	Dir string `json:"dir,omitempty"`
	// Organization names the organization to act on (--organization);
	// empty: the first.
	Organization string `json:"organization,omitempty"`
	// AdminLink asks for a one-time sign-in link to the web admin center
	// as the server administrator (`postern admin-link`): only the data
	// directory's owner can reach this socket, so the link is theirs.
	AdminLink bool `json:"admin_link,omitempty"`
}

// AdminResponse carries what the cmdlets printed and the error, if any.
type AdminResponse struct {
	Output string `json:"output"`
	Error  string `json:"error,omitempty"`
}

// listenAdminSocket creates the admin socket with its final permissions
// (listenPrivateUnix). The server holds the data directory's lock, so a
// socket already at the path is one a killed server left: the rename
// replaces it.
func (s *Server) listenAdminSocket() error {
	path := SocketPath(s.cfg.Data)
	l, fi, err := listenPrivateUnix(path)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	s.adminSock, s.adminSockFile = l, fi
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serveAdmin(c)
		}
	}()
	return nil
}

func (s *Server) serveAdmin(c net.Conn) {
	defer c.Close()
	dec := json.NewDecoder(io.LimitReader(c, 64<<20))
	enc := json.NewEncoder(c)
	session := NewSession(s.Admin)
	for {
		var req AdminRequest
		if err := dec.Decode(&req); err != nil {
			return
		}
		resp := AdminResponse{}
		if req.AdminLink {
			resp = s.adminLink()
		} else {
			resp = session.Execute(context.Background(), req)
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// adminLink answers `postern admin-link`: a one-time URL that signs the
// browser in to the web admin center as the server's administrator.
func (s *Server) adminLink() AdminResponse {
	s.lnMu.Lock()
	web, base := s.web, s.issuerBase
	s.lnMu.Unlock()
	if web == nil {
		return AdminResponse{Error: "the admin HTTPS listener is off (--admin ADDR turns it on), so there is no admin center to sign in to"}
	}
	return AdminResponse{Output: base + web.NewAdminLink() + "\n"}
}

// Session runs an admin's requests, keeping the shell's variables from
// one request to the next.
type Session struct {
	svc    *admin.Service
	org    string
	runner *cmdlet.Runner
	out    bytes.Buffer
}

// NewSession starts a session on the admin service.
func NewSession(svc *admin.Service) *Session {
	s := &Session{svc: svc}
	s.runner = &cmdlet.Runner{Registry: admin.Cmdlets(svc), Out: &s.out}
	return s
}

// Execute runs a request.
func (s *Session) Execute(ctx context.Context, req AdminRequest) AdminResponse {
	if req.Organization != s.org {
		svc := s.svc
		if req.Organization != "" {
			var err error
			if svc, err = s.svc.ForOrganization(req.Organization); err != nil {
				return AdminResponse{Error: "--organization: " + err.Error()}
			}
		}
		s.runner.Registry, s.org = admin.Cmdlets(svc), req.Organization
	}
	s.out.Reset()
	s.runner.Dir = req.Dir
	var err error
	if req.Script != "" {
		var script *cmdlet.Script
		if script, err = cmdlet.Parse(req.Script); err == nil {
			err = s.runner.Run(ctx, script)
		}
	} else {
		err = s.runner.RunArgs(ctx, req.Args)
	}
	resp := AdminResponse{Output: s.out.String()}
	if err != nil {
		resp.Error = err.Error()
	}
	return resp
}

// Execute runs one request against an admin service.
func Execute(ctx context.Context, svc *admin.Service, req AdminRequest) AdminResponse {
	return NewSession(svc).Execute(ctx, req)
}

// ErrNoServer means no server is running on the data directory.
var ErrNoServer = errors.New("no server running")

// SendAdmin sends a request to the server running on dataDir; ErrNoServer
// when none is.
func SendAdmin(dataDir string, req AdminRequest) (AdminResponse, error) {
	c, err := DialAdmin(dataDir)
	if err != nil {
		return AdminResponse{}, err
	}
	defer c.Close()
	return c.Send(req)
}

// AdminConn is a session with the server running on a data directory.
type AdminConn struct {
	conn net.Conn
	enc  *json.Encoder
	dec  *json.Decoder
}

// DialAdmin opens a session with the server running on dataDir;
// ErrNoServer when none is.
func DialAdmin(dataDir string) (*AdminConn, error) {
	c, err := net.DialTimeout("unix", SocketPath(dataDir), 2*time.Second)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, ErrNoServer
		}
		return nil, err
	}
	return &AdminConn{conn: c, enc: json.NewEncoder(c), dec: json.NewDecoder(c)}, nil
}

// Send runs a request in the session.
func (c *AdminConn) Send(req AdminRequest) (AdminResponse, error) {
	var resp AdminResponse
	if err := c.enc.Encode(req); err != nil {
		return resp, err
	}
	err := c.dec.Decode(&resp)
	return resp, err
}

// Close ends the session.
func (c *AdminConn) Close() error { return c.conn.Close() }
