// Package dkimkey makes and uses the DKIM keys of New-DkimSigningConfig:
// key generation, the public-key TXT record to publish (RFC 6376 §3.6.1),
// and signing outgoing mail (RFC 6376 §5) with go-msgauth's signer.
//
// Signatures are relaxed/relaxed, as Exchange Online's are, because the
// relaxed canonicalizations survive the header refolding and whitespace
// changes that relays commonly make.
package dkimkey

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/emersion/go-msgauth/dkim"
)

// Algorithms New-DkimSigningConfig accepts (an extension: Exchange has RSA
// only).
const (
	RSA     = "RSA"
	Ed25519 = "Ed25519"
)

// Generate makes a key: RSA of bits (1024, 2048 or 4096) or Ed25519 (RFC
// 8463). It returns the private key as PKCS#8 PEM and the TXT record.
func Generate(algorithm string, bits int) (privatePEM, record string, err error) {
	var key crypto.Signer
	switch algorithm {
	case RSA:
		if bits != 1024 && bits != 2048 && bits != 4096 {
			return "", "", fmt.Errorf("RSA key size must be 1024, 2048 or 4096, not %d", bits)
		}
		key, err = rsa.GenerateKey(rand.Reader, bits)
	case Ed25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return "", "", fmt.Errorf("algorithm must be RSA or Ed25519, not %q", algorithm)
	}
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	record, err = Record(key.Public())
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), record, nil
}

// Record is the TXT record for a public key: "v=DKIM1; k=rsa; p=..." with
// the SubjectPublicKeyInfo for RSA (RFC 6376 §3.6.1), or "k=ed25519" with
// the raw 32-byte key (RFC 8463 §4.2).
func Record(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k), nil
	}
	return "", fmt.Errorf("unsupported public key %T", pub)
}

// Parse reads a PKCS#8 PEM private key made by Generate.
func Parse(privatePEM string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(privatePEM))
	if block == nil {
		return nil, errors.New("DKIM key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("DKIM key type %T cannot sign", key)
	}
	return s, nil
}

// signedHeaders are the fields RFC 6376 §5.4.1 recommends signing. A field
// listed but absent is signed as absent, so it cannot be added later
// without breaking the signature.
var signedHeaders = []string{"From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date", "Resent-From",
	"Resent-To", "Resent-Cc", "In-Reply-To", "References", "Message-ID", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "Sender"}

// NewSigner returns a streaming signer with Postern's signing options
// (relaxed/relaxed canonicalization, the recommended header fields): write
// the message to it, Close it, and its Signature is the DKIM-Signature
// field (with its final CRLF) to put in front. Memory does not grow with
// the message.
func NewSigner(domain, selector string, key crypto.Signer) (*dkim.Signer, error) {
	return dkim.NewSigner(&dkim.SignOptions{
		Domain:                 domain,
		Selector:               selector,
		Signer:                 key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             signedHeaders,
	})
}

// Sign returns the DKIM-Signature header field (with its final CRLF) for
// msg, to be prepended to it.
func Sign(msg []byte, domain, selector string, key crypto.Signer) (string, error) {
	s, err := NewSigner(domain, selector, key)
	if err != nil {
		return "", err
	}
	if _, err := s.Write(msg); err != nil {
		s.Close()
		return "", err
	}
	if err := s.Close(); err != nil {
		return "", err
	}
	return s.Signature(), nil
}

// SignMessage returns msg with its signature prepended.
func SignMessage(msg []byte, domain, selector string, key crypto.Signer) ([]byte, error) {
	sig, err := Sign(msg, domain, selector, key)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(sig) + len(msg))
	b.WriteString(sig)
	b.Write(msg)
	return b.Bytes(), nil
}
