package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDemoSetupGoesThroughTheAdminService: the demo creates its
// organization with cmdlets run through the admin service, as the
// server's administrator, so each change is in the admin audit log like an
// admin's (issue 15, "One decision chain").
func TestDemoSetupGoesThroughTheAdminService(t *testing.T) {
	data := t.TempDir()
	log := &syncBuffer{}
	cmd := exec.Command(binary, "serve", "--demo", "--data", data, "--resolver", emptyDNS,
		"--submission", "127.0.0.1:0", "--submissions", "off", "--mx", "off", "--admin", "127.0.0.1:0")
	cmd.Args = append(cmd.Args, accessOff...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in := &instance{t: t, data: data, cmd: cmd}
	t.Cleanup(in.stop)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(log.String(), "is ready"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not get ready:\n%s", log.String())
		}
	}
	out := in.shell("Search-AdminAuditLog | Format-Table CmdletName,Succeeded,ObjectModified -AutoSize")
	for _, want := range []string{"New-AcceptedDomain", "New-Mailbox", "Add-RecipientPermission", "Set-CASMailbox", "New-ApiKey"} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit log lacks the demo's %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "False") {
		t.Errorf("a demo change failed:\n%s", out)
	}
	// The passwords are masked in the log.
	if params := in.shell("Search-AdminAuditLog -Cmdlets New-Mailbox | Format-List CmdletParameters"); !strings.Contains(params, "-Password ********") {
		t.Errorf("New-Mailbox's parameters:\n%s", params)
	}
}
