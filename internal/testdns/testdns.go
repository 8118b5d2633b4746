// Package testdns is a DNS server on loopback for tests: it serves the TXT,
// MX, A and AAAA records it is given and answers NXDOMAIN for every other
// name, so that code under test resolves through the real net.Resolver path
// and no query leaves the machine.
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

	mu      sync.Mutex
	records map[string][]dns.RR // by lower-case FQDN
	fail    map[string]int      // names answered with this rcode (e.g. SERVFAIL)
	// failUnknownMX answers SERVFAIL, not NXDOMAIN, to MX queries for
	// names it does not know.
	failUnknownMX bool
}

// Start serves txt (name → records; names with or without the final dot).
func Start(txt map[string]string) (*Server, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: pc.LocalAddr().String(), pc: pc, records: map[string][]dns.RR{}, fail: map[string]int{}}
	for name, v := range txt {
		s.Set(name, v)
	}
	s.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)}
	go s.srv.ActivateAndServe()
	return s, nil
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: 60}
}

// Set replaces the TXT record of name; long values are split into
// 255-byte strings.
func (s *Server) Set(name, value string) {
	var parts []string
	for len(value) > 255 {
		parts, value = append(parts, value[:255]), value[255:]
	}
	s.replace(name, dns.TypeTXT, &dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: append(parts, value)})
}

// SetMX replaces the MX records of name: hosts in preference order, the
// first with preference 10, the next 20, and so on.
func (s *Server) SetMX(name string, hosts ...string) {
	var rrs []dns.RR
	for i, h := range hosts {
		rrs = append(rrs, &dns.MX{Hdr: hdr(name, dns.TypeMX), Preference: uint16(10 * (i + 1)), Mx: fqdn(h)})
	}
	s.replace(name, dns.TypeMX, rrs...)
}

// SetIP replaces the A and AAAA records of name.
func (s *Server) SetIP(name string, ips ...string) {
	var a, aaaa []dns.RR
	for _, v := range ips {
		ip := net.ParseIP(v)
		if ip4 := ip.To4(); ip4 != nil {
			a = append(a, &dns.A{Hdr: hdr(name, dns.TypeA), A: ip4})
		} else if ip != nil {
			aaaa = append(aaaa, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: ip})
		}
	}
	s.replace(name, dns.TypeA, a...)
	s.replace(name, dns.TypeAAAA, aaaa...)
}

// Fail makes every query for name answer SERVFAIL (a temporary error).
func (s *Server) Fail(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[fqdn(name)] = dns.RcodeServerFailure
}

// FailUnknownMX makes MX queries for unknown names fail temporarily
// (SERVFAIL) instead of answering NXDOMAIN: outbound mail to such domains
// then stays queued, deferred, rather than bouncing, while every other
// lookup still finds nothing.
func (s *Server) FailUnknownMX() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failUnknownMX = true
}

func (s *Server) replace(name string, t uint16, rrs ...dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := fqdn(name)
	kept := s.records[key][:0:0]
	for _, rr := range s.records[key] {
		if rr.Header().Rrtype != t {
			kept = append(kept, rr)
		}
	}
	s.records[key] = append(kept, rrs...)
}

func fqdn(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

func (s *Server) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	// Authoritative for every name it serves: an empty answer is then
	// NODATA, not a lame referral, to Go's resolver.
	m.Authoritative, m.RecursionAvailable = true, true
	if len(r.Question) == 1 {
		q := r.Question[0]
		s.mu.Lock()
		rrs, known := s.records[fqdn(q.Name)]
		rcode, failing := s.fail[fqdn(q.Name)]
		failMX := s.failUnknownMX
		s.mu.Unlock()
		switch {
		case failing:
			m.Rcode = rcode
		case !known && failMX && q.Qtype == dns.TypeMX:
			m.Rcode = dns.RcodeServerFailure
		case !known:
			m.Rcode = dns.RcodeNameError
			m.Ns = append(m.Ns, soa(q.Name))
		default:
			// A known name without records of the asked type is NOERROR
			// with an empty answer (NODATA), as a real server answers.
			for _, rr := range rrs {
				if rr.Header().Rrtype == q.Qtype {
					m.Answer = append(m.Answer, rr)
				}
			}
			if len(m.Answer) == 0 {
				m.Ns = append(m.Ns, soa(q.Name))
			}
		}
	}
	w.WriteMsg(m)
}

// soa is the authority record a real server sends with NXDOMAIN and
// NODATA answers (RFC 2308); without it Go's resolver calls the answer a
// lame referral rather than "no such host".
func soa(name string) dns.RR {
	return &dns.SOA{Hdr: dns.RR_Header{Name: fqdn(name), Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns: "ns.test.", Mbox: "hostmaster.test.", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60}
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
