package policy

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// fakeInputs answers the chain's stateful questions from fixed values.
type fakeInputs struct {
	size     int64
	sent     int
	limits   SourceLimits
	noSlot   bool
	slotErr  error
	accepted []*directory.Mailbox
}

var chainNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func (f fakeInputs) Now() time.Time                           { return chainNow }
func (f fakeInputs) MailboxSize(int64) int64                  { return f.size }
func (f fakeInputs) HoldSlot(int64) (bool, error)             { return !f.noSlot, f.slotErr }
func (f fakeInputs) AcceptedMailbox(i int) *directory.Mailbox { return f.accepted[i] }
func (f fakeInputs) SourceUsage(SourceClass) (int, SourceLimits) {
	return f.sent, f.limits
}

// chainDirectory: contoso with sean (RecipientLimits 2, 1 KB MaxSendSize
// and MaxReceiveSize, quotas of 1 MB), restricted kim, a printers
// connector (192.0.2.0/28, RequireTls) and 203.0.113.66 on the IP Block
// List, 203.0.113.77 on the IP Allow List.
func chainDirectory(t *testing.T) *directory.Snapshot {
	t.Helper()
	rng := func(s string) []directory.IPRange {
		r, err := directory.ParseIPRange(s)
		if err != nil {
			t.Fatal(err)
		}
		return []directory.IPRange{r}
	}
	return directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1, Name: "contoso", MaxRecipientEnvelopeLimit: 2}},
		Domains:       []*directory.AcceptedDomain{{ID: 1, OrgID: 1, DomainName: "contoso.com", DomainType: directory.Authoritative, Default: true}},
		Mailboxes: []*directory.Mailbox{
			{ID: 1, OrgID: 1, PrimarySmtpAddress: "sean@contoso.com", UserPrincipalName: "sean@contoso.com", RecipientLimits: 2,
				MaxSendSize: 1024, MaxReceiveSize: 1024, ProhibitSendQuota: 1 << 20, ProhibitSendReceiveQuota: 1 << 20},
			{ID: 2, OrgID: 1, PrimarySmtpAddress: "kim@contoso.com", UserPrincipalName: "kim@contoso.com"},
		},
		Connectors: []*directory.InboundConnector{{ID: 1, OrgID: 1, Name: "printers", ConnectorType: directory.OnPremises, Enabled: true,
			RequireTls: true, SenderIPAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/28")}, SenderDomains: []string{"*"}}},
		ConnectionFilters: []*directory.ConnectionFilterPolicy{{OrgID: 1, IPBlockList: rng("203.0.113.66"), IPAllowList: rng("203.0.113.77")}},
		RestrictedSenders: []*directory.RestrictedSender{{ID: 1, OrgID: 1, MailboxID: 2, SenderAddress: "kim@contoso.com", Action: directory.ActionBlockUser}},
	})
}

func addr(s string) address.Address {
	if s == "" {
		return address.Address{}
	}
	a, err := address.Parse(s)
	if err != nil {
		panic(err)
	}
	return a
}

// TestChainShape: every step has a stage the session walks, a path, a
// name to print and a decision; the chain fits the visited bit set.
func TestChainShape(t *testing.T) {
	if len(chain) > 64 {
		t.Fatalf("%d steps: Transaction.visited holds 64", len(chain))
	}
	ids := map[StepID]bool{}
	names := map[[3]any]bool{}
	for i, st := range Chain() {
		if st.Stage > AtDataEnd || st.Path == 0 || st.Path&^Both != 0 || st.Check == "" || st.Decide == nil {
			t.Errorf("step %d (%s) is malformed: %+v", i, st.Check, st)
		}
		if ids[st.ID] {
			t.Errorf("step %d: ID %d used twice", i, st.ID)
		}
		ids[st.ID] = true
		for _, p := range []Path{Authenticated, Anonymous} {
			k := [3]any{st.Stage, p, st.Check}
			if st.Path&p == 0 {
				continue
			}
			if names[k] {
				t.Errorf("step %d: %s is named twice at %s", i, st.Check, st.Stage)
			}
			names[k] = true
		}
	}
}

