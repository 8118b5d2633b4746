package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
)

func seed(t *testing.T, s *Store) (*directory.Organization, *directory.Mailbox, *directory.Mailbox) {
	t.Helper()
	ctx := context.Background()
	org := &directory.Organization{Name: "contoso", GUID: "g", SmtpClientAuthenticationDisabled: true}
	must(t, s.SaveOrganization(ctx, org))
	must(t, s.SaveDomain(ctx, &directory.AcceptedDomain{OrgID: org.ID, Name: "contoso.com", DomainName: "contoso.com", DomainType: directory.Authoritative, Default: true}))
	sean := &directory.Mailbox{OrgID: org.ID, Name: "sean", PrimarySmtpAddress: "sean@contoso.com", UserPrincipalName: "sean@contoso.com",
		EmailAddresses: []string{"sk@contoso.com"}, Type: directory.UserMailbox, RecipientLimits: 500}
	must(t, s.SaveMailbox(ctx, sean))
	chris := &directory.Mailbox{OrgID: org.ID, Name: "chris", PrimarySmtpAddress: "chris@contoso.com", UserPrincipalName: "chris@contoso.com",
		Type: directory.UserMailbox, GrantSendOnBehalfTo: []int64{sean.ID}}
	must(t, s.SaveMailbox(ctx, chris))
	return org, sean, chris
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestDirectoryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	must(t, err)
	ctx := context.Background()
	org, sean, chris := seed(t, s)
	disabled := false
	sean.SmtpClientAuthenticationDisabled = &disabled
	sean.ImapEnabled, sean.PopEnabled = true, false
	sean.IssueWarningQuota, sean.ProhibitSendQuota, sean.ProhibitSendReceiveQuota = 1<<20, 2<<20, directory.Unlimited
	must(t, s.SaveMailbox(ctx, sean))
	org.CASMailboxPlanImapEnabled, org.CASMailboxPlanPopEnabled = false, true
	must(t, s.SaveOrganization(ctx, org))
	must(t, s.SavePolicy(ctx, &directory.AuthenticationPolicy{OrgID: org.ID, Name: "BlockBasic"}))
	must(t, s.SavePolicy(ctx, &directory.AuthenticationPolicy{OrgID: org.ID, Name: "ImapOnly", AllowBasicAuthImap: true}))
	must(t, s.SavePermission(ctx, &directory.RecipientPermission{OrgID: org.ID, Identity: chris.ID, Trustee: sean.ID}))
	must(t, s.Close())

	s, err = Open(dir)
	must(t, err)
	defer s.Close()
	c, err := s.LoadDirectory(ctx)
	must(t, err)
	snap := directory.NewSnapshot(c)
	got := snap.MailboxByAddress("sk@contoso.com")
	if got == nil || got.ID != sean.ID || got.SmtpClientAuthenticationDisabled == nil || *got.SmtpClientAuthenticationDisabled {
		t.Fatalf("sean after reopen: %+v", got)
	}
	if snap.MailboxByAddress("chris@contoso.com").SmtpClientAuthenticationDisabled != nil {
		t.Error("chris's $null setting must stay $null")
	}
	if !snap.HasSendAs(sean.ID, chris.ID) || !snap.HasSendOnBehalf(sean.ID, chris.ID) {
		t.Error("permissions lost")
	}
	if p := snap.AuthenticationPolicy(org.ID, "blockbasic"); p == nil || p.AllowBasicAuthSmtp {
		t.Errorf("policy: %+v", p)
	}
	if !snap.Organization(org.ID).SmtpClientAuthenticationDisabled {
		t.Error("org setting lost")
	}
	if !got.ImapEnabled || got.PopEnabled || got.IssueWarningQuota != 1<<20 || got.ProhibitSendQuota != 2<<20 || got.ProhibitSendReceiveQuota != directory.Unlimited {
		t.Errorf("access and quotas: %+v", got)
	}
	if o := snap.Organization(org.ID); o.CASMailboxPlanImapEnabled || !o.CASMailboxPlanPopEnabled {
		t.Errorf("CAS mailbox plan: %+v", o)
	}
	if p := snap.AuthenticationPolicy(org.ID, "ImapOnly"); p == nil || !p.AllowBasicAuthImap || p.AllowBasicAuthPop || p.AllowBasicAuthSmtp {
		t.Errorf("policy: %+v", p)
	}
}

