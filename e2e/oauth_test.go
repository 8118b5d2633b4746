package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/testidp"
)

const m365Audience = "https://outlook.office365.com"

// oauthInstance is an instance that trusts a loopback identity provider,
// with sean (a user), info (shared; sean has FullAccess) and scanner
// (granted to the application app-1).
func oauthInstance(t *testing.T) (*instance, *testidp.IdP) {
	t.Helper()
	idp, err := testidp.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	// The identity provider is plain http on loopback: allowed only with
	// the server-level test setting, for the server and for cmdlets run
	// while it is stopped.
	in := newInstance(t, "--allow-insecure-http-loopback")
	in.mailbox("sean", "Sean-Pass-1")
	in.mailbox("scanner", "Scan-Pass-1")
	in.admin("New-Mailbox", "-Name", "info", "-PrimarySmtpAddress", "info@contoso.com", "-Shared")
	in.admin("Set-CASMailbox", "-Identity", "info@contoso.com", "-SmtpClientAuthenticationDisabled", "$false")
	in.admin("--allow-insecure-http-loopback", "New-AuthServer", "-Name", "Test IdP", "-AuthMetadataUrl", idp.MetadataURL, "-Audience", m365Audience)
	in.admin("New-ServicePrincipal", "-AppId", "app-1", "-ObjectId", "obj-1", "-DisplayName", "Scan to mail")
	in.admin("Add-MailboxPermission", "-Identity", "scanner@contoso.com", "-User", "obj-1", "-AccessRights", "FullAccess")
	in.admin("Add-MailboxPermission", "-Identity", "info@contoso.com", "-User", "sean@contoso.com", "-AccessRights", "FullAccess")
	return in, idp
}

func userToken(idp *testidp.IdP, user string) string {
	return idp.Token(testidp.Claims{"aud": m365Audience, "scp": "SMTP.Send", "upn": user})
}

func appToken(idp *testidp.IdP) string {
	return idp.Token(testidp.Claims{"aud": m365Audience, "roles": []string{"SMTP.SendAsApp"}, "appid": "app-1"})
}

// TestOAuthWithRealClients: msmtp (XOAUTH2 and OAUTHBEARER) and curl
// (OAUTHBEARER) sign in with tokens from the identity provider.
func TestOAuthWithRealClients(t *testing.T) {
	msmtp := requireTool(t, "msmtp")
	curl := requireTool(t, "curl")
	in, idp := oauthInstance(t)
	in.start()
	host, port := hostPort(t, in.addrs["submission"])
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(userToken(idp, "sean@contoso.com")), 0o600)
	msg := filepath.Join(dir, "msg.eml")
	os.WriteFile(msg, []byte("From: sean@contoso.com\r\nTo: chris@fabrikam.example\r\nSubject: token mail\r\n\r\nSent with a token.\r\n"), 0o600)

	for _, mech := range []string{"xoauth2", "oauthbearer"} {
		cmd := exec.Command(msmtp, "--host="+host, "--port="+port, "--tls=on", "--tls-starttls=on", "--tls-trust-file="+in.caFile(),
			"--auth="+mech, "--user=sean@contoso.com", "--passwordeval=cat "+tokenFile, "--from=sean@contoso.com", "chris@fabrikam.example")
		cmd.Stdin, _ = os.Open(msg)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("msmtp --auth=%s: %v\n%s", mech, err, out)
		}
	}
	out, err := exec.Command(curl, "-sS", "--url", "smtp://"+in.addrs["submission"], "--ssl-reqd", "--cacert", in.caFile(),
		"--user", "sean@contoso.com", "--oauth2-bearer", userToken(idp, "sean@contoso.com"),
		"--mail-from", "sean@contoso.com", "--mail-rcpt", "chris@fabrikam.example", "--upload-file", msg).CombinedOutput()
	if err != nil {
		t.Errorf("curl: %v\n%s", err, out)
	}

	// A bad token: msmtp answers the JSON challenge and gets the 535.
	os.WriteFile(tokenFile, []byte(idp.Token(testidp.Claims{"aud": "api://someone-else", "scp": "SMTP.Send", "upn": "sean@contoso.com"})), 0o600)
	cmd := exec.Command(msmtp, "--host="+host, "--port="+port, "--tls=on", "--tls-starttls=on", "--tls-trust-file="+in.caFile(),
		"--auth=xoauth2", "--user=sean@contoso.com", "--passwordeval=cat "+tokenFile, "--from=sean@contoso.com", "chris@fabrikam.example")
	cmd.Stdin, _ = os.Open(msg)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "535 5.7.3 Authentication unsuccessful") {
		t.Errorf("msmtp with a wrong-audience token: %v\n%s", err, out)
	}
	if !strings.Contains(in.log.String(), "token audience is not the AuthServer's Audience") {
		t.Errorf("the reason is not in the log:\n%s", in.log.String())
	}
	if strings.Contains(in.log.String(), "eyJ") {
		t.Error("a token was written to the log")
	}
	if n := strings.Count(in.shell("Get-QueueMessage | Format-Table Recipient"), "chris@fabrikam.example"); n != 3 {
		t.Errorf("%d messages queued, want 3", n)
	}
}

