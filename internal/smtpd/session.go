package smtpd

import (
	"context"
	"crypto/tls"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/policy"
	"postern.dev/postern/internal/reply"
	"postern.dev/postern/internal/senderauth"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/transport"
)

// Mechanisms offered after TLS. Exchange offers LOGIN and XOAUTH2; PLAIN
// is the standard password mechanism (RFC 4616) most libraries prefer, and
// OAUTHBEARER the standard token one (RFC 7628).
var (
	basicMechanisms = []string{"LOGIN", "PLAIN"}
	tokenMechanisms = []string{"XOAUTH2", "OAUTHBEARER"}
	allMechanisms   = append(append([]string{}, basicMechanisms...), tokenMechanisms...)
)

// session is one go-smtp session: from EHLO to QUIT, or to STARTTLS.
type session struct {
	srv  *Server
	role Role
	conn *smtp.Conn
	tc   *trackedConn
	ip   netip.Addr
	tls  *tls.ConnectionState

	// Set by a successful AUTH; holdsSlot while it occupies one of the
	// mailbox's concurrent-connection slots.
	mailbox   *directory.Mailbox
	holdsSlot bool
	// authProtocol is "Basic" or "OAuth", for the SMTP AUTH clients report.
	authProtocol string

	// The transaction. att is the inbound connector an anonymous client
	// matched, decided at MAIL FROM.
	from       address.Address
	recipients []transport.Recipient
	att        policy.Attribution
}

func (s *Server) newSession(c *smtp.Conn, role Role) *session {
	sess := &session{srv: s, role: role, conn: c, tc: trackedOf(c.Conn())}
	if sess.tc != nil {
		sess.ip = sess.tc.ip
	}
	if st, ok := c.TLSConnectionState(); ok {
		sess.tls = &st
	}
	return sess
}

// AuthMechanisms lists what EHLO advertises; go-smtp only advertises and
// allows AUTH once the connection is encrypted.
//
// Before AUTH the client has named no user, so its organization is not
// known: LOGIN and PLAIN are left out only when Basic authentication is off
// in every organization (Set-TransportConfig -SmtpBasicAuthDisabled). In a
// deployment with organizations of both kinds they stay advertised, and a
// password for a mailbox whose organization turned Basic off gets 550
// 5.7.30 after the credentials.
func (s *session) AuthMechanisms() []string {
	if s.basicOff() {
		return tokenMechanisms
	}
	return allMechanisms
}

func (s *session) basicOff() bool {
	orgs := s.srv.dir.Load().Contents().Organizations
	for _, o := range orgs {
		if !o.SmtpBasicAuthDisabled {
			return false
		}
	}
	return len(orgs) > 0
}

// Auth starts a SASL exchange. go-smtp calls it for any mechanism name the
// client sends, so the name is checked against what was offered.
func (s *session) Auth(mech string) (sasl.Server, error) {
	mech = strings.ToUpper(mech)
	if !slices.Contains(allMechanisms, mech) {
		return nil, reply.AuthMechanismUnsupported
	}
	if slices.Contains(basicMechanisms, mech) && s.basicOff() {
		return nil, s.authFailed(reply.BasicAuthRetired, "")
	}
	check := func(username, password string) error {
		mb, rep := s.srv.auth.Basic(s.ip, username, password)
		if rep != nil {
			return s.authFailed(rep, username)
		}
		s.signedIn(mb, policy.Basic)
		return nil
	}
	checkToken := func(user, token string) error {
		mb, rep := s.srv.auth.OAuth(context.Background(), s.ip, user, token)
		if rep != nil {
			return s.authFailed(rep, user)
		}
		s.signedIn(mb, policy.OAuth)
		return nil
	}
	switch mech {
	case "PLAIN":
		return auth.NewPlainServer(check), nil
	case "XOAUTH2":
		return auth.NewXOAuth2Server(checkToken), nil
	case "OAUTHBEARER":
		return auth.NewOAuthBearerServer(checkToken), nil
	}
	return auth.NewLoginServer(check), nil
}

