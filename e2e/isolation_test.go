package e2e

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// twoOrganizations prepares contoso.com in the default organization
// (named "Default", with sean@contoso.com) and Fabrikam (fabrikam.com,
// kim@fabrikam.com), each with an Organization Management API key.
func twoOrganizations(t *testing.T, in *instance) (contosoKey, fabrikamKey string) {
	t.Helper()
	in.mailbox("sean", "Sean-Pass-1")
	in.admin("New-Organization", "-Name", "Fabrikam")
	in.admin("--organization", "Fabrikam", "New-AcceptedDomain", "-Name", "fabrikam.com", "-DomainName", "fabrikam.com")
	in.admin("--organization", "Fabrikam", "New-Mailbox", "-Name", "kim", "-PrimarySmtpAddress", "kim@fabrikam.com", "-Password", "Kim-Pass-12")
	contosoKey = fieldValue(in.admin("New-ApiKey", "-Name", "contoso-ops", "-Role", "Organization Management"), "Key")
	fabrikamKey = fieldValue(in.admin("--organization", "Fabrikam", "New-ApiKey", "-Name", "fabrikam-ops", "-Role", "Organization Management"), "Key")
	return contosoKey, fabrikamKey
}

// rest runs a cmdlet through the REST API with an API key and returns the
// HTTP status and body.
func (in *instance) rest(t *testing.T, adminAddr, key, cmdlet, body string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: in.tlsConfig()}}
	req, err := http.NewRequest("POST", "https://"+adminAddr+"/api/v1/cmdlets/"+cmdlet, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "localhost"
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("REST %s: %v", cmdlet, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConnectorIsolation: an OnPremises connector that Fabrikam's
// Organization Management key creates for all of 127.0.0.0/8 changes
// nothing about Contoso's mail: Contoso's RejectDirectSend still refuses,
// Contoso's copies carry no Fabrikam attribution and stay in Contoso's
// trace, Fabrikam cannot relay for Contoso's senders, and a message to both
// organizations is judged and traced per organization.
func TestConnectorIsolation(t *testing.T) {
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	_, fabKey := twoOrganizations(t, in)
	in.admin("Set-OrganizationConfig", "-RejectDirectSend", "$true")
	in.start()

	status, body := in.rest(t, adminAddr, fabKey, "New-InboundConnector",
		`{"Name": "Fabrikam grab", "ConnectorType": "OnPremises", "SenderIPAddresses": ["127.0.0.0/8"], "RequireTls": false}`)
	if status != 200 {
		t.Fatalf("Fabrikam's connector: %d %s", status, body)
	}

	send := func(src, from string, to ...string) string {
		c := dialFrom(t, src, in.addrs["mx"])
		c.expect("EHLO device", "250")
		return c.send(from, to, message(from, to[0], "isolation "+from+" "+src))
	}
	// Contoso's RejectDirectSend is not switched off by Fabrikam's connector.
	if got := send("127.0.0.3", "scanner@contoso.com", "sean@contoso.com"); !strings.HasPrefix(got, "550 5.7.68 ") {
		t.Errorf("Direct Send to Contoso from Fabrikam's range: %q", got)
	}
	// Fabrikam's own mail is attributed to its connector.
	if got := send("127.0.0.3", "scanner@fabrikam.com", "kim@fabrikam.com"); !strings.HasPrefix(got, "250 ") {
		t.Errorf("Fabrikam through its connector: %q", got)
	}
	if got := in.deliveredHeader(t, "kim@fabrikam.com", "Kim-Pass-12", "Inbox", "X-Postern-Inbound-Connector"); got != "Fabrikam grab" {
		t.Errorf("Fabrikam's copy: connector header %q", got)
	}
	// Anonymous mail from x@fabrikam.com to sean@contoso.com is Contoso's.
	if got := send("127.0.0.4", "x@fabrikam.com", "sean@contoso.com"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("fabrikam.com sender to Contoso: %q", got)
	}
	if got := in.deliveredHeader(t, "sean@contoso.com", "Sean-Pass-1", "Inbox", "X-Postern-Inbound-Connector"); got != "" {
		t.Errorf("Contoso's copy was attributed to Fabrikam's connector %q", got)
	}
	// Fabrikam's connector relays nothing for Contoso's senders, and
	// relays Fabrikam's.
	if got := send("127.0.0.5", "app@contoso.com", "bob@outside.example"); !strings.HasPrefix(got, "550 5.7.64 ") {
		t.Errorf("relay for Contoso through Fabrikam's connector: %q", got)
	}
	if got := send("127.0.0.5", "app@fabrikam.com", "carol@outside.example"); !strings.HasPrefix(got, "250 ") {
		t.Errorf("relay for Fabrikam: %q", got)
	}
	// One message, recipients in both organizations: each copy is judged
	// and traced by its own organization.
	if got := send("127.0.0.6", "news@tailspin.example", "sean@contoso.com", "kim@fabrikam.com"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("message to both organizations: %q", got)
	}
	if got := in.deliveredHeader(t, "kim@fabrikam.com", "Kim-Pass-12", "Inbox", "Subject"); !strings.Contains(got, "news@tailspin.example") {
		t.Errorf("kim's newest message: %q", got)
	}
	if got := in.deliveredHeader(t, "kim@fabrikam.com", "Kim-Pass-12", "Inbox", "X-Postern-Inbound-Connector"); got != "Fabrikam grab" {
		t.Errorf("Fabrikam's copy of the shared message: connector %q", got)
	}
	if got := in.deliveredHeader(t, "sean@contoso.com", "Sean-Pass-1", "Inbox", "X-Postern-Inbound-Connector"); got != "" {
		t.Errorf("Contoso's copy of the shared message: connector %q", got)
	}

	contoso := in.shell("Get-MessageTrace | Format-Table SenderAddress,RecipientAddress")
	fabrikam := in.admin("--organization", "Fabrikam", "shell", "-c", "Get-MessageTrace | Format-Table SenderAddress,RecipientAddress")
	for _, want := range []string{"x@fabrikam.com", "news@tailspin.example", "sean@contoso.com"} {
		if !strings.Contains(contoso, want) {
			t.Errorf("Contoso's trace lacks %s:\n%s", want, contoso)
		}
	}
	for _, unwanted := range []string{"x@fabrikam.com", "sean@contoso.com", "app@contoso.com"} {
		if strings.Contains(fabrikam, unwanted) {
			t.Errorf("Fabrikam's trace shows %s:\n%s", unwanted, fabrikam)
		}
	}
	for _, want := range []string{"kim@fabrikam.com", "carol@outside.example", "news@tailspin.example"} {
		if !strings.Contains(fabrikam, want) {
			t.Errorf("Fabrikam's trace lacks %s:\n%s", want, fabrikam)
		}
	}
	if strings.Contains(contoso, "kim@fabrikam.com") || strings.Contains(contoso, "carol@") {
		t.Errorf("Contoso's trace shows Fabrikam's recipients:\n%s", contoso)
	}
}

// TestExclusiveClaims: two organizations cannot claim overlapping sender IP
// ranges, the same certificate name, or each other's domain trees; the
// refusals do not say which organization holds the claim.
func TestExclusiveClaims(t *testing.T) {
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	contosoKey, fabKey := twoOrganizations(t, in)
	in.admin("New-InboundConnector", "-Name", "Contoso printers", "-ConnectorType", "OnPremises", "-SenderIPAddresses", "127.0.0.2", "-RequireTls", "$false")
	in.admin("New-InboundConnector", "-Name", "Contoso relays", "-ConnectorType", "OnPremises", "-TlsSenderCertificateName", "*.contoso.com")
	in.admin("--organization", "Fabrikam", "New-AcceptedDomain", "-Name", "eu.tailspin.example", "-DomainName", "eu.tailspin.example")
	in.start()

	leaks := func(what, out string) {
		t.Helper()
		for _, name := range []string{"Default", "Contoso printers", "Contoso relays", "Fabrikam"} {
			if strings.Contains(out, name) {
				t.Errorf("%s names %q: %s", what, name, out)
			}
		}
	}
	refused := func(what string, status int, body string) {
		t.Helper()
		if status == 200 {
			t.Errorf("%s was allowed: %s", what, body)
		}
		leaks(what, body)
	}
	status, body := in.rest(t, adminAddr, fabKey, "New-InboundConnector", `{"Name": "F range", "ConnectorType": "OnPremises", "SenderIPAddresses": ["127.0.0.0/24"]}`)
	refused("an overlapping range", status, body)
	if !strings.Contains(body, "overlaps") {
		t.Errorf("the refusal does not say why: %s", body)
	}
	status, body = in.rest(t, adminAddr, fabKey, "New-InboundConnector", `{"Name": "F cert", "ConnectorType": "OnPremises", "TlsSenderCertificateName": "relay.contoso.com"}`)
	refused("a certificate name under another organization's", status, body)
	// Set-InboundConnector is held to the same rule.
	if status, body = in.rest(t, adminAddr, fabKey, "New-InboundConnector", `{"Name": "F own", "ConnectorType": "OnPremises", "SenderIPAddresses": ["127.0.1.0/24"]}`); status != 200 {
		t.Fatalf("a free range: %d %s", status, body)
	}
	status, body = in.rest(t, adminAddr, fabKey, "Set-InboundConnector", `{"Identity": "F own", "SenderIPAddresses": ["127.0.0.2"]}`)
	refused("Set-InboundConnector onto another organization's address", status, body)
	// Within one organization ranges may overlap.
	if status, body = in.rest(t, adminAddr, contosoKey, "New-InboundConnector", `{"Name": "Contoso wide", "ConnectorType": "Partner", "SenderIPAddresses": ["127.0.0.0/30"]}`); status != 200 {
		t.Errorf("an overlap within one organization: %d %s", status, body)
	}

	status, body = in.rest(t, adminAddr, fabKey, "New-AcceptedDomain", `{"Name": "contoso.com", "DomainName": "contoso.com"}`)
	refused("another organization's domain", status, body)
	if !strings.Contains(body, "already exists") {
		t.Errorf("the refusal of an existing domain: %s", body)
	}
	status, body = in.rest(t, adminAddr, fabKey, "New-AcceptedDomain", `{"Name": "sales.contoso.com", "DomainName": "sales.contoso.com"}`)
	refused("a subdomain of another organization's domain", status, body)
	status, body = in.rest(t, adminAddr, contosoKey, "New-AcceptedDomain", `{"Name": "tailspin.example", "DomainName": "tailspin.example"}`)
	refused("a parent of another organization's domain", status, body)
	// The CLI gives the same answers.
	out, err := in.try("--organization", "Fabrikam", "New-AcceptedDomain", "-Name", "x.contoso.com", "-DomainName", "x.contoso.com")
	if err == nil || !strings.Contains(out, "subdomain or a parent") {
		t.Errorf("CLI: %v %s", err, out)
	}
	leaks("the CLI refusal", out)
	if got := in.shell("Get-AcceptedDomain | Format-Table DomainName"); strings.Contains(got, "tailspin") {
		t.Errorf("Contoso got the parent domain:\n%s", got)
	}
}

// TestDiagnosticsIsolation: Test-SmtpSubmission run by Fabrikam about a
// client that Contoso's connector covers, with a Contoso sender and
// recipient, names none of Contoso's objects; run by Contoso it does.
func TestDiagnosticsIsolation(t *testing.T) {
	in := newInstance(t)
	twoOrganizations(t, in)
	in.admin("New-InboundConnector", "-Name", "Contoso printers", "-ConnectorType", "OnPremises", "-SenderIPAddresses", "127.0.0.2", "-RequireTls", "$false")
	in.admin("Set-Mailbox", "-Identity", "sean@contoso.com", "-EmailAddresses", "@{Add='sean.alias@contoso.com'}")

	args := []string{"Test-SmtpSubmission", "-Identity", "x@contoso.com", "-Port", "25", "-UseTls", "$false", "-ClientIP", "127.0.0.2",
		"-From", "x@contoso.com", "-Recipient", "sean.alias@contoso.com"}
	script := strings.Join(quoteAll(args), " ") + " | Format-List"
	fabrikam := in.admin("--organization", "Fabrikam", "shell", "-c", script)
	for _, secret := range []string{"Contoso printers", "sean@contoso.com", "Default"} {
		if strings.Contains(fabrikam, secret) {
			t.Errorf("Fabrikam's diagnosis reveals %q:\n%s", secret, fabrikam)
		}
	}
	if !strings.Contains(fabrikam, "not an address of this organization") {
		t.Errorf("Fabrikam's diagnosis of a foreign recipient:\n%s", fabrikam)
	}
	// Relay: the connector that would carry it is Contoso's, not Fabrikam's.
	relay := strings.Join(quoteAll([]string{"Test-SmtpSubmission", "-Identity", "x@contoso.com", "-Port", "25", "-UseTls", "$false",
		"-ClientIP", "127.0.0.2", "-From", "x@contoso.com", "-Recipient", "bob@outside.example"}), " ") + " | Format-List"
	fabRelay := in.admin("--organization", "Fabrikam", "shell", "-c", relay)
	if strings.Contains(fabRelay, "Contoso printers") || !strings.Contains(verdictOf(fabRelay), "5.7.64") {
		t.Errorf("Fabrikam's relay diagnosis:\n%s", fabRelay)
	}
	// The owner sees its own connector.
	contoso := in.shell(relay)
	if !strings.Contains(contoso, "Contoso printers") || !strings.HasPrefix(verdictOf(contoso), "250") {
		t.Errorf("Contoso's own diagnosis:\n%s", contoso)
	}
	// Lookups: Fabrikam lists none of Contoso's connectors.
	if got := in.admin("--organization", "Fabrikam", "Get-InboundConnector"); strings.Contains(got, "Contoso printers") {
		t.Errorf("Get-InboundConnector as Fabrikam:\n%s", got)
	}
}

// TestOAuthAppInSecondOrganization: an app registered with New-OAuthApp in
// a second organization gets a token from the built-in issuer and sends as
// a mailbox of its organization; it cannot sign in as another
// organization's mailbox even where that organization granted an app of
// the same name.
func TestOAuthAppInSecondOrganization(t *testing.T) {
	curl := requireTool(t, "curl")
	adminAddr := freeAddr(t)
	base := "https://" + adminAddr
	in := newInstance(t, "--admin", adminAddr, "--public-url", base)
	twoOrganizations(t, in)
	fab := func(args ...string) string {
		return in.admin(append([]string{"--organization", "Fabrikam"}, args...)...)
	}
	fab("Set-CASMailbox", "-Identity", "kim@fabrikam.com", "-SmtpClientAuthenticationDisabled", "$false")
	app := fab("shell", "-c", "New-OAuthApp -Name 'Kim app' | Format-List *")
	appID, secret := fieldValue(app, "AppId"), fieldValue(app, "ClientSecret")
	if appID == "" || secret == "" {
		t.Fatalf("New-OAuthApp:\n%s", app)
	}
	fab("Add-MailboxPermission", "-Identity", "kim@fabrikam.com", "-User", "Kim app", "-AccessRights", "FullAccess")
	if got := fab("Get-ServicePrincipal"); !strings.Contains(got, appID) {
		t.Fatalf("Get-ServicePrincipal:\n%s", got)
	}
	in.start()

	out, err := exec.Command(curl, "-sS", "--cacert", in.caFile(), "--resolve", "localhost:"+portOf(adminAddr)+":127.0.0.1",
		"-u", appID+":"+secret, "-d", "grant_type=client_credentials", "-d", "scope=https://outlook.office365.com/.default",
		"https://localhost:"+portOf(adminAddr)+"/oauth2/v2.0/token").CombinedOutput()
	token := jsonField(string(out), "access_token")
	if err != nil || token == "" {
		t.Fatalf("token: %v\n%s", err, out)
	}
	xoauth := func(user string) string {
		c := dial(t, in.addrs["submission"])
		c.expect("EHLO app", "250")
		c.startTLS(in.tlsConfig())
		c.expect("EHLO app", "250")
		got := c.do("AUTH XOAUTH2 " + b64("user="+user+"\x01auth=Bearer "+token+"\x01\x01"))
		if strings.HasPrefix(got, "334 ") {
			got = c.do("") // XOAUTH2's error challenge is answered with an empty line
		}
		return got
	}
	if got := xoauth("kim@fabrikam.com"); !strings.HasPrefix(got, "235") {
		t.Errorf("the second organization's app as its mailbox: %q\n%s", got, in.log.String())
	}
	if got := xoauth("sean@contoso.com"); !strings.HasPrefix(got, "535") {
		t.Errorf("the app as another organization's mailbox: %q", got)
	}
	// The first organization turning its built-in issuer off stops only
	// its own apps.
	in.admin("Set-AuthServer", "-Identity", "Postern", "-Enabled", "$false")
	if got := xoauth("kim@fabrikam.com"); !strings.HasPrefix(got, "235") {
		t.Errorf("after another organization disabled its built-in AuthServer: %q", got)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// jsonField extracts a string field from a flat JSON object.
func jsonField(body, name string) string {
	_, rest, ok := strings.Cut(body, `"`+name+`":"`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}
