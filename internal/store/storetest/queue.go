package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

// commitRemote commits a message to outside recipients.
func commitRemote(t *testing.T, s store.Store, org int64, at time.Time, from string, rcpts ...string) *store.Submission {
	t.Helper()
	sub := &store.Submission{OrgID: org, MessageID: fmt.Sprintf("r%d@test", at.UnixNano()), Subject: "Quarterly report", ReceivedAt: at,
		EnvelopeFrom: from, ClientIP: "192.0.2.7", Body: []byte("Subject: Quarterly report\r\n\r\nx\r\n"), Recipients: len(rcpts)}
	for _, r := range rcpts {
		sub.Remote = append(sub.Remote, store.RemoteDelivery{Recipient: r})
	}
	must(t, s.Commit(context.Background(), sub))
	return sub
}

// testOutboundLeases: a claimed item is nobody else's until its lease
// expires or its node releases it; RetryNow makes a deferred item due.
func testOutboundLeases(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, _, _ := seed(t, s)
	now := time.Now()
	sub := commitRemote(t, s, org.ID, now, "sean@contoso.com", "a@fabrikam.example", "b@fabrikam.example", "c@fabrikam.example")
	if out, _ := s.ClaimOutbound(ctx, now.Add(-time.Second), time.Minute, "n1", 10); len(out) != 0 {
		t.Fatalf("claimed before due: %+v", out)
	}
	a, err := s.ClaimOutbound(ctx, now, time.Minute, "n1", 2)
	must(t, err)
	if len(a) != 2 || a[0].Recipient != "a@fabrikam.example" || a[0].Message != sub.ID || a[0].OrgID != org.ID ||
		a[0].EnvelopeFrom != "sean@contoso.com" || a[0].Subject != "Quarterly report" || !a[0].ReceivedAt.Equal(now) || a[0].Size != int64(len(sub.Body)) {
		t.Fatalf("first claim: %+v", a)
	}
	b, err := s.ClaimOutbound(ctx, now, time.Minute, "n2", 10)
	must(t, err)
	if len(b) != 1 || b[0].Recipient != "c@fabrikam.example" {
		t.Fatalf("second node claimed %+v, want only the item left", b)
	}
	q, err := s.QueueItems(ctx)
	must(t, err)
	for _, it := range q {
		if !it.LeasedUntil.Equal(now.Add(time.Minute)) {
			t.Errorf("queue item %d leased until %v", it.ID, it.LeasedUntil)
		}
	}
	// n1 restarts: its leases are free again, n2's stay.
	must(t, s.ReleaseLeases(ctx, "n1"))
	c, err := s.ClaimOutbound(ctx, now, time.Hour, "n3", 10)
	must(t, err)
	if len(c) != 2 {
		t.Fatalf("after n1 released: %+v", c)
	}
	// n2 died: its lease expires.
	if out, _ := s.ClaimOutbound(ctx, now.Add(30*time.Second), time.Minute, "n3", 10); len(out) != 0 {
		t.Fatalf("claimed a live lease: %+v", out)
	}
	d, err := s.ClaimOutbound(ctx, now.Add(time.Minute), time.Minute, "n3", 10)
	must(t, err)
	if len(d) != 1 || d[0].QueueID != b[0].QueueID {
		t.Fatalf("after n2's lease expired: %+v", d)
	}
	// Deferred an hour; Retry-Queue makes it due now. Local items are not
	// outbound.
	must(t, s.RecordOutcomes(ctx, []store.Outcome{{QueueID: d[0].QueueID, Message: sub.ID, Recipient: d[0].Recipient, Event: store.EventDefer,
		Detail: "451 try later", At: now, NextAttempt: now.Add(time.Hour)}}, nil))
	n, err := s.RetryNow(ctx, []int64{d[0].QueueID, 424242}, now)
	must(t, err)
	if n != 1 {
		t.Errorf("RetryNow = %d", n)
	}
	if n, _ := s.RetryNow(ctx, nil, now); n != 0 {
		t.Errorf("RetryNow of nothing = %d", n)
	}
	e, err := s.ClaimOutbound(ctx, now.Add(2*time.Minute), time.Minute, "n4", 10)
	must(t, err)
	if len(e) != 1 || e[0].Attempts != 1 {
		t.Fatalf("after RetryNow: %+v", e)
	}
}

