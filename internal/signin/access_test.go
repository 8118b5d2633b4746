package signin

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/policy"
	"postern.dev/postern/internal/reply"
	"postern.dev/postern/internal/store"
)

// accessDirectory: sean (IMAP and POP on), pat (IMAP off), the shared
// mailbox info (alias "info"), on which sean holds FullAccess, and sales,
// on which he does not; a policy allowing Basic for IMAP only.
func accessAuthenticator(t *testing.T) *Authenticator {
	t.Helper()
	hash, _ := auth.HashPasswordWithParams("secret", cheap)
	org := &directory.Organization{ID: 1, Name: "contoso", SmtpClientAuthenticationDisabled: true}
	sean := &directory.Mailbox{ID: 1, OrgID: 1, Name: "sean", Alias: "sean", PrimarySmtpAddress: "sean@contoso.com", UserPrincipalName: "sean@contoso.com",
		Type: directory.UserMailbox, PasswordHash: hash, ImapEnabled: true, PopEnabled: true}
	pat := &directory.Mailbox{ID: 2, OrgID: 1, Name: "pat", Alias: "pat", PrimarySmtpAddress: "pat@contoso.com", UserPrincipalName: "pat@contoso.com",
		Type: directory.UserMailbox, PasswordHash: hash, PopEnabled: true, AuthenticationPolicy: "ImapOnly"}
	info := &directory.Mailbox{ID: 3, OrgID: 1, Name: "info", Alias: "info", PrimarySmtpAddress: "info@contoso.com", UserPrincipalName: "info@contoso.com",
		Type: directory.SharedMailbox, ImapEnabled: true, PopEnabled: true}
	sales := &directory.Mailbox{ID: 4, OrgID: 1, Name: "sales", Alias: "sales", PrimarySmtpAddress: "sales@contoso.com", UserPrincipalName: "sales@contoso.com",
		Type: directory.SharedMailbox, ImapEnabled: true, PopEnabled: true}
	dir := &directory.Current{}
	dir.Store(directory.NewSnapshot(directory.Contents{Organizations: []*directory.Organization{org},
		Mailboxes:    []*directory.Mailbox{sean, pat, info, sales},
		Policies:     []*directory.AuthenticationPolicy{{ID: 1, OrgID: 1, Name: "ImapOnly", AllowBasicAuthImap: true}},
		MailboxPerms: []*directory.MailboxPermission{{ID: 1, OrgID: 1, Identity: 3, TrusteeMailbox: 1}}}))
	return &Authenticator{Directory: dir, Cache: auth.NewLoginCache(time.Minute, 100), Throttle: auth.NewThrottle(auth.DefaultThrottleConfig),
		Gate: auth.NewGate(auth.GateConfig{}), Lockout: auth.NewLockout(auth.DefaultLockoutConfig), Now: time.Now, Sleep: func(time.Duration) {}}
}

func TestBasicAccess(t *testing.T) {
	a := accessAuthenticator(t)
	ip := netip.MustParseAddr("192.0.2.1")
	for _, tt := range []struct {
		proto          Protocol
		user, password string
		actor, mailbox string // "" for a refusal
		text           string
	}{
		{IMAP4, "sean@contoso.com", "secret", "sean@contoso.com", "sean@contoso.com", ""},
		{POP3, "SEAN@contoso.com", "secret", "sean@contoso.com", "sean@contoso.com", ""},
		// The SMTP switches (here: SMTP AUTH off in the organization) do not apply.
		{SMTP, "sean@contoso.com", "secret", "", "", ""},
		{IMAP4, "sean@contoso.com", "wrong", "", "", ""},
		{IMAP4, `sean@contoso.com\info@contoso.com`, "secret", "sean@contoso.com", "info@contoso.com", ""},
		{POP3, "sean@contoso.com/info@contoso.com", "secret", "sean@contoso.com", "info@contoso.com", ""},
		{IMAP4, `sean@contoso.com\INFO`, "secret", "sean@contoso.com", "info@contoso.com", ""},
		{IMAP4, `sean@contoso.com\info@contoso.com`, "wrong", "", "", ""},
		{IMAP4, `sean@contoso.com\sales@contoso.com`, "secret", "", "", reply.IMAPNotConnected},
		{POP3, `sean@contoso.com\sales@contoso.com`, "secret", "", "", ""},
		{IMAP4, `sean@contoso.com\nobody@contoso.com`, "secret", "", "", reply.IMAPNotConnected},
		{IMAP4, `sean@contoso.com\nobody@contoso.com`, "wrong", "", "", ""},
		// The shared form is IMAP's and POP's, not SMTP's.
		{SMTP, `sean@contoso.com\info@contoso.com`, "secret", "", "", ""},
		// A shared mailbox has no password of its own.
		{IMAP4, "info@contoso.com", "", "", "", ""},
		// pat: IMAP off for the mailbox, Basic allowed by policy for IMAP only.
		{IMAP4, "pat@contoso.com", "secret", "", "", reply.IMAPNotConnected},
		{POP3, "pat@contoso.com", "secret", "", "", ""},
		{IMAP4, "pat@contoso.com", "wrong", "", "", ""},
	} {
		name := fmt.Sprintf("%s %s/%s", tt.proto, tt.user, tt.password)
		g, r := a.Basic(context.Background(), tt.proto, ip, tt.user, tt.password)
		if tt.mailbox == "" {
			if g != nil || r == nil || r.Temporary || r.Close || r.Text != tt.text || r.Reason == "" {
				t.Errorf("%s: got %+v %+v, want a refusal with text %q", name, g, r, tt.text)
			}
			continue
		}
		if r != nil || g.Actor.PrimarySmtpAddress != tt.actor || g.Mailbox.PrimarySmtpAddress != tt.mailbox || g.Method != policy.Basic {
			t.Errorf("%s: got %+v %+v", name, g, r)
		}
	}
}

