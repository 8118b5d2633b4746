package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"postern.dev/postern/internal/testdns"
	"postern.dev/postern/internal/testsmtp"
)

// outside is the Internet as an end-to-end test sees it: a loopback DNS
// server with MX records, and a receiver on loopback for fabrikam.example.
type outside struct {
	dns *testdns.Server
	mx  *testsmtp.Server
}

func newOutside(t *testing.T, cfg testsmtp.Config) *outside {
	t.Helper()
	mx, err := testsmtp.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dns, err := testdns.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	dns.SetMX("fabrikam.example", "mx.fabrikam.example")
	dns.SetIP("mx.fabrikam.example", "127.0.0.1")
	t.Cleanup(func() { mx.Close(); dns.Close() })
	return &outside{dns: dns, mx: mx}
}

// flags point an instance's resolver and MX port at the outside.
func (o *outside) flags(t *testing.T) []string {
	_, port := hostPort(t, o.mx.Addr)
	return []string{"--resolver", o.dns.Addr, "--delivery-mx-port", port}
}

// TestOutboundDelivery: a scanner sends with swaks to an outside domain;
// Postern signs with DKIM and delivers by MX; the signature verifies with
// an independent verifier (dkimpy); a refused recipient comes back to the
// scanner as an RFC 3464 non-delivery report; every step is in the trace.
func TestOutboundDelivery(t *testing.T) {
	swaks := requireTool(t, "swaks")
	o := newOutside(t, testsmtp.Config{Reply: func(s testsmtp.Stage, arg string) string {
		if s == testsmtp.Rcpt && strings.HasPrefix(arg, "gone@") {
			return "550 5.1.1 gone@fabrikam.example: recipient rejected"
		}
		return ""
	}})
	in := newInstance(t, o.flags(t)...)
	scanner := in.mailbox("scanner", "Scan-Pass-1")
	in.admin("New-DkimSigningConfig", "-DomainName", "contoso.com", "-Enabled", "$true")
	cfg := in.shell("Get-DkimSigningConfig -Identity contoso.com | Format-List *")
	for _, want := range []string{"Selector1CNAME", "selector1._domainkey.contoso.com", "Selector2PublicKey", "v=DKIM1; k=rsa; p=", "Enabled", "True"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("Get-DkimSigningConfig lacks %q:\n%s", want, cfg)
		}
	}
	record := fieldValue(cfg, "Selector1PublicKey")
	in.start()

	host, port := hostPort(t, in.addrs["submission"])
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--tls", "--tls-verify", "--tls-ca-path", in.caFile(),
		"--tls-sni", "localhost", "--auth", "LOGIN", "--auth-user", scanner, "--auth-password", "Scan-Pass-1",
		"--from", scanner, "--to", "bob@fabrikam.example,gone@fabrikam.example", "--header", "Subject: Scanned document").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	msgs, err := o.mx.WaitMessages(1, 15*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, in.log.String())
	}
	if len(msgs[0].To) != 1 || msgs[0].To[0] != "bob@fabrikam.example" || msgs[0].From != scanner {
		t.Errorf("receiver got %+v", msgs[0])
	}

	// An independent DKIM verifier: dkimpy, with the record Get-DkimSigningConfig shows.
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil || exec.Command(py, "-c", "import dkim").Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3-dkim is not installed; .ci/run must install it")
		}
		t.Log("python3-dkim not installed: skipping the independent DKIM check")
	} else {
		msgFile := filepath.Join(t.TempDir(), "msg.eml")
		os.WriteFile(msgFile, msgs[0].Data, 0o600)
		script := `import dkim, sys
record = sys.argv[2].encode()
def dns(name, timeout=5):
    assert name == b"selector1._domainkey.contoso.com.", name
    return record
print("verified" if dkim.verify(open(sys.argv[1], "rb").read(), dnsfunc=dns) else "FAILED")
`
		out, err := exec.Command(py, "-c", script, msgFile, record).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "verified" {
			t.Errorf("dkimpy: %v\n%s\n%s", err, out, msgs[0].Data)
		}
	}

	// The refused recipient: an NDR in the scanner's Inbox.
	deadline := time.Now().Add(15 * time.Second)
	for in.folderCount(scanner, "Inbox") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no NDR in the scanner's Inbox\n%s", in.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := in.deliveredHeader(t, scanner, "Scan-Pass-1", "Inbox", "Subject"); got != "Undeliverable: Scanned document" {
		t.Errorf("NDR subject %q", got)
	}
	if got := in.deliveredHeader(t, scanner, "Scan-Pass-1", "Inbox", "Content-Type"); !strings.Contains(got, "report-type=delivery-status") {
		t.Errorf("NDR Content-Type %q", got)
	}

	// The trace, as Get-MessageTraceDetail shows it.
	trace := in.trace(t, "Scanned document")
	for _, want := range []string{"RECEIVE ", "SEND bob@fabrikam.example", "FAIL gone@fabrikam.example", "DSN gone@fabrikam.example"} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}
	if q := in.shell("Get-QueueMessage | Format-Table Recipient"); strings.Contains(q, "fabrikam") {
		t.Errorf("delivered mail still queued:\n%s", q)
	}
}

