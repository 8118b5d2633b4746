package pop3

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sync"
)

// messageBufferSize is the read buffer a RETR or TOP streams through: the
// memory a transfer costs, whatever the message's size. A line longer than
// this passes through in pieces.
const messageBufferSize = 32 << 10

var messageReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, messageBufferSize) }}

// errSource wraps a failure to read the message (as opposed to a failure
// to write to the client).
type errSource struct{ err error }

func (e errSource) Error() string { return "reading the message: " + e.err.Error() }
func (e errSource) Unwrap() error { return e.err }

// writeMessage streams a message from src to w as a POP3 multi-line
// response body (RFC 1939 §3): every line ended by CRLF (a bare LF becomes
// CRLF; a CR inside a line is kept), a line beginning with "." stuffed
// with another ".", a last line without its end given one, then the
// terminating ".\r\n". With bodyLines < 0 the whole message is sent (RETR);
// otherwise the header, the empty line that ends it and the first
// bodyLines lines of the body (TOP, RFC 1939 §7). Memory is one pooled
// buffer, whatever the size of the message or of its lines.
func writeMessage(w io.Writer, src io.Reader, bodyLines int) error {
	br := messageReaders.Get().(*bufio.Reader)
	br.Reset(src)
	defer func() {
		br.Reset(nil)
		messageReaders.Put(br)
	}()

	var (
		atStart   = true  // at the start of a line
		lineEmpty = true  // the current line has no content so far
		pendingCR = false // a CR ended the last piece of a long line; its meaning waits for the next byte
		inHeader  = true
		remaining = bodyLines
		werr      error
	)
	write := func(b []byte) {
		if werr == nil && len(b) > 0 {
			_, werr = w.Write(b)
		}
	}
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if atStart && chunk[0] == '.' {
				write(dot)
			}
			complete := chunk[len(chunk)-1] == '\n'
			content := chunk
			if complete {
				content = chunk[:len(chunk)-1]
			}
			if pendingCR {
				pendingCR = false
				if !complete || len(content) > 0 {
					// The held CR was inside the line, not its end.
					write(cr)
					lineEmpty = false
				}
			}
			if n := len(content); n > 0 && content[n-1] == '\r' {
				content = content[:n-1]
				if !complete {
					pendingCR = true
				}
			}
			if len(content) > 0 {
				lineEmpty = false
			}
			write(content)
			atStart = complete
			if complete {
				write(crlf)
				if bodyLines >= 0 {
					if inHeader {
						inHeader = !lineEmpty
						if !inHeader && remaining == 0 {
							break
						}
					} else if remaining--; remaining <= 0 {
						break
					}
				}
				lineEmpty = true
			}
		}
		if werr != nil {
			return werr
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return errSource{err}
		}
	}
	if !atStart {
		write(crlf) // a held CR at the very end was the line's end
	}
	write(terminator)
	return werr
}

var (
	dot        = []byte(".")
	cr         = []byte("\r")
	crlf       = []byte("\r\n")
	terminator = []byte(".\r\n")
)

// uidlOf is the unique-id a UID is shown as: itself when RFC 1939 §7
// allows it (1 to 70 characters in 0x21-0x7E), otherwise a stable digest
// of it, so that a store's odd identifier still gives a valid, unchanging
// UIDL.
func uidlOf(uid string) string {
	if len(uid) >= 1 && len(uid) <= 70 {
		ok := true
		for i := 0; i < len(uid); i++ {
			if c := uid[i]; c < 0x21 || c > 0x7e {
				ok = false
				break
			}
		}
		if ok {
			return uid
		}
	}
	sum := sha256.Sum256([]byte(uid))
	return "x" + hex.EncodeToString(sum[:20])
}

// isGone reports a Maildrop.Open error meaning the message was removed.
func isGone(err error) bool { return errors.Is(err, ErrMessageGone) }
