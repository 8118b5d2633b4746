package smtpserver

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"postern.dev/postern/internal/lineserver"
	"postern.dev/postern/internal/reply"
)

// maxErrors is how many bad commands a connection may send; the next one
// ends it (a client that cannot speak SMTP is not worth a connection slot).
const maxErrors = 3

// Conn is one client connection, from accept to close; it outlives the
// Sessions made on it (a new one after STARTTLS).
type Conn struct {
	server *Server
	// lc is the connection as read and written: in lineserver.Command
	// mode between commands (Shutdown interrupts it there), in
	// lineserver.Stream mode inside DATA or a BDAT chunk.
	lc lineserver.Conn
	ip netip.Addr
	// readTimeout is the server's idle timeout when the connection was
	// accepted: a reload changes it for new connections only.
	readTimeout time.Duration

	helo         string
	session      Session
	didAuth      bool
	fromReceived bool
	recipients   int
	errCount     int
	// bytesReceived counts the BDAT chunks of the current message; bdat is
	// the message being received in chunks, nil between messages.
	bytesReceived int64
	bdat          *bdatTransfer
	closed        bool
	// tr records the conversation (protocol logging); nil for most.
	tr Transcript

	// id is the session ID: on every log line of the connection, in the
	// Received field and in the message trace.
	id string
	// outcome is how the connection ended, for the sessions metric.
	outcome string
}

func newConn(s *Server, nc net.Conn, ip netip.Addr) *Conn {
	c := &Conn{server: s, ip: ip, id: newSessionID(), readTimeout: s.currentReadTimeout()}
	// Inside DATA or a BDAT chunk each read may take the idle timeout, so
	// a client that keeps sending is never cut off.
	c.lc.Init(nc, lineserver.Command, lineserver.Options{WriteTimeout: s.WriteTimeout, StreamTimeout: c.readTimeout})
	return c
}

// Conn returns the connection as the session sees it: TLS over the
// accepted connection once TLS is on.
func (c *Conn) Conn() net.Conn { return c.lc.Transport() }

// RemoteIP is the client's address.
func (c *Conn) RemoteIP() netip.Addr { return c.ip }

// SessionID identifies the connection in logs, the Received field and the
// message trace (Exchange's protocol logs call it SessionId).
func (c *Conn) SessionID() string { return c.id }

// Hostname is the name the client gave in HELO or EHLO.
func (c *Conn) Hostname() string { return c.helo }

// TLSConnectionState returns the TLS state once TLS is on.
func (c *Conn) TLSConnectionState() (tls.ConnectionState, bool) {
	if tc, ok := c.lc.Transport().(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

func (c *Conn) serve() {
	defer c.close()
	defer func() {
		if v := recover(); v != nil {
			c.server.log().Error("panic in SMTP session", "session", c.id, "ip", c.ip, "panic", v, "stack", string(debug.Stack()))
			c.reply(reply.InternalError)
			c.outcome = OutcomeError
		}
	}()
	if c.server.Transcript != nil {
		c.tr = c.server.Transcript(c)
	}
	if c.server.ImplicitTLS {
		tc := tls.Server(c.lc.Accepted(), c.server.TLSConfig)
		tc.SetDeadline(time.Now().Add(c.readTimeout))
		if err := tc.Handshake(); err != nil {
			c.outcome = OutcomeTLSFailed
			return
		}
		tc.SetDeadline(time.Time{})
		c.lc.SetTransport(tc)
	}
	c.reply(reply.ServiceReady(c.server.Hostname, time.Now(), c.id))
	for !c.closed {
		line, err := c.readCommand(c.server.MaxLineLength, c.server.MaxAuthLineLength)
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.tr != nil {
			c.tr.Received(line, false)
		}
		c.handle(line)
	}
}

// readFailed ends the connection after a command line could not be read.
func (c *Conn) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, lineserver.ErrStopping):
		c.reply(reply.ShuttingDown)
		c.outcome = OutcomeShutdown
	case errors.Is(err, errCommandTooLong):
		c.reply(reply.CommandLineTooLong)
		c.outcome = OutcomeError
	case errors.As(err, &ne) && ne.Timeout():
		if c.lc.Stopping() {
			c.reply(reply.ShuttingDown)
			c.outcome = OutcomeShutdown
		} else {
			c.reply(reply.IdleTimeout)
			c.outcome = OutcomeTimeout
		}
	}
	// EOF, a reset or any other failure: nobody is there to answer.
}