// TestChainWalk: for each step, a transaction it refuses (or defers), with
// the exact reply; the server's walk stops there and names the step.
func TestChainWalk(t *testing.T) {
	dir := chainDirectory(t)
	sean, kim := dir.Mailbox(1), dir.Mailbox(2)
	printer := ClientFacts{IP: netip.MustParseAddr("192.0.2.5")}
	printerTLS := ClientFacts{IP: netip.MustParseAddr("192.0.2.5"), TLS: true}
	stranger := ClientFacts{IP: netip.MustParseAddr("198.51.100.9")}
	blocked := ClientFacts{IP: netip.MustParseAddr("203.0.113.66")}
	allowed := ClientFacts{IP: netip.MustParseAddr("203.0.113.77")}
	throttle := SourceLimits{DirectSendPerHour: 5, RelayPerHour: 5}
	for _, tt := range []struct {
		name  string
		stage Stage
		tx    Transaction
		in    fakeInputs
		want  Outcome
		step  StepID
		reply *reply.Reply
	}{
		{"restricted sender", AtMail, Transaction{Mailbox: kim, From: addr("kim@contoso.com")}, fakeInputs{}, Refuse, StepRestrictedSender, reply.BadOutboundSender},
		{"SIZE= over MaxSendSize", AtMail, Transaction{Mailbox: sean, DeclaredSize: 2048}, fakeInputs{}, Refuse, StepSendSize, reply.MessageTooLarge(1024)},
		{"SIZE= within", AtMail, Transaction{Mailbox: sean, DeclaredSize: 512}, fakeInputs{}, Pass, 0, nil},
		{"connector requires TLS", AtMail, Transaction{Client: printer, From: addr("scan@contoso.com")}, fakeInputs{}, Refuse, StepAnonymousSender, reply.TLSRequired},
		{"anonymous sender over TLS", AtMail, Transaction{Client: printerTLS, From: addr("scan@contoso.com")}, fakeInputs{}, Pass, 0, nil},
		{"unknown recipient, authenticated", AtRcpt, Transaction{Mailbox: sean, Rcpt: addr("nobody@contoso.com")}, fakeInputs{}, Refuse, StepRoute,
			reply.RecipientNotFound("nobody@contoso.com")},
		{"blocked IP before the recipient's own refusal", AtRcpt, Transaction{Client: blocked, From: addr("x@example.org"), Rcpt: addr("nobody@contoso.com")}, fakeInputs{},
			Refuse, StepConnectionFilter, reply.BannedSendingIP(blocked.IP)},
		{"unknown recipient, anonymous", AtRcpt, Transaction{Client: stranger, From: addr("x@example.org"), Rcpt: addr("nobody@contoso.com")}, fakeInputs{},
			Refuse, StepAnonymousRecipient, reply.RecipientAccessDenied},
		{"relay without a connector", AtRcpt, Transaction{Client: stranger, From: addr("x@example.org"), Rcpt: addr("bob@example.net")}, fakeInputs{},
			Refuse, StepAnonymousRecipient, reply.RelayDenied},
		{"Direct Send throttled", AtRcpt, Transaction{Client: stranger, From: addr("scan@contoso.com"), Rcpt: addr("sean@contoso.com")}, fakeInputs{sent: 5, limits: throttle},
			Refuse, StepSourceThrottling, reply.SourceThrottled},
		{"allow-listed source is not throttled", AtRcpt, Transaction{Client: allowed, From: addr("scan@contoso.com"), Rcpt: addr("kim@contoso.com")}, fakeInputs{sent: 5, limits: throttle},
			Pass, 0, nil},
		{"connector relay throttled", AtRcpt, Transaction{Client: printerTLS, From: addr("scan@contoso.com"), Rcpt: addr("bob@example.net")}, fakeInputs{sent: 5, limits: throttle},
			Refuse, StepSourceThrottling, reply.SourceThrottled},
		{"declared size over MaxReceiveSize", AtRcpt, Transaction{Client: stranger, From: addr("x@example.org"), Rcpt: addr("sean@contoso.com"), DeclaredSize: 4096}, fakeInputs{},
			Refuse, StepReceiveSize, reply.RecipientMessageTooLarge(1024)},
		{"recipient's mailbox full, anonymous", AtRcpt, Transaction{Client: stranger, From: addr("x@example.org"), Rcpt: addr("sean@contoso.com")}, fakeInputs{size: 1 << 20},
			Refuse, StepReceiveQuota, reply.MailboxFull},
		{"recipient's mailbox full, authenticated", AtRcpt, Transaction{Mailbox: kim, Rcpt: addr("sean@contoso.com")}, fakeInputs{size: 1 << 20},
			Refuse, StepReceiveQuota, reply.MailboxFull},
		{"past RecipientLimits", AtRcpt, Transaction{Mailbox: sean, Rcpt: addr("kim@contoso.com"), Accepted: 2}, fakeInputs{},
			Defer, StepRecipientLimit, reply.RecipientLimitExceeded},
		{"past MaxRecipientEnvelopeLimit", AtRcpt, Transaction{Client: stranger, From: addr("x@example.org"), Rcpt: addr("kim@contoso.com"), PerOrg: map[int64]int{1: 2}}, fakeInputs{},
			Defer, StepRecipientLimit, reply.RecipientLimitExceeded},
		{"within the limits", AtRcpt, Transaction{Mailbox: sean, Rcpt: addr("bob@example.net"), Accepted: 1}, fakeInputs{}, Pass, 0, nil},
		{"no connection slot", AtDataEnd, Transaction{Mailbox: sean, Headers: true, HeaderFrom: []string{"sean@contoso.com"}}, fakeInputs{noSlot: true},
			Refuse, StepConcurrentConnections, reply.ConcurrentConnections},
		{"connection slots unreadable", AtDataEnd, Transaction{Mailbox: sean, Headers: true, HeaderFrom: []string{"sean@contoso.com"}},
			fakeInputs{noSlot: true, slotErr: errors.New("database unreachable")},
			Refuse, StepConcurrentConnections, reply.StorageUnavailable},
		{"no From header", AtDataEnd, Transaction{Mailbox: sean, Headers: true, HeadersBad: true}, fakeInputs{}, Refuse, StepSendAs, reply.NoFromHeader},
		{"Send As denied", AtDataEnd, Transaction{Mailbox: sean, From: addr("sean@contoso.com"), Headers: true, HeaderFrom: []string{"kim@contoso.com"}}, fakeInputs{},
			Refuse, StepSendAs, reply.SendAsDenied("sean@contoso.com", "kim@contoso.com")},
		{"sender's mailbox full", AtDataEnd, Transaction{Mailbox: sean, Headers: true, HeaderFrom: []string{"sean@contoso.com"}}, fakeInputs{size: 1 << 20},
			Refuse, StepSendQuota, reply.SenderMailboxFull},
		{"message over a recipient's MaxReceiveSize", AtDataEnd, Transaction{Client: stranger, Size: 4096, Accepted: 2}, fakeInputs{accepted: []*directory.Mailbox{nil, sean}},
			Refuse, StepMessageReceiveSize, reply.RecipientMessageTooLarge(1024)},
		{"authenticated message accepted", AtDataEnd, Transaction{Mailbox: sean, Headers: true, HeaderFrom: []string{"sean@contoso.com"}}, fakeInputs{}, Pass, 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tx := tt.tx
			tx.Dir, tx.Inputs = dir, tt.in
			rcpt := tx.Rcpt
			tx.StartRecipient(rcpt)
			r := tx.Walk(tt.stage)
			if r.Outcome != tt.want || replyText(r.Reply) != replyText(tt.reply) {
				t.Fatalf("walk: %v %q, want %v %q", r.Outcome, replyText(r.Reply), tt.want, replyText(tt.reply))
			}
			if r.Outcome != Pass && r.StepID() != tt.step {
				t.Errorf("decided by %s, want step %d", chain[r.Step].Check, tt.step)
			}
			// The diagnosis of the same transaction gives the same first
			// refusal, and goes on past it.
			diag := tt.tx
			diag.Dir, diag.Inputs = dir, tt.in
			diag.StartRecipient(rcpt)
			results := diag.Diagnose(tt.stage)
			var first *StepResult
			for i := range results {
				if o := results[i].Outcome; o == Refuse || o == Defer {
					first = &results[i]
					break
				}
			}
			switch {
			case tt.want == Pass && first != nil:
				t.Errorf("the diagnosis refuses with %s", first.Step.Check)
			case tt.want != Pass && (first == nil || first.Step.ID != tt.step || first.Reply != r.Reply && replyText(first.Reply) != replyText(r.Reply)):
				t.Errorf("the diagnosis disagrees: %+v", first)
			}
		})
	}
}

