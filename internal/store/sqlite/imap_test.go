package sqlite

import (
	"context"
	"slices"
	"strings"
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