// TestOAuthDecisions drives AUTH with a raw client to see the exact replies.
func TestOAuthDecisions(t *testing.T) {
	in, idp := oauthInstance(t)
	in.admin("New-AuthenticationPolicy", "-Name", "Block Basic")
	in.admin("Set-User", "-Identity", "sean@contoso.com", "-AuthenticationPolicy", "Block Basic")
	in.start()
	// Each attempt comes from its own loopback address, so the failed-AUTH
	// throttle (per client address) does not slow the table down.
	next := 10
	xoauth2 := func(user, token string) string {
		next++
		c := dialFrom(t, fmt.Sprintf("127.0.1.%d", next), in.addrs["submission"])
		c.expect("EHLO device", "250")
		c.startTLS(in.tlsConfig())
		ehlo := c.expect("EHLO device", "250")
		if !strings.Contains(ehlo, "XOAUTH2 OAUTHBEARER") {
			t.Fatalf("EHLO: %s", ehlo)
		}
		got := c.do("AUTH XOAUTH2 " + base64.StdEncoding.EncodeToString([]byte("user="+user+"\x01auth=Bearer "+token+"\x01\x01")))
		if strings.HasPrefix(got, "334 ") {
			got = c.do("")
		}
		return got
	}
	ok := "235 "
	failed := "535 5.7.3 Authentication unsuccessful"
	hour := time.Hour
	for _, tt := range []struct {
		name, user, token, want string
	}{
		{"user token (Basic blocked by policy, OAuth not)", "sean@contoso.com", userToken(idp, "sean@contoso.com"), ok},
		{"delegate of the shared mailbox", "info@contoso.com", userToken(idp, "sean@contoso.com"), ok},
		{"user as another user", "scanner@contoso.com", userToken(idp, "sean@contoso.com"), failed},
		{"application for its granted mailbox", "scanner@contoso.com", appToken(idp), ok},
		{"application for a mailbox not granted", "sean@contoso.com", appToken(idp), failed},
		{"expired", "sean@contoso.com", idp.Token(testidp.Claims{"aud": m365Audience, "scp": "SMTP.Send", "upn": "sean@contoso.com", "exp": time.Now().Add(-hour).Unix()}), failed},
		{"not yet valid", "sean@contoso.com", idp.Token(testidp.Claims{"aud": m365Audience, "scp": "SMTP.Send", "upn": "sean@contoso.com", "nbf": time.Now().Add(hour).Unix()}), failed},
		{"wrong issuer", "sean@contoso.com", idp.Token(testidp.Claims{"iss": "https://login.evil.example/", "aud": m365Audience, "scp": "SMTP.Send", "upn": "sean@contoso.com"}), failed},
		{"signed by an unknown key", "sean@contoso.com", idp.Unpublished(testidp.Claims{"aud": m365Audience, "scp": "SMTP.Send", "upn": "sean@contoso.com"}, "k1"), failed},
		{"alg none", "sean@contoso.com", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+idp.URL+`","aud":"`+m365Audience+`","scp":"SMTP.Send","upn":"sean@contoso.com","exp":9999999999}`)) + ".", failed},
		{"no SMTP.Send scope", "sean@contoso.com", idp.Token(testidp.Claims{"aud": m365Audience, "scp": "Mail.Read", "upn": "sean@contoso.com"}), failed},
		{"garbage", "sean@contoso.com", "not-a-token", failed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := xoauth2(tt.user, tt.token); !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	// Basic for sean is blocked by his policy; OAuth passed above.
	c := dial(t, in.addrs["submission"])
	if got := c.login(in.tlsConfig(), "sean@contoso.com", "Sean-Pass-1"); !strings.HasPrefix(got, "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.") {
		t.Errorf("Basic with a blocking policy: %s", got)
	}

	// Basic off for the whole organization: EHLO offers only tokens, and
	// a password gets Exchange's post-retirement reply.
	in.admin("Set-TransportConfig", "-SmtpBasicAuthDisabled", "$true")
	c = dial(t, in.addrs["submission"])
	c.expect("EHLO device", "250")
	c.startTLS(in.tlsConfig())
	if ehlo := c.expect("EHLO device", "250"); !strings.Contains(ehlo, "AUTH XOAUTH2 OAUTHBEARER") || strings.Contains(ehlo, "PLAIN") {
		t.Errorf("EHLO with Basic off: %s", ehlo)
	}
	if got := c.do("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00scanner@contoso.com\x00Scan-Pass-1"))); got != "550 5.7.30 Basic authentication is not supported for Client Submission." {
		t.Errorf("PLAIN with Basic off: %q", got)
	}
	idp.Down(false)
	if got := xoauth2("scanner@contoso.com", appToken(idp)); !strings.HasPrefix(got, ok) {
		t.Errorf("OAuth with Basic off: %q", got)
	}

	// An identity provider that is down, met by a freshly started server
	// (no keys cached): a token gets a temporary failure, quickly.
	in.stop()
	in.start()
	idp.Down(true)
	if err := idp.Rotate(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if got := xoauth2("sean@contoso.com", userToken(idp, "sean@contoso.com")); !strings.HasPrefix(got, "454 4.7.0 Temporary authentication failure") {
		t.Errorf("IdP down: %q", got)
	}
	if time.Since(start) > 6*time.Second {
		t.Errorf("IdP down: the reply took %v", time.Since(start))
	}
}

