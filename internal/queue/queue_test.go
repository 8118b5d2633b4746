package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/dkimkey"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/testsmtp"
)

func TestDeliverByMX(t *testing.T) {
	h := newHarness(t, nil)
	tlsCfg, _, err := testsmtp.SelfSignedTLS("mx.fabrikam.com")
	must(t, err)
	fab := h.mx("fabrikam.com", testsmtp.Config{TLS: tlsCfg})
	tail := h.mx("tailspin.com", testsmtp.Config{})
	sub := h.submit("sean@contoso.com", "a@fabrikam.com", "b@fabrikam.com", "c@tailspin.com")

	msgs, err := fab.WaitMessages(1, 5*time.Second)
	must(t, err)
	if len(msgs[0].To) != 2 || msgs[0].From != "sean@contoso.com" || msgs[0].Helo != "postern.contoso.com" {
		t.Fatalf("fabrikam got %+v: want one transaction for both recipients", msgs[0])
	}
	if !msgs[0].TLS {
		t.Error("STARTTLS was offered but not used")
	}
	if !bytes.Contains(msgs[0].Data, []byte("\r\n.leading dot\r\n")) {
		t.Errorf("dot-stuffing broke the body: %q", msgs[0].Data)
	}
	if _, err := tail.WaitMessages(1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the queue to empty", func() bool { return len(h.queued(sub.ID)) == 0 })
	h.waitFor("three Send events", func() bool { return h.eventCount(sub.ID, store.EventSend) == 3 })
	for _, e := range h.events(sub.ID) {
		if e.Event == store.EventSend && (!strings.Contains(e.Detail, "250") || !strings.Contains(e.RemoteHost, "127.0.0.")) {
			t.Errorf("Send event without the remote reply or host: %+v", e)
		}
	}
	if h.eventCount(sub.ID, store.EventReceive) != 1 {
		t.Errorf("events %+v: want one Receive", h.events(sub.ID))
	}
}

func TestPerRecipientResults(t *testing.T) {
	h := newHarness(t, nil)
	fab := h.mx("fabrikam.com", testsmtp.Config{Reply: func(stage testsmtp.Stage, arg string) string {
		switch {
		case stage == testsmtp.Rcpt && strings.HasPrefix(arg, "gone@"):
			return "550 5.1.1 gone@fabrikam.com: user unknown"
		case stage == testsmtp.Rcpt && strings.HasPrefix(arg, "busy@"):
			return "452 4.2.2 mailbox full"
		}
		return ""
	}})
	sub := h.submit("sean@contoso.com", "ok@fabrikam.com", "gone@fabrikam.com", "busy@fabrikam.com")
	if _, err := fab.WaitMessages(1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the NDR in sean's Inbox", func() bool { return len(h.inbox()) == 1 })
	h.waitFor("one recipient left", func() bool { return len(h.queued(sub.ID)) == 1 })
	left := h.queued(sub.ID)[0]
	if left.Recipient != "busy@fabrikam.com" || left.Attempts < 1 || !strings.Contains(left.LastError, "452 4.2.2 mailbox full") {
		t.Errorf("deferred item %+v", left)
	}
	if got := fab.Messages()[0].To; len(got) != 1 || got[0] != "ok@fabrikam.com" {
		t.Errorf("delivered to %v, want only ok@", got)
	}
	ndr := h.body(h.inbox()[0])
	for _, want := range []string{"multipart/report", "report-type=delivery-status", "Final-Recipient: rfc822; gone@fabrikam.com",
		"Action: failed", "Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1", "Undeliverable: scan"} {
		if !strings.Contains(ndr, want) {
			t.Errorf("NDR lacks %q:\n%s", want, ndr)
		}
	}
	if strings.Contains(ndr, "Final-Recipient: rfc822; ok@") || strings.Contains(ndr, "Final-Recipient: rfc822; busy@") {
		t.Errorf("NDR names recipients that did not fail:\n%s", ndr)
	}
	if h.eventCount(sub.ID, store.EventFail) != 1 || h.eventCount(sub.ID, store.EventDSN) != 1 || h.eventCount(sub.ID, store.EventSend) != 1 {
		t.Errorf("events: %+v", h.events(sub.ID))
	}
}

// Every way a remote server can misbehave leaves the message queued with
// the cause recorded; once the server behaves, it is delivered once.
func TestFaultsDeferThenDeliverOnce(t *testing.T) {
	tlsCfg, _, err := testsmtp.SelfSignedTLS("mx.fabrikam.com")
	must(t, err)
	for _, tt := range []struct {
		name  string
		stage testsmtp.Stage
		fault testsmtp.Fault
		cause string
	}{
		{"drop at greeting", testsmtp.Greeting, testsmtp.Drop, "greeting"},
		{"stall at greeting", testsmtp.Greeting, testsmtp.Stall, "timeout"},
		{"stall after the body", testsmtp.Body, testsmtp.Stall, "timeout"},
		{"overlong reply", testsmtp.Mail, testsmtp.Overlong, "longer than"},
		{"malformed reply", testsmtp.Rcpt, testsmtp.Malformed, "malformed"},
		{"TLS handshake fails", testsmtp.StartTLS, testsmtp.FailTLS, "STARTTLS"},
		{"close mid-DATA", testsmtp.Body, testsmtp.DropMidData, "end of data"},
		{"4xx after the body", testsmtp.Body, testsmtp.None, "451 4.3.0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Schedule.Min, c.Schedule.Max = time.Hour, time.Hour })
			cfg := testsmtp.Config{TLS: tlsCfg, Faults: map[testsmtp.Stage]testsmtp.Fault{tt.stage: tt.fault}}
			if tt.fault == testsmtp.None {
				cfg.Reply = func(s testsmtp.Stage, _ string) string {
					if s == testsmtp.Body {
						return "451 4.3.0 temporary trouble"
					}
					return ""
				}
			}
			srv := h.mx("fabrikam.com", cfg)
			sub := h.submit("sean@contoso.com", "a@fabrikam.com")
			h.waitFor("a recorded attempt", func() bool {
				q := h.queued(sub.ID)
				return len(q) == 1 && q[0].Attempts == 1
			})
			it := h.queued(sub.ID)[0]
			if !strings.Contains(it.LastError, tt.cause) {
				t.Errorf("LastError %q does not say %q", it.LastError, tt.cause)
			}
			if h.eventCount(sub.ID, store.EventDefer) != 1 {
				t.Errorf("events %+v: want one Defer", h.events(sub.ID))
			}
			if len(srv.Messages()) != 0 && tt.fault != testsmtp.Stall {
				t.Fatalf("the faulty server recorded a message")
			}

			// The server is fixed; connections it holds open keep the old
			// script, so drop them as a restarted server would.
			srv.SetConfig(testsmtp.Config{TLS: tlsCfg})
			h.dropConnections()
			n, err := h.q.Retry(context.Background(), []int64{it.ID})
			if err != nil || n != 1 {
				t.Fatalf("Retry: %d %v", n, err)
			}
			h.waitFor("delivery", func() bool { return len(h.queued(sub.ID)) == 0 })
			time.Sleep(100 * time.Millisecond)
			if got := len(srv.Messages()); got != 1 && !(tt.fault == testsmtp.Stall && tt.stage == testsmtp.Body) {
				t.Errorf("%d copies delivered, want 1", got)
			}
			if h.eventCount(sub.ID, store.EventSend) != 1 {
				t.Errorf("events %+v: want one Send", h.events(sub.ID))
			}
		})
	}
}

func TestMXFallbackAndImplicitMX(t *testing.T) {
	h := newHarness(t, nil)
	bad := h.mx("fabrikam.com", testsmtp.Config{Faults: map[testsmtp.Stage]testsmtp.Fault{testsmtp.Greeting: testsmtp.Drop}})
	good := h.mx("fabrikam.com", testsmtp.Config{})
	sub := h.submit("sean@contoso.com", "a@fabrikam.com")
	if _, err := good.WaitMessages(1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if bad.Connections() == 0 {
		t.Error("the preferred MX was never tried")
	}
	h.waitFor("the queue to empty", func() bool { return len(h.queued(sub.ID)) == 0 })

	// No MX record: the domain's own address is the implicit MX (RFC 5321 §5.1).
	h.nextIP++
	ip := fmt.Sprintf("127.0.0.%d", h.nextIP)
	srv, err := testsmtp.StartOn(fmt.Sprintf("%s:%d", ip, h.port), testsmtp.Config{})
	must(t, err)
	defer srv.Close()
	h.dns.SetIP("tailspin.com", ip)
	tail := h.submit("sean@contoso.com", "x@tailspin.com")
	if _, err := srv.WaitMessages(1, 5*time.Second); err != nil {
		t.Fatal(err, h.queued(tail.ID))
	}
}

func TestUndeliverableDomains(t *testing.T) {
	h := newHarness(t, nil)
	h.dns.SetMX("nullmx.example", ".")
	h.dns.Fail("broken.example")
	null := h.submit("sean@contoso.com", "a@nullmx.example")
	none := h.submit("sean@contoso.com", "a@nosuchdomain.example")
	broken := h.submit("sean@contoso.com", "a@broken.example")
	h.waitFor("two NDRs", func() bool { return len(h.inbox()) == 2 })
	for _, c := range []struct {
		sub  *store.Submission
		want string
	}{{null, "5.1.10"}, {none, "5.1.2"}} {
		if len(h.queued(c.sub.ID)) != 0 || h.eventCount(c.sub.ID, store.EventFail) != 1 {
			t.Errorf("%s: not failed: %+v", c.want, h.events(c.sub.ID))
		}
		found := false
		for _, e := range h.events(c.sub.ID) {
			found = found || strings.Contains(e.Detail, c.want)
		}
		if !found {
			t.Errorf("no %s in %+v", c.want, h.events(c.sub.ID))
		}
	}
	// A DNS server failure is temporary.
	h.waitFor("a deferral", func() bool {
		q := h.queued(broken.ID)
		return len(q) == 1 && q[0].Attempts >= 1 && strings.Contains(q[0].LastError, "4.4.3")
	})
}

func TestExpiryAndDelayNotice(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Schedule = Schedule{Min: 50 * time.Millisecond, Max: 50 * time.Millisecond, For: 800 * time.Millisecond, DelayNotice: 200 * time.Millisecond}
	})
	h.mx("fabrikam.com", testsmtp.Config{Reply: func(s testsmtp.Stage, _ string) string {
		if s == testsmtp.Rcpt {
			return "451 4.7.500 Access denied, please try again later"
		}
		return ""
	}})
	sub := h.submit("sean@contoso.com", "a@fabrikam.com")
	h.waitFor("the message to expire", func() bool { return len(h.queued(sub.ID)) == 0 })
	h.waitFor("a delay notice and an NDR", func() bool { return len(h.inbox()) == 2 })
	var delay, ndr string
	for _, it := range h.inbox() {
		if strings.Contains(it.Subject, "Delivery delayed") {
			delay = h.body(it)
		} else {
			ndr = h.body(it)
		}
	}
	for _, want := range []string{"Action: delayed", "Will-Retry-Until:", "451 4.7.500"} {
		if !strings.Contains(delay, want) {
			t.Errorf("delay notice lacks %q:\n%s", want, delay)
		}
	}
	for _, want := range []string{"Action: failed", "Status: 4.4.7", "451 4.7.500"} {
		if !strings.Contains(ndr, want) {
			t.Errorf("NDR lacks %q:\n%s", want, ndr)
		}
	}
	if h.eventCount(sub.ID, store.EventDSN) != 2 {
		t.Errorf("want two DSN events: %+v", h.events(sub.ID))
	}
}

