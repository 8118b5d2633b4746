// Package policy makes Postern's decisions: who may authenticate, whom a
// session may send as, where each recipient goes, and which per-message
// limits apply. Every function is pure — it takes facts (the directory
// snapshot, what the client said, how it connected) and returns a verdict
// carrying the exact SMTP reply from package reply. No I/O happens here, so
// the decision chain can be read top to bottom against the Exchange Online
// reference and tested with tables.
package policy

import (
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// AuthMethod tells Basic (a password: LOGIN, PLAIN) from modern (OAuth
// bearer token) authentication; authentication policies only govern Basic.
type AuthMethod int

const (
	Basic AuthMethod = iota
	OAuth
)

func (m AuthMethod) String() string {
	if m == OAuth {
		return "OAuth"
	}
	return "Basic"
}

// AuthFacts is what is known once a client has presented credentials.
type AuthFacts struct {
	// Mailbox is the mailbox the sign-in name resolved to; nil if none.
	Mailbox *directory.Mailbox
	// CredentialsValid is whether the secret proved the identity.
	CredentialsValid bool
	Method           AuthMethod
	Org              *directory.Organization
	// Policy is the effective authentication policy (user's own, else the
	// organization default); nil when none applies.
	Policy *directory.AuthenticationPolicy
}

// Authenticate walks Exchange's SMTP AUTH chain (reference section 2.1) and
// returns nil when the login may proceed, otherwise the 535 reply to send.
//
// Credentials come first, so that the 5.7.139 replies, which name a switch,
// are only ever shown to someone who knows the password: an attacker learns
// nothing about a mailbox's settings, or its existence, from them.
func Authenticate(f AuthFacts) *reply.Reply {
	switch {
	case f.Mailbox == nil || f.Org == nil || !f.CredentialsValid:
		return reply.AuthFailed
	case f.Mailbox.Type == directory.SharedMailbox && f.Method == Basic:
		// Shared mailboxes have no password of their own; only a delegate's
		// token may name one (reference 8.3).
		return reply.AuthFailed
	case f.Method == Basic && f.Org.SmtpBasicAuthDisabled:
		return reply.BasicAuthRetired
	}
	// Set-CASMailbox $true/$false overrides Set-TransportConfig; $null inherits.
	if disabled := f.Mailbox.SmtpClientAuthenticationDisabled; disabled != nil {
		if *disabled {
			return reply.MailboxAuthDisabled
		}
	} else if f.Org.SmtpClientAuthenticationDisabled {
		return reply.TenantAuthDisabled
	}
	if f.Org.SecurityDefaultsEnabled {
		return reply.SecurityDefaults
	}
	// "If your authentication policy disables basic authentication for SMTP,
	// clients cannot use the SMTP AUTH protocol" — Basic only; OAuth passes.
	if f.Method == Basic && f.Policy != nil && !f.Policy.AllowBasicAuthSmtp {
		return reply.BasicAuthBlocked
	}
	return nil
}
