package webadmin

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"postern.dev/postern/internal/testidp"
)

// oidcFixture is the admin center trusting a loopback identity provider
// for the client "postern". The clock is the real one: the provider's
// tokens carry real times.
func oidcFixture(t *testing.T, claim string) (*fixture, *testidp.IdP) {
	t.Helper()
	f := newFixture(t)
	f.clock.Store(time.Now().UnixNano())
	idp, err := testidp.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	redirect := f.srv.URL + "/signin/oidc/callback"
	idp.AddClient("postern", "client-secret-1", redirect)
	f.h.OIDC = &OIDC{Issuer: idp.URL, ClientID: "postern", ClientSecret: "client-secret-1", Claim: claim, RedirectURL: redirect, HTTPClient: &http.Client{Timeout: 10 * time.Second}}
	return f, idp
}

// oidcSignIn runs the flow as a browser would: the sign-in link, the
// provider's form, the callback. It returns the callback's answer.
func (b *browser) oidcSignIn(idp *testidp.IdP, login, ret string, edit func(callback *url.URL)) (int, string) {
	t := b.f.t
	t.Helper()
	status, _, hdr := b.get("/signin/oidc?return=" + url.QueryEscape(ret))
	if status != http.StatusSeeOther {
		t.Fatalf("GET /signin/oidc = %d", status)
	}
	authz, err := url.Parse(hdr.Get("Location"))
	if err != nil || !strings.HasPrefix(authz.String(), idp.URL+"/authorize?") {
		t.Fatalf("the sign-in link leads to %q", hdr.Get("Location"))
	}
	q := authz.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
		t.Fatalf("authorization request without PKCE S256, nonce or state: %s", authz)
	}
	form := url.Values{"login": {login}}
	for k := range q {
		form.Set(k, q.Get(k))
	}
	resp, err := b.c.PostForm(idp.URL+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("IdP sign-in as %s: %d", login, resp.StatusCode)
	}
	cb, _ := url.Parse(resp.Header.Get("Location"))
	if edit != nil {
		edit(cb)
	}
	status, body, _ := b.get(cb.RequestURI())
	return status, body
}

func TestOIDCSignIn(t *testing.T) {
	f, idp := oidcFixture(t, "")
	idp.AddUser("sean@contoso.com", nil)
	b := f.browser()
	_, page, _ := b.get("/signin")
	if !strings.Contains(page, `id="signin-oidc"`) {
		t.Fatalf("the sign-in page offers no identity provider:\n%s", page)
	}
	status, body := b.oidcSignIn(idp, "sean@contoso.com", "/admin/users", nil)
	if status != http.StatusOK || !strings.Contains(body, `content="0;url=/admin/users"`) || !strings.Contains(body, `href="/admin/users"`) {
		t.Fatalf("callback = %d:\n%s", status, body)
	}
	status, page, _ = b.get("/admin/users")
	if status != http.StatusOK || !strings.Contains(page, "sean@contoso.com") || !strings.Contains(page, "Organization Management") {
		t.Fatalf("Active users after the OIDC sign-in: %d\n%s", status, page)
	}
	if idp.TokenRequests() != 1 {
		t.Errorf("token requests = %d, want 1", idp.TokenRequests())
	}
	// The flow cookie is SameSite=Lax (the callback is a cross-site
	// navigation), HttpOnly, Secure and short-lived.
	_, _, hdr := f.browser().get("/signin/oidc")
	var flowCookie *http.Cookie
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == oidcCookie {
			flowCookie = c
		}
	}
	if flowCookie == nil || !flowCookie.HttpOnly || !flowCookie.Secure || flowCookie.SameSite != http.SameSiteLaxMode || flowCookie.MaxAge <= 0 || flowCookie.MaxAge > 600 {
		t.Errorf("flow cookie %+v", flowCookie)
	}
}

