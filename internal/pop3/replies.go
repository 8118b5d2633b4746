package pop3

import "postern.dev/postern/internal/reply"

// The catalogue of replies. Texts are Exchange's wherever Exchange's are
// known, so that what a client shows its user, and what an admin finds
// searching the web for it, is what Exchange Online would have said.
// Sources (reference notation of /work/shared/reference/exchange-online.md):
//   - [OBS] Exchange Online transcripts: greeting and CAPA at
//     outlook.office365.com:995 (kisli/vmime#267, MailKit#1496), the logon
//     failure (mattnenterprise/rust-pop3#17, nicm/fdm#123), "+OK User
//     successfully logged on." and the QUIT text (public client tests).
//   - [OBS] idx: Exchange 2013's POP3 server (Microsoft.Exchange.Pop3,
//     decompiled in the public code index): Pop3RequestPass (idx:11671174285),
//     Pop3RequestAuth (idx:11864614884), Pop3RequestCapa (idx:10947385910),
//     Pop3ResponseFactory (idx:11692941039: "Protocol error. NN",
//     "Command is not valid in this state.", "Connection is closed. 12"
//     on timeout, "Server Unavailable. 21"), Pop3RequestWithIntParameters
//     (idx:11068903643: the two message-number refusals), Pop3RequestStls
//     (idx:11411984992).
//
// Postern's own texts (no Exchange equivalent known) are marked so.
const (
	// greeting: Exchange Online adds " [base64 of its server name]".
	greeting = "+OK The Microsoft Exchange POP3 service is ready."

	okBare       = "+OK"
	okLoggedOn   = "+OK User successfully logged on."
	okAuthed     = "+OK User successfully authenticated."
	okBeginTLS   = "+OK Begin TLS negotiation."
	okSigningOff = "+OK Microsoft Exchange Server POP3 server signing off."
	// The refusals of credentials are in the reply catalogue, beside
	// SMTP's and IMAP's, with their sources.
	textLogonFail = reply.POPLogonFailure
	textAuthFail  = reply.POPAuthenticationFailure
	textAuthCancl = "The AUTH protocol exchange was canceled by the client."

	// errBadState answers a command not allowed in the session's state,
	// including USER, PASS and AUTH before STLS on port 110 (Exchange's
	// LoginType SecureLogin).
	errBadState = "-ERR Command is not valid in this state."
	// errBadArgument: a message number or line count that is not a
	// positive number (Exchange "Protocol error. 14"; also an unknown SASL
	// mechanism).
	errBadArgument = "-ERR Protocol error. 14"
	// errArgumentCount: missing or extra arguments.
	errArgumentCount = "-ERR Protocol error. 16"
	// errNotASCII: a command line with bytes outside printable ASCII.
	errNotASCII = "-ERR Protocol error. 17"
	// errUnknownCommand: no such command (APOP among them: not offered).
	errUnknownCommand = "-ERR Protocol error. 19"
	// errOutOfRange: a message number past the snapshot.
	errOutOfRange = "-ERR The specified message is out of range."
	// errDeleted: a message marked deleted in this session, or removed
	// from the mailbox since the snapshot.
	errDeleted = "-ERR The requested message is no longer available; it may have been deleted."
	// errTimeout: the autologout timer (RFC 1939 §3) expired.
	errTimeout = "-ERR Connection is closed. 12"
	// errUnavailable: a failure of the store or the sign-in service.
	errUnavailable = "-ERR [SYS/TEMP] Server Unavailable. 21"
	// errTLSFailed: STLS accepted but no TLS could be started.
	errTLSFailed = "-ERR Server configuration error."

	// closing is appended (as its own line, as Exchange does) to the
	// reply after which the server closes: the third failed sign-in or
	// the third bad command.
	closing = "\r\nConnection is closed. 21"

	// Postern's own texts.
	errLineTooLong  = "-ERR Command line too long." + closing
	errShuttingDown = "-ERR [SYS/TEMP] The service is shutting down." + closing
	// errNotRemoved is RFC 1939 §6's reply when the UPDATE state fails.
	errNotRemoved = "-ERR [SYS/TEMP] Some deleted messages were not removed."
)

// saslMechanisms is what SASL offers, in CAPA and in a bare AUTH (Exchange
// Online offers PLAIN and XOAUTH2; OAUTHBEARER is RFC 7628's standard).
var saslMechanisms = []string{"PLAIN", "XOAUTH2", "OAUTHBEARER"}
