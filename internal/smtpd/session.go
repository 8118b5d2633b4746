package smtpd

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/metrics"
	"postern.dev/postern/internal/policy"
	"postern.dev/postern/internal/protolog"
	"postern.dev/postern/internal/reply"
	"postern.dev/postern/internal/senderauth"
	"postern.dev/postern/internal/signin"
	"postern.dev/postern/internal/smtpserver"
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
	conn *smtpserver.Conn
	tc   *trackedConn
	ip   netip.Addr
	tls  *tls.ConnectionState

	// Set by a successful AUTH; holdsSlot while it occupies one of the
	// mailbox's concurrent-connection slots (slot).
	mailbox   *directory.Mailbox
	holdsSlot bool
	slot      limits.Slot
	// authProtocol is "Basic" or "OAuth", for the SMTP AUTH clients report.
	authProtocol string

	// The transaction. verdicts are the anonymous recipients' decisions,
	// one per recipient (their organization and its matched connector);
	// declaredSize is MAIL FROM's SIZE= (RFC 1870), 0 when not given.
	from         address.Address
	recipients   []transport.Recipient
	verdicts     []policy.Verdict
	declaredSize int64
	// seen holds the recipients' address keys and mailboxes, perOrg the
	// anonymous recipients per organization: constant cost per RCPT.
	seen   map[any]bool
	perOrg map[int64]int
	// throttled lists the source throttling classes of the transaction's
	// anonymous recipients: an accepted message counts once in each.
	throttled []policy.SourceClass
	// overLimit counts the recipients accepted past RecipientLimits or
	// MaxRecipientEnvelopeLimit: as in Exchange, the message is then
	// refused whole at end of DATA (reference section 4.1), so they are
	// counted, never kept.
	overLimit int
	// deferred is the reply the message gets at end of DATA when a
	// recipient was counted past a limit (policy.Defer).
	deferred *reply.Reply
	// senderAuth caches the SPF/DKIM/DMARC result of the message in DATA.
	senderAuth *senderauth.Result
	facts      *policy.ClientFacts
	// tx is the transaction the policy chain judges: one per session,
	// reused by every walk so that walking it allocates nothing.
	tx policy.Transaction
	// log carries the connection's session ID on every line; size is the
	// last message's size, for postern_message_bytes_accepted_total.
	log  *slog.Logger
	size int64
}

func (s *Server) newSession(c *smtpserver.Conn, role Role) *session {
	sess := &session{srv: s, role: role, conn: c, tc: trackedOf(c.Conn()), log: s.log.With("session", c.SessionID())}
	if sess.tc != nil {
		sess.ip = sess.tc.ip
	}
	if st, ok := c.TLSConnectionState(); ok {
		sess.tls = &st
		sess.dropUnmatchable()
	}
	return sess
}

// dropUnmatchable stops holding a transcript for connector logging once
// TLS shows that the client matches no logged connector, by address or by
// certificate: held only because a certificate might have matched.
func (s *session) dropUnmatchable() {
	p := s.pending()
	if p == nil {
		return
	}
	f := s.clientFacts()
	for _, ic := range s.srv.dir.Load().LoggedInboundConnectors() {
		if ic.MatchesIP(f.IP) || ic.MatchesCertificate(f.CertNames) {
			return
		}
	}
	p.Discard()
}

// pending is the connection's transcript held for connector logging, or nil.
func (s *session) pending() *protolog.Pending {
	if s.tc == nil {
		return nil
	}
	return s.tc.pending
}

// named tells the held transcript who may see the address of the command
// being answered (see protolog.Party).
func (s *session) named(party protolog.Party) {
	if p := s.pending(); p != nil {
		p.Named(party)
	}
}

// judgedUnder records that a command was accepted or refused under an
// inbound connector; with protocol logging on, the session goes to its
// organization's log.
func (s *session) judgedUnder(ic *directory.InboundConnector) {
	if p := s.pending(); p != nil && ic != nil && ic.ProtocolLogging {
		p.Matched(ic.OrgID, ic.Name)
	}
}

// senderParty: a sender of an organization is that organization's to
// see; the null sender and a sender of no organization are anyone's.
func senderParty(dir *directory.Snapshot, from address.Address) protolog.Party {
	p := protolog.Party{Public: true}
	if !from.IsZero() {
		p.Address = from.String()
		if org := policy.SenderOrganization(dir, from); org != nil {
			p.Public, p.Orgs = false, []int64{org.ID}
		}
	}
	return p
}

