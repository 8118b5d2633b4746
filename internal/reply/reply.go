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

// Protocol replies: what the SMTP engine (package smtpserver) says about the
// conversation itself, before any of Postern's rules is asked. The texts keep
// the wording devices have seen from Postern since its first version.
var (
	// TooManyConnections: the server's, or one address's, concurrent
	// connection cap, or one address's connection rate, is reached.
	// Exchange's receive connector text for MaxInboundConnection and
	// MaxInboundConnectionPerSource.
	TooManyConnections = r(421, 4, 3, 2, "The maximum number of concurrent connections has exceeded a limit, closing transmission channel")
	// IdleTimeout: the client said nothing for the idle timeout (RFC 5321
	// section 4.5.3.2 suggests 5 minutes), or only half a command line.
	IdleTimeout = r(421, 4, 4, 2, "Idle timeout, bye bye")
	// CommandLineTooLong: a command line over 2,000 octets (RFC 5321
	// section 4.5.3.1.4 allows 512); the rest of it cannot be told from the
	// next command, so the connection closes.
	CommandLineTooLong = r(500, 5, 4, 0, "Too long line, closing connection")
	// TooManyErrors ends a session that keeps sending bad commands.
	TooManyErrors = r(500, 5, 5, 1, "Too many errors. Quiting now")
	HeloRequired  = r(501, 5, 5, 2, "Domain/address argument required for HELO")
	// Commands out of sequence (RFC 5321 section 4.3.2).
	IntroduceFirst       = r(502, 5, 5, 1, "Please introduce yourself first.")
	MailFirst            = r(502, 5, 5, 1, "Missing MAIL FROM command.")
	RcptFirst            = r(502, 5, 5, 1, "Missing RCPT TO command.")
	NestedMail           = r(503, 5, 5, 1, "Sender already specified")
	AlreadyAuthenticated = r(503, 5, 5, 1, "Already authenticated")
	AlreadyTLS           = r(502, 5, 5, 1, "Already running in TLS")
	TLSNotSupported      = r(502, 5, 5, 1, "TLS not supported")
	ReadyToStartTLS      = r(220, 2, 0, 0, "Ready to start TLS")
	// MailSyntax, RcptSyntax: the argument is not FROM:<path> / TO:<path>.
	MailSyntax = r(501, 5, 5, 2, "Was expecting MAIL arg syntax of FROM:<address>")
	RcptSyntax = r(501, 5, 5, 2, "Was expecting RCPT arg syntax of TO:<address>")
	// Parameters of MAIL and RCPT (RFC 5321 section 4.1.2 esmtp-param).
	BadParameters        = r(501, 5, 5, 4, "Unable to parse ESMTP parameters")
	BadSize              = r(501, 5, 5, 4, "Unable to parse SIZE as an integer")
	BadBody              = r(501, 5, 5, 4, "Unknown BODY value")
	MalformedAuthParam   = r(500, 5, 5, 4, "Malformed AUTH parameter value")
	UnknownMailParameter = r(500, 5, 5, 4, "Unknown MAIL FROM argument")
	UnknownRcptParameter = r(500, 5, 5, 4, "Unknown RCPT TO argument")
	DataArguments        = r(501, 5, 5, 4, "DATA command should not have any arguments")
	StartData            = &Reply{Code: 354, EnhancedCode: smtp.NoEnhancedCode, Message: "Go ahead. End your data with <CR><LF>.<CR><LF>"}
	// BDAT (RFC 3030 section 2).
	BdatSize      = r(501, 5, 5, 4, "Malformed size argument")
	BdatArguments = r(501, 5, 5, 4, "Unknown BDAT argument")
	BdatContinue  = r(250, 2, 0, 0, "Continue")
	// MessageAboveServerMaximum: the SIZE= parameter or the data itself is
	// over the server's maximum, whoever the sender is.
	MessageAboveServerMaximum = r(552, 5, 3, 4, "Max message size exceeded")
	// TooManyRecipientsInTransaction is the engine's backstop above every
	// per-mailbox or per-organization limit (RFC 5321 section 4.5.3.1.8).
	TooManyRecipientsInTransaction = r(452, 4, 5, 3, "Too many recipients")
	// AUTH (RFC 4954).
	AuthMissingMechanism = r(502, 5, 5, 4, "Missing parameter")
	AuthNeedsTLS         = r(523, 5, 7, 10, "TLS is required")
	// AuthBadBase64 keeps the 454 devices have seen from Postern (RFC 4954
	// section 4 would have 501).
	AuthBadBase64 = r(454, 4, 7, 0, "Invalid base64 data")
	AuthCancelled = r(501, 5, 0, 0, "Negotiation cancelled")
	AuthSucceeded = r(235, 2, 0, 0, "Authentication succeeded")
	Vrfy          = r(252, 2, 5, 0, "Cannot VRFY user, but will accept message")
	Noop          = r(250, 2, 0, 0, "I have successfully done nothing")
	ResetDone     = r(250, 2, 0, 0, "Session reset")
	Bye           = r(221, 2, 0, 0, "Bye")
	QueuedOK      = r(250, 2, 0, 0, "OK: queued")
	// InternalError: a session failed unexpectedly; the connection closes.
	InternalError = r(421, 4, 0, 0, "Internal server error")
)

// ServiceReady is the greeting (RFC 5321 section 4.2, 220).
func ServiceReady(host string) *Reply {
	return &Reply{Code: 220, EnhancedCode: smtp.NoEnhancedCode, Message: host + " ESMTP Service Ready"}
}

// Hello answers HELO, and heads EHLO's capability list.
func Hello(domain string) *Reply { return r(250, 2, 0, 0, "Hello "+domain) }