// authFailed counts a refused AUTH on this connection and, past the limit or
// when the address is throttled, makes the refusal the connection's last reply.
func (s *session) authFailed(rep *reply.Reply, user string) error {
	if s.srv.cfg.ConnLog != nil {
		s.srv.cfg.ConnLog.Record(store.ConnectionEvent{ClientIP: s.ip.String(), Role: s.role.String(), Event: "AuthFailed",
			SignIn: user, Reply: reply.String(rep)})
	}
	if s.tc == nil {
		return rep
	}
	s.tc.authFailures++
	if rep == reply.AuthThrottled {
		s.tc.closeAfterWrite.Store(true)
	} else if s.tc.authFailures >= s.srv.cfg.MaxAuthFailures {
		s.tc.closeAfterWrite.Store(true)
		s.srv.log.Info("closing after failed AUTH attempts", "ip", s.ip, "failures", s.tc.authFailures)
	}
	return rep
}

func (s *session) signedIn(mb *directory.Mailbox, method policy.AuthMethod) {
	s.mailbox, s.authProtocol = mb, method.String()
	// A mailbox may have 3 connections submitting at once; the 4th signs in
	// but is refused at end of DATA with 432 4.3.2, as Exchange does, unless
	// a slot has come free by then.
	s.holdsSlot = s.srv.slots.Acquire(mb.ID)
	s.srv.log.Info("authenticated", "ip", s.ip, "mailbox", mb.PrimarySmtpAddress, "tls", tlsVersion(s.tls), "protocol", s.authProtocol)
}

// Mail handles MAIL FROM.
func (s *session) mail(from string, opts *smtp.MailOptions) error {
	if s.role.requiresAuth() && s.mailbox == nil {
		return reply.NotAuthenticated
	}
	var a address.Address
	if from != "" {
		var err error
		if a, err = address.Parse(from); err != nil {
			return reply.BadSenderSyntax
		}
	}
	if s.mailbox != nil && opts != nil && opts.Size > 0 {
		if rep := policy.CheckSize(s.mailbox, opts.Size); rep != nil {
			return rep
		}
	}
	if s.mailbox == nil {
		// Anonymous: attribute the client to a connector (or none) and
		// decide the sender. A failed AUTH never gets here with relay
		// rights: s.mailbox is only set by a successful one.
		dir := s.srv.dir.Load()
		facts := s.clientFacts()
		att := policy.Attribute(dir, facts)
		if rep := policy.CheckAnonymousSender(dir, att, facts, a); rep != nil {
			return rep
		}
		s.att = att
	}
	s.from, s.recipients = a, nil
	return nil
}

// clientFacts describes how the client connected, for connector matching.
func (s *session) clientFacts() policy.ClientFacts {
	f := policy.ClientFacts{IP: s.ip, TLS: s.tls != nil}
	if s.tls != nil && len(s.tls.PeerCertificates) > 0 {
		f.CertNames, f.CertVerified, f.CertFingerprint = s.srv.clientCertificate(s.tls.PeerCertificates)
	}
	return f
}

// Rcpt handles RCPT TO: the recipient limit per message, then routing.
func (s *session) rcpt(to string) error {
	a, err := address.Parse(to)
	if err != nil {
		return reply.BadRecipientSyntax
	}
	dir := s.srv.dir.Load()
	var route policy.Route
	var rep *reply.Reply
	if s.mailbox != nil {
		if rep = policy.CheckRecipientCount(s.mailbox, len(s.recipients)+1); rep != nil {
			return rep
		}
		route, rep = policy.RouteAuthenticated(dir, a)
	} else {
		route, rep = policy.RouteAnonymous(dir, s.att, s.from, a)
	}
	if rep != nil {
		return rep
	}
	s.recipients = append(s.recipients, transport.Recipient{Address: a, Route: route})
	return nil
}

