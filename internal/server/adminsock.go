package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
//
// Files that a script reads or writes (Import-Csv, Export-Csv, Out-File,
// Get-Content...) are the client's: while a request runs, the server sends
// the client a response carrying a FileRequest, the client does the file
// work with its own rights in its own directory and answers with a request
// carrying the FileReply, and the final response follows. The server,
// which may run under systemd with ProtectHome and PrivateTmp, never opens
// the admin's files itself. A client that does not announce FileCallbacks
// (an older postern) gets the server's own file access, as before: the
// socket admits only the server's user (and root), whose rights those are.

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
	// FileCallbacks announces that the client answers FileRequests.
	FileCallbacks bool `json:"file_callbacks,omitempty"`
	// FileReply answers the server's FileRequest; nothing else is set.
	FileReply *FileReply `json:"file_reply,omitempty"`
}

// AdminResponse carries what the cmdlets printed and the error, if any;
// or, before the final response, a FileRequest for the client.
type AdminResponse struct {
	Output string `json:"output"`
	// Warnings is the warning stream ("WARNING: ..." lines), which the
	// CLI writes to standard error.
	Warnings string       `json:"warnings,omitempty"`
	Error    string       `json:"error,omitempty"`
	File     *FileRequest `json:"file,omitempty"`
}

// FileRequest asks the client to read or write a file (an absolute path,
// resolved against the client's directory).
type FileRequest struct {
	Op     string `json:"op"` // "read" or "write"
	Path   string `json:"path"`
	Data   []byte `json:"data,omitempty"`
	Append bool   `json:"append,omitempty"`
}

// FileReply is the client's answer: the data read, or what went wrong.
type FileReply struct {
	Data     []byte `json:"data,omitempty"`
	Error    string `json:"error,omitempty"`
	NotExist bool   `json:"not_exist,omitempty"`
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
	// A reader goroutine hands the client's messages over, so that a
	// script whose client went away (Ctrl-C) is cancelled at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs := make(chan AdminRequest)
	go func() {
		defer cancel()
		defer close(msgs)
		for {
			var req AdminRequest
			if err := dec.Decode(&req); err != nil {
				return
			}
			select {
			case msgs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	session := NewSession(s.Admin)
	for req := range msgs {
		if req.FileReply != nil {
			return // a reply nobody asked for: the client is confused
		}
		if req.AdminLink {
			if err := enc.Encode(s.adminLink()); err != nil {
				return
			}
			continue
		}
		if req.FileCallbacks {
			session.Files = &clientFiles{enc: enc, msgs: msgs, ctx: ctx}
		} else {
			session.Files = nil
		}
		if err := enc.Encode(session.Execute(ctx, req)); err != nil {
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	link, err := web.NewAdminLink(ctx)
	if err != nil {
		return AdminResponse{Error: err.Error()}
	}
	return AdminResponse{Output: base + link + "\n"}
}

// clientFiles is the file system of the client on the other end of an
// admin socket connection: each call is a FileRequest answered by a
// FileReply.
type clientFiles struct {
	enc  *json.Encoder
	msgs <-chan AdminRequest
	ctx  context.Context
}

func (f *clientFiles) ask(req FileRequest) (*FileReply, error) {
	if err := f.enc.Encode(AdminResponse{File: &req}); err != nil {
		return nil, err
	}
	select {
	case m, ok := <-f.msgs:
		if !ok || m.FileReply == nil {
			return nil, errors.New("the client did not answer the file request")
		}
		return m.FileReply, nil
	case <-f.ctx.Done():
		return nil, f.ctx.Err()
	}
}

func (f *clientFiles) ReadFile(path string) ([]byte, error) {
	r, err := f.ask(FileRequest{Op: "read", Path: path})
	switch {
	case err != nil:
		return nil, err
	case r.NotExist:
		return nil, fs.ErrNotExist
	case r.Error != "":
		return nil, errors.New(r.Error)
	case len(r.Data) > cmdlet.MaxFileSize:
		return nil, cmdlet.ErrFileTooLarge
	}
	return r.Data, nil
}

func (f *clientFiles) WriteFile(path string, data []byte, append bool) error {
	r, err := f.ask(FileRequest{Op: "write", Path: path, Data: data, Append: append})
	switch {
	case err != nil:
		return err
	case r.NotExist:
		return fs.ErrNotExist
	case r.Error != "":
		return errors.New(r.Error)
	}
	return nil
}

// answerFile does a FileRequest on the client's side, with fsys (the
// client's own files).
func answerFile(fsys cmdlet.FileSystem, req *FileRequest) *FileReply {
	var err error
	var data []byte
	switch req.Op {
	case "read":
		data, err = fsys.ReadFile(req.Path)
	case "write":
		err = fsys.WriteFile(req.Path, req.Data, req.Append)
	default:
		err = fmt.Errorf("unknown file operation %q", req.Op)
	}
	reply := &FileReply{Data: data}
	if err != nil {
		reply.Data, reply.Error, reply.NotExist = nil, err.Error(), errors.Is(err, fs.ErrNotExist)
	}
	return reply
}

// Session runs an admin's requests, keeping the shell's variables from
// one request to the next.
type Session struct {
	svc    *admin.Service
	org    string
	runner *cmdlet.Runner
	out    bytes.Buffer
	warn   bytes.Buffer
	// Files is where the session's scripts read and write files; nil:
	// this process's own (the CLI running on the data directory).
	Files cmdlet.FileSystem
}

// NewSession starts a session on the admin service.
func NewSession(svc *admin.Service) *Session {
	s := &Session{svc: svc}
	s.runner = &cmdlet.Runner{Registry: admin.Cmdlets(svc), Out: &s.out, Warnings: &s.warn}
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
	s.warn.Reset()
	s.runner.Dir, s.runner.Files = req.Dir, s.Files
	var err error
	if req.Script != "" {
		var script *cmdlet.Script
		if script, err = cmdlet.Parse(req.Script); err == nil {
			err = s.runner.Run(ctx, script)
		}
	} else {
		err = s.runner.RunArgs(ctx, req.Args)
	}
	resp := AdminResponse{Output: s.out.String(), Warnings: s.warn.String()}
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
	// Files answers the server's file requests: this (the client's)
	// process's file system.
	Files cmdlet.FileSystem
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
	return &AdminConn{conn: c, enc: json.NewEncoder(c), dec: json.NewDecoder(c), Files: cmdlet.LocalFiles{}}, nil
}

// Send runs a request in the session, doing the file work the server asks
// for on the way.
func (c *AdminConn) Send(req AdminRequest) (AdminResponse, error) {
	req.FileCallbacks = c.Files != nil
	if err := c.enc.Encode(req); err != nil {
		return AdminResponse{}, err
	}
	for {
		var resp AdminResponse
		if err := c.dec.Decode(&resp); err != nil {
			return resp, err
		}
		if resp.File == nil {
			return resp, nil
		}
		if c.Files == nil {
			return resp, errors.New("the server asked for a file, which this session does not serve")
		}
		if err := c.enc.Encode(AdminRequest{FileReply: answerFile(c.Files, resp.File)}); err != nil {
			return resp, err
		}
	}
}

// Close ends the session.
func (c *AdminConn) Close() error { return c.conn.Close() }
