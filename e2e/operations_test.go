package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"postern.dev/postern/internal/testsmtp"
)

// bodyFiles returns the name and SHA-256 of every body file in a data
// directory.
func bodyFiles(t *testing.T, data string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(data, "bodies"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(data, "bodies", e.Name()))
		if err != nil {
			continue // released meanwhile
		}
		s := sha256.Sum256(b)
		out[e.Name()] = hex.EncodeToString(s[:])
	}
	return out
}

// TestBackupRestoreOnline backs up a running server while a client keeps
// sending, restores into a new directory, and finds there every mailbox,
// message (body files byte for byte), queue item and trace entry that
// existed before the backup began, and the sealed smart-host password
// usable: the restored server delivers its queue with it.
func TestBackupRestoreOnline(t *testing.T) {
	relayAddr := freeAddr(t) // the smart host stays down until after the restore
	in := newInstance(t)
	sean := in.mailbox("sean", "Sean-Pass-1")
	akol := in.mailbox("akol", "Akol-Pass-1")
	in.admin("New-OutboundConnector", "-Name", "Partner", "-RecipientDomains", "partner.example", "-SmartHosts", relayAddr,
		"-UseMXRecord", "$false", "-TlsSettings", "EncryptionOnly", "-AuthMechanism", "Basic",
		"-SmtpUser", "relay@contoso.com", "-SmtpPassword", "Relay-Secret-7")
	in.start()
	cfg := in.tlsConfig()

	large := strings.Repeat("A large scanned page, line after line of it.\r\n", 3000) // ~140 KiB
	c := dialTLS(t, in.addrs["submissions"], cfg)
	c.expect("EHLO scanner.contoso.com", "250")
	c.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+sean+"\x00Sean-Pass-1")), "235")
	var subjects []string
	for i := range 3 {
		s := fmt.Sprintf("local-small-%d", i)
		c.mustSend(sean, []string{akol}, message(sean, akol, s))
		subjects = append(subjects, s)
	}
	for i := range 2 {
		s := fmt.Sprintf("local-large-%d", i)
		c.mustSend(sean, []string{akol}, fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n%s", sean, akol, s, large))
		subjects = append(subjects, s)
	}
	c.mustSend(sean, []string{"someone@partner.example"}, message(sean, "someone@partner.example", "queued-small"))
	c.mustSend(sean, []string{"someone@partner.example"}, fmt.Sprintf("From: %s\r\nTo: someone@partner.example\r\nSubject: queued-large\r\n\r\n%s", sean, large))
	subjects = append(subjects, "queued-small", "queued-large")

	inbox := in.folderCount(akol, "Inbox")
	if inbox != 5 {
		t.Fatalf("akol's Inbox holds %d messages before the backup, want 5", inbox)
	}
	bodies := bodyFiles(t, in.data)
	if len(bodies) != 3 {
		t.Fatalf("%d body files, want 3 (one per large message; its Sent Items copy and deliveries share it)", len(bodies))
	}
	queued := in.admin("Get-QueueMessage")
	if strings.Count(queued, "someone@partner.example") != 2 {
		t.Fatalf("Get-QueueMessage before the backup:\n%s", queued)
	}

	// A client keeps sending while the backup runs.
	var stop atomic.Bool
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load() && i < 2000; i++ {
			body := message(sean, akol, fmt.Sprintf("during-%d", i))
			if i%3 == 0 {
				body = fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: during-%d\r\n\r\n%s", sean, akol, i, large)
			}
			if r := c.send(sean, []string{akol}, body); !strings.HasPrefix(r, "250") {
				t.Errorf("sending during the backup: %s", r)
				return
			}
			sent.Add(1)
		}
	}()
	// Let the sender get going before the backup begins.
	for deadline := time.Now().Add(30 * time.Second); sent.Load() < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	file := filepath.Join(t.TempDir(), "postern-backup.tar.gz")
	out, err := exec.Command(binary, "backup", "--data", in.data, "--to", file).CombinedOutput()
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("postern backup: %v\n%s", err, out)
	}
	t.Logf("%d messages accepted while the backup ran; %s", sent.Load(), strings.TrimSpace(string(out)))
	if sent.Load() < 3 {
		t.Fatalf("only %d messages sent around the backup", sent.Load())
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v (it holds the secret key: want 0600)", fi, err)
	}
	// The server kept working and still owns its directory.
	if r := c.send(sean, []string{akol}, message(sean, akol, "after the backup")); !strings.HasPrefix(r, "250") {
		t.Fatalf("after the backup: %s", r)
	}
	tlsBefore, _ := os.ReadFile(in.caFile())
	in.stop()

	// A second backup file with the same name is refused, not overwritten.
	if out, err := exec.Command(binary, "backup", "--data", in.data, "--to", file).CombinedOutput(); err == nil {
		t.Errorf("backup over an existing file succeeded:\n%s", out)
	}
	// Restore refuses a directory that holds a database.
	if out, err := exec.Command(binary, "restore", "--from", file, "--data", in.data).CombinedOutput(); err == nil || !strings.Contains(string(out), "already holds") {
		t.Errorf("restore over a live directory: %v\n%s", err, out)
	}

	restored := &instance{t: t, data: filepath.Join(t.TempDir(), "restored"), extra: in.extra}
	if out, err := exec.Command(binary, "restore", "--from", file, "--data", restored.data).CombinedOutput(); err != nil {
		t.Fatalf("postern restore: %v\n%s", err, out)
	}
	// Every body file that existed before the backup is there, byte for byte.
	after := bodyFiles(t, restored.data)
	for name, sum := range bodies {
		if after[name] != sum {
			t.Errorf("body file %s: restored %q, want %q", name, after[name], sum)
		}
	}
	if tlsAfter, _ := os.ReadFile(restored.caFile()); !bytes.Equal(tlsBefore, tlsAfter) || len(tlsAfter) == 0 {
		t.Error("the TLS certificate was not restored")
	}
	relay, err := startTLSRelay(relayAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	restored.start()

	if n := restored.folderCount(akol, "Inbox"); n < inbox+1 || n > inbox+int(sent.Load()) {
		t.Errorf("restored Inbox holds %d messages; want between %d and %d", n, inbox+1, inbox+int(sent.Load()))
	}
	if n := restored.folderCount(sean, "Sent Items"); n < 7 {
		t.Errorf("restored Sent Items holds %d messages, want at least 7", n)
	}
	mbx := restored.admin("Get-Mailbox")
	for _, who := range []string{"sean", "akol"} {
		if !strings.Contains(mbx, who) {
			t.Errorf("mailbox %s missing after the restore:\n%s", who, mbx)
		}
	}
	trace := restored.shell("Get-MessageTrace | Format-List Subject")
	for _, s := range subjects {
		if !strings.Contains(trace, s) {
			t.Errorf("trace entry %q missing after the restore", s)
		}
	}
	if q := restored.admin("Get-QueueMessage"); strings.Count(q, "someone@partner.example") != 2 {
		t.Errorf("restored queue:\n%s", q)
	}
	// The sealed password opens the smart host: the secret key came back.
	restored.admin("Retry-Queue", "-Identity", "Partner")
	msgs, err := relay.WaitMessages(2, 60*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, restored.log.String())
	}
	gotLarge := false
	for _, m := range msgs {
		if m.AuthUser != "relay@contoso.com" || m.AuthMech == "" {
			t.Errorf("smart host saw %+v", m)
		}
		if bytes.Contains(m.Data, []byte("Subject: queued-large")) {
			gotLarge = bytes.HasSuffix(bytes.TrimRight(m.Data, "\r\n"), []byte(strings.TrimRight(large, "\r\n")))
		}
	}
	if !gotLarge {
		t.Error("the large queued message did not arrive whole")
	}
}

