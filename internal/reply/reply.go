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
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
	"time"

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
	// LegacyTLSRefused: AUTH over TLS 1.0 or 1.1 on the legacy listener
	// (--submission-legacy) for a mailbox whose organization has not opted
	// in (Set-TransportConfig -AllowLegacyTLSClients $false). Exchange
	// Online's reply to TLS 1.0/1.1 SMTP AUTH (seen in JavaMail's
	// AuthenticationFailedException); 421 closes the connection.
	LegacyTLSRefused = r(421, 4, 7, 66, "TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support TLS 1.2. Visit https://aka.ms/smtp_auth_tls.")
	// LegacyEndpointNotEnabled: AUTH over TLS 1.2 or later on the legacy
	// listener for such a mailbox. Microsoft: "Only mailboxes for
	// organizations with the setting enabled can send using that endpoint,
	// whatever TLS version is used" (opt-in-exchange-online-endpoint-for-
	// legacy-tls-using-smtp-auth.md); its reply text is not documented, so
	// the sentence follows the 5.7.139 family and names the switch.
	LegacyEndpointNotEnabled = r(535, 5, 7, 139, "Authentication unsuccessful, the legacy TLS endpoint is not enabled for the Tenant. Use the standard endpoint, or run Set-TransportConfig -AllowLegacyTLSClients $true.")
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
// named by an authenticated client (reference section 3, 5.1.10; Exchange
// says it in an NDR after acceptance, Postern at RCPT, so the device is told
// at once).
func RecipientNotFound(addr string) *Reply {
	return r(550, 5, 1, 10, fmt.Sprintf("RESOLVER.ADR.RecipientNotFound; Recipient %s not found by SMTP address lookup", addr))
}

// RecipientAccessDenied: directory-based edge blocking. Anonymous mail (Direct
// Send, connector relay, inbound mail) to an address of an Authoritative
// accepted domain that no mailbox holds is refused at RCPT TO (reference
// section 3, 5.4.1; the text with the AS(...) code Exchange Online adds).
var RecipientAccessDenied = r(550, 5, 4, 1, "Recipient address rejected: Access denied. AS(201806281)")

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

