// Package reply is the one catalogue of SMTP replies Postern sends.
//
// Every refusal a client can see is defined here, named by what it means
// (SendAsDenied, TenantAuthDisabled) and spelled as Exchange Online spells it
// (see shared/reference/exchange-online.md, sections 1.2, 2.2 and 3), so that
// device guides and admins' searches for an error text find the right cause.
// Call sites never spell a reply inline.
//
// A Reply is also an error whose concrete type is *smtp.SMTPError, the only
// error type go-smtp turns into a reply verbatim (it type-asserts rather than
// unwrapping, so replies must be returned unwrapped).
package reply

import (
	"fmt"

	"github.com/emersion/go-smtp"
)

// Reply is an SMTP reply: basic code (RFC 5321 section 4.2), enhanced status
// code (RFC 3463) and text.
type Reply = smtp.SMTPError

func r(code, class, subject, detail int, text string) *Reply {
	return &Reply{Code: code, EnhancedCode: smtp.EnhancedCode{class, subject, detail}, Message: text}
}

// IsTemporary reports whether a reply is a 4xx (transient) one.
func IsTemporary(rep *Reply) bool { return rep.Code/100 == 4 }

// String renders a reply as it appears on the wire (last line), e.g.
// "535 5.7.3 Authentication unsuccessful".
func String(rep *Reply) string {
	return fmt.Sprintf("%d %d.%d.%d %s", rep.Code, rep.EnhancedCode[0], rep.EnhancedCode[1], rep.EnhancedCode[2], rep.Message)
}

// authDisabledHelp is the link Exchange appends to its SMTP AUTH switch refusals.
const authDisabledHelp = " Visit https://aka.ms/smtp_auth_disabled for more information."

// AUTH stage (reference section 2.2). The sentence after 5.7.139 is what tells
// an admin which switch refused the login; the code is shared.
var (
	// AuthFailed: wrong user name or password, an unknown user, a mailbox
	// that cannot sign in (shared), or a malformed exchange. One reply for all
	// of them, so a client cannot learn whether a mailbox exists.
	AuthFailed = r(535, 5, 7, 3, "Authentication unsuccessful")
	// TenantAuthDisabled: Set-TransportConfig -SmtpClientAuthenticationDisabled
	// $true and the mailbox inherits it ($null).
	TenantAuthDisabled = r(535, 5, 7, 139, "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."+authDisabledHelp)
	// MailboxAuthDisabled: Set-CASMailbox -SmtpClientAuthenticationDisabled $true.
	MailboxAuthDisabled = r(535, 5, 7, 139, "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox."+authDisabledHelp)
	// SecurityDefaults: Set-OrganizationConfig -SecurityDefaultsEnabled $true
	// (stands in for Entra ID security defaults, which block SMTP AUTH).
	SecurityDefaults = r(535, 5, 7, 139, "Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator.")
	// BasicAuthBlocked: an authentication policy without -AllowBasicAuthSmtp
	// applies to the user (its own policy, or the organization default).
	BasicAuthBlocked = r(535, 5, 7, 139, "Authentication unsuccessful, basic authentication is disabled.")
	// BasicAuthRetired: Basic authentication for SMTP is off in the whole
	// organization (Set-TransportConfig -SmtpBasicAuthDisabled $true), the
	// reply Exchange Online gives after its retirement (reference 8.2).
	BasicAuthRetired = r(550, 5, 7, 30, "Basic authentication is not supported for Client Submission.")
	// AuthTemporary: a token could not be checked because the issuer's keys
	// are unavailable (RFC 4954 section 6's temporary failure).
	AuthTemporary = r(454, 4, 7, 0, "Temporary authentication failure")
	// AuthThrottled: too many failed logins from the client's address; said
	// before credentials are checked, the same for every user name.
	AuthThrottled = r(421, 4, 7, 0, "Too many failed authentication attempts from your address; try again later")
	// AuthBusy: the password could not be checked now: too many
	// verifications are running or waiting (an AUTH flood), or the
	// address's last throttle places are held by attempts still being
	// checked. RFC 4954 section 6's temporary failure; the client retries.
	AuthBusy = r(454, 4, 7, 0, "Temporary authentication failure")
	// AuthMechanismUnsupported: AUTH named a mechanism we do not offer here.
	AuthMechanismUnsupported = r(504, 5, 7, 4, "Unrecognized authentication type")
	// AuthTemporaryFailure: the directory or store could not be read.
	AuthTemporaryFailure = r(454, 4, 7, 0, "Temporary authentication failure")
)

// MAIL FROM stage.
var (
	// NotAuthenticated: MAIL FROM on a submission listener without a
	// successful AUTH (current Exchange wording, reference section 2.3).
	NotAuthenticated = r(530, 5, 7, 57, "Client not authenticated to send mail.")
	// BadSenderSyntax: the reverse-path is not a valid address.
	BadSenderSyntax = r(501, 5, 1, 7, "Invalid address")
	// BadRecipientSyntax: the forward-path is not a valid address.
	BadRecipientSyntax = r(501, 5, 1, 3, "Invalid address")
)

// RecipientNotFound: an unknown recipient in an Authoritative accepted domain
// (reference section 3, 5.1.10; Postern says it at RCPT, as DBEB does).
func RecipientNotFound(addr string) *Reply {
	return r(550, 5, 1, 10, fmt.Sprintf("RESOLVER.ADR.RecipientNotFound; Recipient %s not found by SMTP address lookup", addr))
}

