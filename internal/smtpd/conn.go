package smtpd

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sync/atomic"

	"postern.dev/postern/internal/protolog"
)

// trackingListener wraps each accepted connection in a trackedConn, which
// carries the per-connection state that must outlive go-smtp's sessions
// (go-smtp ends the session and starts a new one at STARTTLS).
type trackingListener struct{ net.Listener }

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		tc.ip = ap.Addr().Unmap()
	}
	return tc, nil
}

// trackedConn is one client connection.
type trackedConn struct {
	net.Conn
	ip           netip.Addr
	authFailures int
	// pending holds the transcript for inbound connectors' protocol
	// logging; nil when no logged connector could match the client.
	pending *protolog.Pending
	// closeAfterWrite makes the next reply the last: the connection closes
	// once it is written (for 421 replies that end the session).
	closeAfterWrite atomic.Bool
}

func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.closeAfterWrite.Load() {
		c.Conn.Close()
	}
	return n, err
}

// trackedOf finds the trackedConn under a session's connection, through the
// TLS layer when STARTTLS or implicit TLS wrapped it.
func trackedOf(c net.Conn) *trackedConn {
	for {
		switch x := c.(type) {
		case *trackedConn:
			return x
		case *tls.Conn:
			c = x.NetConn()
		default:
			return nil
		}
	}
}
