package restapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/server"
)

// TestEveryFrontEndRefusesOutsideTheRole shows, for each role group, a
// representative refusal from every front end: the REST API's cmdlet
// endpoint and its resource, the admin socket's session (which the CLI
// and the shell use), and Service.Invoke (which the demo's setup uses).
// The check and the audit entry are the admin service's, so every front
// end refuses with the same words and each attempt is logged.
func TestEveryFrontEndRefusesOutsideTheRole(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		key    string
		cmdlet string
		params map[string]any
		script string
		// method, path and body of the REST resource route.
		method, path, body string
		refusal            string
	}{
		{key: "ops", cmdlet: "New-Organization", params: map[string]any{"Name": "Evil"}, script: "New-Organization -Name Evil",
			method: "POST", path: "organizations", body: `{"Name": "Evil"}`,
			refusal: "New-Organization acts on the whole server; only the server's administrator can run it."},
		{key: "helpdesk", cmdlet: "New-AcceptedDomain", params: map[string]any{"Name": "evil.example", "DomainName": "evil.example"},
			script: "New-AcceptedDomain -Name evil.example -DomainName evil.example",
			method: "POST", path: "accepted-domains", body: `{"Name": "evil.example", "DomainName": "evil.example"}`,
			refusal: "The role 'Recipient Management' does not include New-AcceptedDomain."},
		{key: "auditor", cmdlet: "Set-Mailbox", params: map[string]any{"Identity": "sean@contoso.com", "DisplayName": "Evil"},
			script: "Set-Mailbox -Identity sean@contoso.com -DisplayName Evil",
			method: "PATCH", path: "mailboxes/sean@contoso.com", body: `{"DisplayName": "Evil"}`,
			refusal: "The role 'View-Only Organization Management' does not include Set-Mailbox."},
	} {
		p, err := f.svc.SignIn(ctx, f.keys[tc.key])
		if err != nil {
			t.Fatal(err)
		}
		t.Run(string(p.Role), func(t *testing.T) {
			restMessage := func(code int, body map[string]any) string {
				e, _ := body["error"].(map[string]any)
				msg, _ := e["message"].(string)
				return fmt.Sprintf("%d %s", code, msg)
			}
			want := "403 " + tc.refusal
			if got := restMessage(f.do(f.keys[tc.key], "POST", "cmdlets/"+tc.cmdlet, jsonOf(t, tc.params))); got != want {
				t.Errorf("REST POST cmdlets/%s: %s, want %s", tc.cmdlet, got, want)
			}
			if got := restMessage(f.do(f.keys[tc.key], tc.method, tc.path, tc.body)); got != want {
				t.Errorf("REST %s %s: %s, want %s", tc.method, tc.path, got, want)
			}
			// The admin socket's session, given the organization admin's
			// service: the refusal does not depend on the front end.
			resp := server.Execute(ctx, f.svc.As(p), server.AdminRequest{Script: tc.script})
			if !strings.Contains(resp.Error, tc.refusal) {
				t.Errorf("admin session: %q, want %q", resp.Error, tc.refusal)
			}
			_, err := f.svc.As(p).Invoke(ctx, nil, tc.cmdlet, tc.params)
			if !errors.Is(err, admin.ErrAccessDenied) || err.Error() != tc.refusal {
				t.Errorf("Service.Invoke: %v, want %q", err, tc.refusal)
			}
			// Each attempt is in the audit log, refused.
			_, body := f.do(f.keys["ops"], "GET", "admin-audit-log", "")
			refused := fmt.Sprintf("API key '%s' (Default) %s false", tc.key, tc.cmdlet)
			n := 0
			for _, e := range auditEntries(body) {
				if e == refused {
					n++
				}
			}
			if n != 4 {
				t.Errorf("the audit log has %d entries %q, want 4: %q", n, refused, auditEntries(body))
			}
		})
	}

	// The server's administrator is refused nothing; the demo's setup,
	// which runs as it through Service.Invoke, is audited like the rest.
	if _, err := f.svc.Invoke(ctx, nil, "New-AcceptedDomain", map[string]any{"Name": "demo.example", "DomainName": "demo.example"}); err != nil {
		t.Fatal(err)
	}
	_, body := f.do(f.keys["ops"], "GET", "admin-audit-log", "")
	if !slices.ContainsFunc(auditEntries(body), func(e string) bool {
		return strings.HasSuffix(e, "(local administrator) New-AcceptedDomain true") || e == "local administrator New-AcceptedDomain true"
	}) {
		t.Errorf("Service.Invoke's change is not in the audit log: %q", auditEntries(body))
	}
}

func jsonOf(t *testing.T, params map[string]any) string {
	t.Helper()
	b, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
