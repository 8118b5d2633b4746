package webadmin

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/directory"
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

func (f *fixture) contosoID() int64 {
	return f.svc.Dir.Load().MailboxByAddress("sean@contoso.com").OrgID
}

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

func TestConnectorToggle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.NewInboundConnector(ctx, admin.InboundConnectorParams{Name: ptr("Printers"), SenderIPAddresses: &admin.MultiValue{Set: []string{"198.51.100.0/24"}}}); err != nil {
		t.Fatal(err)
	}
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	_, page, _ := b.get("/exchange/connectors")
	if !strings.Contains(page, `data-connector-toggle="Printers"`) || !strings.Contains(page, "Not required") {
		t.Fatalf("no toggle in the list:\n%s", page)
	}
	if status, _, _ := b.post("/exchange/connectors/Printers/enabled", url.Values{"csrf": {csrf}, "enabled": {"off"}}); status != http.StatusSeeOther {
		t.Fatalf("turning off: %d", status)
	}
	if cs, _ := f.svc.InboundConnectors("Printers"); cs[0].Enabled {
		t.Error("the connector is still on")
	}
	if es := f.audited(f.contosoID(), "Set-InboundConnector"); len(es) != 1 || !es[0].Succeeded {
		t.Errorf("audit: %+v", es)
	}
	// Another organization's connector is not found.
	if status, _, _ := b.post("/exchange/connectors/Fabrikam%20relay/enabled", url.Values{"csrf": {csrf}, "enabled": {"off"}}); status != http.StatusNotFound {
		t.Errorf("Fabrikam's connector: %d", status)
	}
	if cs, _ := mustFor(t, f.svc, "Fabrikam").InboundConnectors(""); !cs[0].Enabled {
		t.Error("Fabrikam's connector was turned off")
	}
	// View-Only: no toggle, and a forged POST is refused.
	v := f.browser()
	_, vcsrf := v.signIn("vera@contoso.com", pw)
	if _, page, _ := v.get("/exchange/connectors"); strings.Contains(page, "data-connector-toggle") {
		t.Error("View-Only sees the toggle")
	}
	if status, _, _ := v.post("/exchange/connectors/Printers/enabled", url.Values{"csrf": {vcsrf}, "enabled": {"on"}}); status != http.StatusForbidden {
		t.Errorf("View-Only toggle: %d", status)
	}
	// Without the token: refused.
	if status, _, _ := b.post("/exchange/connectors/Printers/enabled", url.Values{"enabled": {"on"}}); status != http.StatusForbidden {
		t.Errorf("no CSRF token: %d", status)
	}
	if cs, _ := f.svc.InboundConnectors("Printers"); cs[0].Enabled {
		t.Error("a refused POST turned the connector on")
	}
}

func TestWizardPartnerTLS(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	status, body, _ := b.post("/exchange/connectors/new", url.Values{"csrf": {csrf}, "step": {"5"}, "go": {"create"}, "from": {"partner"},
		"name": {"Partner A"}, "turnOn": {"on"}, "by": {"ip"}, "ips": {"203.0.113.7"}, "requireTls": {"on"}, "domains": {"partner.example"}})
	if status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", status, body)
	}
	cs, _ := f.svc.InboundConnectors("Partner A")
	if len(cs) != 1 || cs[0].ConnectorType != directory.Partner || !cs[0].RequireTls {
		t.Fatalf("connector: %+v", cs)
	}
	_, body, _ = b.post("/exchange/connectors/new", url.Values{"csrf": {csrf}, "step": {"2"}, "go": {"next"}, "from": {"partner"}, "name": {"X"}})
	if !strings.Contains(body, "identify the partner organization") {
		t.Error("step 3 does not speak of the partner")
	}
}

