package restapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/restapi"
	"postern.dev/postern/internal/server"
)

// script runs shell source as the server's administrator.
func (f *fixture) script(tb testing.TB, src string) {
	if resp := server.Execute(context.Background(), f.svc, server.AdminRequest{Script: src}); resp.Error != "" {
		tb.Fatal(resp.Error)
	}
}

// fixture is a server with two organizations: Default (contoso.com, with
// keys for each role) and Fabrikam (fabrikam.com, one key).
type fixture struct {
	t    testing.TB
	url  string
	svc  *admin.Service
	keys map[string]string
}

func newFixture(t testing.TB) *fixture {
	ctx := context.Background()
	svc, closeStore, err := server.OpenAdmin(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore() })
	if err := svc.EnsureBuiltInIssuer(ctx, "https://localhost:1"); err != nil {
		t.Fatal(err)
	}
	run := func(svc *admin.Service, script string) {
		t.Helper()
		if resp := server.Execute(ctx, svc, server.AdminRequest{Script: script}); resp.Error != "" {
			t.Fatalf("%s: %s", script, resp.Error)
		}
	}
	run(svc, `New-AcceptedDomain -Name contoso.com -DomainName contoso.com
New-Mailbox -Name sean -PrimarySmtpAddress sean@contoso.com -Password 'Passw0rd!x'
New-Mailbox -Name scanner -PrimarySmtpAddress scanner@contoso.com -Shared
New-Organization -Name Fabrikam`)
	fab, err := svc.ForOrganization("Fabrikam")
	if err != nil {
		t.Fatal(err)
	}
	run(fab, `New-AcceptedDomain -Name fabrikam.com -DomainName fabrikam.com
New-Mailbox -Name ann -PrimarySmtpAddress ann@fabrikam.com -Password 'Passw0rd!y'`)
	f := &fixture{t: t, svc: svc, keys: map[string]string{}}
	for name, role := range map[string]admin.Role{"ops": admin.OrganizationManagement, "helpdesk": admin.RecipientManagement, "auditor": admin.ViewOnly} {
		_, key, err := svc.NewAPIKey(ctx, name, role, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.keys[name] = key
	}
	_, f.keys["fabops"], err = fab.NewAPIKey(ctx, "fabops", admin.OrganizationManagement, 0)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&restapi.Handler{Admin: svc, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	f.url = hs.URL + restapi.Prefix
	return f
}

// do sends a request with a key and returns the status and decoded body.
func (f *fixture) do(key, method, path, body string) (int, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &v); err != nil {
			f.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode, v
}

// auditEntries summarises an audit log answer as "Caller Cmdlet Succeeded".
func auditEntries(body map[string]any) []string {
	var out []string
	list, _ := body["value"].([]any)
	for _, o := range list {
		m := o.(map[string]any)
		out = append(out, fmt.Sprintf("%s %s %v", m["Caller"], m["CmdletName"], m["Succeeded"]))
	}
	return out
}

// names lists the Name (or Identity) of a list answer's objects.
func names(body map[string]any) []string {
	var out []string
	list, _ := body["value"].([]any)
	for _, o := range list {
		m := o.(map[string]any)
		if n, ok := m["Name"].(string); ok {
			out = append(out, n)
		} else {
			out = append(out, m["Identity"].(string))
		}
	}
	return out
}

func TestRolesAndStatuses(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		key, method, path, body string
		want                    int
	}{
		{"", "GET", "mailboxes", "", 401},
		{"pstn_notakey", "GET", "mailboxes", "", 401},
		{"auditor", "GET", "mailboxes", "", 200},
		{"auditor", "GET", "transport-config", "", 200},
		{"auditor", "GET", "admin-audit-log", "", 200},
		{"auditor", "PATCH", "transport-config", `{"SmtpClientAuthenticationDisabled": false}`, 403},
		{"auditor", "PATCH", "cas-mailboxes/sean@contoso.com", `{"SmtpClientAuthenticationDisabled": false}`, 403},
		{"auditor", "GET", "api-keys", "", 403},
		{"auditor", "POST", "cmdlets/Set-CASMailbox", `{"Identity": "sean@contoso.com", "SmtpClientAuthenticationDisabled": false}`, 403},
		{"helpdesk", "PATCH", "cas-mailboxes/sean@contoso.com", `{"SmtpClientAuthenticationDisabled": false}`, 200},
		{"helpdesk", "POST", "recipient-permissions", `{"Identity": "scanner@contoso.com", "Trustee": "sean@contoso.com", "AccessRights": "SendAs"}`, 201},
		{"helpdesk", "PATCH", "transport-config", `{"SmtpClientAuthenticationDisabled": false}`, 403},
		{"helpdesk", "POST", "inbound-connectors", `{"Name": "printers", "SenderIPAddresses": ["192.0.2.0/24"]}`, 403},
		{"helpdesk", "POST", "api-keys", `{"Name": "mine", "Role": "Organization Management"}`, 403},
		{"ops", "POST", "inbound-connectors", `{"Name": "printers", "SenderIPAddresses": ["192.0.2.0/24"], "ConnectorType": "OnPremises"}`, 201},
		{"ops", "POST", "inbound-connectors", `{"Name": "printers", "SenderIPAddresses": ["192.0.2.0/24"], "ConnectorType": "OnPremises"}`, 409},
		{"ops", "PATCH", "transport-config", `{"SmtpClientAuthenticationDisabled": false}`, 200},
		{"ops", "POST", "cmdlets/New-Organization", `{"Name": "Evil"}`, 403},
		{"ops", "POST", "cmdlets/Get-ConnectionLog", ``, 403},
		{"ops", "POST", "cmdlets/Get-Nothing", ``, 404},
		{"ops", "POST", "cmdlets/Format-List", ``, 404},
		{"ops", "POST", "cmdlets/Get-Mailbox", `{"Bogus": 1}`, 400},
		{"ops", "POST", "cmdlets/Get-Mailbox", `[1, 2]`, 400},
		{"ops", "POST", "cmdlets/Get-Mailbox", `{"Identity": "sean@contoso.com"} {}`, 400},
		{"ops", "POST", "cmdlets/New-Mailbox", `{"PrimarySmtpAddress": "x@contoso.com"}`, 400}, // -Name is mandatory
		{"ops", "POST", "cmdlets/Set-CASMailbox", `{"Identity": "sean@contoso.com", "SmtpClientAuthenticationDisabled": "maybe"}`, 400},
		{"ops", "GET", "mailboxes/nobody@contoso.com", "", 404},
		{"ops", "PUT", "mailboxes/sean@contoso.com", "", 405},
		{"ops", "DELETE", "transport-config", "", 405},
		{"ops", "GET", "no-such-thing", "", 404},
		{"ops", "POST", "queues/mail.contoso.com/retry", "", 404},
	} {
		key := f.keys[tc.key]
		if key == "" {
			key = tc.key
		}
		if got, body := f.do(key, tc.method, tc.path, tc.body); got != tc.want {
			t.Errorf("%s: %s %s %s = %d, want %d: %v", tc.key, tc.method, tc.path, tc.body, got, tc.want, body)
		} else if got >= 400 {
			e, _ := body["error"].(map[string]any)
			if msg, _ := e["message"].(string); msg == "" {
				t.Errorf("%s %s: error without a message: %v", tc.method, tc.path, body)
			}
		}
	}

	// What they did is in the audit log, under their names, refusals too.
	_, body := f.do(f.keys["auditor"], "GET", "admin-audit-log", "")
	for _, want := range []string{"API key 'helpdesk' (Default) Set-CASMailbox true", "API key 'auditor' (Default) Set-TransportConfig false",
		"API key 'ops' (Default) New-InboundConnector true", "API key 'ops' (Default) New-Organization false"} {
		if !slices.Contains(auditEntries(body), want) {
			t.Errorf("audit log lacks %q: %q", want, auditEntries(body))
		}
	}
	// A removed key signs in no more.
	if code, _ := f.do(f.keys["ops"], "DELETE", "api-keys/helpdesk", ""); code != 204 {
		t.Fatalf("DELETE api-keys/helpdesk = %d", code)
	}
	if code, _ := f.do(f.keys["helpdesk"], "GET", "mailboxes", ""); code != 401 {
		t.Errorf("a removed key: %d, want 401", code)
	}
}

