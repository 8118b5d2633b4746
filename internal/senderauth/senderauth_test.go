package senderauth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"postern.dev/postern/internal/testdns"
)

// sign DKIM-signs msg for domain with selector "sel".
func sign(t *testing.T, key ed25519.PrivateKey, domain, msg string) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: "sel", Signer: key}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestCheck(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	dkimRecord := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	dns, err := testdns.Start(map[string]string{
		"contoso.com":                "v=spf1 ip4:192.0.2.1 -all",
		"_dmarc.contoso.com":         "v=DMARC1; p=reject; sp=quarantine",
		"sel._domainkey.contoso.com": dkimRecord,
		"strict.example":             "v=spf1 ip4:192.0.2.1 -all",
		"_dmarc.strict.example":      "v=DMARC1; p=reject; aspf=s",
		"mail.strict.example":        "v=spf1 ip4:192.0.2.1 -all",
		"nodmarc.example":            "v=spf1 ip4:192.0.2.1 -all",
		"soft.example":               "v=spf1 ~all",
		"monitor.example":            "v=spf1 -all",
		"_dmarc.monitor.example":     "v=DMARC1; p=none",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	c := &Checker{Resolver: dns.Resolver(), Hostname: "mx.contoso.com"}
	good, bad := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("203.0.113.9")
	plain := func(from string) []byte { return []byte("From: " + from + "\r\nSubject: x\r\n\r\nhello\r\n") }
	signed := sign(t, key, "contoso.com", "From: a@contoso.com\r\nSubject: x\r\n\r\nhello\r\n")
	tampered := bytes.Replace(signed, []byte("hello"), []byte("HELLO"), 1)

	tests := []struct {
		name             string
		ip               netip.Addr
		mailFrom         string
		msg              []byte
		spf, dkim, dmarc string
		junk             bool
	}{
		{"SPF pass, aligned", good, "a@contoso.com", plain("a@contoso.com"), "pass", "", "pass", false},
		{"SPF fail, p=reject", bad, "a@contoso.com", plain("a@contoso.com"), "fail", "", "fail", true},
		{"DKIM rescues a forwarded message", bad, "a@contoso.com", signed, "fail", "pass", "pass", false},
		{"tampered DKIM", bad, "a@contoso.com", tampered, "fail", "fail", "fail", true},
		{"subdomain inherits sp=quarantine", bad, "a@sub.contoso.com", plain("a@sub.contoso.com"), "none", "", "fail", true},
		{"relaxed alignment: envelope subdomain", good, "b@contoso.com", plain("a@contoso.com"), "pass", "", "pass", false},
		{"strict SPF alignment", good, "b@mail.strict.example", plain("a@strict.example"), "pass", "", "fail", true},
		{"no DMARC, SPF hard fail", bad, "a@nodmarc.example", plain("a@nodmarc.example"), "fail", "", "none", true},
		{"no DMARC, SPF softfail", bad, "a@soft.example", plain("a@soft.example"), "softfail", "", "none", false},
		{"p=none only reports", bad, "a@monitor.example", plain("a@monitor.example"), "fail", "", "fail", false},
		{"no records at all", bad, "a@nothing.example", plain("a@nothing.example"), "none", "", "none", false},
		{"From differs from envelope", bad, "x@nothing.example", plain("ceo@contoso.com"), "none", "", "fail", true},
		{"no From", bad, "x@nothing.example", []byte("Subject: x\r\n\r\nhi\r\n"), "none", "", "permerror", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{ClientIP: tt.ip, Helo: "client.example", MailFrom: tt.mailFrom, Message: bytes.NewReader(tt.msg), Size: int64(len(tt.msg))}
			r := c.Check(context.Background(), in)
			// The header the SMTP path has already parsed gives the same
			// verdict as reading it from the message.
			h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(tt.msg))).ReadMIMEHeader()
			if err != nil {
				t.Fatal(err)
			}
			in.Header = h
			if r2 := c.Check(context.Background(), in); !reflect.DeepEqual(r, r2) {
				t.Fatalf("with the parsed header: %+v, without: %+v", r2, r)
			}
			dkimGot := strings.Join(r.DKIM, ",")
			if r.SPF != tt.spf || dkimGot != tt.dkim || r.DMARC != tt.dmarc || r.Junk != tt.junk {
				t.Fatalf("spf=%s dkim=%s dmarc=%s junk=%v, want spf=%s dkim=%s dmarc=%s junk=%v\n%s",
					r.SPF, dkimGot, r.DMARC, r.Junk, tt.spf, tt.dkim, tt.dmarc, tt.junk, r.Header)
			}
			if !strings.HasPrefix(r.Header, "Authentication-Results: mx.contoso.com;") || !strings.HasSuffix(r.Header, "\r\n") ||
				!strings.Contains(r.Header, "spf="+tt.spf) || !strings.Contains(r.Header, "dmarc="+tt.dmarc) {
				t.Errorf("header %q", r.Header)
			}
		})
	}
}

