package policy

import (
	"time"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// The submission chain: every check a transaction meets after sign-in,
// written once, in the order the server makes them. The SMTP session
// walks it stage by stage and stops at a stage's first refusal;
// Test-SmtpSubmission walks all of it and shows every step's result. A
// rule added here is therefore both enforced and diagnosed.
//
// What comes before the chain is not in it: the sign-in (Authenticate,
// shared with IMAP4 and POP3) and the command syntax. What comes after it
// is not either: the recipient rate limit and the outbound spam policy are
// judged in transport.Submit, in one step with counting the recipients, so
// that concurrent submissions cannot both slip under a limit.

// Stage is the point of an SMTP transaction where a step is decided.
type Stage uint8

const (
	// AtMail: MAIL FROM, once the sender (and any SIZE=) is known.
	AtMail Stage = iota
	// AtRcpt: each RCPT TO.
	AtRcpt
	// AtDataEnd: the end of DATA, once the message has been read.
	AtDataEnd
)

func (s Stage) String() string {
	return [...]string{"MAIL", "RCPT", "DATA"}[s]
}

// Path is which submissions a step applies to.
type Path uint8

const (
	// Authenticated: SMTP AUTH submission.
	Authenticated Path = 1 << iota
	// Anonymous: Direct Send, connector relay and ordinary inbound mail.
	Anonymous
	// Both paths.
	Both = Authenticated | Anonymous
)

// Outcome is a step's result.
type Outcome uint8

const (
	// Pass: the step allows the transaction.
	Pass Outcome = iota
	// NotApplicable: the step has nothing to judge (no SIZE= given, no
	// quota set, a recipient that goes out).
	NotApplicable
	// Refuse: the command gets the step's reply.
	Refuse
	// Defer: the recipient is accepted but not kept, and the message is
	// refused whole at end of DATA with the step's reply (reference
	// section 4.1: over RecipientLimits or MaxRecipientEnvelopeLimit
	// Exchange refuses the message, it does not truncate it).
	Defer
)

// StepID names a step for code: the session counts metrics by it, the
// diagnostics choose the fix to explain by it.
type StepID uint8

const (
	StepRestrictedSender StepID = iota
	StepSendSize
	StepAnonymousSender
	StepRoute
	StepInboundConnector
	StepConnectionFilter
	StepAnonymousRecipient
	StepSourceThrottling
	StepReceiveSize
	StepReceiveQuota
	StepRecipientLimit
	StepConcurrentConnections
	StepSendAs
	StepSendQuota
	StepMessageReceiveSize
)

// Step is one check of the chain.
type Step struct {
	ID    StepID
	Stage Stage
	Path  Path
	// Check is the name Test-SmtpSubmission prints in its Check column.
	Check string
	// Decide judges the transaction. It may record what it found in the
	// transaction for the steps after it (the route, the attribution).
	Decide func(*Transaction) (Outcome, *reply.Reply)
}

// chain is the order of the checks. Within a stage, the order is the
// order of refusal: the first step that refuses gives the reply.
var chain = [...]Step{
	// MAIL FROM. A sender the outbound spam policy restricted is refused
	// at once, before it transfers the message (550 5.1.8, reference 4.4).
	{StepRestrictedSender, AtMail, Authenticated, "Restricted sender", restrictedSender},
	// SIZE= over MaxSendSize (RFC 1870): refused before the transfer.
	{StepSendSize, AtMail, Authenticated, "Message size", sendSize},
	// Anonymous: only the sender organization's own decision can be made
	// before a recipient is named; the rest is per recipient.
	{StepAnonymousSender, AtMail, Anonymous, "Sender", anonymousSender},

	// RCPT TO, authenticated: SMTP AUTH may send to anyone but an unknown
	// address of an Authoritative domain.
	{StepRoute, AtRcpt, Authenticated, "Recipient", route},
	// RCPT TO, anonymous: the recipient's organization and the connector
	// of it the client matched come first, since every later step is that
	// organization's. Connection filtering comes before the verdict: a
	// source on the attributed organization's IP Block List is refused
	// whatever else would be said ("no other filtering occurs").
	{StepInboundConnector, AtRcpt, Anonymous, "Inbound connector", inboundConnector},
	{StepConnectionFilter, AtRcpt, Anonymous, "Connection filter", connectionFilter},
	{StepAnonymousRecipient, AtRcpt, Anonymous, "Recipient", anonymousRecipient},
	{StepSourceThrottling, AtRcpt, Anonymous, "Source throttling", sourceThrottling},
	{StepReceiveSize, AtRcpt, Anonymous, "Receive size", receiveSize},
	{StepReceiveQuota, AtRcpt, Both, "Mailbox quota", receiveQuota},
	{StepRecipientLimit, AtRcpt, Both, "Recipient limit", recipientLimit},

	// End of DATA: the checks Exchange makes once it has the message.
	{StepConcurrentConnections, AtDataEnd, Authenticated, "Concurrent connections", concurrentConnections},
	{StepSendAs, AtDataEnd, Authenticated, "Send As", sendAs},
	{StepSendQuota, AtDataEnd, Authenticated, "Send quota", sendQuota},
	{StepMessageReceiveSize, AtDataEnd, Anonymous, "Receive size", messageReceiveSize},
}

// Chain returns the steps in order (a copy).
func Chain() []Step {
	s := make([]Step, len(chain))
	copy(s, chain[:])
	return s
}

// Inputs are what a walker knows that the directory does not: the store's
// mailbox sizes, the server's counters and the transaction's accepted
// recipients. The SMTP session answers from its server; Test-SmtpSubmission
// from the store, and with what it cannot know (another connection's slot)
// as allowed.
type Inputs interface {
	// Now is the time the transaction is judged at.
	Now() time.Time
	// MailboxSize is the bytes in a mailbox's folders.
	MailboxSize(mailbox int64) int64
	// SourceUsage is how many messages of class the client's source sent
	// in the last hour, and the limits in force.
	SourceUsage(class SourceClass) (sent int, limits SourceLimits)
	// HoldSlot reports whether the submission holds, or could take, one
	// of the mailbox's concurrent-connection slots. The session takes it.
	// An error means the slots could not be counted (several nodes: the
	// database is unreachable).
	HoldSlot(mailbox int64) (bool, error)
	// AcceptedMailbox is the mailbox of the transaction's i-th accepted
	// recipient (i < Accepted), nil when that recipient goes out.
	AcceptedMailbox(i int) *directory.Mailbox
}

// Transaction is what is known about one SMTP transaction as it goes, and
// what the steps decided about it. A session keeps one and reuses it, so
// that a walk allocates nothing.
type Transaction struct {
	Dir    *directory.Snapshot
	Inputs Inputs

	// Mailbox is the authenticated mailbox; nil for an anonymous client,
	// whose connection Client describes.
	Mailbox *directory.Mailbox
	Client  ClientFacts

	// MAIL FROM: the sender (zero for the null reverse-path) and SIZE=
	// (RFC 1870), 0 when not given.
	From         address.Address
	DeclaredSize int64

	// RCPT TO: the recipient being judged; the recipients accepted before
	// it and those counted past a limit; the anonymous recipients accepted
	// or counted per organization (read only, nil for none).
	Rcpt      address.Address
	Accepted  int
	OverLimit int
	PerOrg    map[int64]int

	// End of DATA: the message's size and its sender headers (Headers:
	// they were read; HeadersBad: From: is missing or unreadable).
	Size                int64
	Headers, HeadersBad bool
	HeaderFrom          []string
	HeaderSender        string

	// Decided by the steps. SenderAttribution is the sender organization's
	// connector the client matched at MAIL; Route the current recipient's
	// route; Verdict the anonymous recipient's decision, whose reply the
	// "Recipient" step gives; AllowListed and Class what source
	// throttling found.
	SenderAttribution Attribution
	Route             Route
	Verdict           Verdict
	verdictReply      *reply.Reply
	AllowListed       bool
	Class             SourceClass

	// visited has bit i set once chain[i] has been decided (tests).
	visited uint64
}

// StartRecipient forgets what the steps decided about the last recipient.
func (t *Transaction) StartRecipient(rcpt address.Address) {
	t.Rcpt = rcpt
	t.Route, t.Verdict, t.verdictReply, t.AllowListed, t.Class = Route{}, Verdict{}, nil, false, Unthrottled
}

func (t *Transaction) path() Path {
	if t.Mailbox != nil {
		return Authenticated
	}
	return Anonymous
}

// Result is a walk's outcome: Pass, or the refusing or deferring step
// (its index in Chain) and its reply.
type Result struct {
	Outcome Outcome
	Reply   *reply.Reply
	Step    int
}

// StepID is the ID of the step that refused or deferred.
func (r Result) StepID() StepID { return chain[r.Step].ID }

// Walk decides a stage for the transaction's path, in order, and stops at
// the first step that refuses or defers. This is the server's walk.
func (t *Transaction) Walk(stage Stage) Result {
	path := t.path()
	for i := range chain {
		st := &chain[i]
		if st.Stage != stage || st.Path&path == 0 {
			continue
		}
		t.visited |= 1 << i
		if o, rep := st.Decide(t); o == Refuse || o == Defer {
			return Result{Outcome: o, Reply: rep, Step: i}
		}
	}
	return Result{Outcome: Pass, Step: -1}
}

// StepResult is one step's result in a diagnosis.
type StepResult struct {
	Step    Step
	Outcome Outcome
	Reply   *reply.Reply
}

// Diagnose decides every step of a stage for the transaction's path, in
// order, without stopping at a refusal: Test-SmtpSubmission's walk. The
// first Refuse or Defer is what the server would answer.
func (t *Transaction) Diagnose(stage Stage) []StepResult {
	return t.each(stage, true)
}

// Unjudged lists the steps of a stage for the transaction's path as not
// applicable, without deciding them: a diagnosis that lacks the stage's
// facts (no recipient given) still shows every step.
func (t *Transaction) Unjudged(stage Stage) []StepResult {
	return t.each(stage, false)
}

func (t *Transaction) each(stage Stage, decide bool) []StepResult {
	path := t.path()
	var out []StepResult
	for i := range chain {
		st := &chain[i]
		if st.Stage != stage || st.Path&path == 0 {
			continue
		}
		r := StepResult{Step: *st, Outcome: NotApplicable}
		if decide {
			t.visited |= 1 << i
			r.Outcome, r.Reply = st.Decide(t)
		}
		out = append(out, r)
	}
	return out
}

// Visited reports whether the walks of this transaction decided the step
// with index i in Chain, for tests that every step is reachable.
func (t *Transaction) Visited(i int) bool { return t.visited&(1<<i) != 0 }

func verdict(rep *reply.Reply) (Outcome, *reply.Reply) {
	if rep != nil {
		return Refuse, rep
	}
	return Pass, nil
}

func restrictedSender(t *Transaction) (Outcome, *reply.Reply) {
	return verdict(CheckRestricted(t.Dir.RestrictedSender(t.Mailbox.ID), t.Inputs.Now()))
}

func sendSize(t *Transaction) (Outcome, *reply.Reply) {
	if t.DeclaredSize <= 0 {
		return NotApplicable, nil
	}
	return verdict(CheckSize(t.Mailbox, t.DeclaredSize))
}

func anonymousSender(t *Transaction) (Outcome, *reply.Reply) {
	att, rep := JudgeAnonymousSender(t.Dir, t.Client, t.From)
	t.SenderAttribution = att
	return verdict(rep)
}

func route(t *Transaction) (Outcome, *reply.Reply) {
	r, rep := RouteAuthenticated(t.Dir, t.Rcpt)
	t.Route = r
	return verdict(rep)
}

// inboundConnector attributes the recipient: its organization and that
// organization's connector the client matched (JudgeAnonymous). It never
// refuses itself; the verdict's reply is the "Recipient" step's, after
// connection filtering.
func inboundConnector(t *Transaction) (Outcome, *reply.Reply) {
	t.Verdict, t.verdictReply = JudgeAnonymous(t.Dir, t.Client, t.From, t.Rcpt)
	t.Route = t.Verdict.Route
	return Pass, nil
}

func connectionFilter(t *Transaction) (Outcome, *reply.Reply) {
	if t.Verdict.Org == nil {
		return NotApplicable, nil
	}
	allow, rep := ConnectionFilter(t.Dir, t.Verdict.Org, t.Client.IP)
	t.AllowListed = allow
	return verdict(rep)
}

func anonymousRecipient(t *Transaction) (Outcome, *reply.Reply) {
	return verdict(t.verdictReply)
}

// sourceThrottling counts Direct Send and connector relay per source; an
// address on the IP Allow List skips it.
func sourceThrottling(t *Transaction) (Outcome, *reply.Reply) {
	t.Class = Unthrottled
	if !t.AllowListed {
		t.Class = SourceClassOf(t.Dir, t.Verdict, t.From)
	}
	if t.Class == Unthrottled {
		return NotApplicable, nil
	}
	sent, limits := t.Inputs.SourceUsage(t.Class)
	return verdict(CheckSourceRate(t.Class, sent, limits))
}

func receiveSize(t *Transaction) (Outcome, *reply.Reply) {
	m := t.Route.Mailbox
	if m == nil || t.DeclaredSize <= 0 {
		return NotApplicable, nil
	}
	return verdict(CheckReceiveSize(m, t.DeclaredSize))
}

// receiveQuota asks the store's cached size only when a quota is set: no
// query per RCPT otherwise.
func receiveQuota(t *Transaction) (Outcome, *reply.Reply) {
	m := t.Route.Mailbox
	if m == nil || m.ProhibitSendReceiveQuota == directory.Unlimited {
		return NotApplicable, nil
	}
	return verdict(CheckReceiveQuota(m, t.Inputs.MailboxSize(m.ID)))
}

// recipientLimit defers the whole message's refusal past RecipientLimits
// (authenticated) or the recipient organization's MaxRecipientEnvelopeLimit
// (anonymous), and past the server's 1,000 recipients of one message.
func recipientLimit(t *Transaction) (Outcome, *reply.Reply) {
	var rep *reply.Reply
	if t.Mailbox != nil {
		rep = CheckRecipientCount(t.Mailbox, t.Accepted+t.OverLimit+1)
	} else {
		if t.Verdict.Org == nil {
			return NotApplicable, nil
		}
		rep = CheckEnvelopeRecipients(t.Verdict.Org, t.PerOrg[t.Verdict.Org.ID]+1)
		if rep == nil && t.Accepted >= directory.MaxRecipientLimits {
			rep = reply.RecipientLimitExceeded
		}
	}
	if rep != nil {
		return Defer, rep
	}
	return Pass, nil
}

// concurrentConnections: a mailbox may have 3 connections submitting at
// once; the 4th signs in but is refused at end of DATA with 432 4.3.2, as
// Exchange does, unless a slot has come free by then. Slots that cannot be
// counted (the database several nodes share is unreachable) are a
// temporary failure too, never a pass: a 4th connection never submits
// because the count was unknown.
func concurrentConnections(t *Transaction) (Outcome, *reply.Reply) {
	held, err := t.Inputs.HoldSlot(t.Mailbox.ID)
	if err != nil {
		return Refuse, reply.StorageUnavailable
	}
	if !held {
		return Refuse, reply.ConcurrentConnections
	}
	return Pass, nil
}

func sendAs(t *Transaction) (Outcome, *reply.Reply) {
	if !t.Headers {
		return NotApplicable, nil
	}
	if t.HeadersBad {
		return Refuse, reply.NoFromHeader
	}
	f := SenderFacts{Login: t.Mailbox, HeaderFrom: t.HeaderFrom, HeaderSender: t.HeaderSender}
	if !t.From.IsZero() {
		f.EnvelopeFrom = t.From.Key()
	}
	return verdict(CheckSendAs(t.Dir, f))
}

// sendQuota: over ProhibitSendQuota the mailbox cannot submit (its Sent
// Items copies count), refused where Exchange's store driver refuses it.
func sendQuota(t *Transaction) (Outcome, *reply.Reply) {
	m := t.Mailbox
	if m.ProhibitSendQuota == directory.Unlimited && m.ProhibitSendReceiveQuota == directory.Unlimited {
		return NotApplicable, nil
	}
	return verdict(CheckSendQuota(m, t.Inputs.MailboxSize(m.ID)))
}

// messageReceiveSize checks the measured size against every local
// recipient's MaxReceiveSize.
func messageReceiveSize(t *Transaction) (Outcome, *reply.Reply) {
	if t.Size <= 0 {
		return NotApplicable, nil
	}
	for i := range t.Accepted {
		if m := t.Inputs.AcceptedMailbox(i); m != nil {
			if rep := CheckReceiveSize(m, t.Size); rep != nil {
				return Refuse, rep
			}
		}
	}
	return Pass, nil
}
