package smtpserver

import (
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/reply"
)

// countingObserver records what an Observer is told.
type countingObserver struct {
	mu       sync.Mutex
	opened   int
	refused  int
	outcomes []string
	replies  []int
}

func (o *countingObserver) Opened()  { o.mu.Lock(); o.opened++; o.mu.Unlock() }
func (o *countingObserver) Refused() { o.mu.Lock(); o.refused++; o.mu.Unlock() }
func (o *countingObserver) Closed(outcome string) {
	o.mu.Lock()
	o.outcomes = append(o.outcomes, outcome)
	o.mu.Unlock()
}
func (o *countingObserver) Replied(r *reply.Reply) {
	o.mu.Lock()
	o.replies = append(o.replies, r.Code)
	o.mu.Unlock()
}

// waitClosed waits until n connections have ended (the outcome is
// reported after the last reply, when the connection unwinds).
func (o *countingObserver) waitClosed(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		o.mu.Lock()
		got := append([]string(nil), o.outcomes...)
		o.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections ended, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestObservedOutcomes: each way a connection ends is reported once, with
// its own outcome, and every reply (the greeting included) is observed.
func TestObservedOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		session func(c *client)
		want    string
	}{
		{"quit", func(c *client) { c.expect("EHLO x", "250"); c.expect("QUIT", "221") }, OutcomeQuit},
		{"client closes", func(c *client) { c.expect("NOOP", "250"); c.conn.Close() }, OutcomeDisconnected},
		{"bad commands", func(c *client) {
			for range 4 {
				io.WriteString(c.conn, "FROB\r\n")
			}
			for c.read() != "" {
			}
		}, OutcomeError},
		{"idle timeout", func(c *client) {
			if got := c.read(); !strings.HasPrefix(got, "451 4.7.0 ") {
				t.Errorf("idle: %q", got)
			}
		}, OutcomeTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &countingObserver{}
			addr, _, _ := startEngine(t, func(s *Server) { s.Observe = obs; s.ReadTimeout = 500 * time.Millisecond })
			c := dialEngine(t, addr)
			tc.session(c)
			got := obs.waitClosed(t, 1)
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if len(got) != 1 || got[0] != tc.want || obs.opened != 1 {
				t.Errorf("outcomes %v (opened %d), want [%s]", got, obs.opened, tc.want)
			}
			if len(obs.replies) == 0 || obs.replies[0] != 220 {
				t.Errorf("replies %v: greeting not observed", obs.replies)
			}
		})
	}
}

// TestSessionIDs: every connection gets its own ID of 16 hex digits.
func TestSessionIDs(t *testing.T) {
	seen := map[string]bool{}
	shape := regexp.MustCompile(`^[0-9A-F]{16}$`)
	for range 1000 {
		id := newSessionID()
		if !shape.MatchString(id) || seen[id] {
			t.Fatalf("session ID %q (repeat: %v)", id, seen[id])
		}
		seen[id] = true
	}
}
