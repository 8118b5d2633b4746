package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

// TestCheckpointerKeepsWALSmall: under a steady stream of group commits the
// background checkpointer and the committer's catch-up start the WAL over
// every few MiB. Without the catch-up the WAL would only start over at the
// writer's backstop (walBackstopPages, 32 MiB), so 48 MiB of mail would
// leave a WAL file of about 32 MiB.
func TestCheckpointerKeepsWALSmall(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	must(t, err)
	defer s.Close()
	org, sean, _ := seed(t, s)
	ctx := context.Background()

	const writers, each, size = 8, 600, 10 << 10 // 48 MiB in all
	body := make([]byte, size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				sub := &store.Submission{OrgID: org.ID, MessageID: "<x@contoso.com>", ReceivedAt: time.Now(), Body: body, Recipients: 1,
					Local: []store.LocalDelivery{{Recipient: sean.PrimarySmtpAddress, Mailbox: sean.ID, Folder: store.Inbox}}}
				if err := s.Commit(ctx, sub); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	st, err := os.Stat(filepath.Join(dir, FileName+"-wal"))
	must(t, err)
	const bound = 16 << 20 // half the backstop
	if st.Size() > bound {
		t.Fatalf("WAL file grew to %d bytes under %d MiB of commits; want at most %d (the checkpointer should start it over every ~%d MiB)",
			st.Size(), writers*each*size>>20, bound, checkpointBytes>>20)
	}
	var n int
	must(t, s.r.QueryRow("SELECT COUNT(*) FROM folder_items").Scan(&n))
	if n != writers*each {
		t.Fatalf("%d messages filed, want %d", n, writers*each)
	}
	t.Logf("WAL high-water mark %.1f MiB after %d MiB committed", float64(st.Size())/(1<<20), writers*each*size>>20)
}
