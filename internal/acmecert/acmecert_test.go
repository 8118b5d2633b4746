package acmecert

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"postern.dev/postern/internal/testcert"
	"postern.dev/postern/internal/testlog"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "mail.contoso.com", want: "mail.contoso.com"},
		{in: "Mail.Contoso.COM.", want: "mail.contoso.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "a-b.c0.example", want: "a-b.c0.example"},
		{in: "", err: "empty"},
		{in: "mail", err: "two labels"},
		{in: "*.contoso.com", err: "wildcard"},
		{in: "192.0.2.1", err: "IP address"},
		{in: "2001:db8::1", err: "IP address"},
		{in: "a..b", err: "not a valid host name"},
		{in: "-a.example", err: "not a valid host name"},
		{in: "a_b.example", err: "not a valid host name"},
		{in: "mail.contoso.com:465", err: "not a valid host name"},
		{in: strings.Repeat("a", 64) + ".example", err: "not a valid host name"},
		{in: strings.Repeat("abcdefghi.", 26) + "example", err: "253"},
	} {
		got, err := CheckName(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("CheckName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("CheckName(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
}

func TestRenewalWindow(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		renewBefore, lifetime, want time.Duration
	}{
		{0, 90 * day, 30 * day},                                // Let's Encrypt: a third, 30 days
		{0, 6 * day, 2 * day},                                  // short-lived certificates: a third
		{0, 365 * day, 30 * day},                               // at most 30 days
		{10 * day, 90 * day, 10 * day},                         // configured
		{60 * day, 90 * day, 30 * day},                         // autocert caps it
		{30 * time.Second, 40 * time.Second, 30 * time.Second}, // the e2e test's
	} {
		if got := renewalWindow(tc.renewBefore, tc.lifetime); got != tc.want {
			t.Errorf("renewalWindow(%v, %v) = %v, want %v", tc.renewBefore, tc.lifetime, got, tc.want)
		}
	}
}

// testCert makes a self-signed certificate for name.
func testCert(t *testing.T, name string) *tls.Certificate {
	t.Helper()
	return &testcert.New(t, name).Certificate
}

// pemOf encodes c as autocert's cache does: the key, then the chain.
func pemOf(t *testing.T, c *tls.Certificate) []byte {
	t.Helper()
	kb, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})...)
}