func TestNullSenderNeverBounces(t *testing.T) {
	h := newHarness(t, nil)
	h.mx("fabrikam.com", testsmtp.Config{Reply: func(s testsmtp.Stage, _ string) string {
		if s == testsmtp.Rcpt {
			return "550 5.1.1 unknown"
		}
		return ""
	}})
	sub := h.submit("", "a@fabrikam.com")
	h.waitFor("the failure", func() bool { return h.eventCount(sub.ID, store.EventFail) == 1 })
	time.Sleep(100 * time.Millisecond)
	if h.eventCount(sub.ID, store.EventDSN) != 0 || len(h.inbox()) != 0 {
		t.Errorf("a null-sender message produced a notification: %+v", h.events(sub.ID))
	}
	items, _ := h.st.QueueItems(context.Background())
	if len(items) != 0 {
		t.Errorf("queue not empty: %+v", items)
	}
}

func TestConnectionReuse(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PerDestination = 1 })
	srv := h.mx("fabrikam.com", testsmtp.Config{})
	for i := 0; i < 5; i++ {
		h.submit("sean@contoso.com", fmt.Sprintf("u%d@fabrikam.com", i))
	}
	if _, err := srv.WaitMessages(5, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if c := srv.Connections(); c > 2 {
		t.Errorf("%d connections for 5 messages to one destination with one runner", c)
	}
}

