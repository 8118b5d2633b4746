package sqlite

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

// TestMessageTraceByRecipient: a recipient's messages are found the same
// whether their ids are resolved first (few) or the organization's
// messages are walked by time (many), newest first, without case, by
// pattern, whether delivered, sent or still queued.
func TestMessageTraceByRecipient(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	start := time.Now().Add(-time.Hour)
	var subs []*store.Submission
	for i := range 6 {
		sub := &store.Submission{OrgID: org.ID, MessageID: fmt.Sprintf("m%d@contoso.com", i), Subject: "s",
			ReceivedAt: start.Add(time.Duration(i) * time.Minute), EnvelopeFrom: "scanner@contoso.com", ClientIP: "192.0.2.1",
			Body: []byte("Subject: s\r\n\r\nx\r\n"), Recipients: 1}
		if i%2 == 0 {
			sub.Local = []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}
		} else {
			sub.Remote = []store.RemoteDelivery{{Recipient: fmt.Sprintf("user%d@fabrikam.example", i%3)}}
		}
		must(t, s.Commit(ctx, sub))
		subs = append(subs, sub)
	}
	ids := func(i ...int) []int64 {
		var out []int64
		for _, n := range i {
			out = append(out, subs[n].ID)
		}
		return out
	}
	tests := []struct {
		recipient string
		want      []int64 // newest first
	}{
		{"sean@contoso.com", ids(4, 2, 0)},
		{"SEAN@Contoso.COM", ids(4, 2, 0)},
		{"user1@fabrikam.example", ids(1)},   // queued, no event yet
		{"*@fabrikam.example", ids(5, 3, 1)}, // pattern
		{"nobody@fabrikam.example", nil},     // no message
		{"user0@fabrikam.example", ids(3)},   // 3 % 3
		{"user2@fabrikam.example", ids(5)},   // 5 % 3
		{"*", ids(5, 4, 3, 2, 1, 0)},         // everyone
		{"sean@contoso.com*", ids(4, 2, 0)},  // pattern with a fixed prefix
		{"s_an@contoso.com", nil},            // _ is not a wildcard
		{"sean%@contoso.com", nil},           // nor is %
		{"user1@fabrikam.example ", nil},     // exact
		{"user1@fabrikam.example\x00", nil},  // bad input finds nothing
		{"", ids(5, 4, 3, 2, 1, 0)},          // no filter
	}
	t.Cleanup(func() { maxResolvedRecipientMessages = 10000 })
	for _, resolved := range []int{10000, 1} { // ids first; the walk by time
		maxResolvedRecipientMessages = resolved
		for _, tt := range tests {
			got, err := s.MessageTrace(ctx, store.TraceQuery{OrgID: org.ID, Recipient: tt.recipient})
			if err != nil {
				t.Fatalf("resolve up to %d, %q: %v", resolved, tt.recipient, err)
			}
			var gotIDs []int64
			for _, m := range got {
				gotIDs = append(gotIDs, m.Message)
			}
			if !slices.Equal(gotIDs, tt.want) {
				t.Errorf("resolve up to %d, %q: %v, want %v", resolved, tt.recipient, gotIDs, tt.want)
			}
		}
	}
}
