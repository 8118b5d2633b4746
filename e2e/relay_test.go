package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNeverAnOpenRelay throws the classic relay tricks at the 25 role from
// an address that matches no connector: every one is refused and nothing is
// queued for an outside domain.
func TestNeverAnOpenRelay(t *testing.T) {
	in := newInstance(t)
	in.mailbox("sean", "Sean-Pass-1")
	in.start()

	type step struct{ cmd, want string }
	scripts := map[string][]step{
		"outside recipient": {{"MAIL FROM:<printer@contoso.com>", "250"}, {"RCPT TO:<victim@outside.example>", "550 5.7.64"}},
		"percent hack":      {{"MAIL FROM:<printer@contoso.com>", "250"}, {"RCPT TO:<victim%outside.example@contoso.com>", "501 5.1.3"}},
		"source route":      {{"MAIL FROM:<printer@contoso.com>", "250"}, {"RCPT TO:<@contoso.com:victim@outside.example>", "550 5.7.64"}},
		"source route list": {{"MAIL FROM:<printer@contoso.com>", "250"}, {"RCPT TO:<@contoso.com,@mx.contoso.com:victim@outside.example>", "550 5.7.64"}},
		"quoted local part": {{"MAIL FROM:<printer@contoso.com>", "250"}, {`RCPT TO:<"victim@outside.example"@contoso.com>`, "501 5.1.3"}},
		"bang path":         {{"MAIL FROM:<printer@contoso.com>", "250"}, {"RCPT TO:<outside.example!victim@contoso.com>", "501 5.1.3"}},
		"trailing dot":      {{"MAIL FROM:<printer@contoso.com>", "250"}, {"RCPT TO:<victim@outside.example.>", "550 5.7.64"}},
		"mixed case":        {{"MAIL FROM:<printer@contoso.com>", "250"}, {"RCPT TO:<Victim@OutSide.Example>", "550 5.7.64"}},
		"IP literal":        {{"MAIL FROM:<printer@contoso.com>", "250"}, {"RCPT TO:<victim@[192.0.2.1]>", "501 5.1.3"}},
		"null sender":       {{"MAIL FROM:<>", "250"}, {"RCPT TO:<victim@outside.example>", "550 5.7.64"}},
		"outside sender":    {{"MAIL FROM:<spammer@outside.example>", "250"}, {"RCPT TO:<victim@outside.example>", "550 5.7.64"}},
		"accepted-looking domain": {{"MAIL FROM:<printer@contoso.com>", "250"},
			{"RCPT TO:<victim@contoso.com.outside.example>", "550 5.7.64"}},
		"outside after a good one": {{"MAIL FROM:<printer@contoso.com>", "250"}, {"RCPT TO:<sean@contoso.com>", "250"},
			{"RCPT TO:<victim@outside.example>", "550 5.7.64"}},
		"RSET between": {{"MAIL FROM:<printer@contoso.com>", "250"}, {"RCPT TO:<sean@contoso.com>", "250"}, {"RSET", "250"},
			{"MAIL FROM:<printer@contoso.com>", "250"}, {"RCPT TO:<victim@outside.example>", "550 5.7.64"}},
		"failed AUTH keeps no rights": {{"STARTTLS", ""}, {"AUTH PLAIN AHNlYW5AY29udG9zby5jb20Ad3Jvbmc=", "535"},
			{"MAIL FROM:<sean@contoso.com>", "250"}, {"RCPT TO:<victim@outside.example>", "550 5.7.64"}},
	}
	for name, steps := range scripts {
		t.Run(name, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.3", in.addrs["mx"])
			c.expect("EHLO relay-tester", "250")
			for _, s := range steps {
				if s.cmd == "STARTTLS" {
					c.startTLS(in.tlsConfig())
					c.expect("EHLO relay-tester", "250")
					continue
				}
				c.expect(s.cmd, s.want)
			}
			// Whatever was accepted, DATA delivers nothing outside.
			if got := c.do("DATA"); strings.HasPrefix(got, "354") {
				c.conn.Write([]byte(message("printer@contoso.com", "victim@outside.example", name) + ".\r\n"))
				c.read()
			}
		})
	}
	t.Run("pipelined", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.3", in.addrs["mx"])
		c.expect("EHLO relay-tester", "250")
		c.conn.Write([]byte("MAIL FROM:<printer@contoso.com>\r\nRCPT TO:<sean@contoso.com>\r\nRCPT TO:<victim@outside.example>\r\nRCPT TO:<victim2%outside.example@contoso.com>\r\nDATA\r\n"))
		for _, want := range []string{"250", "250", "550 5.7.64", "501 5.1.3", "354"} {
			if got := c.read(); !strings.HasPrefix(got, want) {
				t.Fatalf("pipelined reply %q, want %s", got, want)
			}
		}
		c.conn.Write([]byte(message("printer@contoso.com", "sean@contoso.com", "pipelined") + ".\r\n"))
		if got := c.read(); !strings.HasPrefix(got, "250") {
			t.Fatal(got)
		}
	})
	if out := in.shell("Get-QueueMessage | Format-Table Recipient"); strings.Contains(out, "outside") || strings.Contains(out, "192.0.2.1") {
		t.Fatalf("something was queued for an outside domain:\n%s", out)
	}
}

