// Package smtpclient is the SMTP client Postern delivers with (RFC 5321),
// with STARTTLS (RFC 3207), AUTH PLAIN/LOGIN/XOAUTH2 (RFC 4954) for smart
// hosts, SIZE (RFC 1870), 8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531).
//
// It is written here rather than taken from go-smtp because delivery to
// servers on the Internet must survive hostile peers: every read and write
// has a deadline, including the message body, and a reply line or a
// multiline reply has a size cap, so a remote that stalls or streams
// garbage costs a deferral, never a wedged worker or unbounded memory. Every
// failure is an *Error that says at which step it happened and whether it
// is temporary, which is what the queue needs to decide retry or bounce.
package smtpclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Timeouts for each step. The defaults are RFC 5321 §4.5.3.2's minimums
// for a client, which a busy server may need.
type Timeouts struct {
	Connect  time.Duration // TCP connect; default 30 s
	Greeting time.Duration // the 220 greeting; default 5 min
	Command  time.Duration // each command's reply; default 5 min
	DataLine time.Duration // each block of the message body; default 3 min
	DataEnd  time.Duration // the reply after the final "."; default 10 min
}

func (t *Timeouts) fill() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Connect, 30*time.Second)
	def(&t.Greeting, 5*time.Minute)
	def(&t.Command, 5*time.Minute)
	def(&t.DataLine, 3*time.Minute)
	def(&t.DataEnd, 10*time.Minute)
}

// Error is a failed step of a delivery.
type Error struct {
	Step  string // "connect", "greeting", "EHLO", "STARTTLS", "AUTH", "MAIL FROM", "RCPT TO", "DATA", "end of data"
	Reply *Reply // the server's refusal, nil when the connection failed
	Err   error  // the network or protocol error when Reply is nil
}

