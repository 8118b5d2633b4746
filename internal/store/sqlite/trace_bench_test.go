package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

// BenchmarkMessageTrace measures Get-MessageTrace's query on a store of
// POSTERN_TRACE_MESSAGES messages (default 100,000; the figure in
// BENCHMARKS.md is for 1,000,000), each with a Receive and a Deliver or
// Send event, spread over 90 days.
func BenchmarkMessageTrace(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("POSTERN_TRACE_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	org, sean, _ := seed(&testing.T{}, s)
	start := time.Now().Add(-90 * 24 * time.Hour)
	step := 90 * 24 * time.Hour / time.Duration(n)
	for done := 0; done < n; {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			rows := newGroupRows()
			for i := 0; i < 10000 && done < n; i, done = i+1, done+1 {
				sub := &store.Submission{OrgID: org.ID, MessageID: fmt.Sprintf("m%d@contoso.com", done), Subject: "scan " + strconv.Itoa(done),
					ReceivedAt: start.Add(time.Duration(done) * step), EnvelopeFrom: fmt.Sprintf("device%d@contoso.com", done%500),
					ClientIP: "192.0.2.1", Body: []byte("Subject: x\r\n\r\nx\r\n"), Recipients: 1}
				if done%2 == 0 {
					sub.Local = []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}
				} else {
					sub.Remote = []store.RemoteDelivery{{Recipient: fmt.Sprintf("user%d@fabrikam.com", done%1000)}}
				}
				if err := insertSubmission(ctx, tx, nil, rows, sub, bodyPlace{size: int64(len(sub.Body))}); err != nil {
					return err
				}
			}
			return rows.flush(ctx, tx)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range []struct {
		name string
		q    store.TraceQuery
	}{
		{"last 48h", store.TraceQuery{Start: time.Now().Add(-48 * time.Hour)}},
		{"one sender, 90 days", store.TraceQuery{Sender: "device42@contoso.com"}},
		{"one recipient, 90 days", store.TraceQuery{Recipient: "user7@fabrikam.com"}},
		{"one Message-ID", store.TraceQuery{MessageID: fmt.Sprintf("m%d@contoso.com", n/2)}},
	} {
		b.Run(q.name, func(b *testing.B) {
			q.q.OrgID, q.q.Limit = org.ID, 1000
			for b.Loop() {
				if _, err := s.MessageTrace(ctx, q.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