// recipientParty: a recipient is its organization's to see (the
// organization of its mailbox or accepted domain), and the organization
// under whose connector it was judged (a relayed recipient); an outside
// recipient not judged under a connector is no one's.
func recipientParty(dir *directory.Snapshot, rcpt address.Address, v *policy.Verdict) protolog.Party {
	p := protolog.Party{Address: rcpt.String()}
	if org := policy.RecipientOrganization(dir, rcpt); org != nil {
		p.Orgs = append(p.Orgs, org.ID)
	}
	if v != nil && v.Org != nil && v.Attribution.Connector != nil && v.Attribution.Connector.OrgID == v.Org.ID {
		p.Orgs = append(p.Orgs, v.Org.ID)
	}
	return p
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
	orgs := s.srv.dir.Load().Organizations()
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
		metrics.Auth(mech, authResult(reply.BasicAuthRetired))
		return nil, s.authFailed(reply.BasicAuthRetired, mech, "")
	}
	ctx := signin.WithLog(context.Background(), s.log)
	check := func(username, password string) error {
		g, r := s.srv.auth.Basic(ctx, signin.SMTP, s.ip, username, password)
		return s.signInResult(mech, username, g, r)
	}
	checkToken := func(user, token string) error {
		g, r := s.srv.auth.OAuth(ctx, signin.SMTP, s.ip, user, token)
		return s.signInResult(mech, user, g, r)
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

// signInResult turns the sign-in service's answer into AUTH's.
func (s *session) signInResult(mech, user string, g *signin.Grant, r *signin.Refusal) error {
	if r != nil {
		metrics.Auth(mech, authResult(r.Reply))
		return s.authFailed(r.Reply, mech, user)
	}
	if s.role == SubmissionLegacy {
		var version uint16
		if s.tls != nil {
			version = s.tls.Version
		}
		if rep := policy.CheckLegacyEndpoint(s.srv.dir.Load().Organization(g.Mailbox.OrgID), version); rep != nil {
			metrics.Auth(mech, authResult(rep))
			return s.authFailed(rep, mech, user)
		}
	}
	metrics.Auth(mech, authResult(nil))
	s.signedIn(g.Mailbox, g.Method)
	return nil
}

// authResult names an AUTH outcome for postern_auth_attempts_total:
// success, throttled (the address failed too often), busy (verification
// gate full) or failure (anything else the client is refused with).
func authResult(rep *reply.Reply) string {
	switch rep {
	case nil:
		return "success"
	case reply.AuthThrottled:
		return "throttled"
	case reply.AuthBusy:
		return "busy"
	}
	return "failure"
}

// authFailed counts a refused AUTH on this connection and, past the limit or
// when the address is throttled, makes the refusal the connection's last reply.
func (s *session) authFailed(rep *reply.Reply, mech, user string) error {
	// The server log tells an admin about a device that cannot sign in
	// without opening the connection log: the address, the sign-in name
	// (bounded: the client chose it) and the reply it got, never the
	// password or token.
	s.srv.log.Info("authentication failed", "ip", s.ip, "role", s.role.String(), "mechanism", mech, "user", truncate(user, 256), "reply", reply.String(rep))
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
		s.log.Info("closing after failed AUTH attempts", "ip", s.ip, "failures", s.tc.authFailures)
	}
	return rep
}

func (s *session) signedIn(mb *directory.Mailbox, method policy.AuthMethod) {
	s.mailbox, s.authProtocol = mb, method.String()
	// A mailbox may have 3 connections submitting at once; the 4th signs in
	// but is refused at end of DATA with 432 4.3.2, as Exchange does, unless
	// a slot has come free by then.
	s.acquireSlot(mb.ID)
	s.log.Info("authenticated", "ip", s.ip, "mailbox", mb.PrimarySmtpAddress, "tls", tlsVersion(s.tls), "protocol", s.authProtocol)
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
	dir := s.srv.dir.Load()
	s.named(senderParty(dir, a))
	var size int64
	if opts != nil {
		size = opts.Size
	}
	// The MAIL FROM steps of the policy chain. A failed AUTH never gets
	// here with relay rights: s.mailbox is only set by a successful one.
	t := s.transaction(dir)
	t.From, t.DeclaredSize = a, size
	if r := t.Walk(policy.AtMail); r.Outcome != policy.Pass {
		if r.StepID() == policy.StepAnonymousSender {
			s.judgedUnder(t.SenderAttribution.Connector)
		}
		return r.Reply
	}
	s.Reset()
	s.from, s.declaredSize = a, size
	return nil
}

