package webadmin

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/signin"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlite"
)

// fixture is an admin center over a real store, with contoso (sean:
// Organization Management, vera: View-Only, nina: no role) and fabrikam
// (fab: Organization Management).
type fixture struct {
	t     testing.TB
	h     *Handler
	srv   *httptest.Server
	svc   *admin.Service
	st    store.Store
	clock atomic.Int64 // unix nanoseconds
}

const pw = "Correct-Horse-9"

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Cheap hashes keep the test fast; the sign-in path is the real one.
	fastParams := auth.Params{Time: 1, Memory: 64, Threads: 1, KeyLen: 32, SaltLen: 16}
	svc := &admin.Service{Store: st, Dir: &directory.Current{}, HashPassword: func(p string) (string, error) { return auth.HashPasswordWithParams(p, fastParams) }}
	if err := svc.Open(ctx); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, svc: svc, st: st}
	f.clock.Store(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, f.clock.Load()) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = svc.NewAcceptedDomain(ctx, "contoso.com", "contoso.com", "Authoritative")
	must(err)
	for _, n := range []string{"sean", "vera", "nina", "scanner"} {
		_, err := svc.NewMailbox(ctx, admin.NewMailboxParams{Name: n, PrimarySmtpAddress: n + "@contoso.com", Password: pw})
		must(err)
	}
	must(svc.AddRoleGroupMember(ctx, "Organization Management", "sean@contoso.com"))
	must(svc.AddRoleGroupMember(ctx, "View-Only Organization Management", "vera@contoso.com"))
	fab, err := svc.NewOrganization(ctx, "Fabrikam")
	must(err)
	fsvc, err := svc.ForOrganization("Fabrikam")
	must(err)
	_, err = fsvc.NewAcceptedDomain(ctx, "fabrikam.com", "fabrikam.com", "Authoritative")
	must(err)
	_, err = fsvc.NewMailbox(ctx, admin.NewMailboxParams{Name: "fab", PrimarySmtpAddress: "fab@fabrikam.com", Password: pw})
	must(err)
	_, err = fsvc.NewMailbox(ctx, admin.NewMailboxParams{Name: "secret", PrimarySmtpAddress: "secret@fabrikam.com", Password: pw})
	must(err)
	must(fsvc.AddRoleGroupMember(ctx, "Organization Management", "fab@fabrikam.com"))
	_, err = fsvc.NewInboundConnector(ctx, admin.InboundConnectorParams{Name: ptr("Fabrikam relay"), SenderIPAddresses: &admin.MultiValue{Set: []string{"192.0.2.0/24"}}})
	must(err)
	_ = fab

	authn := &signin.Authenticator{Directory: svc.Dir, Cache: auth.NewLoginCache(time.Minute, 1000), Throttle: auth.NewThrottle(auth.DefaultThrottleConfig),
		Now: now, Sleep: func(time.Duration) {}}
	f.h = &Handler{Admin: svc, Authn: authn, Hostname: "mail.contoso.com", Now: now, Log: slog.New(slog.DiscardHandler)}
	mux := http.NewServeMux()
	f.h.Register(mux)
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func ptr[T any](v T) *T { return &v }

func (f *fixture) advance(d time.Duration) { f.clock.Add(int64(d)) }

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so that tests see each answer.
type browser struct {
	f      *fixture
	c      *http.Client
	origin string
}

func (f *fixture) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{f: f, c: c, origin: f.srv.URL}
}

// cookie is the value of the browser's cookie of that name, or "".
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.origin)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.f.t.Helper()
	resp, err := b.c.Get(b.f.srv.URL + path)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t testing.TB, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", page)
	}
	return m[1]
}

// signIn signs in and returns the CSRF token of the signed-in pages.
func (b *browser) signIn(user, password string) (int, string) {
	b.f.t.Helper()
	_, page, _ := b.get("/signin")
	status, body, hdr := b.post("/signin", url.Values{"csrf": {csrfOf(b.f.t, page)}, "username": {user}, "password": {password}})
	if status != http.StatusSeeOther {
		return status, body
	}
	if loc := hdr.Get("Location"); loc != "/admin" {
		b.f.t.Fatalf("sign-in redirects to %q", loc)
	}
	_, home, _ := b.get("/admin")
	return status, csrfOf(b.f.t, home)
}

