package policy

import (
	"strings"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// Permissions a token must carry (reference 8.3): a user's delegated token
// the scope SMTP.Send, an application's token the role SMTP.SendAsApp.
const (
	ScopeSMTPSend     = "SMTP.Send"
	RoleSMTPSendAsApp = "SMTP.SendAsApp"
)

// TokenFacts is what a verified token says, and whom the client asked to
// sign in as (XOAUTH2 user=, OAUTHBEARER a=; may be empty for a user's own
// token).
type TokenFacts struct {
	Org       int64 // the organization of the AuthServer that issued it
	User      string
	AppID     string
	Scopes    []string
	Roles     []string
	Requested string
}

// AuthorizeToken decides which mailbox a valid token signs in as. It
// returns the mailbox, or AuthFailed with the reason for the admin's log.
//
//   - A delegated token (scope SMTP.Send) signs in as its user's mailbox,
//     or as a mailbox the user was granted FullAccess on (a shared
//     mailbox, as Exchange allows).
//   - An application token (role SMTP.SendAsApp) signs in as the mailbox
//     named by the client, when the application is registered
//     (New-ServicePrincipal) and was granted FullAccess on it
//     (Add-MailboxPermission).
func AuthorizeToken(dir *directory.Snapshot, t TokenFacts) (*directory.Mailbox, *reply.Reply, string) {
	lookup := func(name string) *directory.Mailbox {
		mb := dir.MailboxBySignIn(name)
		if mb == nil {
			mb = dir.MailboxByAddress(strings.ToLower(strings.TrimSpace(name)))
		}
		if mb == nil || mb.OrgID != t.Org {
			return nil
		}
		return mb
	}
	switch {
	case hasPermission(t.Scopes, ScopeSMTPSend) && t.User != "":
		user := lookup(t.User)
		if user == nil {
			return nil, reply.AuthFailed, "the token's user " + t.User + " has no mailbox"
		}
		if t.Requested == "" || lookup(t.Requested) == user {
			return user, nil, ""
		}
		target := lookup(t.Requested)
		if target == nil || !dir.MailboxHasFullAccess(user.ID, target.ID) {
			return nil, reply.AuthFailed, "the token's user " + t.User + " may not sign in as " + t.Requested + " (no FullAccess)"
		}
		return target, nil, ""
	case hasPermission(t.Roles, RoleSMTPSendAsApp) && t.AppID != "":
		sp := dir.ServicePrincipal(t.Org, t.AppID)
		if sp == nil {
			return nil, reply.AuthFailed, "application " + t.AppID + " is not registered (New-ServicePrincipal)"
		}
		target := lookup(t.Requested)
		if target == nil || !dir.PrincipalHasFullAccess(sp.ID, target.ID) {
			return nil, reply.AuthFailed, "application " + t.AppID + " was not granted FullAccess on " + t.Requested + " (Add-MailboxPermission)"
		}
		return target, nil, ""
	}
	return nil, reply.AuthFailed, "the token carries neither the scope SMTP.Send with a user nor the role SMTP.SendAsApp with an application ID"
}

// hasPermission matches a scope or role by name, also in its full URI form
// (https://outlook.office.com/SMTP.Send).
func hasPermission(list []string, want string) bool {
	for _, p := range list {
		if strings.EqualFold(p, want) || strings.HasSuffix(strings.ToLower(p), "/"+strings.ToLower(want)) {
			return true
		}
	}
	return false
}