// RelayDenied: an unauthenticated client named a recipient outside the
// organization (reference section 3, 5.7.64 at RCPT TO).
var RelayDenied = r(550, 5, 7, 64, "TenantAttribution; Relay Access Denied")

// Anonymous mail on the 25 role (reference sections 6 and 7).
var (
	// RelayDeniedATTR36: an OnPremises connector matched, but the sender is
	// not in the organization's accepted domains (reference 7.1).
	RelayDeniedATTR36 = r(550, 5, 7, 64, "Relay Access Denied ATTR36. For more details please refer to KB 3169958.")
	// DirectSendRejected: Set-OrganizationConfig -RejectDirectSend $true and
	// the client matches no IP- or certificate-based inbound connector.
	DirectSendRejected = r(550, 5, 7, 68, "TenantInboundAttribution; Direct Send not allowed for this organization from unauthorized sources")
	// TLSRequired: a connector with RequireTls matched a client that did
	// not use STARTTLS (RFC 3207 section 4's reply).
	TLSRequired = r(530, 5, 7, 0, "Must issue a STARTTLS command first")
	// PartnerConnectorMismatch: a Partner connector with
	// RestrictDomainsToIPAddresses or RestrictDomainsToCertificate covers
	// the sender's domain, and the client is not the source it names.
	// Exchange's exact text for this case is not documented; the wording
	// follows its 5.7.51 TenantInboundAttribution replies.
	PartnerConnectorMismatch = r(550, 5, 7, 51, "TenantInboundAttribution; There is a partner connector configured that matched the message's sender domain, but the sending server's IP address or certificate does not match it")
)

// TooManyRecipients: more recipients than the mailbox's RecipientLimits
// (default 500). RFC 5321 section 4.5.3.1.8 prescribes 452 with 4.5.3 so the
// client sends the rest in another transaction.
func TooManyRecipients(limit int) *Reply {
	return r(452, 4, 5, 3, fmt.Sprintf("Too many recipients; this mailbox may send to at most %d recipients per message", limit))
}

// MessageTooLarge: the message exceeds the mailbox's MaxSendSize (or the
// server maximum), said at MAIL FROM SIZE= or at end of DATA.
func MessageTooLarge(limitBytes int64) *Reply {
	return r(552, 5, 3, 4, fmt.Sprintf("Message size exceeds fixed maximum message size of %d bytes (MaxSendSize %s)", limitBytes, sizeText(limitBytes)))
}

// sizeText renders a byte count the way Exchange shows sizes: "35 MB".
func sizeText(n int64) string {
	for _, u := range []struct {
		name  string
		bytes int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if n >= u.bytes && n%u.bytes == 0 {
			return fmt.Sprintf("%d %s", n/u.bytes, u.name)
		}
		if n >= u.bytes {
			return fmt.Sprintf("%.1f %s", float64(n)/float64(u.bytes), u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// End of DATA stage (reference sections 3 and 5).

// SendAsDenied: the authenticated mailbox may not send as this address; the
// current (2021 onward) Exchange wording.
func SendAsDenied(login, from string) *Reply {
	return r(554, 5, 2, 252, fmt.Sprintf("SendAsDenied; %s not allowed to send as %s; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message [BeginDiagnosticData]Cannot submit message.", login, from))
}

var (
	// SubmissionQuotaExceeded: the 10,000 recipients per rolling 24 hours.
	SubmissionQuotaExceeded = r(554, 5, 2, 0, "STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception with message Cannot submit message.")
	// ConcurrentConnections: more than 3 authenticated connections of one
	// mailbox submitting at once (retryable).
	ConcurrentConnections = r(432, 4, 3, 2, "Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information.")
	// BareLineEnding: a CR or LF not part of CRLF in the message. RFC 5321
	// section 2.3.8 forbids them; accepting them enables SMTP smuggling.
	BareLineEnding = r(550, 5, 6, 11, "Message contains bare CR or LF characters; lines must end with CRLF (RFC 5321 section 2.3.8)")
	// LineTooLong: a text line over the 2,000 octets Postern reads (twice
	// RFC 5321 section 4.5.3.1.6's 1,000). go-smtp cannot resynchronise
	// after such a line, so the connection closes after this reply.
	LineTooLong = r(550, 5, 6, 0, "Message has a line longer than 2000 octets (RFC 5321 section 4.5.3.1.6 allows 1000); closing the connection")
	// NULInMessage: a NUL byte in the message, which RFC 5322 does not allow.
	NULInMessage = r(550, 5, 6, 0, "Message contains NUL characters")
	// NoFromHeader: a message without one valid From: header (RFC 5322
	// section 3.6.2; Exchange's 5.7.512 text).
	NoFromHeader = r(550, 5, 7, 512, "Access denied, message must be RFC 5322 section 3.6.2 compliant")
	// HeaderTooLarge: a header section over the size Postern parses.
	HeaderTooLarge = r(552, 5, 3, 4, "Message header section too large")
	// StorageUnavailable: the message could not be committed durably; the
	// client keeps it and retries.
	StorageUnavailable = r(451, 4, 3, 0, "Temporary server error; the message was not accepted, please try again later")
	// ShuttingDown: the server is stopping.
	ShuttingDown = r(421, 4, 3, 2, "Service shutting down; please try again later")
)

// Accepted is the reply to a committed message, in Exchange's shape:
// "250 2.0.0 OK <message-id> [Hostname=host]".
func Accepted(messageID, hostname string) *Reply {
	return r(250, 2, 0, 0, fmt.Sprintf("OK <%s> [Hostname=%s]", messageID, hostname))
}
