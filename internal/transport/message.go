package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/emersion/go-smtp"

	"postern.dev/postern/internal/reply"
)

// maxHeaderBytes bounds the header section Postern parses. Exchange refuses a
// single header value over 32 KiB (reference section 3, 5.6.211); a whole
// section of 1 MiB leaves room for long Received chains.
const maxHeaderBytes = 1 << 20

// Message is a message read from DATA: the raw bytes exactly as received and
// the parsed header fields Postern needs.
type Message struct {
	Raw    []byte
	Header textproto.MIMEHeader
}

// ReadMessage reads DATA up to limit bytes and checks what RFC 5321 and 5322
// require of it before anything else looks at it. It returns the reply to
// send when the message is refused.
//
// Bare CR and bare LF are refused rather than repaired: a receiver that
// treats "\n.\n" as end of data while another treats only "\r\n.\r\n" so is
// how SMTP smuggling slips a second, forged message through (RFC 5321
// section 2.3.8: CR and LF must only occur together as CRLF).
func ReadMessage(r io.Reader, limit int64) (*Message, *reply.Reply) {
	raw, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		var smtpErr *reply.Reply
		switch {
		case errors.As(err, &smtpErr):
			return nil, smtpErr
		case errors.Is(err, smtp.ErrTooLongLine):
			return nil, reply.LineTooLong
		}
		// The client is gone; nobody reads this reply.
		return nil, reply.StorageUnavailable
	}
	if int64(len(raw)) > limit {
		return nil, reply.MessageTooLarge(limit)
	}
	if rep := checkLineEndings(raw); rep != nil {
		return nil, rep
	}
	m := &Message{Raw: raw}
	if rep := m.parseHeader(); rep != nil {
		return nil, rep
	}
	return m, nil
}

func checkLineEndings(raw []byte) *reply.Reply {
	if bytes.IndexByte(raw, 0) >= 0 {
		return reply.NULInMessage
	}
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '\r':
			if i+1 >= len(raw) || raw[i+1] != '\n' {
				return reply.BareLineEnding
			}
			i++
		case '\n':
			return reply.BareLineEnding
		}
	}
	return nil
}

func (m *Message) parseHeader() *reply.Reply {
	end := bytes.Index(m.Raw, []byte("\r\n\r\n"))
	switch {
	case bytes.HasPrefix(m.Raw, []byte("\r\n")):
		end = 0 // no header fields at all
	case end < 0:
		end = len(m.Raw) // header only, no body
	}
	if end > maxHeaderBytes {
		return reply.HeaderTooLarge
	}
	h, err := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(m.Raw[:end]), strings.NewReader("\r\n\r\n")))).ReadMIMEHeader()
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
