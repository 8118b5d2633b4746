package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/config"
	"postern.dev/postern/internal/logswitch"
	"postern.dev/postern/internal/smtpd"
	"postern.dev/postern/internal/testlog"
)

// greeting dials addr and returns the first reply line, or the error.
func greeting(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return bufio.NewReader(c).ReadString('\n')
}

// TestReload runs a server and reloads it (under -race): listeners move,
// open, close and stay when the new address cannot bind; a session on a
// moved listener goes on; live keys apply and restart-only keys are kept;
// the admin listener turns on with its metrics token.
func TestReload(t *testing.T) {
	logs := &testlog.Buffer{}
	log, sw, err := logswitch.New(logs, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Data = t.TempDir()
	cfg.Hostname = "mail.contoso.com"
	cfg.Submission, cfg.Submissions, cfg.MX, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", config.Off, config.Off
	cfg.Resolver = "127.0.0.1:1" // never asked: no anonymous mail here
	srv, err := Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Logging = sw
	oldSub := srv.Addr(smtpd.Submission).String()
	open, err := net.DialTimeout("tcp", oldSub, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	openR := bufio.NewReader(open)
	open.SetDeadline(time.Now().Add(30 * time.Second))
	if l, _ := openR.ReadString('\n'); !strings.HasPrefix(l, "220 ") {
		t.Fatalf("greeting %q", l)
	}

	// A port in use: the submissions listener cannot move there.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	oldSubs := srv.Addr(smtpd.Submissions).String()

	next := cfg
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	next.Submission = free.Addr().String()
	free.Close()
	next.Submissions = busy.Addr().String()
	next.MX = "127.0.0.1:0"
	next.Admin = "127.0.0.1:0"
	next.MetricsToken = "t0ken"
	next.Data = "/elsewhere"
	next.MaxConnectionsPerIP = 7
	next.IdleTimeout = config.Duration{Duration: time.Minute}
	next.LogLevel = "debug"
	next.Delivery.Workers = 3
	next.Auth.LockoutThreshold = 4
	next.TraceRetention = config.Duration{Duration: time.Hour}
	next.Resolver = "127.0.0.1:2"
	res := srv.Reload(next)

	applied, kept := keysOf(res.Applied), keysOf(res.Kept)
	for _, k := range []string{"submission", "mx", "admin", "max_connections_per_ip", "idle_timeout", "log_level", "metrics_token", "delivery.workers", "auth.lockout_threshold", "trace_retention", "resolver"} {
		if !strings.Contains(","+applied+",", ","+k+",") {
			t.Errorf("%s not applied: applied %s, kept %s", k, applied, kept)
		}
	}
	if kept != "data,submissions" {
		t.Errorf("kept %s, want data,submissions", kept)
	}
	live := srv.live.Load()
	if live.Data != cfg.Data || live.Submissions != cfg.Submissions || live.MaxConnectionsPerIP != 7 || live.Admin != "127.0.0.1:0" {
		t.Errorf("in force: %+v", live)
	}
	if got := srv.authn.Lockout.Config().Threshold; got != 4 {
		t.Errorf("lockout threshold %d", got)
	}
	out := logs.String()
	for _, want := range []string{"data: change needs a restart; keeping " + cfg.Data, "submissions: not changed; keeping 127.0.0.1:0", "level=DEBUG msg=\"configuration key changed\" key=submission"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}

	if _, err := greeting(oldSub); err == nil {
		t.Errorf("the old submission address %s still accepts", oldSub)
	}
	for _, role := range []smtpd.Role{smtpd.Submission, smtpd.MX} {
		if l, err := greeting(srv.Addr(role).String()); err != nil || !strings.HasPrefix(l, "220 ") {
			t.Errorf("%s at %v: %q %v", role, srv.Addr(role), l, err)
		}
	}
	if srv.Addr(smtpd.Submissions).String() != oldSubs {
		t.Errorf("submissions moved to %v though the new address was taken", srv.Addr(smtpd.Submissions))
	}
	// The session opened on the old listener goes on.
	open.Write([]byte("NOOP\r\n"))
	if l, _ := openR.ReadString('\n'); !strings.HasPrefix(l, "250 ") {
		t.Errorf("the open session after the move: %q", l)
	}

	// The admin listener turned on, with the metrics token.
	srv.lnMu.Lock()
	adminAddr := srv.adminLn.Addr().String()
	srv.lnMu.Unlock()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", "https://"+adminAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer t0ken")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/metrics with the new token: %d", resp.StatusCode)
	}

	// Off closes; a certificate pair that does not load is kept.
	third := *srv.live.Load()
	third.Data = cfg.Data
	third.MX = config.Off
	third.TLSCert = filepath.Join(t.TempDir(), "missing.pem")
	third.TLSKey = third.TLSCert
	os.WriteFile(third.TLSCert, []byte("not a certificate"), 0o600)
	res = srv.Reload(third)
	if got := keysOf(res.Kept); got != "tls_cert,tls_key" {
		t.Errorf("kept %s, want tls_cert,tls_key", got)
	}
	if srv.Addr(smtpd.MX) != nil {
		t.Errorf("mx still listening at %v", srv.Addr(smtpd.MX))
	}
	if f, _ := srv.cert.files(); f != filepath.Join(cfg.Data, "tls", "cert.pem") {
		t.Errorf("certificate file %s", f)
	}
}
