package e2e

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// submitLoad keeps workers submitting messages through a cluster's nodes
// (worker i through node i mod n, reconnecting when its connection fails)
// until stopped, and records every reply: which subjects were
// acknowledged with 250, and every other reply or failure.
type submitLoad struct {
	mu        sync.Mutex
	acked     []string       // subjects acknowledged with 250
	perWorker map[int]int    // acknowledged, by worker
	replies   map[string]int // other replies, by their first 9 characters ("451 4.3.0")
	errs      []string       // connection failures, first few
	stop      chan struct{}
	once      sync.Once
	wg        sync.WaitGroup
}

func startLoad(nodes []*instance, workers int, to string) *submitLoad {
	return startLoadAs(nodes, workers, []string{"scanner@contoso.com"}, to, 0)
}

// startLoadAs is startLoad with worker i signing in as users[i mod
// len(users)] (password Scan-Pass-1), each stopping after perWorker
// acknowledged messages (0: never).
func startLoadAs(nodes []*instance, workers int, users []string, to string, perWorker int) *submitLoad {
	l := &submitLoad{replies: map[string]int{}, perWorker: map[int]int{}, stop: make(chan struct{})}
	for w := range workers {
		in := nodes[w%len(nodes)]
		user := users[w%len(users)]
		addr, cfg := in.addrs["submissions"], in.tlsConfig()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for seq := 0; ; {
				select {
				case <-l.stop:
					return
				default:
				}
				if perWorker > 0 && l.ackedBy(w) >= perWorker {
					return
				}
				if err := l.session(addr, cfg, user, w, &seq, to, perWorker); err != nil {
					l.mu.Lock()
					if len(l.errs) < 20 {
						l.errs = append(l.errs, err.Error())
					}
					l.mu.Unlock()
					select {
					case <-l.stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		}()
	}
	return l
}

// session submits over one connection until stopped or it fails.
func (l *submitLoad) session(addr string, cfg *tls.Config, user string, worker int, seq *int, to string, perWorker int) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	text := textproto.NewConn(conn)
	cmd := func(line string, want int) (string, error) {
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		if line != "" {
			if err := text.PrintfLine("%s", line); err != nil {
				return "", err
			}
		}
		code, msg, err := text.ReadResponse(want)
		return fmt.Sprintf("%d %s", code, msg), err
	}
	if _, err := cmd("", 220); err != nil {
		return err
	}
	if _, err := cmd("EHLO load.contoso.com", 250); err != nil {
		return err
	}
	if _, err := cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00Scan-Pass-1")), 235); err != nil {
		return err
	}
	for {
		select {
		case <-l.stop:
			cmd("QUIT", 221)
			return nil
		default:
		}
		if perWorker > 0 && l.ackedBy(worker) >= perWorker {
			cmd("QUIT", 221)
			return nil
		}
		subject := fmt.Sprintf("load %d-%d", worker, *seq)
		*seq++
		if _, err := cmd("MAIL FROM:<"+user+">", 250); err != nil {
			return err
		}
		if _, err := cmd("RCPT TO:<"+to+">", 250); err != nil {
			return err
		}
		if _, err := cmd("DATA", 354); err != nil {
			return err
		}
		w := text.DotWriter()
		io.WriteString(w, message(user, to, subject))
		if err := w.Close(); err != nil {
			return err
		}
		r, err := cmd("", 250)
		l.mu.Lock()
		if err == nil {
			l.acked = append(l.acked, subject)
			l.perWorker[worker]++
		} else if _, ok := err.(*textproto.Error); ok {
			l.replies[r[:min(9, len(r))]]++
		}
		l.mu.Unlock()
		if err != nil {
			if _, ok := err.(*textproto.Error); !ok {
				return err
			}
		}
	}
}

func (l *submitLoad) ackedBy(worker int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perWorker[worker]
}

// counts returns how many were acknowledged and the other replies so far.
func (l *submitLoad) counts() (int, map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	other := map[string]int{}
	for k, v := range l.replies {
		other[k] = v
	}
	return len(l.acked), other
}

// finish stops the workers and waits for them; again, it does nothing.
func (l *submitLoad) finish() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// storedSubjects reads the subjects of the messages in the database.
func storedSubjects(t *testing.T, url string) map[string]int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT subject FROM messages")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got[strings.TrimSpace(s)]++
	}
	return got
}
