package e2e

// End-to-end tests of the admin surface's hardening (issue 11): who may
// make the server reach out, https-only URLs, no server files over REST,
// the REST error statuses, API key expiry and revocation, the admin
// socket's permissions, and the data directory lock.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rest calls the REST API with curl and returns the status and body.
func rest(t *testing.T, in *instance, adminAddr, key, method, path string, body any) (int, string) {
	t.Helper()
	curl := requireTool(t, "curl")
	port := portOf(adminAddr)
	args := []string{"-sS", "--cacert", in.caFile(), "--resolve", "localhost:" + port + ":127.0.0.1",
		"-H", "Authorization: Bearer " + key, "-X", method, "-w", "\n%{http_code}"}
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-H", "Content-Type: application/json", "--data-binary", "@-")
	}
	cmd := exec.Command(curl, append(args, "https://localhost:"+port+"/api/v1/"+path)...)
	cmd.Stdin = strings.NewReader(string(data))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s %s: %v\n%s", method, path, err, out)
	}
	text := strings.TrimRight(string(out), "\n")
	i := strings.LastIndex(text, "\n")
	code, err := strconv.Atoi(text[i+1:])
	if err != nil || i < 0 {
		t.Fatalf("curl %s %s: no status in %q", method, path, out)
	}
	return code, text[:i]
}

// apiKeys creates a key of each role in the default organization.
func apiKeys(t *testing.T, in *instance) map[string]string {
	t.Helper()
	keys := map[string]string{}
	for name, role := range map[string]string{"ops": "Organization Management", "helpdesk": "Recipient Management", "auditor": "View-Only"} {
		keys[name] = fieldValue(in.admin("New-ApiKey", "-Name", name, "-Role", role), "Key")
		if !strings.HasPrefix(keys[name], "pstn_") {
			t.Fatalf("key %s: %q", name, keys[name])
		}
	}
	return keys
}

// countingListener counts the TCP connections made to it.
func countingListener(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), &n
}

// TestReachOutIsForTheServerAdministrator: Test-SmtpSubmission -Server,
// New-AuthServer and smart hosts / token endpoints make the server
// connect where the caller says: no organization key of any role may use
// them, and the probe opens no connection for one; View-Only changes
// nothing. The server's administrator, through the CLI, may.
func TestReachOutIsForTheServerAdministrator(t *testing.T) {
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	keys := apiKeys(t, in)
	target, hits := countingListener(t)
	in.start()

	for name, key := range keys {
		for _, r := range []struct {
			cmdlet string
			body   map[string]any
		}{
			{"Test-SmtpSubmission", map[string]any{"Server": target}},
			{"Test-SmtpSubmission", map[string]any{"Server": target, "Port": 465}},
			{"New-AuthServer", map[string]any{"Name": "idp", "AuthMetadataUrl": "https://" + target + "/.well-known/openid-configuration", "Audience": "a"}},
			{"New-OutboundConnector", map[string]any{"Name": "sh", "RecipientDomains": "*", "SmartHosts": target, "UseMXRecord": false}},
			{"New-OutboundConnector", map[string]any{"Name": "tok", "RecipientDomains": "*", "OAuthTokenEndpoint": "https://" + target + "/token"}},
		} {
			code, body := rest(t, in, adminAddr, key, "POST", "cmdlets/"+r.cmdlet, r.body)
			if code != 403 || !strings.Contains(body, "AccessDenied") {
				t.Errorf("%s %s %v = %d %s, want 403", name, r.cmdlet, r.body, code, body)
			}
		}
	}
	// The answers have all come back: a probe, had it run, would have
	// connected by now.
	if n := hits.Load(); n != 0 {
		t.Errorf("organization keys made the server connect %d times", n)
	}
	// View-Only changes nothing, and may still diagnose without a probe.
	if code, body := rest(t, in, adminAddr, keys["auditor"], "POST", "cmdlets/New-Mailbox",
		map[string]any{"Name": "x", "PrimarySmtpAddress": "x@contoso.com", "Shared": true}); code != 403 {
		t.Errorf("View-Only New-Mailbox = %d %s", code, body)
	}
	if code, body := rest(t, in, adminAddr, keys["auditor"], "POST", "cmdlets/Test-SmtpSubmission",
		map[string]any{"Identity": "printer@contoso.com", "Port": 25, "ClientIP": "192.0.2.10", "Recipient": "sean@contoso.com"}); code != 200 {
		t.Errorf("View-Only Test-SmtpSubmission without -Server = %d %s", code, body)
	}
	if got := in.shell("Get-OutboundConnector; Get-AuthServer | Where-Object { $_.Name -eq 'idp' }"); strings.Contains(got, "sh") || strings.Contains(got, "idp") {
		t.Errorf("a refused change was made:\n%s", got)
	}

	// The server's administrator may probe: the listener sees it.
	in.try("Test-SmtpSubmission", "-Server", target)
	deadline := time.Now().Add(30 * time.Second)
	for hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if hits.Load() == 0 {
		t.Error("the administrator's probe did not connect")
	}
}

