package smtpd

import (
	"net/netip"
	"testing"

	"postern.dev/postern/internal/policy"
	"postern.dev/postern/internal/smtpserver"
)

// BenchmarkTransaction measures a transaction's policy decisions (MAIL
// FROM and two RCPT TO) in a session, authenticated and anonymous (Direct
// Send, source throttling on): the cost the decision chain adds per
// command, allocations included.
func BenchmarkTransaction(b *testing.B) {
	srv, sean := chainServer(b)
	for _, tt := range []struct {
		name string
		role Role
		from string
	}{
		{"authenticated", Submission, "sean@contoso.com"},
		{"anonymous", MX, "scanner@contoso.com"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			s := &session{srv: srv, role: tt.role, conn: &smtpserver.Conn{}, ip: netip.MustParseAddr("127.0.0.9"), log: srv.log}
			if tt.role != MX {
				s.signedIn(sean, policy.Basic)
				defer s.Logout()
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.mail(tt.from, nil); err != nil {
					b.Fatal(err)
				}
				if err := s.rcpt("sean@contoso.com"); err != nil {
					b.Fatal(err)
				}
				if err := s.rcpt("bob@example.net"); err != nil && tt.role != MX {
					b.Fatal(err)
				}
				s.Reset()
			}
		})
	}
}
