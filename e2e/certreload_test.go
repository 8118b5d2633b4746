package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeServingCert writes a self-signed ECDSA certificate for cn (and localhost)
// and its key, replacing the files atomically as certbot does.
func writeServingCert(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: []string{cn, "localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kb}} {
		tmp := file + ".new"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
}

// servedName is the CN of the certificate the implicit-TLS listener shows.
func servedName(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestCertificateReload: SIGHUP makes new connections get the renewed
// certificate, a connection opened before goes on with its own, and a
// broken pair leaves the current certificate in service.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeServingCert(t, certFile, keyFile, "first.contoso.com")
	in := newInstance(t, "--tls-cert", certFile, "--tls-key", keyFile)
	in.start()
	if got := servedName(t, in.addrs["submissions"]); got != "first.contoso.com" {
		t.Fatalf("served %q", got)
	}
	before := dialTLS(t, in.addrs["submissions"], &tls.Config{InsecureSkipVerify: true})
	before.expect("EHLO x", "250")

	writeServingCert(t, certFile, keyFile, "second.contoso.com")
	in.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(30 * time.Second)
	for servedName(t, in.addrs["submissions"]) != "second.contoso.com" {
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate was not served after SIGHUP:\n%s", in.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	before.expect("NOOP", "250") // the connection from before is untouched

	// A broken pair (the key of another certificate) is refused; the
	// current certificate stays.
	other := filepath.Join(dir, "other")
	writeServingCert(t, other+".crt", other+".key", "third.contoso.com")
	b, _ := os.ReadFile(other + ".crt")
	os.WriteFile(certFile, b, 0o600)
	in.cmd.Process.Signal(syscall.SIGHUP)
	for !strings.Contains(in.log.String(), "TLS certificate not reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal of a broken pair:\n%s", in.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := servedName(t, in.addrs["submissions"]); got != "second.contoso.com" {
		t.Fatalf("after a broken pair, served %q", got)
	}
}
