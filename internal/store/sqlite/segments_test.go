package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

// segmentFiles lists the segment files in dir's bodies directory.
func segmentFiles(t *testing.T, dir string) []int64 {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, BodiesDir))
	must(t, err)
	var out []int64
	for _, e := range entries {
		if seq, ok := parseSegmentName(e.Name()); ok {
			out = append(out, seq)
		}
	}
	return out
}

// commitBodies commits n messages from memory to mailbox's Inbox, each body
// distinct, and returns their IDs and bodies.
func commitBodies(t *testing.T, s *Store, org, mailbox int64, n, size int) ([]int64, [][]byte) {
	t.Helper()
	var ids []int64
	var bodies [][]byte
	for i := range n {
		body := []byte(fmt.Sprintf("Subject: %d\r\n\r\n", i))
		body = append(body, bytes.Repeat([]byte{byte('a' + i%26)}, size-len(body))...)
		sub := &store.Submission{OrgID: org, MessageID: fmt.Sprintf("seg%d@test", i), ReceivedAt: time.Now(), Body: body,
			Recipients: 1, Local: []store.LocalDelivery{{Mailbox: mailbox, Folder: store.Inbox, Recipient: "sean@contoso.com"}}}
		must(t, s.Commit(context.Background(), sub))
		ids, bodies = append(ids, sub.ID), append(bodies, body)
	}
	return ids, bodies
}

// TestSegmentBodies: bodies committed from memory go to segments (a new one
// when the current is full), read back whole, and each segment is removed
// once its last body is released and nothing writes to it any more; a
// released body's bytes are punched out.
func TestSegmentBodies(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	must(t, err)
	ctx := context.Background()
	org, sean, other := seed(t, s)
	s.segs.max = 2500 // two 1,000-byte bodies a segment
	ids, bodies := commitBodies(t, s, org.ID, sean.ID, 7, 1000)
	for i, id := range ids {
		if got := readBody(t, s, id); !bytes.Equal(got, bodies[i]) {
			t.Fatalf("message %d read back %q", i, got[:20])
		}
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{1, 2, 3, 4}) {
		t.Fatalf("segments %v, want 1-4 (two bodies each)", got)
	}
	var inTable int
	must(t, s.r.QueryRow("SELECT COUNT(*) FROM message_bodies").Scan(&inTable))
	if inTable != 0 {
		t.Errorf("%d bodies in message_bodies, want none", inTable)
	}

	// Releasing the first message's body punches it out; its segment
	// stays for the second.
	var seq, off int64
	must(t, s.r.QueryRow("SELECT body_seg, body_off FROM messages WHERE id = ?", ids[0]).Scan(&seq, &off))
	var inbox int64
	must(t, s.r.QueryRow("SELECT id FROM folders WHERE mailbox_id = ? AND name = ?", sean.ID, store.Inbox).Scan(&inbox))
	_, err = s.SetMailFlags(ctx, sean.ID, inbox, []store.UIDRange{{Start: 1, Stop: 1}}, store.FlagsAdd, []string{store.FlagDeleted})
	must(t, err)
	_, err = s.ExpungeMail(ctx, sean.ID, inbox, nil)
	must(t, err)
	if _, err := s.MessageBody(ctx, ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("released body: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, BodiesDir, segmentName(seq)))
	must(t, err)
	if !bytes.Equal(raw[off:off+1000], make([]byte, 1000)) {
		t.Error("the released body's bytes are still in its segment")
	}
	if !bytes.Equal(readBody(t, s, ids[1]), bodies[1]) {
		t.Error("the other body of the segment changed")
	}

	// Removing the mailbox releases the rest: every segment but the
	// current one goes at once, the current one at the next start.
	must(t, s.DeleteMailbox(ctx, sean.ID))
	if got := segmentFiles(t, dir); !slices.Equal(got, []int64{4}) {
		t.Errorf("segments after the mailbox went %v, want only the current one (4)", got)
	}
	must(t, s.Close())
	s, err = Open(dir)
	must(t, err)
	defer s.Close()
	if n, err := s.SweepBodies(ctx); err != nil || n != 1 {
		t.Errorf("SweepBodies removed %d (%v), want the emptied segment", n, err)
	}
	if got := segmentFiles(t, dir); len(got) != 0 {
		t.Errorf("segments after the sweep %v, want none", got)
	}
	// The next segment's number is new: a row can never name an old file.
	ids, _ = commitBodies(t, s, org.ID, other.ID, 1, 100)
	must(t, s.r.QueryRow("SELECT body_seg FROM messages WHERE id = ?", ids[0]).Scan(&seq))
	if seq != 5 {
		t.Errorf("new segment %d after a restart, want 5", seq)
	}
}

// TestTornBodyRemovedAtStart: a crash can leave the last commit group's rows
// durable and their bodies not (the two are synced at once; neither was
// reported). Start-up finds them by their CRC and removes the messages with
// their items; older messages, and the newest whose bodies are whole, stay.
func TestTornBodyRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	must(t, err)
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	ids, bodies := commitBodies(t, s, org.ID, sean.ID, 4, 3000)
	must(t, s.Close())

	// The third message's body never reached the disk.
	var seq, off int64
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName))
	must(t, err)
	must(t, db.QueryRow("SELECT body_seg, body_off FROM messages WHERE id = ?", ids[2]).Scan(&seq, &off))
	db.Close()
	f, err := os.OpenFile(filepath.Join(dir, BodiesDir, segmentName(seq)), os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt(make([]byte, 3000), off)
	must(t, err)
	must(t, f.Close())

	s, err = Open(dir)
	must(t, err)
	defer s.Close()
	_, err = s.SweepBodies(ctx)
	must(t, err)
	if _, err := s.MessageBody(ctx, ids[2]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the torn message is still there: %v", err)
	}
	for _, i := range []int{0, 1, 3} {
		if !bytes.Equal(readBody(t, s, ids[i]), bodies[i]) {
			t.Errorf("message %d changed", i)
		}
	}
	var items, events, live int
	must(t, s.r.QueryRow("SELECT COUNT(*) FROM folder_items").Scan(&items))
	must(t, s.r.QueryRow("SELECT COUNT(*) FROM trace_events WHERE message = ?", ids[2]).Scan(&events))
	must(t, s.r.QueryRow("SELECT live FROM body_segments WHERE seq = ?", seq).Scan(&live))
	if items != 3 || events != 0 || live != 3 {
		t.Errorf("after the sweep: %d folder items, %d events of the torn message, %d live bodies; want 3, 0, 3", items, events, live)
	}
	stats, err := s.FolderStatistics(ctx, sean.ID)
	must(t, err)
	for _, f := range stats {
		if f.Name == store.Inbox && (f.ItemsInFolder != 3 || f.FolderSize != 9000) {
			t.Errorf("Inbox after the sweep: %+v", f)
		}
	}
}