// TestAdminURLsAreHTTPSOnly: without the test setting, plain http
// metadata and token URLs are refused, also on loopback, and so is an
// https metadata URL that redirects to http; with it (the other OAuth
// tests), http on loopback works.
func TestAdminURLsAreHTTPSOnly(t *testing.T) {
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer": "http://%s", "jwks_uri": "http://%s/keys"}`, r.Host, r.Host)
	}))
	defer plain.Close()
	var secure *httptest.Server
	secure = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, plain.URL+"/.well-known/openid-configuration", http.StatusFound)
		case "/keys":
			w.Write([]byte(`{"keys": []}`))
		default:
			fmt.Fprintf(w, `{"issuer": "%s", "jwks_uri": "%s/keys"}`, secure.URL, secure.URL)
		}
	}))
	defer secure.Close()
	// The server trusts the test's https server (SSL_CERT_FILE is read by
	// Go's crypto/x509 on Linux), so a refusal below is the redirect's.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw}), 0o600)
	t.Setenv("SSL_CERT_FILE", caFile)

	in := newInstance(t)
	// Offline, without the setting: refused before any fetch.
	out, err := in.try("New-AuthServer", "-Name", "plain", "-AuthMetadataUrl", plain.URL+"/.well-known/openid-configuration", "-Audience", "a")
	if err == nil || !strings.Contains(out, "https") {
		t.Errorf("offline http metadata URL: %v\n%s", err, out)
	}
	in.start()
	out, err = in.try("New-AuthServer", "-Name", "plain", "-AuthMetadataUrl", plain.URL+"/.well-known/openid-configuration", "-Audience", "a")
	if err == nil || !strings.Contains(out, "https") {
		t.Errorf("http metadata URL: %v\n%s", err, out)
	}
	out, err = in.try("New-AuthServer", "-Name", "redirected", "-AuthMetadataUrl", secure.URL+"/redirect", "-Audience", "a")
	if err == nil || !strings.Contains(out, "redirect refused") {
		t.Errorf("https redirecting to http: %v\n%s", err, out)
	}
	if n := plainHits.Load(); n != 0 {
		t.Errorf("the plain http server was fetched %d times", n)
	}
	// The control: the same https server, without the redirect, is fine.
	in.admin("New-AuthServer", "-Name", "secure", "-AuthMetadataUrl", secure.URL+"/.well-known/openid-configuration", "-Audience", "a")
	out, err = in.try("New-OutboundConnector", "-Name", "m365", "-RecipientDomains", "*", "-SmartHosts", "127.0.0.1:1", "-UseMXRecord", "$false",
		"-AuthMechanism", "XOAUTH2", "-SmtpUser", "relay@contoso.com", "-OAuthTokenEndpoint", plain.URL+"/token",
		"-OAuthClientId", "app", "-OAuthClientSecret", "s")
	if err == nil || !strings.Contains(out, "https") {
		t.Errorf("http token endpoint: %v\n%s", err, out)
	}
}

