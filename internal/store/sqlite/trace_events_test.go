package sqlite

import (
	"context"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

// TestPruneTraceEventsInRecordedOrder: retention deletes the events
// recorded before the first one not yet due, in batches; an event recorded
// after that one waits even when its own time is old (pruneTraceEvents).
func TestPruneTraceEventsInRecordedOrder(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	defer func(n int) { pruneBatch = n }(pruneBatch)
	pruneBatch = 3
	old := time.Now().Add(-100 * 24 * time.Hour)
	cut := time.Now().Add(-90 * 24 * time.Hour)
	deliver := func(at time.Time) *store.Submission {
		sub := &store.Submission{OrgID: org.ID, MessageID: "m@test", ReceivedAt: at, Body: []byte("x\r\n"), Recipients: 1,
			Local: []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}}
		must(t, s.Commit(ctx, sub))
		return sub
	}
	// Seven old Deliver events (more than two batches), a recent one, then
	// one more old one.
	var olds []*store.Submission
	for range 7 {
		olds = append(olds, deliver(old))
	}
	recent := deliver(time.Now())
	late := deliver(old)
	n, err := s.PruneTrace(ctx, cut)
	must(t, err)
	if n != 7 {
		t.Errorf("pruned %d events, want the 7 before the recent one", n)
	}
	events := func(sub *store.Submission) []string {
		ev, err := s.TraceEvents(ctx, sub.ID)
		must(t, err)
		var names []string
		for _, e := range ev {
			names = append(names, e.Event)
		}
		return names
	}
	// The messages stay (they are in a mailbox), with their Receive.
	if got := events(olds[0]); len(got) != 1 || got[0] != store.EventReceive {
		t.Errorf("an old message's events after pruning: %v", got)
	}
	for _, sub := range []*store.Submission{recent, late} {
		if got := events(sub); len(got) != 2 || got[1] != store.EventDeliver {
			t.Errorf("message %d's events after pruning: %v", sub.ID, got)
		}
	}
	// Once the recent one is due too, the late one goes with it.
	n, err = s.PruneTrace(ctx, time.Now().Add(time.Minute))
	must(t, err)
	if n != 2 {
		t.Errorf("pruned %d events, want 2", n)
	}
}

// TestTraceEventsStoredReceive: a Receive event stored before Receive
// events were made from the message's row is shown once, as stored.
func TestTraceEventsStoredReceive(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, _, _ := seed(t, s)
	sub := &store.Submission{OrgID: org.ID, MessageID: "m@test", ReceivedAt: time.Now(), ClientIP: "192.0.2.9", AuthMailbox: 0,
		Body: []byte("x\r\n"), Recipients: 1, Remote: []store.RemoteDelivery{{Recipient: "r@fabrikam.example"}}}
	must(t, s.Commit(ctx, sub))
	ev, err := s.TraceEvents(ctx, sub.ID)
	must(t, err)
	if len(ev) != 1 || ev[0].Event != store.EventReceive || ev[0].Detail != "client 192.0.2.9" || !ev[0].At.Equal(sub.ReceivedAt) {
		t.Fatalf("events made from the row: %+v", ev)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO trace_events (message, at, event, recipient, detail, remote_host)
		VALUES (?, ?, 'Receive', '', 'client 192.0.2.9 (stored)', '')`, sub.ID, nanos(sub.ReceivedAt))
	must(t, err)
	ev, err = s.TraceEvents(ctx, sub.ID)
	must(t, err)
	if len(ev) != 1 || ev[0].Detail != "client 192.0.2.9 (stored)" {
		t.Errorf("with a stored Receive: %+v", ev)
	}
	if ev, err := s.TraceEvents(ctx, sub.ID+1000); err != nil || len(ev) != 0 {
		t.Errorf("a message that does not exist: %+v, %v", ev, err)
	}
}
