package smtpserver

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"postern.dev/postern/internal/reply"
)

// Observer is told what the metrics count. Its methods are called from
// connection goroutines and must not block.
type Observer interface {
	// Opened: a connection was admitted. Closed follows, with how it ended.
	Opened()
	Closed(outcome string)
	// Refused: a connection over a cap was answered 421 and closed
	// (no Opened or Closed for it).
	Refused()
	// Replied: a reply was sent.
	Replied(r *reply.Reply)
}

// How a connection ended: a closed set, for a metric label.
const (
	OutcomeQuit           = "quit"             // the client sent QUIT
	OutcomeDisconnected   = "disconnected"     // the client closed (or reset) without QUIT
	OutcomeTimeout        = "timeout"          // the idle timeout ended it (421 4.4.2)
	OutcomeShutdown       = "shutdown"         // the server is stopping (421)
	OutcomeClosedByServer = "closed_by_server" // another 421: too many AUTH failures, throttled
	OutcomeTLSFailed      = "tls_failed"       // the TLS handshake failed
	OutcomeError          = "error"            // too many bad commands, an overlong line, a panic
	OutcomeRefused        = "refused"          // over a connection cap before any session
)

// newSessionID returns 16 upper-case hex digits from crypto/rand, the shape
// of Exchange's protocol-log SessionId: unique enough to find one
// connection's lines among years of logs, and safe in a Received field's
// "id" clause (RFC 5321 section 4.4, an Atom).
func newSessionID() string {
	var b [8]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
