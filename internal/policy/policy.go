// Package policy makes Postern's decisions: who may authenticate, whom a
// session may send as, where each recipient goes, and which per-message
// limits apply. Every function is pure — it takes facts (the directory
// snapshot, what the client said, how it connected) and returns a verdict
// carrying the exact SMTP reply from package reply. No I/O happens here, so
// the decision chain can be read top to bottom against the Exchange Online
// reference and tested with tables.
package policy

import (
	"crypto/tls"

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

// Protocol is the protocol a client signs in with. SMTP AUTH, IMAP4 and
// POP3 share the sign-in chain; each has its own switches.
type Protocol string

const (
	SMTP  Protocol = "SMTP"
	IMAP4 Protocol = "IMAP4"
	POP3  Protocol = "POP3"
)

// AuthFacts is what is known once a client has presented credentials.
type AuthFacts struct {
	// Protocol is SMTP when empty.
	Protocol Protocol
	// Mailbox is the mailbox the sign-in opens; nil if none was found.
	Mailbox *directory.Mailbox
	// Actor is the mailbox whose credentials were checked when it is not
	// Mailbox (an IMAP4/POP3 delegate naming a shared mailbox,
	// user@contoso.com\shared@contoso.com); nil otherwise. FullAccess
	// tells whether Actor holds FullAccess on Mailbox.
	Actor      *directory.Mailbox
	FullAccess bool
	// CredentialsValid is whether the secret proved the identity.
	CredentialsValid bool
	Method           AuthMethod
	Org              *directory.Organization
	// Policy is the effective authentication policy of the user whose
	// credentials were checked (own, else the organization default); nil
	// when none applies.
	Policy *directory.AuthenticationPolicy
}

// Denial is why a sign-in is refused.
type Denial struct {
	// Reply is the SMTP reply; for a refusal SMTP does not have (an IMAP4
	// or POP3 switch) the generic AuthFailed.
	Reply *reply.Reply
	// Text is what IMAP4 or POP3 says when it differs from the generic
	// failure (reply.IMAPNotConnected); empty for SMTP.
	Text string
	// Reason says, for the admin's log, which rule refused.
	Reason string
}

// SMTP returns the SMTP reply of a denial; nil when the sign-in may proceed.
func (d *Denial) SMTP() *reply.Reply {
	if d == nil {
		return nil
	}
	return d.Reply
}

func deny(rep *reply.Reply, reason string) *Denial { return &Denial{Reply: rep, Reason: reason} }

// Authenticate walks Exchange's sign-in chain (reference section 2.1 for SMTP
// AUTH) for the protocol and returns nil when the sign-in may proceed,
// otherwise the denial.
//
// Credentials come first, so that the replies that name a switch (the
// 5.7.139 ones, IMAP's "User is authenticated but not connected.") are only
// ever shown to someone who knows the password: an attacker learns nothing
// about a mailbox's settings, or its existence, from them.
func Authenticate(f AuthFacts) *Denial {
	actor := f.Actor
	if actor == nil {
		actor = f.Mailbox
	}
	switch {
	case actor == nil || f.Org == nil || !f.CredentialsValid:
		return deny(reply.AuthFailed, "unknown user or wrong credentials")
	case actor.Type == directory.SharedMailbox && f.Method == Basic:
		// Shared mailboxes have no password of their own; only a delegate's
		// token may name one (reference 8.3).
		return deny(reply.AuthFailed, "a shared mailbox signs in with no password of its own")
	}
	switch f.Protocol {
	case IMAP4, POP3:
		return authenticateAccess(f, actor)
	}
	if f.Method == Basic && f.Org.SmtpBasicAuthDisabled {
		return deny(reply.BasicAuthRetired, "Set-TransportConfig -SmtpBasicAuthDisabled $true")
	}
	// Set-CASMailbox $true/$false overrides Set-TransportConfig; $null inherits.
	if disabled := f.Mailbox.SmtpClientAuthenticationDisabled; disabled != nil {
		if *disabled {
			return deny(reply.MailboxAuthDisabled, "Set-CASMailbox -SmtpClientAuthenticationDisabled $true")
		}
	} else if f.Org.SmtpClientAuthenticationDisabled {
		return deny(reply.TenantAuthDisabled, "Set-TransportConfig -SmtpClientAuthenticationDisabled $true")
	}
	if f.Org.SecurityDefaultsEnabled {
		return deny(reply.SecurityDefaults, "security defaults")
	}
	// "If your authentication policy disables basic authentication for SMTP,
	// clients cannot use the SMTP AUTH protocol" — Basic only; OAuth passes.
	if f.Method == Basic && f.Policy != nil && !f.Policy.AllowBasicAuthSmtp {
		return deny(reply.BasicAuthBlocked, "authentication policy "+f.Policy.Name+" blocks Basic authentication for SMTP")
	}
	return nil
}

// authenticateAccess is the chain for IMAP4 and POP3, once the credentials
// are known good. Opening another mailbox needs FullAccess on it; the
// mailbox opened must have the protocol on (ImapEnabled, PopEnabled; the
// SMTP switches do not apply); security defaults and authentication
// policies (-AllowBasicAuthImap, -AllowBasicAuthPop) block Basic only.
//
// Exchange blocks Basic authentication "at the first pre-authentication
// step" (reference 8.1), so a blocked password gets the generic failure;
// the mailbox switches get IMAP's "User is authenticated but not
// connected." and POP3's generic failure, as Exchange answers.
func authenticateAccess(f AuthFacts, actor *directory.Mailbox) *Denial {
	imap := f.Protocol == IMAP4
	notConnected := func(reason string) *Denial {
		d := deny(reply.AuthFailed, reason)
		if imap {
			d.Text = reply.IMAPNotConnected
		}
		return d
	}
	if f.Method == Basic && f.Org.SecurityDefaultsEnabled {
		return deny(reply.AuthFailed, "security defaults block Basic authentication")
	}
	if f.Method == Basic && f.Policy != nil {
		allowed := f.Policy.AllowBasicAuthPop
		if imap {
			allowed = f.Policy.AllowBasicAuthImap
		}
		if !allowed {
			return deny(reply.AuthFailed, "authentication policy "+f.Policy.Name+" blocks Basic authentication for "+string(f.Protocol))
		}
	}
	if f.Mailbox == nil || f.Mailbox.OrgID != actor.OrgID {
		return notConnected("the mailbox named after the separator does not exist")
	}
	if f.Mailbox != actor && !f.FullAccess {
		return notConnected(actor.PrimarySmtpAddress + " has no FullAccess on " + f.Mailbox.PrimarySmtpAddress + " (Add-MailboxPermission)")
	}
	if imap && !f.Mailbox.ImapEnabled {
		return notConnected("Set-CASMailbox -ImapEnabled $false")
	}
	if !imap && !f.Mailbox.PopEnabled {
		return notConnected("Set-CASMailbox -PopEnabled $false")
	}
	return nil
}

// CheckLegacyEndpoint decides AUTH on the legacy-TLS listener (Exchange
// Online's smtp-legacy.office365.com), once the credentials are proven and
// the mailbox's organization is known. "Only mailboxes for organizations
// with the setting enabled can send using that endpoint, whatever TLS
// version is used" (Microsoft, opt-in-exchange-online-endpoint-for-legacy-
// tls-using-smtp-auth): without Set-TransportConfig -AllowLegacyTLSClients
// $true, TLS 1.0 or 1.1 gets Exchange's 421 4.7.66, and TLS 1.2 or later a
// 535 5.7.139 that names the switch. tlsVersion is crypto/tls's number.
func CheckLegacyEndpoint(org *directory.Organization, tlsVersion uint16) *reply.Reply {
	if org != nil && org.AllowLegacyTLSClients {
		return nil
	}
	if tlsVersion < tls.VersionTLS12 {
		return reply.LegacyTLSRefused
	}
	return reply.LegacyEndpointNotEnabled
}