func (h *harness) connector(oc *directory.OutboundConnector) {
	h.t.Helper()
	oc.OrgID, oc.Enabled = h.org.ID, true
	if oc.AuthMechanism == "" {
		oc.AuthMechanism = directory.AuthNone
	}
	must(h.t, h.st.SaveOutboundConnector(context.Background(), oc))
	h.reload()
}

func (h *harness) seal(s string) string {
	v, err := h.box.Seal(s)
	must(h.t, err)
	return v
}

func TestSmartHostBasicAuth(t *testing.T) {
	h := newHarness(t, nil)
	tlsCfg, _, err := testsmtp.SelfSignedTLS("smtp.relay.test")
	must(t, err)
	srv, err := testsmtp.Start(testsmtp.Config{TLS: tlsCfg, AuthMechanisms: []string{"LOGIN"}, RequireAuth: true,
		CheckAuth: func(mech, user, pass string) bool { return user == "relay@contoso.com" && pass == "s3cret" }})
	must(t, err)
	defer srv.Close()
	h.connector(&directory.OutboundConnector{Name: "Relay", RecipientDomains: []string{"*"}, SmartHosts: []string{srv.Addr},
		AuthMechanism: directory.AuthBasic, SmtpUser: "relay@contoso.com", SmtpPasswordSealed: h.seal("s3cret")})
	h.submit("sean@contoso.com", "a@anywhere.example")
	msgs, err := srv.WaitMessages(1, 5*time.Second)
	must(t, err)
	if msgs[0].AuthUser != "relay@contoso.com" || msgs[0].AuthMech != "LOGIN" || !msgs[0].TLS {
		t.Errorf("smart host saw %+v", msgs[0])
	}
}

