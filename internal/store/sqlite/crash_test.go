package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

// crashChildEnv, when set, makes TestCommitsSurviveSIGKILL the child
// process that commits until it is killed: "dir org mailbox".
const crashChildEnv = "POSTERN_SQLITE_CRASH_CHILD"

// TestCommitsSurviveSIGKILL: a process commits 10 KiB messages from 8
// goroutines and reports each commit as it returns; the test kills it with
// SIGKILL after a few MiB (so that background checkpoints have run, and one
// may be under way), opens the database again and finds every reported
// message. Three rounds on one database, each killed further in.
func TestCommitsSurviveSIGKILL(t *testing.T) {
	if arg := os.Getenv(crashChildEnv); arg != "" {
		crashChild(t, arg)
		return
	}
	dir := t.TempDir()
	s, err := Open(dir)
	must(t, err)
	org, sean, _ := seed(t, s)
	must(t, s.Close())

	acked := map[string]bool{}
	for round, kill := range []int{300, 550, 800} { // 3, 5.5 and 8 MiB in
		cmd := exec.Command(os.Args[0], "-test.run=^TestCommitsSurviveSIGKILL$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", crashChildEnv, dir, org.ID, sean.ID))
		out, err := cmd.StdoutPipe()
		must(t, err)
		cmd.Stderr = os.Stderr
		must(t, cmd.Start())
		lines := bufio.NewScanner(out)
		n := 0
		for lines.Scan() {
			id, ok := strings.CutPrefix(lines.Text(), "ack ")
			if !ok {
				continue
			}
			acked[id] = true
			if n++; n == kill {
				cmd.Process.Kill()
			}
		}
		cmd.Wait()
		wal, err := os.Stat(filepath.Join(dir, FileName+"-wal"))
		must(t, err) // a killed writer leaves its WAL for the next open to recover
		if n < kill {
			t.Fatalf("round %d: the child reported %d commits before it ended, want %d", round, n, kill)
		}

		s, err := Open(dir)
		must(t, err)
		// As the server does when it starts: a message whose body a
		// crash left incomplete (never reported) is removed.
		_, err = s.SweepBodies(context.Background())
		must(t, err)
		stored := map[string]int64{}
		rows, err := s.r.Query("SELECT message_id, id FROM messages")
		must(t, err)
		for rows.Next() {
			var id string
			var row int64
			must(t, rows.Scan(&id, &row))
			stored[id] = row
		}
		must(t, rows.Err())
		rows.Close()
		for id, row := range stored {
			if got := readBody(t, s, row); !bytes.Equal(got, crashBody) {
				t.Fatalf("round %d: message %s has a body of %d bytes that differs from the one committed", round, id, len(got))
			}
		}
		var items int
		must(t, s.r.QueryRow("SELECT COUNT(*) FROM folder_items").Scan(&items))
		must(t, s.Close())
		missing := 0
		for id := range acked {
			if stored[id] == 0 {
				missing++
			}
		}
		if missing > 0 {
			t.Fatalf("round %d: %d of %d reported commits are missing after SIGKILL", round, missing, len(acked))
		}
		if items != len(stored) {
			t.Fatalf("round %d: %d messages but %d folder items", round, len(stored), items)
		}
		t.Logf("round %d: killed after %d commits, WAL at %.1f MiB; all %d reported commits there (%d stored)",
			round, n, float64(wal.Size())/(1<<20), len(acked), len(stored))
	}
}

// crashBody is every crash test message's body (10 KiB).
var crashBody = []byte(strings.Repeat("0123456789abcdef", 640))

// crashChild commits until killed, writing "ack <Message-ID>" to stdout as
// each commit returns.
func crashChild(t *testing.T, arg string) {
	f := strings.Fields(arg)
	org, _ := strconv.ParseInt(f[1], 10, 64)
	mailbox, _ := strconv.ParseInt(f[2], 10, 64)
	s, err := Open(f[0])
	if err != nil {
		t.Fatal(err)
	}
	body := crashBody
	pid := os.Getpid()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("%d.%d.%d@crash.example", pid, w, i)
				err := s.Commit(context.Background(), &store.Submission{OrgID: org, MessageID: id, ReceivedAt: time.Now(),
					Body: body, Recipients: 1,
					Local: []store.LocalDelivery{{Recipient: "sean@contoso.com", Mailbox: mailbox, Folder: store.Inbox}}})
				if err != nil {
					fmt.Fprintln(os.Stderr, "commit:", err)
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", id) // unbuffered: written before the next commit starts
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
