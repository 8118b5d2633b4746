package smtpclient

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits on what a server may send. RFC 5321 §4.5.3.1.5 caps a reply line
// at 512 octets; real servers exceed that a little (long EHLO keywords,
// verbose rejections), so the cap is generous, but it is a cap: a remote
// that streams an endless line must not exhaust memory.
const (
	maxReplyLine  = 4096
	maxReplyLines = 200
)

// Reply is a server's reply (RFC 5321 §4.2).
type Reply struct {
	Code     int
	Enhanced string   // RFC 3463 enhanced status code, "" if the server sent none
	Lines    []string // the text of each line, without code and separator
}

// String renders the reply on one line, as Diagnostic-Code and the queue's
// LastError show it: "550 5.1.1 user unknown".
func (r *Reply) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", r.Code)
	if r.Enhanced != "" {
		b.WriteString(" " + r.Enhanced)
	}
	for _, l := range r.Lines {
		if r.Enhanced != "" {
			l = strings.TrimPrefix(strings.TrimPrefix(l, r.Enhanced), " ")
		}
		if l != "" {
			b.WriteString(" " + l)
		}
	}
	return b.String()
}

// Class is the first digit: 2 success, 3 intermediate, 4 temporary failure,
// 5 permanent failure.
func (r *Reply) Class() int { return r.Code / 100 }

// errMalformed reports a reply that is not one (RFC 5321 §4.2): a server
// that sends such a thing is broken, and the delivery is retried later.
var errMalformed = errors.New("malformed reply")

// readReply reads one possibly multiline reply. Every line must carry the
// same three-digit code; "ddd-" continues, "ddd " or "ddd" ends (§4.2.1).
func readReply(r *bufio.Reader) (*Reply, error) {
	rep := &Reply{}
	for {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		if len(line) < 3 || !isDigits(line[:3]) || line[0] < '2' || line[0] > '5' {
			return nil, fmt.Errorf("%w: %q", errMalformed, clip(line))
		}
		code := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
		if rep.Code != 0 && code != rep.Code {
			return nil, fmt.Errorf("%w: code changed from %d to %d within one reply", errMalformed, rep.Code, code)
		}
		rep.Code = code
		more := false
		text := ""
		if len(line) > 3 {
			switch line[3] {
			case '-':
				more = true
			case ' ':
			default:
				return nil, fmt.Errorf("%w: %q", errMalformed, clip(line))
			}
			text = line[4:]
		}
		if len(rep.Lines) == 0 {
			rep.Enhanced = enhancedCode(text, rep.Code)
		}
		rep.Lines = append(rep.Lines, text)
		if !more {
			return rep, nil
		}
		if len(rep.Lines) >= maxReplyLines {
			return nil, fmt.Errorf("%w: more than %d lines", errMalformed, maxReplyLines)
		}
	}
}

// readLine reads one CRLF- (or LF-) terminated line of at most maxReplyLine
// octets.
func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > maxReplyLine {
			return "", fmt.Errorf("%w: reply line longer than %d octets", errMalformed, maxReplyLine)
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

// enhancedCode returns the RFC 3463 code that starts text, when its class
// agrees with the reply code (RFC 2034 §4).
func enhancedCode(text string, code int) string {
	word, _, _ := strings.Cut(text, " ")
	parts := strings.Split(word, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || parts[0][0] != byte('0'+code/100) {
		return ""
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 || !isDigits(p) {
			return ""
		}
	}
	return word
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// clip shortens text from outside for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
