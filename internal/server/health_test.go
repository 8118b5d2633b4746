package server

import (
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"
)

// TestCertNotAfter: the expiry comes from the serving certificate, whether
// it is fixed in Certificates or chosen per handshake by GetCertificate.
func TestCertNotAfter(t *testing.T) {
	dir := t.TempDir()
	cfg, err := tlsConfig("", "", dir, "mail.contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	got := certNotAfter(cfg, "mail.contoso.com")
	if got.Before(time.Now().Add(24 * time.Hour)) {
		t.Fatalf("generated certificate expires %v", got)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pair.Leaf = nil // parsed from the DER then
	dynamic := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil }}
	if d := certNotAfter(dynamic, "mail.contoso.com"); !d.Equal(got) {
		t.Errorf("GetCertificate: %v, want %v", d, got)
	}
	if d := certNotAfter(&tls.Config{}, "x"); !d.IsZero() {
		t.Errorf("no certificate: %v", d)
	}
}
