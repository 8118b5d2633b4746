package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlite"
	"postern.dev/postern/internal/testpg"
)

// TestCopyFromSQLite: a single-node installation (directory, a small and
// a large message filed and queued, trace events) copied into PostgreSQL
// has the same rows in every table, the same message trace and the same
// message bodies; new objects get new IDs; a second copy into the now
// non-empty database is refused.
func TestCopyFromSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, err := sqlite.Open(dir)
	must(t, err)
	org := &directory.Organization{Name: "Contoso", GUID: "g"}
	must(t, src.SaveOrganization(ctx, org))
	must(t, src.SaveDomain(ctx, &directory.AcceptedDomain{OrgID: org.ID, Name: "contoso.com", DomainName: "contoso.com", DomainType: directory.Authoritative}))
	var boxes []*directory.Mailbox
	for _, name := range []string{"sean", "scanner"} {
		addr := name + "@contoso.com"
		yes := false
		m := &directory.Mailbox{OrgID: org.ID, GUID: name, Name: name, PrimarySmtpAddress: addr, UserPrincipalName: addr,
			Type: directory.UserMailbox, EmailAddresses: []string{"alias-" + addr}, SmtpClientAuthenticationDisabled: &yes, ImapEnabled: true}
		must(t, src.SaveMailbox(ctx, m))
		boxes = append(boxes, m)
	}
	sean, scanner := boxes[0], boxes[1]
	small := []byte("Subject: small\r\n\r\nhello\r\n")
	must(t, src.Commit(ctx, &store.Submission{OrgID: org.ID, MessageID: "small@test", Subject: "small", ReceivedAt: time.Now(),
		EnvelopeFrom: "scanner@contoso.com", AuthMailbox: scanner.ID, SentItems: scanner.ID, Body: small, Recipients: 2,
		Local:  []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}},
		Remote: []store.RemoteDelivery{{Recipient: "rcpt@fabrikam.example"}}}))
	spool := filepath.Join(t.TempDir(), "upload")
	large := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 KB: three chunks
	must(t, os.WriteFile(spool, append([]byte("Subject: large\r\n\r\n"), large...), 0o600))
	must(t, src.Commit(ctx, &store.Submission{OrgID: org.ID, MessageID: "large@test", Subject: "large", ReceivedAt: time.Now(),
		EnvelopeFrom: "scanner@contoso.com", AuthMailbox: scanner.ID, Body: []byte("Received: by test\r\n"), BodyFile: spool, Recipients: 1,
		Local: []store.LocalDelivery{{Mailbox: sean.ID, Folder: store.Inbox, Recipient: "sean@contoso.com"}}}))
	must(t, src.Close())

	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "postern.db")+"?mode=ro")
	must(t, err)
	defer raw.Close()
	dst := openTest(t, testpg.New(t))
	defer dst.Close()
	copied, err := dst.CopyFromSQLite(ctx, raw, filepath.Join(dir, sqlite.BodiesDir))
	must(t, err)
	if copied["messages"] != 2 || copied["mailboxes"] != 2 || copied["folder_items"] != 3 || copied["queue"] != 1 {
		t.Errorf("copied %v", copied)
	}
	want, err := dst.TableCounts(ctx, raw)
	must(t, err)
	got, err := dst.TableCounts(ctx, nil)
	must(t, err)
	for table, n := range want {
		if got[table] != n {
			t.Errorf("%s: %d rows in SQLite, %d in PostgreSQL", table, n, got[table])
		}
	}

	// The same trace and the same bodies from both stores.
	src, err = sqlite.Open(dir)
	must(t, err)
	defer src.Close()
	traceOf := func(s store.Store) string {
		ms, err := s.MessageTrace(ctx, store.TraceQuery{OrgID: org.ID})
		must(t, err)
		var b strings.Builder
		for _, m := range ms {
			b.WriteString(m.MessageID + " " + m.Subject + " " + m.Sender + "\n")
			for _, r := range m.Recipients {
				b.WriteString("  " + r.Address + " " + r.LastEvent + " " + r.Detail + "\n")
			}
		}
		return b.String()
	}
	if a, b := traceOf(src), traceOf(dst); a != b || !strings.Contains(a, "large@test") {
		t.Errorf("message trace differs:\nSQLite:\n%s\nPostgreSQL:\n%s", a, b)
	}
	ms, err := src.MessageTrace(ctx, store.TraceQuery{OrgID: org.ID})
	must(t, err)
	for _, m := range ms {
		read := func(s store.Store) []byte {
			r, err := s.MessageBody(ctx, m.Message)
			must(t, err)
			defer r.Close()
			b, err := io.ReadAll(r)
			must(t, err)
			return b
		}
		if a, b := read(src), read(dst); !bytes.Equal(a, b) || len(a) == 0 {
			t.Errorf("message %d: %d bytes in SQLite, %d in PostgreSQL (equal: %v)", m.Message, len(a), len(b), bytes.Equal(a, b))
		}
	}
	if n := dst.MailboxSize(sean.ID); n == 0 {
		t.Error("sean's mailbox size was not rebuilt from the copied items")
	}

	// New objects continue after the copied IDs.
	m := &directory.Mailbox{OrgID: org.ID, GUID: "new", Name: "new", PrimarySmtpAddress: "new@contoso.com", UserPrincipalName: "new@contoso.com", Type: directory.UserMailbox}
	must(t, dst.SaveMailbox(ctx, m))
	if m.ID <= scanner.ID {
		t.Errorf("a new mailbox got ID %d, not after %d", m.ID, scanner.ID)
	}
	if _, err := dst.CopyFromSQLite(ctx, raw, filepath.Join(dir, sqlite.BodiesDir)); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second copy: %v", err)
	}
}
