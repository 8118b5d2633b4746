package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"postern.dev/postern/internal/lineserver"
)

// state is the session's RFC 1939 state. UPDATE is not a state here: it
// is what QUIT does in TRANSACTION before the connection closes.
type state int

const (
	// stateAuthorization: not signed in, no user name given.
	stateAuthorization state = iota
	// stateUser: USER given, PASS expected (Exchange's "User" state; only
	// PASS, CAPA and QUIT are valid in it).
	stateUser
	// stateTransaction: signed in, the maildrop's snapshot taken.
	stateTransaction
)

// entry is one message of the session's snapshot.
type entry struct {
	uid     string // the Maildrop's identifier
	uidl    string // as UIDL shows it
	size    int64
	deleted bool // marked by DELE, unmarked by RSET
	// retrieved: sent whole by RETR (not TOP), so read, as Exchange
	// marks it at QUIT; RSET forgets it too.
	retrieved bool
}

// conn is one client connection, from accept to close.
type conn struct {
	srv *Server
	// lc is the connection as read and written: in lineserver.Command
	// mode while a command line is awaited (Shutdown interrupts it
	// there), lineserver.Busy while a command runs.
	lc          lineserver.Conn
	implicitTLS bool
	ip          netip.Addr
	// ctx is handed to the Authenticator and the Maildrop; it ends when
	// the connection does (or Shutdown gives up waiting).
	ctx    context.Context
	cancel context.CancelFunc

	state        state
	isTLS        bool
	user         string
	failedLogins int
	badCommands  int
	// quit ends the session once the current reply is sent.
	quit bool

	drop Maildrop
	msgs []entry

	// signedIn and refusal carry a SASL mechanism's verdict from its
	// credential callback to the end of the exchange.
	signedIn Maildrop
	refusal  *Refusal
}

func newConn(s *Server, nc net.Conn, implicitTLS bool) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{srv: s, implicitTLS: implicitTLS, ip: remoteIP(nc), ctx: ctx, cancel: cancel}
	// Each write is bounded: a client that stops reading in the middle of
	// a message is dropped, one that reads slowly is not. Shutdown's
	// abort also ends the Authenticator's and the Maildrop's work.
	c.lc.Init(nc, lineserver.Busy, lineserver.Options{ReadBuffer: 4096, WriteBuffer: 16 << 10, WriteTimeout: s.writeTimeout(), OnAbort: cancel})
	return c
}

var errLineLength = errors.New("pop3 command line too long")

func (c *conn) serve() {
	defer c.close()
	defer func() {
		if v := recover(); v != nil {
			c.srv.log().Error("panic in POP3 session", "ip", c.ip, "panic", v, "stack", string(debug.Stack()))
			c.reply(errUnavailable)
		}
	}()
	if c.implicitTLS {
		tc := tls.Server(c.lc.Accepted(), c.srv.TLSConfig)
		tc.SetDeadline(time.Now().Add(c.srv.preAuthTimeout()))
		if err := tc.HandshakeContext(c.ctx); err != nil {
			return
		}
		tc.SetDeadline(time.Time{})
		c.setConn(tc)
	}
	c.reply(greeting)
	for !c.quit {
		line, err := c.readCommand()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.handle(line)
	}
}

// setConn switches to TLS. What was buffered from the plain connection is
// dropped, so that commands pipelined before STLS are never taken as sent
// under TLS (RFC 2595 §4; the STARTTLS injection of CVE-2011-0411).
func (c *conn) setConn(tc *tls.Conn) {
	c.lc.SetTransport(tc)
	c.isTLS = true
}

func (c *conn) close() {
	c.lc.W.Flush()
	if c.drop != nil {
		// RFC 1939 §6: without QUIT nothing marked is deleted.
		if err := c.drop.Close(); err != nil {
			c.srv.log().Warn("pop3 maildrop close failed", "ip", c.ip, "err", err)
		}
		c.drop = nil
	}
	c.cancel()
	// Neither a TLS close_notify nor the FIN may wait on a client that
	// does not read.
	nc := c.lc.Accepted()
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	// A lingering close: send the FIN, then read for a moment what the
	// client still sends, so that the kernel does not answer unread input
	// with a reset that destroys the last reply in flight (a client
	// closed for a too-long line, or one pipelining past QUIT). Bounded
	// in time and bytes.
	if cw, ok := c.lc.Transport().(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		nc.SetReadDeadline(time.Now().Add(lingerTime))
		io.Copy(io.Discard, io.LimitReader(nc, lingerBytes))
	}
	c.lc.Transport().Close()
	nc.Close()
}

const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

