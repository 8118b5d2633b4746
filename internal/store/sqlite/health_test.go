package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

// TestProbe: the readiness probe writes and reads back, repeatedly, and
// fails once the store is closed.
func TestProbe(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	ctx := context.Background()
	for range 3 {
		must(t, s.Probe(ctx))
	}
	must(t, s.Close())
	if err := s.Probe(ctx); err == nil {
		t.Fatal("probe of a closed store succeeded")
	}
}

// TestQueueStats: the backlog per next hop is the top n domains by depth,
// the rest folded into "other", with each hop's oldest message; local
// (paced) deliveries are not outbound backlog.
func TestQueueStats(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, sean, chris := seed(t, s)
	base := time.Now().Add(-time.Hour)
	// domain -> recipients; each message is received a minute after the last.
	plan := []struct {
		domain string
		n      int
	}{{"a.example", 5}, {"B.example", 3}, {"c.example", 2}, {"d.example", 1}, {"a.example", 1}}
	for i, p := range plan {
		var remote []store.RemoteDelivery
		for j := range p.n {
			remote = append(remote, store.RemoteDelivery{Recipient: fmt.Sprintf("u%d@%s", j, p.domain)})
		}
		must(t, s.Commit(ctx, &store.Submission{OrgID: org.ID, MessageID: fmt.Sprintf("q%d@test", i), ReceivedAt: base.Add(time.Duration(i) * time.Minute),
			EnvelopeFrom: "sean@contoso.com", AuthMailbox: sean.ID, Body: []byte("Subject: x\r\n\r\nx\r\n"), Recipients: p.n, Remote: remote,
			Local: []store.LocalDelivery{{Mailbox: chris.ID, Folder: store.Inbox, Recipient: "chris@contoso.com", NotBefore: time.Now().Add(time.Hour)}}}))
	}
	for _, tc := range []struct {
		n    int
		want []HopStats
	}{
		{1, []HopStats{{"a.example", 6, base}, {"other", 6, base.Add(time.Minute)}}},
		{2, []HopStats{{"a.example", 6, base}, {"b.example", 3, base.Add(time.Minute)}, {"other", 3, base.Add(2 * time.Minute)}}},
		{10, []HopStats{{"a.example", 6, base}, {"b.example", 3, base.Add(time.Minute)}, {"c.example", 2, base.Add(2 * time.Minute)}, {"d.example", 1, base.Add(3 * time.Minute)}}},
	} {
		got, err := s.QueueStats(ctx, tc.n)
		must(t, err)
		if len(got) != len(tc.want) {
			t.Fatalf("n=%d: %+v", tc.n, got)
		}
		for i, w := range tc.want {
			g := got[i]
			if g.NextHop != w.NextHop || g.Depth != w.Depth || !g.Oldest.Equal(w.Oldest) {
				t.Errorf("n=%d [%d]: got %s %d %v, want %s %d %v", tc.n, i, g.NextHop, g.Depth, g.Oldest, w.NextHop, w.Depth, w.Oldest)
			}
		}
	}
}
