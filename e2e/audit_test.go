package e2e

import (
	"strings"
	"testing"
)

// TestAdminAuditLog: every change, through the running server's admin
// socket or directly, is in Search-AdminAuditLog, with secrets masked and
// failures recorded; -WhatIf and Get- cmdlets are not.
func TestAdminAuditLog(t *testing.T) {
	in := newInstance(t)
	in.mailbox("sean", "Sean-Pass-1")
	in.start()
	in.admin("Set-Mailbox", "-Identity", "sean@contoso.com", "-Password", "Another-Pass-2")
	in.try("Set-CASMailbox", "-Identity", "nobody@contoso.com", "-SmtpClientAuthenticationDisabled", "$false")
	in.admin("Set-OrganizationConfig", "-RejectDirectSend", "$true", "-WhatIf")
	in.admin("Get-Mailbox")
	log := in.shell("Search-AdminAuditLog | Format-List")
	for _, want := range []string{"CmdletName       : Set-Mailbox", "-Identity sean@contoso.com -Password ********",
		"CmdletName       : Set-CASMailbox", "Succeeded        : False", "couldn't be found", "CmdletName       : New-Mailbox", "(local administrator)"} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %q:\n%s", want, log)
		}
	}
	for _, bad := range []string{"Another-Pass-2", "Sean-Pass-1", "Set-OrganizationConfig", "Get-Mailbox"} {
		if strings.Contains(log, bad) {
			t.Errorf("audit log holds %q:\n%s", bad, log)
		}
	}
	if got := in.shell("Search-AdminAuditLog -Cmdlets Set-Mailbox -ObjectIds sean@contoso.com | Format-Table CmdletName"); strings.Count(got, "Set-Mailbox") != 1 || strings.Contains(got, "New-Mailbox") {
		t.Errorf("filtered audit log:\n%s", got)
	}
}
