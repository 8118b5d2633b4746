package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

// TestGroupRows: a transaction's messages get the IDs after the highest
// (one written by another path in between included), and their rows land
// whole and in order however the multi-row statements split them (45 =
// 32 + 8 + 4 + 1 rows).
func TestGroupRows(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, sean, chris := seed(t, s)
	group := func(n int, tag string) []*store.Submission {
		var subs []*store.Submission
		must(t, s.inTx(ctx, func(tx *sql.Tx) error {
			rows := newGroupRows()
			for i := range n {
				sub := &store.Submission{OrgID: org.ID, MessageID: fmt.Sprintf("%s%d@test", tag, i), ReceivedAt: time.Now(),
					Body: []byte("x\r\n"), Recipients: 2, AuthMailbox: chris.ID, SentItems: chris.ID,
					Local:  []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}},
					Remote: []store.RemoteDelivery{{Recipient: fmt.Sprintf("r%d@fabrikam.example", i)}}}
				if err := insertSubmission(ctx, tx, nil, rows, sub, bodyPlace{size: 3}); err != nil {
					return err
				}
				subs = append(subs, sub)
			}
			return rows.flush(ctx, tx)
		}))
		return subs
	}
	first := group(45, "a")
	var other int64
	must(t, s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO messages (org_id, message_id, subject, received_at, envelope_from, client_ip, recipients, size, body)
			VALUES (?, 'other@test', '', ?, '', '', 1, 0, x'')`, org.ID, time.Now().UnixNano())
		if err == nil {
			other, err = res.LastInsertId()
		}
		return err
	}))
	second := group(3, "b")
	for i, sub := range first {
		if sub.ID != first[0].ID+int64(i) {
			t.Fatalf("message %d has ID %d, want %d", i, sub.ID, first[0].ID+int64(i))
		}
	}
	if other != first[44].ID+1 || second[0].ID != other+1 {
		t.Fatalf("IDs %d, then %d from another path, then %d; want each one past the last", first[44].ID, other, second[0].ID)
	}
	for _, sub := range append(first, second...) {
		var mid string
		var items, queued int
		must(t, s.r.QueryRow("SELECT message_id FROM messages WHERE id = ?", sub.ID).Scan(&mid))
		must(t, s.r.QueryRow("SELECT COUNT(*) FROM folder_items WHERE message = ?", sub.ID).Scan(&items))
		must(t, s.r.QueryRow("SELECT COUNT(*) FROM queue WHERE message = ?", sub.ID).Scan(&queued))
		if mid != sub.MessageID || items != 2 || queued != 1 {
			t.Errorf("message %d: Message-ID %q, %d items, %d queued; want %q, 2 (Sent Items, Inbox), 1", sub.ID, mid, items, queued, sub.MessageID)
		}
		// The Receive is not stored: TraceEvents makes it from the row.
		events := column[string](t, s, "SELECT event FROM trace_events WHERE message = ? ORDER BY id", sub.ID)
		if want := []string{store.EventDeliver}; !slices.Equal(events, want) {
			t.Errorf("message %d: events stored %v, want %v", sub.ID, events, want)
		}
		traced, err := s.TraceEvents(ctx, sub.ID)
		must(t, err)
		if len(traced) != 2 || traced[0].Event != store.EventReceive || traced[1].Event != store.EventDeliver {
			t.Errorf("message %d: events traced %+v, want Receive, Deliver", sub.ID, traced)
		}
	}
	// Each folder's UIDs ascend in the order the messages were added.
	uids := column[int64](t, s, `SELECT i.uid FROM folder_items i JOIN folders f ON f.id = i.folder_id
		WHERE f.mailbox_id = ? AND f.name = ? ORDER BY i.message`, sean.ID, store.Inbox)
	if len(uids) != 48 || !slices.IsSorted(uids) || uids[0] != 1 || uids[47] != 48 {
		t.Errorf("Inbox UIDs by message %v, want 1..48", uids)
	}
}

// column reads a query's one column.
func column[T any](t *testing.T, s *Store, query string, args ...any) []T {
	t.Helper()
	rows, err := s.r.Query(query, args...)
	must(t, err)
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		must(t, rows.Scan(&v))
		out = append(out, v)
	}
	must(t, rows.Err())
	return out
}

// TestReserveFoldersPlan: a group's UIDs in several folders are reserved by
// scanning its short list and finding each folder by its unique index, not
// by scanning every folder (an installation has several per mailbox).
func TestReserveFoldersPlan(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	var plan []string
	rows, err := s.r.Query("EXPLAIN QUERY PLAN "+reserveFoldersUIDsSQL, `[[1, "Inbox", 2]]`)
	must(t, err)
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		must(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	if !slices.ContainsFunc(plan, func(d string) bool { return strings.HasPrefix(d, "SEARCH folders USING INDEX") }) {
		t.Errorf("plan %q: folders are not searched by their index", plan)
	}
}