// RecipientLimitExceeded: the message has more recipients than the sender
// mailbox's RecipientLimits (default 500) or, for anonymous mail, than the
// recipient organization's MaxRecipientEnvelopeLimit (Unlimited, meaning
// 1000). Exchange refuses the whole message, not the recipients over the
// limit (reference section 4.1), with its categorizer's
// "550 5.5.3 RESOLVER.ADR.RecipLimit; too many recipients"; Postern says it
// at end of DATA, so nothing is accepted and then bounced.
var RecipientLimitExceeded = r(550, 5, 5, 3, "RESOLVER.ADR.RecipLimit; too many recipients")

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
	HeaderTooLarge = r(552, 5, 3, 4, "Header size exceeds fixed maximum size")
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
// conversation itself, before any of Postern's rules is asked. Each is
// Exchange's own line (the transcript of reference section 1.2; the rest from
// Exchange's transport, Microsoft.Exchange.Data.Transport.Smtp.SmtpResponse,
// as it appears on the wire in logs and Microsoft's telnet guides), so that a
// device or script written against Exchange Online reads the same words.
// Where RFC 5321 or 4954 prescribes a code, the code is the RFC's.
var (
	// TooManyConnections: the server's, or one address's, concurrent
	// connection cap, or one address's connection rate, is reached.
	// Exchange's receive connector text for MaxInboundConnection and
	// MaxInboundConnectionPerSource.
	TooManyConnections = r(421, 4, 3, 2, "The maximum number of concurrent connections has exceeded a limit, closing transmission channel")
	// IdleTimeout: the client said nothing for the idle timeout (RFC 5321
	// section 4.5.3.2 suggests 5 minutes), or only half a command line.
	// Exchange's ConnectionTimeout reply; the connection closes after it.
	IdleTimeout = r(451, 4, 7, 0, "Timeout waiting for client input")
	// CommandLineTooLong: a command line over 2,000 octets (RFC 5321
	// section 4.5.3.1.4 allows 512); the rest of it cannot be told from the
	// next command, so the connection closes.
	CommandLineTooLong = r(500, 5, 5, 2, "Command too long")
	// TooManyErrors ends a session that keeps sending bad commands
	// (Exchange's MaxProtocolErrors); 421 closes the channel.
	TooManyErrors = r(421, 4, 7, 0, "Too many errors on this connection, closing transmission channel")
	// EhloDomainRequired, HeloDomainRequired: EHLO or HELO without an
	// argument.
	EhloDomainRequired = r(501, 5, 0, 0, "EHLO requires domain address")
	HeloDomainRequired = r(501, 5, 0, 0, "HELO requires domain address")
	// InvalidDomainName: the EHLO or HELO argument is neither a domain nor
	// an address literal ("EHLO MacBook.."; Exchange Online's reply in
	// idx:60245553389).
	InvalidDomainName = r(501, 5, 5, 4, "Invalid domain name")
	// Commands out of sequence (RFC 5321 section 4.3.2's 503).
	IntroduceFirst       = r(503, 5, 5, 2, "Send hello first")
	MailFirst            = r(503, 5, 5, 2, "Need mail command")
	RcptFirst            = r(503, 5, 5, 2, "Need rcpt command")
	NestedMail           = r(503, 5, 5, 2, "Sender already specified")
	AlreadyAuthenticated = r(503, 5, 5, 2, "Auth command already specified")
	AlreadyTLS           = r(503, 5, 5, 2, "Only one STARTTLS command can be issued per session")
	// DuringTransfer: a transaction command between BDAT chunks.
	DuringTransfer = r(503, 5, 5, 1, "Bad sequence of commands")
	// ReadyToStartTLS answers STARTTLS (reference section 1.2).
	ReadyToStartTLS = r(220, 2, 0, 0, "SMTP server ready")
	// UnknownCommand: a verb Postern does not implement, whatever its
	// length, and STARTTLS where it is not offered.
	UnknownCommand = r(500, 5, 3, 3, "Unrecognized command")
	// NotImplemented: the obsolete commands (SEND, SOML, SAML, TURN) and
	// EXPN (RFC 5321 section 4.2.4's 502).
	NotImplemented = r(502, 5, 3, 3, "Command not implemented")
	// Arguments of MAIL, RCPT, DATA and BDAT (RFC 5321 section 4.1.2;
	// RFC 3030 section 2) that cannot be parsed.
	InvalidArguments = r(501, 5, 5, 4, "Invalid arguments")
	// UnrecognizedParameter: a MAIL or RCPT parameter Postern does not
	// know, or of an extension it does not advertise (DSN's NOTIFY, RET,
	// ENVID, ORCPT; REQUIRETLS; BINARYMIME).
	UnrecognizedParameter = r(501, 5, 5, 4, "Unrecognized parameter")
	BadBody               = r(501, 5, 5, 4, "Unsupported BODY type")
	// MailAccepted, RcptAccepted and StartData are the transcript's
	// replies to MAIL, RCPT and DATA (reference section 1.2).
	MailAccepted = r(250, 2, 1, 0, "Sender OK")
	RcptAccepted = r(250, 2, 1, 5, "Recipient OK")
	StartData    = &Reply{Code: 354, EnhancedCode: smtp.NoEnhancedCode, Message: "Start mail input; end with <CRLF>.<CRLF>"}
	// MessageAboveServerMaximum: the SIZE= parameter or the data itself is
	// over the server's maximum, whoever the sender is.
	MessageAboveServerMaximum = r(552, 5, 3, 4, "Message size exceeds fixed maximum message size")
	// TooManyRecipientsInTransaction is the engine's backstop above every
	// per-mailbox or per-organization limit (RFC 5321 section 4.5.3.1.8);
	// Exchange's receive connector text.
	TooManyRecipientsInTransaction = r(452, 4, 5, 3, "Too many recipients")
	// AUTH (RFC 4954). AuthBadBase64 is section 4's 501 5.5.2 for a
	// response that is not base64; AuthCancelled answers "*".
	AuthBadBase64 = r(501, 5, 5, 2, "Cannot Decode response")
	AuthCancelled = r(501, 5, 5, 4, "Authentication cancelled")
	AuthSucceeded = r(235, 2, 7, 0, "Authentication successful")
	Vrfy          = r(252, 2, 1, 5, "Cannot VRFY user")
	Noop          = r(250, 2, 0, 0, "OK")
	ResetDone     = r(250, 2, 0, 0, "Resetting")
	Bye           = r(221, 2, 0, 0, "Service closing transmission channel")
	QueuedOK      = r(250, 2, 0, 0, "OK")
	// Help lists the commands as Exchange's HELP does.
	Help = &Reply{Code: 214, EnhancedCode: smtp.NoEnhancedCode, Message: "This server supports the following commands:\nHELO EHLO STARTTLS RCPT DATA RSET MAIL QUIT HELP AUTH BDAT"}
	// InternalError: a session failed unexpectedly; the connection closes.
	InternalError = r(421, 4, 3, 2, "System not accepting network messages")
)

