package admin

import "testing"

func TestRoleAllows(t *testing.T) {
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
			if got := role.Allows(tc.cmdlet); got != want {
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
