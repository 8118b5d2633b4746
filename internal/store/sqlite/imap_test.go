package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

func folderID(t *testing.T, s *Store, mailbox int64, name string) store.MailFolder {
	t.Helper()
	f, err := s.MailFolderByName(context.Background(), mailbox, name)
	must(t, err)
	return f
}

func commitTo(t *testing.T, s *Store, org, mailbox int64, folder, body string, sentItems int64) int64 {
	t.Helper()
	sub := &store.Submission{OrgID: org, MessageID: "m", Subject: "s", ReceivedAt: time.Now(), EnvelopeFrom: "a@contoso.com",
		Body: []byte(body), Recipients: 1, SentItems: sentItems}
	if mailbox != 0 {
		sub.Local = []store.LocalDelivery{{Mailbox: mailbox, Folder: folder, Recipient: "x@contoso.com"}}
	}
	must(t, s.Commit(context.Background(), sub))
	return sub.ID
}

// TestMailUIDsAndChanges: Commit, DeliverDue and APPEND give ascending
// UIDs; MailChanges reports new items, flag changes and expunges since a
// MODSEQ; the Sent Items copy is filed read.
func TestMailUIDsAndChanges(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	w := s.Watch(sean.ID)
	defer w.Close()

	commitTo(t, s, org.ID, sean.ID, store.Inbox, "Subject: one\r\n\r\n1\r\n", 0)
	select {
	case <-w.C:
	case <-time.After(5 * time.Second):
		t.Fatal("Commit did not signal the mailbox")
	}
	// A paced delivery gets its UID when it is filed.
	sub := &store.Submission{OrgID: org.ID, MessageID: "p", ReceivedAt: time.Now(), Body: []byte("Subject: two\r\n\r\n2\r\n"), Recipients: 1,
		Local: []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com", NotBefore: time.Now().Add(time.Minute)}}}
	must(t, s.Commit(ctx, sub))
	inbox := folderID(t, s, sean.ID, "INBOX")
	if inbox.Messages != 1 || inbox.UIDNext != 2 || inbox.Unseen != 1 {
		t.Fatalf("inbox before DeliverDue: %+v", inbox)
	}
	since := inbox.HighestModSeq
	n, err := s.DeliverDue(ctx, time.Now().Add(2*time.Minute))
	must(t, err)
	if n != 1 {
		t.Fatalf("DeliverDue = %d", n)
	}
	ap, err := s.AppendMail(ctx, store.AppendMail{Mailbox: sean.ID, Folder: inbox.ID, Body: strings.NewReader("Subject: three\r\n\r\n3\r\n"),
		MaxSize: 1000, Flags: []string{`\seen`, "$Work", "$work"}})
	must(t, err)
	if ap.UID != 3 || ap.UIDValidity != inbox.UIDValidity {
		t.Fatalf("APPEND = %+v", ap)
	}
	uids, st, err := s.MailUIDs(ctx, sean.ID, inbox.ID)
	must(t, err)
	if !slices.Equal(uids, []uint32{1, 2, 3}) || st.FirstUnseen != 1 {
		t.Fatalf("UIDs %v, state %+v", uids, st)
	}
	c, err := s.MailChanges(ctx, sean.ID, inbox.ID, since)
	must(t, err)
	if len(c.Changed) != 2 || c.Changed[0].UID != 2 || c.Changed[1].UID != 3 || c.UIDNext != 4 {
		t.Fatalf("changes: %+v", c)
	}
	if !slices.Equal(c.Changed[1].Flags, []string{`\Seen`, "$Work"}) {
		t.Errorf("appended flags %v", c.Changed[1].Flags)
	}
	// Flags: one MODSEQ for the operation; unchanged items keep theirs.
	fr, err := s.SetMailFlags(ctx, sean.ID, inbox.ID, []store.UIDRange{{Start: 1, Stop: 3}}, store.FlagsAdd, []string{store.FlagSeen})
	must(t, err)
	if len(fr.Changed) != 2 || fr.HighestModSeq != fr.PrevModSeq+1 {
		t.Fatalf("SetMailFlags: %+v", fr)
	}
	c, err = s.MailChanges(ctx, sean.ID, inbox.ID, fr.PrevModSeq)
	must(t, err)
	if len(c.Changed) != 2 || c.Changed[0].UID != 1 || c.Changed[1].UID != 2 {
		t.Fatalf("changes after STORE: %+v", c)
	}
	nothing, err := s.MailChanges(ctx, sean.ID, inbox.ID, c.HighestModSeq)
	must(t, err)
	if len(nothing.Changed)+len(nothing.Expunged) != 0 {
		t.Fatalf("changes since the latest MODSEQ: %+v", nothing)
	}
	// Sent Items copies are read.
	commitTo(t, s, org.ID, 0, "", "Subject: sent\r\n\r\nx\r\n", sean.ID)
	sent := folderID(t, s, sean.ID, "sent items")
	items, err := s.MailItems(ctx, sean.ID, sent.ID, nil)
	must(t, err)
	if len(items) != 1 || !slices.Equal(items[0].Flags, []string{store.FlagSeen}) {
		t.Errorf("Sent Items: %+v", items)
	}
	// Another mailbox's folder is out of reach by ID.
	if _, err := s.MailItems(ctx, sean.ID+1, inbox.ID, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("foreign folder: %v", err)
	}
}

// TestExpungeReleasesBodies: a copy shares the message; expunging one
// keeps the body, expunging the last releases it; message trace keeps the
// delivered message and never shows an appended one.
func TestExpungeReleasesBodies(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	id := commitTo(t, s, org.ID, sean.ID, store.Inbox, "Subject: keep\r\n\r\nbody\r\n", 0)
	inbox := folderID(t, s, sean.ID, "Inbox")
	archive := folderID(t, s, sean.ID, "Archive")
	trash := folderID(t, s, sean.ID, "Deleted Items")
	cp, err := s.CopyMail(ctx, sean.ID, inbox.ID, []store.UIDRange{{Start: 1, Stop: 1}}, archive.ID)
	must(t, err)
	if !slices.Equal(cp.Source, []uint32{1}) || !slices.Equal(cp.Dest, []uint32{1}) || cp.UIDValidity != archive.UIDValidity {
		t.Fatalf("COPY: %+v", cp)
	}
	_, err = s.SetMailFlags(ctx, sean.ID, inbox.ID, nil, store.FlagsAdd, []string{store.FlagDeleted})
	must(t, err)
	ex, err := s.ExpungeMail(ctx, sean.ID, inbox.ID, nil)
	must(t, err)
	if !slices.Equal(ex.UIDs, []uint32{1}) {
		t.Fatalf("EXPUNGE: %+v", ex)
	}
	readBody(t, s, id) // the Archive copy still refers to it
	c, err := s.MailChanges(ctx, sean.ID, inbox.ID, ex.PrevModSeq)
	must(t, err)
	if !slices.Equal(c.Expunged, []uint32{1}) {
		t.Errorf("expunged since: %v", c.Expunged)
	}
	mv, ex2, err := s.MoveMail(ctx, sean.ID, archive.ID, nil, trash.ID)
	must(t, err)
	if !slices.Equal(mv.Dest, []uint32{1}) || !slices.Equal(ex2.UIDs, []uint32{1}) {
		t.Fatalf("MOVE: %+v %+v", mv, ex2)
	}
	_, err = s.SetMailFlags(ctx, sean.ID, trash.ID, nil, store.FlagsSet, []string{store.FlagDeleted})
	must(t, err)
	_, err = s.ExpungeMail(ctx, sean.ID, trash.ID, []store.UIDRange{{Start: 1, Stop: 1}})
	must(t, err)
	if _, err := s.MessageBody(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("body after the last expunge: %v", err)
	}
	// A large APPEND goes to a body file, released with its item.
	big := bytes.Repeat([]byte("x"), appendMemoryLimit*2)
	ap, err := s.AppendMail(ctx, store.AppendMail{Mailbox: sean.ID, Folder: trash.ID, Body: bytes.NewReader(append([]byte("Subject: big\r\n\r\n"), big...)), MaxSize: 1 << 20})
	must(t, err)
	if len(bodyFiles(t, dir)) != 1 {
		t.Fatalf("body files: %v", bodyFiles(t, dir))
	}
	if _, err := s.AppendMail(ctx, store.AppendMail{Mailbox: sean.ID, Folder: trash.ID, Body: bytes.NewReader(big), MaxSize: 1000}); !errors.Is(err, store.ErrTooBig) {
		t.Errorf("APPEND over MaxSize: %v", err)
	}
	if files := bodyFiles(t, dir); len(files) != 1 {
		t.Errorf("a refused APPEND left a body file: %v", files)
	}
	_, err = s.SetMailFlags(ctx, sean.ID, trash.ID, []store.UIDRange{{Start: ap.UID, Stop: ap.UID}}, store.FlagsAdd, []string{store.FlagDeleted})
	must(t, err)
	_, err = s.ExpungeMail(ctx, sean.ID, trash.ID, nil)
	must(t, err)
	if files := bodyFiles(t, dir); len(files) != 0 {
		t.Errorf("body file kept after expunge: %v", files)
	}
	tr, err := s.MessageTrace(ctx, store.TraceQuery{OrgID: org.ID})
	must(t, err)
	if len(tr) != 1 || tr[0].Message != id {
		t.Errorf("message trace shows %+v, want only the delivered message", tr)
	}
}

func TestMailFolders(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	_, sean, _ := seed(t, s)
	f, err := s.CreateMailFolder(ctx, sean.ID, "Projects/2026")
	must(t, err)
	parent := folderID(t, s, sean.ID, "projects")
	if parent.Type != store.FolderTypeUser || f.UIDValidity <= parent.UIDValidity-1 {
		t.Errorf("folders: %+v %+v", parent, f)
	}
	if _, err := s.CreateMailFolder(ctx, sean.ID, "PROJECTS"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("case-insensitive duplicate: %v", err)
	}
	for _, name := range []string{"Inbox", "Sent Items", "Drafts"} {
		if err := s.DeleteMailFolder(ctx, sean.ID, name); !errors.Is(err, store.ErrDefaultFolder) {
			t.Errorf("delete %s: %v", name, err)
		}
		if err := s.RenameMailFolder(ctx, sean.ID, name, "X"); !errors.Is(err, store.ErrDefaultFolder) {
			t.Errorf("rename %s: %v", name, err)
		}
	}
	must(t, s.RenameMailFolder(ctx, sean.ID, "Projects", "Work"))
	child := folderID(t, s, sean.ID, "Work/2026")
	if child.UIDValidity != f.UIDValidity {
		t.Errorf("rename changed UIDVALIDITY: %d -> %d", f.UIDValidity, child.UIDValidity)
	}
	if err := s.DeleteMailFolder(ctx, sean.ID, "Work"); !errors.Is(err, store.ErrHasChildren) {
		t.Errorf("delete with children: %v", err)
	}
	must(t, s.DeleteMailFolder(ctx, sean.ID, "Work/2026"))
	again, err := s.CreateMailFolder(ctx, sean.ID, "Work/2026")
	must(t, err)
	if again.UIDValidity <= child.UIDValidity {
		t.Errorf("re-created folder's UIDVALIDITY %d not above %d", again.UIDValidity, child.UIDValidity)
	}
	must(t, s.SubscribeMailFolder(ctx, sean.ID, "work", false))
	if folderID(t, s, sean.ID, "Work").Subscribed {
		t.Error("unsubscribe lost")
	}
}

// TestMailConcurrency: commits, APPENDs and flag changes from many
// goroutines leave UIDs unique and ascending in commit order (run with
// -race).
func TestMailConcurrency(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	inbox := folderID(t, s, sean.ID, "Inbox")
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if g%2 == 0 {
					commitTo(t, s, org.ID, sean.ID, store.Inbox, fmt.Sprintf("Subject: %d-%d\r\n\r\nx\r\n", g, i), 0)
				} else {
					_, err := s.AppendMail(ctx, store.AppendMail{Mailbox: sean.ID, Folder: inbox.ID, Body: strings.NewReader("Subject: a\r\n\r\nx\r\n"), MaxSize: 100})
					if err != nil {
						t.Error(err)
					}
				}
				if _, err := s.SetMailFlags(ctx, sean.ID, inbox.ID, nil, store.FlagsAdd, []string{store.FlagSeen}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	uids, st, err := s.MailUIDs(ctx, sean.ID, inbox.ID)
	must(t, err)
	if len(uids) != 60 || uids[0] != 1 || uids[59] != 60 || st.UIDNext != 61 || !sort.SliceIsSorted(uids, func(i, j int) bool { return uids[i] < uids[j] }) {
		t.Errorf("UIDs after concurrent filing: %d, first %d, last %d, next %d", len(uids), uids[0], uids[len(uids)-1], st.UIDNext)
	}
}

// TestMigration013 gives UIDs, sizes and a UIDNEXT to items filed before
// migration 013: rows are filed, the new columns and indexes reset to
// what an old database has, and 013's statements run again.
func TestMigration013(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	org, sean, _ := seed(t, s)
	commitTo(t, s, org.ID, sean.ID, store.Inbox, "Subject: a\r\n\r\n1\r\n", 0)
	commitTo(t, s, org.ID, sean.ID, store.Inbox, "Subject: b\r\n\r\n2\r\n", 0)
	_, err = s.w.Exec(`DROP INDEX folder_items_by_uid; DROP INDEX folder_items_by_modseq; DROP TABLE folder_expunged;
		UPDATE folder_items SET uid = 0, size = 0; UPDATE folders SET uid_next = 1;`)
	must(t, err)
	b, err := migrations.ReadFile("migrations/013_imap.sql")
	must(t, err)
	var stmts []string
	for _, st := range strings.Split(string(b), ";") {
		if !strings.Contains(st, "ALTER TABLE") {
			stmts = append(stmts, st)
		}
	}
	_, err = s.w.Exec(strings.Join(stmts, ";"))
	must(t, err)
	inbox := folderID(t, s, sean.ID, "Inbox")
	uids, st, err := s.MailUIDs(context.Background(), sean.ID, inbox.ID)
	must(t, err)
	if !slices.Equal(uids, []uint32{1, 2}) || st.UIDNext != 3 || inbox.Size == 0 {
		t.Errorf("after migration: UIDs %v, state %+v, size %d", uids, st, inbox.Size)
	}
}
