package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/cmdlet"
)

// The admin socket lets `postern --data DIR <Cmdlet> ...` run against the
// server that owns DIR, so that a change takes effect in the running server
// at once, through the same admin service. It is a Unix socket inside the
// data directory (mode 0600, directory 0700): only the server's own user can
// reach it. One JSON request and one JSON response per connection.

// AdminRequest is a cmdlet invocation: Args (one cmdlet, from argv) or
// Script (shell source).
type AdminRequest struct {
	Args   []string `json:"args,omitempty"`
	Script string   `json:"script,omitempty"`
	// Dir is the client's working directory, for relative paths in
	// Get-Content and Export-Csv.
	Dir string `json:"dir,omitempty"`
}

// AdminResponse carries what the cmdlets printed and the error, if any.
type AdminResponse struct {
	Output string `json:"output"`
	Error  string `json:"error,omitempty"`
}

func (s *Server) listenAdminSocket() error {
	path := SocketPath(s.cfg.Data)
	// A socket left by a server that was killed would block the bind.
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return errors.New("another server is already running on " + s.cfg.Data)
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	s.adminSock = l
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
	var req AdminRequest
	if err := json.NewDecoder(io.LimitReader(c, 1<<20)).Decode(&req); err != nil {
		return
	}
	resp := Execute(context.Background(), s.Admin, req)
	json.NewEncoder(c).Encode(resp)
}

// Execute runs a request against an admin service.
func Execute(ctx context.Context, svc *admin.Service, req AdminRequest) AdminResponse {
	var out bytes.Buffer
	runner := &cmdlet.Runner{Registry: admin.Cmdlets(svc), Out: &out, Dir: req.Dir}
	var err error
	if req.Script != "" {
		var script *cmdlet.Script
		if script, err = cmdlet.Parse(req.Script); err == nil {
			err = runner.Run(ctx, script)
		}
	} else {
		err = runner.RunArgs(ctx, req.Args)
	}
	resp := AdminResponse{Output: out.String()}
	if err != nil {
		resp.Error = err.Error()
	}
	return resp
}

// ErrNoServer means no server is running on the data directory.
var ErrNoServer = errors.New("no server running")

// SendAdmin sends a request to the server running on dataDir; ErrNoServer
// when none is.
func SendAdmin(dataDir string, req AdminRequest) (AdminResponse, error) {
	var resp AdminResponse
	c, err := net.DialTimeout("unix", SocketPath(dataDir), 2*time.Second)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return resp, ErrNoServer
		}
		return resp, err
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return resp, err
	}
	err = json.NewDecoder(c).Decode(&resp)
	return resp, err
}
