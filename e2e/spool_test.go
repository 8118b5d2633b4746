package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	_ "modernc.org/sqlite"

	"postern.dev/postern/internal/testsmtp"
)

// genReader produces a deterministic message of about size octets: a
// header with the given Message-ID, then numbered 78-octet lines drawn from
// a pool seeded by seed. Nothing of it is held in memory, so a test can
// send gigabytes; no line starts with a dot, so it goes on the wire as is.
type genReader struct {
	pending []byte
	pool    []byte
	line    [78]byte
	n, left int64
}

func newGen(from, to, messageID string, seed uint64, size int64) *genReader {
	g := &genReader{pool: make([]byte, 4096), left: size}
	r := rand.New(rand.NewPCG(seed, 42))
	for i := range g.pool {
		g.pool[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[r.IntN(64)]
	}
	g.pending = []byte(fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: large %s\r\nMessage-ID: <%s>\r\n\r\n", from, to, messageID, messageID))
	g.left -= int64(len(g.pending))
	return g
}

func (g *genReader) Read(p []byte) (int, error) {
	if len(g.pending) == 0 {
		if g.left <= 0 {
			return 0, io.EOF
		}
		l := g.line[:]
		strconv.AppendInt(l[:0], 100000000+g.n, 10) // 9 digits, never a leading dot
		l[9] = ' '
		off := (g.n * 67) % int64(len(g.pool)-67)
		copy(l[10:76], g.pool[off:off+66])
		l[76], l[77] = '\r', '\n'
		g.n++
		g.left -= int64(len(l))
		g.pending = l
	}
	n := copy(p, g.pending)
	g.pending = g.pending[n:]
	return n, nil
}

// sent is a message a server acknowledged: its Message-ID, the octets
// after DATA (before dot-stuffing; none is needed) and their SHA-256.
type sent struct {
	id   string
	size int64
	sum  [32]byte
}

// sendLarge sends one generated message in its own session with deadlines
// fit for tens of megabytes on a loaded machine, and returns the reply
// after the data.
func sendLarge(local, addr, from, to, id string, seed uint64, size int64) (sent, string, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return sent{}, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Minute))
	tp := textproto.NewConn(conn)
	read := func() (string, error) {
		var lines []string
		for {
			l, err := tp.ReadLine()
			if err != nil {
				return strings.Join(lines, "\n"), err
			}
			lines = append(lines, l)
			if len(l) < 4 || l[3] != '-' {
				return strings.Join(lines, "\n"), nil
			}
		}
	}
	cmd := func(line, want string) error {
		if line != "" {
			if err := tp.PrintfLine("%s", line); err != nil {
				return err
			}
		}
		got, err := read()
		if err == nil && !strings.HasPrefix(got, want) {
			err = fmt.Errorf("%q: %q", line, got)
		}
		return err
	}
	for _, c := range [][2]string{{"", "220"}, {"EHLO sender.example", "250"}, {"MAIL FROM:<" + from + ">", "250"},
		{"RCPT TO:<" + to + ">", "250"}, {"DATA", "354"}} {
		if err := cmd(c[0], c[1]); err != nil {
			return sent{}, "", err
		}
	}
	h := sha256.New()
	w := bufio.NewWriterSize(conn, 64<<10)
	n, err := io.Copy(io.MultiWriter(w, h), newGen(from, to, id, seed, size))
	if err != nil {
		return sent{}, "", err
	}
	if _, err := w.WriteString(".\r\n"); err != nil {
		return sent{}, "", err
	}
	if err := w.Flush(); err != nil {
		return sent{}, "", err
	}
	got, err := read()
	s := sent{id: id, size: n}
	copy(s.sum[:], h.Sum(nil))
	tp.PrintfLine("QUIT")
	return s, got, err
}