func TestRootRedirectsToSignIn(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	status, _, hdr := b.get("/")
	if status != http.StatusSeeOther || hdr.Get("Location") != "/signin" {
		t.Fatalf("GET / = %d %q, want a redirect to /signin", status, hdr.Get("Location"))
	}
	status, _, hdr = b.get("/admin/users")
	if status != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/signin?return=") {
		t.Fatalf("GET /admin/users signed out = %d %q", status, hdr.Get("Location"))
	}
	if _, _, hdr := b.get("/static/admin.js"); !strings.Contains(hdr.Get("Content-Type"), "javascript") {
		t.Errorf("admin.js served as %q", hdr.Get("Content-Type"))
	}
}

func TestSessionCookie(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, page, _ := b.get("/signin")
	_, _, hdr := b.post("/signin", url.Values{"csrf": {csrfOf(t, page)}, "username": {"sean@contoso.com"}, "password": {pw}})
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("no session cookie: %v", hdr)
	}
	if !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.MaxAge != 0 {
		t.Errorf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/, a browser-session cookie", cookie)
	}
	if len(cookie.Value) < 43 {
		t.Errorf("session identifier %q is short", cookie.Value)
	}
}

func TestSignInDecisions(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name, user, password string
		status               int
		want                 string
	}{
		{"organization admin", "sean@contoso.com", pw, http.StatusSeeOther, ""},
		{"view-only admin", "vera@contoso.com", pw, http.StatusSeeOther, ""},
		{"wrong password", "sean@contoso.com", "nope", http.StatusUnauthorized, signinFailed},
		{"unknown user", "ghost@contoso.com", pw, http.StatusUnauthorized, signinFailed},
		{"no role group", "nina@contoso.com", pw, http.StatusForbidden, "not a member of an admin role group"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.browser().signIn(tt.user, tt.password)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("sign-in = %d, want %d with %q:\n%s", status, tt.status, tt.want, body)
			}
		})
	}
}

func TestSignInThrottled(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < auth.DefaultThrottleConfig.BlockAfter; i++ {
		if status, _ := f.browser().signIn("sean@contoso.com", "guess-"+string(rune('a'+i))); status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, status)
		}
	}
	// The address is blocked now: even the right password is refused,
	// as SMTP AUTH refuses it (the budget is the same one).
	status, body := f.browser().signIn("sean@contoso.com", pw)
	if status != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins") {
		t.Fatalf("after %d failures: %d\n%s", auth.DefaultThrottleConfig.BlockAfter, status, body)
	}
	_, refusal := f.h.Authn.Basic(context.Background(), signin.SMTP, mustAddr("127.0.0.1"), "sean@contoso.com", pw)
	if refusal == nil {
		t.Error("SMTP AUTH from the blocked address was let in: the admin center's failures do not count against it")
	}
	f.advance(auth.DefaultThrottleConfig.BlockFor + auth.DefaultThrottleConfig.Window)
	if status, _ := f.browser().signIn("sean@contoso.com", pw); status != http.StatusSeeOther {
		t.Errorf("after the block: %d", status)
	}
}

func TestSessionTimeouts(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	if status, _ := b.signIn("sean@contoso.com", pw); status != http.StatusSeeOther {
		t.Fatal(status)
	}
	// Used every 50 minutes, the session lives past the idle timeout...
	for i := 0; i < 5; i++ {
		f.advance(50 * time.Minute)
		if status, _, _ := b.get("/admin"); status != http.StatusOK {
			t.Fatalf("after %d × 50 min of use: %d", i+1, status)
		}
	}
	// ...but not idle for an hour,
	f.advance(61 * time.Minute)
	if status, _, _ := b.get("/admin"); status != http.StatusSeeOther {
		t.Errorf("idle for 61 minutes: %d, want signed out", status)
	}
	// nor, used all the time, past the absolute timeout.
	b = f.browser()
	b.signIn("sean@contoso.com", pw)
	for elapsed := time.Duration(0); elapsed < 12*time.Hour-30*time.Minute; elapsed += 30 * time.Minute {
		f.advance(30 * time.Minute)
		if status, _, _ := b.get("/admin"); status != http.StatusOK {
			t.Fatalf("at %v: %d", elapsed, status)
		}
	}
	f.advance(31 * time.Minute)
	if status, _, _ := b.get("/admin"); status != http.StatusSeeOther {
		t.Errorf("after 12 hours: %d, want signed out", status)
	}
}

