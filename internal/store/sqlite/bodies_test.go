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

func bodyFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, BodiesDir))
	must(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
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

// TestBodyFiles: a spooled body committed twice (one message for two
// organizations) gets two body files, each read back as head + upload,
// after the spool file is gone; each is released with its last reference,
// and the metadata stays for message trace.
func TestBodyFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	spool, raw := spoolFile(t, 3<<20)

	var subs []*store.Submission
	for i := range 2 {
		head := []byte(fmt.Sprintf("Received: from commit %d\r\n", i))
		sub := &store.Submission{OrgID: org.ID, MessageID: "big@test", ReceivedAt: time.Now(), EnvelopeFrom: "sean@contoso.com",
			Body: head, BodyFile: spool, Recipients: 1, Remote: []store.RemoteDelivery{{Recipient: "bob@fabrikam.example"}}}
		if i == 1 {
			sub.Remote = nil
			sub.Local = []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}
		}
		must(t, s.Commit(ctx, sub))
		subs = append(subs, sub)
	}
	must(t, os.Remove(spool))
	if files := bodyFiles(t, dir); len(files) != 2 {
		t.Fatalf("body files %v, want one per commit", files)
	}
	for i, sub := range subs {
		want := append([]byte(fmt.Sprintf("Received: from commit %d\r\n", i)), raw...)
		if got := readBody(t, s, sub.ID); !bytes.Equal(got, want) {
			t.Errorf("commit %d: body of %d bytes, want %d", i, len(got), len(want))
		}
	}
	items, err := s.FolderItems(ctx, sean.ID, store.Inbox)
	must(t, err)
	if len(items) != 1 || items[0].Message != subs[1].ID || items[0].Size != int64(len(raw))+int64(len("Received: from commit 1\r\n")) {
		t.Fatalf("Inbox items %+v", items)
	}

	// Relayed: delivered, the body goes.
	out, err := s.ClaimOutbound(ctx, time.Now().Add(time.Second), time.Minute, "n", 10)
	must(t, err)
	if len(out) != 1 {
		t.Fatalf("claimed %d", len(out))
	}
	must(t, s.RecordOutcomes(ctx, []store.Outcome{{QueueID: out[0].QueueID, Message: out[0].Message, Recipient: out[0].Recipient,
		Event: store.EventSend, At: time.Now()}}, nil))
	if _, err := s.MessageBody(ctx, subs[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delivered message's body still readable: %v", err)
	}
	if files := bodyFiles(t, dir); len(files) != 1 {
		t.Errorf("body files after delivery %v, want the mailbox copy's only", files)
	}
	if got := readBody(t, s, subs[1].ID); len(got) == 0 {
		t.Error("the other commit's body went too")
	}
	traced, err := s.MessageTrace(ctx, store.TraceQuery{OrgID: org.ID, Message: subs[0].ID})
	must(t, err)
	if len(traced) != 1 || traced[0].Size == 0 {
		t.Errorf("message trace lost the delivered message: %+v", traced)
	}

	// Remove-Mailbox: the mailbox copy goes.
	must(t, s.DeleteMailbox(ctx, sean.ID))
	if files := bodyFiles(t, dir); len(files) != 0 {
		t.Errorf("body files after Remove-Mailbox %v", files)
	}
	if _, err := s.MessageBody(ctx, subs[1].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removed mailbox's message still readable: %v", err)
	}
}

// TestInlineBodyReleased: a small body lives in its row and is released
// the same way; a deferred item keeps it.
func TestInlineBodyReleased(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, _, _ := seed(t, s)
	sub := &store.Submission{OrgID: org.ID, MessageID: "small@test", ReceivedAt: time.Now(), EnvelopeFrom: "sean@contoso.com",
		Body: []byte("Subject: x\r\n\r\nhello\r\n"), Recipients: 2,
		Remote: []store.RemoteDelivery{{Recipient: "a@fabrikam.example"}, {Recipient: "b@fabrikam.example"}}}
	must(t, s.Commit(ctx, sub))
	out, err := s.ClaimOutbound(ctx, time.Now().Add(time.Second), time.Minute, "n", 10)
	must(t, err)
	must(t, s.RecordOutcomes(ctx, []store.Outcome{
		{QueueID: out[0].QueueID, Message: sub.ID, Recipient: out[0].Recipient, Event: store.EventFail, At: time.Now()},
		{QueueID: out[1].QueueID, Message: sub.ID, Recipient: out[1].Recipient, Event: store.EventDefer, At: time.Now(), NextAttempt: time.Now()},
	}, nil))
	if got := string(readBody(t, s, sub.ID)); got != "Subject: x\r\n\r\nhello\r\n" {
		t.Fatalf("body with a recipient still queued: %q", got)
	}
	out, err = s.ClaimOutbound(ctx, time.Now().Add(time.Second), time.Minute, "n", 10)
	must(t, err)
	must(t, s.RecordOutcomes(ctx, []store.Outcome{{QueueID: out[0].QueueID, Message: sub.ID, Recipient: out[0].Recipient,
		Event: store.EventSend, At: time.Now()}}, nil))
	if _, err := s.MessageBody(ctx, sub.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("body still readable after the last recipient: %v", err)
	}
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
		for i := range relayed + 1 {
			sub := &store.Submission{OrgID: org.ID, MessageID: fmt.Sprintf("m%d@test", i), ReceivedAt: old, Body: []byte("x\r\n"),
				Recipients: 1, Remote: []store.RemoteDelivery{{Recipient: "r@fabrikam.example"}}}
			if i == relayed {
				sub.Remote, sub.Local = nil, []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}
			}
			if err := insertSubmission(ctx, tx, sub, "", 3); err != nil {
				return err
			}
		}
		return nil
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
	// Receive and Send events of the relayed ones, the kept one's Receive
	// and Deliver, and the relayed messages themselves.
	if want := int64(2*relayed + 2 + relayed); n != want {
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