// TestSmtpAuthClientReport: the report shows who still signs in with a
// password, before an admin turns Basic off.
func TestSmtpAuthClientReport(t *testing.T) {
	py := requireTool(t, "python3")
	in, idp := oauthInstance(t)
	in.start()
	host, port := hostPort(t, in.addrs["submission"])
	script := `import smtplib, ssl, sys
host, port, ca, token = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
def send(auth, user):
    with smtplib.SMTP(host, int(port)) as s:
        s.starttls(context=ctx)
        s.ehlo()
        auth(s)
        s.sendmail(user, [user], ("From: %s\r\nSubject: r\r\n\r\nx\r\n" % user).encode())
send(lambda s: s.login("sean@contoso.com", "Sean-Pass-1"), "sean@contoso.com")
send(lambda s: s.login("sean@contoso.com", "Sean-Pass-1"), "sean@contoso.com")
send(lambda s: s.auth("XOAUTH2", lambda c=None: "user=scanner@contoso.com\x01auth=Bearer " + token + "\x01\x01", initial_response_ok=True), "scanner@contoso.com")
print("sent")
`
	out, err := exec.Command(py, "-c", script, host, port, in.caFile(), appToken(idp)).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	report := in.shell("Get-SmtpAuthClientReport | Format-Table SenderAddress,MessagesSent,TLS13,AuthenticationProtocol")
	for _, want := range []string{"sean@contoso.com", "scanner@contoso.com", "Basic", "OAuth", "100.0%"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	for _, l := range lines(report) {
		if strings.HasPrefix(l, "sean@") && (!strings.Contains(l, " 2 ") || !strings.HasSuffix(l, "Basic")) {
			t.Errorf("sean's line: %q", l)
		}
		if strings.HasPrefix(l, "scanner@") && !strings.HasSuffix(l, "OAuth") {
			t.Errorf("scanner's line: %q", l)
		}
	}
}
