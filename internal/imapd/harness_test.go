package imapd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlite"
	"postern.dev/postern/internal/testcert"
)

// harness is a server on 127.0.0.1 over a real SQLite store in a
// temporary directory: an implicit-TLS listener and a STARTTLS one.
type harness struct {
	t        *testing.T
	dir      string
	st       *sqlite.Store
	srv      *Server
	tlsAddr  string
	plain    string
	certFile string
	roots    *x509.CertPool
	org      *directory.Organization
	sean     *directory.Mailbox
	chris    *directory.Mailbox
}

// fakeAuth accepts sean@contoso.com / secret and the token "tok-sean";
// "blocked@contoso.com" is refused with Close, "busy@contoso.com"
// temporarily.
type fakeAuth struct{ h *harness }

func (a fakeAuth) account(user string) (Account, error) {
	switch strings.ToLower(user) {
	case "sean@contoso.com", "":
		return Account{Mailbox: a.h.sean.ID, Address: "sean@contoso.com", MaxAppendSize: 1 << 20}, nil
	case "chris@contoso.com":
		return Account{Mailbox: a.h.chris.ID, Address: "chris@contoso.com"}, nil
	}
	return Account{}, &AuthError{Err: errors.New("unknown user")}
}

func (a fakeAuth) Basic(_ context.Context, _ netip.Addr, user, pass string) (Account, error) {
	switch strings.ToLower(user) {
	case "blocked@contoso.com":
		return Account{}, &AuthError{Close: true, Err: errors.New("blocked")}
	case "busy@contoso.com":
		return Account{}, &AuthError{Temporary: true, Err: errors.New("throttled")}
	}
	if pass != "secret" {
		return Account{}, &AuthError{Err: errors.New("bad password")}
	}
	return a.account(user)
}

func (a fakeAuth) OAuth(_ context.Context, _ netip.Addr, user, token string) (Account, error) {
	if token != "tok-sean" {
		return Account{}, &AuthError{Err: errors.New("bad token")}
	}
	return a.account(user)
}

func newHarness(t testing.TB) *harness {
	tt, _ := t.(*testing.T)
	h := &harness{t: tt, dir: t.TempDir()}
	st, err := sqlite.Open(h.dir)
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	ctx := context.Background()
	h.org = &directory.Organization{Name: "contoso", GUID: "g"}
	must(t, st.SaveOrganization(ctx, h.org))
	must(t, st.SaveDomain(ctx, &directory.AcceptedDomain{OrgID: h.org.ID, Name: "contoso.com", DomainName: "contoso.com",
		DomainType: directory.Authoritative, Default: true}))
	h.sean = &directory.Mailbox{OrgID: h.org.ID, Name: "sean", PrimarySmtpAddress: "sean@contoso.com",
		UserPrincipalName: "sean@contoso.com", Type: directory.UserMailbox, RecipientLimits: 500}
	must(t, st.SaveMailbox(ctx, h.sean))
	h.chris = &directory.Mailbox{OrgID: h.org.ID, Name: "chris", PrimarySmtpAddress: "chris@contoso.com",
		UserPrincipalName: "chris@contoso.com", Type: directory.UserMailbox, RecipientLimits: 500}
	must(t, st.SaveMailbox(ctx, h.chris))

	cert := testcert.New(t, "imap.contoso.com", "localhost")
	h.certFile, h.roots = cert.CAFile, cert.Pool
	h.start(t, st, cert.Certificate)
	return h
}

func (h *harness) start(t testing.TB, st store.Store, cert tls.Certificate) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("IMAPD_DEBUG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h.srv = New(Options{Store: st, Auth: fakeAuth{h}, Logger: logger,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	h.tlsAddr, h.plain = l1.Addr().String(), l2.Addr().String()
	go h.srv.Serve(l1, true)
	go h.srv.Serve(l2, false)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.srv.Shutdown(ctx)
		st.Close()
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dial opens an imapclient session over implicit TLS.
func (h *harness) dial(t testing.TB, o *imapclient.Options) *imapclient.Client {
	t.Helper()
	if o == nil {
		o = &imapclient.Options{}
	}
	o.TLSConfig = &tls.Config{RootCAs: h.roots, ServerName: "127.0.0.1"}
	c, err := imapclient.DialTLS(h.tlsAddr, o)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func (h *harness) login(t testing.TB, o *imapclient.Options) *imapclient.Client {
	t.Helper()
	c := h.dial(t, o)
	must(t, c.Login("sean@contoso.com", "secret").Wait())
	return c
}

// deliver commits a message to a mailbox folder the way SMTP does.
func (h *harness) deliver(t testing.TB, mailbox int64, folder, subject, body string) int64 {
	t.Helper()
	msg := fmt.Sprintf("From: chris@contoso.com\r\nTo: sean@contoso.com\r\nSubject: %s\r\nMessage-ID: <%d@contoso.com>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n%s\r\n",
		subject, time.Now().UnixNano(), body)
	sub := &store.Submission{OrgID: h.org.ID, MessageID: "x", Subject: subject, ReceivedAt: time.Now(),
		EnvelopeFrom: "chris@contoso.com", ClientIP: "127.0.0.1", Body: []byte(msg), Recipients: 1,
		Local: []store.LocalDelivery{{Mailbox: mailbox, Folder: folder, Recipient: "sean@contoso.com"}}}
	must(t, h.st.Commit(context.Background(), sub))
	return sub.ID
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// needTool finds an external tool: missing, it fails under CI=true and
// skips otherwise.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
