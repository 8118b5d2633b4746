package pop3

import (
	"context"
	"errors"
	"io"
	"net/netip"
)

// Authenticator decides who may sign in and opens the maildrop they may
// read. The sign-in service implements it (throttling, lockout, policy,
// shared mailboxes); this package only asks. A refused sign-in returns a
// *Refusal; any other error is taken as a temporary failure of the service
// ([SYS/TEMP]) whose text reveals nothing.
type Authenticator interface {
	// Basic is USER/PASS or SASL PLAIN.
	Basic(ctx context.Context, ip netip.Addr, username, password string) (Maildrop, error)
	// OAuth is SASL XOAUTH2 or OAUTHBEARER; user is the SASL user
	// (XOAUTH2 user=, OAUTHBEARER a=), possibly empty.
	OAuth(ctx context.Context, ip netip.Addr, user, token string) (Maildrop, error)
}

// Maildrop is one mailbox's Inbox as POP3 sees it. The session asks for
// its list of messages once, at sign-in, and numbers them from that
// snapshot for the whole session (RFC 1939 §8: the maildrop is fixed for
// the session; mail arriving later shows in the next one).
type Maildrop interface {
	// Messages lists at most limit messages, oldest first. A mailbox
	// holding more shows its oldest limit messages this session: the
	// client that downloads and deletes them sees the rest next time.
	Messages(ctx context.Context, limit int) ([]Message, error)
	// Open returns a message's content (RFC 5322, any line endings; the
	// session sends CRLF). An error wrapping ErrMessageGone means the
	// message was removed since the snapshot (by IMAP, say).
	Open(ctx context.Context, uid string) (io.ReadCloser, error)
	// Delete removes messages. It is called only in the UPDATE state,
	// after QUIT (RFC 1939 §6), with the UIDs the client marked.
	Delete(ctx context.Context, uids []string) error
	// Close releases the maildrop; called once when the session ends,
	// however it ends.
	Close() error
}

// SeenMarker is a Maildrop that records which messages were read. When
// the Maildrop implements it, QUIT marks the messages RETR sent whole
// (not TOP, and not those deleted) as read before deleting, as Exchange
// does, so that IMAP and the web show them read. Its failure is logged,
// not reported to the client.
type SeenMarker interface {
	MarkSeen(ctx context.Context, uids []string) error
}

// Message is one message of a maildrop's snapshot.
type Message struct {
	// UID identifies the message for good (UIDL, RFC 1939 §7): the same
	// message has the same UID in every session, and a UID is never
	// reused. RFC 1939 allows 1 to 70 characters 0x21-0x7E; a UID outside
	// that is shown as a stable digest of itself.
	UID string
	// Size is the message's size in octets with CRLF line endings, as
	// RETR sends it before dot-stuffing (LIST, STAT).
	Size int64
}

// ErrMessageGone is what Maildrop.Open wraps when the message no longer
// exists.
var ErrMessageGone = errors.New("message no longer in the mailbox")

// Refusal is a refused sign-in, as the sign-in service decides it.
type Refusal struct {
	// Temporary: throttled, busy, identity provider unreachable. The
	// reply carries [SYS/TEMP] (RFC 3206) and is not counted as a failed
	// attempt.
	Temporary bool
	// Close: answer, then close the connection (a blocked address).
	Close bool
	// Text replaces the generic failure text (Exchange's "Logon failure:
	// unknown user name or bad password." for PASS, "Authentication
	// failure: ..." for AUTH). It may begin with its own RFC 2449
	// response code ("[IN-USE] ...", "[LOGIN-DELAY] ..."); then no other
	// code is added.
	Text string
}

func (r *Refusal) Error() string {
	if r.Text != "" {
		return "pop3 sign-in refused: " + r.Text
	}
	if r.Temporary {
		return "pop3 sign-in refused temporarily"
	}
	return "pop3 sign-in refused"
}

// ErrBadCredentials is the plain refusal: wrong user name or password, or
// a token that does not verify.
var ErrBadCredentials = &Refusal{}