func TestAddressConflictLeavesNothingHalfWritten(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	org, _, _ := seed(t, s)
	dup := &directory.Mailbox{OrgID: org.ID, Name: "dup", PrimarySmtpAddress: "dup@contoso.com", UserPrincipalName: "dup@contoso.com",
		EmailAddresses: []string{"sk@contoso.com"}, Type: directory.UserMailbox}
	if err := s.SaveMailbox(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("want ErrConflict, got %v", err)
	}
	if dup.ID != 0 {
		t.Error("a failed insert must not leave an ID behind")
	}
	c, err := s.LoadDirectory(ctx)
	must(t, err)
	if len(c.Mailboxes) != 2 {
		t.Fatalf("want 2 mailboxes, got %d", len(c.Mailboxes))
	}
	if err := s.DeleteMailbox(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete missing: %v", err)
	}
}

func TestGroupCommitAndPacing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	must(t, err)
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
	must(t, s.Close())

	s, err = Open(dir)
	must(t, err)
	defer s.Close()
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
	moved, err := s.DeliverDue(ctx, now.Add(2*time.Hour))
	must(t, err)
	if moved != n/2 || folderCounts(t, s, chris.ID)[store.Inbox] != n {
		t.Errorf("DeliverDue moved %d; Inbox now %d", moved, folderCounts(t, s, chris.ID)[store.Inbox])
	}
	hist, err := s.RecipientHistory(ctx, now.Add(-time.Minute))
	must(t, err)
	total := 0
	for _, h := range hist {
		total += h.Recipients
	}
	if total != 2*n {
		t.Errorf("recipient history = %d, want %d", total, 2*n)
	}
}

func folderCounts(t *testing.T, s *Store, mailbox int64) map[string]int {
	t.Helper()
	stats, err := s.FolderStatistics(context.Background(), mailbox)
	must(t, err)
	out := map[string]int{}
	for _, f := range stats {
		out[f.Name] = f.ItemsInFolder
	}
	if len(out) != len(store.DefaultFolders) {
		t.Fatalf("mailbox %d has %d folders", mailbox, len(out))
	}
	return out
}

// benchStore opens a store in a temporary directory with one organization.
func benchStore(b *testing.B) (*Store, *directory.Organization) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	org := &directory.Organization{Name: "o", GUID: "g"}
	if err := s.SaveOrganization(context.Background(), org); err != nil {
		b.Fatal(err)
	}
	return s, org
}

func BenchmarkCommitParallel(b *testing.B) {
	s, org := benchStore(b)
	ctx := context.Background()
	mb := &directory.Mailbox{OrgID: org.ID, Name: "m", PrimarySmtpAddress: "m@o.example", UserPrincipalName: "m@o.example", Type: directory.UserMailbox}
	if err := s.SaveMailbox(ctx, mb); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 2048)
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			err := s.Commit(ctx, &store.Submission{OrgID: org.ID, MessageID: "x", ReceivedAt: time.Now(), Body: body,
				AuthMailbox: mb.ID, SentItems: mb.ID, Recipients: 1, Remote: []store.RemoteDelivery{{Recipient: "r@x.example"}}})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLoadDirectory measures reading the whole directory, which every
// admin change does afterwards to publish a new snapshot.
func BenchmarkLoadDirectory(b *testing.B) {
	for _, n := range []int{200, 10000} {
		b.Run(fmt.Sprintf("mailboxes=%d", n), func(b *testing.B) {
			s, org := benchStore(b)
			ctx := context.Background()
			for i := range n {
				addr := fmt.Sprintf("device%05d@o.example", i)
				mb := &directory.Mailbox{OrgID: org.ID, Name: addr, PrimarySmtpAddress: addr, UserPrincipalName: addr, Type: directory.UserMailbox,
					EmailAddresses: []string{"SMTP:" + addr}}
				if err := s.SaveMailbox(ctx, mb); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				c, err := s.LoadDirectory(ctx)
				if err != nil || len(c.Mailboxes) != n {
					b.Fatal(err, len(c.Mailboxes))
				}
			}
		})
	}
}