// TestInboundConnectorByIP: an OnPremises connector matched by address lets
// a device relay for the organization's senders, and only those.
func TestInboundConnectorByIP(t *testing.T) {
	in := newInstance(t)
	in.mailbox("sean", "Sean-Pass-1")
	in.admin("New-InboundConnector", "-Name", "Office printers", "-ConnectorType", "OnPremises",
		"-SenderDomains", "*.contoso.com", "-SenderIPAddresses", "127.0.0.2", "-RequireTls", "$false")
	in.start()

	c := dialFrom(t, "127.0.0.2", in.addrs["mx"])
	c.expect("EHLO printer", "250")
	if got := c.send("printer@contoso.com", []string{"bob@fabrikam.example", "sean@contoso.com"}, message("printer@contoso.com", "bob@fabrikam.example", "relayed")); !strings.HasPrefix(got, "250") {
		t.Fatalf("relay through the connector: %q", got)
	}
	c.expect("MAIL FROM:<printer@outside.example>", "250")
	c.expect("RCPT TO:<bob@fabrikam.example>", "550 5.7.64 Relay Access Denied ATTR36. For more details please refer to KB 3169958.")
	c.expect("RSET", "250")

	other := dialFrom(t, "127.0.0.3", in.addrs["mx"])
	other.expect("EHLO elsewhere", "250")
	other.expect("MAIL FROM:<printer@contoso.com>", "250")
	other.expect("RCPT TO:<bob@fabrikam.example>", "550 5.7.64 TenantAttribution; Relay Access Denied")

	// RequireTls refuses the device until it uses STARTTLS.
	in.admin("Set-InboundConnector", "-Identity", "Office printers", "-RequireTls", "$true")
	c = dialFrom(t, "127.0.0.2", in.addrs["mx"])
	c.expect("EHLO printer", "250")
	c.expect("MAIL FROM:<printer@contoso.com>", "530 5.7.0 Must issue a STARTTLS command first")
	c.startTLS(in.tlsConfig())
	c.expect("EHLO printer", "250")
	if got := c.send("printer@contoso.com", []string{"carol@fabrikam.example"}, message("printer@contoso.com", "carol@fabrikam.example", "over TLS")); !strings.HasPrefix(got, "250") {
		t.Fatalf("relay over TLS: %q", got)
	}
	// A disabled connector matches nothing.
	in.admin("Set-InboundConnector", "-Identity", "Office printers", "-Enabled", "$false")
	c = dialFrom(t, "127.0.0.2", in.addrs["mx"])
	c.expect("EHLO printer", "250")
	c.expect("MAIL FROM:<printer@contoso.com>", "250")
	c.expect("RCPT TO:<dave@fabrikam.example>", "550 5.7.64 TenantAttribution")

	out := in.shell("Get-QueueMessage | Format-Table Recipient")
	for _, want := range []string{"bob@fabrikam.example", "carol@fabrikam.example"} {
		if !strings.Contains(out, want) {
			t.Errorf("queue lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "dave@") {
		t.Errorf("the disabled connector relayed:\n%s", out)
	}
	if n := in.folderCount("sean@contoso.com", "Inbox"); n != 1 {
		t.Errorf("sean's Inbox: %d", n)
	}
	if got := in.messageHeader(t, "bob@fabrikam.example", "X-Postern-Inbound-Connector"); got != "Office printers" {
		t.Errorf("connector header = %q", got)
	}
}

// TestRejectDirectSend: with -RejectDirectSend $true, anonymous mail from
// the organization's own domains needs a connector.
func TestRejectDirectSend(t *testing.T) {
	in := newInstance(t)
	in.mailbox("sean", "Sean-Pass-1")
	in.admin("New-InboundConnector", "-Name", "Scanners", "-ConnectorType", "OnPremises", "-SenderIPAddresses", "127.0.0.2", "-RequireTls", "$false")
	in.start()

	send := func(from, src string) string {
		c := dialFrom(t, src, in.addrs["mx"])
		c.expect("EHLO x", "250")
		return c.send(from, []string{"sean@contoso.com"}, message(from, "sean@contoso.com", "direct send"))
	}
	if got := send("scanner@contoso.com", "127.0.0.3"); !strings.HasPrefix(got, "250") {
		t.Fatalf("Direct Send while allowed: %q", got)
	}
	in.admin("Set-OrganizationConfig", "-RejectDirectSend", "$true")
	if out := in.shell("Get-OrganizationConfig | Format-List RejectDirectSend"); !strings.Contains(out, "RejectDirectSend : True") {
		t.Errorf("Get-OrganizationConfig:\n%s", out)
	}
	if got := send("scanner@contoso.com", "127.0.0.3"); got != "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization from unauthorized sources" {
		t.Fatalf("Direct Send after RejectDirectSend: %q", got)
	}
	if got := send("scanner@contoso.com", "127.0.0.2"); !strings.HasPrefix(got, "250") {
		t.Fatalf("through the connector: %q", got)
	}
	if got := send("partner@fabrikam.example", "127.0.0.3"); !strings.HasPrefix(got, "250") {
		t.Fatalf("ordinary inbound mail from another domain: %q", got)
	}
}

// TestPartnerRestrictDomainsToIPAddresses: a Partner connector reserves its
// sender domains to its addresses.
func TestPartnerRestrictDomainsToIPAddresses(t *testing.T) {
	in := newInstance(t)
	in.mailbox("sean", "Sean-Pass-1")
	in.admin("New-InboundConnector", "-Name", "Fabrikam", "-ConnectorType", "Partner", "-SenderDomains", "fabrikam.com",
		"-SenderIPAddresses", "127.0.0.4/32", "-RestrictDomainsToIPAddresses", "$true", "-RequireTls", "$false")
	in.start()
	c := dialFrom(t, "127.0.0.3", in.addrs["mx"])
	c.expect("EHLO x", "250")
	// The restriction is the organization's own: it is decided per
	// recipient, at RCPT TO, for the recipients of the connector's
	// organization (issue 11: MAIL FROM comes before any recipient names it).
	c.expect("MAIL FROM:<ceo@fabrikam.com>", "250")
	c.expect("RCPT TO:<sean@contoso.com>", "550 5.7.51 TenantInboundAttribution")
	c.expect("RSET", "250")
	c = dialFrom(t, "127.0.0.4", in.addrs["mx"])
	c.expect("EHLO x", "250")
	if got := c.send("ceo@fabrikam.com", []string{"sean@contoso.com"}, message("ceo@fabrikam.com", "sean@contoso.com", "from the partner")); !strings.HasPrefix(got, "250") {
		t.Fatal(got)
	}
	// A Partner connector grants no relay.
	c.expect("MAIL FROM:<ceo@fabrikam.com>", "250")
	c.expect("RCPT TO:<x@outside.example>", "550 5.7.64 TenantAttribution")
}

// TestCertificateConnector: an OnPremises connector matched by the client
// certificate's name, trusted through tls_client_ca or pinned.
func TestCertificateConnector(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	trusted := clientCert(t, "relay1.contoso.com", ca, caKey)
	selfSigned := clientCert(t, "copier.contoso.com", nil, nil)
	wrongName := clientCert(t, "relay.fabrikam.com", ca, caKey)

	in := newInstance(t, "--tls-client-ca", filepath.Join(dir, "ca.pem"))
	in.mailbox("sean", "Sean-Pass-1")
	in.admin("New-InboundConnector", "-Name", "Relay servers", "-ConnectorType", "OnPremises", "-TlsSenderCertificateName", "*.contoso.com")
	in.start()

	relay := func(cert *tls.Certificate, rcpt string) string {
		c := dialFrom(t, "127.0.0.5", in.addrs["mx"])
		c.expect("EHLO relay", "250")
		cfg := in.tlsConfig()
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		c.startTLS(cfg)
		c.expect("EHLO relay", "250")
		c.expect("MAIL FROM:<app@contoso.com>", "250")
		return c.do("RCPT TO:<" + rcpt + ">")
	}
	if got := relay(trusted, "a@fabrikam.example"); !strings.HasPrefix(got, "250") {
		t.Errorf("CA-signed certificate: %q", got)
	}
	if got := relay(nil, "b@fabrikam.example"); !strings.HasPrefix(got, "550 5.7.64") {
		t.Errorf("no certificate: %q", got)
	}
	if got := relay(wrongName, "c@fabrikam.example"); !strings.HasPrefix(got, "550 5.7.64") {
		t.Errorf("certificate of another domain: %q", got)
	}
	if got := relay(selfSigned, "d@fabrikam.example"); !strings.HasPrefix(got, "550 5.7.64") {
		t.Errorf("unpinned self-signed certificate: %q", got)
	}
	leaf, _ := x509.ParseCertificate(selfSigned.Certificate[0])
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	in.admin("Set-InboundConnector", "-Identity", "Relay servers", "-TlsSenderCertificateFingerprints", hex.EncodeToString(sum[:]))
	if got := relay(selfSigned, "e@fabrikam.example"); !strings.HasPrefix(got, "250") {
		t.Errorf("pinned self-signed certificate: %q", got)
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Contoso device CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key
}

// clientCert makes a client certificate for name, signed by ca, or
// self-signed when ca is nil.
func clientCert(t *testing.T, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) *tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDeviceQuirks: what old devices do that is safe is accepted on the 25
// role — HELO without a dot, no TLS, addresses without angle brackets.
func TestDeviceQuirks(t *testing.T) {
	in := newInstance(t)
	in.mailbox("sean", "Sean-Pass-1")
	in.start()
	c := dialFrom(t, "127.0.0.3", in.addrs["mx"])
	c.expect("HELO COPIER01", "250")
	c.expect("MAIL FROM:scanner@contoso.com", "250")
	c.expect("RCPT TO:sean@contoso.com", "250")
	c.expect("DATA", "354")
	c.conn.Write([]byte("From: Scanner <scanner@contoso.com>\r\nSubject: Scan\r\n\r\nscan attached\r\n.\r\n"))
	if got := c.read(); !strings.HasPrefix(got, "250 2.0.0 OK") {
		t.Fatalf("quirky device: %q", got)
	}
	if n := in.folderCount("sean@contoso.com", "Inbox"); n != 1 {
		t.Errorf("sean's Inbox: %d", n)
	}
}
