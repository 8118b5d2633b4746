package queue

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"postern.dev/postern/internal/store"
)

// outcomeStore records RecordOutcomes calls; a call holding an outcome of
// a message in bad fails, as a store refusing one record would.
type outcomeStore struct {
	store.Store // only RecordOutcomes is called
	bad         int64
	mu          sync.Mutex
	calls       [][]int64 // the messages of each call's outcomes
	written     []int64   // messages whose outcomes were committed
}

func (s *outcomeStore) RecordOutcomes(_ context.Context, outcomes []store.Outcome, _ []*store.Submission) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var msgs []int64
	for _, o := range outcomes {
		msgs = append(msgs, o.Message)
	}
	s.calls = append(s.calls, msgs)
	if slices.Contains(msgs, s.bad) {
		return errors.New("refused")
	}
	s.written = append(s.written, msgs...)
	return nil
}

func TestWriteRecords(t *testing.T) {
	rec := func(msgs ...int64) *record {
		r := &record{items: len(msgs)}
		for _, m := range msgs {
			r.outcomes = append(r.outcomes, store.Outcome{Message: m, Event: store.EventSend})
		}
		return r
	}
	tests := []struct {
		name        string
		batch       []*record
		bad         int64
		wantCalls   int // RecordOutcomes calls
		wantWritten []int64
	}{
		{name: "one transaction for every job waiting", batch: []*record{rec(1), rec(2, 3), rec(4)},
			wantCalls: 1, wantWritten: []int64{1, 2, 3, 4}},
		{name: "a lone job", batch: []*record{rec(1)}, wantCalls: 1, wantWritten: []int64{1}},
		// The batch fails, then each job alone: the bad one is tried five
		// times and left leased; its neighbours are written.
		{name: "one bad job does not hold back the others", batch: []*record{rec(1), rec(2), rec(3)}, bad: 2,
			wantCalls: 1 + 1 + 5 + 1, wantWritten: []int64{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &outcomeStore{bad: tt.bad}
			q := New(Config{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			for _, r := range tt.batch {
				q.inflight += r.items
			}
			q.writeRecords(tt.batch)
			if len(st.calls) != tt.wantCalls || !slices.Equal(st.written, tt.wantWritten) {
				t.Errorf("calls %v, written %v; want %d calls writing %v", st.calls, st.written, tt.wantCalls, tt.wantWritten)
			}
			if q.inflight != 0 {
				t.Errorf("inflight %d after the batch, want 0: every item settled, written or given up", q.inflight)
			}
		})
	}
}

// TestRecordLoopDrains: outcomes handed over before the queue stops are
// all written before recordLoop ends.
func TestRecordLoopDrains(t *testing.T) {
	st := &outcomeStore{}
	q := New(Config{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	done := make(chan struct{})
	go q.recordLoop(done)
	for m := int64(1); m <= 500; m++ {
		q.mu.Lock()
		q.inflight++
		q.mu.Unlock()
		q.records <- &record{outcomes: []store.Outcome{{Message: m}}, items: 1}
	}
	close(q.records)
	<-done
	if len(st.written) != 500 || q.inflight != 0 {
		t.Fatalf("%d of 500 written, inflight %d", len(st.written), q.inflight)
	}
	if len(st.calls) > 500 {
		t.Fatalf("%d calls for 500 records", len(st.calls))
	}
}