// TestEveryStepReachable: the diagnosis of an authenticated and of an
// anonymous transaction, each through every stage, decides every step of
// the chain; the session's walk is checked the same way in package smtpd.
func TestEveryStepReachable(t *testing.T) {
	dir := chainDirectory(t)
	in := fakeInputs{accepted: []*directory.Mailbox{dir.Mailbox(1)}}
	auth := Transaction{Dir: dir, Inputs: in, Mailbox: dir.Mailbox(1), From: addr("sean@contoso.com"), DeclaredSize: 10,
		Headers: true, HeaderFrom: []string{"sean@contoso.com"}}
	anon := Transaction{Dir: dir, Inputs: in, Client: ClientFacts{IP: netip.MustParseAddr("198.51.100.9")}, From: addr("scan@contoso.com"),
		DeclaredSize: 10, Size: 10, Accepted: 1}
	seen := map[string]bool{}
	for _, tx := range []*Transaction{&auth, &anon} {
		for _, stage := range []Stage{AtMail, AtRcpt, AtDataEnd} {
			if stage == AtRcpt {
				tx.StartRecipient(addr("sean@contoso.com"))
			}
			for _, r := range tx.Diagnose(stage) {
				seen[r.Step.Stage.String()+" "+r.Step.Check] = true
			}
		}
	}
	for i, st := range Chain() {
		if !auth.Visited(i) && !anon.Visited(i) {
			t.Errorf("step %q (%s) is decided by no diagnosis", st.Check, st.Stage)
		}
		if !seen[st.Stage.String()+" "+st.Check] {
			t.Errorf("step %q (%s) is listed by no diagnosis", st.Check, st.Stage)
		}
	}
}

func replyText(rep *reply.Reply) string {
	if rep == nil {
		return ""
	}
	return reply.String(rep)
}
