package webadmin

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"postern.dev/postern/internal/store"
)

// Tests of the remaining Exchange admin center pages: each page's change
// is the cmdlet, audited under the admin's name; View-Only sees no
// controls and its forged POST is refused; another organization's objects
// are not found.

func (f *fixture) audited(orgID int64, cmdletName string) []store.AuditEntry {
	f.t.Helper()
	es, err := f.st.SearchAudit(context.Background(), store.AuditQuery{OrgID: orgID, Cmdlets: []string{cmdletName}})
	if err != nil {
		f.t.Fatal(err)
	}
	return es
}

func (f *fixture) contosoID() int64 { return f.svc.Dir.Load().MailboxByAddress("sean@contoso.com").OrgID }

func TestLegacyTLSSwitch(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	_, page, _ := b.get("/exchange/settings/mailflow")
	if !strings.Contains(page, `id="allowLegacyTls"`) || !strings.Contains(page, "legacy listener") {
		t.Fatalf("no legacy-TLS switch with its note:\n%s", page)
	}
	status, _, _ := b.post("/exchange/settings/mailflow", url.Values{"csrf": {csrf}, "smtpAuthOff": {"on"}, "allowLegacyTls": {"on"}})
	if status != http.StatusSeeOther || !f.svc.Organization().AllowLegacyTLSClients {
		t.Fatalf("turning legacy TLS on: %d, %v", status, f.svc.Organization().AllowLegacyTLSClients)
	}
	es := f.audited(f.contosoID(), "Set-TransportConfig")
	if len(es) != 1 || !strings.Contains(es[0].Parameters, "AllowLegacyTLSClients") || es[0].Caller != "sean@contoso.com (admin center)" {
		t.Errorf("audit: %+v", es)
	}
	if f.svc.Organization().SmtpClientAuthenticationDisabled != true {
		t.Error("the SMTP AUTH switch changed with the legacy-TLS one")
	}

	v := f.browser()
	_, vcsrf := v.signIn("vera@contoso.com", pw)
	_, page, _ = v.get("/exchange/settings/mailflow")
	if strings.Contains(page, "save-mailflow") {
		t.Error("View-Only sees Save")
	}
	if status, _, _ := v.post("/exchange/settings/mailflow", url.Values{"csrf": {vcsrf}, "smtpAuthOff": {"on"}}); status != http.StatusForbidden {
		t.Errorf("View-Only turning legacy TLS off: %d", status)
	}
	if !f.svc.Organization().AllowLegacyTLSClients {
		t.Error("View-Only changed the legacy-TLS switch")
	}
}