func TestAcceptedDomains(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	if _, page, _ := b.get("/admin/settings/domains"); !strings.Contains(page, `href="/exchange/accepteddomains"`) {
		t.Error("Settings > Domains does not link to Accepted domains")
	}
	// A malformed domain: the service's words next to the field.
	status, body, _ := b.post("/exchange/accepteddomains", url.Values{"csrf": {csrf}, "domainName": {"not a domain"}})
	if status != http.StatusBadRequest || !strings.Contains(body, `id="domainName-error"`) || !strings.Contains(body, `value="not a domain"`) {
		t.Errorf("bad domain: %d\n%s", status, body)
	}
	if status, body, _ := b.post("/exchange/accepteddomains", url.Values{"csrf": {csrf}, "domainName": {"relay.contoso.com"}, "domainType": {"InternalRelay"}}); status != http.StatusSeeOther {
		t.Fatalf("add: %d\n%s", status, body)
	}
	ds, _ := f.svc.AcceptedDomains("relay.contoso.com")
	if len(ds) != 1 || ds[0].DomainType != "InternalRelay" {
		t.Fatalf("added: %+v", ds)
	}
	_, page, _ := b.get("/exchange/accepteddomains")
	if !strings.Contains(page, `href="/admin/settings/domains/relay.contoso.com"`) {
		t.Error("the list does not link to the domain's DNS records")
	}
	steps := []struct {
		form  url.Values
		check func() bool
	}{
		{url.Values{"action": {"type"}, "domainType": {"Authoritative"}}, func() bool {
			ds, _ := f.svc.AcceptedDomains("relay.contoso.com")
			return ds[0].DomainType == "Authoritative"
		}},
		{url.Values{"action": {"default"}}, func() bool {
			ds, _ := f.svc.AcceptedDomains("relay.contoso.com")
			return ds[0].Default
		}},
	}
	for i, s := range steps {
		s.form.Set("csrf", csrf)
		if status, body, _ := b.post("/exchange/accepteddomains/relay.contoso.com", s.form); status != http.StatusSeeOther || !s.check() {
			t.Errorf("step %d: %d\n%s", i, status, body)
		}
	}
	// Give the default back, then remove the new domain.
	b.post("/exchange/accepteddomains/contoso.com", url.Values{"csrf": {csrf}, "action": {"default"}})
	if status, _, _ := b.post("/exchange/accepteddomains/relay.contoso.com", url.Values{"csrf": {csrf}, "action": {"remove"}}); status != http.StatusSeeOther {
		t.Errorf("remove: %d", status)
	}
	if ds, _ := f.svc.AcceptedDomains(""); len(ds) != 1 {
		t.Errorf("after remove: %+v", ds)
	}
	if len(f.audited(f.contosoID(), "Remove-AcceptedDomain")) != 1 {
		t.Error("Remove-AcceptedDomain not audited")
	}
	// Another organization's domain is not found; View-Only sees no
	// controls and cannot add.
	if status, _, _ := b.post("/exchange/accepteddomains/fabrikam.com", url.Values{"csrf": {csrf}, "action": {"remove"}}); status != http.StatusNotFound {
		t.Errorf("Fabrikam's domain: %d", status)
	}
	if _, page, _ := b.get("/exchange/accepteddomains"); strings.Contains(page, "fabrikam.com") {
		t.Error("the list shows Fabrikam's domain")
	}
	v := f.browser()
	_, vcsrf := v.signIn("vera@contoso.com", pw)
	if _, page, _ := v.get("/exchange/accepteddomains"); strings.Contains(page, "add-accepted-domain") || strings.Contains(page, "data-remove-domain") {
		t.Error("View-Only sees change controls")
	}
	if status, _, _ := v.post("/exchange/accepteddomains", url.Values{"csrf": {vcsrf}, "domainName": {"evil.contoso.com"}}); status != http.StatusForbidden {
		t.Errorf("View-Only add: %d", status)
	}
	if status, _, _ := v.post("/exchange/accepteddomains/contoso.com", url.Values{"csrf": {vcsrf}, "action": {"remove"}}); status != http.StatusForbidden {
		t.Errorf("View-Only remove: %d", status)
	}
}

// queuedStore shows fixed queue items: the queue itself belongs to the
// delivery package; the page's part is to list and to call the cmdlets.
type queuedStore struct {
	store.Store
	items []store.QueueItem
}

func (s *queuedStore) QueueItems(context.Context) ([]store.QueueItem, error) { return s.items, nil }

// queueControl records what the cmdlets asked of the delivery queue.
type queueControl struct {
	retried []int64
	removed []int64
	withNDR []bool
}

func (c *queueControl) Retry(_ context.Context, ids []int64) (int, error) {
	c.retried = append(c.retried, ids...)
	return len(ids), nil
}

func (c *queueControl) Remove(_ context.Context, items []store.QueueItem, withNDR bool) error {
	for _, it := range items {
		c.removed = append(c.removed, it.ID)
		c.withNDR = append(c.withNDR, withNDR)
	}
	return nil
}

