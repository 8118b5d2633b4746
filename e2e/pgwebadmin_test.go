package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestPGClusterAdminCenter: the admin center works on any node behind a
// load balancer without sticky sessions. A session signed in on node A
// serves pages and changes on node B (its notice too), and signing out on
// node A ends it on node B; a postern admin-link made on node A signs the
// server administrator in on node B, once.
func TestPGClusterAdminCenter(t *testing.T) {
	c := newPGCluster(t, 2, "--admin", "127.0.0.1:0")
	c.admin(t, 0, "Add-RoleGroupMember", "-Identity", "Organization Management", "-Member", "sean@contoso.com")
	nodeA, nodeB := c.nodes[0], c.nodes[1]
	onA := newWebClient(t, nodeA, nodeA.addrs["admin"])
	csrf := onA.signIn("sean@contoso.com", "Sean-Pass-1")

	// The same browser (cookie jar) reaching node B.
	onB := newWebClient(t, nodeB, nodeB.addrs["admin"])
	onB.c.Jar = onA.c.Jar
	if status, page := onB.do("GET", "/admin/users", nil); status != http.StatusOK || !strings.Contains(page, "scanner@contoso.com") {
		t.Fatalf("node B with node A's session: %d\n%s", status, page)
	}
	scanner := guidIn.FindStringSubmatch(pgShell(t, c, 1, "Get-Mailbox -Identity scanner@contoso.com | Format-List ExchangeGuid"))
	emailApps := "/admin/users/" + scanner[1] + "/email-apps"
	// A change on node B with the CSRF token node A's page gave: the
	// mailbox's SMTP AUTH switch (on, $false) back to the organization's
	// setting ($null), and the notice shown.
	status, page := onB.do("POST", emailApps, url.Values{"csrf": {csrf}, "smtp_shown": {""}, "inherit": {"on"}, "imap": {"on"}, "pop": {"on"}})
	if status != http.StatusOK || !strings.Contains(page, "Changes saved.") {
		t.Fatalf("a change on node B: %d\n%s", status, page)
	}
	// Node A hears of the change by LISTEN/NOTIFY (within a second).
	var got string
	if !waitUntil(30*time.Second, func() bool {
		got = pgShell(t, c, 0, "Get-CASMailbox -Identity scanner@contoso.com | Format-List SmtpClientAuthenticationDisabled")
		return strings.Contains(got, "SmtpClientAuthenticationDisabled :") && !strings.Contains(got, "False")
	}) {
		t.Fatalf("node A after the change on node B:\n%s", got)
	}

	// Signed out on node A: node B no longer knows the session.
	adminURL := func(in *instance) *url.URL { return &url.URL{Scheme: "https", Host: in.addrs["admin"]} }
	saved := onA.c.Jar.Cookies(adminURL(nodeA))
	if len(saved) == 0 {
		t.Fatal("no session cookie after sign-in")
	}
	if status, _ := onA.do("POST", "/signout", url.Values{"csrf": {csrf}}); status != http.StatusOK {
		t.Fatalf("sign-out on node A: %d", status)
	}
	replay := newWebClient(t, nodeB, nodeB.addrs["admin"])
	replay.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	replay.c.Jar.SetCookies(adminURL(nodeB), saved)
	if status, _ := replay.do("GET", "/admin/users", nil); status != http.StatusSeeOther {
		t.Errorf("node B after sign-out on node A: %d, want a redirect to sign-in", status)
	}

	// The server administrator's one-time link, made on node A, used on B.
	out := c.admin(t, 0, "admin-link")
	link, err := url.Parse(strings.TrimSpace(out))
	if err != nil || !strings.HasPrefix(link.Path, "/signin/link/") {
		t.Fatalf("postern admin-link: %q", out)
	}
	root := newWebClient(t, nodeB, nodeB.addrs["admin"])
	_, page = root.do("GET", link.Path, nil)
	status, home := root.do("POST", link.Path, url.Values{"csrf": {root.token(page)}})
	if status != http.StatusOK || !strings.Contains(home, "Server administrator") {
		t.Fatalf("node A's admin link on node B: %d\n%s", status, home)
	}
	if status, _ := newWebClient(t, nodeA, nodeA.addrs["admin"]).do("GET", link.Path, nil); status != http.StatusForbidden {
		t.Errorf("the admin link worked again, on node A: %d", status)
	}
}

// pgShell runs a pipeline through node i's admin socket.
func pgShell(t *testing.T, c *pgCluster, i int, line string) string {
	t.Helper()
	return pgAdmin(t, c.nodes[i].data, c.url, "shell", "-c", line)
}
