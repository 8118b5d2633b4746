package e2e

import (
	"strings"
	"testing"
)

// TestDocumentedCommands runs the commands of Microsoft's "Enable or disable
// SMTP AUTH in Exchange Online" page and checks Exchange's output shapes,
// both directly on the data directory and through a running server.
func TestDocumentedCommands(t *testing.T) {
	in := newInstance(t)
	in.admin("New-Mailbox", "-Name", "sean", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Sean-Pass-1")

	check := func(script, want string) {
		t.Helper()
		if got := in.shell(script); got != want {
			t.Errorf("%s\n got: %q\nwant: %q", script, got, want)
		}
	}
	check("Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled", "\nSmtpClientAuthenticationDisabled : True\n\n")
	in.admin("Set-TransportConfig", "-SmtpClientAuthenticationDisabled", "$false")
	check("Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled", "\nSmtpClientAuthenticationDisabled : False\n\n")
	// $null (the default) prints blank.
	check("Get-CASMailbox -Identity sean@contoso.com | Format-List SmtpClientAuthenticationDisabled", "\nSmtpClientAuthenticationDisabled :\n\n")

	in.start() // from here on, cmdlets go through the running server
	in.admin("Set-CASMailbox", "-Identity", "sean@contoso.com", "-SmtpClientAuthenticationDisabled", "$true")
	check("Get-CASMailbox -Identity sean@contoso.com | Format-List SmtpClientAuthenticationDisabled", "\nSmtpClientAuthenticationDisabled : True\n\n")
	in.shell("Set-CASMailbox -Identity sean@contoso.com -SmtpClientAuthenticationDisabled $null")
	check("Get-CASMailbox -Identity sean@contoso.com | Format-List SmtpClientAuthenticationDisabled", "\nSmtpClientAuthenticationDisabled :\n\n")

	out := in.shell("Get-CASMailbox -ResultSize unlimited | Format-Table Name,SmtpClientAuthenticationDisabled")
	if !strings.Contains(out, "Name SmtpClientAuthenticationDisabled") || !strings.Contains(out, "sean") {
		t.Errorf("Get-CASMailbox table:\n%s", out)
	}
	out = in.shell("Get-AcceptedDomain")
	if !strings.Contains(out, "contoso.com") || !strings.Contains(out, "Authoritative") {
		t.Errorf("Get-AcceptedDomain:\n%s", out)
	}
	out = in.shell("Get-Mailbox -Identity sean | Format-List *")
	for _, want := range []string{"PrimarySmtpAddress       : sean@contoso.com", "RecipientLimits          : 500", "MaxSendSize              : 35 MB (36,700,160 bytes)", "EmailAddresses           : {SMTP:sean@contoso.com}",
		"ProhibitSendReceiveQuota : 100 GB (107,374,182,400 bytes)"} {
		if !strings.Contains(out, want) {
			t.Errorf("Get-Mailbox | Format-List * lacks %q:\n%s", want, out)
		}
	}
	in.admin("Set-Mailbox", "-Identity", "sean", "-EmailAddresses", "@{Add='sean.k@contoso.com'}")
	if out := in.shell("Get-Mailbox sean | Format-List EmailAddresses"); !strings.Contains(out, "{SMTP:sean@contoso.com, smtp:sean.k@contoso.com}") {
		t.Errorf("after @{Add=...}:\n%s", out)
	}
	out = in.shell("Get-MailboxFolderStatistics -Identity sean@contoso.com | Format-Table Name,FolderPath,ItemsInFolder")
	for _, want := range []string{"Inbox", "/Sent Items", "Junk Email"} {
		if !strings.Contains(out, want) {
			t.Errorf("Get-MailboxFolderStatistics lacks %q:\n%s", want, out)
		}
	}
	// -WhatIf changes nothing.
	in.shell("Set-TransportConfig -SmtpClientAuthenticationDisabled $true -WhatIf")
	check("Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled", "\nSmtpClientAuthenticationDisabled : False\n\n")
}

// TestAdminErrors: a wrong cmdlet, parameter or value is one line naming
// it, with exit status 1, and nothing is half-written.
func TestAdminErrors(t *testing.T) {
	in := newInstance(t)
	in.admin("New-Mailbox", "-Name", "sean", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Sean-Pass-1")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"Set-CASMailbox", "-Identity", "nobody@contoso.com", "-SmtpClientAuthenticationDisabled", "$true"}, "nobody@contoso.com"},
		{[]string{"Set-CASMailbox", "-Identity", "sean", "-SmtpClientAuthDisabledTypo", "$true"}, "SmtpClientAuthDisabledTypo"},
		{[]string{"Set-CASMailbox", "-Identity", "sean", "-SmtpClientAuthenticationDisabled", "maybe"}, "maybe"},
		{[]string{"Set-Mailbox", "-Identity", "sean", "-RecipientLimits", "1001"}, "RecipientLimits"},
		{[]string{"Set-Mailbox", "-Identity", "sean", "-RecipientLimits", "abc"}, "abc"},
		{[]string{"New-AcceptedDomain", "-Name", "x", "-DomainName", "fabrikam.com", "-DomainType", "Sideways"}, "Sideways"},
		{[]string{"New-Mailbox", "-Name", "chris", "-PrimarySmtpAddress", "chris@fabrikam.com", "-Password", "Chris-Pass-1"}, "fabrikam.com"},
		{[]string{"New-Mailbox", "-Name", "sean2", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Sean-Pass-2"}, "sean@contoso.com"},
		{[]string{"Set-Mailbox", "-Identity", "sean", "-EmailAddresses", "@{Add='x@fabrikam.com'}"}, "fabrikam.com"},
		{[]string{"Add-RecipientPermission", "-Identity", "sean", "-AccessRights", "FullAccess", "-Trustee", "sean"}, "FullAccess"},
		{[]string{"Get-Frobnicator"}, "Get-Frobnicator"},
		{[]string{"Set-User", "-Identity", "sean", "-AuthenticationPolicy", "NoSuchPolicy"}, "NoSuchPolicy"},
		{[]string{"New-InboundConnector", "-Name", "x", "-SenderIPAddresses", "192.168.0.0/33"}, "192.168.0.0/33"},
		{[]string{"New-InboundConnector", "-Name", "x", "-ConnectorType", "Sideways"}, "Sideways"},
		{[]string{"New-InboundConnector", "-Name", "x", "-SenderDomains", "con*toso.com"}, "con*toso.com"},
		{[]string{"New-InboundConnector", "-Name", "x", "-TlsSenderCertificateFingerprints", "abc"}, "abc"},
		{[]string{"Set-InboundConnector", "-Identity", "nope", "-Enabled", "$false"}, "nope"},
	}
	for _, tt := range tests {
		out, err := in.try(tt.args...)
		if err == nil {
			t.Errorf("%v: succeeded:\n%s", tt.args, out)
			continue
		}
		l := lines(out)
		if len(l) == 0 || !strings.Contains(out, tt.want) {
			t.Errorf("%v: error should name %q:\n%s", tt.args, tt.want, out)
		}
	}
	// Nothing was half-written: sean is as created.
	out := in.shell("Get-Mailbox sean | Format-List RecipientLimits,EmailAddresses")
	if !strings.Contains(out, "RecipientLimits : 500") || !strings.Contains(out, "{SMTP:sean@contoso.com}") {
		t.Errorf("sean changed by failed commands:\n%s", out)
	}
	if out := in.shell("Get-Mailbox | Format-Table Name"); strings.Contains(out, "sean2") || strings.Contains(out, "chris") {
		t.Errorf("failed New-Mailbox left a mailbox behind:\n%s", out)
	}
	if out := in.shell("Get-InboundConnector"); strings.TrimSpace(out) != "" {
		t.Errorf("failed New-InboundConnector left a connector behind:\n%s", out)
	}
	// IPv6 ranges are accepted (beyond Exchange) and shown canonically.
	in.admin("New-InboundConnector", "-Name", "v6", "-SenderIPAddresses", "2001:DB8::1/32,192.0.2.7")
	if out := in.shell("Get-InboundConnector v6 | Format-List SenderIPAddresses"); !strings.Contains(out, "{2001:db8::/32, 192.0.2.7/32}") {
		t.Errorf("IPv6 connector:\n%s", out)
	}
}