// UnknownCommand: a verb Postern does not implement, whatever its length.
func UnknownCommand(verb string) *Reply {
	return r(500, 5, 5, 2, fmt.Sprintf("Syntax errors, %s command unrecognized", verb))
}

// NotImplemented: the obsolete commands (RFC 5321 section 4.2.4's 502).
func NotImplemented(verb string) *Reply { return r(502, 5, 5, 1, verb+" command not implemented") }

// DuringTransfer: a transaction command between BDAT chunks.
func DuringTransfer(verb string) *Reply {
	return r(502, 5, 5, 1, verb+" not allowed during message transfer")
}

// ParameterNotOffered: a MAIL or RCPT parameter of an extension Postern
// does not advertise (RFC 5321 section 4.1.1.11 says 555; go-smtp's 504 kept).
func ParameterNotOffered(name string) *Reply { return r(504, 5, 5, 4, name+" is not implemented") }

// MailAccepted and RcptAccepted are the 250 replies to MAIL and RCPT.
func MailAccepted(from string) *Reply {
	return r(250, 2, 0, 0, "Roger, accepting mail from <"+from+">")
}

// RcptAccepted is the 250 reply to RCPT.
func RcptAccepted(to string) *Reply { return r(250, 2, 0, 0, "I'll make sure <"+to+"> gets this") }

// Anonymous limits per recipient organization (issue 11).

// TooManyEnvelopeRecipients: an anonymous message names more recipients of
// one organization than its Set-TransportConfig -MaxRecipientEnvelopeLimit
// (Exchange Online: Unlimited, meaning 1000). 452 4.5.3 as RFC 5321 section
// 4.5.3.1.8 prescribes, so the client sends the rest in another transaction.
func TooManyEnvelopeRecipients(limit int) *Reply {
	return r(452, 4, 5, 3, fmt.Sprintf("Too many recipients; at most %d recipients per message are accepted (MaxRecipientEnvelopeLimit)", limit))
}

// RecipientMessageTooLarge: an anonymous message is larger than a recipient
// mailbox's MaxReceiveSize (default 36 MB), said at RCPT TO when MAIL FROM
// declared SIZE= (RFC 1870 section 6.1) or at end of DATA; the wording is
// that of MessageTooLarge, with the receiving limit named.
func RecipientMessageTooLarge(limitBytes int64) *Reply {
	return r(552, 5, 3, 4, fmt.Sprintf("Message size exceeds fixed maximum message size of %d bytes (the recipient's MaxReceiveSize %s)", limitBytes, sizeText(limitBytes)))
}

// Mailbox quotas (Set-Mailbox -ProhibitSendQuota -ProhibitSendReceiveQuota).
var (
	// MailboxFull: the recipient mailbox is at its ProhibitSendReceiveQuota.
	// Exchange Online's store driver refuses the delivery with "mailbox
	// full; STOREDRV.Deliver.Exception:QuotaExceededException..." (the NDR
	// of learn.microsoft.com/exchange/troubleshoot/email-delivery/
	// cannot-send-mail-mepf shows it as 554 5.2.2; MapiExceptionShutoffQuota
	// Exceeded is the exception of the send-and-receive quota). Postern says
	// it at RCPT TO, where RFC 5321 section 4.2.2 gives 552 "exceeded
	// storage allocation", so the sender's server bounces it at once.
	MailboxFull = r(552, 5, 2, 2, "mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded")
	// SenderMailboxFull: the authenticated mailbox is at its
	// ProhibitSendQuota (its Sent Items copies count); Exchange's end-of-DATA
	// text (reference section 3, SA smtp-submission-improvements.md).
	SenderMailboxFull = r(554, 5, 2, 2, "mailbox full; STOREDRV.Submission.Exception:QuotaExceededException.MapiExceptionQuotaExceeded")
)

// IMAP4 and POP3 sign-in texts, as Exchange Online's IMAP4 and POP3 services
// write them. IMAP sends them after the tag (NO, or BAD), POP3 after -ERR.
// Like the SMTP replies, only a client that proved its credentials is ever
// told something more than the generic failure.
const (
	// IMAPLoginFailed and IMAPAuthenticateFailed answer bad credentials, an
	// unknown user, Basic authentication blocked, or any refusal that must
	// not name a switch: "A00000002 NO LOGIN failed." and "A00000001 NO
	// AUTHENTICATE failed." (Exchange IMAP4 transcript,
	// github.com/jstedfast/MailKit/issues/483).
	IMAPLoginFailed        = "LOGIN failed."
	IMAPAuthenticateFailed = "AUTHENTICATE failed."
	// IMAPNotConnected: the credentials are right, but the mailbox cannot
	// be opened: IMAP is off for it (Set-CASMailbox -ImapEnabled $false),
	// or the user has no FullAccess on the shared mailbox named after the
	// backslash. Exchange accepts the LOGIN and then answers every command
	// "BAD User is authenticated but not connected." (transcripts in
	// github.com/jstedfast/MailKit/issues/1494, mscdex/node-imap#523 and
	// #689, which traces it to shared-mailbox access and to IMAP access).
	IMAPNotConnected = "User is authenticated but not connected."
	// POPLogonFailure answers USER/PASS for every refusal, POP3 being off
	// for the mailbox included: "-ERR Logon failure: unknown user name or
	// bad password." (Exchange POP3, github.com/mattnenterprise/rust-pop3
	// issues/17, github.com/ditesh/node-poplib/issues/34).
	POPLogonFailure = "Logon failure: unknown user name or bad password."
	// POPAuthenticationFailure answers AUTH (SASL, RFC 5034): "-ERR
	// Authentication failure: unknown user name or bad password."
	// (github.com/simonrob/email-oauth2-proxy/issues/244).
	POPAuthenticationFailure = "Authentication failure: unknown user name or bad password."
)