// transaction readies the session's policy transaction for a walk over
// dir: the client as it is now (the signed-in mailbox, or how an anonymous
// client connected).
func (s *session) transaction(dir *directory.Snapshot) *policy.Transaction {
	t := &s.tx
	t.Dir, t.Inputs, t.Mailbox = dir, s, s.mailbox
	if s.mailbox == nil {
		t.Client = s.clientFacts()
	}
	return t
}

// The session answers the policy chain's questions (policy.Inputs) from
// its server's store and counters.

// Now is the server's clock.
func (s *session) Now() time.Time { return s.srv.now() }

// MailboxSize is the store's cached size of a mailbox: no query.
func (s *session) MailboxSize(mailbox int64) int64 {
	return s.srv.submitter.Store.MailboxSize(mailbox)
}

// SourceUsage is what the client's source (an IPv6 client's /64) sent of
// class in the last hour, and the [throttle] limits now in force.
func (s *session) SourceUsage(class policy.SourceClass) (int, policy.SourceLimits) {
	return s.srv.sources.Used(sourceKey{class, limits.Source(s.ip)}, s.srv.now()), s.srv.live.Load().Throttle
}

// HoldSlot takes one of the mailbox's concurrent-connection slots unless
// the session holds one already.
func (s *session) HoldSlot(mailbox int64) (bool, error) {
	if err := s.acquireSlot(mailbox); err != nil {
		return false, err
	}
	return s.holdsSlot, nil
}

// slotTimeout bounds one acquisition or release of a connection slot in a
// store several nodes share: an unreachable database costs a client at
// most this long, then a temporary failure.
const slotTimeout = 5 * time.Second

// acquireSlot tries to take a connection slot for mailbox unless the
// session holds one. An error (the slots of a database several nodes
// share could not be counted) leaves the session without a slot: its
// submissions get a temporary failure until a later try succeeds.
func (s *session) acquireSlot(mailbox int64) error {
	if s.holdsSlot {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), slotTimeout)
	defer cancel()
	slot, held, err := s.srv.slots.Acquire(ctx, mailbox)
	if err != nil {
		s.log.Warn("counting the mailbox's connection slots", "mailbox", mailbox, "err", err)
		return err
	}
	s.slot, s.holdsSlot = slot, held
	return nil
}

// AcceptedMailbox is the mailbox the i-th accepted recipient goes to.
func (s *session) AcceptedMailbox(i int) *directory.Mailbox {
	return s.recipients[i].Route.Mailbox
}

// clientFacts describes how the client connected, for connector matching.
// A session's TLS state never changes (STARTTLS starts a new session), so
// the certificate is verified once, not at every RCPT.
func (s *session) clientFacts() policy.ClientFacts {
	if s.facts == nil {
		f := policy.ClientFacts{IP: s.ip, TLS: s.tls != nil}
		if s.tls != nil && len(s.tls.PeerCertificates) > 0 {
			f.CertNames, f.CertVerified, f.CertFingerprint = s.srv.clientCertificate(s.tls.PeerCertificates)
		}
		s.facts = &f
	}
	return *s.facts
}

// Rcpt handles RCPT TO: the recipient's syntax, duplicates, the recipient
// limit per message, then routing.
func (s *session) rcpt(to string) error {
	dir := s.srv.dir.Load()
	var a address.Address
	if strings.EqualFold(to, "postmaster") {
		// RFC 5321 section 4.5.1: <postmaster> without a domain must be
		// accepted; it is the postmaster of the server's first organization.
		pm, ok := policy.PostmasterAddress(dir)
		if !ok {
			return reply.RecipientNotFound("postmaster")
		}
		a = pm
	} else {
		var err error
		if a, err = address.Parse(to); err != nil {
			return reply.BadRecipientSyntax
		}
	}
	s.named(recipientParty(dir, a, nil))
	m := dir.MailboxByAddress(a.Key())
	if s.seen[a.Key()] || (m != nil && s.seen[m.ID]) {
		// The same recipient again (in any case, or another address of the
		// same mailbox): accepted, delivered once.
		return nil
	}
	// The RCPT TO steps of the policy chain.
	t := s.transaction(dir)
	t.StartRecipient(a)
	t.Accepted, t.OverLimit, t.PerOrg = len(s.recipients), s.overLimit, s.perOrg
	r := t.Walk(policy.AtRcpt)
	anonymous := s.mailbox == nil
	if anonymous {
		s.named(recipientParty(dir, a, &t.Verdict))
		s.judgedUnder(t.Verdict.Attribution.Connector)
	}
	if r.Outcome == policy.Refuse {
		switch r.StepID() {
		case policy.StepConnectionFilter:
			metrics.ConnectionFiltered.Inc()
		case policy.StepSourceThrottling:
			metrics.SourceThrottled.WithLabelValues(t.Class.String()).Inc()
		}
		return r.Reply
	}
	if anonymous {
		// Counted against its organization's MaxRecipientEnvelopeLimit
		// whether kept or not.
		if s.perOrg == nil {
			s.perOrg = map[int64]int{}
		}
		s.perOrg[t.Verdict.Org.ID]++
	}
	if r.Outcome == policy.Defer {
		s.overLimit++
		if s.deferred == nil {
			s.deferred = r.Reply
		}
		return nil
	}
	s.accept(transport.Recipient{Address: a, Route: t.Route})
	if anonymous {
		s.verdicts = append(s.verdicts, t.Verdict)
		if t.Class != policy.Unthrottled && !slices.Contains(s.throttled, t.Class) {
			s.throttled = append(s.throttled, t.Class)
		}
	}
	return nil
}