// TestOneBudgetForAllProtocols: failures over SMTP, IMAP4 and POP3 from one
// address draw on one throttle, so three protocols give no more guesses
// than one.
func TestOneBudgetForAllProtocols(t *testing.T) {
	a := accessAuthenticator(t)
	ip := netip.MustParseAddr("203.0.113.9")
	protos := []Protocol{SMTP, IMAP4, POP3}
	var closed *Refusal
	for i := 0; i < 3*auth.DefaultThrottleConfig.BlockAfter; i++ {
		_, r := a.Basic(context.Background(), protos[i%3], ip, "sean@contoso.com", fmt.Sprint("guess", i))
		if r.Close {
			closed = r
			if i > auth.DefaultThrottleConfig.BlockAfter {
				t.Fatalf("blocked only after %d failures over three protocols, want %d", i, auth.DefaultThrottleConfig.BlockAfter)
			}
			break
		}
	}
	if closed == nil || closed.Reply != reply.AuthThrottled || !closed.Temporary {
		t.Fatalf("never blocked: %+v", closed)
	}
	// The right password from the blocked address is refused too, over any protocol.
	if _, r := a.Basic(context.Background(), POP3, ip, "sean@contoso.com", "secret"); r == nil || !r.Close {
		t.Fatalf("blocked address signed in: %+v", r)
	}
}

type memSignIns struct {
	mu   sync.Mutex
	rows []store.SignIn
	fail bool
}

func (m *memSignIns) RecordSignIns(_ context.Context, rows []store.SignIn) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return fmt.Errorf("disk full")
	}
	m.rows = append(m.rows, rows...)
	return nil
}

func TestRecorder(t *testing.T) {
	a := accessAuthenticator(t)
	st := &memSignIns{}
	a.SignIns = NewRecorder(st, nil, 0)
	ip := netip.MustParseAddr("192.0.2.1")
	for range 5 {
		if _, r := a.Basic(context.Background(), IMAP4, ip, "sean@contoso.com", "secret"); r != nil {
			t.Fatal(r)
		}
	}
	a.Basic(context.Background(), POP3, ip, `sean@contoso.com\info@contoso.com`, "secret")
	a.Basic(context.Background(), IMAP4, ip, "sean@contoso.com", "wrong") // failures are not counted
	st.fail = true
	if err := a.SignIns.Flush(context.Background()); err == nil {
		t.Fatal("a failed write must be reported")
	}
	st.fail = false
	a.Basic(context.Background(), IMAP4, ip, "sean@contoso.com", "secret")
	if err := a.SignIns.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range st.rows {
		got[fmt.Sprintf("%s %d %s %s %s", r.Protocol, r.Mailbox, r.Actor, r.ClientIP, r.Method)] += r.Count
	}
	want := map[string]int64{"IMAP4 1 sean@contoso.com 192.0.2.1 Basic": 6, "POP3 3 sean@contoso.com 192.0.2.1 Basic": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(st.rows) != 2 {
		t.Fatalf("rows %v (%d), want %v in 2 rows", got, len(st.rows), want)
	}
}

func TestRecorderBounded(t *testing.T) {
	st := &memSignIns{fail: true}
	r := NewRecorder(st, nil, 10)
	mb := &directory.Mailbox{ID: 1, OrgID: 1, PrimarySmtpAddress: "sean@contoso.com"}
	for i := range 1000 {
		r.Record(IMAP4, &Grant{Actor: mb, Mailbox: mb}, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), time.Now())
	}
	r.mu.Lock()
	n := len(r.pending)
	r.mu.Unlock()
	if n > 20 {
		t.Fatalf("%d rows held, want at most 20", n)
	}
}

func FuzzSplitDelegate(f *testing.F) {
	a := accessAuthenticator(&testing.T{})
	dir := a.Directory.Load()
	for _, s := range []string{`sean@contoso.com\info@contoso.com`, "sean@contoso.com/info", `\\\\`, "sean@contoso.com/", "/sean@contoso.com", "a/b\\c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		user, target, ok := splitDelegate(dir, name)
		if !ok {
			return
		}
		if dir.MailboxBySignIn(user) == nil || target == "" || len(user)+1+len(target) != len(name) || !strings.HasPrefix(name, user) {
			t.Fatalf("split %q into %q and %q", name, user, target)
		}
		if sep := name[len(user)]; sep != '\\' && sep != '/' {
			t.Fatalf("split %q at %q", name, sep)
		}
	})
}
