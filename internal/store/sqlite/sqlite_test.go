package sqlite

import (
	"context"
	"errors"
	"fmt"
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
	must(t, s.SaveMailbox(ctx, sean))
	must(t, s.SavePolicy(ctx, &directory.AuthenticationPolicy{OrgID: org.ID, Name: "BlockBasic"}))
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
