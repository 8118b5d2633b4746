package imapd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"postern.dev/postern/internal/store"
)

// BenchmarkSelectFetchHeaders: SELECT + UID FETCH 1:* (FLAGS RFC822.SIZE
// BODY.PEEK[HEADER]) of a 10,000-message folder over TLS, with
// imapclient. One op is the whole SELECT + FETCH.
func BenchmarkSelectFetchHeaders(b *testing.B) {
	const n = 10000
	h := newHarness(b)
	ctx := context.Background()
	// File in batches through Commit, as deliveries arrive.
	var wait []chan error
	for i := range n {
		msg := fmt.Sprintf("From: chris@contoso.com\r\nTo: sean@contoso.com\r\nSubject: message %d\r\nMessage-ID: <%d@contoso.com>\r\n\r\nbody %d\r\n", i, i, i)
		done := make(chan error, 1)
		wait = append(wait, done)
		go func() {
			done <- h.st.Commit(ctx, &store.Submission{OrgID: h.org.ID, MessageID: "m", ReceivedAt: time.Now(), Body: []byte(msg), Recipients: 1,
				Local: []store.LocalDelivery{{Mailbox: h.sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}})
		}()
		if len(wait) == 256 || i == n-1 {
			for _, d := range wait {
				if err := <-d; err != nil {
					b.Fatal(err)
				}
			}
			wait = wait[:0]
		}
	}
	c := h.login(b, nil)
	opts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, Peek: true}}}
	b.ResetTimer()
	for range b.N {
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil || sel.NumMessages != n {
			b.Fatalf("SELECT: %v %+v", err, sel)
		}
		cmd := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, opts)
		count := 0
		for cmd.Next() != nil {
			count++
		}
		if err := cmd.Close(); err != nil || count != n {
			b.Fatalf("FETCH: %v, %d messages", err, count)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/message")
}
