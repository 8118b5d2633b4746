// Package dsn builds delivery status notifications: non-delivery reports
// and delay notices in the format of RFC 3464 (message/delivery-status)
// inside a multipart/report (RFC 6522), sent from the null reverse-path
// (RFC 5321 §4.5.5) and marked Auto-Submitted (RFC 3834).
//
// It is pure: no I/O and no clock. Everything that comes from outside (the
// remote server's reply, addresses, host names, the original subject) is
// sanitised, so a hostile reply cannot add header fields or parts.
package dsn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"
)

// Action is the per-recipient Action field (RFC 3464 §2.3.3).
type Action string

const (
	Failed  Action = "failed"
	Delayed Action = "delayed"
)

// Recipient is one recipient's outcome.
type Recipient struct {
	Address        string // Final-Recipient: rfc822; ...
	Action         Action
	Status         string // enhanced status code (RFC 3463), e.g. "5.1.1"
	RemoteMTA      string // the remote server's host name, "" if none was reached
	Diagnostic     string // the remote server's reply, "" if none
	LastAttempt    time.Time
	WillRetryUntil time.Time // Delayed only
}

// Report is one notification about one message.
type Report struct {
	ReportingMTA      string
	From              string // the notification's From address
	To                string // the original envelope sender
	Date              time.Time
	MessageID         string // without <>
	ArrivalDate       time.Time
	OriginalMessageID string // without <>
	OriginalSubject   string
	Recipients        []Recipient
	// Original is the original message, or, when it is larger than
	// MaxReturn, at least its first MaxReturn+1 octets: a caller streaming
	// a large message from disk reads no more than that, and only the
	// header section found in them is returned (RFC 3464 section 2 and
	// RFC 6522 section 3 allow the headers alone).
	Original []byte
	// ReturnContent attaches the whole original (message/rfc822) rather
	// than its header section (text/rfc822-headers); MaxReturn > 0 caps the
	// size returned whole.
	ReturnContent bool
	MaxReturn     int
}

const dateFormat = "Mon, 02 Jan 2006 15:04:05 -0700"

// maxDiagnostic caps a diagnostic taken from a remote reply.
const maxDiagnostic = 900

// Build returns the notification message with CRLF line endings.
func Build(r Report) ([]byte, error) {
	if err := check(r); err != nil {
		return nil, err
	}
	original := crlf(r.Original)
	header, _ := splitHeader(original)
	whole := r.ReturnContent && (r.MaxReturn <= 0 || len(original) <= r.MaxReturn)
	returned := header
	if whole {
		returned = original
	}
	boundary := pickBoundary(r.MessageID, returned)
	action := r.Recipients[0].Action

	var b bytes.Buffer
	subject := "Undeliverable: "
	if action == Delayed {
		subject = "Delivery delayed: "
	}
	subject += clean(r.OriginalSubject, 200)
	fmt.Fprintf(&b, "From: Mail Delivery System <%s>\r\n", clean(r.From, 256))
	fmt.Fprintf(&b, "To: <%s>\r\n", clean(r.To, 256))
	fmt.Fprintf(&b, "Date: %s\r\n", r.Date.Format(dateFormat))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Message-ID: <%s>\r\n", clean(r.MessageID, 256))
	if r.OriginalMessageID != "" {
		id := clean(r.OriginalMessageID, 256)
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", id, id)
	}
	b.WriteString("MIME-Version: 1.0\r\nAuto-Submitted: auto-replied\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n", boundary)
	b.WriteString("This is a delivery status notification (RFC 3464).\r\n")

	// Part 1: for people, in Exchange Online's words.
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary)
	b.WriteString(humanText(r))

	// Part 2: for programs (RFC 3464 §2).
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary)
	fmt.Fprintf(&b, "Reporting-MTA: dns; %s\r\n", clean(r.ReportingMTA, 256))
	if !r.ArrivalDate.IsZero() {
		fmt.Fprintf(&b, "Arrival-Date: %s\r\n", r.ArrivalDate.Format(dateFormat))
	}
	for _, rc := range r.Recipients {
		fmt.Fprintf(&b, "\r\nFinal-Recipient: rfc822; %s\r\n", clean(rc.Address, 256))
		fmt.Fprintf(&b, "Action: %s\r\nStatus: %s\r\n", rc.Action, rc.Status)
		if rc.RemoteMTA != "" {
			fmt.Fprintf(&b, "Remote-MTA: dns; %s\r\n", clean(rc.RemoteMTA, 256))
		}
		if d := clean(rc.Diagnostic, maxDiagnostic); d != "" {
			fmt.Fprintf(&b, "Diagnostic-Code: smtp; %s\r\n", fold(d))
		}
		if !rc.LastAttempt.IsZero() {
			fmt.Fprintf(&b, "Last-Attempt-Date: %s\r\n", rc.LastAttempt.Format(dateFormat))
		}
		if rc.Action == Delayed && !rc.WillRetryUntil.IsZero() {
			fmt.Fprintf(&b, "Will-Retry-Until: %s\r\n", rc.WillRetryUntil.Format(dateFormat))
		}
	}

	// Part 3: the original, whole or its header (RFC 6522 §3).
	if whole {
		fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: message/rfc822\r\n\r\n", boundary)
	} else {
		fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary)
	}
	b.Write(returned)
	if !bytes.HasSuffix(returned, []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return b.Bytes(), nil
}