// testConcurrentClaims: workers claiming at once never get the same item,
// and together get all of them.
func testConcurrentClaims(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, _, _ := seed(t, s)
	now := time.Now()
	const items = 120
	for i := range items / 4 {
		commitRemote(t, s, org.ID, now.Add(time.Duration(i)), "sean@contoso.com",
			"a@x.example", "b@x.example", "c@x.example", "d@x.example")
	}
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprint("node", w)
			for {
				out, err := s.ClaimOutbound(ctx, now.Add(time.Second), time.Hour, node, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(out) == 0 {
					return
				}
				mu.Lock()
				for _, it := range out {
					if other, ok := seen[it.QueueID]; ok {
						t.Errorf("item %d claimed by %s and %s", it.QueueID, other, node)
					}
					seen[it.QueueID] = node
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != items {
		t.Errorf("claimed %d items, want %d", len(seen), items)
	}
}

// testDeferAndNotices: outcomes and the notices they cause are one
// transaction; a notice is an ordinary message (null sender) filed or
// queued; trace events record each step.
func testDeferAndNotices(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	now := time.Now()
	sub := commitRemote(t, s, org.ID, now, "sean@contoso.com", "gone@fabrikam.example")
	out, err := s.ClaimOutbound(ctx, now, time.Minute, "n", 10)
	must(t, err)
	must(t, s.RecordOutcomes(ctx, []store.Outcome{{QueueID: out[0].QueueID, Message: sub.ID, Recipient: out[0].Recipient, Event: store.EventDefer,
		Detail: "451 4.4.1 no answer", RemoteHost: "mx.fabrikam.example", At: now, NextAttempt: now.Add(time.Minute), DelayNotified: true}}, nil))
	q, err := s.QueueItems(ctx)
	must(t, err)
	if len(q) != 1 || q[0].Attempts != 1 || q[0].LastError != "451 4.4.1 no answer" || !q[0].NotBefore.Equal(now.Add(time.Minute)) || !q[0].LeasedUntil.IsZero() {
		t.Fatalf("deferred item %+v", q)
	}
	out, err = s.ClaimOutbound(ctx, now.Add(time.Minute), time.Minute, "n", 10)
	must(t, err)
	if len(out) != 1 || !out[0].DelayNotified {
		t.Fatalf("claim after the deferral %+v", out)
	}
	ndr := &store.Submission{OrgID: org.ID, MessageID: "ndr@test", Subject: "Undeliverable: Quarterly report", ReceivedAt: now.Add(time.Minute),
		Body: []byte("Subject: Undeliverable\r\n\r\nx\r\n"), Recipients: 1,
		Local: []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}}
	w := s.Watch(sean.ID)
	defer w.Close()
	must(t, s.RecordOutcomes(ctx, []store.Outcome{
		{QueueID: out[0].QueueID, Message: sub.ID, Recipient: out[0].Recipient, Event: store.EventFail, Detail: "550 5.1.1 unknown", At: now.Add(time.Minute)},
		{Message: sub.ID, Recipient: "sean@contoso.com", Event: store.EventDSN, Detail: "NDR", At: now.Add(time.Minute)},
	}, []*store.Submission{ndr}))
	if ndr.ID == 0 {
		t.Fatal("the notice got no ID")
	}
	select {
	case <-w.C:
	case <-time.After(10 * time.Second):
		t.Error("filing the notice did not signal the mailbox")
	}
	if got := folderCounts(t, s, sean.ID)[store.Inbox]; got != 1 {
		t.Errorf("notice not filed: Inbox %d", got)
	}
	ev, err := s.TraceEvents(ctx, sub.ID)
	must(t, err)
	var names []string
	for _, e := range ev {
		names = append(names, e.Event)
	}
	if !slices.Equal(names, []string{store.EventReceive, store.EventDefer, store.EventFail, store.EventDSN}) ||
		!ev[0].At.Equal(sub.ReceivedAt) || ev[0].Detail != "client "+sub.ClientIP || ev[1].RemoteHost != "mx.fabrikam.example" ||
		ev[2].Detail != "550 5.1.1 unknown" || !ev[2].At.Equal(now.Add(time.Minute)) {
		t.Errorf("trace events %+v", ev)
	}
	tr, err := s.MessageTrace(ctx, store.TraceQuery{OrgID: org.ID, Message: sub.ID})
	must(t, err)
	if len(tr) != 1 || len(tr[0].Recipients) != 1 || tr[0].Recipients[0].LastEvent != store.EventFail || tr[0].Recipients[0].Queued {
		t.Errorf("trace of the failed message %+v", tr)
	}
	if q, _ := s.QueueItems(ctx); len(q) != 0 {
		t.Errorf("queue after the failure: %+v", q)
	}
}

// testMessageTraceQueries: Get-MessageTrace's filters, each alone.
func testMessageTraceQueries(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, chris := seed(t, s)
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	m1 := &store.Submission{OrgID: org.ID, MessageID: "one@contoso.com", Subject: "Invoice 42", ReceivedAt: base, EnvelopeFrom: "Sean@Contoso.com",
		AuthMailbox: sean.ID, ClientIP: "192.0.2.1", SessionID: "S1", AuthProtocol: "Basic", TLSVersion: "TLS1.3", Body: []byte("x\r\n"), Recipients: 2,
		Local:  []store.LocalDelivery{{Mailbox: chris.ID, Folder: store.Inbox, Recipient: "chris@contoso.com"}},
		Remote: []store.RemoteDelivery{{Recipient: "Bob@Fabrikam.example"}}}
	m2 := &store.Submission{OrgID: org.ID, MessageID: "two@contoso.com", Subject: "Scan_100%", ReceivedAt: base.Add(time.Hour), EnvelopeFrom: "scanner@contoso.com",
		InboundConnector: "Printers", ClientIP: "192.0.2.9", Body: []byte("x\r\n"), Recipients: 1,
		Local: []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}}
	for _, m := range []*store.Submission{m1, m2} {
		must(t, s.Commit(ctx, m))
	}
	ids := func(q store.TraceQuery) []int64 {
		t.Helper()
		q.OrgID = org.ID
		tr, err := s.MessageTrace(ctx, q)
		must(t, err)
		var out []int64
		for _, m := range tr {
			out = append(out, m.Message)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    store.TraceQuery
		want []int64
	}{
		{"all, newest first", store.TraceQuery{}, []int64{m2.ID, m1.ID}},
		{"limit", store.TraceQuery{Limit: 1}, []int64{m2.ID}},
		{"sender without case", store.TraceQuery{Sender: "sean@contoso.COM"}, []int64{m1.ID}},
		{"sender wildcard", store.TraceQuery{Sender: "SCAN*"}, []int64{m2.ID}},
		{"sender wildcard matching both", store.TraceQuery{Sender: "*@contoso.com"}, []int64{m2.ID, m1.ID}},
		{"recipient in the queue", store.TraceQuery{Recipient: "bob@fabrikam.example"}, []int64{m1.ID}},
		{"recipient delivered", store.TraceQuery{Recipient: "Chris@contoso.com"}, []int64{m1.ID}},
		{"recipient wildcard", store.TraceQuery{Recipient: "*@contoso.com"}, []int64{m2.ID, m1.ID}},
		{"start", store.TraceQuery{Start: base.Add(time.Minute)}, []int64{m2.ID}},
		{"end", store.TraceQuery{End: base.Add(time.Minute)}, []int64{m1.ID}},
		{"Message-ID with brackets", store.TraceQuery{MessageID: "<two@contoso.com>"}, []int64{m2.ID}},
		{"unknown Message-ID", store.TraceQuery{MessageID: "none@contoso.com"}, nil},
		{"MessageTraceId", store.TraceQuery{Message: m1.ID}, []int64{m1.ID}},
		{"FromIP", store.TraceQuery{FromIP: "192.0.2.9"}, []int64{m2.ID}},
		{"subject part, without case", store.TraceQuery{Subject: "invoice"}, []int64{m1.ID}},
		{"subject with LIKE's characters taken literally", store.TraceQuery{Subject: "_100%"}, []int64{m2.ID}},
		{"subject with _ not a wildcard", store.TraceQuery{Subject: "invoice_42"}, nil},
	} {
		if got := ids(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if tr, _ := s.MessageTrace(ctx, store.TraceQuery{OrgID: org.ID + 1}); len(tr) != 0 {
		t.Errorf("another organization sees %+v", tr)
	}
	tr, err := s.MessageTrace(ctx, store.TraceQuery{OrgID: org.ID, Message: m1.ID})
	must(t, err)
	got := tr[0]
	if got.MessageID != "one@contoso.com" || got.Sender != "Sean@Contoso.com" || got.ClientIP != "192.0.2.1" || !got.ReceivedAt.Equal(base) ||
		got.AuthMailbox != sean.ID || got.AuthProtocol != "Basic" || got.TLSVersion != "TLS1.3" || got.SessionID != "S1" || got.Size != 3 {
		t.Errorf("traced message %+v", got)
	}
	want := []store.TracedRecipient{{Address: "chris@contoso.com", LastEvent: store.EventDeliver, Detail: "Folder Inbox"},
		{Address: "Bob@Fabrikam.example", Queued: true}}
	if !slices.Equal(got.Recipients, want) {
		t.Errorf("recipients %+v, want %+v", got.Recipients, want)
	}
	if tr, _ := s.MessageTrace(ctx, store.TraceQuery{OrgID: org.ID, Message: m2.ID}); tr[0].Connector != "Printers" {
		t.Errorf("connector %+v", tr[0])
	}
}

// testPruneTrace: trace retention removes old events and connection log
// entries, and old messages nothing refers to, keeping messages still in a
// mailbox or the queue.
func testPruneTrace(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	old := time.Now().Add(-100 * 24 * time.Hour)
	relayed := commitRemote(t, s, org.ID, old, "sean@contoso.com", "r@fabrikam.example")
	queued := commitRemote(t, s, org.ID, old, "sean@contoso.com", "q@fabrikam.example")
	kept := &store.Submission{OrgID: org.ID, MessageID: "kept@test", ReceivedAt: old, Body: []byte("x\r\n"), Recipients: 1,
		Local: []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}}
	must(t, s.Commit(ctx, kept))
	recent := commitRemote(t, s, org.ID, time.Now(), "sean@contoso.com", "n@fabrikam.example")
	out, err := s.ClaimOutbound(ctx, old, time.Minute, "n", 10)
	must(t, err)
	for _, it := range out {
		if it.Message == relayed.ID {
			must(t, s.RecordOutcomes(ctx, []store.Outcome{{QueueID: it.QueueID, Message: it.Message, Recipient: it.Recipient, Event: store.EventSend, At: old}}, nil))
		}
	}
	must(t, s.LogConnections(ctx, []store.ConnectionEvent{{At: old, ClientIP: "192.0.2.1", Event: "AuthFailed"}, {At: time.Now(), ClientIP: "192.0.2.2", Event: "AuthFailed"}}))
	n, err := s.PruneTrace(ctx, time.Now().Add(-90*24*time.Hour))
	must(t, err)
	// Events: relayed Send, kept Deliver (a Receive is not stored: it is
	// made from the message's row); one connection log entry; the relayed
	// message.
	if n != 2+1+1 {
		t.Errorf("pruned %d rows, want 4", n)
	}
	// The message kept in a mailbox keeps its Receive, made from its row.
	if ev, err := s.TraceEvents(ctx, kept.ID); err != nil || len(ev) != 1 || ev[0].Event != store.EventReceive || !ev[0].At.Equal(old) ||
		ev[0].Detail != "generated by Postern" {
		t.Errorf("kept message's events after pruning: %+v, %v", ev, err)
	}
	tr, err := s.MessageTrace(ctx, store.TraceQuery{OrgID: org.ID})
	must(t, err)
	var left []int64
	for _, m := range tr {
		left = append(left, m.Message)
	}
	slices.Sort(left)
	if want := []int64{queued.ID, kept.ID, recent.ID}; !slices.Equal(left, want) {
		t.Errorf("messages left %v, want %v", left, want)
	}
	if log, _ := s.ConnectionLog(ctx, store.ConnectionQuery{}); len(log) != 1 || log[0].ClientIP != "192.0.2.2" {
		t.Errorf("connection log left %+v", log)
	}
	must(t, s.ReclaimSpace(ctx))
	readBody(t, s, kept.ID)
}