// openDB opens the instance's database read-only beside the server.
func (in *instance) openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(in.data, "postern.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// checkStored verifies that each message is stored intact: the stored
// body is the header fields Postern added followed by exactly the octets
// sent (same length, same SHA-256), read from the database and the body
// file, as an independent reader would.
func (in *instance) checkStored(t *testing.T, db *sql.DB, msgs []sent) {
	t.Helper()
	for _, m := range msgs {
		var head []byte
		var file sql.NullString
		var size int64
		err := db.QueryRow(`SELECT COALESCE(b.data, m.body), m.body_file, m.size FROM messages m
			LEFT JOIN message_bodies b ON b.message = m.id WHERE m.message_id = ?`, m.id).Scan(&head, &file, &size)
		if err != nil {
			t.Errorf("message %s: %v", m.id, err)
			continue
		}
		var r io.Reader = bytes.NewReader(head)
		if file.Valid {
			f, err := os.Open(filepath.Join(in.data, "bodies", file.String))
			if err != nil {
				t.Errorf("message %s: %v", m.id, err)
				continue
			}
			defer f.Close()
			r = io.MultiReader(r, f)
		}
		prefix := size - m.size
		if prefix < 0 {
			t.Errorf("message %s: stored %d octets, sent %d", m.id, size, m.size)
			continue
		}
		if _, err := io.CopyN(io.Discard, r, prefix); err != nil {
			t.Errorf("message %s: %v", m.id, err)
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil || n != m.size || !bytes.Equal(h.Sum(nil), m.sum[:]) {
			t.Errorf("message %s: %d of %d octets read back (err %v), hash equal: %v", m.id, n, m.size, err, bytes.Equal(h.Sum(nil), m.sum[:]))
		}
	}
}

// bodyFiles lists the files in the instance's bodies directory.
func (in *instance) bodyFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(in.data, "bodies"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// rss is the server's resident set size in octets (0 if unreadable).
func (in *instance) rss() int64 {
	kib, _ := in.procStatus("VmRSS")
	return kib << 10
}

// uploadCount is how many concurrent 50 MB uploads
// TestConcurrentLargeUploads makes: 20 by default (1 GB, within make
// test's budget on two cores), POSTERN_SPOOL_UPLOADS=100 for the issue's
// figure (5 GB; BENCHMARKS.md).
func uploadCount() int {
	if n, err := strconv.Atoi(os.Getenv("POSTERN_SPOOL_UPLOADS")); err == nil && n > 0 {
		return n
	}
	return 20
}

// TestConcurrentLargeUploads: concurrent 50 MB messages (anonymous, to a
// local mailbox; the platform maximum is 150 MB) are spooled to disk, not
// held in memory: the server's RSS, sampled from /proc throughout, grows
// by at most 200 MiB over its idle baseline, and every message is stored
// intact.
func TestConcurrentLargeUploads(t *testing.T) {
	const size = 50 << 20
	n := uploadCount()
	in := newInstance(t)
	sink := in.mailbox("sink", "Sink-Pass-1")
	// Anonymous mail is limited by the recipient's MaxReceiveSize (36 MB by default).
	in.admin("Set-Mailbox", "-Identity", sink, "-MaxReceiveSize", "150MB")
	in.start()

	var base int64
	for range 5 {
		base = max(base, in.rss())
		time.Sleep(20 * time.Millisecond)
	}
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := in.rss(); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
	}()

	start := time.Now()
	var mu sync.Mutex
	var acked []sent
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One loopback address per sender, as if from many devices.
			local := fmt.Sprintf("127.0.%d.%d", 1+i/200, 1+i%200)
			id := fmt.Sprintf("upload-%d@fabrikam.example", i)
			s, reply, err := sendLarge(local, in.addrs["mx"], "scanner@fabrikam.example", "sink@contoso.com", id, uint64(i), size)
			if err == nil && !strings.HasPrefix(reply, "250 2.0.0 OK <"+id+">") {
				err = fmt.Errorf("upload %d: %q", i, reply)
			}
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			acked = append(acked, s)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	growth := peak.Load() - base
	t.Logf("%d concurrent uploads of 50 MB in %v (%.0f MB/s); server RSS idle %d MiB, peak %d MiB, growth %d MiB",
		n, elapsed.Round(time.Millisecond), float64(n*size)/1e6/elapsed.Seconds(), base>>20, peak.Load()>>20, growth>>20)
	if growth > 200<<20 {
		t.Errorf("RSS grew by %d MiB with %d uploads in flight, want at most 200 MiB", growth>>20, n)
	}
	if len(acked) != n {
		t.Fatalf("%d of %d uploads acknowledged", len(acked), n)
	}
	if got := in.folderCount("sink@contoso.com", "Inbox"); got != n {
		t.Errorf("Inbox has %d items, want %d", got, n)
	}
	in.checkStored(t, in.openDB(t), acked)
	if left, _ := os.ReadDir(filepath.Join(in.data, "spool")); len(left) != 0 {
		t.Errorf("%d spool files left after the uploads", len(left))
	}
}

// TestLargeMessagesSurviveSIGKILL: while clients upload 5 MB messages, the
// server is killed with SIGKILL once a few have been acknowledged. After a
// restart every acknowledged message is there byte for byte, the spool is
// empty, and no body file is left that no message refers to (a body file
// planted as if a crash had come between the file and its commit is
// removed). Then Remove-Mailbox releases every body.
func TestLargeMessagesSurviveSIGKILL(t *testing.T) {
	const size = 5 << 20
	const senders = 6
	in := newInstance(t)
	in.mailbox("sink", "Sink-Pass-1")
	in.start()

	var mu sync.Mutex
	var acked []sent
	var wg sync.WaitGroup
	var stopped atomic.Bool
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; !stopped.Load(); j++ {
				id := fmt.Sprintf("kill-%d-%d@fabrikam.example", i, j)
				s, reply, err := sendLarge("", in.addrs["mx"], "scanner@fabrikam.example", "sink@contoso.com", id, uint64(i*1000+j), size)
				if err != nil || !strings.HasPrefix(reply, "250 2.0.0 OK <"+id+">") {
					return // the kill
				}
				mu.Lock()
				acked = append(acked, s)
				mu.Unlock()
			}
		}()
	}
	// Wait for a count, not for a time: a loaded machine is slow, not wrong.
	const want = 8
	waitUntil(5*time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= want
	})
	in.kill()
	stopped.Store(true)
	wg.Wait()
	if len(acked) < want {
		t.Fatalf("only %d messages acknowledged before the deadline", len(acked))
	}
	// What a crash between linking a body file and committing its row leaves.
	orphan := filepath.Join(in.data, "bodies", "00000000000000000000000000000000")
	if err := os.WriteFile(orphan, []byte("never committed"), 0o600); err != nil {
		t.Fatal(err)
	}
	// And an upload cut off by the crash (there are usually real ones too).
	if err := os.WriteFile(filepath.Join(in.data, "spool", "msg-interrupted"), []byte("From: x\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	in.start()
	db := in.openDB(t)
	in.checkStored(t, db, acked)
	if left, _ := os.ReadDir(filepath.Join(in.data, "spool")); len(left) != 0 {
		t.Errorf("%d spool files left after restart", len(left))
	}
	known := map[string]bool{}
	rows, err := db.Query("SELECT body_file FROM messages WHERE body_file IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var f string
		rows.Scan(&f)
		known[f] = true
	}
	rows.Close()
	files := in.bodyFiles(t)
	for _, f := range files {
		if !known[f] {
			t.Errorf("orphan body file %s after restart", f)
		}
	}
	if len(files) < len(acked) {
		t.Errorf("%d body files for %d acknowledged messages", len(files), len(acked))
	}
	t.Logf("%d messages of 5 MB acknowledged before SIGKILL, all intact afterwards; %d body files", len(acked), len(files))

	// Retention: the mailbox goes, and with it every body.
	in.admin("Remove-Mailbox", "-Identity", "sink@contoso.com")
	if files := in.bodyFiles(t); len(files) != 0 {
		t.Errorf("%d body files left after Remove-Mailbox", len(files))
	}
}

// TestSpooledRelayStreamedAndReleased: a 3 MB message relayed through an
// inbound connector is spooled, DKIM-signed and delivered by streaming; the
// receiver gets it intact with a signature that verifies; once delivered,
// nothing refers to it and its body file is removed.
func TestSpooledRelayStreamedAndReleased(t *testing.T) {
	o := newOutside(t, testsmtp.Config{})
	in := newInstance(t, o.flags(t)...)
	in.admin("New-InboundConnector", "-Name", "Printers", "-ConnectorType", "OnPremises", "-SenderIPAddresses", "127.0.0.5", "-RequireTls", "$false")
	in.admin("New-DkimSigningConfig", "-DomainName", "contoso.com", "-Enabled", "$true")
	record := fieldValue(in.shell("Get-DkimSigningConfig -Identity contoso.com | Format-List *"), "Selector1PublicKey")
	in.start()

	s, reply, err := sendLarge("127.0.0.5", in.addrs["mx"], "printer@contoso.com", "bob@fabrikam.example", "relay-1@contoso.com", 7, 3<<20)
	if err != nil || !strings.HasPrefix(reply, "250 ") {
		t.Fatalf("%v %q", err, reply)
	}
	msgs, err := o.mx.WaitMessages(1, 2*time.Minute)
	if err != nil {
		t.Fatalf("%v\n%s", err, in.log.String())
	}
	data := msgs[0].Data
	if int64(len(data)) < s.size || sha256.Sum256(data[int64(len(data))-s.size:]) != s.sum {
		t.Errorf("the receiver got %d octets that do not end with the %d sent", len(data), s.size)
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		if name == "selector1._domainkey.contoso.com" {
			return []string{record}, nil
		}
		return nil, fmt.Errorf("no TXT for %s", name)
	}})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil {
		t.Errorf("DKIM: %v %+v", err, verifs)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(in.bodyFiles(t)) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if files := in.bodyFiles(t); len(files) != 0 {
		t.Errorf("body files %v remain after delivery", files)
	}
	var released bool
	if err := in.openDB(t).QueryRow("SELECT body_released FROM messages WHERE message_id = ?", "relay-1@contoso.com").Scan(&released); err != nil || !released {
		t.Errorf("message row after delivery: released %v, %v (its metadata stays for trace)", released, err)
	}
}

