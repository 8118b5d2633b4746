// Package lineserver is the connection lifecycle that Postern's
// hand-written line-protocol servers (the SMTP engine, smtpserver, and the
// POP3 server, pop3) share: an accept loop that rides out running out of
// file descriptors, the set of open connections, a graceful shutdown that
// ends idle connections at once and lets busy ones finish until its
// context ends, and a connection whose reads flush the pending replies
// first and hold a command line to one deadline for the whole line.
//
// What differs between the protocols stays in their packages: admission,
// the modes a connection passes through (DATA, a RETR), the timeouts, and
// every reply text. This package writes nothing to a client.
package lineserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// ErrServerClosed is what Accept returns once Shutdown has begun.
var ErrServerClosed = errors.New("lineserver: server closed")

// Server is the listeners and open connections of one protocol server. The
// zero value is ready to use; a Server must not be copied after first use.
type Server struct {
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	closing   bool
	wg        sync.WaitGroup
}

// AddListener registers l, so that Shutdown closes it. It reports false,
// and registers nothing, once Shutdown has begun.
func (s *Server) AddListener(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[l] = struct{}{}
	return true
}

// RemoveListener forgets l (its Serve has returned); Shutdown will not
// close it.
func (s *Server) RemoveListener(l net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
}

// Accept waits for the next connection on l. A failure that a later accept
// may not have (descriptors or memory running out, a connection reset
// before it was accepted) is logged as warning, with the error and the
// wait, and waited out with a back-off of 5 ms doubling to 1 s, so that
// the loop neither spins nor stops: connections that end free descriptors
// again. Accept returns ErrServerClosed once Shutdown has begun, and any
// other failure as l returned it.
func (s *Server) Accept(l net.Listener, log *slog.Logger, warning string) (net.Conn, error) {
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err == nil {
			return nc, nil
		}
		if s.isClosing() {
			return nil, ErrServerClosed
		}
		if !temporaryAcceptError(err) {
			return nil, err
		}
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		log.Warn(warning, "err", err, "in", backoff)
		time.Sleep(backoff)
	}
}

// temporaryAcceptError reports an accept failure that a later accept may
// not have: descriptors or memory running out, an aborted handshake.
func temporaryAcceptError(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Go serves c on a goroutine of its own: serve runs with c counted among
// the open connections, which Shutdown waits for. It reports false, and
// runs nothing, once Shutdown has begun; the caller then closes the
// connection.
func (s *Server) Go(c *Conn, serve func()) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*Conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer s.untrack(c)
		serve()
	}()
	return true
}

func (s *Server) untrack(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown closes the listeners, interrupts every connection that waits
// for a command (InterruptIfIdle: its read ends now, and the protocol
// says goodbye) and lets the others finish what they are doing until ctx
// ends; then it aborts whatever is still open. It returns once every
// connection's serve has returned, so its duration is bounded by ctx plus
// the time an aborted connection takes to unwind: nil when all ended in
// time, ctx's error otherwise.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.InterruptIfIdle()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Abort()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}
