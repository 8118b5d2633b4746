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

// TestInteractiveShell: the interactive shell keeps variables from one
// line to the next, shows an error and goes on, both against a running
// server (one admin socket session) and directly on the data directory;
// on a terminal it completes cmdlet and parameter names with Tab and keeps
// a history file without secrets.
func TestInteractiveShell(t *testing.T) {
	in := newInstance(t)
	in.admin("New-Mailbox", "-Name", "sean", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Pass-word-1")
	lines := "$m = Get-Mailbox -Identity sean\n$m.PrimarySmtpAddress\nGet-Nothing\n$m | Set-CASMailbox -SmtpClientAuthenticationDisabled $false\nexit\n"
	for _, running := range []bool{false, true} {
		if running {
			in.start()
		}
		cmd := exec.Command(binary, "--data", in.data, "shell")
		cmd.Stdin = strings.NewReader(lines)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("shell (server running: %v): %v\n%s", running, err, out)
		}
		got := string(out)
		if !strings.Contains(got, "PS> sean@contoso.com\n") {
			t.Errorf("server running: %v: $m is not kept between lines:\n%s", running, got)
		}
		if !strings.Contains(got, "The term 'Get-Nothing' is not recognized") {
			t.Errorf("server running: %v: the error is not shown:\n%s", running, got)
		}
		if cas := in.shell("Get-CASMailbox sean | Format-List SmtpClientAuthenticationDisabled"); !strings.Contains(cas, "False") {
			t.Errorf("server running: %v: the line after the error did not run:\n%s", running, cas)
		}
		in.shell("Set-CASMailbox sean -SmtpClientAuthenticationDisabled $null")
	}

	// On a terminal (python3's pty): Tab completes, the history is kept.
	py := requireTool(t, "python3")
	home := t.TempDir()
	script := filepath.Join(t.TempDir(), "pty_shell.py")
	os.WriteFile(script, []byte(ptyScript), 0o600)
	cmd := exec.Command(py, script, binary, "--data", in.data, "shell")
	cmd.Env = append(os.Environ(), "HOME="+home, "TERM=xterm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pty: %v\n%s", err, out)
	}
	got := string(out)
	// "Get-CASMail<Tab> -Iden<Tab> sean | fl Smtp*" becomes the full line.
	if !strings.Contains(got, "Get-CASMailbox -Identity sean | fl Smtp*") || !strings.Contains(got, "SmtpClientAuthenticationDisabled :") {
		t.Errorf("Tab completion on a terminal:\n%q", got)
	}
	hist, err := os.ReadFile(filepath.Join(home, ".postern_history"))
	if err != nil || !strings.Contains(string(hist), "Get-CASMailbox -Identity sean | fl Smtp*") {
		t.Errorf("history file: %v\n%s", err, hist)
	}
	if strings.Contains(string(hist), "Secret-Pass-9") {
		t.Errorf("the history file keeps a password:\n%s", hist)
	}
}

// ptyScript runs the shell on a pseudo-terminal and types into it.
const ptyScript = `
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
def read_until(marker, timeout=20):
    global out
    end = time.time() + timeout
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            out += chunk
            if out.endswith(marker) or marker in out[-200:]:
                return
    sys.stdout.write(repr(out))
    sys.exit("timed out waiting for %r" % marker)
read_until(b"PS> ")
for keys in (b"Get-CASMail\t", b" -Iden\t", b" sean | fl Smtp*\r"):
    os.write(fd, keys)
    time.sleep(0.2)
read_until(b"PS> ")
os.write(fd, b"Set-Mailbox sean -Password 'Secret-Pass-9'\r")
read_until(b"PS> ")
os.write(fd, b"exit\r")
time.sleep(0.5)
try:
    while True:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        out += chunk
except OSError:
    pass
os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace").replace("\r\n", "\n"))
`
