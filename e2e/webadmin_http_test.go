package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// webClient is a browser without JavaScript: net/http with a cookie jar,
// posting the admin center's forms as a browser would.
type webClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newWebClient(t *testing.T, in *instance, adminAddr string) *webClient {
	jar, _ := cookiejar.New(nil)
	cfg := in.tlsConfig()
	cfg.ServerName = "localhost"
	c := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: cfg}}
	return &webClient{t: t, base: "https://" + adminAddr, c: c}
}

func (w *webClient) do(method, path string, form url.Values) (int, string) {
	w.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, w.base+path, body)
	if err != nil {
		w.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", w.base)
	}
	resp, err := w.c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var webCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (w *webClient) token(page string) string {
	w.t.Helper()
	m := webCSRF.FindStringSubmatch(page)
	if m == nil {
		w.t.Fatalf("no CSRF token in:\n%s", page)
	}
	return m[1]
}

// signIn signs in through the form and returns the signed-in CSRF token.
func (w *webClient) signIn(user, password string) string {
	w.t.Helper()
	_, page := w.do("GET", "/", nil) // redirects to the sign-in page
	if !strings.Contains(page, `action="/signin"`) {
		w.t.Fatalf("/ does not lead to the sign-in page:\n%s", page)
	}
	status, home := w.do("POST", "/signin", url.Values{"csrf": {w.token(page)}, "username": {user}, "password": {password}})
	if status != http.StatusOK || !strings.Contains(home, "Sign out") {
		w.t.Fatalf("sign-in as %s: %d\n%s", user, status, home)
	}
	return w.token(home)
}

var guidIn = regexp.MustCompile(`ExchangeGuid\s*:\s*(\S+)`)

