package policy

import (
	"slices"
	"strings"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// Permissions a token must carry (reference 8.3, and Exchange's
// "Authenticate an IMAP, POP or SMTP connection using OAuth"): a user's
// delegated token the scope of the protocol, an application's token the
// role of the protocol.
const (
	ScopeSMTPSend         = "SMTP.Send"
	RoleSMTPSendAsApp     = "SMTP.SendAsApp"
	ScopeIMAPAccessAsUser = "IMAP.AccessAsUser.All"
	RoleIMAPAccessAsApp   = "IMAP.AccessAsApp"
	ScopePOPAccessAsUser  = "POP.AccessAsUser.All"
	RolePOPAccessAsApp    = "POP.AccessAsApp"
)

// Permissions returns the delegated scope and the application role a token
// needs for a protocol.
func Permissions(p Protocol) (scope, role string) {
	switch p {
	case IMAP4:
		return ScopeIMAPAccessAsUser, RoleIMAPAccessAsApp
	case POP3:
		return ScopePOPAccessAsUser, RolePOPAccessAsApp
	}
	return ScopeSMTPSend, RoleSMTPSendAsApp
}

// TokenFacts is what a verified token says, and whom the client asked to
// sign in as (XOAUTH2 user=, OAUTHBEARER a=; may be empty for a user's own
// token).
type TokenFacts struct {
	// Protocol is SMTP when empty.
	Protocol Protocol
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

// AuthorizeToken decides which mailbox a valid token opens. It returns the
// user whose token it is (nil for an application's token) and the mailbox,
// or the denial with the reason for the admin's log.
//
//   - A delegated token (the protocol's scope: SMTP.Send,
//     IMAP.AccessAsUser.All, POP.AccessAsUser.All) opens its user's
//     mailbox, or a mailbox the user was granted FullAccess on (a shared
//     mailbox, as Exchange allows).
//   - An application token (the protocol's role: SMTP.SendAsApp,
//     IMAP.AccessAsApp, POP.AccessAsApp) opens the mailbox named by the
//     client, when the application is registered (New-ServicePrincipal)
//     and was granted FullAccess on it (Add-MailboxPermission).
//
// Every organization is a wall: the user, the service principal and the
// mailbox opened all belong to the same organization, one that trusts the
// issuer. A token that is valid but may not open the mailbox named gets
// IMAP's "User is authenticated but not connected.", as Exchange answers.
func AuthorizeToken(dir *directory.Snapshot, t TokenFacts) (actor, mailbox *directory.Mailbox, d *Denial) {
	scope, role := Permissions(t.Protocol)
	notConnected := func(reason string) *Denial {
		d := deny(reply.AuthFailed, reason)
		if t.Protocol == IMAP4 {
			d.Text = reply.IMAPNotConnected
		}
		return d
	}
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
	case hasPermission(t.Scopes, scope) && t.User != "":
		user := lookup(t.User)
		if user == nil {
			return nil, nil, deny(reply.AuthFailed, "the token's user "+t.User+" has no mailbox")
		}
		if t.Requested == "" || lookup(t.Requested) == user {
			return user, user, nil
		}
		target := lookup(t.Requested)
		if target == nil || target.OrgID != user.OrgID || !dir.MailboxHasFullAccess(user.ID, target.ID) {
			return nil, nil, notConnected("the token's user " + t.User + " may not open " + t.Requested + " (no FullAccess)")
		}
		return user, target, nil
	case hasPermission(t.Roles, role) && t.AppID != "":
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
			return nil, nil, deny(reply.AuthFailed, "application "+t.AppID+" is not registered (New-ServicePrincipal)")
		}
		if target == nil || !dir.PrincipalHasFullAccess(sp.ID, target.ID) {
			return nil, nil, notConnected("application " + t.AppID + " was not granted FullAccess on " + t.Requested + " (Add-MailboxPermission)")
		}
		return nil, target, nil
	}
	return nil, nil, deny(reply.AuthFailed, "the token carries neither the scope "+scope+" with a user nor the role "+role+" with an application ID")
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