var errCommandTooLong = errors.New("command line too long")

// readCommand reads one command line. The whole line must arrive within
// the idle timeout; a line that ends without CRLF (the client closed, or
// the timeout fired) is never returned, so half a command is never run.
// Lines over limit are refused, except AUTH lines, which may reach
// authLimit.
func (c *Conn) readCommand(limit, authLimit int) (string, error) {
	var deadline time.Time
	if c.readTimeout > 0 {
		deadline = time.Now().Add(c.readTimeout)
	}
	c.lc.AwaitCommand(deadline)
	return c.readLine(limit, authLimit)
}

func (c *Conn) readLine(limit, authLimit int) (string, error) {
	var line []byte
	for {
		chunk, err := c.lc.R.ReadSlice('\n')
		if len(line)+len(chunk) > max(limit, authLimit)+2 {
			return "", errCommandTooLong
		}
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return "", err
		}
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
	if len(s) > limit && !(authLimit > limit && isAuthLine(s)) {
		return "", errCommandTooLong
	}
	return s, nil
}

// isAuthLine tells an AUTH command, or a SASL response line (which has no
// spaces), from any other line, for the longer AUTH limit.
func isAuthLine(s string) bool {
	return len(s) >= 5 && strings.EqualFold(s[:5], "AUTH ") || !strings.ContainsAny(s, " \t")
}

func (c *Conn) close() {
	if c.server.Observe != nil {
		if c.outcome == "" {
			c.outcome = OutcomeDisconnected
		}
		c.server.Observe.Closed(c.outcome)
	}
	c.closed = true
	c.lc.W.Flush()
	c.endBdat(errTransferAborted)
	if c.session != nil {
		c.session.Logout()
		c.session = nil
	}
	c.lc.Transport().Close()
	c.lc.Accepted().Close()
	if c.tr != nil {
		c.tr.Close()
	}
}

// reply writes a reply; it is sent when the client is next waited for, or
// when the connection closes.
func (c *Conn) reply(r *reply.Reply) {
	line := replyLine(r)
	c.lc.W.WriteString(line)
	if c.server.Observe != nil {
		c.server.Observe.Replied(r)
	}
	if c.tr != nil {
		c.tr.Sent(line)
	}
	if r.Code == 421 {
		c.closed = true // RFC 5321 section 3.8: 421 closes the channel
		if c.outcome == "" {
			c.outcome = OutcomeClosedByServer
		}
	}
}

// replyLine renders a reply (RFC 5321 section 4.2; a multi-line text
// gets "code-" continuation lines).
func replyLine(r *reply.Reply) string {
	lines := strings.Split(r.Message, "\n")
	var b strings.Builder
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		b.WriteString(strconv.Itoa(r.Code))
		b.WriteString(sep)
		if i == len(lines)-1 && r.EnhancedCode != smtp.NoEnhancedCode {
			ec := r.EnhancedCode
			if ec == smtp.EnhancedCodeNotSet {
				ec = smtp.EnhancedCode{r.Code / 100, 0, 0}
			}
			fmt.Fprintf(&b, "%d.%d.%d ", ec[0], ec[1], ec[2])
		}
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return b.String()
}

var tooManyConnections = reply.TooManyConnections

