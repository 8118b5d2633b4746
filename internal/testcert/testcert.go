// Package testcert makes throwaway certificates for tests that speak TLS
// over loopback: a fresh self-signed ECDSA P-256 certificate, as the
// server's tls.Config, as a pool and a client configuration that trust it,
// and as PEM (the CA file that python, curl and swaks are given).
//
// The certificate is its own CA (basic constraints, certSign), because
// OpenSSL-based clients accept a trust anchor only when it is one; Go
// clients accept it either way.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Cert is a self-signed certificate and its key.
type Cert struct {
	// Certificate is the certificate as a server presents it, with its
	// Leaf parsed.
	Certificate tls.Certificate
	// CertPEM is the certificate and KeyPEM its key ("EC PRIVATE KEY"),
	// PEM-encoded.
	CertPEM, KeyPEM []byte
	// Pool trusts the certificate.
	Pool *x509.CertPool
	// CAFile is CertPEM in a file of the test's temporary directory (set
	// by New only).
	CAFile string
}

// New makes a certificate for 127.0.0.1 and names ("localhost" when there
// are none; the first is also its common name), valid from an hour ago
// for a day, and writes its CAFile. It fails the test on any error.
func New(t testing.TB, names ...string) *Cert {
	t.Helper()
	c, err := Make(names...)
	if err != nil {
		t.Fatal(err)
	}
	c.CAFile = filepath.Join(t.TempDir(), "testcert-ca.pem")
	if err := os.WriteFile(c.CAFile, c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// Make is New for code that has no testing.TB: it writes no file.
func Make(names ...string) (*Cert, error) {
	if len(names) == 0 {
		names = []string{"localhost"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testcert: generating a key: %w", err)
	}
	// A random serial: certificates made one after the other must differ
	// (a renewal is told from a repeat by its serial).
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("testcert: drawing a serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("testcert: signing the certificate for %v: %w", names, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testcert: parsing the certificate for %v: %w", names, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testcert: encoding the key: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &Cert{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		CertPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		Pool:        pool,
	}, nil
}

// ServerConfig is a server's TLS configuration presenting the certificate.
func (c *Cert) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.Certificate}}
}

// ClientConfig is a client's TLS configuration that trusts the
// certificate and verifies it for 127.0.0.1.
func (c *Cert) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: c.Pool, ServerName: "127.0.0.1"}
}
