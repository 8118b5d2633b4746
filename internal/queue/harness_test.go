package queue

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/secret"
	"postern.dev/postern/internal/smtpclient"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlite"
	"postern.dev/postern/internal/testdns"
	"postern.dev/postern/internal/testsmtp"
)

// harness runs a real queue over a real SQLite store, with a loopback DNS
// server and scripted SMTP receivers as the outside world.
type harness struct {
	t       testing.TB
	st      *sqlite.Store
	dir     *directory.Current
	box     *secret.Box
	dns     *testdns.Server
	q       *Queue
	org     *directory.Organization
	sean    *directory.Mailbox
	port    int
	nextIP  int
	mxHosts map[string][]string
	cancel  context.CancelFunc
	done    chan struct{}
}

func newHarness(t testing.TB, tune func(*Config)) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	box, err := secret.LoadOrCreate(filepath.Join(t.TempDir(), "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	dns, err := testdns.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, st: st, box: box, dns: dns, dir: &directory.Current{}, nextIP: 10,
		mxHosts: map[string][]string{}}
	h.org = &directory.Organization{Name: "contoso", GUID: "g"}
	must(t, st.SaveOrganization(ctx, h.org))
	must(t, st.SaveDomain(ctx, &directory.AcceptedDomain{OrgID: h.org.ID, Name: "contoso.com", DomainName: "contoso.com",
		DomainType: directory.Authoritative, Default: true}))
	h.sean = &directory.Mailbox{OrgID: h.org.ID, Name: "sean", PrimarySmtpAddress: "sean@contoso.com",
		UserPrincipalName: "sean@contoso.com", Type: directory.UserMailbox}
	must(t, st.SaveMailbox(ctx, h.sean))
	h.reload()

	// One port for every MX host, on different loopback addresses, as MX
	// delivery uses one port (25 in production).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.port = l.Addr().(*net.TCPAddr).Port
	l.Close()

	cfg := Config{
		Store: st, Directory: h.dir, Secrets: box, Resolver: dns.Resolver(), Hostname: "postern.contoso.com",
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		MXPort: h.port, Poll: 20 * time.Millisecond,
		Schedule: Schedule{Min: 50 * time.Millisecond, Max: 100 * time.Millisecond, For: time.Hour},
		Timeouts: smtpclient.Timeouts{Connect: 2 * time.Second, Greeting: 700 * time.Millisecond, Command: 700 * time.Millisecond,
			DataLine: 700 * time.Millisecond, DataEnd: 700 * time.Millisecond},
	}
	if tune != nil {
		tune(&cfg)
	}
	h.q = New(cfg)
	runCtx, cancel := context.WithCancel(ctx)
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { h.q.Run(runCtx); close(h.done) }()
	t.Cleanup(func() {
		cancel()
		<-h.done
		dns.Close()
		st.Close()
	})
	return h
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (h *harness) reload() {
	c, err := h.st.LoadDirectory(context.Background())
	must(h.t, err)
	h.dir.Store(directory.NewSnapshot(c))
}

// mx starts a receiver as the MX host of domain (adding to its MX list).
func (h *harness) mx(domain string, cfg testsmtp.Config) *testsmtp.Server {
	h.t.Helper()
	h.nextIP++
	ip := fmt.Sprintf("127.0.0.%d", h.nextIP)
	srv, err := testsmtp.StartOn(fmt.Sprintf("%s:%d", ip, h.port), cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { srv.Close() })
	host := fmt.Sprintf("mx%d.%s", h.nextIP, domain)
	h.mxHosts[domain] = append(h.mxHosts[domain], host)
	h.dns.SetMX(domain, h.mxHosts[domain]...)
	h.dns.SetIP(host, ip)
	return srv
}

// submit commits a message from sender to outside recipients.
func (h *harness) submit(sender string, rcpts ...string) *store.Submission {
	h.t.Helper()
	from := sender
	if from == "" {
		from = "mailer-daemon@fabrikam.com"
	}
	body := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: scan %d\r\nMessage-ID: <m%d@contoso.com>\r\n"+
		"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n.leading dot\r\n", from, strings.Join(rcpts, ", "), time.Now().UnixNano(), time.Now().UnixNano())
	sub := &store.Submission{OrgID: h.org.ID, MessageID: fmt.Sprintf("m%d@contoso.com", time.Now().UnixNano()), Subject: "scan",
		ReceivedAt: time.Now(), EnvelopeFrom: sender, ClientIP: "127.0.0.1", Body: []byte(body), Recipients: len(rcpts)}
	for _, r := range rcpts {
		sub.Remote = append(sub.Remote, store.RemoteDelivery{Recipient: r})
	}
	must(h.t, h.st.Commit(context.Background(), sub))
	h.q.Nudge()
	return sub
}

// queued returns the outbound items still queued for a message.
func (h *harness) queued(msg int64) []store.QueueItem {
	items, err := h.st.QueueItems(context.Background())
	must(h.t, err)
	var out []store.QueueItem
	for _, it := range items {
		if it.Message == msg {
			out = append(out, it)
		}
	}
	return out
}

// waitFor polls cond for up to 10 s.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// events lists a message's trace as "Event recipient" strings.
func (h *harness) events(msg int64) []store.TraceEvent {
	ev, err := h.st.TraceEvents(context.Background(), msg)
	must(h.t, err)
	return ev
}

func (h *harness) eventCount(msg int64, event string) int {
	n := 0
	for _, e := range h.events(msg) {
		if e.Event == event {
			n++
		}
	}
	return n
}

// inbox lists sean's Inbox.
func (h *harness) inbox() []store.Item {
	items, err := h.st.FolderItems(context.Background(), h.sean.ID, store.Inbox)
	must(h.t, err)
	return items
}

// body reads a stored message whole (tests only: delivery streams it).
func (h *harness) body(it store.Item) string {
	h.t.Helper()
	rc, err := h.st.MessageBody(context.Background(), it.Message)
	must(h.t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	must(h.t, err)
	return string(b)
}

// dropConnections waits until no runner is busy, then closes the
// connections kept for reuse, so that the next delivery connects anew.
func (h *harness) dropConnections() {
	h.waitFor("idle runners", func() bool {
		h.q.mu.Lock()
		defer h.q.mu.Unlock()
		return len(h.q.dests) == 0
	})
	h.q.expireIdle(time.Now(), true)
}
