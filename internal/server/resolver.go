package server

import (
	"context"
	"net"
	"time"
)

// newResolver returns the resolver for mail authentication lookups: the
// system's, or one that sends every query to addr (UDP, falling back to
// TCP for truncated answers, as Go's resolver does).
func newResolver(addr string) *net.Resolver {
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		return d.DialContext(ctx, network, addr)
	}}
}