func TestOIDCRefusals(t *testing.T) {
	for _, tt := range []struct {
		name, claim, login string
		user               testidp.Claims
		tamper             func(testidp.Claims)
		edit               func(*url.URL)
		status             int
		want               string
	}{
		{name: "no role group", login: "nina@contoso.com", status: http.StatusForbidden, want: "not a member of an admin role group"},
		{name: "no such mailbox", login: "ghost@contoso.com", status: http.StatusForbidden, want: "no mailbox ghost@contoso.com"},
		{name: "unverified email", login: "sean@contoso.com", user: testidp.Claims{"email_verified": false}, status: http.StatusForbidden, want: "not verified"},
		{name: "no address claim", login: "sean@contoso.com", user: testidp.Claims{"email": nil}, status: http.StatusForbidden, want: "no email or preferred_username claim"},
		{name: "not an address", login: "sean@contoso.com", user: testidp.Claims{"email": "Sean <sean@contoso.com>"}, status: http.StatusForbidden, want: "not an email address"},
		{name: "another audience", login: "sean@contoso.com", tamper: func(c testidp.Claims) { c["aud"] = "someone-else" }, status: http.StatusUnauthorized, want: "ID token was not valid"},
		{name: "another nonce", login: "sean@contoso.com", tamper: func(c testidp.Claims) { c["nonce"] = "replayed" }, status: http.StatusUnauthorized, want: "ID token was not valid"},
		{name: "expired token", login: "sean@contoso.com", tamper: func(c testidp.Claims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, status: http.StatusUnauthorized, want: "ID token was not valid"},
		{name: "another issuer", login: "sean@contoso.com", tamper: func(c testidp.Claims) { c["iss"] = "https://evil.example" }, status: http.StatusUnauthorized, want: "ID token was not valid"},
		{name: "state changed", login: "sean@contoso.com", edit: func(u *url.URL) {
			q := u.Query()
			q.Set("state", "forged")
			u.RawQuery = q.Encode()
		}, status: http.StatusBadRequest, want: "could not be verified"},
		{name: "code changed", login: "sean@contoso.com", edit: func(u *url.URL) {
			q := u.Query()
			q.Set("code", "forged")
			u.RawQuery = q.Encode()
		}, status: http.StatusBadGateway, want: "could not be completed"},
		{name: "provider error", login: "sean@contoso.com", edit: func(u *url.URL) {
			q := u.Query()
			q.Del("code")
			q.Set("error", "access_denied")
			u.RawQuery = q.Encode()
		}, status: http.StatusUnauthorized, want: "did not sign you in: access_denied"},
		{name: "configured claim", claim: "upn", login: "someone", user: testidp.Claims{"upn": "sean@contoso.com", "email": "nina@contoso.com"}, status: http.StatusOK, want: "url=/admin"},
		{name: "configured claim missing", claim: "upn", login: "sean@contoso.com", status: http.StatusForbidden, want: "no upn claim"},
		{name: "preferred_username", login: "x", user: testidp.Claims{"email": nil, "preferred_username": "sean@contoso.com"}, status: http.StatusOK, want: "url=/admin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, idp := oidcFixture(t, tt.claim)
			idp.AddUser(tt.login, tt.user)
			idp.TamperIDToken(tt.tamper)
			b := f.browser()
			status, body := b.oidcSignIn(idp, tt.login, "/admin", tt.edit)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("callback = %d, want %d with %q:\n%s", status, tt.status, tt.want, body)
			}
			signedIn, _, _ := b.get("/admin")
			if (signedIn == http.StatusOK) != (tt.status == http.StatusOK) {
				t.Errorf("GET /admin after the callback: %d", signedIn)
			}
		})
	}
}

