package admin

import (
	"strings"
	"testing"

	"postern.dev/postern/internal/cmdlet"
)

// TestEveryCmdletIsDeclared lists every registered cmdlet and asserts its
// declaration is complete and agrees with itself: a cmdlet is added by its
// Spec alone, so the Spec must say everything the front ends derive.
func TestEveryCmdletIsDeclared(t *testing.T) {
	noOpCompat := map[string]bool{"Connect-ExchangeOnline": true, "Disconnect-ExchangeOnline": true, "Import-Module": true}
	reg := Cmdlets(&Service{})
	n := 0
	for _, s := range reg.Specs() {
		if s.Builtin() {
			continue
		}
		n++
		if missing := s.Declared(); missing != "" {
			t.Errorf("%s: the declaration has %s", s.Name, missing)
			continue
		}
		verb, _, _ := strings.Cut(s.Name, "-")
		reads := verb == "Get" || verb == "Search" || verb == "Test" ||
			// Accepted so that pasted scripts run; they do nothing.
			noOpCompat[s.Name]
		// A changing cmdlet supports -WhatIf, which is also what has
		// it written to the admin audit log.
		if s.SupportsWhatIf == reads {
			t.Errorf("%s: SupportsWhatIf is %v; a %s- cmdlet %s", s.Name, s.SupportsWhatIf, verb,
				map[bool]string{true: "changes nothing", false: "changes something and must be audited"}[reads])
		}
		if s.Access == cmdlet.ReadAccess && !reads {
			t.Errorf("%s changes something but declares read access", s.Name)
		}
		// Get-ApiKey reads who may sign in to administer the organization:
		// Organization Management's alone.
		if reads && s.Access != cmdlet.ReadAccess && s.Access != cmdlet.ServerAccess && s.Name != "Get-ApiKey" {
			t.Errorf("%s reads but declares %s", s.Name, s.Access)
		}
		switch s.REST.Op {
		case cmdlet.RouteList, cmdlet.RouteItem:
			if !reads {
				t.Errorf("%s changes something but is served by GET", s.Name)
			}
		case cmdlet.RouteCreate, cmdlet.RouteUpdate, cmdlet.RouteDelete, cmdlet.RouteAction:
			if reads {
				t.Errorf("%s reads but is served as a change", s.Name)
			}
		}
	}
	if n < 70 {
		t.Errorf("only %d cmdlets registered", n)
	}
}

func TestRoleAllows(t *testing.T) {
	reg := Cmdlets(&Service{})
	for _, tc := range []struct {
		cmdlet                string
		orgMgmt, recip, viewO bool
	}{
		{"Get-Mailbox", true, true, true},
		{"Search-AdminAuditLog", true, true, true},
		{"Test-SmtpSubmission", true, true, true},
		{"Get-MessageTraceV2", true, true, true},
		{"New-Mailbox", true, true, false},
		{"Set-CASMailbox", true, true, false},
		{"Set-User", true, true, false},
		{"Add-RecipientPermission", true, true, false},
		{"Remove-MailboxPermission", true, true, false},
		{"Set-TransportConfig", true, false, false},
		{"New-InboundConnector", true, false, false},
		{"New-AcceptedDomain", true, false, false},
		{"Retry-Queue", true, false, false},
		{"Rotate-DkimSigningConfig", true, false, false},
		{"New-ApiKey", true, false, false},
		{"Get-ApiKey", true, false, false}, // lists who can sign in
		{"Remove-ApiKey", true, false, false},
		{"Get-Organization", true, true, true},
		{"New-Organization", false, false, false}, // server administrator only
		{"Get-ConnectionLog", false, false, false},
		{"Rotate-OAuthSigningKey", false, false, false},
		// An organization reads its own connectors' protocol log
		// (ReadProtocolLog refuses the listeners'); listeners are the
		// server administrator's.
		{"Get-ProtocolLog", true, true, true},
		{"Set-InboundConnector", true, false, false},
		{"Set-ReceiveConnector", false, false, false},
		{"Get-ReceiveConnector", false, false, false},
	} {
		for role, want := range map[Role]bool{OrganizationManagement: tc.orgMgmt, RecipientManagement: tc.recip, ViewOnly: tc.viewO} {
			spec, ok := reg.Lookup(tc.cmdlet)
			if !ok {
				t.Fatalf("%s is not registered", tc.cmdlet)
			}
			if got := role.Allows(spec.Access); got != want {
				t.Errorf("%s.Allows(%s) = %v, want %v", role, tc.cmdlet, got, want)
			}
		}
	}
}

func TestParseRole(t *testing.T) {
	for in, want := range map[string]Role{
		"Organization Management": OrganizationManagement, "recipient management": RecipientManagement,
		"View-Only": ViewOnly, "View-Only Organization Management": ViewOnly,
	} {
		if got, err := ParseRole(in); err != nil || got != want {
			t.Errorf("ParseRole(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "Admin", "Organization"} {
		if _, err := ParseRole(in); err == nil {
			t.Errorf("ParseRole(%q) accepted", in)
		}
	}
}