// selfSignedPEM is a certificate for New-OAuthApp -Certificate.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "app"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestRESTReadsNoServerFiles: over REST, -Certificate is the certificate
// itself, never a path the server reads, and the shell's file cmdlets do
// not run; the CLI still reads a certificate file.
func TestRESTReadsNoServerFiles(t *testing.T) {
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	keys := apiKeys(t, in)
	dir := t.TempDir()
	certPEM := selfSignedPEM(t)
	certFile := filepath.Join(dir, "app.pem")
	os.WriteFile(certFile, []byte(certPEM), 0o600)
	secretFile := filepath.Join(dir, "secret.txt")
	os.WriteFile(secretFile, []byte("TOP-SECRET-LINE"), 0o600)
	in.start()

	for _, r := range []struct {
		path string
		body map[string]any
	}{
		{"cmdlets/New-OAuthApp", map[string]any{"Name": "by-path", "Certificate": certFile}},
		{"oauth-apps", map[string]any{"Name": "by-path-2", "Certificate": certFile}},
		{"cmdlets/Get-Content", map[string]any{"Path": secretFile}},
		{"cmdlets/Export-Csv", map[string]any{"Path": filepath.Join(dir, "out.csv")}},
	} {
		code, body := rest(t, in, adminAddr, keys["ops"], "POST", r.path, r.body)
		if code < 400 || code >= 500 || strings.Contains(body, "TOP-SECRET") {
			t.Errorf("POST %s = %d %s", r.path, code, body)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.csv")); err == nil {
		t.Error("Export-Csv wrote a file over REST")
	}
	if got := in.admin("Get-OAuthApp"); strings.Contains(got, "by-path") {
		t.Errorf("an app was made from a server path:\n%s", got)
	}
	// The certificate itself is accepted.
	code, body := rest(t, in, adminAddr, keys["ops"], "POST", "cmdlets/New-OAuthApp", map[string]any{"Name": "by-text", "Certificate": certPEM})
	if code != 200 || !strings.Contains(body, `"Certificates":1`) {
		t.Errorf("PEM text over REST = %d %s", code, body)
	}
	// The CLI reads the file (the shell does, for its own user).
	if got := in.admin("New-OAuthApp", "-Name", "cli-file", "-Certificate", certFile); !strings.Contains(got, "cli-file") {
		t.Errorf("CLI -Certificate FILE:\n%s", got)
	}
}

// startLimited starts the server as in.start does, under a file size
// limit (RLIMIT_FSIZE, set with prlimit): writes that would grow a file
// past it fail with EFBIG, as on a full disk.
func startLimited(t *testing.T, in *instance, fsize int64) {
	t.Helper()
	in.wrap = []string{requireTool(t, "prlimit"), fmt.Sprintf("--fsize=%d:%d", fsize, fsize), "--"}
	in.start()
}

// largestFile is the size of the biggest file in dir.
func largestFile(t *testing.T, dir string) int64 {
	var max int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > max {
			max = fi.Size()
		}
		return nil
	})
	return max
}

