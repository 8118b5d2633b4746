package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"postern.dev/postern/internal/testsmtp"
)

// bodyFiles returns the name and SHA-256 of every large body's file in a data
// directory.
func bodyFiles(t *testing.T, data string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(data, "bodies"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".seg") {
			continue // the segments of small bodies, which keep changing
		}
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
	os.WriteFile(good, []byte(fmt.Sprintf("data = %q\nhostname = \"mail.contoso.com\"\nsubmission = \"127.0.0.1:0\"\nsubmissions = \"off\"\nmx = \"off\"\nresolver = %q\n"+accessOffTOML+"\n[delivery]\nretry_min = \"30s\"\n", data, emptyDNS)), 0o600)
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

// demoProcess starts a command whose stdout and stderr go to one buffer,
// in its own process group so that the test can end it and its children
// (make run's server) with SIGTERM.
func demoProcess(t *testing.T, dir string, name string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return cmd, out
}

// waitFor waits, with a generous deadline, until the buffer holds s.
func waitFor(t *testing.T, buf *syncBuffer, s string) string {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out := buf.String(); strings.Contains(out, s) {
			return out
		}
	}
	t.Fatalf("no %q in:\n%s", s, buf.String())
	return ""
}

var (
	bannerAPIKey  = regexp.MustCompile(`(?m)^  (pstn_\S+)$`)
	bannerAdmin   = regexp.MustCompile(`Admin \(REST API, OAuth issuer\): (https://\S+)`)
	bannerInbox   = regexp.MustCompile(`(?m)^  (\S+ --data \S+ Get-MailboxFolderStatistics -Identity sean@contoso.com)$`)
	bannerListens = regexp.MustCompile(`Listeners: submission (\S+) `)
)

// TestDemoBanner: the demo prints the admin listener's address and an API
// key that signs in to the REST API there, and commands that work as
// printed.
func TestDemoBanner(t *testing.T) {
	dir := t.TempDir()
	adminAddr := freeAddr(t)
	_, out := demoProcess(t, dir, binary, "serve", "--demo", "--data", "demo", "--submission", "127.0.0.1:0", "--submissions", "127.0.0.1:0",
		"--mx", "127.0.0.1:0", "--admin", adminAddr, "--resolver", emptyDNS, "--imap", "off", "--imaps", "off", "--pop3", "off", "--pop3s", "off")
	banner := waitFor(t, out, "Back it up while it runs")
	m := bannerAdmin.FindStringSubmatch(banner)
	if m == nil || m[1] != "https://"+adminAddr {
		t.Fatalf("the banner does not give the admin listener https://%s:\n%s", adminAddr, banner)
	}
	key := bannerAPIKey.FindStringSubmatch(banner)
	if key == nil {
		t.Fatalf("no API key in the banner:\n%s", banner)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "demo", "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second}
	req, _ := http.NewRequest("GET", m[1]+"/api/v1/mailboxes", nil)
	req.Header.Set("X-API-Key", key[1])
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "sean@contoso.com") {
		t.Errorf("REST API with the banner's key: %d %s", resp.StatusCode, body)
	}
	// The printed command runs as printed, from the same directory.
	c := bannerInbox.FindStringSubmatch(banner)
	if c == nil {
		t.Fatalf("no Get-MailboxFolderStatistics command in the banner:\n%s", banner)
	}
	f := strings.Fields(c[1])
	cmd := exec.Command(f[0], f[1:]...)
	cmd.Dir = dir
	if got, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(got), "Inbox") {
		t.Errorf("%s: %v\n%s", c[1], err, got)
	}
}