// TestDNSDown: an unreachable DNS server gives temperror, never Junk.
func TestDNSDown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close() // nothing listens there any more
	c := &Checker{Resolver: testdns.ResolverAt(addr), Hostname: "mx", Timeout: 3 * time.Second}
	start := time.Now()
	r := c.Check(context.Background(), Input{ClientIP: netip.MustParseAddr("192.0.2.1"), Helo: "h", MailFrom: "a@contoso.com",
		Message: strings.NewReader("From: a@contoso.com\r\n\r\nx\r\n"), Size: int64(len("From: a@contoso.com\r\n\r\nx\r\n"))})
	if r.Junk || r.SPF != "temperror" || r.DMARC != "temperror" {
		t.Fatalf("spf=%s dmarc=%s junk=%v", r.SPF, r.DMARC, r.Junk)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %v despite the 3 s timeout", time.Since(start))
	}
}

func FuzzCheck(f *testing.F) {
	dns, err := testdns.Start(map[string]string{"contoso.com": "v=spf1 -all", "_dmarc.contoso.com": "v=DMARC1; p=reject"})
	if err != nil {
		f.Fatal(err)
	}
	defer dns.Close()
	c := &Checker{Resolver: dns.Resolver(), Hostname: "mx", Timeout: time.Second}
	f.Add([]byte("From: a@contoso.com\r\nDKIM-Signature: v=1; a=ed25519-sha256; d=contoso.com; s=sel; h=from; bh=; b=\r\n\r\nx\r\n"), "a@contoso.com")
	f.Add([]byte("From: =?utf-8?q?x?= <a@b>, c@d\r\n\r\n"), "")
	f.Fuzz(func(t *testing.T, msg []byte, mailFrom string) {
		r := c.Check(context.Background(), Input{ClientIP: netip.MustParseAddr("192.0.2.1"), Helo: "h", MailFrom: mailFrom, Message: bytes.NewReader(msg), Size: int64(len(msg))})
		if strings.ContainsAny(strings.TrimSuffix(r.Header, "\r\n"), "\r\n\x00") {
			t.Fatalf("header can be broken by input: %q", r.Header)
		}
	})
}

// TestMayBeSigned: the body of a message whose header has no
// DKIM-Signature is not read for DKIM; anything that may be a signature
// goes to the verifier.
func TestMayBeSigned(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want bool
	}{
		{"From: a@contoso.com\r\nSubject: x\r\n\r\nDKIM-Signature: in the body\r\n", false},
		{"From: a@contoso.com\r\nDKIM-Signature: v=1\r\n\r\nbody\r\n", true},
		{"dkim-signature:v=1\r\n\r\n", true},
		{"From: a@contoso.com\r\nX: " + strings.Repeat("y", 10000) + "\r\nDkim-Signature: v=1\r\n\r\n", true},
		{"From: a@contoso.com\r\nX: " + strings.Repeat("y", 10000) + "\r\n\r\n", false},
		{"From: a@contoso.com\r\nSubject: no end of header", true},
		{"From: a@contoso.com\n\nbare LF\n", false},
		{" DKIM-Signature: v=1\r\n\r\n", true},
		{strings.Repeat(" ", 5000) + "DKIM-Signature: v=1\r\n\r\n", true},
	} {
		if got := mayBeSigned(strings.NewReader(tc.msg)); got != tc.want {
			t.Errorf("mayBeSigned(%.60q) = %v, want %v", tc.msg, got, tc.want)
		}
	}
	head := "From: a@fabrikam.example\r\nSubject: x\r\n\r\n"
	msg := &readsAt{b: []byte(head + strings.Repeat("0123456789\r\n", 100000))}
	c := &Checker{}
	var r Result
	if pass := c.checkDKIM(context.Background(), Input{Message: msg, Size: int64(len(msg.b))}, &r); pass != nil || r.DKIM != nil {
		t.Errorf("unsigned message: pass %v, DKIM %v", pass, r.DKIM)
	}
	if msg.max > 64<<10 {
		t.Errorf("DKIM read %d bytes of an unsigned message with a %d-byte header", msg.max, len(head))
	}
}

// readsAt is a message that records how far it was read.
type readsAt struct {
	b   []byte
	max int64
}

func (r *readsAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := bytes.NewReader(r.b).ReadAt(p, off)
	r.max = max(r.max, off+int64(n))
	return n, err
}

// FuzzMayBeSigned: whenever mayBeSigned says a message cannot be signed,
// the verifier finds no signature in it either.
func FuzzMayBeSigned(f *testing.F) {
	for _, s := range []string{
		"From: a@contoso.com\r\n\r\nbody\r\n",
		"DKIM-Signature: v=1; d=contoso.com\r\n\r\n",
		"X: a\r\n DKIM-Signature: folded\r\n\r\n",
		"X: a\n\r\nDKIM-Signature: after a bare LF\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		if mayBeSigned(strings.NewReader(msg)) {
			return
		}
		v, err := dkim.VerifyWithOptions(strings.NewReader(msg), &dkim.VerifyOptions{
			LookupTXT: func(string) ([]string, error) { return nil, &net.DNSError{Err: "no lookups here", IsNotFound: true} },
		})
		if len(v) > 0 || errors.Is(err, dkim.ErrTooManySignatures) {
			t.Fatalf("%q: skipped, but the verifier finds %d signatures (%v)", msg, len(v), err)
		}
	})
}
