package restapi_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkAPI measures requests through the whole API: sign-in (the key's
// hash looked up in SQLite), the role check, the cmdlet and the JSON
// answer, over loopback HTTP (no TLS, which the admin listener adds).
func BenchmarkAPI(b *testing.B) {
	f := newFixture(b)
	var script strings.Builder
	for i := range 200 {
		fmt.Fprintf(&script, "New-Mailbox -Name device%03d -PrimarySmtpAddress device%03d@contoso.com -Shared\n", i, i)
	}
	if code, body := f.do(f.keys["ops"], "POST", "cmdlets/Get-Mailbox", ""); code != 200 {
		b.Fatal(code, body)
	}
	f.script(b, script.String())
	for _, bc := range []struct{ name, method, path, body string }{
		{"GetTransportConfig", "GET", "transport-config", ""},
		{"GetMailbox", "GET", "mailboxes/device100@contoso.com", ""},
		{"ListMailboxes202", "GET", "mailboxes", ""},
		{"SetCASMailbox", "PATCH", "cas-mailboxes/device100@contoso.com", `{"SmtpClientAuthenticationDisabled": false}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequest(bc.method, f.url+bc.path, strings.NewReader(bc.body))
				req.Header.Set("X-API-Key", f.keys["ops"])
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}