// fieldValue reads "Name : value" from Format-List output.
func fieldValue(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// trace lists a message's trace events as "EVENT recipient | detail"
// lines, read with Get-MessageTrace and Get-MessageTraceDetail as an
// admin would (not from the store's tables, which may change).
func (in *instance) trace(t *testing.T, subject string) string {
	t.Helper()
	var b strings.Builder
	rows := formatList(in.shell(fmt.Sprintf("Get-MessageTrace -Subject '%s' | Format-List RecipientAddress,MessageTraceId", subject)))
	for _, row := range rows {
		for _, ev := range formatList(in.shell(fmt.Sprintf("Get-MessageTraceDetail -MessageTraceId %s -RecipientAddress %s | Format-List Event,Detail",
			row["MessageTraceId"], row["RecipientAddress"]))) {
			fmt.Fprintf(&b, "%s %s | %s\n", ev["Event"], row["RecipientAddress"], ev["Detail"])
		}
	}
	return b.String()
}

// formatList reads Format-List output: one map per object, "Name : value"
// lines, objects separated by blank lines; a line without " : " continues
// the value before it.
func formatList(out string) []map[string]string {
	var objs []map[string]string
	var cur map[string]string
	last := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == "" {
			cur = nil
			continue
		}
		if cur == nil {
			cur = map[string]string{}
			objs = append(objs, cur)
		}
		if k, v, ok := strings.Cut(l, " : "); ok && !strings.HasPrefix(l, " ") {
			last = strings.TrimSpace(k)
			cur[last] = strings.TrimSpace(v)
		} else if last != "" {
			cur[last] += " " + strings.TrimSpace(l)
		}
	}
	return objs
}

