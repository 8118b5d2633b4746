package policy

import (
	"testing"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

func TestAuthorizeToken(t *testing.T) {
	mb := func(id int64, addr string, typ directory.RecipientTypeDetails) *directory.Mailbox {
		return &directory.Mailbox{ID: id, OrgID: 1, PrimarySmtpAddress: addr, UserPrincipalName: addr, Type: typ}
	}
	sean, info, scanner := mb(1, "sean@contoso.com", directory.UserMailbox), mb(2, "info@contoso.com", directory.SharedMailbox),
		mb(3, "scanner@contoso.com", directory.UserMailbox)
	other := &directory.Mailbox{ID: 4, OrgID: 2, PrimarySmtpAddress: "x@fabrikam.com", UserPrincipalName: "x@fabrikam.com"}
	fabApp := &directory.Mailbox{ID: 5, OrgID: 2, PrimarySmtpAddress: "app@fabrikam.com", UserPrincipalName: "app@fabrikam.com"}
	dir := directory.NewSnapshot(directory.Contents{
		Mailboxes:  []*directory.Mailbox{sean, info, scanner, other, fabApp},
		Principals: []*directory.ServicePrincipal{{ID: 7, OrgID: 1, AppId: "app-1"}, {ID: 8, OrgID: 1, AppId: "app-2"}, {ID: 9, OrgID: 2, AppId: "app-f"}},
		MailboxPerms: []*directory.MailboxPermission{{Identity: 3, TrusteePrincipal: 7}, {Identity: 2, TrusteeMailbox: 1},
			{Identity: 5, TrusteePrincipal: 9}, {Identity: 3, TrusteePrincipal: 9}},
	})
	send := []string{"SMTP.Send"}
	app := []string{"SMTP.SendAsApp"}
	for _, tt := range []struct {
		name string
		t    TokenFacts
		want *directory.Mailbox
	}{
		{"user's own mailbox", TokenFacts{Orgs: []int64{1}, User: "sean@contoso.com", Scopes: send, Requested: "Sean@Contoso.com"}, sean},
		{"user, no user= (OAUTHBEARER without a=)", TokenFacts{Orgs: []int64{1}, User: "sean@contoso.com", Scopes: send}, sean},
		{"full scope URI", TokenFacts{Orgs: []int64{1}, User: "sean@contoso.com", Scopes: []string{"openid", "https://outlook.office.com/SMTP.Send"}}, sean},
		{"delegate of a shared mailbox", TokenFacts{Orgs: []int64{1}, User: "sean@contoso.com", Scopes: send, Requested: "info@contoso.com"}, info},
		{"user as someone else", TokenFacts{Orgs: []int64{1}, User: "sean@contoso.com", Scopes: send, Requested: "scanner@contoso.com"}, nil},
		{"user without the scope", TokenFacts{Orgs: []int64{1}, User: "sean@contoso.com", Scopes: []string{"Mail.Read"}}, nil},
		{"user of another organization", TokenFacts{Orgs: []int64{1}, User: "x@fabrikam.com", Scopes: send}, nil},
		{"unknown user", TokenFacts{Orgs: []int64{1}, User: "nobody@contoso.com", Scopes: send}, nil},
		{"application granted", TokenFacts{Orgs: []int64{1}, AppID: "app-1", Roles: app, Requested: "scanner@contoso.com"}, scanner},
		{"application not granted on that mailbox", TokenFacts{Orgs: []int64{1}, AppID: "app-1", Roles: app, Requested: "sean@contoso.com"}, nil},
		{"application granted nothing", TokenFacts{Orgs: []int64{1}, AppID: "app-2", Roles: app, Requested: "scanner@contoso.com"}, nil},
		{"unregistered application", TokenFacts{Orgs: []int64{1}, AppID: "app-9", Roles: app, Requested: "scanner@contoso.com"}, nil},
		{"application without the role", TokenFacts{Orgs: []int64{1}, AppID: "app-1", Requested: "scanner@contoso.com"}, nil},
		{"application, no mailbox named", TokenFacts{Orgs: []int64{1}, AppID: "app-1", Roles: app}, nil},
		{"application of the second organization", TokenFacts{Orgs: []int64{2}, AppID: "app-f", Roles: app, Requested: "app@fabrikam.com"}, fabApp},
		{"issuer trusted by both organizations", TokenFacts{Orgs: []int64{1, 2}, AppID: "app-f", Roles: app, Requested: "app@fabrikam.com"}, fabApp},
		{"user of the second organization", TokenFacts{Orgs: []int64{1, 2}, User: "x@fabrikam.com", Scopes: send}, other},
		{"application of another organization, even if granted", TokenFacts{Orgs: []int64{2}, AppID: "app-f", Roles: app, Requested: "scanner@contoso.com"}, nil},
		{"issuer not trusted by the mailbox's organization", TokenFacts{Orgs: []int64{1}, AppID: "app-f", Roles: app, Requested: "app@fabrikam.com"}, nil},
		{"no organization trusts the issuer", TokenFacts{AppID: "app-1", Roles: app, Requested: "scanner@contoso.com"}, nil},
	} {
		_, got, d := AuthorizeToken(dir, tt.t)
		rep, reason := d.SMTP(), ""
		if d != nil {
			reason = d.Reason
		}
		if got != tt.want || (got == nil) != (rep == reply.AuthFailed) || (got == nil && reason == "") {
			t.Errorf("%s: got %v %v %q", tt.name, got, rep, reason)
		}
	}
}