// readFailed answers, if anyone is there to hear it, a line that could not
// be read.
func (c *conn) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, lineserver.ErrStopping):
		c.reply(errShuttingDown)
	case errors.Is(err, errLineLength):
		c.reply(errLineTooLong)
	case errors.As(err, &ne) && ne.Timeout():
		if c.lc.Stopping() {
			c.reply(errShuttingDown)
		} else {
			c.reply(errTimeout)
		}
	}
	// EOF, a reset: nobody to answer.
}

// timeout is the autologout timer for the current state: short before
// sign-in, RFC 1939's generous one after.
func (c *conn) timeout() time.Duration {
	if c.state == stateTransaction {
		return c.srv.idleTimeout()
	}
	return c.srv.preAuthTimeout()
}

// readCommand reads one command line, which must arrive whole within the
// autologout timer: a client trickling bytes cannot keep a connection, and
// half a line is never run. Lines over MaxCommandLine are refused, except
// AUTH with an initial response.
func (c *conn) readCommand() (string, error) {
	return c.readLine(MaxCommandLine, true)
}

// readLine reads a line of at most limit octets without its line end
// (CRLF, or a bare LF); with authCommand, an AUTH command may reach
// MaxAuthLine. A line over its limit is refused as soon as it is seen to
// be, not buffered to its end.
func (c *conn) readLine(limit int, authCommand bool) (string, error) {
	c.lc.AwaitCommand(time.Now().Add(c.timeout()))
	defer c.lc.SetMode(lineserver.Busy)
	var line []byte
	for {
		chunk, err := c.lc.R.ReadSlice('\n')
		if n := len(line) + len(chunk); n > limit+2 {
			if !authCommand || n > MaxAuthLine+2 || !startsWithAuth(line, chunk) {
				return "", errLineLength
			}
		}
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return "", err
		}
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > limit && !(authCommand && startsWithAuth(line, nil)) {
		return "", errLineLength
	}
	return string(line), nil
}

// startsWithAuth tells whether the line read so far, line then chunk,
// begins with "AUTH " (in any case).
func startsWithAuth(line, chunk []byte) bool {
	var head [5]byte
	n := copy(head[:], line)
	copy(head[n:], chunk)
	return strings.EqualFold(string(head[:]), "AUTH ")
}

// reply writes a response; it is sent when the client is next waited for,
// or when the connection closes.
func (c *conn) reply(s string) {
	c.lc.W.WriteString(s)
	c.lc.W.WriteString("\r\n")
}

// badCommand answers a command that is unknown, malformed or not valid in
// the state, and ends a connection that sends too many (Exchange closes on
// the third).
func (c *conn) badCommand(text string) {
	c.badCommands++
	if c.badCommands >= maxBadCommands {
		text += closing
		c.quit = true
	}
	c.reply(text)
}

func (c *conn) handle(line string) {
	verb, arg, perr := parseCommand(line)
	if perr != "" {
		c.badCommand(string(perr))
		return
	}
	switch verb {
	case "CAPA":
		c.handleCapa()
	case "QUIT":
		c.handleQuit()
	case "USER":
		c.handleUser(arg)
	case "PASS":
		c.handlePass(arg)
	case "AUTH":
		c.handleAuth(arg)
	case "STLS":
		c.handleStls()
	case "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "NOOP", "RSET":
		if c.state != stateTransaction {
			c.badCommand(errBadState)
			return
		}
		c.handleTransaction(verb, arg)
	default:
		c.badCommand(errUnknownCommand)
	}
}

// authAllowed: USER, PASS and AUTH need TLS (Exchange's LoginType
// SecureLogin, the default) unless the server allows them in plain text.
func (c *conn) authAllowed() bool { return c.isTLS || c.srv.AllowInsecureAuth }

// handleCapa lists the capabilities (RFC 2449 §5). Exchange's list is
// "TOP, UIDL, SASL ..., USER", with STLS before TLS; before TLS on port
// 110 it names no way to sign in, only STLS. RFC 2449 asks that what is
// offered in AUTHORIZATION be announced in both states, so the list does
// not change at sign-in.
func (c *conn) handleCapa() {
	var b strings.Builder
	b.WriteString("+OK\r\nTOP\r\nUIDL\r\n")
	if c.authAllowed() {
		b.WriteString("SASL " + strings.Join(saslMechanisms, " ") + "\r\n")
		b.WriteString("USER\r\n")
	}
	if !c.isTLS && c.srv.TLSConfig != nil {
		b.WriteString("STLS\r\n")
	}
	b.WriteString("RESP-CODES\r\nPIPELINING\r\n")
	if c.srv.AuthRespCode {
		b.WriteString("AUTH-RESP-CODE\r\n")
	}
	b.WriteString(".")
	c.reply(b.String())
}