// replyFor turns what a Session returned into the reply to send:
// its *reply.Reply, found through wrapping; otherwise fallback, a
// temporary failure that reveals nothing of the error.
func replyFor(err error, fallback *reply.Reply) *reply.Reply {
	var r *reply.Reply
	if errors.As(err, &r) && r != nil {
		return r
	}
	return fallback
}

// protocolError answers a bad command and ends a connection that sends
// too many.
func (c *Conn) protocolError(r *reply.Reply) {
	c.reply(r)
	c.errCount++
	if c.errCount > maxErrors {
		c.reply(reply.TooManyErrors)
		c.closed = true
		c.outcome = OutcomeError
	}
}

func (c *Conn) handle(line string) {
	verb, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	verb = strings.ToUpper(verb)
	switch verb {
	case "HELO", "EHLO":
		c.handleGreet(verb == "EHLO", arg)
	case "MAIL":
		c.handleMail(arg)
	case "RCPT":
		c.handleRcpt(arg)
	case "DATA":
		c.handleData(arg)
	case "BDAT":
		c.handleBdat(arg)
	case "RSET":
		c.reset()
		c.reply(reply.ResetDone)
	case "NOOP":
		c.reply(reply.Noop)
	case "VRFY":
		c.reply(reply.Vrfy)
	case "QUIT":
		c.reply(reply.Bye)
		c.closed = true
		c.outcome = OutcomeQuit
	case "AUTH":
		c.handleAuth(arg)
	case "STARTTLS":
		c.handleStartTLS(arg)
	case "HELP":
		c.reply(reply.Help)
	case "SEND", "SOML", "SAML", "EXPN", "TURN":
		c.reply(reply.NotImplemented)
	default:
		c.protocolError(reply.UnknownCommand)
	}
}

func (c *Conn) handleGreet(ehlo bool, arg string) {
	domain, _, _ := strings.Cut(arg, " ")
	switch {
	case domain == "" && ehlo:
		c.reply(reply.EhloDomainRequired)
		return
	case domain == "":
		c.reply(reply.HeloDomainRequired)
		return
	case !validHelo(domain):
		c.reply(reply.InvalidDomainName)
		return
	}
	c.helo = domain
	if c.session != nil {
		// RFC 5321 section 4.1.4: a later EHLO resets as RSET does.
		c.reset()
	} else {
		sess, err := c.server.Backend.NewSession(c)
		if err != nil {
			c.helo = ""
			c.reply(replyFor(err, reply.StorageUnavailable))
			return
		}
		c.session = sess
	}
	if !ehlo {
		c.reply(reply.Hello(c.server.Hostname, c.ip))
		return
	}
	_, isTLS := c.TLSConnectionState()
	var mechs []string
	if c.authAllowed() {
		mechs = c.authMechanisms()
	}
	c.reply(reply.Capabilities(c.server.Hostname, c.ip, c.server.MaxMessageBytes, c.server.TLSConfig != nil && !isTLS, mechs, c.server.EnableSMTPUTF8))
}

func (c *Conn) authAllowed() bool {
	_, isTLS := c.TLSConnectionState()
	return isTLS || c.server.AllowInsecureAuth
}

func (c *Conn) authMechanisms() []string {
	if a, ok := c.session.(AuthSession); ok {
		return a.AuthMechanisms()
	}
	return nil
}

func (c *Conn) handleMail(arg string) {
	switch {
	case c.session == nil:
		c.reply(reply.IntroduceFirst)
		return
	case c.bdat != nil:
		c.reply(reply.DuringTransfer)
		return
	case c.fromReceived:
		c.reply(reply.NestedMail)
		return
	}
	rest, ok := cutPrefixFold(arg, "FROM:")
	if !ok {
		c.protocolError(reply.InvalidArguments)
		return
	}
	from, params, err := parseReversePath(strings.TrimSpace(rest))
	if err != nil {
		c.protocolError(reply.InvalidArguments)
		return
	}
	opts, rep := c.mailOptions(params)
	if rep != nil {
		c.reply(rep)
		return
	}
	if err := c.session.Mail(from, opts); err != nil {
		c.reply(replyFor(err, reply.StorageUnavailable))
		return
	}
	c.fromReceived = true
	c.reply(reply.MailAccepted)
}