func TestSignOut(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	old := b.cookie(sessionCookie)
	if old == "" {
		t.Fatal("no session cookie after sign-in")
	}
	// Without the token, sign-out is refused too.
	if status, _, _ := b.post("/signout", url.Values{}); status != http.StatusForbidden {
		t.Errorf("sign-out without token: %d", status)
	}
	if status, _, hdr := b.post("/signout", url.Values{"csrf": {csrf}}); status != http.StatusSeeOther || hdr.Get("Location") != "/signin" {
		t.Fatalf("sign-out: %d %v", status, hdr)
	}
	if status, _, _ := b.get("/admin"); status != http.StatusSeeOther {
		t.Errorf("after sign-out: %d", status)
	}
	// The session ended in the store, not only in the browser: its old
	// cookie, replayed, signs nobody in.
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/admin", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: old})
	resp, err := b.c.Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the signed-out session's cookie replayed: %d, want a redirect to sign-in", resp.StatusCode)
	}
	if _, err := f.h.Admin.Store.GetEphemeral(context.Background(), kindSession, tokenKey(old), f.h.now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the session is still in the store after sign-out: %v", err)
	}
}

// TestCSRF: a change without the session's token, with another
// session's token, or from another origin is refused and changes nothing.
func TestCSRF(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	other := f.browser()
	_, otherCSRF := other.signIn("sean@contoso.com", pw)
	scanner := f.svc.Dir.Load().MailboxByAddress("scanner@contoso.com")
	path := "/admin/users/" + scanner.GUID + "/email-apps"
	form := func(token string) url.Values {
		return url.Values{"csrf": {token}, "smtp": {"on"}, "smtp_shown": {""}, "imap": {"on"}, "pop": {"on"}}
	}
	for _, tt := range []struct {
		name   string
		token  string
		origin string
	}{
		{"no token", "", b.origin},
		{"another session's token", otherCSRF, b.origin},
		{"another origin", csrf, "https://evil.example"},
	} {
		b.origin = tt.origin
		status, body, _ := b.post(path, form(tt.token))
		if status != http.StatusForbidden || !strings.Contains(body, "security token") {
			t.Errorf("%s: %d\n%s", tt.name, status, body)
		}
	}
	if m := f.svc.Dir.Load().MailboxByAddress("scanner@contoso.com"); m.SmtpClientAuthenticationDisabled != nil {
		t.Fatalf("a refused POST changed the mailbox: %v", *m.SmtpClientAuthenticationDisabled)
	}
	b.origin = f.srv.URL
	if status, _, _ := b.post(path, form(csrf)); status != http.StatusSeeOther {
		t.Fatalf("with the token: %d", status)
	}
	if m := f.svc.Dir.Load().MailboxByAddress("scanner@contoso.com"); m.SmtpClientAuthenticationDisabled == nil || *m.SmtpClientAuthenticationDisabled {
		t.Errorf("Authenticated SMTP checked: SmtpClientAuthenticationDisabled = %v, want $false", m.SmtpClientAuthenticationDisabled)
	}
	// The change is in the audit log under the admin's name.
	es, _ := f.st.SearchAudit(context.Background(), store.AuditQuery{OrgID: scanner.OrgID, Cmdlets: []string{"Set-CASMailbox"}})
	if len(es) != 1 || es[0].Caller != "sean@contoso.com (admin center)" || !strings.Contains(es[0].Parameters, "-SmtpClientAuthenticationDisabled $false") {
		t.Errorf("audit: %+v", es)
	}
}

// TestEmailAppsTriState: the Authenticated SMTP box and "Use the
// organization setting" map to Set-CASMailbox $false, $true and $null.
func TestEmailAppsTriState(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	m := f.svc.Dir.Load().MailboxByAddress("scanner@contoso.com")
	path := "/admin/users/" + m.GUID + "/email-apps"
	state := func() string {
		v := f.svc.Dir.Load().MailboxByAddress("scanner@contoso.com").SmtpClientAuthenticationDisabled
		switch {
		case v == nil:
			return "$null"
		case *v:
			return "$true"
		}
		return "$false"
	}
	for _, tt := range []struct {
		name string
		form url.Values
		want string
	}{
		// The organization has SMTP AUTH off: an inheriting box shows unchecked.
		{"check the box while inheriting", url.Values{"smtp": {"on"}, "smtp_shown": {""}, "inherit": {"on"}}, "$false"},
		{"uncheck it", url.Values{"smtp_shown": {"on"}}, "$true"},
		{"use the organization setting", url.Values{"smtp_shown": {""}, "inherit": {"on"}}, "$null"},
		{"save unchanged", url.Values{"smtp_shown": {""}, "inherit": {"on"}}, "$null"},
	} {
		tt.form.Set("csrf", csrf)
		tt.form.Set("imap", "on")
		tt.form.Set("pop", "on")
		if status, body, _ := b.post(path, tt.form); status != http.StatusSeeOther {
			t.Fatalf("%s: %d\n%s", tt.name, status, body)
		}
		if got := state(); got != tt.want {
			t.Errorf("%s: SmtpClientAuthenticationDisabled = %s, want %s", tt.name, got, tt.want)
		}
	}
	_, page, _ := b.get(path)
	if !strings.Contains(page, "uses the organization setting") {
		t.Errorf("the page does not say the mailbox inherits:\n%s", page)
	}
}

