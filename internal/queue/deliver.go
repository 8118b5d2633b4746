package queue

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/metrics"
	"postern.dev/postern/internal/smtpclient"
	"postern.dev/postern/internal/store"
)

// session is an open SMTP connection to a destination, kept for the next
// job of the same destination.
type session struct {
	c      *smtpclient.Client
	remote string // "mx.fabrikam.com [192.0.2.1]", for traces
	used   bool   // has carried a transaction: may have gone stale
}

func (s *session) close() {
	if s != nil && s.c != nil {
		s.c.Quit()
	}
}

// result is the outcome of one recipient in one attempt.
type result struct {
	event  string // store.EventSend, EventDefer or EventFail
	detail string // the remote reply, or the local cause, on one line
	status string // enhanced status code for a DSN
	remote string
}

// deliver runs one job over s (or a new session) and records its
// outcomes. It returns the session if it may carry another job.
//
// The message is never held in memory: it is read once to sign it (and
// note 8-bit content), then streamed from the store to the connection for
// each attempt.
func (q *Queue) deliver(ctx context.Context, s *session, j *job) *session {
	msg, err := q.prepare(ctx, j)
	if err != nil {
		q.finish(ctx, j, q.all(j, result{event: store.EventDefer, status: "4.3.0",
			detail: "451 4.3.0 the message could not be read from the store: " + err.Error()}))
		return s
	}
	open := func() (io.ReadCloser, error) {
		body, err := q.cfg.Store.MessageBody(ctx, j.msg.Message)
		if err != nil {
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{io.MultiReader(strings.NewReader(msg.signature), body), body}, nil
	}
	for try := 0; ; try++ {
		if s == nil {
			var fail *result
			s, fail = q.connect(ctx, j.route)
			if fail != nil {
				q.finish(ctx, j, q.all(j, *fail))
				return nil
			}
		}
		results, ok := q.transaction(s, j, msg, open)
		if !ok {
			// The connection broke. A reused connection may simply have
			// been closed by the server while idle: try once more on a
			// fresh one before counting it as a failure.
			stale := s.used && try == 0 && results == nil
			s.c.Close()
			s = nil
			if stale {
				continue
			}
		} else {
			s.used = true
		}
		q.finish(ctx, j, results)
		return s
	}
}

// all gives every item of a job the same result.
func (q *Queue) all(j *job, r result) []result {
	out := make([]result, len(j.items))
	for i := range out {
		out[i] = r
	}
	return out
}

// connect opens a session to the first server of the route that takes
// one. On failure it returns the result for every recipient: deferred with
// the last server's reason, or failed when the domain cannot receive mail.
func (q *Queue) connect(ctx context.Context, r Route) (*session, *result) {
	targets, err := q.targets(ctx, r)
	if err != nil {
		var re *resolveError
		if errors.As(err, &re) && re.permanent {
			return nil, &result{event: store.EventFail, status: re.status, detail: re.msg}
		}
		return nil, &result{event: store.EventDefer, status: "4.4.3", detail: err.Error()}
	}
	var last *result
	for _, t := range targets {
		s, fail := q.open(ctx, r, t)
		if fail == nil {
			return s, nil
		}
		last = fail
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

// open opens a session to one server: greeting, EHLO, STARTTLS as the
// route's TLS settings require, and AUTH for a smart host that needs it.
func (q *Queue) open(ctx context.Context, r Route, t target) (*session, *result) {
	remote := fmt.Sprintf("%s [%s]", t.Host, hostOf(t.Addr))
	defer_ := func(format string, args ...any) *result {
		return &result{event: store.EventDefer, status: "4.4.0", remote: remote,
			detail: fmt.Sprintf("[%s] ", remote) + fmt.Sprintf(format, args...)}
	}
	c, err := smtpclient.Dial(ctx, &net.Dialer{}, t.Addr, t.Host, q.tuning().Timeouts)
	if err != nil {
		return nil, defer_("%v", err)
	}
	fail := func(err error) (*session, *result) {
		c.Close()
		return nil, defer_("%v", err)
	}
	if err := c.Hello(q.cfg.Hostname); err != nil {
		return fail(err)
	}
	oc := r.Connector
	settings := directory.TlsOpportunistic
	if oc != nil {
		settings = oc.TlsSettings
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(q.tlsConfig(oc, t.Host), q.cfg.Hostname); err != nil {
			return fail(err)
		}
	} else if settings != directory.TlsOpportunistic {
		return fail(fmt.Errorf("the connector %s requires TLS (%s), and the server does not offer STARTTLS", oc.Name, settings))
	}
	if oc != nil && oc.AuthMechanism != "" && oc.AuthMechanism != directory.AuthNone {
		if err := q.authenticate(ctx, c, oc); err != nil {
			return fail(err)
		}
	}
	return &session{c: c, remote: remote}, nil
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

// tlsConfig is the client TLS configuration for a route. Opportunistic TLS
// (no connector, or TlsSettings $null) and EncryptionOnly accept any
// certificate, as RFC 7435 opportunistic security does: encryption against
// passive eavesdropping, no authentication. CertificateValidation checks
// the chain; DomainValidation also the name.
func (q *Queue) tlsConfig(oc *directory.OutboundConnector, host string) *tls.Config {
	roots := q.tuning().RootCAs
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, RootCAs: roots}
	settings := directory.TlsOpportunistic
	if oc != nil {
		settings = oc.TlsSettings
	}
	switch settings {
	case directory.TlsOpportunistic, directory.TlsEncryptionOnly:
		cfg.InsecureSkipVerify = true
	case directory.TlsCertificateValidation:
		cfg.InsecureSkipVerify = true // the chain is checked below, the name is not
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := verifyChain(raw, roots, "")
			return err
		}
	case directory.TlsDomainValidation:
		name := oc.TlsDomain
		if name == "" {
			name = host
		}
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			leaf, err := verifyChain(raw, roots, "")
			if err != nil {
				return err
			}
			return matchCertificateName(leaf, name)
		}
	}
	return cfg
}

func verifyChain(raw [][]byte, roots *x509.CertPool, name string) (*x509.Certificate, error) {
	if len(raw) == 0 {
		return nil, errors.New("the server sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return nil, err
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name})
	return certs[0], err
}

// matchCertificateName checks a TlsDomain, "mail.contoso.com" or
// "*.contoso.com" (the domain and any name below it, as Exchange's
// connector values mean), against the certificate's DNS names.
func matchCertificateName(leaf *x509.Certificate, pattern string) error {
	for _, n := range leaf.DNSNames {
		if directory.DomainMatches(pattern, strings.TrimPrefix(n, "*.")) || leaf.VerifyHostname(strings.TrimPrefix(pattern, "*.")) == nil {
			return nil
		}
	}
	return fmt.Errorf("the certificate's names %v do not match the TlsDomain %s", leaf.DNSNames, pattern)
}

// authenticate signs in to a smart host. Credentials never cross an
// unencrypted connection.
func (q *Queue) authenticate(ctx context.Context, c *smtpclient.Client, oc *directory.OutboundConnector) error {
	if !c.TLS() {
		return fmt.Errorf("the connector %s would send credentials, and the server does not offer STARTTLS", oc.Name)
	}
	switch oc.AuthMechanism {
	case directory.AuthBasic:
		password, err := q.cfg.Secrets.Open(oc.SmtpPasswordSealed)
		if err != nil {
			return fmt.Errorf("the connector %s's SmtpPassword: %w", oc.Name, err)
		}
		_, mechs := c.Extension("AUTH")
		mech := "PLAIN"
		if !hasWord(mechs, "PLAIN") && hasWord(mechs, "LOGIN") {
			mech = "LOGIN" // Exchange Online offers LOGIN and XOAUTH2 only
		}
		return c.Auth(mech, oc.SmtpUser, password)
	case directory.AuthXOAUTH2:
		token, err := q.tokens.token(ctx, oc, q.cfg.Secrets)
		if err != nil {
			return err
		}
		if err := c.Auth("XOAUTH2", oc.SmtpUser, token); err != nil {
			var e *smtpclient.Error
			if errors.As(err, &e) && e.Reply != nil {
				// A refused token may have been revoked early: fetch a new
				// one next time rather than reuse it until it expires.
				q.tokens.forget(oc)
			}
			return err
		}
		return nil
	}
	return fmt.Errorf("the connector %s has an unknown AuthMechanism %q", oc.Name, oc.AuthMechanism)
}

func hasWord(list, w string) bool {
	for _, f := range strings.Fields(list) {
		if strings.EqualFold(f, w) {
			return true
		}
	}
	return false
}

// transaction sends one message to the job's recipients over s. ok is
// false when the connection broke; results is then nil if nothing was
// accepted yet (the attempt can be repeated on a new connection).
func (q *Queue) transaction(s *session, j *job, msg *prepared, open func() (io.ReadCloser, error)) (results []result, ok bool) {
	res := func(err error, reply string) result {
		var e *smtpclient.Error
		r := result{event: store.EventDefer, status: "4.4.0", remote: s.remote}
		if errors.As(err, &e) && e.Reply != nil {
			r.detail = fmt.Sprintf("[%s] %s", s.remote, e.Reply)
			if e.Reply.Enhanced != "" {
				r.status = e.Reply.Enhanced
			}
			if e.Permanent() {
				r.event = store.EventFail
				if e.Reply.Enhanced == "" {
					r.status = "5.0.0"
				}
			}
			return r
		}
		if err != nil {
			r.detail = fmt.Sprintf("[%s] %v", s.remote, err)
			return r
		}
		return result{event: store.EventSend, status: "2.0.0", remote: s.remote, detail: reply}
	}
	broken := func(err error) bool {
		var e *smtpclient.Error
		return errors.As(err, &e) && e.Reply == nil
	}

	opts := smtpclient.MailOptions{Size: int(msg.size), EightBit: msg.eightBit, UTF8: !isASCII(j.msg.EnvelopeFrom)}
	for _, it := range j.items {
		opts.UTF8 = opts.UTF8 || !isASCII(it.Recipient)
	}
	if err := s.c.Mail(j.msg.EnvelopeFrom, opts); err != nil {
		if broken(err) {
			if s.used {
				return nil, false
			}
			return q.all(j, res(err, "")), false
		}
		s.c.Reset()
		return q.all(j, res(err, "")), true
	}
	results = make([]result, len(j.items))
	accepted := 0
	for i, it := range j.items {
		err := s.c.Rcpt(it.Recipient)
		if broken(err) {
			return q.all(j, res(err, "")), false
		}
		results[i] = res(err, "")
		if err == nil {
			accepted++
		}
	}
	if accepted == 0 {
		s.c.Reset()
		return results, true
	}
	body, err := open()
	if err != nil {
		// Deferred without a word on the wire yet: the transaction is
		// abandoned and the connection can carry the next one.
		s.c.Reset()
		return q.all(j, result{event: store.EventDefer, status: "4.3.0", remote: s.remote,
			detail: "451 4.3.0 the message could not be read from the store: " + err.Error()}), true
	}
	rep, err := s.c.DataFrom(body)
	body.Close()
	var final result
	if err != nil {
		final = res(err, "")
	} else {
		final = res(nil, fmt.Sprintf("[%s] %s", s.remote, rep))
	}
	for i := range results {
		if results[i].event == store.EventSend {
			results[i] = final
		}
	}
	if broken(err) {
		return results, false
	}
	if err != nil {
		s.c.Reset()
	}
	return results, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// finish turns a job's results into outcomes: sent and failed items leave
// the queue, deferred ones are rescheduled (or fail once they are past the
// retry period), and the sender gets a notification for failures and, once,
// for long delays. Everything is recorded in one transaction.
// deliveryOutcome names a recipient's delivery event for
// postern_delivery_outcomes_total: sent, deferred or failed.
func deliveryOutcome(event string) string {
	switch event {
	case store.EventSend:
		return "sent"
	case store.EventDefer:
		return "deferred"
	case store.EventFail:
		return "failed"
	}
	return "other"
}

func (q *Queue) finish(ctx context.Context, j *job, results []result) {
	now := q.cfg.Now()
	sched := q.tuning().Schedule
	var outcomes []store.Outcome
	var failed, delayed []notifyItem
	for i, it := range j.items {
		r := results[i]
		o := store.Outcome{QueueID: it.QueueID, Message: it.Message, Recipient: it.Recipient, Event: r.event,
			Detail: r.detail, RemoteHost: r.remote, At: now}
		if r.event == store.EventDefer {
			if now.Sub(it.ReceivedAt) >= sched.For {
				// Giving up: RFC 3463 4.4.7, delivery time expired. The
				// last reason travels in the report.
				o.Event = store.EventFail
				o.Detail = "550 4.4.7 QUEUE.Expired; message expired. Last error: " + r.detail
				r.status = "4.4.7"
				r.event = store.EventFail
			} else {
				o.NextAttempt = now.Add(sched.Next(it.Attempts+1, rand.Float64()))
				if !it.DelayNotified && sched.DelayNotice > 0 && now.Sub(it.ReceivedAt) >= sched.DelayNotice {
					o.DelayNotified = true
					delayed = append(delayed, notifyItem{it, r, o.NextAttempt})
				}
			}
		}
		if r.event == store.EventFail {
			failed = append(failed, notifyItem{it, r, time.Time{}})
		}
		outcomes = append(outcomes, o)
		metrics.Deliveries.WithLabelValues(deliveryOutcome(o.Event)).Inc()
		q.cfg.Log.Info("delivery", "event", o.Event, "message", it.MessageID, "recipient", it.Recipient,
			"remote", r.remote, "detail", o.Detail)
	}
	var notices []*store.Submission
	for _, group := range []struct {
		items  []notifyItem
		failed bool
	}{{failed, true}, {delayed, false}} {
		if len(group.items) == 0 {
			continue
		}
		n, ev, err := q.notice(ctx, j, group.items, group.failed, now)
		if err != nil {
			q.cfg.Log.Error("queue: building a delivery status notification", "message", j.msg.MessageID, "err", err)
		}
		if ev.Event != "" {
			outcomes = append(outcomes, ev) // the notice's trace event, or its drop
		}
		if n != nil {
			notices = append(notices, n)
			kind := "delay"
			if group.failed {
				kind = "failure"
			}
			metrics.DSNs.WithLabelValues(kind).Inc()
		}
	}
	// Written by recordLoop with other jobs' outcomes, in one transaction.
	q.records <- &record{outcomes: outcomes, notices: notices, items: len(j.items), msgID: j.msg.MessageID}
}
