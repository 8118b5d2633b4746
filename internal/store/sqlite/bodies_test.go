package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

func readBody(t *testing.T, s *Store, id int64) []byte {
	t.Helper()
	rc, err := s.MessageBody(context.Background(), id)
	must(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	must(t, err)
	return b
}

// bodyFiles lists the body files (not the segments) in dir.
func bodyFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, BodiesDir))
	must(t, err)
	var out []string
	for _, e := range entries {
		if _, segment := parseSegmentName(e.Name()); !segment {
			out = append(out, e.Name())
		}
	}
	return out
}

// spoolFile writes a spooled upload of n random bytes.
func spoolFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	raw := make([]byte, n)
	rand.Read(raw)
	path := filepath.Join(t.TempDir(), "msg-spool")
	must(t, os.WriteFile(path, raw, 0o600))
	return path, raw
}

// TestOrphanBodiesSwept: a body file no row names (a crash between the
// file and the commit, or between the release and the unlink) is removed
// by SweepBodies (at the server's start); a referenced one stays.
func TestOrphanBodiesSwept(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	must(t, err)
	org, sean, _ := seed(t, s)
	spool, raw := spoolFile(t, 100<<10)
	sub := &store.Submission{OrgID: org.ID, MessageID: "kept@test", ReceivedAt: time.Now(), Body: []byte{}, BodyFile: spool,
		Recipients: 1, Local: []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}}
	must(t, s.Commit(context.Background(), sub))
	must(t, s.Close())
	must(t, os.WriteFile(filepath.Join(dir, BodiesDir, "0123456789abcdef0123456789abcdef"), []byte("orphan"), 0o600))

	s, err = Open(dir)
	must(t, err)
	defer s.Close()
	if n, err := s.SweepBodies(context.Background()); err != nil || n != 1 {
		t.Errorf("SweepBodies removed %d (%v), want the orphan", n, err)
	}
	if files := bodyFiles(t, dir); len(files) != 1 {
		t.Errorf("body files after reopening %v, want the referenced one only", files)
	}
	if !bytes.Equal(readBody(t, s, sub.ID), raw) {
		t.Error("the referenced body changed")
	}
}

// TestPruneTraceBatches: trace retention removes old events and the
// messages that were released, over several batches, and keeps messages
// still in a mailbox.
func TestPruneTraceBatches(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	old := time.Now().Add(-100 * 24 * time.Hour)
	defer func(n int) { pruneBatch = n }(pruneBatch)
	pruneBatch = 40
	relayed := 2*pruneBatch + 10
	// Written in one transaction: the commit path is not what is tested.
	must(t, s.inTx(ctx, func(tx *sql.Tx) error {
		rows := newGroupRows()
		for i := range relayed + 1 {
			sub := &store.Submission{OrgID: org.ID, MessageID: fmt.Sprintf("m%d@test", i), ReceivedAt: old, Body: []byte("x\r\n"),
				Recipients: 1, Remote: []store.RemoteDelivery{{Recipient: "r@fabrikam.example"}}}
			if i == relayed {
				sub.Remote, sub.Local = nil, []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}
			}
			if err := insertSubmission(ctx, tx, nil, rows, sub, bodyPlace{size: 3}); err != nil {
				return err
			}
		}
		return rows.flush(ctx, tx)
	}))
	for {
		out, err := s.ClaimOutbound(ctx, time.Now(), time.Minute, "n", 500)
		must(t, err)
		if len(out) == 0 {
			break
		}
		var os []store.Outcome
		for _, it := range out {
			os = append(os, store.Outcome{QueueID: it.QueueID, Message: it.Message, Recipient: it.Recipient, Event: store.EventSend, At: old})
		}
		must(t, s.RecordOutcomes(ctx, os, nil))
	}
	n, err := s.PruneTrace(ctx, time.Now().Add(-90*24*time.Hour))
	must(t, err)
	// Send events of the relayed ones, the kept one's Deliver, and the
	// relayed messages themselves.
	if want := int64(relayed + 1 + relayed); n != want {
		t.Errorf("pruned %d rows, want %d", n, want)
	}
	var messages int
	must(t, s.r.QueryRow("SELECT COUNT(*) FROM messages").Scan(&messages))
	if messages != 1 {
		t.Errorf("%d messages left, want the one in the Inbox", messages)
	}
	must(t, s.ReclaimSpace(ctx))
}

// TestLegacyBlobBody: a message stored before migration 009 (its whole
// body in messages.body, no message_bodies row) is still read, and is
// released like any other.
func TestLegacyBlobBody(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	const body = "Subject: from an older version\r\n\r\nhello\r\n"
	var id int64
	must(t, s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO messages (org_id, message_id, subject, received_at, envelope_from, client_ip, recipients, size, body)
			VALUES (?, 'old@test', 'old', ?, '', '', 1, ?, ?)`, org.ID, time.Now().UnixNano(), len(body), []byte(body))
		if err != nil {
			return err
		}
		id, _ = res.LastInsertId()
		return fileItem(ctx, tx, sean.ID, store.Inbox, id, time.Now().UnixNano())
	}))
	if got := string(readBody(t, s, id)); got != body {
		t.Fatalf("legacy body %q", got)
	}
	must(t, s.DeleteMailbox(ctx, sean.ID))
	if _, err := s.MessageBody(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("legacy body after Remove-Mailbox: %v", err)
	}
	var left int
	must(t, s.r.QueryRow("SELECT length(body) FROM messages WHERE id = ?", id).Scan(&left))
	if left != 0 {
		t.Errorf("%d octets of the legacy body kept", left)
	}
}
