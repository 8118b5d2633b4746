package smtpserver

import (
	"bufio"
	"bytes"
	"io"

	"postern.dev/postern/internal/reply"
)

// dataReader yields the message of a DATA command (RFC 5321 section
// 4.1.1.4): it removes the leading dot that section 4.5.2 adds to lines
// starting with one and ends at the only terminator RFC 5321 knows,
// CRLF "." CRLF. It never buffers the message: it streams straight from
// the connection's reader.
//
// Everything else passes through unchanged, bare CR and bare LF included, so
// that the message checks downstream see them and refuse the message (SMTP
// smuggling relies on a receiver that ends data at "\n.\n", or at
// ".\r" + anything, where another does not). In particular a line that
// starts with ".\r" not followed by LF is passed on as "\r..." with its
// bare CR visible; go-smtp's reader dropped the ".\r" and hid it.
type dataReader struct {
	r *bufio.Reader
	// max is how many message bytes are accepted; maxLine how long a line
	// may be (RFC 5321 section 4.5.3.1.6 allows 1,000 octets; Postern
	// takes twice that, as is customary).
	max     int64
	maxLine int

	state   int
	n       int64 // message bytes yielded
	lineLen int
	// pending holds a byte the state machine decided to emit while the
	// caller's buffer was full.
	pending []byte
	buf     []byte
	err     error
}

const (
	stateBeginLine = iota // after CRLF, or at the start
	stateDot              // a dot at the start of a line, not yet emitted
	stateDotCR            // the dot, then CR: the terminator if LF follows
	stateCR               // a CR inside a line
	stateData             // inside a line
	stateEOF              // CRLF.CRLF was read
)

func newDataReader(r *bufio.Reader, max int64, maxLine int) *dataReader {
	return &dataReader{r: r, max: max, maxLine: maxLine, buf: make([]byte, 0, 2)}
}

// errLineTooLong and errTooLarge are the reader's own errors; the engine
// tells them apart from the session's refusals.
var (
	errLineTooLong = reply.LineTooLong
	errTooLarge    = reply.MessageAboveServerMaximum
)

func (d *dataReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && d.err == nil {
		if len(d.pending) > 0 {
			c := copy(p[n:], d.pending)
			d.pending = d.pending[c:]
			n += c
			continue
		}
		if d.state == stateEOF {
			d.err = io.EOF
			break
		}
		// Fast path: whole lines that end in CRLF and do not start with a
		// dot, and the start of a line up to its first CR or LF, are copied
		// in one piece straight from the connection's buffer. Anything
		// else (a dot at the start of a line, a bare CR or LF, a line over
		// the limit, the terminator) goes through step, byte by byte.
		if (d.state == stateData || d.state == stateBeginLine) && d.r.Buffered() > 0 {
			buf, _ := d.r.Peek(min(d.r.Buffered(), len(p)-n))
			if run, state, lineLen := d.scanRun(buf); run > 0 {
				if !d.count(int64(run)) {
					break
				}
				copy(p[n:], buf[:run])
				d.r.Discard(run)
				n += run
				d.state, d.lineLen = state, lineLen
				continue
			}
		}
		// Inside a line, copy up to the next CR or LF.
		if d.state == stateData && d.r.Buffered() > 0 {
			buf, _ := d.r.Peek(min(d.r.Buffered(), len(p)-n))
			i := bytes.IndexAny(buf, "\r\n")
			if i < 0 {
				i = len(buf)
			}
			if i > 0 {
				if d.lineLen+i > d.maxLine {
					d.err = errLineTooLong
					break
				}
				if !d.count(int64(i)) {
					break
				}
				copy(p[n:], buf[:i])
				d.r.Discard(i)
				n += i
				d.lineLen += i
				continue
			}
		}
		c, err := d.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			d.err = err
			break
		}
		out := d.step(c)
		if len(out) == 0 {
			continue
		}
		if !d.count(int64(len(out))) {
			break
		}
		c0 := copy(p[n:], out)
		n += c0
		if c0 < len(out) {
			d.pending = append(d.pending[:0], out[c0:]...)
		}
	}
	if n > 0 && d.err != nil && d.err != io.EOF {
		// Hand over what was read; the error comes with the next call.
		return n, nil
	}
	return n, d.err
}

// count adds n yielded bytes, failing once the message is over the maximum.
func (d *dataReader) count(n int64) bool {
	if d.n+n > d.max {
		d.err = errTooLarge
		return false
	}
	d.n += n
	return true
}

// step advances the state machine by one byte and returns what to emit
// (at most two bytes, in d.buf).
func (d *dataReader) step(c byte) []byte {
	d.buf = d.buf[:0]
	switch {
	case d.state == stateBeginLine && c == '.':
		d.state = stateDot
		return nil
	case d.state == stateDot && c == '\r':
		d.state = stateDotCR
		return nil
	case d.state == stateDotCR && c == '\n':
		d.state = stateEOF
		return nil
	case d.state == stateDotCR:
		// ".\r" and something else: a bare CR, passed on so that it is
		// refused downstream. The byte after it is judged as after any CR.
		d.state = stateCR
		d.lineLen++
		d.buf = append(d.buf, '\r')
	}
	switch c {
	case '\r':
		// Not counted: a line's length is what stands before its CRLF.
		d.state = stateCR
		return append(d.buf, c)
	case '\n':
		if d.state == stateCR {
			d.state = stateBeginLine
		} else {
			d.state = stateData // a bare LF starts no line (only CRLF does)
		}
		d.lineLen = 0
		return append(d.buf, c)
	default:
		d.state = stateData
	}
	d.lineLen++
	if d.lineLen > d.maxLine {
		d.err = errLineTooLong
		return nil
	}
	return append(d.buf, c)
}

// scanRun measures the longest prefix of buf that needs no decision of
// step: lines ended by CRLF, within maxLine and not starting with a dot,
// then the start of a line up to its first CR or LF. It returns that
// prefix's length and the state and line length after it; 0 leaves
// everything to step. Line ends are found with bytes.IndexByte
// (vectorised), so a message of ordinary lines costs two scans per line
// instead of a state change per byte.
func (d *dataReader) scanRun(buf []byte) (run, state, lineLen int) {
	state, lineLen = d.state, d.lineLen
	for run < len(buf) {
		if state == stateBeginLine {
			if buf[run] == '.' {
				return // dot-stuffing or the terminator: step decides
			}
			// Any other first byte is judged as inside a line.
			state = stateData
		}
		rest := buf[run:]
		lf := bytes.IndexByte(rest, '\n')
		if lf < 0 {
			// No line end in the buffer: take the line up to a CR.
			k := bytes.IndexByte(rest, '\r')
			if k < 0 {
				k = len(rest)
			}
			if lineLen+k > d.maxLine {
				return
			}
			return run + k, state, lineLen + k
		}
		if cr := bytes.IndexByte(rest[:lf], '\r'); cr != lf-1 || lf == 0 {
			// A bare CR or a bare LF: take the line up to it.
			k := lf
			if cr >= 0 {
				k = cr
			}
			if lineLen+k > d.maxLine {
				return
			}
			return run + k, state, lineLen + k
		}
		if lineLen+lf-1 > d.maxLine {
			return
		}
		run += lf + 1
		state, lineLen = stateBeginLine, 0
	}
	return
}
