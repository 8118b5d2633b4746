// Package testdns is a DNS server on loopback for tests: it serves the TXT
// records it is given and answers NXDOMAIN for every other name, so that
// code under test resolves through the real net.Resolver path and no query
// leaves the machine.
package testdns

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Server is a running test DNS server.
type Server struct {
	Addr string // host:port of the UDP socket
	srv  *dns.Server
	pc   net.PacketConn

	mu  sync.Mutex
	txt map[string][]string // by lower-case FQDN
}

// Start serves txt (name → records; names with or without the final dot).
func Start(txt map[string]string) (*Server, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: pc.LocalAddr().String(), pc: pc, txt: map[string][]string{}}
	for name, v := range txt {
		s.Set(name, v)
	}
	s.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)}
	go s.srv.ActivateAndServe()
	return s, nil
}

// Set adds a TXT record; long values are split into 255-byte strings.
func (s *Server) Set(name, value string) {
	var parts []string
	for len(value) > 255 {
		parts, value = append(parts, value[:255]), value[255:]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txt[fqdn(name)] = append(parts, value)
}

func fqdn(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

func (s *Server) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) == 1 {
		q := r.Question[0]
		s.mu.Lock()
		v, ok := s.txt[fqdn(q.Name)]
		s.mu.Unlock()
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeTXT:
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: v})
		}
	}
	w.WriteMsg(m)
}

// Resolver returns a resolver that asks only this server.
func (s *Server) Resolver() *net.Resolver { return ResolverAt(s.Addr) }

// ResolverAt returns a resolver that asks only addr.
func ResolverAt(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		d := net.Dialer{Timeout: 2 * time.Second}
		return d.DialContext(ctx, network, addr)
	}}
}

// Close stops the server and closes its socket: queries to Addr are then
// refused.
func (s *Server) Close() {
	s.srv.Shutdown()
	s.pc.Close()
}