func TestOrganizationsAreIsolated(t *testing.T) {
	f := newFixture(t)
	fab := f.keys["fabops"]
	if _, body := f.do(fab, "GET", "mailboxes", ""); strings.Join(names(body), ",") != "ann" {
		t.Errorf("Fabrikam's mailboxes: %v", names(body))
	}
	if _, body := f.do(f.keys["ops"], "GET", "mailboxes", ""); strings.Join(names(body), ",") != "sean,scanner" {
		t.Errorf("Default's mailboxes: %v", names(body))
	}
	if _, body := f.do(fab, "GET", "organizations", ""); strings.Join(names(body), ",") != "Fabrikam" {
		t.Errorf("Fabrikam sees organizations %v", names(body))
	}
	// Another organization's objects are not found, by any route.
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "mailboxes/sean@contoso.com", ""},
		{"GET", "cas-mailboxes/sean", ""},
		{"PATCH", "cas-mailboxes/sean@contoso.com", `{"SmtpClientAuthenticationDisabled": false}`},
		{"PATCH", "mailboxes/sean@contoso.com", `{"Password": "Stolen1!pass"}`},
		{"DELETE", "mailboxes/sean@contoso.com", ""},
		{"DELETE", "api-keys/ops", ""},
		{"POST", "cmdlets/Remove-Mailbox", `{"Identity": "sean"}`},
		{"POST", "cmdlets/Add-RecipientPermission", `{"Identity": "ann@fabrikam.com", "Trustee": "sean@contoso.com", "AccessRights": "SendAs"}`},
	} {
		if code, body := f.do(fab, tc.method, tc.path, tc.body); code != 404 {
			t.Errorf("Fabrikam: %s %s = %d, want 404: %v", tc.method, tc.path, code, body)
		}
	}
	// Settings are the organization's own.
	f.do(fab, "PATCH", "transport-config", `{"SmtpClientAuthenticationDisabled": false}`)
	if _, body := f.do(f.keys["ops"], "GET", "transport-config", ""); body["SmtpClientAuthenticationDisabled"] != true {
		t.Errorf("Fabrikam's change reached Default: %v", body)
	}
	if _, body := f.do(fab, "GET", "transport-config", ""); body["SmtpClientAuthenticationDisabled"] != false {
		t.Errorf("Fabrikam's change is not Fabrikam's: %v", body)
	}
	// The diagnostic does not find the other organization's mailbox either.
	if _, body := f.do(fab, "POST", "cmdlets/Test-SmtpSubmission", `{"Identity": "sean@contoso.com"}`); !strings.Contains(fmt.Sprint(body), "No mailbox signs in as 'sean@contoso.com'") {
		t.Errorf("Test-SmtpSubmission across organizations: %v", body)
	}
	// Each organization's audit log holds its own changes only.
	_, body := f.do(fab, "GET", "admin-audit-log", "")
	entries := auditEntries(body)
	if !slices.Contains(entries, "API key 'fabops' (Fabrikam) Set-TransportConfig true") || !slices.ContainsFunc(entries, func(e string) bool { return strings.HasSuffix(e, "(local administrator) New-AcceptedDomain true") }) {
		t.Errorf("Fabrikam's audit log: %q", entries)
	}
	for _, e := range entries {
		if strings.Contains(e, "(Default)") || strings.HasSuffix(e, "New-Organization true") {
			t.Errorf("Fabrikam's audit log has Default's entry %q", e)
		}
	}
	_, body = f.do(f.keys["ops"], "GET", "api-keys", "")
	if got := strings.Join(names(body), ","); strings.Contains(got, "fabops") {
		t.Errorf("Default lists Fabrikam's key: %s", got)
	}
}

