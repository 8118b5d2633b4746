package e2e

import (
	"encoding/base64"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"postern.dev/postern/internal/testpg"
	"postern.dev/postern/internal/testsmtp"
)

// pgCluster is several postern serve nodes sharing one PostgreSQL
// database, each on its own data directory and the first node's secret key.
type pgCluster struct {
	url   string
	nodes []*instance
}

// newPGCluster sets up contoso.com and the mailbox scanner@contoso.com
// (SMTP AUTH on) in a fresh database, then starts n nodes on it.
func newPGCluster(t *testing.T, n int, extra ...string) *pgCluster {
	t.Helper()
	return newPGClusterOn(t, testpg.New(t), n, extra...)
}

// newPGClusterOn is newPGCluster on a database the test made.
func newPGClusterOn(t *testing.T, url string, n int, extra ...string) *pgCluster {
	t.Helper()
	first := t.TempDir()
	pgAdmin(t, first, url, "New-AcceptedDomain", "-Name", "contoso.com", "-DomainName", "contoso.com", "-DomainType", "Authoritative")
	pgAdmin(t, first, url, "New-Mailbox", "-Name", "scanner", "-PrimarySmtpAddress", "scanner@contoso.com", "-Password", "Scan-Pass-1")
	pgAdmin(t, first, url, "Set-CASMailbox", "-Identity", "scanner@contoso.com", "-SmtpClientAuthenticationDisabled", "$false")
	pgAdmin(t, first, url, "New-Mailbox", "-Name", "sean", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Sean-Pass-1")
	c := &pgCluster{url: url}
	for i := range n {
		data := first
		if i > 0 {
			data = t.TempDir()
		}
		args := append([]string{"--store", url, "--secret-key-file", filepath.Join(first, "secret.key")}, extra...)
		in := &instance{t: t, data: data, extra: args}
		in.start()
		c.nodes = append(c.nodes, in)
	}
	return c
}

// admin runs a cmdlet through node i's admin socket.
func (c *pgCluster) admin(t *testing.T, i int, args ...string) string {
	t.Helper()
	return pgAdmin(t, c.nodes[i].data, c.url, args...)
}

// authReply connects to a node's implicit-TLS submission port and returns
// the reply to AUTH PLAIN.
func authReply(t *testing.T, in *instance, user, password string) string {
	t.Helper()
	c := dialTLS(t, in.addrs["submissions"], in.tlsConfig())
	defer c.conn.Close()
	c.expect("EHLO scanner.contoso.com", "250")
	return c.do("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)))
}

// TestPGClusterDirectoryChange: Set-CASMailbox run on node A turns SMTP
// AUTH off for a mailbox, and the next AUTH on node C is refused with
// Exchange's 5.7.139 (and accepted again after the reverse change): node C
// hears the change by LISTEN/NOTIFY, with no restart and no admin action
// of its own. The time from the cmdlet's return to the first refused AUTH
// is logged; the bound is one second. Set-TransportConfig,
// New-Mailbox and Remove-Mailbox on node A are seen by node C likewise.
func TestPGClusterDirectoryChange(t *testing.T) {
	c := newPGCluster(t, 3)
	a, nodeC := 0, c.nodes[2]
	if r := authReply(t, nodeC, "scanner@contoso.com", "Scan-Pass-1"); !strings.HasPrefix(r, "235 ") {
		t.Fatalf("AUTH on node C before the change: %q", r)
	}
	for _, step := range []struct {
		disabled, want string
	}{{"$true", "535 5.7.139"}, {"$false", "235 "}} {
		c.admin(t, a, "Set-CASMailbox", "-Identity", "scanner@contoso.com", "-SmtpClientAuthenticationDisabled", step.disabled)
		changed := time.Now()
		var last string
		if !waitUntil(30*time.Second, func() bool {
			last = authReply(t, nodeC, "scanner@contoso.com", "Scan-Pass-1")
			return strings.HasPrefix(last, step.want)
		}) {
			t.Fatalf("node C still answers %q 30 s after Set-CASMailbox -SmtpClientAuthenticationDisabled %s on node A; want %s\nnode C log:\n%s",
				last, step.disabled, step.want, nodeC.log.String())
		}
		latency := time.Since(changed)
		t.Logf("-SmtpClientAuthenticationDisabled %s on node A seen by AUTH on node C after %v", step.disabled, latency.Round(time.Millisecond))
		if latency > time.Second {
			t.Logf("note: over the one-second bound (a loaded machine?)")
		}
	}

	// The other changes a node applies row by row (issue 14): an
	// organization's setting, a new mailbox, a removed one.
	for _, step := range []struct {
		cmd        []string
		user, pass string
		want       string
	}{
		{[]string{"Set-TransportConfig", "-SmtpClientAuthenticationDisabled", "$false"}, "sean@contoso.com", "Sean-Pass-1", "235 "},
		{[]string{"New-Mailbox", "-Name", "printer", "-PrimarySmtpAddress", "printer@contoso.com", "-Password", "Print-Pass-1"},
			"printer@contoso.com", "Print-Pass-1", "235 "},
		{[]string{"Remove-Mailbox", "-Identity", "printer@contoso.com", "-Confirm:$false"}, "printer@contoso.com", "Print-Pass-1", "535 "},
	} {
		c.admin(t, a, step.cmd...)
		var last string
		if !waitUntil(30*time.Second, func() bool {
			last = authReply(t, nodeC, step.user, step.pass)
			return strings.HasPrefix(last, step.want)
		}) {
			t.Fatalf("node C still answers %q to %s 30 s after %v on node A; want %s\nnode C log:\n%s",
				last, step.user, step.cmd, step.want, nodeC.log.String())
		}
	}
}

var acceptedLine = regexp.MustCompile(`time=(\S+) level=INFO msg=accepted .*paced_until=(\S*)`)

// TestPGClusterPacing: a mailbox's 30 messages a minute hold when its
// messages arrive through two nodes at once: of 70 messages (35 through
// each node), at most 30 per calendar minute of arrival are released at
// once, the rest are paced (accepted, held back), as Exchange does; with
// each node counting alone, 60 could go at once.
func TestPGClusterPacing(t *testing.T) {
	c := newPGCluster(t, 2)
	var wg sync.WaitGroup
	clients := map[*instance]*smtpClient{}
	for _, in := range c.nodes {
		s := dialTLS(t, in.addrs["submissions"], in.tlsConfig())
		s.expect("EHLO scanner.contoso.com", "250")
		s.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00scanner@contoso.com\x00Scan-Pass-1")), "235 ")
		clients[in] = s
	}
	for _, in := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := clients[in]
			for i := range 35 {
				s.conn.SetDeadline(time.Now().Add(30 * time.Second))
				if r := s.send("scanner@contoso.com", []string{"sean@contoso.com"}, message("scanner@contoso.com", "sean@contoso.com", fmt.Sprint("paced ", i))); !strings.HasPrefix(r, "250 ") {
					t.Errorf("message %d through %s: %q", i, in.addrs["submissions"], r)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// A node logs "accepted" just after it answered 250, so the last
	// lines may still be on their way: wait for all 70.
	var immediate map[string]int // by minute of arrival
	var paced, total int
	count := func() bool {
		immediate, paced = map[string]int{}, 0
		for _, in := range c.nodes {
			for _, m := range acceptedLine.FindAllStringSubmatch(in.log.String(), -1) {
				if m[2] == `""` || m[2] == "" {
					immediate[m[1][:16]]++ // 2006-01-02T15:04
				} else {
					paced++
				}
			}
		}
		total = paced
		for _, n := range immediate {
			total += n
		}
		return total >= 70
	}
	waitUntil(30*time.Second, count)
	for minute, n := range immediate {
		if n > 30 {
			t.Errorf("%d messages released at once in the minute %s; want at most 30", n, minute)
		}
	}
	if total != 70 {
		t.Fatalf("%d accepted lines in the nodes' logs, want 70", total)
	}
	if paced < 70-30*len(immediate) {
		t.Errorf("%d of 70 messages paced over %d minutes of arrival; want at least %d", paced, len(immediate), 70-30*len(immediate))
	}
	t.Logf("released at once per minute: %v; paced: %d", immediate, paced)
}

// TestPGClusterOutage: PostgreSQL stops for about ten seconds while two
// nodes take submissions. Meanwhile the nodes answer 451 4.3.0 (the client
// keeps the message and retries), never 250 for a message they could not
// store; when the database is back they take submissions again by
// themselves, and every message acknowledged with 250, before, during or
// after the outage, is in the database.
func TestPGClusterOutage(t *testing.T) {
	pg := testpg.NewCluster(t)
	url := pg.NewDatabase(t)
	c := newPGClusterOn(t, url, 2)
	// Three workers: the mailbox's three connections, counted over both
	// nodes (a 4th would get 432 4.3.2 throughout).
	load := startLoad(c.nodes, 3, "sean@contoso.com")
	defer load.finish()
	if !waitUntil(60*time.Second, func() bool { n, _ := load.counts(); return n >= 20 }) {
		t.Fatalf("no load before the outage: %v", load.errs)
	}
	pg.Stop(t)
	down := time.Now()
	if !waitUntil(60*time.Second, func() bool { _, o := load.counts(); return o["451 4.3.0"] > 0 }) {
		_, o := load.counts()
		t.Fatalf("no 451 4.3.0 while PostgreSQL is down; replies %v, errors %v", o, load.errs)
	}
	ackedDown, _ := load.counts()
	// The outage itself lasts ten seconds (the scenario, not a wait for
	// a result).
	time.Sleep(10*time.Second - time.Since(down))
	pg.Start(t)
	up := time.Now()
	if !waitUntil(60*time.Second, func() bool { n, _ := load.counts(); return n >= ackedDown+20 }) {
		n, o := load.counts()
		t.Fatalf("the nodes did not recover: %d acknowledged (%d when the database stopped), replies %v, errors %v\nnode log:\n%s",
			n, ackedDown, o, load.errs, c.nodes[0].log.String())
	}
	t.Logf("submissions acknowledged again %v after PostgreSQL restarted", time.Since(up).Round(time.Millisecond))
	load.finish()
	acked, other := load.counts()
	for r := range other {
		if r != "451 4.3.0" {
			t.Errorf("a reply other than 250 and 451 4.3.0: %q (%d)", r, other[r])
		}
	}
	stored := storedSubjects(t, url)
	lost := 0
	for _, s := range load.acked {
		if stored[s] == 0 {
			lost++
			if lost < 5 {
				t.Errorf("acknowledged but not stored: %q", s)
			}
		}
	}
	t.Logf("%d acknowledged, %d answered 451 4.3.0, %d lost; connection failures: %d", acked, other["451 4.3.0"], lost, len(load.errs))
}

// TestPGClusterKillNode: three nodes share one database and deliver to a
// loopback receiver. Six senders submit through all three nodes; one node
// is killed with SIGKILL under load and started again (its leases on
// outbound items are released at start; without a restart they expire).
// Every message acknowledged with 250 reaches the receiver, and none
// twice. (A duplicate remains possible in one narrow window, which SMTP
// cannot close: the kill landing between the receiver's 250 and the
// commit of that outcome; the test names any duplicate it sees.)
func TestPGClusterKillNode(t *testing.T) {
	out := newOutside(t, testsmtp.Config{})
	c := newPGCluster(t, 3, out.flags(t)...)
	var users []string
	for i := range 6 {
		u := fmt.Sprintf("sender%d@contoso.com", i)
		c.admin(t, 0, "New-Mailbox", "-Name", fmt.Sprint("sender", i), "-PrimarySmtpAddress", u, "-Password", "Scan-Pass-1")
		c.admin(t, 0, "Set-CASMailbox", "-Identity", u, "-SmtpClientAuthenticationDisabled", "$false")
		users = append(users, u)
	}
	// 25 messages per sender: under 30 a minute, so that pacing holds
	// none back and the test waits for delivery, not for the pacer.
	const perWorker = 25
	load := startLoadAs(c.nodes, 6, users, "rcpt@fabrikam.example", perWorker)
	defer load.finish()
	if !waitUntil(60*time.Second, func() bool { n, _ := load.counts(); return n >= 40 }) {
		t.Fatalf("no load: %v", load.errs)
	}
	victim := c.nodes[1]
	victim.kill()
	killedAt, _ := load.counts()
	// What the receiver had when node B died. A delivery B made (the
	// receiver said 250) but had not yet recorded when it was killed is
	// made again after its leases are freed: SMTP has no two-phase
	// commit, so a crash in that window repeats a delivery (at-least-once,
	// as Postfix). Such a message's first copy is already here; a message
	// first delivered after the kill and delivered twice was delivered
	// twice by live nodes, which must never happen.
	beforeKill := map[string]bool{}
	for s := range subjectsOf(out.mx.Messages()) {
		beforeKill[s] = true
	}
	// Workers 0, 2, 3 and 5 submit through the live nodes 0 and 2.
	if !waitUntil(120*time.Second, func() bool {
		return load.ackedBy(0) >= perWorker && load.ackedBy(2) >= perWorker && load.ackedBy(3) >= perWorker && load.ackedBy(5) >= perWorker
	}) {
		n, o := load.counts()
		t.Fatalf("the live nodes stopped taking mail: %d acknowledged, replies %v, errors %v", n, o, load.errs)
	}
	load.finish()
	victim.start()
	acked, other := load.counts()

	want := map[string]bool{}
	for _, s := range load.acked {
		want[s] = true
	}
	subjects := func() map[string]int { return subjectsOf(out.mx.Messages()) }
	var got map[string]int
	if !waitUntil(180*time.Second, func() bool {
		got = subjects()
		for s := range want {
			if got[s] == 0 {
				return false
			}
		}
		return true
	}) {
		missing := 0
		for s := range want {
			if got[s] == 0 {
				missing++
			}
		}
		t.Fatalf("%d of %d acknowledged messages never reached the receiver\nrestarted node log:\n%s", missing, len(want), victim.log.String())
	}
	twice, window := 0, 0
	for s, n := range got {
		switch {
		case n > 2 || (n == 2 && !beforeKill[s]):
			twice++
			t.Logf("delivered %d times by live nodes: %q", n, s)
		case n == 2:
			window++
			t.Logf("delivered again after the kill (node B's delivery was not yet recorded): %q", s)
		}
	}
	t.Logf("%d acknowledged (%d when node B was killed), %d other replies %v, %d connection failures; %d delivered, %d repeated from the kill window, %d more than once by live nodes",
		acked, killedAt, len(other), other, len(load.errs), len(got), window, twice)
	if twice > 0 {
		t.Errorf("%d messages delivered more than once by live nodes", twice)
	}
}

// TestPGMigrate: postern migrate copies a single-node installation (its
// server stopped) into PostgreSQL and verifies the copy by counts and by
// message trace; a node on PostgreSQL then signs the mailbox in with its
// old password and traces its old message. A running node's directory is
// refused.
func TestPGMigrate(t *testing.T) {
	in := newInstance(t)
	user := in.mailbox("scanner", "Scan-Pass-1")
	in.start()
	c := dialTLS(t, in.addrs["submissions"], in.tlsConfig())
	c.expect("EHLO scanner.contoso.com", "250")
	c.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00Scan-Pass-1")), "235 ")
	if r := c.send(user, []string{user}, message(user, user, "Before the move")); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("send: %q", r)
	}
	url := testpg.New(t)
	if out, err := exec.Command(binary, "migrate", "--from", "sqlite:"+in.data, "--to", url).CombinedOutput(); err == nil || !strings.Contains(string(out), "stop its server first") {
		t.Fatalf("migrate from a running node's directory: %v\n%s", err, out)
	}
	in.stop()
	out, err := exec.Command(binary, "migrate", "--from", "sqlite:"+in.data, "--to", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "message trace: the same 1 messages in both stores") {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	t.Logf("postern migrate:\n%s", out)

	node := &instance{t: t, data: t.TempDir(), extra: []string{"--store", url, "--secret-key-file", filepath.Join(in.data, "secret.key")}}
	node.start()
	if r := authReply(t, node, user, "Scan-Pass-1"); !strings.HasPrefix(r, "235 ") {
		t.Fatalf("AUTH on the PostgreSQL node: %q", r)
	}
	trace := pgAdmin(t, node.data, url, "shell", "-c", "Get-MessageTrace -SenderAddress "+user+" | Format-List Subject")
	if !strings.Contains(trace, "Before the move") {
		t.Errorf("Get-MessageTrace on the PostgreSQL node:\n%s", trace)
	}
}

// subjectsOf counts the receiver's messages by Subject.
func subjectsOf(msgs []testsmtp.Message) map[string]int {
	got := map[string]int{}
	for _, m := range msgs {
		for _, line := range strings.Split(string(m.Data), "\n") {
			if s, ok := strings.CutPrefix(strings.TrimSpace(line), "Subject: "); ok {
				got[s]++
				break
			}
		}
	}
	return got
}

// clusterLogin signs scanner@contoso.com in on a node's submission port
// (STARTTLS, AUTH PLAIN).
func clusterLogin(t *testing.T, in *instance) *smtpClient {
	t.Helper()
	c := dial(t, in.addrs["submission"])
	if got := c.login(in.tlsConfig(), "scanner@contoso.com", "Scan-Pass-1"); !strings.HasPrefix(got, "235") {
		t.Fatalf("AUTH: %q", got)
	}
	return c
}

// sendUntilAccepted sends on c until a message is accepted (250) or the
// deadline passes; it returns the last reply.
func sendUntilAccepted(c *smtpClient, deadline time.Duration, subject string) string {
	const user = "scanner@contoso.com"
	var got string
	waitUntil(deadline, func() bool {
		c.conn.SetDeadline(time.Now().Add(30 * time.Second))
		got = c.send(user, []string{user}, message(user, user, subject))
		if !strings.HasPrefix(got, "250") {
			time.Sleep(200 * time.Millisecond)
		}
		return strings.HasPrefix(got, "250")
	})
	return got
}

const concurrentRefusal = "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information."

// TestPGClusterConcurrentConnections: a mailbox's 3 concurrent SMTP AUTH
// connections hold across nodes: with one connection on each of three
// nodes, a 4th on any node gets Exchange's 432 4.3.2 at end of DATA, as
// on one node (TestConcurrentConnections); when one of the three quits, the
// 4th's next message is accepted. Then a node holding all three slots is
// killed with SIGKILL: its slots come free when their leases end (no
// node releases them), and a connection on a live node submits.
func TestPGClusterConcurrentConnections(t *testing.T) {
	c := newPGCluster(t, 3)
	const user = "scanner@contoso.com"
	var held []*smtpClient
	for i := range 3 {
		cl := clusterLogin(t, c.nodes[i])
		if got := cl.send(user, []string{user}, message(user, user, fmt.Sprint("slot ", i))); !strings.HasPrefix(got, "250") {
			t.Fatalf("connection %d on node %d: %q", i+1, i, got)
		}
		held = append(held, cl)
	}
	fourth := clusterLogin(t, c.nodes[1])
	if got := fourth.send(user, []string{user}, message(user, user, "fourth")); got != concurrentRefusal {
		t.Fatalf("a 4th connection (node 1) with one on each node: %q; want %q", got, concurrentRefusal)
	}
	held[0].expect("QUIT", "221")
	held[0].conn.Close()
	if got := sendUntilAccepted(fourth, 60*time.Second, "fourth again"); !strings.HasPrefix(got, "250") {
		t.Fatalf("the 4th connection after one of the three quit: %q", got)
	}
	for _, cl := range append(held[1:], fourth) {
		cl.expect("QUIT", "221")
		cl.conn.Close()
	}

	// Node 2 holds all three slots, and dies.
	victim := c.nodes[2]
	var onVictim []*smtpClient
	waitUntil(30*time.Second, func() bool { // the QUITs above are noticed asynchronously
		cl := clusterLogin(t, victim)
		if got := cl.send(user, []string{user}, message(user, user, "on the victim")); !strings.HasPrefix(got, "250") {
			cl.conn.Close()
			time.Sleep(200 * time.Millisecond)
			return false
		}
		onVictim = append(onVictim, cl)
		return len(onVictim) == 3
	})
	if len(onVictim) != 3 {
		t.Fatalf("node 2 could take only %d slots", len(onVictim))
	}
	survivor := clusterLogin(t, c.nodes[0])
	if got := survivor.send(user, []string{user}, message(user, user, "before the kill")); got != concurrentRefusal {
		t.Fatalf("a 4th connection (node 0) while node 2 holds three: %q", got)
	}
	victim.kill()
	killed := time.Now()
	if got := sendUntilAccepted(survivor, 120*time.Second, "after the kill"); !strings.HasPrefix(got, "250") {
		t.Fatalf("node 2's slots never came free after SIGKILL: %q\nnode 0 log:\n%s", got, c.nodes[0].log.String())
	}
	t.Logf("node 2's slots came free %v after SIGKILL (lease 30 s)", time.Since(killed).Round(time.Second))
}

// TestPGClusterAuthThrottle: failed sign-ins from one address spread over
// three nodes (a new name each time, so the per-account lockout stays out
// of it) are blocked at the same total as at one node: the 10th failure
// blocks the address, and the 11th attempt, whichever node it reaches,
// gets 421 4.7.0; with each node counting alone, it would have seen only
// 3 or 4 failures.
func TestPGClusterAuthThrottle(t *testing.T) {
	c := newPGCluster(t, 3)
	const blockAfter = 10 // auth.DefaultThrottleConfig.BlockAfter
	for i := range blockAfter {
		if r := authReply(t, c.nodes[i%3], fmt.Sprintf("guess%d@contoso.com", i), "wrong"); !strings.HasPrefix(r, "535 ") {
			t.Fatalf("failure %d (node %d): %q; want 535", i+1, i%3, r)
		}
	}
	for i, n := range c.nodes {
		if r := authReply(t, n, "scanner@contoso.com", "Scan-Pass-1"); !strings.HasPrefix(r, "421 4.7.0 ") {
			t.Errorf("node %d after %d failures over three nodes: %q; want 421 4.7.0 (the address blocked)", i, blockAfter, r)
		}
	}
}

// TestPGClusterSmartLockout: ten wrong passwords for one mailbox, each
// from another address and spread over three nodes, lock it for
// unfamiliar addresses on every node — the right password from a new
// address gets 535 5.7.3, as on one node (TestAuthSmartLockout) — while
// the address the device signed in from through node 0 is familiar to
// node 1 too and keeps working.
func TestPGClusterSmartLockout(t *testing.T) {
	c := newPGCluster(t, 3)
	const user, password = "scanner@contoso.com", "Scan-Pass-1"
	addr := func(i int) string { return c.nodes[i].addrs["submissions"] }
	if r := signInAndSend("127.0.0.20", addr(0), c.nodes[0].tlsConfig(), user, password, user); r != "" {
		t.Fatalf("the device's first sign-in (node 0): %s", r)
	}
	for i := range 10 {
		n := i % 3
		if r := attempt(fmt.Sprintf("127.0.2.%d", i+1), addr(n), c.nodes[n].tlsConfig(), user, fmt.Sprint("guess", i)); r != "535" {
			t.Fatalf("guess %d (node %d): %s", i+1, n, r)
		}
	}
	for n := range c.nodes {
		cl, _, err := dialAuth(fmt.Sprintf("127.0.2.%d", 50+n), addr(n), c.nodes[n].tlsConfig())
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := cl.auth(user, password); r != "535 5.7.3 Authentication unsuccessful" {
			t.Errorf("node %d: the right password from an unfamiliar address after 10 failures over three nodes: %q", n, r)
		}
		cl.close()
	}
	if r := signInAndSend("127.0.0.20", addr(1), c.nodes[1].tlsConfig(), user, password, user); r != "" {
		t.Fatalf("the familiar address during the lockout (node 1): %s", r)
	}
}

// TestPGClusterSlotsOutage: a connection that holds no slot (the
// mailbox's three are held through node 0) submits through node 1 while
// PostgreSQL is down: node 1 cannot count the slots and answers 451 4.3.0,
// a temporary failure, never 250 as if it held one. When the database is
// back the three slots still count (432 4.3.2), and once one of them is
// given up the connection submits.
func TestPGClusterSlotsOutage(t *testing.T) {
	pg := testpg.NewCluster(t)
	c := newPGClusterOn(t, pg.NewDatabase(t), 2)
	const user = "scanner@contoso.com"
	var held []*smtpClient
	for i := range 3 {
		cl := clusterLogin(t, c.nodes[0])
		if got := cl.send(user, []string{user}, message(user, user, fmt.Sprint("slot ", i))); !strings.HasPrefix(got, "250") {
			t.Fatalf("connection %d: %q", i+1, got)
		}
		held = append(held, cl)
	}
	fourth := clusterLogin(t, c.nodes[1])
	if got := fourth.send(user, []string{user}, message(user, user, "fourth")); got != concurrentRefusal {
		t.Fatalf("a 4th connection: %q", got)
	}
	pg.Stop(t)
	fourth.conn.SetDeadline(time.Now().Add(60 * time.Second))
	if got := fourth.send(user, []string{user}, message(user, user, "during the outage")); !strings.HasPrefix(got, "451 4.3.0 ") {
		t.Errorf("the 4th connection while PostgreSQL is down: %q; want 451 4.3.0", got)
	}
	// The log line is written before the reply, but reaches the test's
	// buffer through a pipe: wait for it.
	if !waitUntil(30*time.Second, func() bool {
		return strings.Contains(c.nodes[1].log.String(), "counting the mailbox's connection slots")
	}) {
		t.Errorf("node 1 did not log the failed slot count:\n%s", c.nodes[1].log.String())
	}
	pg.Start(t)
	var got string
	if !waitUntil(60*time.Second, func() bool {
		fourth.conn.SetDeadline(time.Now().Add(30 * time.Second))
		got = fourth.send(user, []string{user}, message(user, user, "after the outage"))
		return !strings.HasPrefix(got, "451 4.3.0 ")
	}) || got != concurrentRefusal {
		t.Fatalf("the 4th connection once PostgreSQL is back: %q; want %q", got, concurrentRefusal)
	}
	held[0].expect("QUIT", "221")
	held[0].conn.Close()
	if got := sendUntilAccepted(fourth, 60*time.Second, "a slot freed"); !strings.HasPrefix(got, "250") {
		t.Fatalf("the 4th connection after one of the three quit: %q", got)
	}
}