func (c *conn) handleUser(arg string) {
	if c.state != stateAuthorization || !c.authAllowed() {
		c.badCommand(errBadState)
		return
	}
	if arg == "" {
		c.badCommand(errArgumentCount)
		return
	}
	c.user = arg
	c.state = stateUser
	c.reply(okBare)
}

func (c *conn) handlePass(arg string) {
	if c.state != stateUser {
		c.badCommand(errBadState)
		return
	}
	c.state = stateAuthorization
	user := c.user
	c.user = ""
	if arg == "" {
		// Not worth a password verification.
		c.refused(ErrBadCredentials, textLogonFail)
		return
	}
	md, err := c.srv.Auth.Basic(c.ctx, c.ip, user, arg)
	c.signIn(md, err, textLogonFail, okLoggedOn)
}

// signIn ends a sign-in: on success it takes the maildrop's snapshot and
// enters TRANSACTION.
func (c *conn) signIn(md Maildrop, err error, failText, okText string) {
	if err == nil && md == nil {
		err = errors.New("authenticator returned no maildrop")
	}
	if err != nil {
		c.refused(err, failText)
		return
	}
	list, err := md.Messages(c.ctx, c.srv.maxMessages())
	if err != nil {
		c.srv.log().Warn("pop3 maildrop listing failed", "ip", c.ip, "err", err)
		md.Close()
		c.reply(errUnavailable)
		return
	}
	if len(list) > c.srv.maxMessages() {
		list = list[:c.srv.maxMessages()]
	}
	c.msgs = make([]entry, len(list))
	for i, m := range list {
		c.msgs[i] = entry{uid: m.UID, uidl: uidlOf(m.UID), size: max(m.Size, 0)}
	}
	c.drop = md
	c.state = stateTransaction
	c.reply(okText)
}

// refused answers a refused sign-in: [SYS/TEMP] for a temporary refusal
// (not counted as a failed attempt), else the refusal's text or the
// generic one, counted; the last allowed failure, or a refusal that says
// so, closes the connection.
func (c *conn) refused(err error, failText string) {
	var r *Refusal
	if !errors.As(err, &r) || r == nil {
		c.srv.log().Warn("pop3 sign-in failed", "ip", c.ip, "err", err)
		r = &Refusal{Temporary: true}
	}
	text := sanitizeText(r.Text)
	if r.Temporary {
		if text == "" {
			text = "Server Unavailable. 21"
		}
		if !strings.HasPrefix(text, "[") {
			text = "[SYS/TEMP] " + text
		}
	} else {
		if text == "" {
			text = failText
		}
		if c.srv.AuthRespCode && !strings.HasPrefix(text, "[") {
			text = "[AUTH] " + text
		}
		c.failedLogins++
	}
	line := "-ERR " + text
	if r.Close || (!r.Temporary && c.failedLogins >= c.srv.maxFailedLogins()) {
		line += closing
		c.quit = true
	}
	c.reply(line)
}

// sanitizeText keeps a refusal's text on one line of printable ASCII, at
// most a response's length (RFC 1939 §3: 512 octets with the CRLF).
func sanitizeText(s string) string {
	const maxText = 400
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxText; i++ {
		if ch := s[i]; ch >= 0x20 && ch < 0x7f {
			b.WriteByte(ch)
		} else {
			b.WriteByte(' ')
		}
	}
	return strings.TrimSpace(b.String())
}

// handleStls starts TLS (RFC 2595 §4), only in AUTHORIZATION before USER,
// as Exchange allows it.
func (c *conn) handleStls() {
	if c.state != stateAuthorization || c.isTLS || c.srv.TLSConfig == nil {
		c.badCommand(errBadState)
		return
	}
	c.reply(okBeginTLS)
	if err := c.lc.W.Flush(); err != nil {
		c.quit = true
		return
	}
	tc := tls.Server(c.lc.Accepted(), c.srv.TLSConfig)
	tc.SetDeadline(time.Now().Add(c.srv.preAuthTimeout()))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		// Nothing can be said: the client is speaking TLS, or nothing.
		c.lc.SetTransport(tc)
		c.quit = true
		return
	}
	tc.SetDeadline(time.Time{})
	c.setConn(tc)
}

