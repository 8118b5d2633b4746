package smtpd

import (
	"net/netip"
	"strings"
	"testing"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// TestRcptLogic drives the session's RCPT TO logic directly, below the SMTP
// engine's own command parsing: <postmaster> without a domain (RFC 5321
// section 4.5.1), duplicates, and recipients of two organizations.
func TestRcptLogic(t *testing.T) {
	dir := &directory.Current{}
	dir.Store(directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1, Name: "contoso"}, {ID: 2, Name: "fabrikam", MaxRecipientEnvelopeLimit: 1}},
		Domains: []*directory.AcceptedDomain{{ID: 1, OrgID: 1, DomainName: "contoso.com", DomainType: directory.Authoritative, Default: true},
			{ID: 2, OrgID: 2, DomainName: "fabrikam.com", DomainType: directory.Authoritative, Default: true}},
		Mailboxes: []*directory.Mailbox{
			{ID: 1, OrgID: 1, PrimarySmtpAddress: "sean@contoso.com", EmailAddresses: []string{"postmaster@contoso.com"}},
			{ID: 2, OrgID: 2, PrimarySmtpAddress: "kim@fabrikam.com"},
			{ID: 3, OrgID: 2, PrimarySmtpAddress: "ann@fabrikam.com"},
		},
	}))
	s := &session{srv: &Server{dir: dir}, role: MX, ip: netip.MustParseAddr("192.0.2.1")}
	if err := s.mail("x@outside.example", nil); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		to   string
		want *reply.Reply
		n    int // recipients kept after it
		over int // recipients counted past a limit after it
	}{
		{"postmaster", nil, 1, 0},
		{"PostMaster", nil, 1, 0},
		{"SEAN@contoso.com", nil, 1, 0},
		{"kim@fabrikam.com", nil, 2, 0},
		// Past fabrikam's MaxRecipientEnvelopeLimit: accepted, counted,
		// and the message refused whole at end of DATA.
		{"ann@fabrikam.com", nil, 2, 1},
		{"Kim@Fabrikam.com", nil, 2, 1},
	} {
		err := s.rcpt(tt.to)
		if rep, _ := err.(*reply.Reply); (err == nil) != (tt.want == nil) || (rep != nil && reply.String(rep) != reply.String(tt.want)) {
			t.Errorf("RCPT TO:<%s>: %v, want %v", tt.to, err, tt.want)
		}
		if len(s.recipients) != tt.n || s.overLimit != tt.over {
			t.Errorf("after %s: %d recipients, %d over the limit, want %d and %d", tt.to, len(s.recipients), s.overLimit, tt.n, tt.over)
		}
	}
	if got := s.recipients[0].Route.Mailbox; got == nil || got.ID != 1 {
		t.Errorf("postmaster routed to %+v", got)
	}
	if s.verdicts[0].Org.ID != 1 || s.verdicts[1].Org.ID != 2 {
		t.Errorf("organizations: %v, %v", s.verdicts[0].Org, s.verdicts[1].Org)
	}
	if rep := s.data(strings.NewReader("From: x@outside.example\r\n\r\nhi\r\n")); rep != reply.RecipientLimitExceeded {
		t.Errorf("end of DATA over the limit: %v, want the whole message refused", rep)
	}
}