// mailOptions reads MAIL's parameters (RFC 5321 section 4.1.1.2).
func (c *Conn) mailOptions(params string) (*smtp.MailOptions, *reply.Reply) {
	args, err := parseParams(params)
	if err != nil {
		return nil, reply.InvalidArguments
	}
	opts := &smtp.MailOptions{}
	for _, a := range args {
		switch a.key {
		case "SIZE":
			size, err := strconv.ParseUint(a.value, 10, 63)
			if err != nil {
				return nil, reply.InvalidArguments
			}
			if c.server.MaxMessageBytes > 0 && int64(size) > c.server.MaxMessageBytes {
				return nil, reply.MessageAboveServerMaximum
			}
			opts.Size = int64(size)
		case "SMTPUTF8":
			if !c.server.EnableSMTPUTF8 {
				return nil, reply.UnrecognizedParameter
			}
			opts.UTF8 = true
		case "BODY":
			switch v := smtp.BodyType(strings.ToUpper(a.value)); v {
			case smtp.Body7Bit, smtp.Body8BitMIME:
				opts.Body = v
			case smtp.BodyBinaryMIME:
				return nil, reply.UnrecognizedParameter
			default:
				return nil, reply.BadBody
			}
		case "AUTH":
			// RFC 4954 section 5: the submitter's identity, which a server
			// that does not trust the client ignores; only its syntax is
			// checked.
			if a.value == "" {
				return nil, reply.InvalidArguments
			}
		case "RET", "ENVID", "REQUIRETLS", "MT-PRIORITY", "BY", "HOLDFOR", "HOLDUNTIL":
			return nil, reply.UnrecognizedParameter
		default:
			return nil, reply.UnrecognizedParameter
		}
	}
	return opts, nil
}

func (c *Conn) handleRcpt(arg string) {
	switch {
	case !c.fromReceived:
		c.reply(reply.MailFirst)
		return
	case c.bdat != nil:
		c.reply(reply.DuringTransfer)
		return
	}
	rest, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		c.protocolError(reply.InvalidArguments)
		return
	}
	to, params, err := parseForwardPath(strings.TrimSpace(rest))
	if err != nil {
		c.protocolError(reply.InvalidArguments)
		return
	}
	if c.server.MaxRecipients > 0 && c.recipients >= c.server.MaxRecipients {
		c.reply(reply.TooManyRecipientsInTransaction)
		return
	}
	args, err := parseParams(params)
	if err != nil {
		c.reply(reply.InvalidArguments)
		return
	}
	if len(args) > 0 {
		// Postern offers no RCPT parameter (DSN's NOTIFY and ORCPT among
		// them: DSN is not advertised).
		c.reply(reply.UnrecognizedParameter)
		return
	}
	if err := c.session.Rcpt(to, &smtp.RcptOptions{}); err != nil {
		c.reply(replyFor(err, reply.StorageUnavailable))
		return
	}
	c.recipients++
	c.reply(reply.RcptAccepted)
}

