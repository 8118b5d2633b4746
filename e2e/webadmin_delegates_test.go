package e2e

import (
	"context"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWebAdminDelegatesBrowser follows Teams & groups > Shared mailboxes
// > Add a shared mailbox, then the mailbox's Mail > Send as > Add members
// in real Chromium; the grant is checked with Get-RecipientPermission and
// used by swaks, which sends as the shared mailbox.
func TestWebAdminDelegatesBrowser(t *testing.T) {
	swaks := requireTool(t, "swaks")
	ctx := browserContext(t)
	shots := screenshotDir(t)
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	in.admin("New-Mailbox", "-Name", "sean", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Sean-Pass-1")
	in.admin("Add-RoleGroupMember", "-Identity", "Organization Management", "-Member", "sean@contoso.com")
	in.mailbox("scanner", "Scan-Pass-1")
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
	sendAsInfo := func() (string, error) {
		host, port := hostPort(t, in.addrs["submission"])
		out, err := exec.Command(swaks, "--server", host, "--port", port, "--tls", "--tls-verify", "--tls-ca-path", in.caFile(), "--tls-sni", "localhost",
			"--auth", "LOGIN", "--auth-user", "scanner@contoso.com", "--auth-password", "Scan-Pass-1",
			"--from", "info@contoso.com", "--to", "sean@contoso.com", "--header", "Subject: Sent as the info desk").CombinedOutput()
		return string(out), err
	}

	run("sign in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "sean@contoso.com"),
		chromedp.SendKeys(chromedp.CSS("#password"), "Sean-Pass-1"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#signout")),
	)
	run("Teams & groups > Shared mailboxes > Add a shared mailbox",
		chromedp.Click(chromedp.CSS("#nav-shared-mailboxes")),
		chromedp.WaitVisible(chromedp.CSS("#shared-name")),
		chromedp.SendKeys(chromedp.CSS("#shared-name"), "Info desk"),
		chromedp.SendKeys(chromedp.CSS("#shared-address"), "info"),
		chromedp.Click(chromedp.CSS("#add-shared")),
		chromedp.WaitVisible(chromedp.CSS("#delegates-sendas")),
		chromedp.Navigate(base+"/admin/shared-mailboxes"),
		chromedp.WaitVisible(chromedp.Search(`//table[@id="shared-table"]//a[text()="Info desk"]`)),
		screenshot(shots, "21-shared-mailboxes"),
	)
	if out := in.shell("Get-Mailbox -Identity info@contoso.com | Format-List RecipientTypeDetails"); !strings.Contains(out, "SharedMailbox") {
		t.Fatalf("Get-Mailbox info:\n%s", out)
	}
	if out, err := sendAsInfo(); err == nil || strings.Contains(out, "250 2.0.0") {
		t.Fatalf("scanner sent as info without Send As:\n%s", out)
	}
	run("Info desk > Mail > Send as > Add members",
		chromedp.Click(chromedp.Search(`//table[@id="shared-table"]//a[text()="Info desk"]`)),
		chromedp.WaitVisible(chromedp.CSS("#flyout #delegates-sendas")),
		screenshot(shots, "22-shared-mailbox-flyout"),
		chromedp.Click(chromedp.CSS("#flyout #delegates-sendas")),
		chromedp.WaitVisible(chromedp.CSS("#member")),
		chromedp.SendKeys(chromedp.CSS("#member"), "scanner@contoso.com"),
		chromedp.Click(chromedp.CSS("#add-member")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
		chromedp.WaitVisible(chromedp.Search(`//table[@id="delegates"]//td[text()="scanner@contoso.com"]`)),
		screenshot(shots, "23-send-as"),
	)
	if out := in.admin("Get-RecipientPermission", "-Identity", "info@contoso.com"); !strings.Contains(out, "scanner") || !strings.Contains(out, "SendAs") {
		t.Fatalf("Get-RecipientPermission after Add members:\n%s", out)
	}
	if out, err := sendAsInfo(); err != nil || !strings.Contains(out, "250 2.0.0") {
		t.Fatalf("swaks as info after Send As was granted: %v\n%s", err, out)
	}
	if out := in.shell("Search-AdminAuditLog -Cmdlets Add-RecipientPermission | Format-List Caller"); !strings.Contains(out, "sean@contoso.com") {
		t.Errorf("the change is not audited under sean's name:\n%s", out)
	}
	run("remove the member",
		chromedp.Click(chromedp.CSS(`button[aria-label="Remove scanner@contoso.com"]`)),
		chromedp.WaitVisible(chromedp.Search(`//table[@id="delegates"]//td[text()="No members."]`)),
	)
	if out := in.admin("Get-RecipientPermission", "-Identity", "info@contoso.com"); strings.Contains(out, "scanner") {
		t.Fatalf("Get-RecipientPermission after Remove:\n%s", out)
	}
}

// TestWebAdminDelegatesWithoutJavaScript: the delegate pages with plain
// form posts; View-Only and another organization's admin are refused.
func TestWebAdminDelegatesWithoutJavaScript(t *testing.T) {
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	in.admin("New-Mailbox", "-Name", "sean", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Sean-Pass-1")
	in.admin("Add-RoleGroupMember", "-Identity", "Organization Management", "-Member", "sean@contoso.com")
	in.admin("New-Mailbox", "-Name", "vera", "-PrimarySmtpAddress", "vera@contoso.com", "-Password", "Vera-Pass-1")
	in.admin("Add-RoleGroupMember", "-Identity", "View-Only Organization Management", "-Member", "vera@contoso.com")
	in.admin("New-Mailbox", "-Name", "chris", "-PrimarySmtpAddress", "chris@contoso.com", "-Password", "Chris-Pass-1")
	in.admin("New-Organization", "-Name", "Fabrikam")
	in.admin("--organization", "Fabrikam", "New-AcceptedDomain", "-Name", "fabrikam.com", "-DomainName", "fabrikam.com")
	in.admin("--organization", "Fabrikam", "New-Mailbox", "-Name", "ann", "-PrimarySmtpAddress", "ann@fabrikam.com", "-Password", "Ann-Pass-1")
	in.admin("--organization", "Fabrikam", "Add-RoleGroupMember", "-Identity", "Organization Management", "-Member", "ann@fabrikam.com")
	in.start()
	chris := guidIn.FindStringSubmatch(in.shell("Get-Mailbox -Identity chris@contoso.com | Format-List ExchangeGuid"))[1]
	onBehalf := "/admin/users/" + chris + "/delegates/sendonbehalf"

	sean := newWebClient(t, in, adminAddr)
	csrf := sean.signIn("sean@contoso.com", "Sean-Pass-1")
	if status, page := sean.do("POST", onBehalf, url.Values{"csrf": {csrf}, "action": {"add"}, "member": {"sean@contoso.com"}}); status != http.StatusOK || !strings.Contains(page, "<td>sean@contoso.com</td>") {
		t.Fatalf("Send on behalf > Add: %d\n%s", status, page)
	}
	if out := in.shell("Get-Mailbox -Identity chris@contoso.com | Format-List GrantSendOnBehalfTo"); !strings.Contains(out, "sean") {
		t.Fatalf("Get-Mailbox GrantSendOnBehalfTo:\n%s", out)
	}
	if status, page := sean.do("POST", "/admin/users/"+chris+"/delegates/fullaccess", url.Values{"csrf": {csrf}, "action": {"add"}, "member": {"sean@contoso.com"}}); status != http.StatusOK || !strings.Contains(page, "was added") {
		t.Fatalf("Read and manage > Add: %d\n%s", status, page)
	}
	if out := in.admin("Get-MailboxPermission", "-Identity", "chris@contoso.com"); !strings.Contains(out, "sean@contoso.com") {
		t.Fatalf("Get-MailboxPermission:\n%s", out)
	}
	if status, page := sean.do("POST", "/admin/shared-mailboxes", url.Values{"csrf": {csrf}, "name": {"Sales"}, "address": {"sales"}, "domain": {"contoso.com"}}); status != http.StatusOK || !strings.Contains(page, "sales@contoso.com was added") {
		t.Fatalf("Add a shared mailbox: %d\n%s", status, page)
	}

	vera := newWebClient(t, in, adminAddr)
	vcsrf := vera.signIn("vera@contoso.com", "Vera-Pass-1")
	if status, page := vera.do("GET", onBehalf, nil); status != http.StatusOK || !strings.Contains(page, "sean@contoso.com") || strings.Contains(page, "add-member") {
		t.Errorf("View-Only Send on behalf page: %d\n%s", status, page)
	}
	if status, _ := vera.do("POST", onBehalf, url.Values{"csrf": {vcsrf}, "action": {"remove"}, "member": {"sean@contoso.com"}}); status != http.StatusForbidden {
		t.Errorf("View-Only forged remove: %d, want 403", status)
	}
	if out := in.shell("Get-Mailbox -Identity chris@contoso.com | Format-List GrantSendOnBehalfTo"); !strings.Contains(out, "sean") {
		t.Fatalf("a refused post removed the delegate:\n%s", out)
	}

	ann := newWebClient(t, in, adminAddr)
	acsrf := ann.signIn("ann@fabrikam.com", "Ann-Pass-1")
	for _, right := range []string{"sendas", "sendonbehalf", "fullaccess"} {
		p := "/admin/users/" + chris + "/delegates/" + right
		if status, _ := ann.do("GET", p, nil); status != http.StatusNotFound {
			t.Errorf("Fabrikam's admin GET %s: %d, want 404", p, status)
		}
		if status, _ := ann.do("POST", p, url.Values{"csrf": {acsrf}, "action": {"add"}, "member": {"ann@fabrikam.com"}}); status != http.StatusNotFound {
			t.Errorf("Fabrikam's admin POST %s: %d, want 404", p, status)
		}
	}
	if status, page := ann.do("GET", "/admin/shared-mailboxes", nil); status != http.StatusOK || strings.Contains(page, "sales@contoso.com") {
		t.Errorf("Fabrikam's admin sees Contoso's shared mailboxes: %d", status)
	}
	if out := in.admin("Get-RecipientPermission", "-Identity", "chris@contoso.com"); strings.Contains(out, "ann") {
		t.Errorf("Fabrikam's admin granted Send As on chris:\n%s", out)
	}
}