// TestAnswersMatchTheDescription checks every object a resource answers
// against the OpenAPI document's schema for it (the end-to-end test
// repeats this with an independent JSON Schema validator).
func TestAnswersMatchTheDescription(t *testing.T) {
	f := newFixture(t)
	ops := f.keys["ops"]
	for _, r := range []struct{ method, path, body string }{
		{"POST", "outbound-connectors", `{"Name": "m365", "RecipientDomains": "*", "TlsSettings": "EncryptionOnly", "Comment": "MX-routed: an organization key may not name smart hosts"}`},
		{"POST", "dkim-signing-configs", `{"DomainName": "contoso.com", "Enabled": true, "KeySize": 1024}`},
		{"POST", "oauth-apps", `{"Name": "scanner-app"}`},
		{"POST", "authentication-policies", `{"Name": "Block Basic"}`},
		{"POST", "recipient-permissions", `{"Identity": "scanner@contoso.com", "Trustee": "sean@contoso.com", "AccessRights": "SendAs"}`},
		{"POST", "api-keys", `{"Name": "ci", "Role": "View-Only"}`},
	} {
		if code, body := f.do(ops, r.method, r.path, r.body); code != 201 {
			t.Fatalf("%s %s = %d: %v", r.method, r.path, code, body)
		}
	}
	// Actions take their verb in any case.
	if code, body := f.do(ops, "POST", "dkim-signing-configs/contoso.com/ROTATE", ""); code != 200 {
		t.Errorf("POST .../ROTATE = %d: %v", code, body)
	}
	doc := getDocument(t, f.url+"openapi.json")
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	checked := map[string]bool{}
	for _, path := range []string{"organizations", "organization-config", "transport-config", "accepted-domains", "mailboxes", "cas-mailboxes",
		"users", "authentication-policies", "recipient-permissions", "inbound-connectors", "outbound-connectors", "dkim-signing-configs",
		"auth-servers", "oauth-apps", "service-principals", "mailbox-permissions", "queues", "queue-messages", "message-trace",
		"smtp-auth-clients", "admin-audit-log", "api-keys"} {
		code, body := f.do(ops, "GET", path, "")
		if code != 200 {
			t.Fatalf("GET %s = %d: %v", path, code, body)
		}
		op := doc["paths"].(map[string]any)["/"+path].(map[string]any)["get"].(map[string]any)
		schema := op["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
		name := strings.TrimPrefix(schema["$ref"].(string), "#/components/schemas/")
		objs := []any{body}
		if typ, isList := strings.CutSuffix(name, "List"); isList {
			name, objs = typ, body["value"].([]any)
		}
		for _, o := range objs {
			checkObject(t, path, o.(map[string]any), schemas[name].(map[string]any))
			checked[name] = true
		}
	}
	for _, want := range []string{"Mailbox", "OutboundConnector", "DkimSigningConfig", "OAuthApp", "AuthServer", "ApiKey", "AdminAuditLogEvent"} {
		if !checked[want] {
			t.Errorf("no %s was checked", want)
		}
	}
}

func getDocument(t *testing.T, url string) map[string]any {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// checkObject checks an object against a schema made by objectSchema:
// the same properties, each of its type.
func checkObject(t *testing.T, where string, obj, schema map[string]any) {
	t.Helper()
	props := schema["properties"].(map[string]any)
	for name, v := range obj {
		ps, ok := props[name].(map[string]any)
		if !ok {
			t.Errorf("%s: property %s is not described", where, name)
			continue
		}
		types := []string{}
		switch ty := ps["type"].(type) {
		case string:
			types = append(types, ty)
		case []any:
			for _, x := range ty {
				types = append(types, x.(string))
			}
		}
		if !hasType(v, types) {
			t.Errorf("%s: %s = %#v, described as %v", where, name, v, types)
		}
	}
	for _, r := range schema["required"].([]any) {
		if _, ok := obj[r.(string)]; !ok {
			t.Errorf("%s: required property %s is missing", where, r)
		}
	}
}

func hasType(v any, types []string) bool {
	for _, ty := range types {
		switch v.(type) {
		case nil:
			if ty == "null" {
				return true
			}
		case string:
			if ty == "string" {
				return true
			}
		case bool:
			if ty == "boolean" {
				return true
			}
		case float64:
			if ty == "integer" && v.(float64) == float64(int64(v.(float64))) {
				return true
			}
		case []any:
			if ty == "array" {
				return true
			}
		}
	}
	return false
}

// TestDocument checks the OpenAPI document is whole: every cmdlet has an
// operation, every reference resolves.
func TestDocument(t *testing.T) {
	f := newFixture(t)
	doc := getDocument(t, f.url+"openapi.json")
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	for _, name := range []string{"Get-Mailbox", "Set-CASMailbox", "New-ApiKey", "Get-MessageTraceV2", "Test-SmtpSubmission", "Search-AdminAuditLog"} {
		if _, ok := paths["/cmdlets/"+name]; !ok {
			t.Errorf("no operation for %s", name)
		}
	}
	if _, ok := paths["/cmdlets/Format-List"]; ok {
		t.Error("the shell's Format-List is described")
	}
	raw, _ := json.Marshal(doc)
	var refs []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				refs = append(refs, r)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	if len(refs) < 100 {
		t.Fatalf("only %d references in %d bytes", len(refs), len(raw))
	}
	for _, r := range refs {
		if resolve(doc, r) == nil {
			t.Errorf("reference %s does not resolve", r)
		}
	}
}

// resolve follows a local JSON Pointer reference (RFC 6901).
func resolve(doc map[string]any, ref string) any {
	var cur any = doc
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[tok]
	}
	return cur
}