// TestRESTErrorStatuses: validation 400, duplicates 409, and a failure of
// the server itself (its disk full) 500 with a generic text, the detail
// in the log; the CLI is not told a failed change was made.
func TestRESTErrorStatuses(t *testing.T) {
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	keys := apiKeys(t, in)
	// The database files after a first start, to set the limit above.
	in.start()
	in.stop()
	limit := largestFile(t, in.data) + 512<<10
	startLimited(t, in, limit)
	ops := keys["ops"]

	if code, body := rest(t, in, adminAddr, ops, "POST", "cmdlets/New-Mailbox", map[string]any{"Name": "x", "PrimarySmtpAddress": "not an address", "Shared": true}); code != 400 {
		t.Errorf("validation = %d %s", code, body)
	}
	if code, body := rest(t, in, adminAddr, ops, "POST", "cmdlets/New-Mailbox", map[string]any{"Name": "dup", "PrimarySmtpAddress": "dup@contoso.com", "Shared": true}); code != 200 {
		t.Fatalf("New-Mailbox = %d %s", code, body)
	}
	if code, body := rest(t, in, adminAddr, ops, "POST", "cmdlets/New-Mailbox", map[string]any{"Name": "dup2", "PrimarySmtpAddress": "dup@contoso.com", "Shared": true}); code != 409 {
		t.Errorf("duplicate = %d %s", code, body)
	}
	if code, body := rest(t, in, adminAddr, ops, "POST", "cmdlets/New-ApiKey", map[string]any{"Name": "ops", "Role": "View-Only"}); code != 409 {
		t.Errorf("duplicate key = %d %s", code, body)
	}

	// A write larger than the room left: the disk is "full".
	big := strings.Repeat("x", 900<<10) // more than the room left under the limit
	code, body := rest(t, in, adminAddr, ops, "POST", "cmdlets/New-OutboundConnector", map[string]any{"Name": "big", "RecipientDomains": "big.example", "Comment": big})
	if code != 500 || !strings.Contains(body, "InternalServerError") {
		t.Fatalf("disk full = %d %.300s", code, body)
	}
	for _, leak := range []string{"disk", "sqlite", "SQL", in.data, "postern.db"} {
		if strings.Contains(body, leak) {
			t.Errorf("the 500 answer shows %q: %s", leak, body)
		}
	}
	if log := in.log.String(); !strings.Contains(log, "api request failed") {
		t.Errorf("the detail is not in the log:\n%s", log)
	}
	// The same through the CLI (the admin socket): the change failed and
	// the audit log could not record it either; it must not say the
	// change was made.
	script := filepath.Join(t.TempDir(), "big.ps1")
	os.WriteFile(script, []byte("New-OutboundConnector -Name big2 -RecipientDomains big2.example -Comment '"+big+"'\n"), 0o600)
	out, err := in.try("shell", "-f", script)
	if err == nil {
		t.Fatalf("the change succeeded on a full disk:\n%.300s", out)
	}
	if strings.Contains(out, "the change was made") || !strings.Contains(out, "could not record this failed attempt") {
		t.Errorf("CLI output on a full disk:\n%.500s", out)
	}
	// The server still works for small changes.
	if code, body := rest(t, in, adminAddr, ops, "POST", "cmdlets/New-Mailbox", map[string]any{"Name": "after", "PrimarySmtpAddress": "after@contoso.com", "Shared": true}); code != 200 {
		t.Errorf("after the failure = %d %s", code, body)
	}
}