func TestQueues(t *testing.T) {
	f := newFixture(t)
	contoso, fabrikam := f.contosoID(), f.svc.Dir.Load().MailboxByAddress("fab@fabrikam.com").OrgID
	past := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	qs := &queuedStore{Store: f.st, items: []store.QueueItem{
		{ID: 11, Subject: "Invoice", FromAddress: "sean@contoso.com", Recipient: "bob@outside.example", Attempts: 2, LastError: "451 4.4.0 try later", NotBefore: past, ReceivedAt: past, OrgID: contoso},
		{ID: 12, Subject: "Report", FromAddress: "sean@contoso.com", Recipient: "amy@outside.example", Attempts: 1, NotBefore: past, ReceivedAt: past, OrgID: contoso},
		{ID: 21, Subject: "Fabrikam secret", FromAddress: "fab@fabrikam.com", Recipient: "x@elsewhere.example", Attempts: 1, NotBefore: past, ReceivedAt: past, OrgID: fabrikam},
	}}
	qc := &queueControl{}
	f.svc.Store, f.svc.Queue, f.svc.Hostname = qs, qc, "mail.contoso.com"

	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	_, page, _ := b.get("/exchange/queues")
	for _, want := range []string{`data-retry-queue="mail.contoso.com\outside.example"`, "451 4.4.0 try later", "bob@outside.example", "Remove (without NDR)"} {
		if !strings.Contains(page, want) {
			t.Errorf("the queues page lacks %q", want)
		}
	}
	if strings.Contains(page, "Fabrikam secret") || strings.Contains(page, "elsewhere.example") {
		t.Error("the queues page shows Fabrikam's mail")
	}
	if status, body, _ := b.post("/exchange/queues/retry", url.Values{"csrf": {csrf}, "identity": {`mail.contoso.com\outside.example`}}); status != http.StatusSeeOther {
		t.Fatalf("retry: %d\n%s", status, body)
	}
	if len(qc.retried) != 2 {
		t.Errorf("retried %v, want the two contoso copies", qc.retried)
	}
	if status, body, _ := b.post("/exchange/queues/remove", url.Values{"csrf": {csrf}, "identity": {`mail.contoso.com\outside.example\12`}, "withNDR": {"false"}}); status != http.StatusSeeOther {
		t.Fatalf("remove: %d\n%s", status, body)
	}
	if len(qc.removed) != 1 || qc.removed[0] != 12 || qc.withNDR[0] {
		t.Errorf("removed %v with NDR %v", qc.removed, qc.withNDR)
	}
	if es := f.audited(contoso, "Remove-QueueMessage"); len(es) != 1 || !strings.Contains(es[0].Parameters, "WithNDR") {
		t.Errorf("audit: %+v", es)
	}
	// No NDR choice: the field says so.
	if status, body, _ := b.post("/exchange/queues/remove", url.Values{"csrf": {csrf}, "identity": {`11`}}); status != http.StatusBadRequest || !strings.Contains(body, "withNDR-error") {
		t.Errorf("remove without a choice: %d", status)
	}
	// Another organization's queue and message are not found.
	for path, id := range map[string]string{"/exchange/queues/retry": `mail.contoso.com\elsewhere.example`, "/exchange/queues/remove": `mail.contoso.com\elsewhere.example\21`} {
		if status, _, _ := b.post(path, url.Values{"csrf": {csrf}, "identity": {id}, "withNDR": {"true"}}); status != http.StatusNotFound {
			t.Errorf("%s %s: %d, want 404", path, id, status)
		}
	}
	if len(qc.retried) != 2 || len(qc.removed) != 1 {
		t.Errorf("Fabrikam's mail was touched: retried %v removed %v", qc.retried, qc.removed)
	}
	// View-Only: sees the queues, no Retry or Remove; forged POSTs refused.
	v := f.browser()
	_, vcsrf := v.signIn("vera@contoso.com", pw)
	if _, page, _ := v.get("/exchange/queues"); strings.Contains(page, "data-retry-queue") || strings.Contains(page, "data-remove-message") || !strings.Contains(page, "bob@outside.example") {
		t.Error("View-Only sees change controls, or no queue")
	}
	if status, _, _ := v.post("/exchange/queues/retry", url.Values{"csrf": {vcsrf}, "identity": {"outside.example"}}); status != http.StatusForbidden {
		t.Errorf("View-Only retry: %d", status)
	}
	if status, _, _ := v.post("/exchange/queues/remove", url.Values{"csrf": {vcsrf}, "identity": {"11"}, "withNDR": {"true"}}); status != http.StatusForbidden {
		t.Errorf("View-Only remove: %d", status)
	}
	if len(qc.retried) != 2 || len(qc.removed) != 1 {
		t.Error("View-Only changed the queue")
	}
}