func (e *Error) Error() string {
	if e.Reply != nil {
		return e.Reply.String()
	}
	return fmt.Sprintf("%s: %v", e.Step, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports a 5xx refusal. Everything else (a 4xx, a timeout, a
// dropped connection, a malformed reply, a TLS failure) is temporary: the
// message may yet be delivered by trying again later.
func (e *Error) Permanent() bool { return e.Reply != nil && e.Reply.Class() == 5 }

// Client is one SMTP connection.
type Client struct {
	conn     net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	t        Timeouts
	ext      map[string]string
	tls      bool
	server   string // the remote's host name, for TLS and messages
	Greeting *Reply
	// unwatch stops closing the connection when Dial's context ends.
	unwatch func() bool
}

// Dial connects to addr (host:port) and reads the greeting. server names
// the remote host, for TLS verification and error messages.
func Dial(ctx context.Context, d *net.Dialer, addr, server string, t Timeouts) (*Client, error) {
	t.fill()
	dctx, cancel := context.WithTimeout(ctx, t.Connect)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, &Error{Step: "connect", Err: err}
	}
	c := NewClient(conn, server, t)
	// The connection lives as long as ctx: a server shutting down cancels
	// it, and a remote server that stalls then costs no more than that,
	// whatever the command timeouts are.
	c.unwatch = context.AfterFunc(ctx, func() { conn.Close() })
	if err := c.ReadGreeting(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// ReadGreeting reads the 220 greeting on a connection made with NewClient.
func (c *Client) ReadGreeting() error {
	c.conn.SetReadDeadline(time.Now().Add(c.t.Greeting))
	rep, err := readReply(c.r)
	if err != nil {
		return &Error{Step: "greeting", Err: err}
	}
	c.Greeting = rep
	if rep.Code != 220 {
		return &Error{Step: "greeting", Reply: rep}
	}
	if tc, ok := c.conn.(*tls.Conn); ok {
		c.tls = tc.ConnectionState().HandshakeComplete
	}
	return nil
}

// NewClient wraps a connection whose greeting the caller reads with
// ReadGreeting; Dial is the usual way in.
func NewClient(conn net.Conn, server string, t Timeouts) *Client {
	t.fill()
	return &Client{conn: conn, r: bufio.NewReader(conn), w: bufio.NewWriter(conn), t: t, server: server}
}

// cmd sends one command line and reads its reply. A reply of another class
// than want is returned as an *Error.
func (c *Client) cmd(step string, want int, line string) (*Reply, error) {
	c.conn.SetDeadline(time.Now().Add(c.t.Command))
	if _, err := c.w.WriteString(line + "\r\n"); err != nil {
		return nil, &Error{Step: step, Err: err}
	}
	if err := c.w.Flush(); err != nil {
		return nil, &Error{Step: step, Err: err}
	}
	rep, err := readReply(c.r)
	if err != nil {
		return nil, &Error{Step: step, Err: err}
	}
	if rep.Class() != want {
		return rep, &Error{Step: step, Reply: rep}
	}
	return rep, nil
}

// Hello sends EHLO, falling back to HELO when the server does not know it
// (RFC 5321 §3.2).
func (c *Client) Hello(localName string) error {
	rep, err := c.cmd("EHLO", 2, "EHLO "+localName)
	var e *Error
	if errors.As(err, &e) && e.Reply != nil && (e.Reply.Code == 500 || e.Reply.Code == 502) {
		c.ext = map[string]string{}
		_, err = c.cmd("HELO", 2, "HELO "+localName)
		return err
	}
	if err != nil {
		return err
	}
	c.ext = map[string]string{}
	for _, l := range rep.Lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return nil
}

// Extension reports whether the server offered an EHLO keyword, and its
// parameters.
func (c *Client) Extension(name string) (bool, string) {
	v, ok := c.ext[strings.ToUpper(name)]
	return ok, v
}

// TLS reports whether the connection is encrypted.
func (c *Client) TLS() bool { return c.tls }

// TLSState returns the TLS connection state, if any.
func (c *Client) TLSState() (tls.ConnectionState, bool) {
	if tc, ok := c.conn.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// StartTLS upgrades the connection (RFC 3207) and says EHLO again, as §4.2
// requires: what the server offered before TLS no longer holds.
func (c *Client) StartTLS(cfg *tls.Config, localName string) error {
	if _, err := c.cmd("STARTTLS", 2, "STARTTLS"); err != nil {
		return err
	}
	tc := tls.Client(c.conn, cfg)
	tc.SetDeadline(time.Now().Add(c.t.Command))
	if err := tc.Handshake(); err != nil {
		c.conn.Close()
		return &Error{Step: "STARTTLS", Err: err}
	}
	c.conn, c.tls = tc, true
	c.r, c.w = bufio.NewReader(tc), bufio.NewWriter(tc)
	return c.Hello(localName)
}

// Auth signs in with mech (PLAIN, LOGIN or XOAUTH2). For XOAUTH2, secret is
// the access token.
func (c *Client) Auth(mech, user, secret string) error {
	b64 := base64.StdEncoding.EncodeToString
	switch strings.ToUpper(mech) {
	case "PLAIN": // RFC 4616
		_, err := c.cmd("AUTH", 2, "AUTH PLAIN "+b64([]byte("\x00"+user+"\x00"+secret)))
		return err
	case "LOGIN": // draft-murchison-sasl-login
		if _, err := c.cmd("AUTH", 3, "AUTH LOGIN"); err != nil {
			return err
		}
		if _, err := c.cmd("AUTH", 3, b64([]byte(user))); err != nil {
			return err
		}
		_, err := c.cmd("AUTH", 2, b64([]byte(secret)))
		return err
	case "XOAUTH2":
		// Microsoft's and Google's format: user=U^Aauth=Bearer T^A^A. On a
		// bad token the server sends a 334 with a JSON error and waits for
		// an empty line before its 5xx.
		blob := b64([]byte("user=" + user + "\x01auth=Bearer " + secret + "\x01\x01"))
		rep, err := c.cmd("AUTH", 2, "AUTH XOAUTH2 "+blob)
		var e *Error
		if errors.As(err, &e) && e.Reply != nil && e.Reply.Code == 334 {
			detail := ""
			if len(rep.Lines) > 0 {
				if d, derr := base64.StdEncoding.DecodeString(rep.Lines[0]); derr == nil {
					detail = string(d)
				}
			}
			_, err = c.cmd("AUTH", 2, "")
			if e2, ok := err.(*Error); ok && e2.Reply != nil && detail != "" {
				e2.Reply.Lines = append(e2.Reply.Lines, clip(detail))
			}
		}
		return err
	}
	return &Error{Step: "AUTH", Err: fmt.Errorf("mechanism %s not supported", mech)}
}

// MailOptions are MAIL FROM parameters.
type MailOptions struct {
	Size     int  // RFC 1870 SIZE=, sent when the server offers SIZE
	EightBit bool // the body has 8-bit octets: BODY=8BITMIME when offered
	UTF8     bool // an address or header needs SMTPUTF8 (RFC 6531)
}

// Mail starts a transaction.
func (c *Client) Mail(from string, o MailOptions) error {
	line := "MAIL FROM:<" + from + ">"
	if ok, _ := c.Extension("SIZE"); ok && o.Size > 0 {
		line += " SIZE=" + strconv.Itoa(o.Size)
	}
	if ok, _ := c.Extension("8BITMIME"); ok && (o.EightBit || o.UTF8) {
		line += " BODY=8BITMIME"
	}
	if o.UTF8 {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			// RFC 6531 §3.4: without the extension the message cannot be
			// sent as it is; that will not change by retrying.
			return &Error{Step: "MAIL FROM", Reply: &Reply{Code: 553, Enhanced: "5.6.7",
				Lines: []string{"5.6.7 the remote server does not support SMTPUTF8, which this message needs"}}}
		}
		line += " SMTPUTF8"
	}
	_, err := c.cmd("MAIL FROM", 2, line)
	return err
}

// Rcpt adds a recipient; a refusal is an *Error with the server's reply.
func (c *Client) Rcpt(to string) error {
	_, err := c.cmd("RCPT TO", 2, "RCPT TO:<"+to+">")
	return err
}

// Data sends the message (CRLF line endings; it is dot-stuffed here, RFC
// 5321 §4.5.2) and returns the server's reply to the final dot.
func (c *Client) Data(msg []byte) (*Reply, error) {
	return c.DataFrom(bytes.NewReader(msg))
}

// DataFrom is Data with the message read from r as it is sent, so that a
// large message never has to be in memory (dot-stuffing per RFC 5321
// section 4.5.2 is applied on the way).
func (c *Client) DataFrom(r io.Reader) (*Reply, error) {
	if _, err := c.cmd("DATA", 3, "DATA"); err != nil {
		return nil, err
	}
	// Each block written gets its own deadline, so a large message over a
	// slow link is fine while a remote that stops reading is not.
	const block = 64 << 10
	buf := make([]byte, block)
	atLineStart := true
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if werr := c.writeStuffed(buf[:n], &atLineStart); werr != nil {
				return nil, &Error{Step: "DATA", Err: werr}
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			// The message cannot be read: the transaction must not end
			// with a truncated message that looks complete. Closing the
			// connection without the final dot aborts it (RFC 5321
			// section 4.1.1.4: no partial message may be delivered).
			c.conn.Close()
			return nil, &Error{Step: "DATA", Err: fmt.Errorf("reading the message: %w", err)}
		}
	}
	end := ".\r\n"
	if !atLineStart {
		end = "\r\n.\r\n"
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.t.DataLine))
	if _, err := c.w.WriteString(end); err != nil {
		return nil, &Error{Step: "DATA", Err: err}
	}
	if err := c.w.Flush(); err != nil {
		return nil, &Error{Step: "DATA", Err: err}
	}
	c.conn.SetReadDeadline(time.Now().Add(c.t.DataEnd))
	rep, err := readReply(c.r)
	if err != nil {
		return nil, &Error{Step: "end of data", Err: err}
	}
	if rep.Class() != 2 {
		return rep, &Error{Step: "end of data", Reply: rep}
	}
	return rep, nil
}

func (c *Client) writeStuffed(p []byte, atLineStart *bool) error {
	c.conn.SetWriteDeadline(time.Now().Add(c.t.DataLine))
	start := 0
	for i, b := range p {
		if *atLineStart && b == '.' {
			if _, err := c.w.Write(p[start:i]); err != nil {
				return err
			}
			if err := c.w.WriteByte('.'); err != nil {
				return err
			}
			start = i
		}
		*atLineStart = b == '\n'
	}
	if _, err := c.w.Write(p[start:]); err != nil {
		return err
	}
	return c.w.Flush()
}

// Reset aborts the current transaction (RSET) so the connection can carry
// the next message.
func (c *Client) Reset() error {
	_, err := c.cmd("RSET", 2, "RSET")
	return err
}

// Quit says goodbye and closes the connection.
func (c *Client) Quit() error {
	c.cmd("QUIT", 2, "QUIT")
	return c.Close()
}

// Close closes the connection without QUIT.
func (c *Client) Close() error {
	if c.unwatch != nil {
		c.unwatch()
	}
	return c.conn.Close()
}

// Server is the remote's host name.
func (c *Client) Server() string { return c.server }