// TestPunchedBodyReadsAsGone: a body released (punched out) between the
// read of its row and the read of its bytes reads as gone, never as zeros.
func TestPunchedBodyReadsAsGone(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	must(t, err)
	defer s.Close()
	org, sean, _ := seed(t, s)
	ids, bodies := commitBodies(t, s, org.ID, sean.ID, 2, 2000)
	var seq, off int64
	must(t, s.r.QueryRow("SELECT body_seg, body_off FROM messages WHERE id = ?", ids[0]).Scan(&seq, &off))
	must(t, punchHole(filepath.Join(dir, BodiesDir, segmentName(seq)), off, 2000))
	if rc, err := s.MessageBody(context.Background(), ids[0]); !errors.Is(err, store.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("a punched-out body: %v, want ErrNotFound", err)
	}
	if !bytes.Equal(readBody(t, s, ids[1]), bodies[1]) {
		t.Error("its neighbour changed")
	}
}

// FuzzSegmentName: a name parses as a segment only to a positive number
// whose own segment name parses back to it, and a body file's name (hex,
// newBodyName) never parses: the sweeps never take one for the other.
func FuzzSegmentName(f *testing.F) {
	for _, s := range []string{"0000000001.seg", "0123456789abcdef0123456789abcdef", ".seg", "-1.seg", "99999999999999999999.seg", "1.seg", "0000000000.seg"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		seq, ok := parseSegmentName(name)
		if _, err := hex.DecodeString(name); err == nil && ok {
			t.Fatalf("the body file name %q parsed as segment %d", name, seq)
		}
		if !ok {
			return
		}
		if seq <= 0 {
			t.Fatalf("%q parsed to %d", name, seq)
		}
		if again, ok := parseSegmentName(segmentName(seq)); !ok || again != seq {
			t.Fatalf("%q: %d does not round-trip (%d, %v)", name, seq, again, ok)
		}
	})
}

