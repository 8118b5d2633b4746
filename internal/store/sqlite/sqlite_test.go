package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
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

// BenchmarkCommitSubmission commits as submission does: 25 submitters at
// once, each signed in as one of 50 mailboxes, each message filed into its
// sender's Sent Items and one shared Inbox (a commit group files into
// many folders, unlike BenchmarkCommitParallel's one).
func BenchmarkCommitSubmission(b *testing.B) {
	s, org := benchStore(b)
	ctx := context.Background()
	var mbs []*directory.Mailbox
	for i := range 50 {
		addr := fmt.Sprintf("m%d@o.example", i)
		mb := &directory.Mailbox{OrgID: org.ID, Name: fmt.Sprintf("m%d", i), PrimarySmtpAddress: addr, UserPrincipalName: addr, Type: directory.UserMailbox}
		if err := s.SaveMailbox(ctx, mb); err != nil {
			b.Fatal(err)
		}
		mbs = append(mbs, mb)
	}
	body := make([]byte, 10240)
	var next atomic.Int64
	b.SetParallelism(25)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mb := mbs[next.Add(1)%int64(len(mbs))]
		for pb.Next() {
			err := s.Commit(ctx, &store.Submission{OrgID: org.ID, MessageID: "x", ReceivedAt: time.Now(), Body: body,
				AuthMailbox: mb.ID, SentItems: mb.ID, Recipients: 1,
				Local: []store.LocalDelivery{{Mailbox: mbs[0].ID, Folder: store.Inbox, Recipient: mbs[0].PrimarySmtpAddress}}})
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