func newTestManager(t *testing.T, fallback *tls.Certificate, names ...string) (*Manager, *testlog.Buffer) {
	t.Helper()
	logs := &testlog.Buffer{}
	m, err := New(Config{DirectoryURL: "https://127.0.0.1:1/dir", Names: names, CacheDir: filepath.Join(t.TempDir(), "acme"),
		Fallback: func() *tls.Certificate { return fallback }, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return m, logs
}

// TestServedCertificate: which certificate a handshake gets, from the
// ClientHello alone, before and after issuance, and that a CA's
// TLS-ALPN-01 hello (and only that) is handed to autocert.
func TestServedCertificate(t *testing.T) {
	fallback := testCert(t, "self-signed")
	m, logs := newTestManager(t, fallback, "Mail.Contoso.com", "smtp.contoso.com", "mail.contoso.com.")
	if got := m.Names(); len(got) != 2 || got[0] != "mail.contoso.com" || got[1] != "smtp.contoso.com" {
		t.Fatalf("names %v: normalised, duplicates dropped, host name first", got)
	}
	if fi, err := os.Stat(m.cfg.CacheDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache directory: %v %v", fi, err)
	}
	host, extra := testCert(t, "mail.contoso.com"), testCert(t, "smtp.contoso.com")
	hello := func(name string, protos ...string) *tls.ClientHelloInfo {
		return &tls.ClientHelloInfo{ServerName: name, SupportedProtos: protos}
	}
	cases := []struct {
		what  string
		hello *tls.ClientHelloInfo
		want  [3]*tls.Certificate // before any, with the host name's, with both
	}{
		{"host name", hello("mail.contoso.com"), [3]*tls.Certificate{fallback, host, host}},
		{"extra name, any case", hello("SMTP.contoso.com"), [3]*tls.Certificate{fallback, host, extra}},
		{"no SNI", hello(""), [3]*tls.Certificate{fallback, host, host}},
		{"a name not configured", hello("evil.contoso.com"), [3]*tls.Certificate{fallback, host, host}},
		{"another ALPN protocol", hello("smtp.contoso.com", "smtp"), [3]*tls.Certificate{fallback, host, extra}},
		{"acme-tls/1 among others", hello("smtp.contoso.com", "h2", acme.ALPNProto), [3]*tls.Certificate{fallback, host, extra}},
	}
	for stage := range 3 {
		switch stage {
		case 1:
			m.install("mail.contoso.com", host, true)
		case 2:
			m.install("smtp.contoso.com", extra, false)
		}
		for _, tc := range cases {
			got, err := m.GetCertificate(tc.hello)
			if err != nil || got != tc.want[stage] {
				t.Errorf("stage %d, %s: got %v, %v", stage, tc.what, got, err)
			}
			if cfg, _ := m.GetConfigForClient(tc.hello); cfg != nil {
				t.Errorf("%s: a challenge configuration for a client", tc.what)
			}
		}
	}
	// A validation handshake: acme-tls/1 alone. autocert has no token for
	// it here, so it fails; it never gets a serving certificate.
	ch := hello("mail.contoso.com", acme.ALPNProto)
	cfg, _ := m.GetConfigForClient(ch)
	if cfg == nil || len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != acme.ALPNProto {
		t.Fatalf("challenge configuration %+v", cfg)
	}
	if c, err := m.GetCertificate(ch); err == nil {
		t.Errorf("a challenge hello without a token got %v", c)
	}
	if l := m.Leaf("MAIL.contoso.com"); l != host.Leaf {
		t.Errorf("Leaf = %v", l)
	}
	log := logs.String()
	for _, want := range []string{`msg="ACME certificate issued" name=mail.contoso.com`, `msg="ACME certificate loaded" name=smtp.contoso.com`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// The same certificate again logs nothing; a new one is a renewal.
	m.install("mail.contoso.com", host, true)
	if strings.Count(logs.String(), "name=mail.contoso.com") != 1 {
		t.Errorf("a repeated install was logged:\n%s", logs.String())
	}
	renewed := testCert(t, "mail.contoso.com")
	m.install("mail.contoso.com", renewed, true)
	if !strings.Contains(logs.String(), `msg="ACME certificate renewed" name=mail.contoso.com serial=`+renewed.Leaf.SerialNumber.Text(16)) {
		t.Errorf("renewal not logged:\n%s", logs.String())
	}
}

// TestCachePut: what autocert stores under a name goes into service at
// once; its other entries (account key, challenge tokens) do not.
func TestCachePut(t *testing.T) {
	fallback := testCert(t, "self-signed")
	m, logs := newTestManager(t, fallback, "mail.contoso.com")
	ctx := context.Background()
	c := testCert(t, "mail.contoso.com")
	other := testCert(t, "mail.contoso.com")
	for _, key := range []string{"acme_account+key", "mail.contoso.com+token", "tok+http-01", "mail.contoso.com+rsa"} {
		if err := m.ac.Cache.Put(ctx, key, pemOf(t, other)); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "mail.contoso.com"}); got != fallback {
		t.Fatalf("another cache entry was put in service")
	}
	if err := m.ac.Cache.Put(ctx, "mail.contoso.com", pemOf(t, c)); err != nil {
		t.Fatal(err)
	}
	got, _ := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "mail.contoso.com"})
	if got == fallback || !bytes.Equal(got.Certificate[0], c.Certificate[0]) {
		t.Fatalf("the stored certificate is not served")
	}
	if b, err := os.ReadFile(filepath.Join(m.cfg.CacheDir, "mail.contoso.com")); err != nil || !bytes.Equal(b, pemOf(t, c)) {
		t.Errorf("not stored in the cache directory: %v", err)
	}
	// Garbage under a name is stored (autocert's business) but not served.
	if err := m.ac.Cache.Put(ctx, "mail.contoso.com", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if got2, _ := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "mail.contoso.com"}); got2 != got {
		t.Errorf("garbage replaced the certificate")
	}
	if !strings.Contains(logs.String(), "ACME certificate stored unreadable") {
		t.Errorf("garbage not logged:\n%s", logs.String())
	}
}

