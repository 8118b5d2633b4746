package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWriteMessage(t *testing.T) {
	long := strings.Repeat("x", messageBufferSize+100)
	tests := []struct {
		name  string
		in    string
		lines int
		want  string
	}{
		{"empty message", "", -1, "."},
		{"CRLF kept", "a\r\nb\r\n", -1, "a\r\nb\r\n."},
		{"bare LF becomes CRLF", "a\nb\n", -1, "a\r\nb\r\n."},
		{"mixed line ends", "a\r\nb\nc\r\n", -1, "a\r\nb\r\nc\r\n."},
		{"CR inside a line is kept", "a\rb\r\n", -1, "a\rb\r\n."},
		{"last line without its end gets one", "a\r\nb", -1, "a\r\nb\r\n."},
		{"a lone CR at the end ends the line", "a\r", -1, "a\r\n."},
		{"dot-stuffing", ".\r\n..\r\n.a\r\nb.\r\n", -1, "..\r\n...\r\n..a\r\nb.\r\n."},
		{"a dot line without CRLF at the end", "a\r\n.", -1, "a\r\n..\r\n."},
		{"TOP 0: the header and the empty line", "H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\n", 0, "H: 1\r\nH: 2\r\n\r\n."},
		{"TOP 1", "H: 1\r\n\r\nb1\r\nb2\r\n", 1, "H: 1\r\n\r\nb1\r\n."},
		{"TOP 2 with LF ends", "H: 1\n\nb1\nb2\nb3\n", 2, "H: 1\r\n\r\nb1\r\nb2\r\n."},
		{"TOP past the end", "H: 1\r\n\r\nb1\r\n", 10, "H: 1\r\n\r\nb1\r\n."},
		{"TOP of a message without a body", "H: 1\r\nH: 2\r\n", 0, "H: 1\r\nH: 2\r\n."},
		{"TOP counts empty body lines", "H: 1\r\n\r\n\r\n\r\nb\r\n", 2, "H: 1\r\n\r\n\r\n\r\n."},
		{"TOP: a dotted body line is stuffed", "H: 1\r\n\r\n.b\r\nc\r\n", 1, "H: 1\r\n\r\n..b\r\n."},
		{"a line longer than the buffer", long + "\r\n.x\r\n", -1, long + "\r\n..x\r\n."},
		{"CRLF split across the buffer boundary", strings.Repeat("y", messageBufferSize-1) + "\r\nz\r\n", -1, strings.Repeat("y", messageBufferSize-1) + "\r\nz\r\n."},
		{"a CR that ends a full buffer, then text", strings.Repeat("y", messageBufferSize-1) + "\rq\r\n", -1, strings.Repeat("y", messageBufferSize-1) + "\rq\r\n."},
		{"a long header line does not end the header", "H: " + long + "\r\n\r\nb\r\nc\r\n", 1, "H: " + long + "\r\n\r\nb\r\n."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Also through a reader that returns a byte at a time.
			for _, src := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				var out bytes.Buffer
				w := bufio.NewWriter(&out)
				if err := writeMessage(w, src, tc.lines); err != nil {
					t.Fatal(err)
				}
				w.Flush()
				if got := out.String(); got != tc.want+"\r\n" {
					t.Fatalf("got  %q\nwant %q", trunc(got), trunc(tc.want+"\r\n"))
				}
			}
		})
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:100] + "..." + s[len(s)-100:]
	}
	return s
}