// Data reads the message and hands it to the transport once the checks
// Exchange makes at end of DATA pass: concurrent connections, then Send As.
func (s *session) data(r io.Reader) error {
	limit := int64(directory.MaxMessageSize)
	if s.mailbox != nil {
		limit = policy.SendSizeLimit(s.mailbox)
	}
	msg, rep := transport.ReadMessage(r, limit, s.srv.submitter.SpoolDir)
	if rep != nil {
		return rep
	}
	defer msg.Close() // the spool file; commits keep their own links

	dir := s.srv.dir.Load()
	in := &transport.Submission{
		From: s.from, Recipients: s.recipients, Message: msg,
		ClientIP: s.ip.String(), Helo: s.conn.Hostname(), TLS: s.tls,
	}
	if s.mailbox != nil {
		// Directory changes made during the session (a revoked grant, a
		// lowered limit) apply from this message on.
		mb := dir.Mailbox(s.mailbox.ID)
		if mb == nil {
			return reply.NotAuthenticated // the mailbox was removed meanwhile
		}
		if !s.holdsSlot {
			if s.holdsSlot = s.srv.slots.Acquire(mb.ID); !s.holdsSlot {
				return reply.ConcurrentConnections
			}
		}
		from, sender, err := msg.Senders()
		if err != nil {
			return reply.NoFromHeader
		}
		facts := policy.SenderFacts{Login: mb, HeaderFrom: from, HeaderSender: sender}
		if !s.from.IsZero() {
			facts.EnvelopeFrom = s.from.Key()
		}
		if rep := policy.CheckSendAs(dir, facts); rep != nil {
			return rep
		}
		in.AuthMailbox, in.Org = mb, dir.Organization(mb.OrgID)
		in.AuthProtocol = s.authProtocol
	} else {
		var local []*directory.Mailbox
		for _, r := range s.recipients {
			if r.Route.Mailbox != nil {
				local = append(local, r.Route.Mailbox)
			}
		}
		in.Org = policy.Organization(dir, s.att, s.from, local)
		if s.att.Connector != nil {
			in.InboundConnector = s.att.Connector.Name
		} else if c := s.srv.cfg.SenderAuth; c != nil {
			// Direct Send and other unattributed mail proves its sender
			// with SPF, DKIM and DMARC; what fails its domain's policy is
			// delivered to Junk Email.
			from := ""
			if !s.from.IsZero() {
				from = s.from.String()
			}
			res := c.Check(context.Background(), senderauth.Input{ClientIP: s.ip, Helo: s.conn.Hostname(), MailFrom: from, Message: msg, Size: msg.Size()})
			in.AuthenticationResults, in.Junk = res.Header, res.Junk
		}
	}
	in.TLSVersion = tlsVersion(s.tls)
	return s.srv.submitter.Submit(context.Background(), in)
}

// Mail, Rcpt and Data run the commands and put every refusal in the
// connection log, where an admin looks first when a device cannot send.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	return s.logged("MailRejected", from, "", s.mail(from, opts))
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	return s.logged("RcptRejected", s.from.String(), to, s.rcpt(to))
}

func (s *session) Data(r io.Reader) error {
	var to []string
	for _, rc := range s.recipients {
		to = append(to, rc.Address.String())
	}
	return s.logged("DataRejected", s.from.String(), strings.Join(to, ", "), s.data(r))
}

// logged records err, if it is a refusal, and returns it unchanged.
func (s *session) logged(event, sender, recipient string, err error) error {
	if rep, ok := err.(*reply.Reply); ok && err != nil && s.srv.cfg.ConnLog != nil {
		if sender == "@" {
			sender = ""
		}
		s.srv.cfg.ConnLog.Record(store.ConnectionEvent{ClientIP: s.ip.String(), Role: s.role.String(), Event: event,
			SignIn: s.signIn(), Sender: sender, Recipient: recipient, Reply: reply.String(rep)})
	}
	return err
}

func (s *session) signIn() string {
	if s.mailbox != nil {
		return s.mailbox.PrimarySmtpAddress
	}
	return ""
}

// Reset ends the transaction (RSET, or after DATA).
func (s *session) Reset() {
	s.from, s.recipients, s.att = address.Address{}, nil, policy.Attribution{}
}

// Logout ends the session and frees the mailbox's connection slot.
func (s *session) Logout() error {
	if s.holdsSlot {
		s.srv.slots.Release(s.mailbox.ID)
		s.holdsSlot = false
	}
	return nil
}

func tlsVersion(st *tls.ConnectionState) string {
	if st == nil {
		return "none"
	}
	return tls.VersionName(st.Version)
}
