package dkimkey

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

func TestGenerateSignVerify(t *testing.T) {
	msg := []byte("From: Sean <sean@contoso.com>\r\nTo: x@fabrikam.com\r\nSubject: scan\r\n" +
		"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <a@b>\r\n\r\nbody  line \r\n\r\n")
	for _, tt := range []struct {
		alg  string
		bits int
		k    string
	}{{RSA, 1024, "k=rsa"}, {Ed25519, 0, "k=ed25519"}} {
		priv, record, err := Generate(tt.alg, tt.bits)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(record, "v=DKIM1; "+tt.k+"; p=") {
			t.Errorf("%s record %q", tt.alg, record)
		}
		key, err := Parse(priv)
		if err != nil {
			t.Fatal(err)
		}
		signed, err := SignMessage(msg, "contoso.com", "selector1", key)
		if err != nil {
			t.Fatal(err)
		}
		// A relay that refolds whitespace in the body must not break a
		// relaxed signature.
		signed = bytes.Replace(signed, []byte("body  line \r\n"), []byte("body line\r\n"), 1)
		verifs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{
			LookupTXT: func(name string) ([]string, error) {
				if name != "selector1._domainkey.contoso.com" {
					t.Errorf("looked up %s", name)
				}
				return []string{record}, nil
			}})
		if err != nil || len(verifs) != 1 || verifs[0].Err != nil || verifs[0].Domain != "contoso.com" {
			t.Fatalf("%s: verify %v %+v", tt.alg, err, verifs)
		}
		// Tampering with a signed header breaks it.
		bad := bytes.Replace(signed, []byte("Subject: scan"), []byte("Subject: scam"), 1)
		verifs, _ = dkim.VerifyWithOptions(bytes.NewReader(bad), &dkim.VerifyOptions{
			LookupTXT: func(string) ([]string, error) { return []string{record}, nil }})
		if len(verifs) != 1 || verifs[0].Err == nil {
			t.Errorf("%s: tampered message verified", tt.alg)
		}
	}
}

func TestGenerateRejects(t *testing.T) {
	for _, c := range []struct {
		alg  string
		bits int
	}{{RSA, 512}, {"DSA", 1024}} {
		if _, _, err := Generate(c.alg, c.bits); err == nil {
			t.Errorf("Generate(%s, %d) accepted", c.alg, c.bits)
		}
	}
	if _, err := Parse("not pem"); err == nil {
		t.Error("Parse accepted garbage")
	}
}