// startTLSRelay is a smart host on addr that takes AUTH with the
// connector's password only.
func startTLSRelay(addr string) (*testsmtp.Server, error) {
	tlsCfg, _, err := testsmtp.SelfSignedTLS("smtp.partner.example")
	if err != nil {
		return nil, err
	}
	return testsmtp.StartOn(addr, testsmtp.Config{TLS: tlsCfg, AuthMechanisms: []string{"PLAIN", "LOGIN"}, RequireAuth: true,
		CheckAuth: func(mech, user, secret string) bool { return user == "relay@contoso.com" && secret == "Relay-Secret-7" }})
}

// mustSend sends a message and fails the test unless it is accepted.
func (c *smtpClient) mustSend(from string, to []string, body string) {
	c.t.Helper()
	if r := c.send(from, to, body); !strings.HasPrefix(r, "250") {
		c.t.Fatalf("sending: %s", r)
	}
}

// TestCheckConfig validates configuration files with the real binary: a
// good one is "ok" (and serve starts with it), a bad one exits non-zero
// with FILE:LINE:COL for each problem, without starting anything.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	data := filepath.Join(dir, "data")
	os.WriteFile(good, []byte(fmt.Sprintf("data = %q\nhostname = \"mail.contoso.com\"\nsubmission = \"127.0.0.1:0\"\nsubmissions = \"off\"\nmx = \"off\"\nresolver = %q\n\n[delivery]\nretry_min = \"30s\"\n", data, emptyDNS)), 0o600)
	out, err := exec.Command(binary, "check-config", good).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != good+": ok" {
		t.Errorf("check-config on a good file: %v\n%s", err, out)
	}
	if _, err := os.Stat(data); err == nil {
		t.Error("check-config created the data directory")
	}
	srv := &instance{t: t, data: data}
	srv.log = &syncBuffer{}
	srv.cmd = exec.Command(binary, "serve", "--config", good)
	srv.cmd.Stderr, srv.cmd.Stdout = srv.log, srv.log
	if err := srv.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stop)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(srv.log.String(), `msg="postern started"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve with the checked file did not start:\n%s", srv.log.String())
		}
	}

	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("hostname = \"mail.contoso.com\"\nlog_level = \"loud\"\n\nsubmision = \":587\"\n"), 0o600)
	out, err = exec.Command(binary, "check-config", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), bad+":4:1: unknown key \"submision\"") {
		t.Errorf("check-config on an unknown key: %v\n%s", err, out)
	}
	os.WriteFile(bad, []byte("hostname = \"mail.contoso.com\"\nlog_level = \"loud\"\n[delivery]\nretry_min = \"2h\"\nretry_max = \"1h\"\n"), 0o600)
	out, err = exec.Command(binary, "check-config", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), bad+":2:13: log_level:") || !strings.Contains(string(out), bad+":4:13: delivery.retry_min:") || strings.Contains(string(out), "ok") {
		t.Errorf("check-config on bad values: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "check-config").CombinedOutput(); err == nil {
		t.Errorf("check-config without a file succeeded:\n%s", out)
	}
}