// The Microsoft 365 bridge: a client-credentials token from the endpoint,
// presented with XOAUTH2, cached across messages.
func TestSmartHostXOAUTH2(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Schedule.Min, c.Schedule.Max = time.Hour, time.Hour })
	var requests atomic.Int32
	var failing atomic.Bool
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		r.ParseForm()
		if failing.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`)
			return
		}
		if r.Form.Get("grant_type") != "client_credentials" || r.Form.Get("client_id") != "app-id" ||
			r.Form.Get("client_secret") != "app-secret" || r.Form.Get("scope") != "https://outlook.office365.com/.default" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-123", "token_type": "Bearer", "expires_in": 3599})
	}))
	defer idp.Close()
	tlsCfg, _, err := testsmtp.SelfSignedTLS("smtp.office365.test")
	must(t, err)
	srv, err := testsmtp.Start(testsmtp.Config{TLS: tlsCfg, AuthMechanisms: []string{"LOGIN", "XOAUTH2"}, RequireAuth: true,
		CheckAuth: func(mech, user, tok string) bool {
			return mech == "XOAUTH2" && user == "relay@contoso.com" && tok == "tok-123"
		}})
	must(t, err)
	defer srv.Close()
	oc := &directory.OutboundConnector{Name: "M365", RecipientDomains: []string{"*"}, SmartHosts: []string{srv.Addr},
		AuthMechanism: directory.AuthXOAUTH2, SmtpUser: "relay@contoso.com", OAuthTokenEndpoint: idp.URL + "/token",
		OAuthClientId: "app-id", OAuthClientSecretSealed: h.seal("app-secret"), OAuthScope: "https://outlook.office365.com/.default"}
	h.connector(oc)
	h.submit("sean@contoso.com", "a@fabrikam.com")
	h.submit("sean@contoso.com", "b@fabrikam.com")
	msgs, err := srv.WaitMessages(2, 5*time.Second)
	must(t, err)
	if msgs[0].AuthMech != "XOAUTH2" {
		t.Errorf("signed in with %q", msgs[0].AuthMech)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d token requests for two messages: the token is not cached", n)
	}

	// A failing token endpoint defers with its reason; it never bounces.
	failing.Store(true)
	h.q.tokens.forget(oc)
	h.dropConnections() // a new connection must sign in again
	sub := h.submit("sean@contoso.com", "c@fabrikam.com")
	h.waitFor("a deferral", func() bool { q := h.queued(sub.ID); return len(q) == 1 && q[0].Attempts == 1 })
	if e := h.queued(sub.ID)[0].LastError; !strings.Contains(e, "invalid_client") || !strings.Contains(e, "AADSTS7000215") {
		t.Errorf("LastError %q does not give the endpoint's reason", e)
	}
	if len(h.inbox()) != 0 {
		t.Error("a token failure produced an NDR")
	}
}

func TestTLSSettings(t *testing.T) {
	tlsCfg, roots, err := testsmtp.SelfSignedTLS("smtp.relay.test")
	must(t, err)
	for _, tt := range []struct {
		name      string
		offerTLS  bool
		settings  directory.TlsSettings
		tlsDomain string
		delivered bool
		cause     string
	}{
		{"opportunistic without TLS", false, directory.TlsOpportunistic, "", true, ""},
		{"EncryptionOnly without TLS", false, directory.TlsEncryptionOnly, "", false, "requires TLS"},
		{"CertificateValidation", true, directory.TlsCertificateValidation, "", true, ""},
		{"DomainValidation, right name", true, directory.TlsDomainValidation, "smtp.relay.test", true, ""},
		{"DomainValidation, wildcard", true, directory.TlsDomainValidation, "*.relay.test", true, ""},
		{"DomainValidation, wrong name", true, directory.TlsDomainValidation, "mail.fabrikam.com", false, "do not match"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.RootCAs = roots; c.Schedule.Min, c.Schedule.Max = time.Hour, time.Hour })
			cfg := testsmtp.Config{}
			if tt.offerTLS {
				cfg.TLS = tlsCfg
			}
			srv, err := testsmtp.Start(cfg)
			must(t, err)
			defer srv.Close()
			h.connector(&directory.OutboundConnector{Name: "Relay", RecipientDomains: []string{"fabrikam.com"}, SmartHosts: []string{srv.Addr},
				TlsSettings: tt.settings, TlsDomain: tt.tlsDomain})
			sub := h.submit("sean@contoso.com", "a@fabrikam.com")
			if tt.delivered {
				if _, err := srv.WaitMessages(1, 5*time.Second); err != nil {
					t.Fatal(err)
				}
				return
			}
			h.waitFor("a deferral", func() bool { q := h.queued(sub.ID); return len(q) == 1 && q[0].Attempts == 1 })
			if e := h.queued(sub.ID)[0].LastError; !strings.Contains(e, tt.cause) {
				t.Errorf("LastError %q, want %q", e, tt.cause)
			}
		})
	}
}

func TestDKIMSigning(t *testing.T) {
	h := newHarness(t, nil)
	priv, record, err := dkimkey.Generate(dkimkey.RSA, 2048)
	must(t, err)
	must(t, h.st.SaveDkimSigningConfig(context.Background(), &directory.DkimSigningConfig{OrgID: h.org.ID, Domain: "contoso.com",
		Enabled: true, Algorithm: dkimkey.RSA, KeySize: 2048, ActiveSelector: 2, Selector2KeySealed: h.seal(priv),
		Selector2PublicKey: record, Selector1KeySealed: h.seal(priv), Selector1PublicKey: record, KeyCreationTime: time.Now()}))
	h.reload()
	srv := h.mx("fabrikam.com", testsmtp.Config{})
	h.submit("sean@contoso.com", "a@fabrikam.com")
	msgs, err := srv.WaitMessages(1, 5*time.Second)
	must(t, err)
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(msgs[0].Data), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name != "selector2._domainkey.contoso.com" {
				return nil, fmt.Errorf("unexpected lookup %s", name)
			}
			return []string{record}, nil
		}})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil || verifs[0].Domain != "contoso.com" {
		t.Fatalf("signature does not verify: %v %+v\n%s", err, verifs, msgs[0].Data)
	}
}

func TestRemoveWithAndWithoutNDR(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Schedule.Min, c.Schedule.Max = time.Hour, time.Hour })
	h.dns.Fail("fabrikam.com")
	a := h.submit("sean@contoso.com", "a@fabrikam.com")
	b := h.submit("sean@contoso.com", "b@fabrikam.com")
	h.waitFor("both deferred", func() bool {
		qa, qb := h.queued(a.ID), h.queued(b.ID)
		return len(qa) == 1 && len(qb) == 1 && qa[0].Attempts == 1 && qb[0].Attempts == 1
	})
	must(t, h.q.Remove(context.Background(), h.queued(a.ID), true))
	must(t, h.q.Remove(context.Background(), h.queued(b.ID), false))
	if len(h.queued(a.ID))+len(h.queued(b.ID)) != 0 {
		t.Fatal("items still queued")
	}
	h.waitFor("one NDR", func() bool { return len(h.inbox()) == 1 })
	if !strings.Contains(h.body(h.inbox()[0]), "QUEUE.Admin") {
		t.Errorf("NDR does not say why:\n%s", h.body(h.inbox()[0]))
	}
	if h.eventCount(b.ID, store.EventDrop) != 1 || h.eventCount(a.ID, store.EventFail) != 1 {
		t.Errorf("events a=%+v b=%+v", h.events(a.ID), h.events(b.ID))
	}
}

func TestSchedule(t *testing.T) {
	s := Schedule{Min: time.Minute, Max: time.Hour}
	for _, tt := range []struct {
		attempts int
		base     time.Duration
	}{{1, time.Minute}, {2, 2 * time.Minute}, {3, 4 * time.Minute}, {7, time.Hour}, {50, time.Hour}} {
		lo, hi := s.Next(tt.attempts, 0), s.Next(tt.attempts, 0.999999)
		if lo != time.Duration(float64(tt.base)*0.8) || hi < time.Duration(float64(tt.base)*1.19) || hi > time.Duration(float64(tt.base)*1.2) {
			t.Errorf("attempt %d: range %v..%v around %v", tt.attempts, lo, hi, tt.base)
		}
	}
}

func TestRouteFor(t *testing.T) {
	oc := func(id int64, name string, domains ...string) *directory.OutboundConnector {
		return &directory.OutboundConnector{ID: id, OrgID: 1, Name: name, RecipientDomains: domains, SmartHosts: []string{"h"}, Enabled: true}
	}
	snap := directory.NewSnapshot(directory.Contents{Outbound: []*directory.OutboundConnector{
		oc(1, "All", "*"), oc(2, "Fabrikam", "*.fabrikam.com"), oc(3, "Sales", "sales.fabrikam.com"),
		{ID: 4, OrgID: 1, Name: "Off", RecipientDomains: []string{"off.example"}, Enabled: false},
		{ID: 5, OrgID: 2, Name: "Other org", RecipientDomains: []string{"tailspin.com"}, SmartHosts: []string{"h"}, Enabled: true},
	}})
	for _, tt := range []struct {
		domain, want string
	}{
		{"sales.fabrikam.com", "Sales"}, {"fabrikam.com", "Fabrikam"}, {"eu.fabrikam.com", "Fabrikam"},
		{"tailspin.com", "All"}, {"off.example", "All"}, {"FABRIKAM.COM", "Fabrikam"},
	} {
		if got := RouteFor(snap, 1, tt.domain).NextHop(); got != tt.want {
			t.Errorf("%s: routed by %s, want %s", tt.domain, got, tt.want)
		}
	}
	empty := directory.NewSnapshot(directory.Contents{})
	if r := RouteFor(empty, 1, "Fabrikam.com"); r.Connector != nil || r.NextHop() != "fabrikam.com" || r.DeliveryType() != "DnsConnectorDelivery" {
		t.Errorf("no connector: %+v", r)
	}
}

// BenchmarkDelivery measures outbound throughput: messages committed to the
// queue and delivered to a receiver on loopback, over reused connections,
// until the last outcome is durable (the queue is empty).
func BenchmarkDelivery(b *testing.B) {
	for _, perDest := range []int{1, 4} {
		b.Run(fmt.Sprintf("per_destination=%d", perDest), func(b *testing.B) {
			h := newHarness(b, func(c *Config) { c.PerDestination = perDest })
			srv, err := testsmtp.Start(testsmtp.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			h.connector(&directory.OutboundConnector{Name: "Bench", RecipientDomains: []string{"*"}, SmartHosts: []string{srv.Addr}})
			b.ResetTimer()
			// Eight submitters at once, as SMTP sessions commit: their
			// commits share fsyncs (group commit).
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < b.N; i += 8 {
						h.submit("sean@contoso.com", fmt.Sprintf("u%d@fabrikam.com", i))
					}
				}()
			}
			wg.Wait()
			if _, err := srv.WaitMessages(b.N, time.Minute); err != nil {
				b.Fatal(err)
			}
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
				items, err := h.st.QueueItems(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if len(items) == 0 {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("%d outcomes still unrecorded after a minute", len(items))
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			b.ReportMetric(float64(srv.Connections()), "connections")
		})
	}
}

// TestReconfigure: a reload's new MX port, schedule and worker count apply
// to the next attempts of mail already queued.
func TestReconfigure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var resolver *net.Resolver
	h := newHarness(t, func(c *Config) {
		c.MXPort = closed
		resolver = c.Resolver
	})
	fab := h.mx("fabrikam.com", testsmtp.Config{})
	sub := h.submit("sean@contoso.com", "a@fabrikam.com")
	h.waitFor("a deferral on the wrong port", func() bool { return h.eventCount(sub.ID, store.EventDefer) > 0 })

	h.q.Reconfigure(Tuning{Workers: 2, MXPort: h.port, Resolver: resolver,
		Schedule: Schedule{Min: 50 * time.Millisecond, Max: 100 * time.Millisecond, For: time.Hour}})
	if got := h.q.tuning(); got.Workers != 2 || got.PerDestination != 4 || got.MXPort != h.port {
		t.Fatalf("tuning %+v", got)
	}
	if _, err := fab.WaitMessages(1, 10*time.Second); err != nil {
		t.Fatalf("not delivered after the port changed: %v", err)
	}
	h.waitFor("the queue to empty", func() bool { return len(h.queued(sub.ID)) == 0 })
}

// A non-delivery report for a sender of the organization's own Authoritative
// domain that no mailbox holds (a scanner's address) has nowhere to go: it is
// dropped with a trace event, never sent out by MX.
func TestNDRToOwnUnknownAddressDropped(t *testing.T) {
	h := newHarness(t, nil)
	h.mx("fabrikam.com", testsmtp.Config{Reply: func(s testsmtp.Stage, _ string) string {
		if s == testsmtp.Rcpt {
			return "550 5.1.1 unknown"
		}
		return ""
	}})
	own := h.mx("contoso.com", testsmtp.Config{})
	sub := h.submit("scanner@contoso.com", "gone@fabrikam.com")
	h.waitFor("the drop", func() bool { return h.eventCount(sub.ID, store.EventDrop) == 1 })
	// The report would have been committed with the drop's event: nothing
	// is queued, nothing was sent to contoso.com's MX.
	if items, _ := h.st.QueueItems(context.Background()); len(items) != 0 {
		t.Errorf("queued: %+v", items)
	}
	if n := len(own.Messages()); n != 0 || h.eventCount(sub.ID, store.EventDSN) != 0 {
		t.Errorf("the report went out: %d messages at the MX, events %+v", n, h.events(sub.ID))
	}
	for _, e := range h.events(sub.ID) {
		if e.Event == store.EventDrop && (e.Recipient != "" || !strings.Contains(e.Detail, "non-delivery report to scanner@contoso.com dropped: no mailbox has this address of the Authoritative accepted domain contoso.com")) {
			t.Errorf("drop event %+v", e)
		}
	}
	// sean's own failures still reach his Inbox.
	sub2 := h.submit("sean@contoso.com", "gone@fabrikam.com")
	h.waitFor("sean's NDR", func() bool { return h.eventCount(sub2.ID, store.EventDSN) == 1 && len(h.inbox()) == 1 })
}