// TestAPIKeyLifetime: -ExpiresAfter, LastUsed and revocation.
func TestAPIKeyLifetime(t *testing.T) {
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	long := fieldValue(in.admin("New-ApiKey", "-Name", "long", "-Role", "View-Only", "-ExpiresAfter", "1.00:00:00"), "Key")
	short := fieldValue(in.admin("New-ApiKey", "-Name", "short", "-Role", "View-Only", "-ExpiresAfter", "1s"), "Key")
	forever := fieldValue(in.admin("New-ApiKey", "-Name", "forever", "-Role", "View-Only"), "Key")
	if out, err := in.try("New-ApiKey", "-Name", "bad", "-Role", "View-Only", "-ExpiresAfter", "-5"); err == nil {
		t.Errorf("a negative expiry was accepted:\n%s", out)
	}
	in.start()

	if code, body := rest(t, in, adminAddr, long, "GET", "mailboxes", nil); code != 200 {
		t.Errorf("a key expiring tomorrow = %d %s", code, body)
	}
	list := in.shell("Get-ApiKey -Identity long | Format-List LastUsed,Expires")
	if fieldValue(list, "LastUsed") == "" || fieldValue(list, "Expires") == "" {
		t.Errorf("Get-ApiKey shows no last use or expiry:\n%s", list)
	}
	if got := in.shell("Get-ApiKey -Identity forever | Format-List LastUsed,Expires"); fieldValue(got, "LastUsed") != "" || fieldValue(got, "Expires") != "" {
		t.Errorf("an unused key without expiry:\n%s", got)
	}
	// The short key expires; wait for it with a generous deadline.
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := rest(t, in, adminAddr, short, "GET", "mailboxes", nil)
		if code == 401 {
			if !strings.Contains(body, "expired") {
				t.Errorf("401 without the reason: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired key still signs in: %d %s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Revocation.
	if code, _ := rest(t, in, adminAddr, forever, "GET", "mailboxes", nil); code != 200 {
		t.Fatalf("forever = %d", code)
	}
	in.admin("Remove-ApiKey", "-Identity", "forever")
	if code, body := rest(t, in, adminAddr, forever, "GET", "mailboxes", nil); code != 401 {
		t.Errorf("a revoked key = %d %s", code, body)
	}
}

// TestAdminSocketPermissions: the socket is there with mode 0600 as soon
// as the server says it started (it is created in a private directory and
// renamed into place, so it never has another mode; the unit test
// TestListenPrivateUnix watches for that), and nothing is left beside it.
func TestAdminSocketPermissions(t *testing.T) {
	in := newInstance(t)
	in.start()
	fi, err := os.Lstat(filepath.Join(in.data, "admin.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.sock: %v", fi.Mode())
	}
	entries, _ := os.ReadDir(in.data)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".admin-sock-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	in.admin("Get-Mailbox") // it answers
}

// TestDataDirectoryLock: a second server on a held directory fails before
// it listens and leaves the first one's socket; a cmdlet that finds the
// socket gone but the lock held refuses to open the database; a missing
// --data is an error, and only serve creates one; a killed server's lock
// goes with it.
func TestDataDirectoryLock(t *testing.T) {
	in := newInstance(t)
	in.start()
	sock := filepath.Join(in.data, "admin.sock")
	before, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	second := exec.Command(binary, "serve", "--data", in.data, "--hostname", "mail.contoso.com", "--submission", "127.0.0.1:0",
		"--submissions", "127.0.0.1:0", "--mx", "127.0.0.1:0", "--resolver", emptyDNS)
	second.Args = append(second.Args, accessLoopback...)
	out, err := second.CombinedOutput() // it must exit by itself
	if err == nil || !strings.Contains(string(out), "in use") || strings.Contains(string(out), "msg=listening") {
		t.Errorf("second serve: %v\n%s", err, out)
	}
	after, err := os.Lstat(sock)
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("the running server's socket was touched: %v", err)
	}
	in.admin("Get-Mailbox") // still answers

	// The socket gone, the lock held: no write behind the server's back.
	moved := filepath.Join(in.data, "moved.sock")
	if err := os.Rename(sock, moved); err != nil {
		t.Fatal(err)
	}
	out2, err := in.try("New-Mailbox", "-Name", "ghost", "-PrimarySmtpAddress", "ghost@contoso.com", "-Shared")
	if err == nil || !strings.Contains(out2, "in use") {
		t.Errorf("cmdlet with the socket missing: %v\n%s", err, out2)
	}
	os.Rename(moved, sock)
	in.stop()
	if _, err := os.Lstat(sock); err == nil {
		t.Error("the server left its socket")
	}
	if got := in.admin("Get-Mailbox"); strings.Contains(got, "ghost") {
		t.Errorf("the refused cmdlet wrote to the database:\n%s", got)
	}

	// A killed server's lock is released by the kernel; its stale socket
	// is replaced by the next server.
	in.start()
	in.kill()
	in.admin("Get-Mailbox")
	in.start()
	in.admin("Get-Mailbox")
	in.stop()

	// A mistyped --data: an error, nothing created.
	typo := filepath.Join(t.TempDir(), "typo")
	out3, err := exec.Command(binary, "--data", typo, "Get-Mailbox").CombinedOutput()
	if err == nil || !strings.Contains(string(out3), "does not exist") || !strings.Contains(string(out3), "postern serve") {
		t.Errorf("missing --data: %v\n%s", err, out3)
	}
	if _, err := os.Stat(typo); err == nil {
		t.Error("a cmdlet created the missing directory")
	}
	// A directory with other files is not taken for a new one.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("x"), 0o600)
	if out4, err := exec.Command(binary, "--data", other, "Get-Mailbox").CombinedOutput(); err == nil || !strings.Contains(string(out4), "no Postern database") {
		t.Errorf("non-Postern directory: %v\n%s", err, out4)
	}
	// serve creates a missing one, and says so.
	fresh := filepath.Join(t.TempDir(), "fresh")
	srv := exec.Command(binary, "serve", "--data", fresh, "--hostname", "mail.contoso.com", "--submission", "127.0.0.1:0",
		"--submissions", "off", "--mx", "off", "--resolver", emptyDNS)
	srv.Args = append(srv.Args, accessOff...)
	log := &syncBuffer{}
	srv.Stdout, srv.Stderr = log, log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(log.String(), `msg="postern started"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	srv.Process.Signal(syscall.SIGTERM)
	srv.Wait()
	if !strings.Contains(log.String(), "created the data directory") {
		t.Errorf("serve did not say it created the directory:\n%s", log.String())
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the created directory: %v %v", fi, err)
	}
}