func (c *Conn) handleData(arg string) {
	switch {
	case arg != "":
		c.reply(reply.InvalidArguments)
		return
	case c.bdat != nil:
		c.reply(reply.DuringTransfer)
		return
	case !c.fromReceived || c.recipients == 0:
		c.reply(reply.RcptFirst)
		return
	}
	c.reply(reply.StartData)
	c.lc.SetMode(lineserver.Stream)
	defer c.lc.SetMode(lineserver.Command)
	defer c.reset()

	dr := newDataReader(c.lc.R, c.server.MaxMessageBytes, c.server.MaxLineLength)
	err := c.session.Data(dr)
	// A client may send at most this much more than what was read: a
	// session that stopped reading early (a refusal), or a message over
	// the maximum, is read to its end to stay in step with the client,
	// but not forever.
	allowance := max(c.server.MaxMessageBytes, 1<<20)
	if dr.err == nil {
		dr.max = dr.n + allowance
		io.Copy(io.Discard, dr)
	}
	if c.tr != nil {
		c.tr.Message(dr.n)
	}
	switch dr.err {
	case io.EOF:
		c.reply(dataReply(err))
	case errTooLarge:
		dr.err, dr.max = nil, dr.n+allowance
		io.Copy(io.Discard, dr)
		if dr.err != io.EOF {
			c.closed = true
		}
		c.reply(reply.MessageAboveServerMaximum)
	case errLineTooLong:
		c.reply(reply.LineTooLong)
		c.closed = true
	default:
		c.closed = true // the client is gone or stalled: no reply is read
	}
}

// dataReply is the reply to the end of a message: the session's, or the
// generic 250 when it returned nil.
func dataReply(err error) *reply.Reply {
	if err == nil {
		return reply.QueuedOK
	}
	return replyFor(err, reply.StorageUnavailable)
}

func (c *Conn) reset() {
	c.endBdat(errTransferAborted)
	c.bytesReceived = 0
	if c.session != nil {
		c.session.Reset()
	}
	c.fromReceived = false
	c.recipients = 0
}

func (c *Conn) handleAuth(arg string) {
	switch {
	case c.session == nil:
		c.reply(reply.IntroduceFirst)
		return
	case c.didAuth:
		c.reply(reply.AlreadyAuthenticated)
		return
	}
	parts := strings.Fields(arg)
	if len(parts) == 0 {
		c.reply(reply.InvalidArguments)
		return
	}
	if !c.authAllowed() {
		// AUTH is not offered before TLS; Exchange Online answers it as an
		// unknown mechanism.
		c.reply(reply.AuthMechanismUnsupported)
		return
	}
	var response []byte
	if len(parts) > 1 {
		var err error
		if response, err = decodeSASL(parts[1]); err != nil {
			c.reply(reply.AuthBadBase64)
			return
		}
	}
	as, ok := c.session.(AuthSession)
	if !ok {
		c.reply(reply.AuthMechanismUnsupported)
		return
	}
	srv, err := as.Auth(strings.ToUpper(parts[0]))
	if err != nil {
		c.reply(replyFor(err, reply.AuthTemporaryFailure))
		return
	}
	for {
		challenge, done, err := srv.Next(response)
		if err != nil {
			c.reply(replyFor(err, reply.AuthTemporaryFailure))
			return
		}
		if done {
			break
		}
		c.reply(reply.AuthChallenge(challenge))
		line, err := c.readCommand(c.server.MaxAuthLineLength, 0)
		if err != nil {
			c.readFailed(err)
			c.closed = true
			return
		}
		if c.tr != nil {
			c.tr.Received(line, true)
		}
		if line == "*" {
			c.reply(reply.AuthCancelled) // RFC 4954 section 4
			return
		}
		if response, err = decodeSASL(line); err != nil {
			c.reply(reply.AuthBadBase64)
			return
		}
	}
	c.didAuth = true
	c.reply(reply.AuthSucceeded)
}

func decodeSASL(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil // RFC 4954 section 4: an empty initial response
	}
	return base64.StdEncoding.DecodeString(s)
}

func (c *Conn) handleStartTLS(arg string) {
	_, isTLS := c.TLSConnectionState()
	switch {
	case isTLS:
		c.reply(reply.AlreadyTLS)
		return
	case c.server.TLSConfig == nil:
		c.protocolError(reply.UnknownCommand) // not offered
		return
	case arg != "":
		c.protocolError(reply.InvalidArguments)
		return
	}
	c.reply(reply.ReadyToStartTLS)
	if err := c.lc.W.Flush(); err != nil {
		c.closed = true
		return
	}
	tc := tls.Server(c.lc.Accepted(), c.server.TLSConfig)
	tc.SetDeadline(time.Now().Add(c.readTimeout))
	if err := tc.Handshake(); err != nil {
		c.closed = true // the channel is in no state to carry a reply
		c.outcome = OutcomeTLSFailed
		return
	}
	tc.SetDeadline(time.Time{})
	c.lc.SetTransport(tc)
	// RFC 3207 section 4.2: forget everything learnt before TLS.
	c.reset()
	if c.session != nil {
		c.session.Logout()
		c.session = nil
	}
	c.helo, c.didAuth = "", false
}