// TestHandshakeWithOtherALPN: with ACME configured, a mail client that
// offers an ALPN protocol of its own still completes its handshake (were
// acme-tls/1 in every connection's NextProtos, Go would refuse it), and a
// validation handshake negotiates acme-tls/1.
func TestHandshakeWithOtherALPN(t *testing.T) {
	fallback := testCert(t, "mail.contoso.com")
	m, _ := newTestManager(t, fallback, "mail.contoso.com")
	srvCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	m.Configure(srvCfg)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	for _, protos := range [][]string{nil, {"smtp"}, {"imap", "pop3"}} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "mail.contoso.com", NextProtos: protos})
		if err != nil {
			t.Errorf("ALPN %v: %v", protos, err)
			continue
		}
		if p := conn.ConnectionState().NegotiatedProtocol; p != "" {
			t.Errorf("ALPN %v negotiated %q", protos, p)
		}
		conn.Close()
	}
	// A validation handshake reaches autocert (which has no token here, so
	// the handshake fails on the server's side, not on ALPN).
	_, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "mail.contoso.com", NextProtos: []string{acme.ALPNProto}})
	if err == nil || strings.Contains(err.Error(), "application protocol") {
		t.Errorf("validation handshake without a token: %v", err)
	}
}

// TestHTTPHandler: HTTP-01 tokens are answered only for configured names
// (the port in Host aside); anything else is 404, and only answers are
// logged.
func TestHTTPHandler(t *testing.T) {
	logs := &testlog.Buffer{}
	dir := filepath.Join(t.TempDir(), "acme")
	m, err := New(Config{Names: []string{"mail.contoso.com"}, CacheDir: dir, HTTP01: true,
		Fallback: func() *tls.Certificate { return nil }, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// autocert keeps a pending token in its cache too: put one there.
	if err := m.ac.Cache.Put(context.Background(), "tok123+http-01", []byte("tok123.thumbprint")); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: m.HTTPHandler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	for _, tc := range []struct {
		host, path string
		code       int
		body       string
	}{
		{"mail.contoso.com", "/.well-known/acme-challenge/tok123", 200, "tok123.thumbprint"},
		{"MAIL.contoso.com:8080", "/.well-known/acme-challenge/tok123", 200, "tok123.thumbprint"},
		{"evil.contoso.com", "/.well-known/acme-challenge/tok123", 403, ""},
		{"mail.contoso.com", "/.well-known/acme-challenge/other", 404, ""},
		{"mail.contoso.com", "/", 404, ""},
	} {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+tc.path, nil)
		req.Host = tc.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || tc.body != "" && string(b) != tc.body {
			t.Errorf("%s %s: %d %q", tc.host, tc.path, resp.StatusCode, b)
		}
	}
	if n := strings.Count(logs.String(), "ACME http-01 challenge answered"); n != 2 {
		t.Errorf("%d answers logged, want 2:\n%s", n, logs.String())
	}
	if m2, _ := newTestManager(t, nil, "mail.contoso.com"); m2.HTTPHandler() != nil {
		t.Error("an HTTP-01 handler without HTTP01")
	}
}

func TestNewRefuses(t *testing.T) {
	fb := func() *tls.Certificate { return nil }
	for _, cfg := range []Config{
		{Names: nil, CacheDir: t.TempDir(), Fallback: fb},
		{Names: []string{"mail.contoso.com"}, CacheDir: t.TempDir()},
		{Names: []string{"*.contoso.com"}, CacheDir: t.TempDir(), Fallback: fb},
		{Names: []string{"mail.contoso.com"}, CacheDir: "/proc/nope/acme", Fallback: fb},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