// TestSmartHostOAuth is the Basic-auth bridge: a device signs in to Postern
// with a password (python3's smtplib), and Postern relays through a smart
// host with XOAUTH2 and a client-credentials token, as Microsoft 365
// requires once Basic authentication is retired.
func TestSmartHostOAuth(t *testing.T) {
	py := requireTool(t, "python3")
	var tokens atomic.Int32
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("client_secret") != "Client-Secret-42" || r.Form.Get("scope") != "https://outlook.office365.com/.default" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "eyJ.m365.token", "token_type": "Bearer", "expires_in": 3599})
	}))
	defer idp.Close()
	tlsCfg, _, err := testsmtp.SelfSignedTLS("smtp.office365.test")
	if err != nil {
		t.Fatal(err)
	}
	relay, err := testsmtp.Start(testsmtp.Config{TLS: tlsCfg, AuthMechanisms: []string{"LOGIN", "XOAUTH2"}, RequireAuth: true,
		CheckAuth: func(mech, user, tok string) bool {
			return mech == "XOAUTH2" && user == "relay@contoso.com" && tok == "eyJ.m365.token"
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	// The token endpoint is plain http on loopback: the test setting.
	in := newInstance(t, "--allow-insecure-http-loopback")
	app := in.mailbox("app", "App-Pass-1")
	in.admin("--allow-insecure-http-loopback", "New-OutboundConnector", "-Name", "Microsoft 365", "-RecipientDomains", "*", "-SmartHosts", relay.Addr,
		"-UseMXRecord", "$false", "-TlsSettings", "EncryptionOnly", "-AuthMechanism", "XOAUTH2", "-SmtpUser", "relay@contoso.com",
		"-OAuthTokenEndpoint", idp.URL+"/tenant/oauth2/v2.0/token", "-OAuthClientId", "00000000-app", "-OAuthClientSecret", "Client-Secret-42",
		"-OAuthScope", "https://outlook.office365.com/.default")
	shown := in.shell("Get-OutboundConnector | Format-List *")
	if strings.Contains(shown, "Client-Secret-42") || !strings.Contains(shown, "OAuthClientSecretSet") || !strings.Contains(shown, "XOAUTH2") {
		t.Errorf("Get-OutboundConnector:\n%s", shown)
	}
	db, _ := os.ReadFile(filepath.Join(in.data, "postern.db"))
	wal, _ := os.ReadFile(filepath.Join(in.data, "postern.db-wal"))
	if strings.Contains(string(db)+string(wal), "Client-Secret-42") {
		t.Error("the client secret is stored in plain text")
	}
	in.start()
	host, port := hostPort(t, in.addrs["submission"])
	script := `import smtplib, ssl, sys
host, port, ca, user, pw = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
for i in range(3):
    with smtplib.SMTP(host, int(port)) as s:
        s.starttls(context=ctx)
        s.login(user, pw)
        s.sendmail(user, ["someone@partner.example"], ("From: %s\r\nTo: someone@partner.example\r\nSubject: report %d\r\n\r\nbody\r\n" % (user, i)).encode())
print("sent")
`
	out, err := exec.Command(py, "-c", script, host, port, in.caFile(), app, "App-Pass-1").CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	msgs, err := relay.WaitMessages(3, 15*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, in.log.String())
	}
	for _, m := range msgs {
		if m.AuthMech != "XOAUTH2" || m.AuthUser != "relay@contoso.com" || !m.TLS {
			t.Errorf("smart host saw %+v", m)
		}
	}
	if n := tokens.Load(); n != 1 {
		t.Errorf("%d token requests for 3 messages: want one, cached", n)
	}
}

// TestQueueSurvivesSIGKILL: mail accepted while the destination is down
// stays queued across a SIGKILL and is delivered exactly once after the
// restart, when Retry-Queue asks for it.
func TestQueueSurvivesSIGKILL(t *testing.T) {
	// The MX host's port is reserved but nothing listens yet.
	addr := freeAddr(t)
	dns, err := testdns.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	dns.SetMX("fabrikam.example", "mx.fabrikam.example")
	dns.SetIP("mx.fabrikam.example", "127.0.0.1")
	_, port := hostPort(t, addr)
	in := newInstance(t, "--resolver", dns.Addr, "--delivery-mx-port", port)
	sender := in.mailbox("app", "App-Pass-1")
	in.start()

	const n = 20
	c := dial(t, in.addrs["submission"])
	c.login(in.tlsConfig(), sender, "App-Pass-1")
	for i := range n {
		if got := c.send(sender, []string{fmt.Sprintf("u%d@fabrikam.example", i)}, message(sender, "u@fabrikam.example", fmt.Sprint("crash ", i))); !strings.HasPrefix(got, "250 ") {
			t.Fatalf("send %d: %s", i, got)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(in.shell("Get-QueueMessage | Format-Table Recipient,Status"), "Retry") < n {
		if time.Now().After(deadline) {
			t.Fatalf("messages not deferred:\n%s", in.shell("Get-QueueMessage | Format-List *"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if q := in.shell("Get-Queue | Format-List *"); !strings.Contains(q, "fabrikam.example") || !strings.Contains(q, "refused") {
		t.Errorf("Get-Queue does not show the cause:\n%s", q)
	}
	in.kill()

	mx, err := testsmtp.StartOn(addr, testsmtp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mx.Close()
	in.start()
	in.admin("Retry-Queue", "-Identity", "fabrikam.example")
	msgs, err := mx.WaitMessages(n, 20*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, in.log.String())
	}
	time.Sleep(500 * time.Millisecond)
	seen := map[string]bool{}
	for _, m := range mx.Messages() {
		if seen[m.To[0]] {
			t.Errorf("%s delivered twice", m.To[0])
		}
		seen[m.To[0]] = true
	}
	if len(seen) != n || len(msgs) < n {
		t.Errorf("%d distinct recipients delivered, want %d", len(seen), n)
	}
}

// TestQueueAndConnectorCmdlets: the admin side of delivery, with the
// errors an admin sees.
func TestQueueAndConnectorCmdlets(t *testing.T) {
	in := newInstance(t)
	sender := in.mailbox("app", "App-Pass-1")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"New-OutboundConnector", "-Name", "X", "-UseMXRecord", "$false"}, "SmartHosts must be given when UseMXRecord is $false"},
		{[]string{"New-OutboundConnector", "-Name", "X", "-SmartHosts", "bad host!", "-UseMXRecord", "$false"}, "SmartHosts"},
		{[]string{"New-OutboundConnector", "-Name", "X", "-TlsSettings", "Sometimes"}, "does not belong to the set"},
		{[]string{"New-OutboundConnector", "-Name", "X", "-SmartHosts", "smtp.example", "-UseMXRecord", "$false", "-AuthMechanism", "Basic"}, "needs SmtpUser and SmtpPassword"},
		{[]string{"New-DkimSigningConfig", "-DomainName", "fabrikam.example", "-Enabled", "$true"}, "isn't an accepted domain"},
		{[]string{"Remove-QueueMessage", "-Identity", "12345"}, "couldn't be found"},
	} {
		out, err := in.try(tt.args...)
		if err == nil || !strings.Contains(out, tt.want) {
			t.Errorf("%v: err %v, output lacks %q:\n%s", tt.args, err, tt.want, out)
		}
	}
	in.admin("New-OutboundConnector", "-Name", "Partner", "-RecipientDomains", "*.partner.example", "-SmartHosts", "[::1]:1,127.0.0.9:1", "-UseMXRecord", "$false")
	got := in.shell("Get-OutboundConnector -Identity Partner | Format-List Name,RecipientDomains,SmartHosts,UseMXRecord,TlsSettings")
	for _, want := range []string{"*.partner.example", "[::1]:1", "127.0.0.9:1", "False"} {
		if !strings.Contains(got, want) {
			t.Errorf("Get-OutboundConnector lacks %q:\n%s", want, got)
		}
	}
	in.admin("New-DkimSigningConfig", "-DomainName", "contoso.com", "-Enabled", "$true", "-KeySize", "1024")
	before := fieldValue(in.shell("Get-DkimSigningConfig contoso.com | Format-List *"), "Selector1PublicKey")
	in.admin("Rotate-DkimSigningConfig", "-Identity", "contoso.com")
	after := in.shell("Get-DkimSigningConfig contoso.com | Format-List *")
	if fieldValue(after, "SelectorAfterRotateOnDate") != "selector2" || fieldValue(after, "Selector1PublicKey") == before {
		t.Errorf("after rotation (selector1 key was %s):\n%s", before, after)
	}

	// Queue: mail for the partner waits (nothing listens at its smart
	// hosts, both on loopback); Remove-QueueMessage -WithNDR $false drops it.
	in.start()
	c := dial(t, in.addrs["submission"])
	c.login(in.tlsConfig(), sender, "App-Pass-1")
	c.send(sender, []string{"x@eu.partner.example"}, message(sender, "x@eu.partner.example", "to partner"))
	var id string
	deadline := time.Now().Add(10 * time.Second)
	for id == "" {
		out := in.shell("Get-QueueMessage -Queue Partner | Format-Table Identity")
		for _, l := range lines(out) {
			if strings.Contains(l, `\Partner\`) {
				id = l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no queued message in the Partner queue:\n%s", in.shell("Get-QueueMessage | Format-List *"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if q := in.shell("Get-Queue -Identity Partner | Format-List DeliveryType,NextHopDomain,MessageCount"); !strings.Contains(q, "SmartHostConnectorDelivery") {
		t.Errorf("Get-Queue:\n%s", q)
	}
	in.admin("Remove-QueueMessage", "-Identity", id, "-WithNDR", "$false")
	if out := in.shell("Get-QueueMessage | Format-Table Identity"); strings.Contains(out, "Partner") {
		t.Errorf("still queued:\n%s", out)
	}
	if n := in.folderCount(sender, "Inbox"); n != 0 {
		t.Errorf("-WithNDR $false sent an NDR")
	}
}