// errTransferAborted ends a BDAT transfer that RSET, a new EHLO or a
// closed connection interrupted.
var errTransferAborted = errors.New("message transfer aborted")

// bdatTransfer is a message arriving in BDAT chunks: the session's Data
// reads a pipe that the chunks are copied into.
type bdatTransfer struct {
	pw     *io.PipeWriter
	result chan error
}

func (c *Conn) handleBdat(arg string) {
	args := strings.Fields(arg)
	if len(args) == 0 || len(args) > 2 {
		c.reply(reply.InvalidArguments)
		return
	}
	size, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		c.reply(reply.InvalidArguments)
		return
	}
	last := len(args) == 2
	if last && !strings.EqualFold(args[1], "LAST") {
		c.reply(reply.InvalidArguments)
		return
	}
	c.lc.SetMode(lineserver.Stream)
	defer c.lc.SetMode(lineserver.Command)
	if c.tr != nil {
		c.tr.Message(int64(size))
	}
	chunk := io.LimitReader(c.lc.R, int64(size))
	discard := func() bool {
		n, _ := io.Copy(io.Discard, chunk)
		return n == int64(size)
	}
	if !c.fromReceived || c.recipients == 0 {
		// RFC 3030 section 2: the chunk follows the command even when
		// the command is refused.
		if !discard() {
			c.closed = true
			return
		}
		c.reply(reply.RcptFirst)
		return
	}
	if c.server.MaxMessageBytes > 0 && c.bytesReceived+int64(size) > c.server.MaxMessageBytes {
		if !discard() {
			c.closed = true
			return
		}
		c.reset()
		c.reply(reply.MessageAboveServerMaximum)
		return
	}
	if c.bdat == nil {
		pr, pw := io.Pipe()
		t := &bdatTransfer{pw: pw, result: make(chan error, 1)}
		sess := c.session
		go func() {
			var err error
			defer func() {
				if v := recover(); v != nil {
					c.server.log().Error("panic in SMTP session", "session", c.id, "ip", c.ip, "panic", v, "stack", string(debug.Stack()))
					err = reply.InternalError
				}
				pr.CloseWithError(errTransferAborted)
				t.result <- err
			}()
			err = sess.Data(pr)
		}()
		c.bdat = t
	}
	n, err := io.Copy(c.bdat.pw, chunk)
	c.bytesReceived += n
	if err != nil {
		// The session stopped reading early (a refusal) or the client went
		// away: finish the chunk, then answer.
		if !discard() {
			c.closed = true
			return
		}
		result := c.finishBdat()
		c.reset()
		c.reply(dataReply(result))
		return
	}
	if n < int64(size) {
		c.closed = true // the connection ended inside the chunk
		return
	}
	if !last {
		c.reply(reply.ChunkReceived(int64(size)))
		return
	}
	result := c.finishBdat()
	c.reset()
	c.reply(dataReply(result))
}

// finishBdat ends the message's pipe and returns the session's reply.
func (c *Conn) finishBdat() error {
	t := c.bdat
	c.bdat = nil
	t.pw.Close()
	return <-t.result
}

// endBdat abandons a transfer in progress; the session's Data sees err.
func (c *Conn) endBdat(err error) {
	if t := c.bdat; t != nil {
		c.bdat = nil
		t.pw.CloseWithError(err)
		<-t.result
	}
}