// TestBDATSpooled: a message sent in BDAT chunks (RFC 3030) is spooled
// like DATA and stored intact; a bare LF in a late chunk is refused with
// the same reply as in DATA, and leaves nothing behind.
func TestBDATSpooled(t *testing.T) {
	in := newInstance(t)
	in.mailbox("sink", "Sink-Pass-1")
	in.start()
	c := dial(t, in.addrs["mx"])
	c.conn.SetDeadline(time.Now().Add(5 * time.Minute))
	if got := c.do("EHLO sender.example"); !strings.Contains(got, "CHUNKING") {
		t.Fatalf("no CHUNKING in %q", got)
	}
	var msg bytes.Buffer
	io.Copy(&msg, newGen("scanner@fabrikam.example", "sink@contoso.com", "bdat-1@fabrikam.example", 3, 3<<20))
	raw := msg.Bytes()
	sendChunks := func(raw []byte) string {
		c.expect("MAIL FROM:<scanner@fabrikam.example>", "250")
		c.expect("RCPT TO:<sink@contoso.com>", "250")
		const chunk = 1 << 20
		for off := 0; off < len(raw); off += chunk {
			end := min(off+chunk, len(raw))
			last := ""
			if end == len(raw) {
				last = " LAST"
			}
			fmt.Fprintf(c.conn, "BDAT %d%s\r\n", end-off, last)
			c.conn.Write(raw[off:end])
			if got := c.read(); last != "" {
				return got
			} else if !strings.HasPrefix(got, "250") {
				return got
			}
		}
		return ""
	}
	if got := sendChunks(raw); !strings.HasPrefix(got, "250 2.0.0 OK <bdat-1@fabrikam.example>") {
		t.Fatalf("BDAT: %q", got)
	}
	in.checkStored(t, in.openDB(t), []sent{{id: "bdat-1@fabrikam.example", size: int64(len(raw)), sum: sha256.Sum256(raw)}})
	var file sql.NullString
	in.openDB(t).QueryRow("SELECT body_file FROM messages WHERE message_id = 'bdat-1@fabrikam.example'").Scan(&file)
	if !file.Valid {
		t.Error("a 3 MB BDAT message was not stored as a body file")
	}

	bad := append(append([]byte{}, raw[:2<<20]...), []byte("bare\nLF\r\n")...)
	bad = append(bad, raw[2<<20:]...)
	if got := sendChunks(bad); got != "550 5.6.11 Message contains bare CR or LF characters; lines must end with CRLF (RFC 5321 section 2.3.8)" {
		t.Errorf("bare LF in a late BDAT chunk: %q", got)
	}
	if left, _ := os.ReadDir(filepath.Join(in.data, "spool")); len(left) != 0 {
		t.Errorf("%d spool files left", len(left))
	}
	if got := in.folderCount("sink@contoso.com", "Inbox"); got != 1 {
		t.Errorf("Inbox has %d items, want 1", got)
	}
}
