package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// protocolLog reads Get-ProtocolLog as "event data" lines, one a record.
func (in *instance) protocolLog(args string) []string {
	in.t.Helper()
	out := in.shell("Get-ProtocolLog -ResultSize Unlimited " + args + " | Format-List Event,Data")
	var recs []string
	var event string
	for _, l := range strings.Split(out, "\n") {
		name, value, ok := strings.Cut(l, " : ")
		if !ok {
			name, value = strings.TrimSuffix(strings.TrimSpace(l), " :"), ""
		}
		switch strings.TrimSpace(name) {
		case "Event":
			event = value
		case "Data":
			recs = append(recs, strings.TrimSpace(event+" "+value))
		}
	}
	return recs
}

// waitProtocolLog polls until a session's last record ("-", the
// disconnect) is there: the server writes it when it closes the
// connection, after the client saw QUIT's reply.
func (in *instance) waitProtocolLog(args string, sessions int) []string {
	in.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs := in.protocolLog(args)
		n := 0
		for _, r := range recs {
			if r == "-" {
				n++
			}
		}
		if n >= sessions {
			return recs
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("protocol log has %d of %d sessions:\n%s", n, sessions, strings.Join(recs, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestProtocolLog: Set-ReceiveConnector -ProtocolLoggingLevel Verbose on
// the submission listener ("Client Frontend") logs the conversation of a
// session with AUTH PLAIN and AUTH LOGIN and a message; Get-ProtocolLog
// reads it back with the passwords, their base64 and the body absent; a
// listener left at None, and the listener once set back to None, log
// nothing; the setting survives a restart.
func TestProtocolLog(t *testing.T) {
	curl := requireTool(t, "curl")
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	sean := in.mailbox("sean", "Sean-Pass-1")
	key := fieldValue(in.admin("New-ApiKey", "-Name", "ops", "-Role", "Organization Management"), "Key")
	in.admin("Set-ReceiveConnector", "-Identity", "Client Frontend", "-ProtocolLoggingLevel", "Verbose")
	if out := in.admin("Get-ReceiveConnector"); !strings.Contains(out, "Client Frontend") || !strings.Contains(out, "Verbose") {
		t.Fatalf("Get-ReceiveConnector:\n%s", out)
	}
	in.start()

	const marker = "Body-Marker-7f3a9"
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + sean + "\x00Sean-Pass-1"))
	c := dial(t, in.addrs["submission"])
	if got := c.login(in.tlsConfig(), sean, "Sean-Pass-1"); !strings.HasPrefix(got, "235") {
		t.Fatalf("AUTH PLAIN: %s", got)
	}
	if got := c.send(sean, []string{sean}, message(sean, sean, "protocol log")+marker+"\r\n"); !strings.HasPrefix(got, "250") {
		t.Fatalf("send: %s", got)
	}
	c.expect("QUIT", "221")

	// A second session with AUTH LOGIN: both SASL lines masked.
	user64 := base64.StdEncoding.EncodeToString([]byte(sean))
	pass64 := base64.StdEncoding.EncodeToString([]byte("Sean-Pass-1"))
	d := dial(t, in.addrs["submission"])
	d.expect("EHLO scanner.contoso.com", "250")
	d.startTLS(in.tlsConfig())
	d.expect("EHLO scanner.contoso.com", "250")
	d.expect("AUTH LOGIN", "334")
	d.expect(user64, "334")
	d.expect(pass64, "235")
	d.expect("QUIT", "221")

	recs := in.waitProtocolLog("-ClientIP 127.0.0.1", 2)
	all := strings.Join(recs, "\n")
	for _, want := range []string{"+", "> 220 mail.contoso.com", "< EHLO scanner.contoso.com", "< STARTTLS", "< AUTH PLAIN ****", "> 235 2.7.0 Authentication successful",
		"< MAIL FROM:<" + sean + ">", "< DATA", "> 354", "* <message of ", "< QUIT", "> 221", "-",
		"< AUTH LOGIN", "< ****"} {
		found := false
		for _, r := range recs {
			if strings.HasPrefix(r, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("protocol log lacks %q:\n%s", want, all)
		}
	}
	for _, secret := range []string{"Sean-Pass-1", plain, pass64, user64, marker, "Subject: protocol log"} {
		if strings.Contains(all, secret) {
			t.Errorf("protocol log contains %q:\n%s", secret, all)
		}
	}
	// Only the server's administrator reads it: an organization's admin,
	// even with Organization Management, is refused (the log holds every
	// organization's sessions).
	for cmd, body := range map[string]string{"Get-ProtocolLog": `{"ClientIP": "127.0.0.1"}`, "Get-ReceiveConnector": `{}`,
		"Set-ReceiveConnector": `{"Identity": "Client Frontend", "ProtocolLoggingLevel": "None"}`} {
		out, err := exec.Command(curl, "-sS", "--cacert", in.caFile(), "--resolve", "localhost:"+portOf(adminAddr)+":127.0.0.1",
			"-H", "X-API-Key: "+key, "-H", "Content-Type: application/json", "-X", "POST",
			"-d", body,
			"-w", "\n%{http_code}", "https://localhost:"+portOf(adminAddr)+"/api/v1/cmdlets/"+cmd).CombinedOutput()
		if err != nil || !strings.HasSuffix(string(out), "\n403") || strings.Contains(string(out), "EHLO") {
			t.Errorf("%s by an organization's key: %v\n%s", cmd, err, out)
		}
	}

	// The MX listener ("Default Frontend") was never turned on.
	m := dial(t, in.addrs["mx"])
	m.expect("EHLO relay.fabrikam.com", "250")
	m.expect("QUIT", "221")
	// Client Frontend back to None: a new session is not logged either.
	in.admin("Set-ReceiveConnector", "-Identity", "Client Frontend", "-ProtocolLoggingLevel", "None")
	e := dial(t, in.addrs["submission"])
	e.expect("EHLO after.contoso.com", "250")
	e.expect("QUIT", "221")
	// A logged session after both shows they were not merely late.
	in.admin("Set-ReceiveConnector", "-Identity", "Client Frontend", "-ProtocolLoggingLevel", "Verbose")
	f := dial(t, in.addrs["submission"])
	f.expect("EHLO last.contoso.com", "250")
	f.expect("QUIT", "221")
	recs = in.waitProtocolLog("", 3)
	all = strings.Join(recs, "\n")
	if !strings.Contains(all, "< EHLO last.contoso.com") {
		t.Errorf("third logged session missing:\n%s", all)
	}
	for _, unwanted := range []string{"relay.fabrikam.com", "after.contoso.com"} {
		if strings.Contains(all, unwanted) {
			t.Errorf("a session on a listener at None was logged (%s):\n%s", unwanted, all)
		}
	}
	if recs := in.protocolLog(`-Identity "Default Frontend"`); len(recs) != 0 {
		t.Errorf("Default Frontend logged:\n%s", strings.Join(recs, "\n"))
	}

	// The level is stored: after a restart the listener still logs.
	in.stop()
	in.start()
	g := dial(t, in.addrs["submission"])
	g.expect("EHLO restarted.contoso.com", "250")
	g.expect("QUIT", "221")
	recs = in.waitProtocolLog("", 4)
	if !strings.Contains(strings.Join(recs, "\n"), "< EHLO restarted.contoso.com") {
		t.Errorf("not logged after restart:\n%s", strings.Join(recs, "\n"))
	}
}

// TestSystemdNotify: under a fake systemd (a unixgram socket in
// $NOTIFY_SOCKET) the server sends READY=1 once its listeners accept
// connections, and STOPPING=1 when it is told to stop (Type=notify in
// dist/postern.service).
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", sock) // the server inherits the environment
	in := newInstance(t)
	in.start()
	read := func() string {
		buf := make([]byte, 4096)
		l.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := l.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v\n%s", err, in.log.String())
		}
		return string(buf[:n])
	}
	if got := read(); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("first notification %q", got)
	}
	// Ready means ready: every listener answers now.
	for _, role := range []string{"submission", "mx"} {
		c := dial(t, in.addrs[role])
		c.expect("QUIT", "221")
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", in.addrs["submissions"], in.tlsConfig())
	if err != nil {
		t.Fatalf("submissions after READY=1: %v", err)
	}
	c.Close()
	in.stop()
	if got := read(); got != "STOPPING=1" {
		t.Fatalf("at shutdown: %q", got)
	}
}

// TestMakeInstall: make install (PREFIX- and DESTDIR-aware) places the
// binary, a configuration file with every setting commented out (the
// binary's config-example; an existing one is kept), the sysusers.d entry
// and a hardened unit, which systemd-analyze verify accepts without a
// warning where systemd is installed.
func TestMakeInstall(t *testing.T) {
	mk := requireTool(t, "make")
	root := t.TempDir()
	install := func() string {
		// PREFIX without DESTDIR, so the unit names the installed binary
		// and systemd-analyze verify can check that it is executable.
		cmd := exec.Command(mk, "-C", "..", "install", "PREFIX="+root+"/usr", "SYSCONFDIR="+root+"/etc")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
		return string(out)
	}
	install()
	bin := filepath.Join(root, "usr/bin/postern")
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("binary: %v", err)
	}
	want, err := exec.Command(binary, "config-example").Output()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "etc/postern/postern.toml")
	got, err := os.ReadFile(conf)
	if err != nil || string(got) != string(want) || !strings.Contains(string(got), "#data = '/var/lib/postern'") {
		t.Fatalf("configuration file (%v):\n%s", err, got)
	}
	// The commented file is a valid configuration as it is.
	if out, err := exec.Command(bin, "--config", conf, "Get-Command", "Get-ProtocolLog").CombinedOutput(); err != nil && strings.Contains(string(out), "postern.toml") {
		t.Errorf("installed configuration does not load: %s", out)
	}
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/postern.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"Type=notify", "ExecStart=" + bin + " serve --config " + conf + " --data /var/lib/postern",
		"User=postern", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"ProtectSystem=strict", "NoNewPrivileges=yes", "ReadWritePaths=/var/lib/postern", "StateDirectory=postern", "WantedBy=multi-user.target"} {
		if !strings.Contains("\n"+string(unit)+"\n", "\n"+line+"\n") {
			t.Errorf("unit lacks %q:\n%s", line, unit)
		}
	}
	if strings.Contains(string(unit), "@BINDIR@") || strings.Contains(string(unit), "@SYSCONFDIR@") {
		t.Errorf("unit has an unreplaced placeholder:\n%s", unit)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/sysusers.d/postern.conf")); err != nil || !strings.Contains(string(b), "u postern ") {
		t.Errorf("sysusers entry: %v %s", err, b)
	}
	// A second install keeps the admin's configuration.
	os.WriteFile(conf, []byte("hostname = 'mail.contoso.com'\n"), 0o644)
	install()
	if b, _ := os.ReadFile(conf); string(b) != "hostname = 'mail.contoso.com'\n" {
		t.Errorf("make install overwrote the configuration: %s", b)
	}
	if b, _ := os.ReadFile(conf + ".example"); string(b) != string(want) {
		t.Errorf("postern.toml.example: %s", b)
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit checked by content only")
		return
	}
	out, err := exec.Command(sa, "verify", filepath.Join(root, "etc/systemd/system/postern.service")).CombinedOutput()
	// verify exits 0 on unknown or malformed directives and only warns:
	// any output is a failure.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
