package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"net/mail"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-smtp"

	"postern.dev/postern/internal/reply"
)

// maxHeaderBytes bounds the header section Postern parses. Exchange refuses a
// single header value over 32 KiB (reference section 3, 5.6.211); a whole
// section of 1 MiB leaves room for long Received chains.
const maxHeaderBytes = 1 << 20

// SpoolThreshold is the largest message held in memory while it is read;
// a larger one is spooled to a file as it arrives. Memory per message in
// flight is therefore O(SpoolThreshold), never O(size): 100 concurrent
// 50 MB uploads cost a few MiB, not 5 GB (DESIGN "Bounded under attack").
const SpoolThreshold = 64 << 10

// memLimit is SpoolThreshold, lowered by the fuzz test so that small
// inputs take the file path.
var memLimit = SpoolThreshold

// Message is a message read from DATA or BDAT: the bytes exactly as
// received, in memory when small and in a spool file otherwise, and the
// parsed header fields Postern needs. Read it with ReadAt or Reader, as
// often as needed (each pass reads from the start); Close removes the
// spool file. One Message may be submitted more than once (a message for
// two organizations is committed once per organization): each commit
// takes its own link or copy of the spool file.
type Message struct {
	Header textproto.MIMEHeader

	size int64
	mem  []byte   // the whole message, when it stayed under SpoolThreshold
	file *os.File // the spool file otherwise

	// buf is mem with headRoom bytes in front of it, free for the header
	// fields Postern adds (WithHead); headTaken says they are in use.
	buf       []byte
	headTaken atomic.Bool
}

// headRoom is the room left in front of a message held in memory for the
// header fields Postern adds in front of it (Received, Authentication-
// Results: a few hundred bytes), so that the message committed needs no
// second copy of the whole.
const headRoom = 1 << 10

// NewMessage wraps a message already in memory (tests, generated mail).
func NewMessage(raw []byte) (*Message, *reply.Reply) {
	return ReadMessage(strings.NewReader(string(raw)), int64(len(raw)), "")
}

// Size is the message's length in octets.
func (m *Message) Size() int64 { return m.size }