// TestViewOnly: a View-Only admin sees no change controls, and a forged
// POST is refused by the admin service and audited.
func TestViewOnly(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("vera@contoso.com", pw)
	m := f.svc.Dir.Load().MailboxByAddress("scanner@contoso.com")
	_, page, _ := b.get("/admin/users/" + m.GUID + "/email-apps")
	if strings.Contains(page, "save-changes") || !strings.Contains(page, "<fieldset disabled>") {
		t.Errorf("View-Only sees change controls on Manage email apps")
	}
	_, page, _ = b.get("/exchange/settings/mailflow")
	if strings.Contains(page, "save-mailflow") {
		t.Errorf("View-Only sees Save on Mail flow settings")
	}
	_, page, _ = b.get("/exchange/connectors")
	if strings.Contains(page, "add-connector") {
		t.Errorf("View-Only sees Add a connector")
	}
	status, body, _ := b.post("/admin/users/"+m.GUID+"/email-apps", url.Values{"csrf": {csrf}, "smtp": {"on"}, "smtp_shown": {""}})
	if status != http.StatusForbidden || !strings.Contains(body, "does not include Set-CASMailbox") {
		t.Errorf("forged POST: %d\n%s", status, body)
	}
	status, _, _ = b.post("/exchange/settings/mailflow", url.Values{"csrf": {csrf}})
	if status != http.StatusForbidden {
		t.Errorf("forged mail flow POST: %d", status)
	}
	if f.svc.Organization().SmtpClientAuthenticationDisabled != true {
		t.Error("View-Only turned SMTP AUTH on for the organization")
	}
	es, _ := f.st.SearchAudit(context.Background(), store.AuditQuery{OrgID: m.OrgID, Cmdlets: []string{"Set-CASMailbox"}})
	if len(es) != 1 || es[0].Succeeded || es[0].Caller != "vera@contoso.com (admin center)" {
		t.Errorf("the refused change is not audited: %+v", es)
	}
}

// TestOrganizationWall: an admin of one organization reaches nothing of
// another through any URL.
func TestOrganizationWall(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	dir := f.svc.Dir.Load()
	secret := dir.MailboxByAddress("secret@fabrikam.com")
	for _, p := range []string{
		"/admin/users/" + secret.GUID, "/admin/users/" + secret.GUID + "/email-apps", "/admin/users/secret@fabrikam.com",
		"/admin/users/" + secret.GUID + "/password", "/exchange/connectors/Fabrikam%20relay", "/admin/settings/domains/fabrikam.com",
	} {
		status, body, _ := b.get(p)
		if status != http.StatusNotFound || strings.Contains(body, "fabrikam.com</") || strings.Contains(body, "192.0.2.0") {
			t.Errorf("GET %s: %d", p, status)
		}
	}
	for _, p := range []string{"/admin/users?q=fabrikam", "/admin/users?q=secret", "/exchange/connectors", "/admin/settings/domains"} {
		_, body, _ := b.get(p)
		if strings.Contains(body, "@fabrikam.com") || strings.Contains(body, "Fabrikam relay") {
			t.Errorf("GET %s shows Fabrikam's objects", p)
		}
	}
	for _, p := range []string{"/admin/users/" + secret.GUID + "/email-apps", "/admin/users/" + secret.GUID + "/password", "/exchange/connectors/Fabrikam%20relay/delete"} {
		if status, _, _ := b.post(p, url.Values{"csrf": {csrf}, "smtp": {"on"}, "password": {"Other-Pass-1"}}); status != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", p, status)
		}
	}
	// Bulk actions name mailboxes by GUID in the form: another
	// organization's is not found either.
	b.post("/admin/users", url.Values{"csrf": {csrf}, "action": {"smtp-on"}, "id": {secret.GUID}})
	// The organization switch is the server administrator's only.
	if status, _, _ := b.post("/admin/organization", url.Values{"csrf": {csrf}, "organization": {"2"}}); status != http.StatusForbidden {
		t.Errorf("organization switch by an organization's admin: %d", status)
	}
	after := f.svc.Dir.Load().MailboxByAddress("secret@fabrikam.com")
	if after.SmtpClientAuthenticationDisabled != nil || after.PasswordHash != secret.PasswordHash {
		t.Errorf("Fabrikam's mailbox was changed")
	}
	if cs, _ := mustFor(t, f.svc, "Fabrikam").InboundConnectors(""); len(cs) != 1 {
		t.Errorf("Fabrikam's connector was deleted")
	}
}

