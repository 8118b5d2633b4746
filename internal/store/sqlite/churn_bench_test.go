package sqlite

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

// BenchmarkChurn relays messages through the store: commit (16 concurrent
// submitters, group commit), claim, record the outcome (Send), and shows
// that the store returns to its size: bodies are released as each message
// is delivered, trace retention (PruneTrace) then removes the metadata in
// batches, and ReclaimSpace (incremental_vacuum, then a TRUNCATE
// checkpoint of the WAL) gives the pages back. One message in ten is
// 256 KiB and spooled (a body file); the rest are 2 KiB, in the row.
//
//	POSTERN_CHURN_MESSAGES=100000 go test -run='^$' -bench=BenchmarkChurn -benchtime=1x -timeout 30m ./internal/store/sqlite/
func BenchmarkChurn(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("POSTERN_CHURN_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	for b.Loop() {
		churn(b, n)
	}
}

func churn(b *testing.B, n int) {
	dir := b.TempDir()
	s, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	org, _, _ := seed(&testing.T{}, s)
	if err := s.ReclaimSpace(ctx); err != nil {
		b.Fatal(err)
	}
	var mode int
	s.w.QueryRow("PRAGMA auto_vacuum").Scan(&mode)
	baseDB, baseBodies := storeSize(dir)

	big := make([]byte, 256<<10)
	rand.Read(big)
	spool := filepath.Join(b.TempDir(), "spooled")
	if err := os.WriteFile(spool, big, 0o600); err != nil {
		b.Fatal(err)
	}
	small := make([]byte, 2048)
	for i := range small {
		small[i] = 'a' + byte(i%26)
	}

	start := time.Now()
	var peakDB, peakBodies int64
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sub := &store.Submission{OrgID: org.ID, MessageID: fmt.Sprintf("churn%d@test", i), ReceivedAt: time.Now(),
					EnvelopeFrom: "app@contoso.com", ClientIP: "192.0.2.1", Recipients: 1,
					Remote: []store.RemoteDelivery{{Recipient: "r@fabrikam.example"}}}
				if i%10 == 0 {
					sub.Body, sub.BodyFile = []byte("Received: by churn\r\n"), spool
				} else {
					sub.Body = small
				}
				if err := s.Commit(ctx, sub); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Deliver while committing, as the queue does: claim what is due and
	// record it sent.
	delivered := 0
	go func() {
		for i := range n {
			next <- i
		}
		close(next)
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for delivered < n {
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
		out, err := s.ClaimOutbound(ctx, time.Now().Add(time.Second), time.Minute, "churn", 500)
		if err != nil {
			b.Fatal(err)
		}
		if len(out) == 0 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		var outcomes []store.Outcome
		for _, it := range out {
			outcomes = append(outcomes, store.Outcome{QueueID: it.QueueID, Message: it.Message, Recipient: it.Recipient,
				Event: store.EventSend, At: time.Now()})
		}
		if err := s.RecordOutcomes(ctx, outcomes, nil); err != nil {
			b.Fatal(err)
		}
		delivered += len(out)
		if db, bodies := storeSize(dir); db > peakDB || bodies > peakBodies {
			peakDB, peakBodies = max(peakDB, db), max(peakBodies, bodies)
		}
	}
	<-done
	elapsed := time.Since(start)
	if err := s.ReclaimSpace(ctx); err != nil {
		b.Fatal(err)
	}
	deliveredDB, deliveredBodies := storeSize(dir)
	var free, pages int
	s.w.QueryRow("PRAGMA freelist_count").Scan(&free)
	s.w.QueryRow("PRAGMA page_count").Scan(&pages)
	b.Logf("all delivered: %d pages, %d free", pages, free)
	if os.Getenv("POSTERN_CHURN_DBSTAT") != "" {
		rows, err := s.r.Query("SELECT name, COUNT(*), SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 3 DESC LIMIT 8")
		if err != nil {
			b.Log(err)
		} else {
			for rows.Next() {
				var name string
				var n, size int64
				rows.Scan(&name, &n, &size)
				b.Logf("  %s: %d pages, %s", name, n, mib(size))
			}
			rows.Close()
		}
	}

	pruneStart := time.Now()
	pruned, err := s.PruneTrace(ctx, time.Now().Add(time.Second))
	if err != nil {
		b.Fatal(err)
	}
	pruneTime := time.Since(pruneStart)
	if err := s.ReclaimSpace(ctx); err != nil {
		b.Fatal(err)
	}
	afterDB, afterBodies := storeSize(dir)
	b.Logf("auto_vacuum=%d; %d messages relayed in %v (%.0f/s); peak db+wal %s, bodies %s", mode, n, elapsed.Round(time.Millisecond),
		float64(n)/elapsed.Seconds(), mib(peakDB), mib(peakBodies))
	b.Logf("baseline db+wal %s, bodies %s", mib(baseDB), mib(baseBodies))
	b.Logf("all delivered (bodies released, metadata kept for trace): db+wal %s, bodies %s", mib(deliveredDB), mib(deliveredBodies))
	b.Logf("after PruneTrace (%d rows in %v) and ReclaimSpace: db+wal %s, bodies %s", pruned, pruneTime.Round(time.Millisecond),
		mib(afterDB), mib(afterBodies))
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msg/s")
	b.ReportMetric(float64(afterDB-baseDB)/(1<<20), "MiB-db-growth")
	b.ReportMetric(float64(afterBodies), "bytes-bodies-left")
	if afterBodies != 0 {
		b.Errorf("%d bytes of body files left", afterBodies)
	}
}

// storeSize is the database with its WAL, and the body files.
func storeSize(dir string) (db, bodies int64) {
	for _, f := range []string{FileName, FileName + "-wal"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil {
			db += st.Size()
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, BodiesDir))
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			bodies += info.Size()
		}
	}
	return db, bodies
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }
