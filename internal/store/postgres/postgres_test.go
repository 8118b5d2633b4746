package postgres

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/directory"

	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/storetest"
	"postern.dev/postern/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// openTest opens a store on a fresh database; it is closed when t ends.
func openTest(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	must(t, err)
	return s
}

// TestStore runs the shared store suite against PostgreSQL.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		url := testpg.New(t)
		return storetest.Backend{
			Open: func(t *testing.T) store.Store { return openTest(t, url) },
			LargeBodies: func(t *testing.T) int {
				s := openTest(t, url)
				defer s.Close()
				var n int
				must(t, s.r.QueryRow("SELECT COUNT(*) FROM body_blobs").Scan(&n))
				return n
			},
		}
	})
}

// TestNodesMigrateAtOnce: nodes starting together on a new database apply
// each migration once (the advisory lock), and all of them open.
func TestNodesMigrateAtOnce(t *testing.T) {
	url := testpg.New(t)
	errs := make(chan error, 4)
	stores := make(chan *Store, 4)
	for range 4 {
		go func() {
			s, err := Open(context.Background(), url)
			errs <- err
			stores <- s
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		if s := <-stores; s != nil {
			defer s.Close()
		}
	}
	s := openTest(t, url)
	defer s.Close()
	var version, rows int
	must(t, s.r.QueryRow("SELECT MAX(version), COUNT(*) FROM schema_version").Scan(&version, &rows))
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	if version != len(names) || rows != 1 {
		t.Errorf("schema_version %d in %d rows, want %d in one", version, rows, len(names))
	}
}

// TestSynchronousCommitForced: a database configured to acknowledge
// commits before they are on disk does not weaken the store's commits.
func TestSynchronousCommitForced(t *testing.T) {
	url := testpg.New(t)
	s := openTest(t, url)
	defer s.Close()
	var db string
	must(t, s.r.QueryRow("SELECT current_database()").Scan(&db))
	_, err := s.w.Exec("ALTER DATABASE " + db + " SET synchronous_commit = off")
	must(t, err)
	s2 := openTest(t, url)
	defer s2.Close()
	for range 3 { // several pool connections
		var v string
		must(t, s2.r.QueryRow("SHOW synchronous_commit").Scan(&v))
		if v != "on" {
			t.Fatalf("synchronous_commit = %s on a store connection", v)
		}
	}
}

// TestOrphanBlobsSwept: a blob no message refers to (a node died between
// storing it and committing its message) is removed once it is old; a
// recent one may belong to a commit under way on another node and stays,
// as does a referenced one.
func TestOrphanBlobsSwept(t *testing.T) {
	s := openTest(t, testpg.New(t))
	defer s.Close()
	ctx := context.Background()
	old, _, err := s.writeBlob(ctx, strings.NewReader("orphan from a crash"), 1<<20)
	must(t, err)
	recent, _, err := s.writeBlob(ctx, strings.NewReader("commit under way"), 1<<20)
	must(t, err)
	_, err = s.w.Exec("UPDATE body_blobs SET created = $1 WHERE id = $2", time.Now().Add(-2*orphanAge).UnixNano(), old)
	must(t, err)
	spool := filepath.Join(t.TempDir(), "spool")
	must(t, os.WriteFile(spool, []byte("large body"), 0o600))
	org := &directory.Organization{Name: "o", GUID: "g"}
	must(t, s.SaveOrganization(ctx, org))
	sub := &store.Submission{OrgID: org.ID, ReceivedAt: time.Now(), Body: []byte("Received: x\r\n"), BodyFile: spool, Recipients: 1,
		Remote: []store.RemoteDelivery{{Recipient: "r@example.net"}}}
	must(t, s.Commit(ctx, sub))
	_, err = s.w.Exec("UPDATE body_blobs SET created = 0")
	must(t, err)
	_, err = s.w.Exec("UPDATE body_blobs SET created = $1 WHERE id = $2", time.Now().UnixNano(), recent)
	must(t, err)
	n, err := s.SweepBodies(ctx)
	must(t, err)
	if n != 1 {
		t.Errorf("swept %d, want the old orphan", n)
	}
	var left []int64
	must(t, each(ctx, s.r, "SELECT id FROM body_blobs ORDER BY id", func(rows *sql.Rows) error {
		var id int64
		err := rows.Scan(&id)
		left = append(left, id)
		return err
	}))
	if len(left) != 2 || left[0] != recent {
		t.Errorf("blobs left %v, want the recent orphan and the referenced one", left)
	}
	rc, err := s.MessageBody(ctx, sub.ID)
	must(t, err)
	b, _ := io.ReadAll(rc)
	if string(b) != "Received: x\r\nlarge body" {
		t.Errorf("body %q", b)
	}
}

// TestNodesReleaseTogether: two nodes delivering a message's last two
// recipients at the same moment release its body exactly once, never
// leaving it behind (each would otherwise see the other's item still
// queued) and never taking it from a recipient still queued.
func TestNodesReleaseTogether(t *testing.T) {
	url := testpg.New(t)
	a, b := openTest(t, url), openTest(t, url)
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	org := &directory.Organization{Name: "o", GUID: "g"}
	must(t, a.SaveOrganization(ctx, org))
	for round := range 20 {
		sub := &store.Submission{OrgID: org.ID, ReceivedAt: time.Now(), Body: []byte("x\r\n"), Recipients: 2,
			Remote: []store.RemoteDelivery{{Recipient: "one@example.net"}, {Recipient: "two@example.net"}}}
		must(t, a.Commit(ctx, sub))
		ia, err := a.ClaimOutbound(ctx, time.Now(), time.Minute, "a", 1)
		must(t, err)
		ib, err := b.ClaimOutbound(ctx, time.Now(), time.Minute, "b", 1)
		must(t, err)
		if len(ia) != 1 || len(ib) != 1 {
			t.Fatalf("round %d: claimed %d and %d", round, len(ia), len(ib))
		}
		var wg sync.WaitGroup
		for _, n := range []struct {
			s  *Store
			it store.OutboundItem
		}{{a, ia[0]}, {b, ib[0]}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := n.s.RecordOutcomes(ctx, []store.Outcome{{QueueID: n.it.QueueID, Message: n.it.Message, Recipient: n.it.Recipient,
					Event: store.EventSend, At: time.Now()}}, nil); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if _, err := a.MessageBody(ctx, sub.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("round %d: body kept after both recipients were delivered (%v)", round, err)
		}
	}
}

// BenchmarkCommitParallel is the SQLite store's benchmark of the same
// name: 16 submitters at once, each message with a Sent Items copy and
// one outbound recipient.
func BenchmarkCommitParallel(b *testing.B) {
	s := openTest(b, testpg.New(b))
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	org := &directory.Organization{Name: "o", GUID: "g"}
	must(b, s.SaveOrganization(ctx, org))
	mb := &directory.Mailbox{OrgID: org.ID, Name: "m", PrimarySmtpAddress: "m@o.example", UserPrincipalName: "m@o.example", Type: directory.UserMailbox}
	must(b, s.SaveMailbox(ctx, mb))
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
