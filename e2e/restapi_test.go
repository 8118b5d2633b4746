package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRESTAPI drives the REST API of the real server with independent
// clients (curl, python3's requests) and checks every answer against the
// OpenAPI document the server serves, with python3's jsonschema: the
// document is the API's contract, and the answers keep it. It also proves
// the role groups and that one organization's keys never see or change
// another organization's objects.
func TestRESTAPI(t *testing.T) {
	py := debianPython(t, "jsonschema", "requests")
	curl := requireTool(t, "curl")
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	sean := in.mailbox("sean", "Sean-Pass-1")
	in.admin("New-Mailbox", "-Name", "scanner", "-PrimarySmtpAddress", "scanner@contoso.com", "-Shared")
	in.admin("New-Organization", "-Name", "Fabrikam")
	in.admin("--organization", "Fabrikam", "New-AcceptedDomain", "-Name", "fabrikam.com", "-DomainName", "fabrikam.com")
	in.admin("--organization", "Fabrikam", "New-Mailbox", "-Name", "ann", "-PrimarySmtpAddress", "ann@fabrikam.com", "-Password", "Ann-Pass-1")
	keys := map[string]string{}
	for name, role := range map[string]string{"ops": "Organization Management", "helpdesk": "Recipient Management", "auditor": "View-Only"} {
		out := in.admin("New-ApiKey", "-Name", name, "-Role", role)
		keys[name] = fieldValue(out, "Key")
	}
	keys["fabops"] = fieldValue(in.admin("--organization", "Fabrikam", "New-ApiKey", "-Name", "fabops", "-Role", "Organization Management"), "Key")
	for name, k := range keys {
		if !strings.HasPrefix(k, "pstn_") {
			t.Fatalf("key %s: %q", name, k)
		}
	}
	if got := in.admin("Get-ApiKey"); strings.Contains(got, keys["ops"]) || !strings.Contains(got, keys["ops"][:11]) {
		t.Errorf("Get-ApiKey must show the prefix, never the key:\n%s", got)
	}
	in.start()

	// A message for outside waits in the queue (the test DNS has no MX),
	// so the queue and trace resources have something to answer.
	c := dial(t, in.addrs["submission"])
	c.login(in.tlsConfig(), sean, "Sean-Pass-1")
	if got := c.send(sean, []string{"bob@outside.example"}, message(sean, "bob@outside.example", "REST traced")); !strings.HasPrefix(got, "250 ") {
		t.Fatal(got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(in.shell("Get-QueueMessage | Format-List Status"), "Retry") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}

	base := "https://" + adminAddr + "/api/v1/"
	// curl, as an automation script would call it.
	out, err := exec.Command(curl, "-sS", "--cacert", in.caFile(), "--resolve", "localhost:"+portOf(adminAddr)+":127.0.0.1",
		"-H", "X-API-Key: "+keys["helpdesk"], "-H", "Content-Type: application/json", "-X", "POST",
		"-d", `{"Identity": "sean@contoso.com", "SmtpClientAuthenticationDisabled": true}`,
		"-w", "\n%{http_code}", "https://localhost:"+portOf(adminAddr)+"/api/v1/cmdlets/Set-CASMailbox").CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "\n200") {
		t.Fatalf("curl Set-CASMailbox: %v\n%s", err, out)
	}
	if got := in.shell("Get-CASMailbox -Identity sean@contoso.com | Format-List SmtpClientAuthenticationDisabled"); !strings.Contains(got, ": True") {
		t.Errorf("the API's change is not in effect:\n%s", got)
	}

	script := filepath.Join(t.TempDir(), "check_api.py")
	if err := os.WriteFile(script, []byte(checkAPIScript), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, script, base, in.caFile(), keys["ops"], keys["helpdesk"], keys["auditor"], keys["fabops"])
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("check_api.py: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if !strings.Contains(string(out), "validated") {
		t.Fatalf("check_api.py did not validate anything:\n%s", out)
	}

	// The audit log, read with the shell, names the API keys.
	log := in.shell("Search-AdminAuditLog | Format-List Caller,CmdletName,Succeeded")
	for _, want := range []string{"API key 'helpdesk' (Default)", "API key 'ops' (Default)", "API key 'auditor' (Default)"} {
		if !strings.Contains(log, want) {
			t.Errorf("Search-AdminAuditLog lacks %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, "fabops") {
		t.Errorf("Default's audit log has Fabrikam's changes:\n%s", log)
	}
	if got := in.admin("--organization", "Fabrikam", "Search-AdminAuditLog"); !strings.Contains(got, "API key 'fabops' (Fabrikam)") {
		t.Errorf("Fabrikam's audit log:\n%s", got)
	}
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// checkAPIScript sends requests with python3's requests and validates each
// answer against the schema that the served OpenAPI document gives for its
// operation and status (JSON Schema draft 2020-12, as OpenAPI 3.1 uses).
const checkAPIScript = `
import json, sys, urllib.parse
import requests, jsonschema

base, ca, ops, helpdesk, auditor, fabops = sys.argv[1:]
s = requests.Session()
# verify is given per request: a session's is overridden by
# REQUESTS_CA_BUNDLE when that is set.

doc = s.get(base + "openapi.json", verify=ca).json()
assert doc["openapi"] == "3.1.0", doc.get("openapi")
resolver = jsonschema.RefResolver.from_schema(doc)
failures, validated = [], 0

def call(key, method, template, expect, path=None, body=None, query=None):
    global validated
    path = path or template
    headers = {"Authorization": "Bearer " + key} if key else {}
    r = s.request(method, base + path.lstrip("/"), headers=headers, json=body, params=query, verify=ca)
    where = "%s %s" % (method, path)
    if r.status_code != expect:
        failures.append("%s: status %d, want %d: %s" % (where, r.status_code, expect, r.text))
        return None
    op = doc["paths"].get(template, {}).get(method.lower())
    if op is None:
        failures.append("%s: the document has no operation %s %s" % (where, method, template))
        return None
    # The request, too, is what the document describes (unless it is a
    # deliberately bad one).
    if body is not None and expect != 400:
        rb = op.get("requestBody")
        if rb is None:
            failures.append("%s: the document takes no body" % where)
        else:
            if "$ref" in rb:
                rb = resolver.resolve(rb["$ref"])[1]
            try:
                jsonschema.Draft202012Validator(rb["content"]["application/json"]["schema"], resolver=resolver).validate(body)
                validated += 1
            except jsonschema.ValidationError as e:
                failures.append("%s: the request does not match the document: %s" % (where, e.message))
    resp = op["responses"].get(str(expect))
    if resp is None:
        failures.append("%s: the document has no %d answer" % (where, expect))
        return None
    if "content" not in resp:
        if r.content:
            failures.append("%s: a body where the document has none: %s" % (where, r.text))
        return None
    schema = resp["content"]["application/json"]["schema"]
    data = r.json()
    try:
        jsonschema.Draft202012Validator(schema, resolver=resolver).validate(data)
        validated += 1
    except jsonschema.ValidationError as e:
        failures.append("%s: the answer does not match the document: %s\n%s" % (where, e.message, json.dumps(data)[:2000]))
    return data

def names(data):
    return sorted(o.get("Name") or o.get("Identity") for o in data["value"])

# Reading every resource, as each role.
for key in (ops, helpdesk, auditor):
    for path in ("/organizations", "/accepted-domains", "/mailboxes", "/cas-mailboxes", "/users", "/authentication-policies",
                 "/recipient-permissions", "/mailbox-permissions", "/inbound-connectors", "/outbound-connectors",
                 "/dkim-signing-configs", "/auth-servers", "/service-principals", "/oauth-apps", "/queues", "/queue-messages",
                 "/message-trace", "/smtp-auth-clients", "/admin-audit-log"):
        call(key, "GET", path, 200)
    call(key, "GET", "/transport-config", 200)
    call(key, "GET", "/organization-config", 200)
    call(key, "GET", "/mailboxes/{identity}", 200, path="/mailboxes/sean@contoso.com")

# Organization Management creates, changes and removes.
call(ops, "POST", "/accepted-domains", 201, body={"Name": "contoso.net", "DomainName": "contoso.net"})
call(ops, "POST", "/accepted-domains", 409, body={"Name": "contoso.net", "DomainName": "contoso.net"})
call(ops, "POST", "/inbound-connectors", 201, body={"Name": "Printers", "ConnectorType": "OnPremises", "SenderIPAddresses": ["192.0.2.0/24"]})
call(ops, "PATCH", "/inbound-connectors/{identity}", 200, path="/inbound-connectors/Printers", body={"Comment": "third floor"})
# A smart host makes the server connect where the caller says: the server's
# administrator's call, not an organization's (403); routing by MX is theirs.
call(ops, "POST", "/outbound-connectors", 403, body={"Name": "M365", "RecipientDomains": ["*"], "SmartHosts": ["smtp.office365.com"], "UseMXRecord": False})
call(ops, "POST", "/outbound-connectors", 201, body={"Name": "M365", "RecipientDomains": ["fabrikam.example"], "UseMXRecord": True})
call(ops, "POST", "/dkim-signing-configs", 201, body={"DomainName": "contoso.com", "Enabled": True, "KeySize": 1024})
call(ops, "POST", "/dkim-signing-configs/{identity}/rotate", 200, path="/dkim-signing-configs/contoso.com/rotate")
app = call(ops, "POST", "/oauth-apps", 201, body={"Name": "Scan app"})
if app and len(app.get("ClientSecret") or "") < 40:
    failures.append("POST /oauth-apps: no client secret in %s" % app)
call(ops, "POST", "/authentication-policies", 201, body={"Name": "Block Basic"})
call(ops, "PATCH", "/users/{identity}", 200, path="/users/sean@contoso.com", body={"AuthenticationPolicy": "Block Basic"})
call(ops, "PATCH", "/transport-config", 200, body={"SmtpBasicAuthDisabled": False})
call(ops, "PATCH", "/organization-config", 200, body={"RejectDirectSend": True})
call(ops, "PATCH", "/mailboxes/{identity}", 200, path="/mailboxes/sean@contoso.com", body={"EmailAddresses": {"Add": ["sean.alias@contoso.com"]}})
call(ops, "GET", "/message-trace", 200, query={"SenderAddress": "sean@contoso.com"})
trace = call(ops, "POST", "/cmdlets/Get-MessageTraceV2", 200, body={"Subject": "REST traced"})
if trace and trace["value"]:
    tid = trace["value"][0]["MessageTraceId"]
    detail = call(ops, "GET", "/message-trace/{identity}", 200, path="/message-trace/" + tid, query={"RecipientAddress": "bob@outside.example"})
    events = [d["Event"] for d in (detail or {"value": []})["value"]]
    if "RECEIVE" not in events:
        failures.append("trace detail without RECEIVE: %s" % events)
else:
    failures.append("Get-MessageTraceV2 found no 'REST traced' message")
queues = call(ops, "GET", "/queues", 200)
if queues and queues["value"]:
    call(ops, "POST", "/queues/{identity}/retry", 200, path="/queues/" + urllib.parse.quote(queues["value"][0]["Identity"], safe="") + "/retry")
else:
    failures.append("no queue holds the message for outside")
call(ops, "POST", "/cmdlets/Test-SmtpSubmission", 200, body={"Identity": "sean@contoso.com", "Port": 587})
call(ops, "POST", "/cmdlets/Remove-Mailbox", 200, body={"Identity": "scanner@contoso.com", "WhatIf": True})
key = call(ops, "POST", "/api-keys", 201, body={"Name": "ci", "Role": "View-Only"})
call(ops, "GET", "/api-keys", 200)
call(ops, "DELETE", "/api-keys/{identity}", 204, path="/api-keys/ci")
if key:
    call(key["Key"], "GET", "/mailboxes", 401)
call(ops, "DELETE", "/inbound-connectors/{identity}", 204, path="/inbound-connectors/Printers")
call(ops, "GET", "/inbound-connectors/{identity}", 404, path="/inbound-connectors/Printers")
call(ops, "POST", "/cmdlets/Get-Mailbox", 400, body={"NoSuchParameter": 1})
call(ops, "POST", "/cmdlets/New-Organization", 403, body={"Name": "Mine"})

# Recipient Management: mailboxes and permissions, nothing else.
call(helpdesk, "PATCH", "/cas-mailboxes/{identity}", 200, path="/cas-mailboxes/sean@contoso.com", body={"SmtpClientAuthenticationDisabled": False})
call(helpdesk, "POST", "/recipient-permissions", 201, body={"Identity": "scanner@contoso.com", "Trustee": "sean@contoso.com", "AccessRights": "SendAs"})
call(helpdesk, "GET", "/recipient-permissions/{identity}", 200, path="/recipient-permissions/scanner@contoso.com")
call(helpdesk, "DELETE", "/recipient-permissions/{identity}", 204, path="/recipient-permissions/scanner@contoso.com",
     query={"Trustee": "sean@contoso.com", "AccessRights": "SendAs"})
call(helpdesk, "POST", "/mailboxes", 201, body={"Name": "frontdesk", "PrimarySmtpAddress": "frontdesk@contoso.com", "Shared": True})
call(helpdesk, "PATCH", "/transport-config", 403, body={"SmtpClientAuthenticationDisabled": False})
call(helpdesk, "POST", "/inbound-connectors", 403, body={"Name": "Sneaky", "SenderIPAddresses": ["0.0.0.0/0"]})
call(helpdesk, "GET", "/api-keys", 403)

# View-Only changes nothing.
call(auditor, "PATCH", "/cas-mailboxes/{identity}", 403, path="/cas-mailboxes/sean@contoso.com", body={"SmtpClientAuthenticationDisabled": True})
call(auditor, "DELETE", "/mailboxes/{identity}", 403, path="/mailboxes/frontdesk@contoso.com")
call(auditor, "POST", "/cmdlets/Retry-Queue", 403, body={"Identity": "outside.example"})

# Fabrikam's admin sees Fabrikam only, and can touch nothing of Default's.
fab = call(fabops, "GET", "/mailboxes", 200)
if fab and names(fab) != ["ann"]:
    failures.append("Fabrikam's key lists mailboxes %s" % names(fab))
for data, what in ((call(fabops, "GET", "/organizations", 200), ["Fabrikam"]), (call(fabops, "GET", "/accepted-domains", 200), ["fabrikam.com"])):
    if data and names(data) != what:
        failures.append("Fabrikam's key lists %s, want %s" % (names(data), what))
for what in ("/queues", "/queue-messages", "/message-trace", "/smtp-auth-clients", "/inbound-connectors", "/outbound-connectors", "/dkim-signing-configs", "/api-keys"):
    data = call(fabops, "GET", what, 200)
    if data and what != "/api-keys" and data["value"]:
        failures.append("Fabrikam's key sees Default's %s: %s" % (what, json.dumps(data)[:500]))
    if data and what == "/api-keys" and names(data) != ["fabops"]:
        failures.append("Fabrikam's key lists keys %s" % names(data))
call(fabops, "GET", "/mailboxes/{identity}", 404, path="/mailboxes/sean@contoso.com")
call(fabops, "PATCH", "/cas-mailboxes/{identity}", 404, path="/cas-mailboxes/sean@contoso.com", body={"SmtpClientAuthenticationDisabled": True})
call(fabops, "DELETE", "/mailboxes/{identity}", 404, path="/mailboxes/frontdesk@contoso.com")
call(fabops, "DELETE", "/api-keys/{identity}", 404, path="/api-keys/ops")
call(fabops, "POST", "/cmdlets/Set-Mailbox", 404, body={"Identity": "sean@contoso.com", "Password": "Taken-Over-1"})
call(fabops, "POST", "/recipient-permissions", 404, body={"Identity": "ann@fabrikam.com", "Trustee": "sean@contoso.com", "AccessRights": "SendAs"})
call(fabops, "GET", "/queue-messages/{identity}", 404, path="/queue-messages/1")
call(fabops, "PATCH", "/transport-config", 200, body={"SmtpClientAuthenticationDisabled": False})
tc = call(ops, "GET", "/transport-config", 200)
if tc and tc["SmtpClientAuthenticationDisabled"] is not True:
    failures.append("Fabrikam's transport change reached Default: %s" % tc)

call("", "GET", "/mailboxes", 401)
call("pstn_not-a-key", "GET", "/mailboxes", 401)

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("validated %d requests and answers against the OpenAPI document" % validated)
`