// TestWebAdminWithoutJavaScript: every read and change works with plain
// form posts; a post without the CSRF token, a View-Only admin's post and
// another organization's URLs are refused; the server administrator signs
// in with postern admin-link and reaches every organization.
func TestWebAdminWithoutJavaScript(t *testing.T) {
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	in.admin("New-Mailbox", "-Name", "sean", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Sean-Pass-1")
	in.admin("Add-RoleGroupMember", "-Identity", "Organization Management", "-Member", "sean@contoso.com")
	in.admin("New-Mailbox", "-Name", "vera", "-PrimarySmtpAddress", "vera@contoso.com", "-Password", "Vera-Pass-1")
	in.admin("Add-RoleGroupMember", "-Identity", "View-Only Organization Management", "-Member", "vera@contoso.com")
	in.admin("New-Mailbox", "-Name", "scanner", "-PrimarySmtpAddress", "scanner@contoso.com", "-Password", "Scan-Pass-1")
	in.admin("New-Organization", "-Name", "Fabrikam")
	in.admin("--organization", "Fabrikam", "New-AcceptedDomain", "-Name", "fabrikam.com", "-DomainName", "fabrikam.com")
	in.admin("--organization", "Fabrikam", "New-Mailbox", "-Name", "ann", "-PrimarySmtpAddress", "ann@fabrikam.com", "-Password", "Ann-Pass-1")
	in.admin("--organization", "Fabrikam", "Add-RoleGroupMember", "-Identity", "Organization Management", "-Member", "ann@fabrikam.com")
	in.start()
	scanner := guidIn.FindStringSubmatch(in.shell("Get-Mailbox -Identity scanner@contoso.com | Format-List ExchangeGuid"))[1]
	emailApps := "/admin/users/" + scanner + "/email-apps"
	casOf := func() string {
		return in.shell("Get-CASMailbox -Identity scanner@contoso.com | Format-List SmtpClientAuthenticationDisabled")
	}

	sean := newWebClient(t, in, adminAddr)
	csrf := sean.signIn("sean@contoso.com", "Sean-Pass-1")
	if status, page := sean.do("GET", "/admin/users?q=scan", nil); status != 200 || !strings.Contains(page, "scanner@contoso.com") || strings.Contains(page, "vera@contoso.com") {
		t.Fatalf("Active users search: %d\n%s", status, page)
	}
	// A post without the token changes nothing.
	if status, _ := sean.do("POST", emailApps, url.Values{"smtp": {"on"}, "smtp_shown": {""}}); status != http.StatusForbidden {
		t.Errorf("POST without CSRF token: %d, want 403", status)
	}
	if got := casOf(); !strings.Contains(got, "SmtpClientAuthenticationDisabled :") || strings.Contains(got, "False") {
		t.Fatalf("a refused post changed the mailbox:\n%s", got)
	}
	// Authenticated SMTP checked and saved: Set-CASMailbox $false.
	if status, page := sean.do("POST", emailApps, url.Values{"csrf": {csrf}, "smtp": {"on"}, "smtp_shown": {""}, "inherit": {"on"}, "imap": {"on"}, "pop": {"on"}}); status != 200 || !strings.Contains(page, "Changes saved.") {
		t.Fatalf("Save changes: %d\n%s", status, page)
	}
	if got := casOf(); !strings.Contains(got, "SmtpClientAuthenticationDisabled : False") {
		t.Fatalf("after Save changes:\n%s", got)
	}
	// "Use the organization setting" restores $null.
	sean.do("POST", emailApps, url.Values{"csrf": {csrf}, "smtp": {"on"}, "smtp_shown": {"on"}, "inherit": {"on"}, "imap": {"on"}, "pop": {"on"}})
	if got := casOf(); strings.Contains(got, "True") || strings.Contains(got, "False") {
		t.Fatalf("after Use the organization setting, want $null (blank):\n%s", got)
	}
	audit := in.shell("Search-AdminAuditLog -Cmdlets Set-CASMailbox | Format-List Caller")
	if !strings.Contains(audit, "sean@contoso.com (admin center)") {
		t.Errorf("the admin audit log does not name the admin:\n%s", audit)
	}

	// View-Only: the page has no Save, a forged post is refused.
	vera := newWebClient(t, in, adminAddr)
	vcsrf := vera.signIn("vera@contoso.com", "Vera-Pass-1")
	if _, page := vera.do("GET", emailApps, nil); strings.Contains(page, "Save changes") {
		t.Error("View-Only sees Save changes")
	}
	if status, page := vera.do("POST", emailApps, url.Values{"csrf": {vcsrf}, "smtp": {"on"}, "smtp_shown": {""}}); status != http.StatusForbidden || !strings.Contains(page, "does not include Set-CASMailbox") {
		t.Errorf("View-Only forged post: %d", status)
	}

	// Fabrikam's admin reaches nothing of Contoso's.
	ann := newWebClient(t, in, adminAddr)
	acsrf := ann.signIn("ann@fabrikam.com", "Ann-Pass-1")
	for _, p := range []string{emailApps, "/admin/users/" + scanner, "/admin/users/scanner@contoso.com", "/admin/settings/domains/contoso.com"} {
		if status, _ := ann.do("GET", p, nil); status != http.StatusNotFound {
			t.Errorf("Fabrikam's admin GET %s: %d, want 404", p, status)
		}
	}
	if status, _ := ann.do("POST", emailApps, url.Values{"csrf": {acsrf}, "smtp": {"on"}, "smtp_shown": {""}}); status != http.StatusNotFound {
		t.Errorf("Fabrikam's admin POST: %d, want 404", status)
	}
	if _, page := ann.do("GET", "/admin/users", nil); strings.Contains(page, "contoso.com") {
		t.Error("Fabrikam's admin sees Contoso's users")
	}

	// The server administrator: postern admin-link.
	out := in.admin("admin-link")
	link, err := url.Parse(strings.TrimSpace(out))
	if err != nil || !strings.HasPrefix(link.Path, "/signin/link/") {
		t.Fatalf("postern admin-link: %q", out)
	}
	root := newWebClient(t, in, adminAddr)
	_, page := root.do("GET", link.Path, nil)
	status, home := root.do("POST", link.Path, url.Values{"csrf": {root.token(page)}})
	if status != 200 || !strings.Contains(home, "Server administrator") || !strings.Contains(home, "Fabrikam") {
		t.Fatalf("admin link sign-in: %d\n%s", status, home)
	}
	if status, _ := newWebClient(t, in, adminAddr).do("GET", link.Path, nil); status != http.StatusForbidden {
		t.Errorf("the admin link worked twice: %d", status)
	}
}
