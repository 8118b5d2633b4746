// Package testsmtp is a scripted SMTP receiver on loopback for tests of
// outbound delivery. It is written by hand, without an SMTP library,
// because it must misbehave on purpose: stall, drop the connection, send
// overlong or malformed replies, fail the TLS handshake after offering
// STARTTLS, or close in the middle of DATA.
package testsmtp

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"postern.dev/postern/internal/testcert"
)

// Stage names a point in the SMTP dialogue.
type Stage string

const (
	Greeting Stage = "greeting"
	Ehlo     Stage = "ehlo"
	StartTLS Stage = "starttls"
	Auth     Stage = "auth"
	Mail     Stage = "mail"
	Rcpt     Stage = "rcpt"
	Data     Stage = "data" // the DATA command, before the 354
	Body     Stage = "body" // the reply after the final "."
)

// Fault is a misbehaviour at one stage.
type Fault int

const (
	None        Fault = iota
	Drop              // close instead of replying
	Stall             // never reply
	Overlong          // a 100,000-octet reply line
	Malformed         // a line that is not an SMTP reply
	FailTLS           // StartTLS: say 220, then send garbage instead of a handshake
	DropMidData       // Body: read a little of the message, then close
)

// Config scripts the receiver; the zero value accepts everything.
type Config struct {
	Hostname       string
	TLS            *tls.Config // offers STARTTLS when set
	AuthMechanisms []string    // offered after TLS (always, without TLS)
	// CheckAuth decides AUTH (secret: the password, or the XOAUTH2 token);
	// nil accepts all.
	CheckAuth   func(mech, user, secret string) bool
	RequireAuth bool
	// Reply overrides a stage's reply ("" keeps the default).
	Reply func(stage Stage, arg string) string
	// Faults apply on every connection, or on the first FaultConnections.
	Faults           map[Stage]Fault
	FaultConnections int
	MaxSize          int
}

// Message is one accepted message.
type Message struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool
	AuthUser string
	AuthMech string
	Helo     string
}

// Server is a running receiver.
type Server struct {
	Addr string

	ln    net.Listener
	mu    sync.Mutex
	cfg   Config
	msgs  []Message
	conns int // since the last SetConfig, for FaultConnections
	total int
	open  map[net.Conn]bool
	cond  *sync.Cond
	wg    sync.WaitGroup
	close sync.Once
}

// Start listens on 127.0.0.1:0.
func Start(cfg Config) (*Server, error) { return StartOn("127.0.0.1:0", cfg) }

// StartOn listens on the given loopback address.
func StartOn(addr string, cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln, cfg: cfg, open: map[net.Conn]bool{}}
	s.cond = sync.NewCond(&s.mu)
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// SetConfig replaces the script for later connections.
func (s *Server) SetConfig(cfg Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
	s.conns = 0 // FaultConnections counts from here
}

