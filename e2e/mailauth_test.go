package e2e

import (
	"strings"
	"testing"

	"postern.dev/postern/internal/testdns"
)

// startDNS serves TXT records on loopback (NXDOMAIN for the rest), so that
// Postern's lookups never leave the machine.
func startDNS(t *testing.T, txt map[string]string) string {
	t.Helper()
	s, err := testdns.Start(txt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.Addr
}

// TestDirectSendAuthentication: anonymous mail without a connector is
// checked with SPF and DMARC; failures of the domain's policy (or an SPF
// hard fail without DMARC) land in Junk Email, and every message carries
// an Authentication-Results header.
func TestDirectSendAuthentication(t *testing.T) {
	resolver := startDNS(t, map[string]string{
		"contoso.com.":          "v=spf1 ip4:127.0.0.2 -all",
		"_dmarc.contoso.com.":   "v=DMARC1; p=reject",
		"fabrikam.example.":     "v=spf1 ip4:127.0.0.9 -all",
		"woodgrove.example.":    "v=spf1 ~all",
		"_dmarc.tailspin.test.": "v=DMARC1; p=none",
		"tailspin.test.":        "v=spf1 -all",
	})
	in := newInstance(t, "--resolver", resolver)
	in.mailbox("sean", "Sean-Pass-1")
	in.admin("New-InboundConnector", "-Name", "Printers", "-ConnectorType", "OnPremises", "-SenderIPAddresses", "127.0.0.4", "-RequireTls", "$false")
	in.start()

	send := func(src, from, subject string) {
		t.Helper()
		c := dialFrom(t, src, in.addrs["mx"])
		c.expect("EHLO device.example", "250")
		if got := c.send(from, []string{"sean@contoso.com"}, message(from, "sean@contoso.com", subject)); !strings.HasPrefix(got, "250") {
			t.Fatalf("%s: %q", subject, got)
		}
	}
	tests := []struct {
		src, from, subject, folder, results string
	}{
		{"127.0.0.2", "scanner@contoso.com", "spf pass", "Inbox", "spf=pass"},
		{"127.0.0.3", "scanner@contoso.com", "dmarc reject", "Junk Email", "dmarc=fail"},
		{"127.0.0.3", "ceo@fabrikam.example", "spf hard fail, no dmarc", "Junk Email", "spf=fail"},
		{"127.0.0.3", "a@woodgrove.example", "spf softfail", "Inbox", "spf=softfail"},
		{"127.0.0.3", "a@tailspin.test", "dmarc p=none", "Inbox", "dmarc=fail"},
		{"127.0.0.3", "a@nowhere.example", "no records", "Inbox", "spf=none"},
	}
	inbox, junk := 0, 0
	for _, tt := range tests {
		send(tt.src, tt.from, tt.subject)
		if tt.folder == "Inbox" {
			inbox++
		} else {
			junk++
		}
		if got := in.deliveredHeader(t, "sean@contoso.com", "Sean-Pass-1", tt.folder, "Authentication-Results"); !strings.Contains(got, tt.results) {
			t.Errorf("%s: Authentication-Results %q lacks %q", tt.subject, got, tt.results)
		}
	}
	// Mail through a connector is not checked (the connector vouches for it).
	send("127.0.0.4", "scanner@contoso.com", "via connector")
	inbox++
	if got := in.deliveredHeader(t, "sean@contoso.com", "Sean-Pass-1", "Inbox", "Authentication-Results"); got != "" {
		t.Errorf("connector mail was checked: %q", got)
	}
	if n := in.folderCount("sean@contoso.com", "Inbox"); n != inbox {
		t.Errorf("Inbox: %d, want %d", n, inbox)
	}
	if n := in.folderCount("sean@contoso.com", "Junk Email"); n != junk {
		t.Errorf("Junk Email: %d, want %d", n, junk)
	}
}