func check(r Report) error {
	switch {
	case len(r.Recipients) == 0:
		return errors.New("dsn: no recipients")
	case r.To == "" || r.From == "" || r.ReportingMTA == "":
		return errors.New("dsn: To, From and ReportingMTA are required")
	}
	for _, rc := range r.Recipients {
		if rc.Action != r.Recipients[0].Action {
			return errors.New("dsn: recipients with different actions")
		}
		if rc.Action != Failed && rc.Action != Delayed {
			return fmt.Errorf("dsn: unknown action %q", rc.Action)
		}
		if !validStatus(rc.Status) {
			return fmt.Errorf("dsn: status %q is not class.subject.detail", rc.Status)
		}
	}
	return nil
}

// validStatus checks an RFC 3463 code: class 2, 4 or 5, then two numbers
// of one to three digits.
func validStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

func humanText(r Report) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	if r.Recipients[0].Action == Failed {
		for _, rc := range r.Recipients {
			line("Your message to %s couldn't be delivered.", clean(rc.Address, 256))
		}
		line("")
		for _, rc := range r.Recipients {
			reason := clean(rc.Diagnostic, maxDiagnostic)
			if reason == "" {
				reason = rc.Status
			}
			line("%s", clean(rc.Address, 256))
			line("Remote server returned '%s'", reason)
			line("")
		}
	} else {
		line("Delivery to the following recipients has been delayed.")
		line("")
		for _, rc := range r.Recipients {
			line("%s", clean(rc.Address, 256))
			if d := clean(rc.Diagnostic, maxDiagnostic); d != "" {
				line("Last error: '%s'", d)
			}
			if !rc.WillRetryUntil.IsZero() {
				line("The server will keep trying to deliver this message until %s.", rc.WillRetryUntil.Format(dateFormat))
			}
			line("")
		}
		line("You don't need to resend your message.")
		line("")
	}
	line("Diagnostic information for administrators:")
	line("Generating server: %s", clean(r.ReportingMTA, 256))
	for _, rc := range r.Recipients {
		if rc.RemoteMTA != "" {
			line("Remote server for %s: %s", clean(rc.Address, 256), clean(rc.RemoteMTA, 256))
		}
	}
	return b.String()
}

// clean makes text from outside safe for one header or body line: control
// characters (CR and LF above all) become spaces, runs of spaces collapse,
// and the result is at most max octets.
func clean(s string, max int) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			r = ' '
		}
		if r == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteRune(r)
	}
	out := strings.TrimSpace(b.String())
	if len(out) > max {
		out = out[:max]
		for len(out) > 0 && out[len(out)-1]&0xc0 == 0x80 { // do not cut a UTF-8 sequence
			out = out[:len(out)-1]
		}
		if len(out) > 0 && out[len(out)-1] >= 0xc0 {
			out = out[:len(out)-1]
		}
	}
	return out
}

// fold breaks a long field value at spaces (RFC 5322 §2.2.3) so lines stay
// under 78 octets where a space allows.
func fold(s string) string {
	var b strings.Builder
	n := len("Diagnostic-Code: smtp; ")
	for i, w := range strings.Split(s, " ") {
		if i > 0 {
			if n+1+len(w) > 76 {
				b.WriteString("\r\n ")
				n = 1
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// crlf turns bare LF (and bare CR) into CRLF.
func crlf(b []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/40)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out.WriteString("\r\n")
			i++
		case c == '\r' || c == '\n':
			out.WriteString("\r\n")
		default:
			out.WriteByte(c)
		}
	}
	return out.Bytes()
}

// splitHeader returns the header section (with its ending blank line) and
// the body; without a blank line, all of it is header.
func splitHeader(msg []byte) (header, body []byte) {
	if bytes.HasPrefix(msg, []byte("\r\n")) {
		return msg[:2], msg[2:]
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+4], msg[i+4:]
	}
	return msg, nil
}

// pickBoundary derives a boundary from the notification's Message-ID and
// makes sure the returned content does not contain it (RFC 2046 §5.1.1).
func pickBoundary(seed string, content []byte) string {
	for i := 0; ; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", seed, i)))
		b := "=_dsn_" + hex.EncodeToString(sum[:12])
		if !bytes.Contains(content, []byte(b)) {
			return b
		}
	}
}