// reportStore answers the SMTP AUTH clients report with fixed rows.
type reportStore struct {
	store.Store
	rows []store.SmtpAuthClientRow
}

func (s *reportStore) SmtpAuthClients(context.Context, time.Time) ([]store.SmtpAuthClientRow, error) {
	return s.rows, nil
}

func TestSmtpAuthClientsReport(t *testing.T) {
	f := newFixture(t)
	dir := f.svc.Dir.Load()
	last := time.Date(2026, 4, 30, 10, 0, 0, 0, time.UTC)
	f.svc.Store = &reportStore{Store: f.st, rows: []store.SmtpAuthClientRow{
		{Mailbox: dir.MailboxByAddress("scanner@contoso.com").ID, TLSVersion: "TLS 1.2", AuthProtocol: "Basic", Messages: 3, Last: last},
		{Mailbox: dir.MailboxByAddress("secret@fabrikam.com").ID, TLSVersion: "TLS 1.3", AuthProtocol: "OAuth", Messages: 9, Last: last},
	}}
	b := f.browser()
	b.signIn("vera@contoso.com", pw)
	status, page, _ := b.get("/exchange/reports/smtpauthclients")
	if status != http.StatusOK || !strings.Contains(page, "scanner@contoso.com") || !strings.Contains(page, "Basic") || !strings.Contains(page, "100.0%") {
		t.Errorf("report: %d\n%s", status, page)
	}
	if strings.Contains(page, "secret@fabrikam.com") {
		t.Error("the report shows Fabrikam's sender")
	}
	status, page, _ = b.get("/exchange/reports/smtpauthclients?days=365")
	if status != http.StatusBadRequest || !strings.Contains(page, `id="days-error"`) || !strings.Contains(page, "1 to 90") {
		t.Errorf("days=365: %d", status)
	}
	status, page, _ = b.get("/exchange/reports/smtpauthclients?days=x")
	if status != http.StatusBadRequest || !strings.Contains(page, `id="days-error"`) {
		t.Errorf("days=x: %d\n%s", status, page)
	}
}

func TestAuditLogPage(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	b.post("/exchange/settings/mailflow", url.Values{"csrf": {csrf}, "smtpAuthOff": {"on"}, "allowLegacyTls": {"on"}})
	fb := f.browser()
	_, fcsrf := fb.signIn("fab@fabrikam.com", pw)
	fb.post("/exchange/settings/mailflow", url.Values{"csrf": {fcsrf}, "rejectDirectSend": {"on"}})

	v := f.browser()
	v.signIn("vera@contoso.com", pw)
	_, page, _ := v.get("/exchange/auditlog")
	if !strings.Contains(page, "Set-TransportConfig") || !strings.Contains(page, "sean@contoso.com (admin center)") {
		t.Errorf("the audit log lacks sean's change:\n%s", page)
	}
	if strings.Contains(page, "fab@fabrikam.com") || strings.Contains(page, "Set-OrganizationConfig</td>") {
		t.Error("the audit log shows Fabrikam's change")
	}
	// Filters: a cmdlet that did not run, then dates around the change.
	if _, page, _ := v.get("/exchange/auditlog?cmdlets=Set-CASMailbox"); strings.Contains(page, "Set-TransportConfig</td>") {
		t.Error("the cmdlet filter does not filter")
	}
	// The audit log records the real time of the change: the day filter
	// is checked against today.
	today := time.Now().Format("2006-01-02")
	if _, page, _ := v.get("/exchange/auditlog?start=" + today + "&end=" + today + "&cmdlets=Set-TransportConfig"); !strings.Contains(page, "Set-TransportConfig</td>") {
		t.Errorf("today's change is not found with start=end=today:\n%s", page)
	}
	if _, page, _ := v.get("/exchange/auditlog?end=2001-01-01"); strings.Contains(page, "Set-TransportConfig</td>") {
		t.Error("the end date does not filter")
	}
	status, page, _ := v.get("/exchange/auditlog?start=yesterday")
	if status != http.StatusBadRequest || !strings.Contains(page, `id="start-error"`) {
		t.Errorf("a bad date: %d", status)
	}
}