func TestWriteMessageErrors(t *testing.T) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	err := writeMessage(w, iotest.TimeoutReader(strings.NewReader(strings.Repeat("a\r\n", 100000))), -1)
	var se errSource
	if !errors.As(err, &se) {
		t.Fatalf("a failing message read gave %v", err)
	}
	w = bufio.NewWriterSize(failingWriter{}, 16)
	if err := writeMessage(w, strings.NewReader(strings.Repeat("a\r\n", 100)), -1); err == nil || errors.As(err, &se) {
		t.Fatalf("a failing client write gave %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("client gone") }

func TestUIDL(t *testing.T) {
	for _, uid := range []string{"a", strings.Repeat("z", 70), "AAQkADAwATM0MDAAMS1iNWI0LTk2NjMtMDACLTAwCgBGAAAD"} {
		if got := uidlOf(uid); got != uid {
			t.Errorf("uidlOf(%q) = %q", uid, got)
		}
	}
	for _, uid := range []string{"", "with space", strings.Repeat("z", 71), "é", "a\x00"} {
		got := uidlOf(uid)
		if got == uid || len(got) > 70 || uidlOf(uid) != got || strings.ContainsAny(got, " \x00") {
			t.Errorf("uidlOf(%q) = %q", uid, got)
		}
	}
	if uidlOf("a b") == uidlOf("a c") {
		t.Error("digests collide")
	}
}

// bigMessage is a generated message of about size octets: a header, then
// lines that all begin with "." (the worst case for dot-stuffing). Nothing
// of it is held in memory.
func bigMessage(uid string, size int64) memMsg {
	body := size - int64(len(bigHeader))
	lines := body / int64(len(bigLine))
	return memMsg{uid: uid, size: int64(len(bigHeader)) + lines*int64(len(bigLine)), gen: func() io.ReadCloser {
		return &genReader{lines: lines}
	}}
}

const (
	bigHeader = "From: big@contoso.com\r\nSubject: big\r\n\r\n"
	bigLine   = ".0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
)

type genReader struct {
	lines  int64
	off    int // in the current piece
	header bool
	closed bool
}

func (g *genReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		piece := bigLine
		if !g.header {
			piece = bigHeader
		} else if g.lines == 0 {
			break
		}
		c := copy(p[n:], piece[g.off:])
		n += c
		g.off += c
		if g.off == len(piece) {
			g.off = 0
			if !g.header {
				g.header = true
			} else {
				g.lines--
			}
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (g *genReader) Close() error { g.closed = true; return nil }

// TestRetrieveFiftyMegabytes: a 50 MB message streams to the client in
// constant memory: what the whole test allocates, client included, is a
// small fraction of the message.
func TestRetrieveFiftyMegabytes(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB transfer")
	}
	const size = 50 << 20
	store := newMemStore()
	msg := bigMessage("BIG", size)
	store.addUser("alice@contoso.com", "pw", msg)
	addr := startServer(t, &Server{Auth: store, AllowInsecureAuth: true}, false)
	cl := dial(t, addr, nil)
	cl.line()
	runSteps(t, cl, []step{{send: "USER alice@contoso.com", want: "+OK"}, {send: "PASS pw", want: okLoggedOn}})

	lines := (msg.size - int64(len(bigHeader))) / int64(len(bigLine))
	want := int64(len("+OK\r\n")) + msg.size + lines + int64(len(".\r\n")) // every body line stuffed

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cl.send("RETR 1\r\n")
	got, tail := readUntilTerminator(t, cl.r)
	runtime.ReadMemStats(&after)
	if got != want {
		t.Fatalf("received %d octets, want %d (tail %q)", got, want, tail)
	}
	if !bytes.HasSuffix(tail, []byte("xyz\r\n.\r\n")) {
		t.Fatalf("the response ends %q", tail)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("RETR of %d MB: %d octets sent, %d KiB allocated in all", size>>20, got, alloc>>10)
	if alloc > 4<<20 {
		t.Fatalf("allocated %d bytes for a %d-byte message: not streamed", alloc, size)
	}
	// TOP reads only what it sends, and closes the message.
	runSteps(t, cl, []step{{send: "TOP 1 2", want: "+OK\r\nFrom: big@contoso.com\r\nSubject: big\r\n\r\n" + "." + strings.Repeat(strings.TrimSuffix(bigLine, "\r\n")+"\r\n.", 2)}})
}

// readUntilTerminator counts the octets of a multi-line response up to and
// including its ".\r\n", with a fixed buffer.
func readUntilTerminator(t *testing.T, r *bufio.Reader) (int64, []byte) {
	buf := make([]byte, 64<<10)
	var n int64
	var tail []byte
	last := make([]byte, 0, 64)
	for {
		k, err := r.Read(buf)
		n += int64(k)
		last = append(last, buf[:k]...)
		if len(last) > 32 {
			last = append(last[:0], last[len(last)-32:]...)
		}
		if bytes.HasSuffix(last, []byte("\r\n.\r\n")) {
			tail = last
			return n, tail
		}
		if err != nil {
			t.Fatalf("after %d octets: %v", n, err)
		}
	}
}