// accept adds a recipient to the transaction and remembers its address
// and mailbox, so that naming it again delivers it once.
func (s *session) accept(r transport.Recipient) {
	if s.seen == nil {
		s.seen = map[any]bool{}
	}
	s.seen[r.Address.Key()] = true
	if m := r.Route.Mailbox; m != nil {
		s.seen[m.ID] = true
	}
	s.recipients = append(s.recipients, r)
}

// Data reads the message and hands it to the transport once the checks
// Exchange makes at end of DATA pass: concurrent connections, then Send As
// for an authenticated sender; the recipients' MaxReceiveSize for an
// anonymous one.
func (s *session) data(r io.Reader) *reply.Reply {
	if s.deferred != nil {
		// A recipient was counted past a limit: the message is refused
		// whole. Nothing is read: the engine reads the rest of the message
		// to stay in step with the client.
		return s.deferred
	}
	// Counted from here until it reaches the store's group committer, or
	// fails to, so that the group being formed waits for it.
	arrival := s.srv.submitter.Arriving()
	defer arrival.Arrived()
	limit := int64(directory.MaxMessageSize)
	if s.mailbox != nil {
		limit = policy.SendSizeLimit(s.mailbox)
	}
	msg, rep := transport.ReadMessage(r, limit, s.srv.submitter.SpoolDir)
	if rep != nil {
		return rep
	}
	defer msg.Close() // the spool file; commits keep their own links
	s.size = msg.Size()

	dir := s.srv.dir.Load()
	in := &transport.Submission{
		From: s.from, Recipients: s.recipients, Message: msg,
		ClientIP: s.ip.String(), Helo: s.conn.Hostname(), TLS: s.tls, SessionID: s.conn.SessionID(),
		Arrival: arrival,
	}
	in.TLSVersion = tlsVersion(s.tls)
	if s.mailbox == nil {
		return s.submitAnonymous(dir, in)
	}
	// Directory changes made during the session (a revoked grant, a
	// lowered limit) apply from this message on.
	mb := dir.Mailbox(s.mailbox.ID)
	if mb == nil {
		return reply.NotAuthenticated // the mailbox was removed meanwhile
	}
	// The end-of-DATA steps of the policy chain: concurrent connections,
	// Send As, the send quota.
	t := s.transaction(dir)
	t.Mailbox = mb
	from, sender, err := msg.Senders()
	t.Size, t.Headers, t.HeadersBad, t.HeaderFrom, t.HeaderSender = s.size, true, err != nil, from, sender
	res := t.Walk(policy.AtDataEnd)
	t.HeaderFrom, t.HeaderSender = nil, "" // the message's, not kept past it
	if res.Outcome != policy.Pass {
		return res.Reply
	}
	in.AuthMailbox, in.Org = mb, dir.Organization(mb.OrgID)
	in.AuthProtocol = s.authProtocol
	// The outbound spam policy: the sender organization's, counting the
	// recipients inside and outside it (reference 4.2).
	rcpts := make([]address.Address, len(s.recipients))
	for i, r := range s.recipients {
		rcpts[i] = r.Address
	}
	in.Counts = policy.CountRecipients(dir, mb.OrgID, rcpts)
	in.SpamPolicy = dir.OutboundSpamFilterPolicy(mb.OrgID)
	in.Restriction = dir.RestrictedSender(mb.ID)
	return s.srv.submitter.Submit(context.Background(), in)
}

