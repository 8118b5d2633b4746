package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium; under CI=true its absence fails
// the test (.ci/run installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; .ci/run must install it")
	}
	t.Skip("chromium not installed")
	return ""
}

// browserContext starts headless Chromium for the test. It reaches only
// loopback: every other host name resolves to nothing, so the browser
// sends no DNS query and opens no connection off this machine. The
// server's certificate is its own self-signed one, hence the ignored
// certificate errors (loopback only).
func browserContext(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// The first call starts the browser, which lives as long as that
	// call's context: no deadline on it.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	return ctx
}

// screenshotDir is where the pages' screenshots go: $POSTERN_ARTIFACTS
// when set (CI keeps it), else a directory the test names in its log.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("POSTERN_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "postern-webadmin-screenshots")
	}
	dir = filepath.Join(dir, "webadmin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(dir, name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		buf, err := chromedp.FullScreenshot(100)(ctx, t)
		if err != nil {
			return chromedp.Void{}, err
		}
		return chromedp.Void{}, os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
	}
}

// TestWebAdminBrowser follows the seed documents' click paths in real
// Chromium against the real binary, and checks each change where it
// matters: with a real SMTP AUTH (swaks) and with the cmdlets.
func TestWebAdminBrowser(t *testing.T) {
	swaks := requireTool(t, "swaks")
	ctx := browserContext(t)
	shots := screenshotDir(t)
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	in.admin("New-Mailbox", "-Name", "sean", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Sean-Pass-1")
	in.admin("Add-RoleGroupMember", "-Identity", "Organization Management", "-Member", "sean@contoso.com")
	in.admin("New-Mailbox", "-Name", "vera", "-PrimarySmtpAddress", "vera@contoso.com", "-Password", "Vera-Pass-1")
	in.admin("Add-RoleGroupMember", "-Identity", "View-Only Organization Management", "-Member", "vera@contoso.com")
	// The copier's mailbox inherits the organization's setting: SMTP AUTH
	// off, as in a new Exchange Online tenant.
	in.admin("New-Mailbox", "-Name", "scanner", "-PrimarySmtpAddress", "scanner@contoso.com", "-Password", "Scan-Pass-1")
	in.admin("New-Mailbox", "-Name", "chris", "-PrimarySmtpAddress", "chris@contoso.com", "-Password", "Chris-Pass-1")
	in.start()
	base := "https://" + adminAddr

	smtpAuth := func(user, password string) string {
		c := dial(t, in.addrs["submission"])
		defer c.conn.Close()
		return c.login(in.tlsConfig(), user, password)
	}
	if got := smtpAuth("scanner@contoso.com", "Scan-Pass-1"); !strings.Contains(got, "5.7.139") {
		t.Fatalf("before: scanner's AUTH = %q, want the 5.7.139 refusal", got)
	}

	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		// The machine is shared and loaded: a generous deadline for each
		// step, never a fixed wait.
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			url, _ := chromedp.Run(cctx, chromedp.Location())
			body, _ := chromedp.Run(cctx, chromedp.OuterHTML(chromedp.CSS("body")))
			cancel()
			t.Fatalf("%s: %v\nat %s\n%s\nserver log:\n%s", step, err, url, body, in.log.String())
		}
	}
	signIn := func(user, password string) {
		t.Helper()
		run("sign in as "+user,
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), user),
			chromedp.SendKeys(chromedp.CSS("#password"), password),
			chromedp.Click(chromedp.CSS("#signin")),
			chromedp.WaitVisible(chromedp.CSS("#signout")),
		)
	}

	// Microsoft 365 admin center > Users > Active users > select the user
	// > Mail > Manage email apps > Authenticated SMTP > Save changes.
	run("sign-in page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#username")), screenshot(shots, "01-signin"))
	signIn("sean@contoso.com", "Sean-Pass-1")
	run("home", screenshot(shots, "02-home"))
	run("Active users",
		chromedp.Click(chromedp.CSS("#nav-active-users")),
		chromedp.WaitVisible(chromedp.CSS("#users-table")),
		chromedp.SendKeys(chromedp.CSS("#q"), "scanner"),
		chromedp.Click(chromedp.CSS(`form[role=search] button`)),
		chromedp.WaitNotPresent(chromedp.Search(`//td[text()="sean@contoso.com"]`)),
		chromedp.WaitVisible(chromedp.Search(`//a[text()="scanner"]`)),
		screenshot(shots, "03-active-users"),
		chromedp.Click(chromedp.Search(`//a[text()="scanner"]`)),
		chromedp.WaitVisible(chromedp.CSS("#flyout #tab-mail")),
		screenshot(shots, "04-user-flyout"),
		chromedp.Click(chromedp.CSS("#flyout #tab-mail")),
		chromedp.WaitVisible(chromedp.CSS("#flyout #manage-email-apps")),
		chromedp.Click(chromedp.CSS("#flyout #manage-email-apps")),
		chromedp.WaitVisible(chromedp.CSS("#save-changes")),
		screenshot(shots, "05-manage-email-apps"),
	)
	checked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("smtp").checked`))
	if err != nil {
		t.Fatal(err)
	}
	if checked {
		t.Fatal("Authenticated SMTP is checked for a mailbox that inherits the organization's off switch")
	}
	run("check Authenticated SMTP and save",
		chromedp.Click(chromedp.CSS("#smtp")),
		chromedp.Click(chromedp.CSS("#save-changes")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if out := in.shell("Get-CASMailbox -Identity scanner@contoso.com | Format-List SmtpClientAuthenticationDisabled"); !strings.Contains(out, "SmtpClientAuthenticationDisabled : False") {
		t.Fatalf("Get-CASMailbox after Save changes:\n%s", out)
	}
	// The copier sends, with swaks as the device guides do.
	host, port := hostPort(t, in.addrs["submission"])
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--tls", "--tls-verify", "--tls-ca-path", in.caFile(), "--tls-sni", "localhost",
		"--auth", "LOGIN", "--auth-user", "scanner@contoso.com", "--auth-password", "Scan-Pass-1",
		"--from", "scanner@contoso.com", "--to", "sean@contoso.com", "--header", "Subject: Scan from the copier").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "250 2.0.0") {
		t.Fatalf("swaks after enabling Authenticated SMTP: %v\n%s", err, out)
	}

	// Exchange admin center > Settings > Mail flow: turn SMTP AUTH on for
	// the organization (chris inherits it), then off again: 5.7.139.
	toggleOrg := func(step string) {
		run(step,
			chromedp.Click(chromedp.CSS("#nav-mailflow")),
			chromedp.WaitVisible(chromedp.CSS("#smtpAuthOff")),
			chromedp.Click(chromedp.CSS("#smtpAuthOff")),
			chromedp.Click(chromedp.CSS("#save-mailflow")),
			chromedp.WaitVisible(chromedp.CSS(".flash")),
		)
	}
	toggleOrg("turn SMTP AUTH on for the organization")
	if got := smtpAuth("chris@contoso.com", "Chris-Pass-1"); !strings.HasPrefix(got, "235") {
		t.Fatalf("chris with the organization's SMTP AUTH on: %q", got)
	}
	run("mail flow settings", screenshot(shots, "06-mail-flow-settings"))
	toggleOrg("turn SMTP AUTH off for the organization")
	if got := smtpAuth("chris@contoso.com", "Chris-Pass-1"); !strings.Contains(got, "5.7.139") || !strings.Contains(got, "disabled for the Tenant") {
		t.Fatalf("chris with the organization's SMTP AUTH off: %q, want the Tenant refusal", got)
	}
	if got := smtpAuth("scanner@contoso.com", "Scan-Pass-1"); !strings.HasPrefix(got, "235") {
		t.Fatalf("scanner's own setting must win over the organization's: %q", got)
	}

	// EAC > Mail flow > Connectors > + Add a connector: from your
	// organization's email server, by IP address; then relay through it.
	relay := func() string {
		c := dial(t, in.addrs["mx"])
		defer c.conn.Close()
		c.expect("EHLO copier.contoso.com", "250")
		return c.send("copier@contoso.com", []string{"bob@outside.example"}, message("copier@contoso.com", "bob@outside.example", "Relayed scan"))
	}
	if got := relay(); strings.HasPrefix(got, "250") {
		t.Fatalf("relay before the connector was accepted: %q", got)
	}
	run("Add a connector",
		chromedp.Click(chromedp.CSS("#nav-connectors")),
		chromedp.WaitVisible(chromedp.CSS("#add-connector")),
		chromedp.Click(chromedp.CSS("#add-connector")),
		chromedp.WaitVisible(chromedp.CSS("#from-server")),
		chromedp.Click(chromedp.CSS("#from-server")),
		screenshot(shots, "07-connector-wizard"),
		chromedp.Click(chromedp.CSS("#wizard-next")),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "Copier relay"),
		chromedp.Click(chromedp.CSS("#wizard-next")),
		chromedp.WaitVisible(chromedp.CSS("#by-ip")),
		chromedp.Click(chromedp.CSS("#by-ip")),
		chromedp.SendKeys(chromedp.CSS("#ips"), "127.0.0.1"),
		chromedp.Click(chromedp.CSS("#wizard-next")),
		chromedp.WaitVisible(chromedp.CSS("#requireTls")),
		chromedp.Click(chromedp.CSS("#wizard-next")),
		chromedp.WaitVisible(chromedp.CSS("#create-connector")),
		chromedp.Click(chromedp.CSS("#create-connector")),
		chromedp.WaitVisible(chromedp.Search(`//table[@id="connectors"]//a[text()="Copier relay"]`)),
		screenshot(shots, "08-connectors"),
	)
	if out := in.admin("Get-InboundConnector", "-Identity", "Copier relay"); !strings.Contains(out, "127.0.0.1/32") {
		t.Fatalf("Get-InboundConnector:\n%s", out)
	}
	if got := relay(); !strings.HasPrefix(got, "250") {
		t.Fatalf("relay through the new connector: %q", got)
	}

	// EAC > Mail flow > Message trace, and a message's detail.
	run("Message trace",
		chromedp.Navigate(base+"/exchange/messagetrace"),
		chromedp.WaitVisible(chromedp.CSS("#start-trace")),
		chromedp.SendKeys(chromedp.CSS("#sender"), "scanner@contoso.com"),
		chromedp.Click(chromedp.CSS("#start-trace")),
		chromedp.WaitVisible(chromedp.Search(`//table[@id="trace-results"]//a[text()="Scan from the copier"]`)),
		screenshot(shots, "09-message-trace"),
		chromedp.Click(chromedp.Search(`//table[@id="trace-results"]//a[text()="Scan from the copier"]`)),
		chromedp.WaitVisible(chromedp.Search(`//table[@id="trace-events"]//td[text()="RECEIVE"]`)),
		screenshot(shots, "10-message-trace-detail"),
	)

	// The "Run tests" diagnostics for chris, whose SMTP AUTH is off again.
	run("Run tests",
		chromedp.Navigate(base+"/admin/troubleshoot"),
		chromedp.WaitVisible(chromedp.CSS("#identity")),
		chromedp.SendKeys(chromedp.CSS("#identity"), "chris@contoso.com"),
		chromedp.Click(chromedp.CSS("#run-tests")),
		chromedp.WaitVisible(chromedp.CSS("#test-results")),
		screenshot(shots, "11-run-tests"),
	)
	results, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#test-results")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(results, "cannot send") || !strings.Contains(results, "Set-TransportConfig") && !strings.Contains(results, "Set-CASMailbox") {
		t.Errorf("Run tests for chris:\n%s", results)
	}

	// Settings > Domains: the records to publish.
	run("Domains",
		chromedp.Navigate(base+"/admin/settings/domains/contoso.com"),
		chromedp.WaitVisible(chromedp.CSS("#dns-records")),
		screenshot(shots, "12-domain"),
	)

	// A View-Only admin sees the settings but no control that changes them.
	run("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#username")))
	signIn("vera@contoso.com", "Vera-Pass-1")
	run("View-Only pages",
		chromedp.Navigate(base+"/exchange/settings/mailflow"),
		chromedp.WaitVisible(chromedp.CSS("#smtpAuthOff")),
		screenshot(shots, "13-view-only-mail-flow"),
	)
	controls, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#save-mailflow, #add-connector, #save-changes").length`))
	if err != nil {
		t.Fatal(err)
	}
	if controls != 0 {
		t.Errorf("View-Only sees %d change controls", controls)
	}
	t.Logf("screenshots in %s", shots)
}