// TestMailboxSizes: the triggers keep mailbox_sizes equal to the sum of a
// mailbox's items, whoever files or removes them, and MailboxSize sees a
// commit at once.
func TestMailboxSizes(t *testing.T) {
	st, org, mb := openWithMailbox(t)
	ctx := context.Background()
	if got := st.MailboxSize(mb.ID); got != 0 {
		t.Fatalf("empty mailbox: %d bytes", got)
	}
	body := []byte("Subject: x\r\n\r\n" + strings.Repeat("a", 1000))
	for i := range 3 {
		sub := &store.Submission{OrgID: org.ID, MessageID: fmt.Sprint("m", i), ReceivedAt: time.Now(), Body: body,
			Local: []store.LocalDelivery{{Mailbox: mb.ID, Folder: store.Inbox, Recipient: mb.PrimarySmtpAddress}}}
		if i == 2 {
			sub.SentItems = mb.ID // a second copy of the same message
		}
		if err := st.Commit(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	want := int64(4 * len(body))
	if got := st.MailboxSize(mb.ID); got != want {
		t.Fatalf("after 4 copies: %d bytes, want %d", got, want)
	}
	// A write made outside the store's own paths (an IMAP EXPUNGE) is
	// counted by the trigger; the cache sees it once forgotten or stale.
	if _, err := st.w.ExecContext(ctx, `DELETE FROM folder_items WHERE id = (SELECT MIN(id) FROM folder_items)`); err != nil {
		t.Fatal(err)
	}
	st.sizes.forget(mb.ID)
	if got := st.MailboxSize(mb.ID); got != want-int64(len(body)) {
		t.Fatalf("after a removal: %d bytes, want %d", got, want-int64(len(body)))
	}
	var sum int64
	if err := st.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(m.size), 0) FROM folder_items i JOIN folders f ON f.id = i.folder_id
		JOIN messages m ON m.id = i.message WHERE f.mailbox_id = ?`, mb.ID).Scan(&sum); err != nil || sum != want-int64(len(body)) {
		t.Fatalf("sum of items %d (%v)", sum, err)
	}
}

func TestSignInReport(t *testing.T) {
	st, org, mb := openWithMailbox(t)
	ctx := context.Background()
	day := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	row := store.SignIn{OrgID: org.ID, Protocol: "IMAP4", Mailbox: mb.ID, Actor: mb.PrimarySmtpAddress, ClientIP: "127.0.0.1", Method: "Basic", Count: 2, LastSeen: day}
	later := row
	later.Count, later.LastSeen = 3, day.Add(time.Hour)
	nextDay := row
	nextDay.Count, nextDay.LastSeen = 1, day.Add(24*time.Hour)
	gone := row
	gone.Mailbox = 9999 // removed meanwhile: dropped, not an error
	for _, batch := range [][]store.SignIn{{row}, {later, gone}, {nextDay}} {
		if err := st.RecordSignIns(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.SignInReport(ctx, store.SignInQuery{OrgID: org.ID, Start: day, End: day.Add(48 * time.Hour)})
	if err != nil || len(got) != 1 || got[0].Count != 6 || !got[0].LastSeen.Equal(nextDay.LastSeen) {
		t.Fatalf("report %+v %v", got, err)
	}
	got, _ = st.SignInReport(ctx, store.SignInQuery{OrgID: org.ID, Start: day, End: day})
	if len(got) != 1 || got[0].Count != 5 {
		t.Fatalf("one day: %+v", got)
	}
	if got, _ = st.SignInReport(ctx, store.SignInQuery{OrgID: org.ID, Protocol: "POP3", Start: day, End: day}); len(got) != 0 {
		t.Fatalf("POP3: %+v", got)
	}
}

// openWithMailbox opens a store in a temporary directory with the seed
// organization and its mailbox sean.
func openWithMailbox(t *testing.T) (*Store, *directory.Organization, *directory.Mailbox) {
	t.Helper()
	s, err := Open(t.TempDir())
	must(t, err)
	t.Cleanup(func() { s.Close() })
	org, sean, _ := seed(t, s)
	return s, org, sean
}
