package policy

import (
	"testing"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// TestAuthenticateAccess is the IMAP4/POP3 chain: the SMTP switches do not
// apply, ImapEnabled/PopEnabled of the mailbox opened do, security defaults
// and authentication policies block Basic only, a delegate needs
// FullAccess, and only a client with good credentials hears "User is
// authenticated but not connected.".
func TestAuthenticateAccess(t *testing.T) {
	allowAll := &directory.AuthenticationPolicy{Name: "AllowAll", AllowBasicAuthImap: true, AllowBasicAuthPop: true}
	smtpOnly := &directory.AuthenticationPolicy{Name: "SmtpOnly", AllowBasicAuthSmtp: true}
	imapOnly := &directory.AuthenticationPolicy{Name: "ImapOnly", AllowBasicAuthImap: true}
	user := func(imap, pop bool) *directory.Mailbox {
		return &directory.Mailbox{ID: 1, OrgID: 1, PrimarySmtpAddress: "sean@contoso.com", Type: directory.UserMailbox, ImapEnabled: imap, PopEnabled: pop,
			SmtpClientAuthenticationDisabled: ptr(true)}
	}
	shared := &directory.Mailbox{ID: 2, OrgID: 1, PrimarySmtpAddress: "info@contoso.com", Type: directory.SharedMailbox, ImapEnabled: true, PopEnabled: true}
	sharedOff := &directory.Mailbox{ID: 3, OrgID: 1, PrimarySmtpAddress: "off@contoso.com", Type: directory.SharedMailbox}
	other := &directory.Mailbox{ID: 4, OrgID: 2, PrimarySmtpAddress: "x@fabrikam.com", Type: directory.UserMailbox, ImapEnabled: true, PopEnabled: true}
	const generic, notConnected = "", reply.IMAPNotConnected
	tests := []struct {
		name       string
		proto      Protocol
		mailbox    *directory.Mailbox
		actor      *directory.Mailbox
		fullAccess bool
		creds      bool
		method     AuthMethod
		org        directory.Organization
		policy     *directory.AuthenticationPolicy
		ok         bool
		text       string
	}{
		{name: "imap on", proto: IMAP4, mailbox: user(true, true), creds: true, ok: true},
		{name: "pop on", proto: POP3, mailbox: user(true, true), creds: true, ok: true},
		{name: "SMTP AUTH off does not matter", proto: IMAP4, mailbox: user(true, false), creds: true, org: directory.Organization{SmtpClientAuthenticationDisabled: true, SmtpBasicAuthDisabled: true}, ok: true},
		{name: "wrong password", proto: IMAP4, mailbox: user(true, true), creds: false, text: generic},
		{name: "wrong password hides imap off", proto: IMAP4, mailbox: user(false, true), creds: false, text: generic},
		{name: "imap off", proto: IMAP4, mailbox: user(false, true), creds: true, text: notConnected},
		{name: "imap off, oauth too", proto: IMAP4, mailbox: user(false, true), creds: true, method: OAuth, text: notConnected},
		{name: "pop off is the generic failure", proto: POP3, mailbox: user(true, false), creds: true, text: generic},
		{name: "imap off does not affect pop", proto: POP3, mailbox: user(false, true), creds: true, ok: true},
		{name: "security defaults block basic", proto: IMAP4, mailbox: user(true, true), creds: true, org: directory.Organization{SecurityDefaultsEnabled: true}, text: generic},
		{name: "security defaults let oauth pass", proto: POP3, mailbox: user(true, true), creds: true, method: OAuth, org: directory.Organization{SecurityDefaultsEnabled: true}, ok: true},
		{name: "policy without the imap switch", proto: IMAP4, mailbox: user(true, true), creds: true, policy: smtpOnly, text: generic},
		{name: "policy with the imap switch", proto: IMAP4, mailbox: user(true, true), creds: true, policy: imapOnly, ok: true},
		{name: "imap switch does not allow pop", proto: POP3, mailbox: user(true, true), creds: true, policy: imapOnly, text: generic},
		{name: "policy allowing both", proto: POP3, mailbox: user(true, true), creds: true, policy: allowAll, ok: true},
		{name: "policy never blocks oauth", proto: IMAP4, mailbox: user(true, true), creds: true, method: OAuth, policy: smtpOnly, ok: true},
		{name: "policy checked before the mailbox switch", proto: IMAP4, mailbox: user(false, true), creds: true, policy: smtpOnly, text: generic},
		{name: "shared mailbox with its own password", proto: IMAP4, mailbox: shared, creds: true, text: generic},
		{name: "delegate with FullAccess", proto: IMAP4, actor: user(false, false), mailbox: shared, fullAccess: true, creds: true, ok: true},
		{name: "delegate without FullAccess", proto: IMAP4, actor: user(true, true), mailbox: shared, creds: true, text: notConnected},
		{name: "delegate, wrong password", proto: IMAP4, actor: user(true, true), mailbox: shared, fullAccess: true, creds: false, text: generic},
		{name: "delegate, shared mailbox imap off", proto: IMAP4, actor: user(true, true), mailbox: sharedOff, fullAccess: true, creds: true, text: notConnected},
		{name: "delegate, unknown mailbox", proto: IMAP4, actor: user(true, true), creds: true, text: notConnected},
		{name: "delegate, unknown mailbox, wrong password", proto: IMAP4, actor: user(true, true), creds: false, text: generic},
		{name: "delegate, other organization", proto: POP3, actor: user(true, true), mailbox: other, fullAccess: true, creds: true, text: generic},
		{name: "unknown user", proto: POP3, creds: true, text: generic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			org := tt.org
			d := Authenticate(AuthFacts{Protocol: tt.proto, Mailbox: tt.mailbox, Actor: tt.actor, FullAccess: tt.fullAccess,
				CredentialsValid: tt.creds, Method: tt.method, Org: &org, Policy: tt.policy})
			if (d == nil) != tt.ok {
				t.Fatalf("got %+v, want ok=%v", d, tt.ok)
			}
			if d == nil {
				return
			}
			if d.Reply != reply.AuthFailed || d.Text != tt.text || d.Reason == "" {
				t.Errorf("got reply %s, text %q, reason %q; want the generic reply and text %q", reply.String(d.Reply), d.Text, d.Reason, tt.text)
			}
		})
	}
}

