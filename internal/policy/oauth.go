package policy

import (
	"slices"
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
	// Orgs are the organizations that trust the issuer: every organization
	// with an enabled AuthServer for it, or, for Postern's built-in issuer,
	// the organization of the app registration the token was issued to. The
	// token signs in only to a mailbox of one of them.
	Orgs      []int64
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
//
// Every organization is a wall: the user, the service principal and the
// mailbox signed in as all belong to the same organization, one that
// trusts the issuer.
func AuthorizeToken(dir *directory.Snapshot, t TokenFacts) (*directory.Mailbox, *reply.Reply, string) {
	find := func(name string) *directory.Mailbox {
		mb := dir.MailboxBySignIn(name)
		if mb == nil {
			mb = dir.MailboxByAddress(strings.ToLower(strings.TrimSpace(name)))
		}
		return mb
	}
	lookup := func(name string) *directory.Mailbox {
		if mb := find(name); mb != nil && slices.Contains(t.Orgs, mb.OrgID) {
			return mb
		}
		return nil
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
		if target == nil || target.OrgID != user.OrgID || !dir.MailboxHasFullAccess(user.ID, target.ID) {
			return nil, reply.AuthFailed, "the token's user " + t.User + " may not sign in as " + t.Requested + " (no FullAccess)"
		}
		return target, nil, ""
	case hasPermission(t.Roles, RoleSMTPSendAsApp) && t.AppID != "":
		// The application acts in the organization of the mailbox it names,
		// when that organization trusts the issuer and registered it.
		target := lookup(t.Requested)
		var sp *directory.ServicePrincipal
		if target != nil {
			sp = dir.ServicePrincipal(target.OrgID, t.AppID)
		} else {
			for _, org := range t.Orgs {
				if sp = dir.ServicePrincipal(org, t.AppID); sp != nil {
					break
				}
			}
		}
		if sp == nil {
			return nil, reply.AuthFailed, "application " + t.AppID + " is not registered (New-ServicePrincipal)"
		}
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
