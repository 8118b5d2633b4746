package admin

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"postern.dev/postern/internal/cmdlet"
)

func runScript(t *testing.T, svc *Service, src string) (string, error) {
	t.Helper()
	s, err := cmdlet.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = (&cmdlet.Runner{Registry: Cmdlets(svc), Out: &out, NoFiles: true}).Run(context.Background(), s)
	return out.String(), err
}

// TestIdentityForms: every identity form Exchange accepts finds the
// mailbox; an ambiguous one names the matches.
func TestIdentityForms(t *testing.T) {
	svc := testService(t, openStore(t))
	if _, err := runScript(t, svc, `New-AcceptedDomain -Name contoso.com -DomainName contoso.com
New-Mailbox -Name sean -DisplayName "Sean Smith" -PrimarySmtpAddress sean@contoso.com -Password Passw0rd!
New-Mailbox -Name chris -DisplayName "Chris Jones" -PrimarySmtpAddress chris@contoso.com -Password Passw0rd!
New-Mailbox -Name akol -DisplayName "Chris Jones" -Alias ak -PrimarySmtpAddress akol@contoso.com -Password Passw0rd!
Set-Mailbox sean -EmailAddresses @{Add="sean.smith@contoso.com"}`); err != nil {
		t.Fatal(err)
	}
	guid, _ := runScript(t, svc, `(Get-Mailbox sean).ExchangeGuid`)
	guid = strings.TrimSpace(guid)
	for _, id := range []string{"sean", "SEAN", "Sean Smith", "sean@contoso.com", "SMTP:sean@contoso.com", "smtp:sean.smith@contoso.com",
		`contoso\sean`, `contoso.com\sean`, `Default\sean`, guid, "{" + guid + "}"} {
		out, err := runScript(t, svc, `(Get-Mailbox -Identity '`+id+`').Name`)
		if err != nil || strings.TrimSpace(out) != "sean" {
			t.Errorf("%q: %q, %v", id, out, err)
		}
	}
	if out, err := runScript(t, svc, `(Get-User -Identity ak).Name`); err != nil || strings.TrimSpace(out) != "akol" {
		t.Errorf("alias: %q %v", out, err)
	}
	for _, id := range []string{`fabrikam\sean`, "nobody", "nobody@contoso.com"} {
		if _, err := runScript(t, svc, `Get-Mailbox -Identity '`+id+`'`); err == nil || !strings.Contains(err.Error(), "couldn't be found") {
			t.Errorf("%q: %v", id, err)
		}
	}
	_, err := runScript(t, svc, `Set-CASMailbox -Identity "Chris Jones" -PopEnabled $false`)
	want := "Set-CASMailbox : The operation couldn't be performed because 'Chris Jones' matches multiple entries: 'chris' (chris@contoso.com), 'akol' (akol@contoso.com)."
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("ambiguous: %v", err)
	}
}

// TestRecipientTypeDetails: -RecipientTypeDetails selects by type, takes
// a list, and refuses an unknown type in Exchange's words.
func TestRecipientTypeDetails(t *testing.T) {
	svc := testService(t, openStore(t))
	runScript(t, svc, `New-AcceptedDomain -Name contoso.com -DomainName contoso.com
New-Mailbox -Name sean -PrimarySmtpAddress sean@contoso.com -Password Passw0rd!
New-Mailbox -Name info -Shared`)
	for src, want := range map[string]string{
		`(Get-Mailbox -RecipientTypeDetails SharedMailbox).Name`:                      "info",
		`(Get-Mailbox -RecipientTypeDetails UserMailbox).Name`:                        "sean",
		`(Get-Mailbox -RecipientTypeDetails SharedMailbox,UserMailbox).Count`:         "2",
		`(Get-Mailbox -RecipientTypeDetails RoomMailbox | Measure-Object).Count`:      "0",
		`(Get-User -RecipientTypeDetails UserMailbox -Filter "Name -like 's*'").Name`: "sean",
	} {
		if out, err := runScript(t, svc, src); err != nil || strings.TrimSpace(out) != want {
			t.Errorf("%s: %q %v", src, out, err)
		}
	}
	if _, err := runScript(t, svc, `Get-Mailbox -RecipientTypeDetails Shared`); err == nil ||
		!strings.Contains(err.Error(), `Unable to match the identifier name Shared to a valid enumerator name`) {
		t.Errorf("unknown type: %v", err)
	}
}

// TestTestNetConnection: only this server, only its administrator.
func TestTestNetConnection(t *testing.T) {
	svc := testService(t, openStore(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("220-first\r\n220 mail.contoso.com ready\r\n"))
			c.Close()
		}
	}()
	svc.Hostname = "mail.contoso.com"
	svc.Listeners = func() []Listener { return []Listener{{Addr: ln.Addr()}} }
	port := ln.Addr().(*net.TCPAddr).Port
	for _, name := range []string{"127.0.0.1", "localhost", "mail.contoso.com", "smtp.office365.com"} {
		out, err := runScript(t, svc, "Test-NetConnection -ComputerName "+name+" -Port "+itoa(port)+" | Format-List TcpTestSucceeded,Banner,RemoteAddress")
		if err != nil || !strings.Contains(out, "TcpTestSucceeded : True") || !strings.Contains(out, "220 mail.contoso.com ready") || !strings.Contains(out, "127.0.0.1") {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
	for _, name := range []string{"192.0.2.1", "www.example.com", "10.0.0.1"} {
		if _, err := runScript(t, svc, "Test-NetConnection -ComputerName "+name+" -Port 25"); err == nil || !strings.Contains(err.Error(), "tests this server only") {
			t.Errorf("%s: %v", name, err)
		}
	}
	orgAdmin := svc.As(Principal{Name: "ops", OrgID: svc.org().ID, Role: OrganizationManagement})
	_, err = runScript(t, orgAdmin, "Test-NetConnection -ComputerName localhost -Port "+itoa(port))
	if !errors.Is(err, ErrAccessDenied) {
		t.Errorf("an organization's admin: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