// submitAnonymous commits anonymous mail once per recipient organization:
// each organization's copy carries its own attribution (connector header,
// or SPF/DKIM/DMARC results and Junk filing for unattributed mail) and is
// recorded in that organization's message trace only. Every copy is the
// same *transport.Message. If a later organization's commit fails after an
// earlier one succeeded, the client is told to retry (4xx) and the earlier
// organization may receive the message twice: a duplicate, never a loss.
func (s *session) submitAnonymous(dir *directory.Snapshot, in *transport.Submission) *reply.Reply {
	// The end-of-DATA steps of the policy chain: the recipients'
	// MaxReceiveSize.
	t := s.transaction(dir)
	t.Size, t.Accepted, t.Headers = in.Message.Size(), len(s.recipients), false
	if r := t.Walk(policy.AtDataEnd); r.Outcome != policy.Pass {
		return r.Reply
	}
	var order []int64
	groups := map[int64]*transport.Submission{}
	for i, r := range s.recipients {
		v := s.verdicts[i]
		g := groups[v.Org.ID]
		if g == nil {
			c := *in
			c.Recipients, c.Org = nil, dir.Organization(v.Org.ID)
			if c.Org == nil {
				c.Org = v.Org // removed meanwhile: keep the attribution made at RCPT
			}
			if ic := v.Attribution.Connector; ic != nil {
				c.InboundConnector = ic.Name
			} else {
				s.checkSender(&c)
			}
			g = &c
			groups[v.Org.ID] = g
			order = append(order, v.Org.ID)
		}
		g.Recipients = append(g.Recipients, r)
	}
	var last *reply.Reply
	for _, id := range order {
		last = s.srv.submitter.Submit(context.Background(), groups[id])
		if last.Code/100 != 2 {
			return last
		}
	}
	// Source throttling counts accepted messages, once per class.
	for _, class := range s.throttled {
		s.srv.sources.Add(sourceKey{class, limits.Source(s.ip)}, limits.Count{Internal: 1}, s.srv.now())
	}
	return last
}

// checkSender proves the sender of unattributed anonymous mail (Direct Send
// and ordinary inbound mail) with SPF, DKIM and DMARC: what fails its
// domain's policy is delivered to Junk Email. It runs at most once per
// message; every unattributed copy gets the same result.
func (s *session) checkSender(in *transport.Submission) {
	c := s.srv.live.Load().SenderAuth
	if c == nil {
		return
	}
	if s.senderAuth == nil {
		from := ""
		if !s.from.IsZero() {
			from = s.from.String()
		}
		s.senderAuth = c.Check(context.Background(), senderauth.Input{ClientIP: s.ip, Helo: s.conn.Hostname(), MailFrom: from, Message: in.Message, Size: in.Message.Size(),
			Header: in.Message.Header})
	}
	in.AuthenticationResults, in.Junk = s.senderAuth.Header, s.senderAuth.Junk
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
	s.senderAuth = nil
	rep := s.data(r)
	if rep == nil || rep.Code < 400 {
		if rep != nil && rep.Code/100 == 2 {
			l := s.role.String()
			metrics.MessagesAccepted.WithLabelValues(l).Inc()
			metrics.BytesAccepted.WithLabelValues(l).Add(float64(s.size))
		}
		if rep == nil {
			return nil // never a typed nil through the error interface
		}
		return rep
	}
	to := make([]string, 0, len(s.recipients))
	for _, rc := range s.recipients {
		to = append(to, rc.Address.String())
	}
	return s.logged("DataRejected", s.from.String(), strings.Join(to, ", "), rep)
}

// logged records err, if it is a refusal (4xx or 5xx; the 250 an accepted
// message gets travels the same way), and returns it unchanged.
// Get-ConnectionLog lists refusals only.
func (s *session) logged(event, sender, recipient string, err error) error {
	if rep, ok := err.(*reply.Reply); ok && rep != nil && rep.Code >= 400 && s.srv.cfg.ConnLog != nil {
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

// Reset ends the transaction (RSET, after DATA, or a new MAIL FROM):
// every field a transaction fills is cleared here, in one place.
func (s *session) Reset() {
	s.from, s.recipients, s.verdicts, s.declaredSize = address.Address{}, nil, nil, 0
	s.seen, s.perOrg, s.throttled, s.overLimit, s.deferred = nil, nil, nil, 0, nil
}

// Logout ends the session and frees the mailbox's connection slot.
func (s *session) Logout() error {
	if s.holdsSlot {
		// A context of its own, with a timeout: Logout runs when the
		// client has gone, and must neither hang on nor skip the release.
		ctx, cancel := context.WithTimeout(context.Background(), slotTimeout)
		s.srv.slots.Release(ctx, s.slot)
		cancel()
		s.holdsSlot, s.slot = false, limits.Slot{}
	}
	return nil
}

func tlsVersion(st *tls.ConnectionState) string {
	if st == nil {
		return "none"
	}
	return tls.VersionName(st.Version)
}

// truncate bounds a client-chosen string for the log.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
