package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

// testGroupCommitAndPacing: 200 concurrent commits all land (and survive
// a reopen); paced local deliveries wait in the queue until DeliverDue;
// RecipientHistory counts every recipient.
func testGroupCommitAndPacing(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, chris := seed(t, s)
	now := time.Now()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			notBefore := time.Time{}
			if i%2 == 1 {
				notBefore = now.Add(time.Hour) // paced
			}
			errs <- s.Commit(ctx, &store.Submission{
				OrgID: org.ID, MessageID: fmt.Sprintf("m%d@test", i), ReceivedAt: now, EnvelopeFrom: "sean@contoso.com",
				AuthMailbox: sean.ID, Body: []byte("Subject: x\r\n\r\nhello\r\n"), Recipients: 2, SentItems: sean.ID,
				Local:  []store.LocalDelivery{{Mailbox: chris.ID, Folder: store.Inbox, Recipient: "chris@contoso.com", NotBefore: notBefore}},
				Remote: []store.RemoteDelivery{{Recipient: "bob@fabrikam.example", NotBefore: notBefore}},
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	s = h.reopen()
	stats := folderCounts(t, s, chris.ID)
	if stats[store.Inbox] != n/2 {
		t.Errorf("chris Inbox = %d, want %d (the unpaced half)", stats[store.Inbox], n/2)
	}
	if got := folderCounts(t, s, sean.ID)[store.SentItems]; got != n {
		t.Errorf("sean Sent Items = %d, want %d", got, n)
	}
	q, err := s.QueueItems(ctx)
	must(t, err)
	if len(q) != n+n/2 {
		t.Errorf("queue = %d items, want %d", len(q), n+n/2)
	}
	local := 0
	for _, it := range q {
		if it.Local {
			local++
			if !it.NotBefore.Equal(now.Add(time.Hour)) || it.Recipient != "chris@contoso.com" || it.OrgID != org.ID {
				t.Errorf("paced item %+v", it)
			}
		}
	}
	if local != n/2 {
		t.Errorf("%d local queue items, want %d", local, n/2)
	}
	moved, err := s.DeliverDue(ctx, now.Add(2*time.Hour))
	must(t, err)
	if moved != n/2 || folderCounts(t, s, chris.ID)[store.Inbox] != n {
		t.Errorf("DeliverDue moved %d; Inbox now %d", moved, folderCounts(t, s, chris.ID)[store.Inbox])
	}
	if moved, err := s.DeliverDue(ctx, now.Add(2*time.Hour)); err != nil || moved != 0 {
		t.Errorf("DeliverDue again moved %d (%v)", moved, err)
	}
	hist, err := s.RecipientHistory(ctx, now.Add(-time.Minute))
	must(t, err)
	total := 0
	for _, h := range hist {
		total += h.Recipients
		if h.Mailbox != sean.ID || !h.At.Equal(now) {
			t.Errorf("history row %+v", h)
		}
	}
	if total != 2*n {
		t.Errorf("recipient history = %d, want %d", total, 2*n)
	}
	if hist, _ := s.RecipientHistory(ctx, now.Add(time.Minute)); len(hist) != 0 {
		t.Errorf("history after the messages: %+v", hist)
	}
	items, err := s.FolderItems(ctx, chris.ID, store.Inbox)
	must(t, err)
	if len(items) != n || items[0].Subject != "" || items[0].From != "sean@contoso.com" || items[0].Size != int64(len("Subject: x\r\n\r\nhello\r\n")) {
		t.Errorf("FolderItems: %d, first %+v", len(items), items[0])
	}
}

// testMailboxSizes: MailboxSize is the sum of a mailbox's items, seen at
// once after the store's own writes (commits, APPEND, EXPUNGE).
func testMailboxSizes(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, mb, _ := seed(t, s)
	if got := s.MailboxSize(mb.ID); got != 0 {
		t.Fatalf("empty mailbox: %d bytes", got)
	}
	body := []byte("Subject: x\r\n\r\n" + strings.Repeat("a", 1000))
	for i := range 3 {
		sub := &store.Submission{OrgID: org.ID, MessageID: fmt.Sprint("m", i), ReceivedAt: time.Now(), Body: body,
			Local: []store.LocalDelivery{{Mailbox: mb.ID, Folder: store.Inbox, Recipient: mb.PrimarySmtpAddress}}}
		if i == 2 {
			sub.SentItems = mb.ID // a second copy of the same message
		}
		must(t, s.Commit(ctx, sub))
	}
	want := int64(4 * len(body))
	if got := s.MailboxSize(mb.ID); got != want {
		t.Fatalf("after 4 copies: %d bytes, want %d", got, want)
	}
	inbox := folderByName(t, s, mb.ID, store.Inbox)
	_, err := s.AppendMail(ctx, store.AppendMail{Mailbox: mb.ID, Folder: inbox.ID, Body: bytes.NewReader(body), MaxSize: 1 << 20})
	must(t, err)
	if got := s.MailboxSize(mb.ID); got != want+int64(len(body)) {
		t.Fatalf("after an APPEND: %d bytes, want %d", got, want+int64(len(body)))
	}
	_, err = s.SetMailFlags(ctx, mb.ID, inbox.ID, []store.UIDRange{{Start: 1, Stop: 2}}, store.FlagsAdd, []string{store.FlagDeleted})
	must(t, err)
	_, err = s.ExpungeMail(ctx, mb.ID, inbox.ID, nil)
	must(t, err)
	if got := s.MailboxSize(mb.ID); got != want-int64(len(body)) {
		t.Fatalf("after expunging two: %d bytes, want %d", got, want-int64(len(body)))
	}
	if got, _ := s.MailFolderByName(ctx, mb.ID, store.Inbox); got.Size != 2*int64(len(body)) || got.Messages != 2 {
		t.Errorf("Inbox counts %+v", got)
	}
}

func testSignInReport(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, mb, _ := seed(t, s)
	day := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	row := store.SignIn{OrgID: org.ID, Protocol: "IMAP4", Mailbox: mb.ID, Actor: mb.PrimarySmtpAddress, ClientIP: "127.0.0.1", Method: "Basic", Count: 2, LastSeen: day}
	later := row
	later.Count, later.LastSeen = 3, day.Add(time.Hour)
	nextDay := row
	nextDay.Count, nextDay.LastSeen = 1, day.Add(24*time.Hour)
	gone := row
	gone.Mailbox = 9999 // removed meanwhile: dropped, not an error
	for _, batch := range [][]store.SignIn{{row}, {later, gone}, {nextDay}} {
		must(t, s.RecordSignIns(ctx, batch))
	}
	got, err := s.SignInReport(ctx, store.SignInQuery{OrgID: org.ID, Start: day, End: day.Add(48 * time.Hour)})
	if err != nil || len(got) != 1 || got[0].Count != 6 || !got[0].LastSeen.Equal(nextDay.LastSeen) {
		t.Fatalf("report %+v %v", got, err)
	}
	got, _ = s.SignInReport(ctx, store.SignInQuery{OrgID: org.ID, Start: day, End: day})
	if len(got) != 1 || got[0].Count != 5 {
		t.Fatalf("one day: %+v", got)
	}
	if got, _ = s.SignInReport(ctx, store.SignInQuery{OrgID: org.ID, Protocol: "POP3", Start: day, End: day}); len(got) != 0 {
		t.Fatalf("POP3: %+v", got)
	}
	pop := row
	pop.Protocol, pop.LastSeen = "POP3", day.Add(2*time.Hour)
	must(t, s.RecordSignIns(ctx, []store.SignIn{pop}))
	got, _ = s.SignInReport(ctx, store.SignInQuery{OrgID: org.ID, Mailbox: mb.ID, Start: day, End: day, Limit: 1})
	if len(got) != 1 || got[0].Protocol != "POP3" {
		t.Fatalf("newest first, limited to one: %+v", got)
	}
	// Trace retention drops old days.
	if _, err := s.PruneTrace(ctx, day.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ = s.SignInReport(ctx, store.SignInQuery{OrgID: org.ID, Start: day, End: day.Add(48 * time.Hour)})
	if len(got) != 1 || got[0].Count != 1 {
		t.Fatalf("after pruning the first day: %+v", got)
	}
}

// testMailUIDsAndChanges: Commit, DeliverDue and APPEND give ascending
// UIDs; MailChanges reports new items, flag changes and expunges since a
// MODSEQ; the Sent Items copy is filed read; Watch signals commits.
func testMailUIDsAndChanges(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	w := s.Watch(sean.ID)
	defer w.Close()

	commitTo(t, s, org.ID, sean.ID, store.Inbox, "Subject: one\r\n\r\n1\r\n", 0)
	select {
	case <-w.C:
	case <-time.After(10 * time.Second):
		t.Fatal("Commit did not signal the mailbox")
	}
	// A paced delivery gets its UID when it is filed.
	sub := &store.Submission{OrgID: org.ID, MessageID: "p", ReceivedAt: time.Now(), Body: []byte("Subject: two\r\n\r\n2\r\n"), Recipients: 1,
		Local: []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com", NotBefore: time.Now().Add(time.Minute)}}}
	must(t, s.Commit(ctx, sub))
	inbox := folderByName(t, s, sean.ID, "INBOX")
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
	// Replacing and removing flags, keywords without case.
	fr, err = s.SetMailFlags(ctx, sean.ID, inbox.ID, []store.UIDRange{{Start: 3, Stop: 3}}, store.FlagsRemove, []string{"$WORK", store.FlagSeen})
	must(t, err)
	if len(fr.Changed) != 1 || len(fr.Changed[0].Flags) != 0 {
		t.Errorf("flags removed: %+v", fr.Changed)
	}
	fr, err = s.SetMailFlags(ctx, sean.ID, inbox.ID, []store.UIDRange{{Start: 2, Stop: 2}}, store.FlagsSet, []string{store.FlagFlagged, "Later"})
	must(t, err)
	items, err := s.MailItems(ctx, sean.ID, inbox.ID, []store.UIDRange{{Start: 2, Stop: 3}})
	must(t, err)
	if len(items) != 2 || !slices.Equal(items[0].Flags, []string{store.FlagFlagged, "Later"}) || items[0].ModSeq != fr.HighestModSeq {
		t.Errorf("items after FlagsSet: %+v", items)
	}
	// Sent Items copies are read.
	commitTo(t, s, org.ID, 0, "", "Subject: sent\r\n\r\nx\r\n", sean.ID)
	sent := folderByName(t, s, sean.ID, "sent items")
	items, err = s.MailItems(ctx, sean.ID, sent.ID, nil)
	must(t, err)
	if len(items) != 1 || !slices.Equal(items[0].Flags, []string{store.FlagSeen}) {
		t.Errorf("Sent Items: %+v", items)
	}
	// Another mailbox's folder is out of reach by ID.
	if _, err := s.MailItems(ctx, sean.ID+1, inbox.ID, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("foreign folder: %v", err)
	}
	if _, _, err := s.MailUIDs(ctx, sean.ID+1, inbox.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("foreign folder's UIDs: %v", err)
	}
	if _, err := s.SetMailFlags(ctx, sean.ID+1, inbox.ID, nil, store.FlagsAdd, []string{store.FlagSeen}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("foreign folder's flags: %v", err)
	}
	// Many ranges are read as one span, filtered.
	var ranges []store.UIDRange
	for u := uint32(1); u <= 40; u += 2 {
		ranges = append(ranges, store.UIDRange{Start: u, Stop: u})
	}
	items, err = s.MailItems(ctx, sean.ID, inbox.ID, ranges)
	must(t, err)
	if len(items) != 2 || items[0].UID != 1 || items[1].UID != 3 {
		t.Errorf("odd UIDs: %+v", items)
	}
}

// testExpungeReleasesBodies: a copy shares the message; expunging one
// keeps the body, expunging the last releases it; message trace keeps the
// delivered message and never shows an appended one.
func testExpungeReleasesBodies(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	id := commitTo(t, s, org.ID, sean.ID, store.Inbox, "Subject: keep\r\n\r\nbody\r\n", 0)
	inbox := folderByName(t, s, sean.ID, "Inbox")
	archive := folderByName(t, s, sean.ID, "Archive")
	trash := folderByName(t, s, sean.ID, "Deleted Items")
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
	// A large APPEND is kept apart from its row, released with its item.
	big := bytes.Repeat([]byte("x"), 256<<10)
	bigMsg := append([]byte("Subject: big\r\n\r\n"), big...)
	ap, err := s.AppendMail(ctx, store.AppendMail{Mailbox: sean.ID, Folder: trash.ID, Body: bytes.NewReader(bigMsg), MaxSize: 1 << 20})
	must(t, err)
	if n := h.largeBodies(); n != 1 {
		t.Fatalf("large bodies: %d", n)
	}
	items, err := s.MailItems(ctx, sean.ID, trash.ID, []store.UIDRange{{Start: ap.UID, Stop: ap.UID}})
	must(t, err)
	if len(items) != 1 || items[0].Size != int64(len(bigMsg)) || !bytes.Equal(readBody(t, s, items[0].Message), bigMsg) {
		t.Fatalf("large APPEND read back: %+v", items)
	}
	if _, err := s.AppendMail(ctx, store.AppendMail{Mailbox: sean.ID, Folder: trash.ID, Body: bytes.NewReader(big), MaxSize: 1000}); !errors.Is(err, store.ErrTooBig) {
		t.Errorf("APPEND over MaxSize: %v", err)
	}
	if _, err := s.AppendMail(ctx, store.AppendMail{Mailbox: sean.ID, Folder: trash.ID, Body: strings.NewReader("Subject: x\r\n\r\n0123456789"), MaxSize: 10}); !errors.Is(err, store.ErrTooBig) {
		t.Errorf("small APPEND over MaxSize: %v", err)
	}
	if n := h.largeBodies(); n != 1 {
		t.Errorf("a refused APPEND left a body: %d", n)
	}
	_, err = s.SetMailFlags(ctx, sean.ID, trash.ID, []store.UIDRange{{Start: ap.UID, Stop: ap.UID}}, store.FlagsAdd, []string{store.FlagDeleted})
	must(t, err)
	_, err = s.ExpungeMail(ctx, sean.ID, trash.ID, nil)
	must(t, err)
	if n := h.largeBodies(); n != 0 {
		t.Errorf("large body kept after expunge: %d", n)
	}
	tr, err := s.MessageTrace(ctx, store.TraceQuery{OrgID: org.ID})
	must(t, err)
	if len(tr) != 1 || tr[0].Message != id {
		t.Errorf("message trace shows %+v, want only the delivered message", tr)
	}
}

func testMailFolders(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	f, err := s.CreateMailFolder(ctx, sean.ID, "Projects/2026")
	must(t, err)
	parent := folderByName(t, s, sean.ID, "projects")
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
	child := folderByName(t, s, sean.ID, "Work/2026")
	if child.UIDValidity != f.UIDValidity {
		t.Errorf("rename changed UIDVALIDITY: %d -> %d", f.UIDValidity, child.UIDValidity)
	}
	if _, err := s.MailFolderByName(ctx, sean.ID, "Projects/2026"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old name after rename: %v", err)
	}
	must(t, s.RenameMailFolder(ctx, sean.ID, "work", "WORK"))
	if got := folderByName(t, s, sean.ID, "work"); got.Name != "WORK" {
		t.Errorf("case-only rename: %q", got.Name)
	}
	if err := s.RenameMailFolder(ctx, sean.ID, "WORK", "Inbox"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("rename onto Inbox: %v", err)
	}
	if err := s.DeleteMailFolder(ctx, sean.ID, "Work"); !errors.Is(err, store.ErrHasChildren) {
		t.Errorf("delete with children: %v", err)
	}
	// A folder deleted with its items gives their bodies back and leaves
	// the mailbox's size right.
	commitTo(t, s, org.ID, sean.ID, "Work/2026", "Subject: filed\r\n\r\nx\r\n", 0)
	if s.MailboxSize(sean.ID) == 0 {
		t.Fatal("nothing filed")
	}
	must(t, s.DeleteMailFolder(ctx, sean.ID, "Work/2026"))
	if got := s.MailboxSize(sean.ID); got != 0 {
		t.Errorf("mailbox size after deleting the only folder with items: %d", got)
	}
	if _, err := s.MailFolderByName(ctx, sean.ID, "Work/2026"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted folder: %v", err)
	}
	again, err := s.CreateMailFolder(ctx, sean.ID, "Work/2026")
	must(t, err)
	if again.UIDValidity <= child.UIDValidity {
		t.Errorf("re-created folder's UIDVALIDITY %d not above %d", again.UIDValidity, child.UIDValidity)
	}
	must(t, s.SubscribeMailFolder(ctx, sean.ID, "work", false))
	if folderByName(t, s, sean.ID, "Work").Subscribed {
		t.Error("unsubscribe lost")
	}
	if err := s.SubscribeMailFolder(ctx, sean.ID, "nowhere", false); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("subscribe to a missing folder: %v", err)
	}
	folders, err := s.MailFolders(ctx, sean.ID)
	must(t, err)
	if len(folders) != len(store.DefaultFolders)+2 || folders[0].Type != "Root" || folders[len(folders)-1].Name != "Work/2026" {
		t.Errorf("MailFolders: %+v", folders)
	}
	if _, err := s.CreateMailFolder(ctx, 99999, "X"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("folder of a missing mailbox: %v", err)
	}
}

// testMailConcurrency: commits, APPENDs and flag changes from many
// goroutines leave UIDs unique and ascending in commit order.
func testMailConcurrency(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, _ := seed(t, s)
	inbox := folderByName(t, s, sean.ID, "Inbox")
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if g%2 == 0 {
					sub := &store.Submission{OrgID: org.ID, MessageID: "m", ReceivedAt: time.Now(), Body: []byte(fmt.Sprintf("Subject: %d-%d\r\n\r\nx\r\n", g, i)),
						Recipients: 1, Local: []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "x@contoso.com"}}}
					if err := s.Commit(ctx, sub); err != nil {
						t.Error(err)
					}
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

// spoolFile writes a spooled upload of n random bytes.
func spoolFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	raw := make([]byte, n)
	rand.Read(raw)
	path := filepath.Join(t.TempDir(), "msg-spool")
	must(t, os.WriteFile(path, raw, 0o600))
	return path, raw
}

// testLargeBodies: a spooled body committed twice (one message for two
// organizations) is stored twice, each read back as head + upload after
// the spool file is gone; each is released with its last reference, and
// the metadata stays for message trace.
func testLargeBodies(t *testing.T, h *harness) {
	s := h.s
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
	if n := h.largeBodies(); n != 2 {
		t.Fatalf("large bodies %d, want one per commit", n)
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
	if err := s.Commit(ctx, &store.Submission{OrgID: org.ID, ReceivedAt: time.Now(), BodyFile: spool, Recipients: 1}); err == nil {
		t.Error("a commit of a missing spool file succeeded")
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
	if n := h.largeBodies(); n != 1 {
		t.Errorf("large bodies after delivery %d, want the mailbox copy's only", n)
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
	if n := h.largeBodies(); n != 0 {
		t.Errorf("large bodies after Remove-Mailbox %d", n)
	}
	if _, err := s.MessageBody(ctx, subs[1].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removed mailbox's message still readable: %v", err)
	}
	if _, err := s.MessageBody(ctx, 987654); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing message: %v", err)
	}
}

// testInlineBodyReleased: a small body lives in its row and is released
// the same way; a deferred item keeps it.
func testInlineBodyReleased(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, _, _ := seed(t, s)
	sub := &store.Submission{OrgID: org.ID, MessageID: "small@test", ReceivedAt: time.Now(), EnvelopeFrom: "sean@contoso.com",
		Body: []byte("Subject: x\r\n\r\nhello\r\n"), Recipients: 2,
		Remote: []store.RemoteDelivery{{Recipient: "a@fabrikam.example"}, {Recipient: "b@fabrikam.example"}}}
	must(t, s.Commit(ctx, sub))
	out, err := s.ClaimOutbound(ctx, time.Now().Add(time.Second), time.Minute, "n", 10)
	must(t, err)
	if len(out) != 2 {
		t.Fatalf("claimed %d", len(out))
	}
	must(t, s.RecordOutcomes(ctx, []store.Outcome{
		{QueueID: out[0].QueueID, Message: sub.ID, Recipient: out[0].Recipient, Event: store.EventFail, At: time.Now()},
		{QueueID: out[1].QueueID, Message: sub.ID, Recipient: out[1].Recipient, Event: store.EventDefer, At: time.Now(), NextAttempt: time.Now()},
	}, nil))
	if got := string(readBody(t, s, sub.ID)); got != "Subject: x\r\n\r\nhello\r\n" {
		t.Fatalf("body with a recipient still queued: %q", got)
	}
	out, err = s.ClaimOutbound(ctx, time.Now().Add(time.Second), time.Minute, "n", 10)
	must(t, err)
	if len(out) != 1 {
		t.Fatalf("claimed %d after the deferral", len(out))
	}
	must(t, s.RecordOutcomes(ctx, []store.Outcome{{QueueID: out[0].QueueID, Message: sub.ID, Recipient: out[0].Recipient,
		Event: store.EventSend, At: time.Now()}}, nil))
	if _, err := s.MessageBody(ctx, sub.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("body still readable after the last recipient: %v", err)
	}
}

// testGroupCommitUIDs: messages committed at once (several per group
// commit) into one Inbox and one Sent Items get UIDs 1..n in commit order
// (a later message never a smaller UID: RFC 9051 2.3.1.1) and each a
// MODSEQ of its own, ascending with its UID, none above the folder's
// HIGHESTMODSEQ.
func testGroupCommitUIDs(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, vera := seed(t, s)
	const n = 48
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := &store.Submission{OrgID: org.ID, MessageID: fmt.Sprint(i), ReceivedAt: time.Now(), Body: []byte("Subject: x\r\n\r\nx\r\n"),
				AuthMailbox: vera.ID, SentItems: vera.ID, Recipients: 1,
				Local: []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}}
			if err := s.Commit(ctx, sub); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, f := range []struct {
		mailbox int64
		name    string
	}{{sean.ID, "Inbox"}, {vera.ID, "Sent Items"}} {
		folder := folderByName(t, s, f.mailbox, f.name)
		ch, err := s.MailChanges(ctx, f.mailbox, folder.ID, 0)
		must(t, err)
		if len(ch.Changed) != n || ch.UIDNext != n+1 {
			t.Fatalf("%s: %d items, UIDNEXT %d; want %d, %d", f.name, len(ch.Changed), ch.UIDNext, n, n+1)
		}
		sort.Slice(ch.Changed, func(i, j int) bool { return ch.Changed[i].UID < ch.Changed[j].UID })
		for i, it := range ch.Changed {
			if it.UID != uint32(i+1) {
				t.Fatalf("%s: item %d has UID %d", f.name, i, it.UID)
			}
			if it.ModSeq > ch.HighestModSeq {
				t.Errorf("%s: UID %d has MODSEQ %d above HIGHESTMODSEQ %d", f.name, it.UID, it.ModSeq, ch.HighestModSeq)
			}
			if i > 0 {
				prev := ch.Changed[i-1]
				if it.ModSeq <= prev.ModSeq || it.Message <= prev.Message {
					t.Errorf("%s: UID %d (message %d, MODSEQ %d) after UID %d (message %d, MODSEQ %d)",
						f.name, it.UID, it.Message, it.ModSeq, prev.UID, prev.Message, prev.ModSeq)
				}
			}
		}
	}
}