func TestAuthorizeTokenPerProtocol(t *testing.T) {
	sean := &directory.Mailbox{ID: 1, OrgID: 1, PrimarySmtpAddress: "sean@contoso.com", UserPrincipalName: "sean@contoso.com"}
	info := &directory.Mailbox{ID: 2, OrgID: 1, PrimarySmtpAddress: "info@contoso.com", UserPrincipalName: "info@contoso.com", Type: directory.SharedMailbox}
	dir := directory.NewSnapshot(directory.Contents{
		Mailboxes:    []*directory.Mailbox{sean, info},
		Principals:   []*directory.ServicePrincipal{{ID: 7, OrgID: 1, AppId: "app-1"}},
		MailboxPerms: []*directory.MailboxPermission{{Identity: 2, TrusteePrincipal: 7}},
	})
	for _, tt := range []struct {
		name        string
		t           TokenFacts
		actor, want *directory.Mailbox
		text        string
	}{
		{"imap delegated scope", TokenFacts{Protocol: IMAP4, Orgs: []int64{1}, User: "sean@contoso.com", Scopes: []string{"https://outlook.office.com/IMAP.AccessAsUser.All"}}, sean, sean, ""},
		{"pop delegated scope", TokenFacts{Protocol: POP3, Orgs: []int64{1}, User: "sean@contoso.com", Scopes: []string{"POP.AccessAsUser.All"}}, sean, sean, ""},
		{"SMTP.Send does not open IMAP", TokenFacts{Protocol: IMAP4, Orgs: []int64{1}, User: "sean@contoso.com", Scopes: []string{"SMTP.Send"}}, nil, nil, ""},
		{"IMAP scope does not open POP", TokenFacts{Protocol: POP3, Orgs: []int64{1}, User: "sean@contoso.com", Scopes: []string{"IMAP.AccessAsUser.All"}}, nil, nil, ""},
		{"IMAP scope does not send", TokenFacts{Orgs: []int64{1}, User: "sean@contoso.com", Scopes: []string{"IMAP.AccessAsUser.All"}}, nil, nil, ""},
		{"delegate without FullAccess", TokenFacts{Protocol: IMAP4, Orgs: []int64{1}, User: "sean@contoso.com", Scopes: []string{"IMAP.AccessAsUser.All"}, Requested: "info@contoso.com"}, nil, nil, reply.IMAPNotConnected},
		{"app role IMAP", TokenFacts{Protocol: IMAP4, Orgs: []int64{1}, AppID: "app-1", Roles: []string{"IMAP.AccessAsApp"}, Requested: "info@contoso.com"}, nil, info, ""},
		{"app role POP", TokenFacts{Protocol: POP3, Orgs: []int64{1}, AppID: "app-1", Roles: []string{"POP.AccessAsApp"}, Requested: "info@contoso.com"}, nil, info, ""},
		{"app without FullAccess", TokenFacts{Protocol: IMAP4, Orgs: []int64{1}, AppID: "app-1", Roles: []string{"IMAP.AccessAsApp"}, Requested: "sean@contoso.com"}, nil, nil, reply.IMAPNotConnected},
		{"app with the SMTP role only", TokenFacts{Protocol: POP3, Orgs: []int64{1}, AppID: "app-1", Roles: []string{"SMTP.SendAsApp"}, Requested: "info@contoso.com"}, nil, nil, ""},
	} {
		actor, got, d := AuthorizeToken(dir, tt.t)
		if actor != tt.actor || got != tt.want || (got == nil) != (d != nil) {
			t.Errorf("%s: got actor %v mailbox %v denial %+v", tt.name, actor, got, d)
			continue
		}
		if d != nil && (d.Text != tt.text || d.Reply != reply.AuthFailed || d.Reason == "") {
			t.Errorf("%s: got %+v, want text %q", tt.name, d, tt.text)
		}
	}
}

func TestQuotas(t *testing.T) {
	m := &directory.Mailbox{ProhibitSendQuota: 100, ProhibitSendReceiveQuota: 200}
	for _, tt := range []struct {
		size          int64
		send, receive *reply.Reply
	}{
		{0, nil, nil}, {99, nil, nil}, {100, reply.SenderMailboxFull, nil}, {199, reply.SenderMailboxFull, nil},
		{200, reply.SenderMailboxFull, reply.MailboxFull},
	} {
		if got := CheckSendQuota(m, tt.size); got != tt.send {
			t.Errorf("send at %d: got %v", tt.size, got)
		}
		if got := CheckReceiveQuota(m, tt.size); got != tt.receive {
			t.Errorf("receive at %d: got %v", tt.size, got)
		}
	}
	unlimited := &directory.Mailbox{ProhibitSendQuota: directory.Unlimited, ProhibitSendReceiveQuota: directory.Unlimited}
	if CheckSendQuota(unlimited, 1<<50) != nil || CheckReceiveQuota(unlimited, 1<<50) != nil {
		t.Error("Unlimited quotas refuse nothing")
	}
	if got := reply.String(reply.MailboxFull); got != "552 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded" {
		t.Errorf("MailboxFull = %s", got)
	}
}
