package smtpd

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/policy"
	"postern.dev/postern/internal/reply"
	"postern.dev/postern/internal/smtpserver"
	"postern.dev/postern/internal/store/sqlite"
	"postern.dev/postern/internal/transport"
)

// chainServer is a Server over a real SQLite store whose directory has
// contoso.com, sean@contoso.com (quotas set, so that the quota steps ask
// the store) and source throttling on.
func chainServer(t testing.TB) (*Server, *directory.Mailbox) {
	t.Helper()
	st, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	org := &directory.Organization{Name: "contoso", GUID: "g"}
	if err := st.SaveOrganization(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveDomain(ctx, &directory.AcceptedDomain{OrgID: org.ID, Name: "contoso.com", DomainName: "contoso.com", DomainType: directory.Authoritative}); err != nil {
		t.Fatal(err)
	}
	sean := &directory.Mailbox{OrgID: org.ID, Name: "sean", PrimarySmtpAddress: "sean@contoso.com", UserPrincipalName: "sean@contoso.com",
		Type: directory.UserMailbox, ProhibitSendQuota: 1 << 30, ProhibitSendReceiveQuota: 1 << 30}
	if err := st.SaveMailbox(ctx, sean); err != nil {
		t.Fatal(err)
	}
	c, err := st.LoadDirectory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := &directory.Current{}
	dir.Store(directory.NewSnapshot(c))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sub := &transport.Submitter{Store: st, Hostname: "mx.test", Recipients: limits.NewRecipientWindow(24*time.Hour, 288),
		Pacer: limits.NewPacer(30, time.Minute), Log: log, Now: time.Now}
	srv := New(Config{Hostname: "mx.test", Throttle: policy.SourceLimits{DirectSendPerHour: 100, RelayPerHour: 100}}, dir, nil, sub, limits.NewSlots(3), log)
	return srv, dir.Load().MailboxByAddress("sean@contoso.com")
}

// TestSessionWalksEveryStep: a message submitted with SMTP AUTH and one
// sent anonymously (Direct Send), each through MAIL FROM, RCPT TO and
// DATA, make the session decide every step of the policy chain. A step
// added to the chain at a stage or for a path the session does not walk
// fails here.
func TestSessionWalksEveryStep(t *testing.T) {
	srv, sean := chainServer(t)
	newSession := func(role Role) *session {
		return &session{srv: srv, role: role, conn: &smtpserver.Conn{}, ip: netip.MustParseAddr("127.0.0.9"), log: srv.log}
	}
	auth := newSession(Submission)
	auth.signedIn(sean, policy.Basic)
	defer auth.Logout()
	anon := newSession(MX)
	for _, tt := range []struct {
		s        *session
		from, to string
	}{
		{auth, "sean@contoso.com", "sean@contoso.com"},
		{anon, "scanner@contoso.com", "sean@contoso.com"},
	} {
		if err := tt.s.mail(tt.from, &smtp.MailOptions{Size: 100}); err != nil {
			t.Fatalf("MAIL FROM:<%s>: %v", tt.from, err)
		}
		if err := tt.s.rcpt(tt.to); err != nil {
			t.Fatalf("RCPT TO:<%s>: %v", tt.to, err)
		}
		msg := "From: " + tt.from + "\r\nTo: " + tt.to + "\r\nSubject: chain\r\n\r\nhello\r\n"
		if rep := tt.s.data(strings.NewReader(msg)); rep == nil || rep.Code != 250 {
			t.Fatalf("end of DATA from %s: %v", tt.from, rep)
		}
	}
	for i, st := range policy.Chain() {
		if !auth.tx.Visited(i) && !anon.tx.Visited(i) {
			t.Errorf("the session never decides step %q (%s)", st.Check, st.Stage)
		}
	}
}

// TestSessionStopsAtFirstRefusal: the session answers with the reply of
// the first step that refuses, and counts a deferred recipient without
// keeping it.
func TestSessionStopsAtFirstRefusal(t *testing.T) {
	srv, sean := chainServer(t)
	s := &session{srv: srv, role: MX, conn: &smtpserver.Conn{}, ip: netip.MustParseAddr("127.0.0.9"), log: srv.log}
	if err := s.mail("x@example.org", nil); err != nil {
		t.Fatal(err)
	}
	// Unknown address of an Authoritative domain (5.4.1), then relay
	// without a connector (5.7.64): the recipient step's refusals.
	for to, want := range map[string]*reply.Reply{"nobody@contoso.com": reply.RecipientAccessDenied, "bob@example.net": reply.RelayDenied} {
		if err := s.rcpt(to); err != want {
			t.Errorf("RCPT TO:<%s>: %v, want %v", to, err, want)
		}
	}
	// Source throttling: Direct Send from a source that sent its hour's
	// share is refused with 451 4.7.500.
	srv.live.Store(&Live{Throttle: policy.SourceLimits{DirectSendPerHour: 1}})
	srv.sources.Add(sourceKey{policy.DirectSend, limits.Source(s.ip)}, limits.Count{Internal: 1}, time.Now())
	if err := s.mail("scanner@contoso.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.rcpt(sean.PrimarySmtpAddress); err != reply.SourceThrottled {
		t.Errorf("throttled source: %v", err)
	}
	if len(s.recipients) != 0 {
		t.Errorf("a refused recipient was kept: %v", s.recipients)
	}
}