// TestMakeRunArgs: `make run ARGS=...` hands its flags to serve --demo,
// and the banner's commands name ./bin/postern, which works from the
// repository.
func TestMakeRunArgs(t *testing.T) {
	requireTool(t, "make")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "demo")
	sub := freeAddr(t)
	_, out := demoProcess(t, root, "make", "run", fmt.Sprintf("ARGS=--data %s --submission %s --submissions off --mx off --admin off --imap off --imaps off --pop3 off --pop3s off --resolver %s", data, sub, emptyDNS))
	banner := waitFor(t, out, "Back it up while it runs")
	if m := bannerListens.FindStringSubmatch(banner); m == nil || m[1] != sub {
		t.Errorf("make run did not take --submission %s:\n%s", sub, banner)
	}
	if !strings.Contains(banner, "Admin HTTPS listener: off") {
		t.Errorf("make run did not take --admin off:\n%s", banner)
	}
	c := bannerInbox.FindStringSubmatch(banner)
	if c == nil || !strings.HasPrefix(c[1], "./bin/postern --data "+data) {
		t.Fatalf("the banner's command is not ./bin/postern --data %s:\n%s", data, banner)
	}
	f := strings.Fields(c[1])
	cmd := exec.Command(f[0], f[1:]...)
	cmd.Dir = root
	if got, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(got), "Inbox") {
		t.Errorf("%s: %v\n%s", c[1], err, got)
	}
}

// TestFirstRunHelp: help exits 0; a cmdlet without --data names the
// default directory it tried and creates nothing.
func TestFirstRunHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"serve", "--help"}, {"serve", "-h"}, {"backup", "--help"}, {"restore", "-h"}, {"check-config", "--help"}, {"bench", "-h"}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil {
			t.Errorf("postern %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, _ := exec.Command(binary, "serve", "--help").Output()
	if !strings.Contains(string(out), "-submission") || !strings.Contains(string(out), "-demo") {
		t.Errorf("serve --help on stdout:\n%s", out)
	}
	if out, _ := exec.Command(binary, "--help").Output(); !strings.Contains(string(out), "/var/lib/postern") {
		t.Errorf("--help does not name the default data directory:\n%s", out)
	}
	if _, err := os.Stat("/var/lib/postern"); err == nil {
		t.Skip("/var/lib/postern exists here")
	}
	out, err := exec.Command(binary, "Get-Mailbox").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "default data directory /var/lib/postern") {
		t.Errorf("a cmdlet without --data: %v\n%s", err, out)
	}
	if _, err := os.Stat("/var/lib/postern"); err == nil {
		t.Error("a cmdlet created the default data directory")
	}
}

// TestFirstStartNextSteps: a plain start with no accepted domain says
// what to do next; with a domain and no mailbox, how to add one. Failed
// AUTH attempts are in the server log at info level, without the
// password.
func TestFirstStartNextSteps(t *testing.T) {
	in := &instance{t: t, data: t.TempDir()}
	in.start()
	log := waitFor(t, in.log, "no accepted domains yet")
	if !strings.Contains(log, "New-AcceptedDomain") || !strings.Contains(log, "--data "+in.data) {
		t.Errorf("next step:\n%s", log)
	}
	in.admin("New-AcceptedDomain", "-Name", "contoso.com", "-DomainName", "contoso.com", "-DomainType", "Authoritative")
	in.stop()
	in.start()
	waitFor(t, in.log, "no mailboxes yet")
	in.mailbox("sean", "Sean-Pass-1")

	c := dial(t, in.addrs["submission"])
	if r := c.login(in.tlsConfig(), "sean@contoso.com", "Wrong-Secret-99"); !strings.HasPrefix(r, "535") {
		t.Fatalf("wrong password: %s", r)
	}
	log = waitFor(t, in.log, `msg="authentication failed"`)
	if !regexp.MustCompile(`level=INFO msg="authentication failed" ip=127\.0\.0\.1 role=submission mechanism=PLAIN user=sean@contoso\.com reply="535 `).MatchString(log) {
		t.Errorf("failed AUTH log line:\n%s", log)
	}
	if strings.Contains(log, "Wrong-Secret-99") {
		t.Error("the password is in the log")
	}
}