// TestOIDCFlowBoundToBrowser: the callback works once, and only in the
// browser that started the flow (login CSRF: another site cannot make a
// browser complete a flow of its choosing).
func TestOIDCFlowBoundToBrowser(t *testing.T) {
	f, idp := oidcFixture(t, "")
	idp.AddUser("sean@contoso.com", nil)
	var callback string
	b := f.browser()
	b.oidcSignIn(idp, "sean@contoso.com", "/admin", func(u *url.URL) { callback = u.RequestURI(); u.RawQuery = "" })
	// Another browser, with the victim's callback URL: no flow cookie.
	other := f.browser()
	if status, body, _ := other.get(callback); status != http.StatusBadRequest || !strings.Contains(body, "started in another browser") {
		t.Errorf("callback in another browser = %d:\n%s", status, body)
	}
	// The flow was spent by the first (broken) callback: the right URL
	// now fails too.
	if status, _, _ := b.get(callback); status != http.StatusBadRequest {
		t.Errorf("a spent flow's callback = %d, want 400", status)
	}
	if status, _, _ := b.get("/admin"); status == http.StatusOK {
		t.Errorf("signed in after refused callbacks")
	}
	// A flow left too long at the provider expires.
	b = f.browser()
	status, body := b.oidcSignIn(idp, "sean@contoso.com", "/admin", func(*url.URL) { f.advance(flowTTL + time.Second) })
	if status != http.StatusBadRequest || !strings.Contains(body, "took too long") {
		t.Errorf("late callback = %d:\n%s", status, body)
	}
}

// TestOIDCOrganizationWall: an organization's admin signed in through the
// provider sees only its organization.
func TestOIDCOrganizationWall(t *testing.T) {
	f, idp := oidcFixture(t, "")
	idp.AddUser("fab@fabrikam.com", nil)
	b := f.browser()
	if status, body := b.oidcSignIn(idp, "fab@fabrikam.com", "/admin", nil); status != http.StatusOK {
		t.Fatalf("callback = %d:\n%s", status, body)
	}
	sean := f.svc.Dir.Load().MailboxByAddress("sean@contoso.com")
	if status, _, _ := b.get("/admin/users/" + sean.GUID); status != http.StatusNotFound {
		t.Errorf("Fabrikam's admin opens a Contoso user: %d", status)
	}
	if _, body, _ := b.get("/admin/users?q=contoso"); strings.Contains(body, "@contoso.com") {
		t.Errorf("Fabrikam's admin lists Contoso's users")
	}
}

func TestOIDCNotConfigured(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	if _, page, _ := b.get("/signin"); strings.Contains(page, "signin-oidc") {
		t.Errorf("the sign-in page offers an identity provider that is not configured")
	}
	for _, p := range []string{"/signin/oidc", "/signin/oidc/callback?code=x&state=y"} {
		if status, _, _ := b.get(p); status != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, status)
		}
	}
}

func TestOIDCProviderDown(t *testing.T) {
	f, idp := oidcFixture(t, "")
	idp.Close()
	status, body, _ := f.browser().get("/signin/oidc")
	if status != http.StatusBadGateway || !strings.Contains(body, "cannot be reached") {
		t.Errorf("sign-in link with the provider down = %d:\n%s", status, body)
	}
}

func TestAddressClaim(t *testing.T) {
	for _, tt := range []struct {
		name   string
		claims map[string]any
		claim  string
		want   string
	}{
		{"email", map[string]any{"email": "Sean@Contoso.com"}, "", "sean@contoso.com"},
		{"email verified", map[string]any{"email": "sean@contoso.com", "email_verified": true}, "", "sean@contoso.com"},
		{"email unverified", map[string]any{"email": "sean@contoso.com", "email_verified": false, "preferred_username": "x@contoso.com"}, "", ""},
		{"preferred_username", map[string]any{"preferred_username": "sean@contoso.com"}, "", "sean@contoso.com"},
		{"empty email falls through", map[string]any{"email": "", "preferred_username": "sean@contoso.com"}, "", "sean@contoso.com"},
		{"configured", map[string]any{"upn": "sean@contoso.com", "email": "x@contoso.com"}, "upn", "sean@contoso.com"},
		{"configured missing", map[string]any{"email": "x@contoso.com"}, "upn", ""},
		{"not a string", map[string]any{"email": 42}, "", ""},
		{"display form", map[string]any{"email": "Sean <sean@contoso.com>"}, "", ""},
		{"no domain", map[string]any{"email": "sean"}, "", ""},
		{"too long", map[string]any{"email": strings.Repeat("a", 330) + "@contoso.com"}, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, why := addressClaim(tt.claims, tt.claim)
			if got != tt.want || (got == "") == (why == "") {
				t.Errorf("addressClaim = %q, %q; want %q", got, why, tt.want)
			}
		})
	}
}

