package testcert

import (
	"bytes"
	"crypto/tls"
	"net"
	"os"
	"testing"
	"time"
)

// TestHandshake: a client with ClientConfig completes a verified handshake
// with a server with ServerConfig over loopback; the PEM pair and the CA
// file carry the same certificate.
func TestHandshake(t *testing.T) {
	c := New(t, "mx.test")
	if got := c.Certificate.Leaf.DNSNames; len(got) != 1 || got[0] != "mx.test" || c.Certificate.Leaf.Subject.CommonName != "mx.test" {
		t.Errorf("names %v, common name %q", got, c.Certificate.Leaf.Subject.CommonName)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", c.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		sc, err := l.Accept()
		if err != nil {
			return
		}
		defer sc.Close()
		sc.SetDeadline(time.Now().Add(20 * time.Second))
		sc.(*tls.Conn).Handshake()
		sc.Write([]byte("x"))
	}()
	d := &net.Dialer{Timeout: 20 * time.Second}
	cc, err := tls.DialWithDialer(d, "tcp", l.Addr().String(), c.ClientConfig())
	if err != nil {
		t.Fatalf("verified handshake for 127.0.0.1: %v", err)
	}
	cc.Close()

	pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil || !bytes.Equal(pair.Certificate[0], c.Certificate.Certificate[0]) {
		t.Errorf("the PEM pair is not the certificate: %v", err)
	}
	if b, err := os.ReadFile(c.CAFile); err != nil || !bytes.Equal(b, c.CertPEM) {
		t.Errorf("CA file: %v", err)
	}
	if other := New(t); other.Certificate.Leaf.SerialNumber.Cmp(c.Certificate.Leaf.SerialNumber) == 0 {
		t.Error("two certificates with one serial")
	} else if other.Certificate.Leaf.DNSNames[0] != "localhost" {
		t.Errorf("without names: %v", other.Certificate.Leaf.DNSNames)
	}
}
