package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"postern.dev/postern/internal/testidp"
)

// oidcWebInstance is an instance whose admin center offers sign-in with a
// loopback identity provider ([webadmin.oidc] in a configuration file),
// the admin listener's public URL being the address the browser uses.
func oidcWebInstance(t *testing.T, idp *testidp.IdP) (*instance, string) {
	t.Helper()
	adminAddr := freeAddr(t)
	base := "https://" + adminAddr
	dir := t.TempDir()
	secret := filepath.Join(dir, "oidc-secret")
	if err := os.WriteFile(secret, []byte("client-secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "postern.toml")
	toml := "allow_insecure_http_loopback = true\n[webadmin.oidc]\nissuer = \"" + idp.URL + "\"\nclient_id = \"postern-admin\"\nclient_secret_file = \"" + secret + "\"\n"
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := (&instance{data: t.TempDir()}).try("check-config", conf); err != nil {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
	idp.AddClient("postern-admin", "client-secret-1", base+"/signin/oidc/callback")
	in := newInstance(t, "--config", conf, "--admin", adminAddr, "--public-url", base)
	return in, base
}

// TestWebAdminOIDCBrowser signs in to the admin center with the identity
// provider in real Chromium: the sign-in page's button, the provider's
// form, the callback, and the admin center as the mailbox the ID token
// names, with its role group's role. A user without a role group is
// refused after the provider signed them in.
func TestWebAdminOIDCBrowser(t *testing.T) {
	ctx := browserContext(t)
	shots := screenshotDir(t)
	idp, err := testidp.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	in, base := oidcWebInstance(t, idp)
	in.admin("New-Mailbox", "-Name", "sean", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Sean-Pass-1")
	in.admin("Add-RoleGroupMember", "-Identity", "Recipient Management", "-Member", "sean@contoso.com")
	in.admin("New-Mailbox", "-Name", "nina", "-PrimarySmtpAddress", "nina@contoso.com", "-Password", "Nina-Pass-1")
	// The provider knows sean by another login name; the ID token's
	// email claim names the mailbox.
	idp.AddUser("sean.c", testidp.Claims{"email": "sean@contoso.com", "email_verified": true})
	idp.AddUser("nina@contoso.com", nil)
	in.start()
	if !strings.Contains(in.log.String(), "redirect_uri="+base+"/signin/oidc/callback") {
		t.Fatalf("the server does not announce its OIDC redirect URI:\n%s", in.log.String())
	}

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
	run("sign in with the identity provider",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#signin-oidc")),
		screenshot(shots, "20-signin-oidc"),
		chromedp.Click(chromedp.CSS("#signin-oidc")),
		chromedp.WaitVisible(chromedp.CSS("#idp-username")),
		chromedp.SendKeys(chromedp.CSS("#idp-username"), "sean.c"),
		chromedp.Click(chromedp.CSS("#idp-signin")),
		chromedp.WaitVisible(chromedp.CSS("#signout")),
		chromedp.Click(chromedp.CSS("#nav-active-users")),
		chromedp.WaitVisible(chromedp.CSS("#users-table")),
	)
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".who .user")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(who, "sean@contoso.com") || !strings.Contains(who, "Recipient Management") {
		t.Errorf("signed in as %q, want sean@contoso.com (Recipient Management)", who)
	}
	if idp.TokenRequests() != 1 {
		t.Errorf("the provider redeemed %d codes, want 1", idp.TokenRequests())
	}
	if !strings.Contains(in.log.String(), `msg="admin center sign-in" user=sean@contoso.com`) || !strings.Contains(in.log.String(), "method=oidc") {
		t.Errorf("the sign-in is not logged:\n%s", in.log.String())
	}

	run("sign out, then nina, who has no role group",
		chromedp.Click(chromedp.CSS("#signout")),
		chromedp.WaitVisible(chromedp.CSS("#signin-oidc")),
		chromedp.Click(chromedp.CSS("#signin-oidc")),
		chromedp.WaitVisible(chromedp.CSS("#idp-username")),
		chromedp.SendKeys(chromedp.CSS("#idp-username"), "nina@contoso.com"),
		chromedp.Click(chromedp.CSS("#idp-signin")),
		chromedp.WaitVisible(chromedp.CSS("#signin-error")),
	)
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#signin-error")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "not a member of an admin role group") {
		t.Errorf("nina's refusal: %q", msg)
	}
	run("nina is not signed in", chromedp.Navigate(base+"/admin"), chromedp.WaitVisible(chromedp.CSS("#username")))
}

// TestWebAdminOIDCConfigRefused: serve refuses to start with an OIDC
// section it cannot use, naming the key.
func TestWebAdminOIDCConfigRefused(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "postern.toml")
	os.WriteFile(conf, []byte("[webadmin.oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"x\"\n"), 0o600)
	in := &instance{data: t.TempDir()}
	out, err := in.try("check-config", conf)
	if err == nil || !strings.Contains(out, "webadmin.oidc.issuer") {
		t.Errorf("check-config: %v\n%s", err, out)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	out, err = in.try("serve", "--config", conf, "--admin", addr, "--submission", "127.0.0.1:0", "--submissions", "off", "--mx", "off",
		"--imap", "off", "--imaps", "off", "--pop3", "off", "--pop3s", "off", "--resolver", emptyDNS)
	if err == nil || !strings.Contains(out, "webadmin.oidc.issuer") {
		t.Errorf("serve with an http issuer: %v\n%s", err, out)
	}
}