func FuzzAddressClaim(f *testing.F) {
	f.Add("sean@contoso.com", "")
	f.Add("Sean <sean@contoso.com>", "upn")
	f.Add("", "email")
	f.Fuzz(func(t *testing.T, v, claim string) {
		got, why := addressClaim(map[string]any{"email": v, "upn": v, "preferred_username": v}, claim)
		if (got == "") == (why == "") {
			t.Fatalf("addressClaim(%q, %q) = %q, %q", v, claim, got, why)
		}
		if got != "" && (len(got) > 320 || got != strings.ToLower(got)) {
			t.Fatalf("addressClaim(%q) = %q", v, got)
		}
	})
}

func TestCertWarning(t *testing.T) {
	f := newFixture(t)
	now := time.Unix(0, f.clock.Load())
	var notAfter atomic.Int64
	f.h.CertNotAfter = func() time.Time {
		if n := notAfter.Load(); n != 0 {
			return time.Unix(0, n)
		}
		return time.Time{}
	}
	b := f.browser()
	b.signIn("sean@contoso.com", pw)
	for _, tt := range []struct {
		name     string
		notAfter time.Time
		want     string
	}{
		{"far", now.Add(60 * 24 * time.Hour), ""},
		{"just outside", now.Add(14*24*time.Hour + time.Minute), ""},
		{"within 14 days", now.Add(10*24*time.Hour + time.Hour), "expires on 2026-05-11 10:00 UTC, in 10 days"},
		{"hours", now.Add(3 * time.Hour), "in less than a day"},
		{"expired", now.Add(-time.Hour), "expired on 2026-05-01 08:00 UTC"},
		{"unknown", time.Time{}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.notAfter.IsZero() {
				notAfter.Store(0)
			} else {
				notAfter.Store(tt.notAfter.UnixNano())
			}
			for _, p := range []string{"/admin", "/admin/users", "/exchange/connectors", "/admin/settings/domains"} {
				_, body, _ := b.get(p)
				has := strings.Contains(body, `id="cert-warning"`)
				if has != (tt.want != "") || !strings.Contains(body, tt.want) {
					t.Errorf("GET %s: warning shown %v, want %q", p, has, tt.want)
				}
			}
		})
	}
}

// TestOIDCStartsCapped: starting a sign-in writes to the store before
// anyone has signed in, so one address may start maxFlowStartsPerMinute a
// minute; the next is refused with 429 and nothing written, and a minute
// later it may start again.
func TestOIDCStartsCapped(t *testing.T) {
	f, _ := oidcFixture(t, "")
	b := f.browser()
	for i := range maxFlowStartsPerMinute {
		if status, _, _ := b.get("/signin/oidc"); status != http.StatusSeeOther {
			t.Fatalf("start %d: %d, want a redirect to the provider", i+1, status)
		}
	}
	before := b.cookie(oidcCookie)
	status, body, _ := b.get("/signin/oidc")
	if status != http.StatusTooManyRequests || !strings.Contains(body, "Wait a minute") {
		t.Fatalf("start %d: %d, want 429:\n%s", maxFlowStartsPerMinute+1, status, body)
	}
	if after := b.cookie(oidcCookie); after != before {
		t.Errorf("a refused start set a new flow cookie")
	}
	f.advance(time.Minute)
	if status, _, _ := b.get("/signin/oidc"); status != http.StatusSeeOther {
		t.Errorf("a minute later: %d, want a redirect to the provider", status)
	}
}