// Messages returns the accepted messages in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitMessages waits until at least n messages have arrived.
func (s *Server) WaitMessages(n int, timeout time.Duration) ([]Message, error) {
	deadline := time.Now().Add(timeout)
	for {
		msgs := s.Messages()
		if len(msgs) >= n {
			return msgs, nil
		}
		if time.Now().After(deadline) {
			return msgs, fmt.Errorf("testsmtp: %d of %d messages arrived in %v", len(msgs), n, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Connections counts accepted connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Close stops listening, closes every connection and waits for them.
func (s *Server) Close() error {
	s.close.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		for c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return nil
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		s.total++
		cfg, n := s.cfg, s.conns
		s.open[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		if cfg.FaultConnections > 0 && n > cfg.FaultConnections {
			cfg.Faults = nil
		}
		go func() {
			defer s.wg.Done()
			(&session{srv: s, cfg: cfg, conn: c}).run()
			c.Close()
			s.mu.Lock()
			delete(s.open, c)
			s.mu.Unlock()
		}()
	}
}

// session is one connection's dialogue.
type session struct {
	srv  *Server
	cfg  Config
	conn net.Conn
	r    *bufio.Reader
	tls  bool
	helo string
	user string
	mech string
	from string
	mail bool
	to   []string
}

var errStop = errors.New("stop")

func (s *session) host() string {
	if s.cfg.Hostname != "" {
		return s.cfg.Hostname
	}
	return "mx.test"
}

// reply sends the stage's reply, or its fault; errStop ends the session.
func (s *session) reply(stage Stage, arg, def string) (string, error) {
	switch s.cfg.Faults[stage] {
	case Drop:
		return "", errStop
	case Stall:
		buf := make([]byte, 1)
		for {
			if _, err := s.conn.Read(buf); err != nil {
				return "", errStop
			}
		}
	case Overlong:
		s.conn.Write([]byte("250 " + strings.Repeat("x", 100000) + "\r\n"))
		return "", errStop
	case Malformed:
		s.conn.Write([]byte("hello there\r\n"))
		return "", errStop
	}
	line := def
	if s.cfg.Reply != nil {
		if v := s.cfg.Reply(stage, arg); v != "" {
			line = v
		}
	}
	_, err := s.conn.Write([]byte(line + "\r\n"))
	return line, err
}

func (s *session) readLine() (string, error) {
	var b []byte
	for {
		chunk, more, err := s.r.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > 64<<10 {
			return "", errors.New("line too long")
		}
		if !more {
			return string(b), nil
		}
	}
}

func ok(reply string) bool { return strings.HasPrefix(reply, "2") }

func (s *session) run() {
	s.r = bufio.NewReader(s.conn)
	if _, err := s.reply(Greeting, "", "220 "+s.host()+" ESMTP testsmtp"); err != nil {
		return
	}
	for {
		line, err := s.readLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			s.helo, s.mail, s.to = arg, false, nil
			def := "250 " + s.host()
			if strings.EqualFold(verb, "EHLO") {
				def = s.ehlo()
			}
			if _, err := s.reply(Ehlo, arg, def); err != nil {
				return
			}
		case "STARTTLS":
			if s.cfg.TLS == nil || s.tls {
				s.conn.Write([]byte("502 5.5.1 not offered\r\n"))
				continue
			}
			if s.cfg.Faults[StartTLS] == FailTLS {
				s.conn.Write([]byte("220 2.0.0 Ready to start TLS\r\n\x15\x03\x03\x00\x02garbage"))
				return
			}
			if _, err := s.reply(StartTLS, "", "220 2.0.0 Ready to start TLS"); err != nil {
				return
			}
			tc := tls.Server(s.conn, s.cfg.TLS)
			if tc.Handshake() != nil {
				return
			}
			s.conn, s.r, s.tls = tc, bufio.NewReader(tc), true
			s.helo, s.mail, s.to, s.user = "", false, nil, ""
		case "AUTH":
			if err := s.auth(arg); err != nil {
				return
			}
		case "MAIL":
			addr := pathArg(arg, "FROM:")
			if s.cfg.RequireAuth && s.user == "" {
				s.conn.Write([]byte("530 5.7.57 Client not authenticated to send mail.\r\n"))
				continue
			}
			r, err := s.reply(Mail, addr, "250 2.1.0 Sender OK")
			if err != nil {
				return
			}
			if ok(r) {
				s.from, s.mail, s.to = addr, true, nil
			}
		case "RCPT":
			addr := pathArg(arg, "TO:")
			if !s.mail {
				s.conn.Write([]byte("503 5.5.1 MAIL first\r\n"))
				continue
			}
			r, err := s.reply(Rcpt, addr, "250 2.1.5 Recipient OK")
			if err != nil {
				return
			}
			if ok(r) {
				s.to = append(s.to, addr)
			}
		case "DATA":
			if len(s.to) == 0 {
				s.conn.Write([]byte("554 5.5.1 No valid recipients\r\n"))
				continue
			}
			r, err := s.reply(Data, "", "354 Start mail input; end with <CRLF>.<CRLF>")
			if err != nil {
				return
			}
			if !strings.HasPrefix(r, "354") {
				continue
			}
			if err := s.body(); err != nil {
				return
			}
		case "RSET":
			s.mail, s.to = false, nil
			s.conn.Write([]byte("250 2.0.0 OK\r\n"))
		case "NOOP":
			s.conn.Write([]byte("250 2.0.0 OK\r\n"))
		case "QUIT":
			s.conn.Write([]byte("221 2.0.0 Bye\r\n"))
			return
		default:
			s.conn.Write([]byte("500 5.5.2 Unrecognized command\r\n"))
		}
	}
}

func (s *session) ehlo() string {
	lines := []string{s.host(), "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"}
	if s.cfg.MaxSize > 0 {
		lines = append(lines, fmt.Sprintf("SIZE %d", s.cfg.MaxSize))
	}
	if s.cfg.TLS != nil && !s.tls {
		lines = append(lines, "STARTTLS")
	}
	if len(s.cfg.AuthMechanisms) > 0 && (s.cfg.TLS == nil || s.tls) {
		lines = append(lines, "AUTH "+strings.Join(s.cfg.AuthMechanisms, " "))
	}
	var b strings.Builder
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		if i > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("250" + sep + l)
	}
	return b.String()
}

func pathArg(arg, prefix string) string {
	if len(arg) >= len(prefix) && strings.EqualFold(arg[:len(prefix)], prefix) {
		arg = arg[len(prefix):]
	}
	arg = strings.TrimSpace(arg)
	if i := strings.Index(arg, ">"); strings.HasPrefix(arg, "<") && i > 0 {
		return arg[1:i]
	}
	addr, _, _ := strings.Cut(arg, " ")
	return addr
}

// auth runs AUTH PLAIN, LOGIN or XOAUTH2.
func (s *session) auth(arg string) error {
	mech, initial, hasInitial := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	offered := false
	for _, m := range s.cfg.AuthMechanisms {
		offered = offered || strings.EqualFold(m, mech)
	}
	if !offered {
		_, err := s.conn.Write([]byte("504 5.5.4 mechanism not offered\r\n"))
		return err
	}
	if s.cfg.Faults[Auth] != None {
		_, err := s.reply(Auth, mech, "")
		return err
	}
	// read returns the next client response, decoded.
	read := func(challenge string) (string, bool, error) {
		s.conn.Write([]byte("334 " + challenge + "\r\n"))
		line, err := s.readLine()
		if err != nil {
			return "", false, err
		}
		if line == "*" {
			s.conn.Write([]byte("501 5.7.0 cancelled\r\n"))
			return "", false, nil
		}
		b, err := base64.StdEncoding.DecodeString(line)
		return string(b), err == nil, nil
	}
	decode := func(v string) (string, bool) {
		b, err := base64.StdEncoding.DecodeString(v)
		return string(b), err == nil
	}
	var user, secret string
	var good bool
	var err error
	switch mech {
	case "PLAIN":
		var resp string
		if hasInitial {
			resp, good = decode(initial)
		} else if resp, good, err = read(""); err != nil || !good {
			return err
		}
		parts := strings.Split(resp, "\x00")
		if good = good && len(parts) == 3; good {
			user, secret = parts[1], parts[2]
		}
	case "LOGIN":
		if user, good, err = read("VXNlcm5hbWU6"); err != nil || !good {
			return err
		}
		if secret, good, err = read("UGFzc3dvcmQ6"); err != nil || !good {
			return err
		}
	case "XOAUTH2":
		var resp string
		if hasInitial {
			resp, good = decode(initial)
		} else if resp, good, err = read(""); err != nil || !good {
			return err
		}
		for _, f := range strings.Split(resp, "\x01") {
			if v, ok := strings.CutPrefix(f, "user="); ok {
				user = v
			}
			if v, ok := strings.CutPrefix(f, "auth=Bearer "); ok {
				secret = v
			}
		}
	}
	if good && (s.cfg.CheckAuth == nil || s.cfg.CheckAuth(mech, user, secret)) {
		s.user, s.mech = user, mech
		_, err := s.conn.Write([]byte("235 2.7.0 Authentication successful\r\n"))
		return err
	}
	if mech == "XOAUTH2" {
		// As Microsoft and Google do: a JSON error in a 334, then the 535
		// after the client's empty response.
		errJSON := base64.StdEncoding.EncodeToString([]byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/SMTP.Send"}`))
		s.conn.Write([]byte("334 " + errJSON + "\r\n"))
		if _, err := s.readLine(); err != nil {
			return err
		}
	}
	_, err = s.conn.Write([]byte("535 5.7.3 Authentication unsuccessful\r\n"))
	return err
}

// body reads the message up to the final "." and replies.
func (s *session) body() error {
	var data []byte
	lines := 0
	for {
		line, err := s.readLine()
		if err != nil {
			return err
		}
		if line == "." {
			break
		}
		lines++
		if s.cfg.Faults[Body] == DropMidData && lines >= 1 {
			return errStop
		}
		line = strings.TrimPrefix(line, ".")
		data = append(data, line...)
		data = append(data, '\r', '\n')
	}
	s.srv.mu.Lock()
	n := len(s.srv.msgs) + 1
	s.srv.mu.Unlock()
	r, err := s.reply(Body, "", fmt.Sprintf("250 2.0.0 OK queued as %d", n))
	if err != nil {
		return err
	}
	if ok(r) {
		s.srv.mu.Lock()
		s.srv.msgs = append(s.srv.msgs, Message{From: s.from, To: s.to, Data: data, TLS: s.tls, AuthUser: s.user, AuthMech: s.mech, Helo: s.helo})
		s.srv.mu.Unlock()
	}
	s.mail, s.to = false, nil
	return nil
}

// SelfSignedTLS makes a server config with a fresh self-signed ECDSA
// certificate for names and 127.0.0.1, and a pool that trusts it.
func SelfSignedTLS(names ...string) (*tls.Config, *x509.CertPool, error) {
	c, err := testcert.Make(names...)
	if err != nil {
		return nil, nil, err
	}
	return c.ServerConfig(), c.Pool, nil
}
