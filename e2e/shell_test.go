package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocumentedCommandsVerbatim runs the commands of Microsoft's SMTP
// AUTH guide as an admin pastes them, against a running server, from a
// script file whose Get-Content path is relative to the shell's directory.
func TestDocumentedCommandsVerbatim(t *testing.T) {
	in := newInstance(t)
	for _, n := range []string{"sean", "chris", "akol"} {
		in.admin("New-Mailbox", "-Name", n, "-PrimarySmtpAddress", n+"@contoso.com", "-Password", "Pass-word-1")
	}
	in.start()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "allow-smtp-auth.txt"), []byte("chris@contoso.com\r\nakol@contoso.com\r\n"), 0o600)
	script := `Set-TransportConfig -SmtpClientAuthenticationDisabled $true
Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled
Set-CASMailbox -Identity sean@contoso.com -SmtpClientAuthenticationDisabled $false
Get-CASMailbox -Identity sean@contoso.com | Format-List SmtpClientAuthenticationDisabled
$Allow = Get-Content "allow-smtp-auth.txt"
$Allow | foreach {Set-CASMailbox -Identity $_ -SmtpClientAuthenticationDisabled $false}
$Users = Get-CASMailbox -ResultSize unlimited
$Users | where {$_.SmtpClientAuthenticationDisabled -eq $true}
$Users | where {$_.SmtpClientAuthenticationDisabled -eq $null}
Get-CASMailbox -Filter 'SmtpClientAuthenticationDisabled -eq $false' | Format-Table Name
Get-Mailbox -ResultSize unlimited | Format-Table Name,PrimarySmtpAddress
Get-CASMailbox -ResultSize unlimited | Select-Object Name,SmtpClientAuthenticationDisabled | Export-Csv smtp-auth.csv -NoTypeInformation
(Get-Mailbox -ResultSize unlimited | Measure-Object).Count
`
	os.WriteFile(filepath.Join(dir, "smtp-auth.ps1"), []byte(script), 0o600)
	cmd := exec.Command(binary, "--data", in.data, "shell", "-f", "smtp-auth.ps1")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{"SmtpClientAuthenticationDisabled : True", "SmtpClientAuthenticationDisabled : False"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// After the script every mailbox has its own $false: the two $Users
	// filters find nobody, and -Filter finds all three.
	filtered := got[strings.Index(got, "Name\n----"):]
	for _, n := range []string{"sean", "chris", "akol"} {
		if !strings.Contains(filtered, n) {
			t.Errorf("-Filter output lacks %s:\n%s", n, got)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(got), "3") {
		t.Errorf("Measure-Object count:\n%s", got)
	}
	csv, err := os.ReadFile(filepath.Join(dir, "smtp-auth.csv"))
	if err != nil || !strings.Contains(string(csv), "Name,SmtpClientAuthenticationDisabled") || !strings.Contains(string(csv), "akol,False") {
		t.Errorf("Export-Csv: %v\n%s", err, csv)
	}
	// A failing statement stops the script with a non-zero exit, naming
	// the cmdlet and the object.
	os.WriteFile(filepath.Join(dir, "bad.ps1"), []byte("Set-CASMailbox -Identity nobody@contoso.com -SmtpClientAuthenticationDisabled $false\nSet-TransportConfig -SmtpClientAuthenticationDisabled $false\n"), 0o600)
	cmd = exec.Command(binary, "--data", in.data, "shell", "-f", "bad.ps1")
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Set-CASMailbox : The operation couldn't be performed because object 'nobody@contoso.com' couldn't be found.") {
		t.Errorf("bad script: %v\n%s", err, out)
	}
	if got := in.shell("Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled"); !strings.Contains(got, "True") {
		t.Errorf("the statement after the failure ran:\n%s", got)
	}
}