func (c *conn) handleQuit() {
	c.quit = true
	if c.state != stateTransaction {
		c.reply(okSigningOff)
		return
	}
	// The UPDATE state (RFC 1939 §6).
	var uids, seen []string
	for _, e := range c.msgs {
		switch {
		case e.deleted:
			uids = append(uids, e.uid)
		case e.retrieved:
			seen = append(seen, e.uid)
		}
	}
	if sm, ok := c.drop.(SeenMarker); ok && len(seen) > 0 {
		if err := sm.MarkSeen(c.ctx, seen); err != nil {
			c.srv.log().Warn("pop3 marking messages read failed", "ip", c.ip, "messages", len(seen), "err", err)
		}
	}
	if len(uids) == 0 {
		c.reply(okSigningOff)
		return
	}
	if err := c.drop.Delete(c.ctx, uids); err != nil {
		c.srv.log().Warn("pop3 deleting messages failed", "ip", c.ip, "messages", len(uids), "err", err)
		c.reply(errNotRemoved)
		return
	}
	noun := " messages"
	if len(uids) == 1 {
		noun = " message"
	}
	c.reply(okSigningOff + " " + strconv.Itoa(len(uids)) + noun + " deleted.")
}

func (c *conn) handleTransaction(verb, arg string) {
	switch verb {
	case "NOOP":
		c.reply(okBare)
	case "RSET":
		for i := range c.msgs {
			c.msgs[i].deleted = false
			c.msgs[i].retrieved = false
		}
		c.reply(okBare)
	case "STAT":
		n, size := c.totals()
		c.reply("+OK " + strconv.Itoa(n) + " " + strconv.FormatInt(size, 10))
	case "LIST", "UIDL":
		msg, _, perr := parseMessageArgs(arg, 1, true)
		if perr != "" {
			c.badCommand(string(perr))
			return
		}
		if msg > 0 {
			e, refusal := c.message(msg)
			if e == nil {
				c.reply(refusal)
				return
			}
			c.reply("+OK " + strconv.Itoa(msg) + " " + c.listValue(verb, e))
			return
		}
		// Exchange puts the totals on LIST's first line, as RFC 1939's
		// example does; UIDL's is bare.
		if verb == "LIST" {
			n, size := c.totals()
			c.reply("+OK " + strconv.Itoa(n) + " " + strconv.FormatInt(size, 10))
		} else {
			c.reply(okBare)
		}
		for i := range c.msgs {
			if e := &c.msgs[i]; !e.deleted {
				c.reply(strconv.Itoa(i+1) + " " + c.listValue(verb, e))
			}
		}
		c.reply(".")
	case "DELE":
		msg, _, perr := parseMessageArgs(arg, 1, false)
		if perr != "" {
			c.badCommand(string(perr))
			return
		}
		e, refusal := c.message(msg)
		if e == nil {
			c.reply(refusal)
			return
		}
		e.deleted = true
		c.reply(okBare)
	case "RETR":
		msg, _, perr := parseMessageArgs(arg, 1, false)
		if perr != "" {
			c.badCommand(string(perr))
			return
		}
		c.sendMessage(msg, -1)
	case "TOP":
		msg, lines, perr := parseMessageArgs(arg, 2, false)
		if perr != "" {
			c.badCommand(string(perr))
			return
		}
		c.sendMessage(msg, lines)
	}
}

func (c *conn) listValue(verb string, e *entry) string {
	if verb == "LIST" {
		return strconv.FormatInt(e.size, 10)
	}
	return e.uidl
}

// totals counts the messages not marked deleted, and their size.
func (c *conn) totals() (n int, size int64) {
	for _, e := range c.msgs {
		if !e.deleted {
			n++
			size += e.size
		}
	}
	return n, size
}

// message finds a message by its number in the snapshot, or says why not.
func (c *conn) message(n int) (*entry, string) {
	if n < 1 || n > len(c.msgs) {
		return nil, errOutOfRange
	}
	e := &c.msgs[n-1]
	if e.deleted {
		return nil, errDeleted
	}
	return e, ""
}

// sendMessage answers RETR (bodyLines < 0) or TOP. The message is opened
// before "+OK", so a message that is gone gets a clean -ERR; a failure
// once it streams can only be told by closing the connection without the
// terminating line, which every client takes as a failed transfer.
func (c *conn) sendMessage(n, bodyLines int) {
	e, refusal := c.message(n)
	if e == nil {
		c.reply(refusal)
		return
	}
	rc, err := c.drop.Open(c.ctx, e.uid)
	if err != nil {
		if isGone(err) {
			c.reply(errDeleted)
			return
		}
		c.srv.log().Warn("pop3 opening a message failed", "ip", c.ip, "err", err)
		c.reply(errUnavailable)
		return
	}
	defer rc.Close()
	c.reply(okBare)
	err = writeMessage(c.lc.W, rc, bodyLines)
	if err == nil && bodyLines < 0 {
		e.retrieved = true
	}
	if err != nil {
		var se errSource
		if errors.As(err, &se) {
			c.srv.log().Warn("pop3 reading a message failed mid-transfer", "ip", c.ip, "err", err)
		}
		c.lc.W.Reset(discard{}) // the partial response must not be completed
		c.quit = true
	}
}

// discard swallows what is written after a transfer broke.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
