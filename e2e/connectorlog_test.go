package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// protoLogRecord is a ProtocolLogEntry as the REST API answers it.
type protoLogRecord struct {
	DateTime       time.Time
	Connector      string
	SessionId      string
	SequenceNumber int
	ClientIP       string
	Event          string
	Data           string
}

// restProtocolLog runs Get-ProtocolLog through the REST API with a key.
func (in *instance) restProtocolLog(t *testing.T, adminAddr, key, body string) (int, []protoLogRecord, string) {
	t.Helper()
	status, text := in.rest(t, adminAddr, key, "Get-ProtocolLog", body)
	if status != 200 {
		return status, nil, text
	}
	var out struct{ Value []protoLogRecord }
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		t.Fatalf("Get-ProtocolLog answer: %v\n%s", err, text)
	}
	return status, out.Value, text
}

// TestConnectorProtocolLog: Contoso's admin turns on protocol logging of
// its inbound connector for 127.0.0.2 with its own REST API key. A device
// at 127.0.0.2 relays to an outside recipient through it, naming a
// Fabrikam recipient in the same session: Contoso's log has the session,
// its own recipients and the relayed one in clear, Fabrikam's masked.
// Fabrikam's key reads nothing of it, nor any listener's log, and cannot
// change Contoso's connector; a session from 127.0.0.3 (no connector) is
// not in Contoso's log.
func TestConnectorProtocolLog(t *testing.T) {
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	contosoKey, fabKey := twoOrganizations(t, in)
	in.admin("New-InboundConnector", "-Name", "Contoso printers", "-ConnectorType", "OnPremises", "-SenderIPAddresses", "127.0.0.2", "-RequireTls", "$false")
	in.start()

	if status, body := in.rest(t, adminAddr, fabKey, "Set-InboundConnector", `{"Identity": "Contoso printers", "ProtocolLoggingLevel": "Verbose"}`); status != 404 {
		t.Errorf("Fabrikam's key on Contoso's connector: %d %s", status, body)
	}
	if got := in.shell(`Get-InboundConnector "Contoso printers" | Format-List ProtocolLoggingLevel`); !strings.Contains(got, ": None") {
		t.Fatalf("Fabrikam's key changed Contoso's connector:\n%s", got)
	}
	// Contoso's key, through the resource as automation would.
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: in.tlsConfig()}}
	req, err := http.NewRequest("PATCH", "https://"+adminAddr+"/api/v1/inbound-connectors/Contoso%20printers", strings.NewReader(`{"ProtocolLoggingLevel": "Verbose"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "localhost"
	req.Header.Set("X-API-Key", contosoKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	patched, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(patched), `"ProtocolLoggingLevel":"Verbose"`) {
		t.Fatalf("Contoso's key, PATCH its connector: %d %s", resp.StatusCode, patched)
	}
	if got := in.shell(`Get-InboundConnector "Contoso printers" | Format-List ProtocolLoggingLevel`); !strings.Contains(got, ": Verbose") {
		t.Fatalf("Get-InboundConnector:\n%s", got)
	}

	// First a device without a connector, then the logged one: once the
	// second is in the log, the first would have been too.
	o := dialFrom(t, "127.0.0.3", in.addrs["mx"])
	o.expect("EHLO other.contoso.com", "250")
	if got := o.send("scanner@contoso.com", []string{"sean@contoso.com"}, message("scanner@contoso.com", "sean@contoso.com", "unlogged")); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("Direct Send from 127.0.0.3: %q", got)
	}
	o.expect("QUIT", "221")

	c := dialFrom(t, "127.0.0.2", in.addrs["mx"])
	c.expect("EHLO printer.contoso.com", "250")
	if got := c.send("scanner@contoso.com", []string{"bob@outside.example", "kim@fabrikam.com"},
		message("scanner@contoso.com", "bob@outside.example", "connector logged")+"Body-Marker-c0nn\r\n"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("relay from 127.0.0.2: %q", got)
	}
	c.expect("QUIT", "221")

	var recs []protoLogRecord
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, got, body := in.restProtocolLog(t, adminAddr, contosoKey, `{"Identity": "Contoso printers", "ResultSize": "Unlimited"}`)
		if status != 200 {
			t.Fatalf("Contoso's Get-ProtocolLog: %d %s", status, body)
		}
		recs = got
		if len(recs) > 0 && recs[len(recs)-1].Event == "-" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Contoso's log has no whole session:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var lines []string
	for _, r := range recs {
		lines = append(lines, strings.TrimSpace(r.Event+" "+r.Data))
		if r.ClientIP != "127.0.0.2" || r.Connector != "Contoso printers" || r.SessionId != recs[0].SessionId {
			t.Errorf("record of another session or connector: %+v", r)
		}
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{"+", "< EHLO printer.contoso.com", "< MAIL FROM:<scanner@contoso.com>", "< RCPT TO:<bob@outside.example>",
		"< RCPT TO:<****>", "< DATA", "* <message of ", "< QUIT", "-"} {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("Contoso's log lacks %q:\n%s", want, all)
		}
	}
	for _, unwanted := range []string{"kim@fabrikam.com", "fabrikam", "Body-Marker-c0nn", "other.contoso.com", "127.0.0.3"} {
		if strings.Contains(strings.ToLower(all), strings.ToLower(unwanted)) {
			t.Errorf("Contoso's log has %q:\n%s", unwanted, all)
		}
	}
	// The session ID is the SMTP session's, which the message trace has.
	id := fieldValue(in.shell("Get-MessageTrace -RecipientAddress bob@outside.example | Format-List MessageTraceId"), "MessageTraceId")
	if trace := in.shell("Get-MessageTraceDetail -MessageTraceId " + id + " -RecipientAddress bob@outside.example | Format-List SessionId"); !strings.Contains(trace, recs[0].SessionId) {
		t.Errorf("session %s not in the message trace:\n%s", recs[0].SessionId, trace)
	}

	// Contoso's key reads no listener's log and nothing without naming
	// its connector.
	for body, want := range map[string]int{`{"Identity": "Default Frontend"}`: 403, `{"ClientIP": "127.0.0.2"}`: 403} {
		if status, got, text := in.restProtocolLog(t, adminAddr, contosoKey, body); status != want || len(got) != 0 {
			t.Errorf("Contoso's key, Get-ProtocolLog %s: %d, want %d: %s", body, status, want, text)
		}
	}
	// Fabrikam's key sees nothing: not Contoso's connector (not found, as
	// any object of another organization), not a listener, not the whole
	// log.
	for body, want := range map[string]int{`{"Identity": "Contoso printers"}`: 404, `{"Identity": "Default Frontend"}`: 403, `{}`: 403} {
		if status, got, text := in.restProtocolLog(t, adminAddr, fabKey, body); status != want || len(got) != 0 || strings.Contains(text, "printer.contoso.com") {
			t.Errorf("Fabrikam's key, Get-ProtocolLog %s: %d, want %d: %s", body, status, want, text)
		}
	}
	// The server's administrator reads it, as every log.
	if got := in.protocolLog(`-Identity "Contoso printers"`); !strings.Contains(strings.Join(got, "\n"), "< RCPT TO:<bob@outside.example>") {
		t.Errorf("the server's administrator's Get-ProtocolLog:\n%s", strings.Join(got, "\n"))
	}
}
