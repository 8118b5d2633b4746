package server

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A certificate replaced on disk is noticed and served by new handshakes;
// a broken replacement leaves the one in service.
func TestCertificateChangeOnDisk(t *testing.T) {
	dir := t.TempDir()
	c, err := loadCertificate("", "", dir, "first.contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	first := c.cur.Load()
	if c.changed() {
		t.Fatal("changed right after loading")
	}
	// Another generated pair, moved over the files with a later mtime.
	other := t.TempDir()
	if err := generateCert(filepath.Join(other, "cert.pem"), filepath.Join(other, "key.pem"), "second.contoso.com"); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	for _, f := range []string{"cert.pem", "key.pem"} {
		if err := os.Rename(filepath.Join(other, f), filepath.Join(dir, "tls", f)); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(filepath.Join(dir, "tls", f), later, later)
	}
	if !c.changed() {
		t.Fatal("a replaced pair was not noticed")
	}
	leaf, err := c.reload()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := c.config().GetCertificate(nil)
	if got == first || got.Leaf != leaf || leaf.DNSNames[0] != "second.contoso.com" {
		t.Fatalf("serving %v after the reload", got.Leaf.DNSNames)
	}
	os.WriteFile(filepath.Join(dir, "tls", "key.pem"), []byte("not a key"), 0o600)
	if _, err := c.reload(); err == nil {
		t.Fatal("a broken key loaded")
	}
	if now, _ := c.config().GetCertificate(nil); now != got {
		t.Fatal("a broken pair replaced the certificate in service")
	}
}
