package webadmin

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/secret"
)

func TestAuthPoliciesAndSecurityDefaults(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	if status, body, _ := b.post("/exchange/authpolicies", url.Values{"csrf": {csrf}, "name": {"Allow SMTP"}, "smtp": {"on"}}); status != http.StatusSeeOther {
		t.Fatalf("add: %d\n%s", status, body)
	}
	ps, _ := f.svc.AuthenticationPolicies("Allow SMTP")
	if len(ps) != 1 || !ps[0].AllowBasicAuthSmtp || ps[0].AllowBasicAuthImap {
		t.Fatalf("added: %+v", ps)
	}
	// The same name again: the service's words next to the name.
	status, body, _ := b.post("/exchange/authpolicies", url.Values{"csrf": {csrf}, "name": {"Allow SMTP"}})
	if status != http.StatusConflict || !strings.Contains(body, "Allow SMTP") || !strings.Contains(body, `role="alert"`) {
		t.Errorf("duplicate: %d\n%s", status, body)
	}
	if status, _, _ := b.post("/exchange/authpolicies/Allow%20SMTP", url.Values{"csrf": {csrf}, "action": {"save"}, "imap": {"on"}}); status != http.StatusSeeOther {
		t.Errorf("edit: %d", status)
	}
	ps, _ = f.svc.AuthenticationPolicies("Allow SMTP")
	if ps[0].AllowBasicAuthSmtp || !ps[0].AllowBasicAuthImap {
		t.Errorf("edited: %+v", ps[0])
	}
	if status, _, _ := b.post("/exchange/securitydefaults", url.Values{"csrf": {csrf}, "securityDefaults": {"on"}, "defaultPolicy": {"Allow SMTP"}}); status != http.StatusSeeOther {
		t.Errorf("security defaults: %d", status)
	}
	if o := f.svc.Organization(); !o.SecurityDefaultsEnabled || o.DefaultAuthenticationPolicy != "Allow SMTP" {
		t.Errorf("organization: %v %q", o.SecurityDefaultsEnabled, o.DefaultAuthenticationPolicy)
	}
	if es := f.audited(f.contosoID(), "Set-OrganizationConfig"); len(es) != 1 || !strings.Contains(es[0].Parameters, "SecurityDefaultsEnabled") {
		t.Errorf("audit: %+v", es)
	}
	// A policy in use cannot be removed: the service says so.
	status, body, _ = b.post("/exchange/authpolicies/Allow%20SMTP", url.Values{"csrf": {csrf}, "action": {"remove"}})
	if status == http.StatusSeeOther {
		t.Errorf("removing the default policy was allowed")
	}
	b.post("/exchange/securitydefaults", url.Values{"csrf": {csrf}, "securityDefaults": {"on"}, "defaultPolicy": {""}})
	if status, body, _ := b.post("/exchange/authpolicies/Allow%20SMTP", url.Values{"csrf": {csrf}, "action": {"remove"}}); status != http.StatusSeeOther {
		t.Errorf("remove: %d\n%s", status, body)
	}
	// Fabrikam's policy is not found.
	if _, err := mustFor(t, f.svc, "Fabrikam").NewAuthenticationPolicy(context.Background(), "Fab policy", admin.PolicySwitches{}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := b.post("/exchange/authpolicies/Fab%20policy", url.Values{"csrf": {csrf}, "action": {"remove"}}); status != http.StatusNotFound {
		t.Errorf("Fabrikam's policy: %d", status)
	}
	if _, page, _ := b.get("/exchange/authpolicies"); strings.Contains(page, "Fab policy") {
		t.Error("the list shows Fabrikam's policy")
	}
	// View-Only.
	v := f.browser()
	_, vcsrf := v.signIn("vera@contoso.com", pw)
	if _, page, _ := v.get("/exchange/authpolicies"); strings.Contains(page, "add-policy") || strings.Contains(page, "save-security-defaults") {
		t.Error("View-Only sees change controls")
	}
	if status, _, _ := v.post("/exchange/securitydefaults", url.Values{"csrf": {vcsrf}}); status != http.StatusForbidden {
		t.Errorf("View-Only security defaults: %d", status)
	}
	if status, _, _ := v.post("/exchange/authpolicies", url.Values{"csrf": {vcsrf}, "name": {"X"}}); status != http.StatusForbidden {
		t.Errorf("View-Only add: %d", status)
	}
	if !f.svc.Organization().SecurityDefaultsEnabled {
		t.Error("View-Only turned security defaults off")
	}
}

func TestDkimPage(t *testing.T) {
	f := newFixture(t)
	box, err := secret.LoadOrCreate(filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Secrets = box
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	_, page, _ := b.get("/exchange/dkim")
	if !strings.Contains(page, `data-dkim-create="contoso.com"`) || strings.Contains(page, "fabrikam.com") {
		t.Fatalf("DKIM page:\n%s", page)
	}
	if status, body, _ := b.post("/exchange/dkim/contoso.com", url.Values{"csrf": {csrf}, "action": {"create"}}); status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", status, body)
	}
	cs, _ := f.svc.DkimSigningConfigs("contoso.com")
	if len(cs) != 1 || cs[0].Enabled {
		t.Fatalf("created: %+v", cs)
	}
	_, page, _ = b.get("/exchange/dkim")
	for _, want := range []string{"selector1._domainkey.contoso.com", "selector2._domainkey.contoso.com", `data-dkim-enable="contoso.com"`, cs[0].Selector1PublicKey[:20]} {
		if !strings.Contains(page, want) {
			t.Errorf("the DKIM page lacks %q", want)
		}
	}
	if status, _, _ := b.post("/exchange/dkim/contoso.com", url.Values{"csrf": {csrf}, "action": {"enable"}}); status != http.StatusSeeOther {
		t.Errorf("enable: %d", status)
	}
	before := cs[0].ActiveSelector
	if status, _, _ := b.post("/exchange/dkim/contoso.com", url.Values{"csrf": {csrf}, "action": {"rotate"}}); status != http.StatusSeeOther {
		t.Errorf("rotate: %d", status)
	}
	cs, _ = f.svc.DkimSigningConfigs("contoso.com")
	if !cs[0].Enabled || cs[0].ActiveSelector == before {
		t.Errorf("after enable and rotate: %+v", cs[0])
	}
	for _, c := range []string{"New-DkimSigningConfig", "Set-DkimSigningConfig", "Rotate-DkimSigningConfig"} {
		if len(f.audited(f.contosoID(), c)) != 1 {
			t.Errorf("%s not audited", c)
		}
	}
	if status, _, _ := b.post("/exchange/dkim/fabrikam.com", url.Values{"csrf": {csrf}, "action": {"create"}}); status != http.StatusNotFound {
		t.Errorf("Fabrikam's domain: %d", status)
	}
	v := f.browser()
	_, vcsrf := v.signIn("vera@contoso.com", pw)
	if _, page, _ := v.get("/exchange/dkim"); strings.Contains(page, "data-dkim-") && !strings.Contains(page, "data-dkim-status") || strings.Contains(page, "data-dkim-rotate") {
		t.Error("View-Only sees change controls")
	}
	if status, _, _ := v.post("/exchange/dkim/contoso.com", url.Values{"csrf": {vcsrf}, "action": {"disable"}}); status != http.StatusForbidden {
		t.Errorf("View-Only disable: %d", status)
	}
}

func TestOAuthPage(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	status, page, _ := b.post("/exchange/oauth", url.Values{"csrf": {csrf}, "what": {"app"}, "action": {"add"}, "name": {"Scanner app"}})
	secret := regexp.MustCompile(`id="new-app-secret" class="wrap">([^<]+)<`).FindStringSubmatch(page)
	if status != http.StatusOK || secret == nil {
		t.Fatalf("register: %d\n%s", status, page)
	}
	if _, page, _ := b.get("/exchange/oauth"); strings.Contains(page, secret[1]) || !strings.Contains(page, `data-remove-app="Scanner app"`) {
		t.Error("the secret is shown again, or the app is not listed")
	}
	if status, body, _ := b.post("/exchange/oauth", url.Values{"csrf": {csrf}, "what": {"principal"}, "action": {"add"}, "appId": {"11111111-2222-3333-4444-555555555555"},
		"objectId": {"66666666-7777-8888-9999-000000000000"}, "displayName": {"Entra app"}}); status != http.StatusSeeOther {
		t.Fatalf("principal: %d\n%s", status, body)
	}
	// A missing ObjectId: the service's words next to its field.
	status, body, _ := b.post("/exchange/oauth", url.Values{"csrf": {csrf}, "what": {"principal"}, "action": {"add"}, "appId": {"x"}})
	if status != http.StatusBadRequest || !strings.Contains(body, `id="sp-objectId-error"`) {
		t.Errorf("no ObjectId: %d\n%s", status, body)
	}
	if status, _, _ := b.post("/exchange/oauth", url.Values{"csrf": {csrf}, "what": {"principal"}, "action": {"remove"}, "identity": {"66666666-7777-8888-9999-000000000000"}}); status != http.StatusSeeOther {
		t.Errorf("remove principal: %d", status)
	}
	if status, _, _ := b.post("/exchange/oauth", url.Values{"csrf": {csrf}, "what": {"app"}, "action": {"remove"}, "identity": {"Scanner app"}}); status != http.StatusSeeOther {
		t.Errorf("remove app: %d", status)
	}
	if apps, _ := f.svc.OAuthApps(""); len(apps) != 0 {
		t.Errorf("apps left: %d", len(apps))
	}
	for _, c := range []string{"New-OAuthApp", "New-ServicePrincipal", "Remove-ServicePrincipal", "Remove-OAuthApp"} {
		if es := f.audited(f.contosoID(), c); len(es) == 0 {
			t.Errorf("%s not audited", c)
		}
	}
	// Fabrikam's app is not found; View-Only sees no controls.
	fapp, _, err := mustFor(t, f.svc, "Fabrikam").NewOAuthApp(context.Background(), "Fab app", "")
	if err != nil {
		t.Fatal(err)
	}
	if status, _, _ := b.post("/exchange/oauth", url.Values{"csrf": {csrf}, "what": {"app"}, "action": {"remove"}, "identity": {fapp.Name}}); status != http.StatusNotFound {
		t.Errorf("Fabrikam's app: %d", status)
	}
	if _, page, _ := b.get("/exchange/oauth"); strings.Contains(page, "Fab app") {
		t.Error("the page shows Fabrikam's app")
	}
	v := f.browser()
	_, vcsrf := v.signIn("vera@contoso.com", pw)
	if _, page, _ := v.get("/exchange/oauth"); strings.Contains(page, "add-oauth-app") || strings.Contains(page, "data-remove-") {
		t.Error("View-Only sees change controls")
	}
	if status, _, _ := v.post("/exchange/oauth", url.Values{"csrf": {vcsrf}, "what": {"app"}, "action": {"add"}, "name": {"X"}}); status != http.StatusForbidden {
		t.Errorf("View-Only register: %d", status)
	}
}

func TestApiKeysPage(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	status, page, _ := b.post("/exchange/apikeys", url.Values{"csrf": {csrf}, "name": {"automation"}, "role": {"Recipient Management"}, "expiresAfter": {"90"}})
	key := regexp.MustCompile(`id="new-key-value" readonly value="([^"]+)"`).FindStringSubmatch(page)
	if status != http.StatusOK || key == nil || !strings.HasPrefix(key[1], "pstn_") {
		t.Fatalf("create: %d\n%s", status, page)
	}
	_, page, _ = b.get("/exchange/apikeys")
	if strings.Contains(page, key[1]) || !strings.Contains(page, "automation") || !strings.Contains(page, key[1][:11]) {
		t.Error("the key is shown again, or the list lacks it")
	}
	// A bad expiry: next to its field.
	status, page, _ = b.post("/exchange/apikeys", url.Values{"csrf": {csrf}, "name": {"bad"}, "role": {"View-Only"}, "expiresAfter": {"soon"}})
	if status != http.StatusBadRequest || !strings.Contains(page, `id="key-expires-error"`) {
		t.Errorf("bad expiry: %d\n%s", status, page)
	}
	if status, _, _ := b.post("/exchange/apikeys/automation/delete", url.Values{"csrf": {csrf}}); status != http.StatusSeeOther {
		t.Errorf("remove: %d", status)
	}
	if len(f.audited(f.contosoID(), "New-ApiKey")) != 2 || len(f.audited(f.contosoID(), "Remove-ApiKey")) != 1 {
		t.Error("API key changes not audited")
	}
	// Fabrikam's key is not found.
	fb := f.browser()
	_, fcsrf := fb.signIn("fab@fabrikam.com", pw)
	fb.post("/exchange/apikeys", url.Values{"csrf": {fcsrf}, "name": {"fabkey"}, "role": {"View-Only"}})
	if status, _, _ := b.post("/exchange/apikeys/fabkey/delete", url.Values{"csrf": {csrf}}); status != http.StatusNotFound {
		t.Errorf("Fabrikam's key: %d", status)
	}
	if _, page, _ := b.get("/exchange/apikeys"); strings.Contains(page, "fabkey") {
		t.Error("the list shows Fabrikam's key")
	}
	// View-Only: no list, no controls; a forged POST is refused.
	v := f.browser()
	_, vcsrf := v.signIn("vera@contoso.com", pw)
	if status, page, _ := v.get("/exchange/apikeys"); status != http.StatusForbidden || strings.Contains(page, "create-api-key") {
		t.Errorf("View-Only: %d", status)
	}
	status, page, _ = v.post("/exchange/apikeys", url.Values{"csrf": {vcsrf}, "name": {"mine"}, "role": {"Organization Management"}})
	if status != http.StatusForbidden || strings.Contains(page, "pstn_") {
		t.Errorf("View-Only create: %d", status)
	}
}