// ReadAt reads the message at an offset (io.ReaderAt); it is safe for
// concurrent use, so senderauth and the commit can read independently.
func (m *Message) ReadAt(p []byte, off int64) (int, error) {
	if m.file != nil {
		if off >= m.size {
			return 0, io.EOF
		}
		if rest := m.size - off; int64(len(p)) > rest {
			n, err := m.file.ReadAt(p[:rest], off)
			if err == nil {
				err = io.EOF
			}
			return n, err
		}
		return m.file.ReadAt(p, off)
	}
	if off >= int64(len(m.mem)) {
		return 0, io.EOF
	}
	n := copy(p, m.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Reader returns a reader of the whole message from its start.
func (m *Message) Reader() io.Reader { return io.NewSectionReader(m, 0, m.size) }

// InMemory returns the message when it was small enough to stay in
// memory, and ok false when it was spooled to a file.
func (m *Message) InMemory() (raw []byte, ok bool) { return m.mem, m.file == nil }

// WithHead returns head followed by the message held in memory. The first
// call puts head in the room left in front of the message when it fits,
// without copying the message; any other call (the same message committed
// for a second organization) returns a copy. The message's own bytes are
// never written, so readers of the message are not disturbed.
func (m *Message) WithHead(head []byte) []byte {
	start := len(m.buf) - len(m.mem) - len(head)
	if m.buf != nil && start >= 0 && m.headTaken.CompareAndSwap(false, true) {
		copy(m.buf[start:], head)
		return m.buf[start:]
	}
	out := make([]byte, 0, len(head)+len(m.mem))
	return append(append(out, head...), m.mem...)
}

// SpoolFile is the path of the spool file, "" for a message in memory.
func (m *Message) SpoolFile() string {
	if m.file == nil {
		return ""
	}
	return m.file.Name()
}

// Close removes the spool file. Commits made before it keep their own
// link or copy.
func (m *Message) Close() error {
	if m == nil || m.file == nil {
		return nil
	}
	err := m.file.Close()
	if rerr := os.Remove(m.file.Name()); err == nil {
		err = rerr
	}
	m.file = nil
	return err
}

// ReadMessage reads DATA (or the BDAT chunks) up to limit bytes and checks
// what RFC 5321 and 5322 require of it before anything else looks at it,
// as the bytes arrive. A message over SpoolThreshold goes to a file in
// spoolDir (os.TempDir() when ""). It returns the reply to send when the
// message is refused; the caller must Close an accepted Message.
//
// Bare CR and bare LF are refused rather than repaired: a receiver that
// treats "\n.\n" as end of data while another treats only "\r\n.\r\n" so is
// how SMTP smuggling slips a second, forged message through (RFC 5321
// section 2.3.8: CR and LF must only occur together as CRLF).
//
// The refusals keep their precedence over the whole message, as if it had
// been read in one piece: a read error, then the size limit, then NUL
// anywhere, then a bare line ending, then the header section.
func ReadMessage(r io.Reader, limit int64, spoolDir string) (*Message, *reply.Reply) {
	w := &spooler{dir: spoolDir, limit: limit, headerEnd: -1}
	rep := w.readFrom(r)
	if rep == nil {
		rep = w.verdict()
	}
	m := &Message{size: w.n, file: w.file}
	if w.mem != nil {
		// Full slice expressions: an append to either must not write past
		// the message into the other's spare capacity.
		m.buf = w.mem[:len(w.mem):len(w.mem)]
		m.mem = m.buf[headRoom:]
	}
	// Each chunk was written to the spool file as it came: nothing is
	// buffered. Durability of the bytes is the store's business (it fsyncs
	// what it commits); here they only need to be complete.
	if rep == nil {
		rep = m.parseHeader(w.headerEnd)
	}
	if rep != nil {
		m.Close()
		return nil, rep
	}
	return m, nil
}

// spooler receives the message and checks it as it arrives: line endings,
// NUL, the end of the header section, the size.
type spooler struct {
	dir   string
	limit int64
	n     int64
	mem   []byte // headRoom free bytes, then the message (Message.WithHead)
	file  *os.File

	cr        bool  // the previous byte was a CR
	lineStart int64 // offset of the current line
	headerEnd int64 // offset of "\r\n\r\n" (0 when the message starts with CRLF), -1 until seen
	nul, bare bool
	failed    bool // a refusal is certain: stop storing, keep checking for NUL
}

// chunkSize is how much of a message is read, checked and written to the
// spool file at a time: one write system call per 64 KiB, straight from the
// buffer the DATA reader filled (no second buffer, no second copy).
const chunkSize = 64 << 10

// chunks holds the read buffers of messages in flight: a connection holds
// one only while it receives a message.
var chunks = sync.Pool{New: func() any { return new([chunkSize]byte) }}

func (w *spooler) readFrom(r io.Reader) *reply.Reply {
	chunk := chunks.Get().(*[chunkSize]byte)
	defer chunks.Put(chunk)
	buf := chunk[:]
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if w.n+int64(n) > w.limit {
				return reply.MessageTooLarge(w.limit)
			}
			if rep := w.write(buf[:n]); rep != nil {
				return rep
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var smtpErr *reply.Reply
			switch {
			case errors.As(err, &smtpErr):
				return smtpErr
			case errors.Is(err, smtp.ErrTooLongLine):
				return reply.LineTooLong
			}
			// The client is gone; nobody reads this reply.
			return reply.StorageUnavailable
		}
	}
}

// scan checks p, the message's bytes from offset w.n: NUL anywhere, CR and
// LF only as CRLF (RFC 5321 section 2.3.8), and where the first empty line
// ends the header section (RFC 5322 section 2.1). It looks at line ends
// only, found with bytes.IndexByte (vectorised), rather than at each byte.
func (w *spooler) scan(p []byte) {
	if !w.nul && bytes.IndexByte(p, 0) >= 0 {
		w.nul = true
	}
	if w.bare {
		return // refused already; only a NUL, which takes precedence, matters
	}
	base := w.n
	for i := 0; i < len(p); {
		if w.cr {
			// The last byte was a CR: only LF may follow.
			if p[i] != '\n' {
				w.bare = true
				return
			}
			w.endLine(base + int64(i))
			i++
			continue
		}
		rest := p[i:]
		lf := bytes.IndexByte(rest, '\n')
		if lf < 0 {
			// No line end in the rest: a CR may only be its last byte,
			// whose LF comes with the next chunk.
			switch cr := bytes.IndexByte(rest, '\r'); {
			case cr == len(rest)-1:
				w.cr = true
			case cr >= 0:
				w.bare = true
			}
			return
		}
		// The line ends at lf: its only CR must be the byte before.
		if lf == 0 || bytes.IndexByte(rest[:lf], '\r') != lf-1 {
			w.bare = true
			return
		}
		w.endLine(base + int64(i+lf))
		i += lf + 1
	}
}

// endLine records a CRLF whose LF is at offset pos.
func (w *spooler) endLine(pos int64) {
	if w.headerEnd < 0 && pos-w.lineStart == 1 {
		// An empty line ends the header section (RFC 5322 section 2.1).
		w.headerEnd = max(w.lineStart-2, 0)
	}
	w.cr = false
	w.lineStart = pos + 1
}

func (w *spooler) write(p []byte) *reply.Reply {
	w.scan(p)
	w.n += int64(len(p))
	if w.nul || w.bare {
		// Refused whatever follows: nothing more needs storing.
		w.failed = true
		w.mem = nil
		return nil
	}
	if w.file == nil && w.n <= int64(memLimit) {
		if w.mem == nil {
			w.mem = make([]byte, headRoom, headRoom+len(p))
		}
		w.mem = append(w.mem, p...)
		return nil
	}
	if w.file == nil {
		f, err := os.CreateTemp(w.dir, "msg-*")
		if err != nil {
			return reply.StorageUnavailable
		}
		w.file = f
		if len(w.mem) > headRoom {
			if _, err := f.Write(w.mem[headRoom:]); err != nil {
				return reply.StorageUnavailable
			}
		}
		w.mem = nil
	}
	if _, err := w.file.Write(p); err != nil {
		return reply.StorageUnavailable
	}
	return nil
}

// verdict applies the checks that need the whole message.
func (w *spooler) verdict() *reply.Reply {
	switch {
	case w.nul:
		return reply.NULInMessage
	case w.bare || w.cr: // a CR at the very end is bare too
		return reply.BareLineEnding
	}
	return nil
}

// headerReaders are the buffers header sections are parsed through: one
// per message in flight rather than one allocated per message.
var headerReaders = sync.Pool{New: func() any { return bufio.NewReader(nil) }}

func (m *Message) parseHeader(end int64) *reply.Reply {
	if end < 0 {
		end = m.size // header only, no body
	}
	if end > maxHeaderBytes {
		return reply.HeaderTooLarge
	}
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(io.MultiReader(io.NewSectionReader(m, 0, end), strings.NewReader("\r\n\r\n")))
	h, err := textproto.NewReader(br).ReadMIMEHeader() // copies what it keeps
	br.Reset(nil)
	headerReaders.Put(br)
	if err != nil && end > 0 {
		return reply.NoFromHeader
	}
	m.Header = h
	if m.Header == nil {
		m.Header = textproto.MIMEHeader{}
	}
	return nil
}

// Senders returns the lower-case addresses of the From: and Sender: fields.
// A From: that is present but not a valid address list, or more than one
// From: or Sender: field (RFC 5322 section 3.6 allows one each), is an
// error; a missing From: is not (the submission path adds one).
func (m *Message) Senders() (from []string, sender string, err error) {
	if vals := m.Header.Values("From"); len(vals) > 1 {
		return nil, "", errors.New("more than one From field")
	} else if len(vals) == 1 {
		list, err := addressParser.ParseList(vals[0])
		if err != nil || len(list) == 0 {
			return nil, "", errors.New("invalid From field")
		}
		for _, a := range list {
			from = append(from, strings.ToLower(a.Address))
		}
	}
	switch vals := m.Header.Values("Sender"); len(vals) {
	case 0:
	case 1:
		a, err := addressParser.Parse(vals[0])
		if err != nil {
			return nil, "", errors.New("invalid Sender field")
		}
		sender = strings.ToLower(a.Address)
	default:
		return nil, "", errors.New("more than one Sender field")
	}
	return from, sender, nil
}

// addressParser decodes RFC 2047 encoded display names in any charset Go
// knows, and leaves the others undecoded rather than failing the message.
var addressParser = &mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(charset string, input io.Reader) (io.Reader, error) { return input, nil },
}}

// Subject returns the decoded Subject, for the admin's views.
func (m *Message) Subject() string {
	s := m.Header.Get("Subject")
	if d, err := addressParser.WordDecoder.DecodeHeader(s); err == nil {
		s = d
	}
	return s
}

// CleanSpool creates the spool directory, or empties it: at start-up any
// file in it is an upload a crash interrupted, never acknowledged (a
// committed message has its own link in the store).
func CleanSpool(dir string) (string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o700)
}
