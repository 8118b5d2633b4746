package restapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// The REST API reaches the password policy and the filter policies through
// the same admin service as the shell.
func TestFilterResources(t *testing.T) {
	f := newFixture(t)
	status, body := f.do(f.keys["ops"], http.MethodPost, "/mailboxes", `{"Name": "weak", "PrimarySmtpAddress": "weak@contoso.com", "Password": "password"}`)
	e, _ := body["error"].(map[string]any)
	if msg, _ := e["message"].(string); status != http.StatusBadRequest || !strings.Contains(msg, "Mailbox 'weak': the password does not meet the password policy") {
		t.Fatalf("weak password: %d %v", status, body)
	}
	status, body = f.do(f.keys["ops"], http.MethodPatch, "/hosted-connection-filter-policy", `{"IPBlockList": ["192.0.2.0/24"]}`)
	if list, _ := body["IPBlockList"].([]any); status != http.StatusOK || len(list) != 1 || list[0] != "192.0.2.0/24" {
		t.Fatalf("PATCH connection filter policy: %d %v", status, body)
	}
	status, body = f.do(f.keys["ops"], http.MethodPatch, "/hosted-outbound-spam-filter-policy", `{"RecipientLimitPerDay": 500, "ActionWhenThresholdReached": "BlockUser"}`)
	if status != http.StatusOK || body["RecipientLimitPerDay"] != float64(500) || body["ActionWhenThresholdReached"] != "BlockUser" {
		t.Fatalf("PATCH outbound spam policy: %d %v", status, body)
	}
	// A View-Only key reads the policies but cannot change them.
	if status, _ := f.do(f.keys["auditor"], http.MethodPatch, "/hosted-outbound-spam-filter-policy", `{"RecipientLimitPerDay": 1}`); status != http.StatusForbidden {
		t.Fatalf("View-Only PATCH: %d", status)
	}
	if status, body := f.do(f.keys["auditor"], http.MethodGet, "/blocked-sender-addresses", ""); status != http.StatusOK {
		t.Fatalf("GET blocked senders: %d %v", status, body)
	}
	// Fabrikam's admin sees its own, untouched policy.
	if _, body := f.do(f.keys["fabops"], http.MethodGet, "/hosted-connection-filter-policy", ""); len(body["IPBlockList"].([]any)) != 0 {
		t.Fatalf("another organization's list leaked: %v", body)
	}
}
