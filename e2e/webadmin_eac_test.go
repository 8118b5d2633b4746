package e2e

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWebAdminEACBrowser drives the remaining Exchange admin center pages
// in real Chromium against the real binary and checks each change with
// the cmdlets: Mail flow > Queues (Retry, then Remove without NDR),
// Security > DKIM (create the keys, enable), Security > API keys (create:
// the key shown once works against the REST API). Then it looks at the
// pages on a 390-pixel-wide phone screen: nothing wider than the screen,
// the navigation folded behind Menu, and screenshots of each.
func TestWebAdminEACBrowser(t *testing.T) {
	ctx := browserContext(t)
	shots := screenshotDir(t)
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.admin("Add-RoleGroupMember", "-Identity", "Organization Management", "-Member", sean)
	in.start()
	base := "https://" + adminAddr

	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
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
	eval := func(expr string) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	// eventually polls a cmdlet's output for a condition, generously: the
	// machine is shared and loaded.
	eventually := func(what, script string, cond func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			out := in.shell(script)
			if cond(out) {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: never true; last:\n%s\nserver log:\n%s", what, out, in.log.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// A message for outside waits in the queue: the test resolver knows
	// no MX for outside.example.
	c := dial(t, in.addrs["submission"])
	c.login(in.tlsConfig(), sean, "Sean-Pass-1")
	if got := c.send(sean, []string{"bob@outside.example"}, message(sean, "bob@outside.example", "Waiting in the queue")); !strings.HasPrefix(got, "250 ") {
		t.Fatal(got)
	}
	c.conn.Close()
	retryCount := regexp.MustCompile(`RetryCount\s*:\s*(\d+)`)
	countOf := func(out string) int {
		m := retryCount.FindStringSubmatch(out)
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	out := eventually("the message waits for a retry", "Get-QueueMessage | Format-List Status,RetryCount", func(s string) bool { return strings.Contains(s, "Retry") && countOf(s) >= 1 })
	before := countOf(out)

	run("sign in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), sean),
		chromedp.SendKeys(chromedp.CSS("#password"), "Sean-Pass-1"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#signout")),
	)

	// Exchange admin center > Mail flow > Queues > Retry.
	run("Mail flow > Queues > Retry",
		chromedp.Click(chromedp.CSS("#nav-queues")),
		chromedp.WaitVisible(chromedp.CSS(`[data-retry-queue]`)),
		chromedp.WaitVisible(chromedp.Search(`//td[text()="bob@outside.example"]`)),
		screenshot(shots, "eac-01-queues"),
		chromedp.Click(chromedp.CSS(`[data-retry-queue]`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if out := in.shell("Search-AdminAuditLog -Cmdlets Retry-Queue | Format-List Caller,Succeeded"); !strings.Contains(out, sean+" (admin center)") || !strings.Contains(out, "True") {
		t.Errorf("Retry-Queue is not in the audit log under sean's name:\n%s", out)
	}
	eventually("Retry-Queue makes another attempt", "Get-QueueMessage | Format-List RetryCount", func(s string) bool { return countOf(s) > before })

	// ... > Remove (without NDR).
	run("Mail flow > Queues > Remove (without NDR)",
		chromedp.Navigate(base+"/exchange/queues"),
		chromedp.WaitVisible(chromedp.CSS(`[data-remove-message]`)),
		chromedp.SetValue(chromedp.CSS("#ndr-0"), "false"),
		chromedp.Click(chromedp.CSS(`[data-remove-message]`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
		chromedp.WaitVisible(chromedp.Search(`//td[text()="No queued messages."]`)),
	)
	if out := in.shell("Get-QueueMessage | Format-List Recipient"); strings.Contains(out, "bob@outside.example") {
		t.Errorf("the message is still queued:\n%s", out)
	}
	if out := in.shell("Search-AdminAuditLog -Cmdlets Remove-QueueMessage | Format-List CmdletParameters,Succeeded"); !strings.Contains(out, "-WithNDR $false") || !strings.Contains(out, "True") {
		t.Errorf("Remove-QueueMessage without NDR is not in the audit log:\n%s", out)
	}

	// Security > DKIM: create the keys, then enable signing.
	run("Security > DKIM > Create DKIM keys > Enable",
		chromedp.Click(chromedp.CSS("#nav-dkim")),
		chromedp.WaitVisible(chromedp.CSS(`[data-dkim-create="contoso.com"]`)),
		chromedp.Click(chromedp.CSS(`[data-dkim-create="contoso.com"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-dkim-enable="contoso.com"]`)),
		chromedp.Click(chromedp.CSS(`[data-dkim-enable="contoso.com"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-dkim-disable="contoso.com"]`)),
		screenshot(shots, "eac-02-dkim"),
	)
	dkim := in.shell("Get-DkimSigningConfig -Identity contoso.com | Format-List Enabled,Selector1CNAME,Selector1PublicKey")
	if !regexp.MustCompile(`Enabled\s*:\s*True`).MatchString(dkim) {
		t.Errorf("DKIM is not enabled:\n%s", dkim)
	}
	key := regexp.MustCompile(`Selector1PublicKey\s*:\s*(v=DKIM1\S*[^\n]*)`).FindStringSubmatch(dkim)
	page, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#dkim-contoso\\.com")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, "selector1._domainkey.contoso.com") || key == nil || !strings.Contains(squashSpaces(page), squashSpaces(key[1])[:40]) {
		t.Errorf("the DKIM page does not show the record Get-DkimSigningConfig gives:\n%s\n---\n%s", page, dkim)
	}

	// Security > API keys > Create: the key is shown once and works.
	run("Security > API keys > Create",
		chromedp.Click(chromedp.CSS("#nav-apikeys")),
		chromedp.WaitVisible(chromedp.CSS("#key-name")),
		chromedp.SendKeys(chromedp.CSS("#key-name"), "automation"),
		chromedp.SetValue(chromedp.CSS("#key-role"), "View-Only"),
		chromedp.Click(chromedp.CSS("#create-api-key")),
		chromedp.WaitVisible(chromedp.CSS("#new-key-value")),
		screenshot(shots, "eac-03-api-key-created"),
	)
	apiKey, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#new-key-value")))
	if err != nil || !strings.HasPrefix(apiKey, "pstn_") {
		t.Fatalf("the new key: %q, %v", apiKey, err)
	}
	if out := in.admin("Get-ApiKey"); !strings.Contains(out, "automation") || !strings.Contains(out, apiKey[:11]) || strings.Contains(out, apiKey) {
		t.Errorf("Get-ApiKey after Create:\n%s", out)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: in.tlsConfig()}, Timeout: 30 * time.Second}
	// The certificate names localhost (tlsConfig's ServerName); the
	// connection goes to the loopback address itself.
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/accepted-domains", nil)
	req.Header.Set("X-API-Key", apiKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "contoso.com") {
		t.Errorf("the new key against the REST API: %d\n%s", resp.StatusCode, body)
	}
	run("the key is not shown again", chromedp.Navigate(base+"/exchange/apikeys"), chromedp.WaitVisible(chromedp.CSS("#api-keys")))
	if eval(`document.body.innerHTML.includes(` + strconv.Quote(apiKey) + `)`) {
		t.Error("the API key is shown again")
	}

	// Keyboard: the first Tab reaches the skip link, and it leads to the
	// page's content.
	run("keyboard", chromedp.Navigate(base+"/exchange/queues"), chromedp.WaitVisible(chromedp.CSS("#queues")), chromedp.KeyEvent("\t"))
	if !eval(`document.activeElement.classList.contains("skip")`) {
		t.Error("the first Tab does not reach the skip link")
	}
	run("skip link", chromedp.KeyEvent("\r"))
	if !eval(`location.hash === "#main"`) {
		t.Error("the skip link does not lead to the content")
	}

	// A 390-pixel-wide phone.
	run("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch))
	for i, p := range []string{"/exchange/queues", "/exchange/dkim", "/exchange/apikeys", "/exchange/accepteddomains", "/exchange/connectors/new", "/admin/users", "/exchange/authpolicies", "/exchange/oauth", "/exchange/auditlog"} {
		name := strings.NewReplacer("/", "-").Replace(strings.TrimPrefix(p, "/"))
		run("phone "+p, chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS("h1")), screenshot(shots, "eac-phone-"+strconv.Itoa(i)+"-"+name))
		if w, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
			t.Errorf("%s is %d pixels wide on a 390-pixel screen", p, w)
		}
		if eval(`document.getElementById("navmenu").open`) {
			t.Errorf("%s: the navigation is not folded on a phone", p)
		}
	}
	run("phone menu",
		chromedp.Click(chromedp.CSS("#navmenu > summary")),
		chromedp.WaitVisible(chromedp.CSS("#nav-queues")),
		screenshot(shots, "eac-phone-menu"),
	)
}

// squashSpaces drops all white space, for comparing wrapped text.
func squashSpaces(s string) string { return strings.Join(strings.Fields(s), "") }
