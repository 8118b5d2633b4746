package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestPGClusterIMAPIdle: an IMAP IDLE session on node B hears of a message
// that node A accepted and filed into the idling mailbox (EXISTS, RFC
// 2177), twice in a row: the nodes relay their folder changes by
// LISTEN/NOTIFY, so a mailbox's readers need not be on the node its mail
// arrives at.
func TestPGClusterIMAPIdle(t *testing.T) {
	c := newPGCluster(t, 2)
	nodeA, nodeB := c.nodes[0], c.nodes[1]
	imap := dialLines(t, nodeB.addrs["imaps"], nodeB.tlsConfig())
	imap.line() // greeting
	if r := imap.imap("a1", "LOGIN sean@contoso.com Sean-Pass-1"); !strings.HasPrefix(r[len(r)-1], "a1 OK") {
		t.Fatalf("LOGIN on node B: %v", r)
	}
	if r := imap.imap("a2", "SELECT INBOX"); !strings.HasPrefix(r[len(r)-1], "a2 OK") {
		t.Fatalf("SELECT on node B: %v", r)
	}
	imap.send("a3 IDLE")
	if l := imap.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %s", l)
	}
	for i := 1; i <= 2; i++ {
		sent := time.Now()
		nodeA.submitAs(t, "scanner@contoso.com", "Scan-Pass-1", "sean@contoso.com", "Scan")
		// The client's deadline (dialLines: 60 s) bounds the wait.
		for {
			l := imap.line()
			if l == "* "+string(rune('0'+i))+" EXISTS" {
				t.Logf("message %d accepted by node A: EXISTS on node B after %v", i, time.Since(sent).Round(time.Millisecond))
				break
			}
		}
	}
	imap.send("DONE")
	if l := imap.line(); !strings.HasPrefix(l, "a3 OK") {
		t.Errorf("DONE: %s", l)
	}
}