// ServiceReady is the greeting (RFC 5321 section 4.2, 220), in Exchange's
// shape: "<host> Microsoft ESMTP MAIL Service ready at <date> [<id>]"
// (reference section 1.2), with Postern's name and the connection's session
// ID, which the message trace and the server log also show.
func ServiceReady(host string, now time.Time, sessionID string) *Reply {
	return &Reply{Code: 220, EnhancedCode: smtp.NoEnhancedCode,
		Message: fmt.Sprintf("%s Postern ESMTP MAIL Service ready at %s [%s]", host, now.UTC().Format(time.RFC1123Z), sessionID)}
}

// Hello answers HELO: "<host> Hello [<client address>]".
func Hello(host string, client netip.Addr) *Reply {
	return &Reply{Code: 250, EnhancedCode: smtp.NoEnhancedCode, Message: helloLine(host, client)}
}

func helloLine(host string, client netip.Addr) string {
	return fmt.Sprintf("%s Hello [%s]", host, client)
}

// Capabilities answers EHLO: the Hello line, then the extensions in the
// order Exchange Online lists them (reference section 1.2: SIZE,
// PIPELINING, DSN, ENHANCEDSTATUSCODES, STARTTLS, AUTH, 8BITMIME,
// BINARYMIME, CHUNKING, SMTPUTF8), those Postern does not offer left out.
// mechanisms is empty when AUTH is not offered.
func Capabilities(host string, client netip.Addr, maxSize int64, startTLS bool, mechanisms []string, smtpUTF8 bool) *Reply {
	lines := []string{helloLine(host, client), fmt.Sprintf("SIZE %d", maxSize), "PIPELINING", "ENHANCEDSTATUSCODES"}
	if startTLS {
		lines = append(lines, "STARTTLS")
	}
	if len(mechanisms) > 0 {
		lines = append(lines, "AUTH "+strings.Join(mechanisms, " "))
	}
	lines = append(lines, "8BITMIME", "CHUNKING")
	if smtpUTF8 {
		lines = append(lines, "SMTPUTF8")
	}
	return &Reply{Code: 250, EnhancedCode: smtp.NoEnhancedCode, Message: strings.Join(lines, "\n")}
}

// AuthChallenge is a SASL server challenge (RFC 4954 section 4: 334 and
// the challenge in base64, empty for none).
func AuthChallenge(challenge []byte) *Reply {
	return &Reply{Code: 334, EnhancedCode: smtp.NoEnhancedCode, Message: base64.StdEncoding.EncodeToString(challenge)}
}

// ChunkReceived answers a BDAT chunk that is not the last (RFC 3030
// section 2), as Exchange does.
func ChunkReceived(octets int64) *Reply {
	return r(250, 2, 6, 0, fmt.Sprintf("CHUNK received OK, %d octets", octets))
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