func mustFor(t *testing.T, svc *admin.Service, org string) *admin.Service {
	s, err := svc.ForOrganization(org)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRoleRemovedEndsAccess: the role is read at every request.
func TestRoleRemovedEndsAccess(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn("vera@contoso.com", pw)
	if status, _, _ := b.get("/admin/users"); status != http.StatusOK {
		t.Fatal(status)
	}
	if err := f.svc.RemoveRoleGroupMember(context.Background(), "View-Only Organization Management", "vera@contoso.com"); err != nil {
		t.Fatal(err)
	}
	status, body, _ := b.get("/admin/users")
	if status != http.StatusForbidden || !strings.Contains(body, "not a member of an admin role group") {
		t.Errorf("after Remove-RoleGroupMember: %d", status)
	}
	if status, _, _ := b.get("/admin"); status != http.StatusSeeOther {
		t.Errorf("the session outlived the role: %d", status)
	}
}

// TestServerAdminLink: the one-time link signs in once, and the server
// administrator switches organizations.
func TestServerAdminLink(t *testing.T) {
	f := newFixture(t)
	link, err := f.h.NewAdminLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser()
	status, page, _ := b.get(link)
	if status != http.StatusOK {
		t.Fatalf("link page: %d", status)
	}
	// A GET does not use the link up (mail scanners prefetch links).
	if status, _, _ := b.get(link); status != http.StatusOK {
		t.Fatalf("second GET: %d", status)
	}
	if status, _, hdr := b.post(link, url.Values{"csrf": {csrfOf(t, page)}}); status != http.StatusSeeOther || hdr.Get("Location") != "/admin" {
		t.Fatalf("link POST: %d", status)
	}
	_, home, _ := b.get("/admin")
	if !strings.Contains(home, "Server administrator") || !strings.Contains(home, "Fabrikam") {
		t.Fatalf("home of the server administrator:\n%s", home)
	}
	fab, _ := mustFor(t, f.svc, "Fabrikam"), 0
	fabOrg := fab.Organization()
	if status, _, _ := b.post("/admin/organization", url.Values{"csrf": {csrfOf(t, home)}, "organization": {itoa(fabOrg.ID)}}); status != http.StatusSeeOther {
		t.Fatalf("switch: %d", status)
	}
	if _, body, _ := b.get("/exchange/connectors"); !strings.Contains(body, "Fabrikam relay") {
		t.Error("after switching to Fabrikam, its connector is not listed")
	}
	// The link works once.
	other := f.browser()
	status, _, _ = other.get(link)
	if status != http.StatusForbidden {
		t.Errorf("used link: %d", status)
	}
	// And expires.
	link2, err := f.h.NewAdminLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.advance(11 * time.Minute)
	if status, _, _ := other.get(link2); status != http.StatusForbidden {
		t.Errorf("expired link: %d", status)
	}
}

func TestSafeReturn(t *testing.T) {
	for in, want := range map[string]string{
		"/admin/users":         "/admin/users",
		"//evil.example/x":     "/admin",
		"/\\evil.example":      "/admin",
		"https://evil.example": "/admin",
		"":                     "/admin",
	} {
		if got := safeReturn(in); got != want {
			t.Errorf("safeReturn(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzList(f *testing.F) {
	f.Add("192.0.2.1\n198.51.100.0/24, 203.0.113.7")
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range list(s) {
			if strings.ContainsAny(v.(string), "\n\r,; ") || v == "" {
				t.Fatalf("list(%q) gave %q", s, v)
			}
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