// TestWriteBodiesInPlace: a group's bodies, given in any order, land at
// the places they reserved, adjacent ones in one write and the others in
// runs of their own; a place nobody filled (an abandoned commit) stays a
// hole of zeros.
func TestWriteBodiesInPlace(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), segmentName(1)))
	must(t, err)
	defer f.Close()
	at := func(off int64, body string) *pendingCommit {
		return &pendingCommit{sub: &store.Submission{Body: []byte(body)}, body: bodyPlace{seq: 1, off: off}}
	}
	// 0-5 and 5-8 and 8-10 are one run; 10-20 was abandoned; 20-24 is a
	// run of its own.
	ps := []*pendingCommit{at(20, "WXYZ"), at(5, "fgh"), at(0, "abcde"), at(8, "ij")}
	must(t, (&segment{seq: 1, f: f}).writeBodies(ps))
	got, err := os.ReadFile(f.Name())
	must(t, err)
	want := "abcdefghij" + string(make([]byte, 10)) + "WXYZ"
	if string(got) != want {
		t.Errorf("segment holds %q, want %q", got, want)
	}
}

// TestConcurrentCommitsShareSegmentWrites: commits made at once share
// groups, each group writing its bodies together; every body reads back
// whole.
func TestConcurrentCommitsShareSegmentWrites(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	org, sean, _ := seed(t, s)
	const n = 60
	bodies := make([][]byte, n)
	ids := make([]int64, n)
	errs := make(chan error, n)
	for i := range n {
		body := []byte(fmt.Sprintf("Subject: %d\r\n\r\n", i))
		bodies[i] = append(body, bytes.Repeat([]byte{byte('a' + i%26)}, 100+i*97)...)
		go func() {
			sub := &store.Submission{OrgID: org.ID, MessageID: fmt.Sprintf("par%d@test", i), ReceivedAt: time.Now(), Body: bodies[i],
				Recipients: 1, Local: []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}}
			err := s.Commit(context.Background(), sub)
			ids[i] = sub.ID
			errs <- err
		}()
	}
	for range n {
		must(t, <-errs)
	}
	for i, id := range ids {
		if got := readBody(t, s, id); !bytes.Equal(got, bodies[i]) {
			t.Fatalf("message %d (%d bytes) read back %d bytes: %q", i, len(bodies[i]), len(got), got[:min(len(got), 20)])
		}
	}
}

// TestCommittedRowsHaveTheirBodies: a reader that sees a message's row can
// read its body, even when the group's body writes are slower than its
// transaction (the outbound queue claims a message as soon as its row is
// committed, before its sender has heard "250").
func TestCommittedRowsHaveTheirBodies(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	org, _, _ := seed(t, s)
	testHookBodyWrite = func() { time.Sleep(50 * time.Millisecond) }
	defer func() { testHookBodyWrite = nil }()
	body := []byte("Subject: slow disk\r\n\r\nx\r\n")
	done := make(chan error, 1)
	go func() {
		done <- s.Commit(context.Background(), &store.Submission{OrgID: org.ID, MessageID: "slow@test", ReceivedAt: time.Now(), Body: body,
			Recipients: 1, Remote: []store.RemoteDelivery{{Recipient: "r@fabrikam.example"}}})
	}()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var id int64
		err := s.r.QueryRowContext(ctx, "SELECT id FROM messages WHERE message_id = 'slow@test'").Scan(&id)
		if err == nil {
			r, err := s.MessageBody(ctx, id)
			if err != nil {
				t.Fatalf("the row is committed, its body is not readable: %v", err)
			}
			got, _ := io.ReadAll(r)
			r.Close()
			if !bytes.Equal(got, body) {
				t.Fatalf("the row is committed, its body reads %q", got)
			}
			break
		}
		if err != sql.ErrNoRows {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the row never appeared")
		}
		time.Sleep(time.Millisecond) // well inside the 50 ms the hook holds the body back
	}
	must(t, <-done)
}
