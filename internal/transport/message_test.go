package transport

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"postern.dev/postern/internal/reply"
)

func TestReadMessage(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *reply.Reply
	}{
		{name: "good", in: "From: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n"},
		{name: "no body", in: "From: a@b.example\r\n"},
		{name: "no header", in: "\r\nbody\r\n"},
		{name: "empty", in: ""},
		{name: "bare LF in body", in: "From: a@b.example\r\n\r\nline\nmore\r\n", want: reply.BareLineEnding},
		{name: "bare CR in body", in: "From: a@b.example\r\n\r\nline\rmore\r\n", want: reply.BareLineEnding},
		{name: "smuggling sequence", in: "From: a@b.example\r\n\r\nx\r\n\n.\r\nMAIL FROM:<x@y>\r\n", want: reply.BareLineEnding},
		{name: "trailing CR", in: "From: a@b.example\r\n\r\nx\r", want: reply.BareLineEnding},
		{name: "NUL", in: "From: a@b.example\r\n\r\nx\x00y\r\n", want: reply.NULInMessage},
		{name: "too large", in: "From: a@b.example\r\n\r\n" + strings.Repeat("x", 100) + "\r\n", want: reply.MessageTooLarge(64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := int64(1 << 20)
			if tt.name == "too large" {
				limit = 64
			}
			m, rep := ReadMessage(strings.NewReader(tt.in), limit, t.TempDir())
			if tt.want != nil {
				if rep == nil || reply.String(rep) != reply.String(tt.want) {
					t.Fatalf("got %v, want %s", rep, reply.String(tt.want))
				}
				return
			}
			if rep != nil {
				t.Fatalf("refused: %s", reply.String(rep))
			}
			defer m.Close()
			if got := readAll(t, m); got != tt.in {
				t.Error("raw bytes changed")
			}
		})
	}
}

func TestSenders(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		from    []string
		sender  string
		wantErr bool
	}{
		{name: "plain", header: "From: Sean@Contoso.com\r\n", from: []string{"sean@contoso.com"}},
		{name: "display name", header: "From: \"Kim, Sean\" <sean@contoso.com>\r\n", from: []string{"sean@contoso.com"}},
		{name: "encoded display name", header: "From: =?utf-8?q?J=C3=B6rg?= <jorg@contoso.com>\r\n", from: []string{"jorg@contoso.com"}},
		{name: "two From with Sender", header: "From: a@contoso.com, b@contoso.com\r\nSender: a@contoso.com\r\n", from: []string{"a@contoso.com", "b@contoso.com"}, sender: "a@contoso.com"},
		{name: "no From", header: "Subject: x\r\n", from: nil},
		{name: "bad From", header: "From: not an address\r\n", wantErr: true},
		{name: "duplicate From", header: "From: a@contoso.com\r\nFrom: b@contoso.com\r\n", wantErr: true},
		{name: "duplicate Sender", header: "From: a@contoso.com\r\nSender: a@contoso.com\r\nSender: b@contoso.com\r\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, rep := ReadMessage(strings.NewReader(tt.header+"\r\nbody\r\n"), 1<<20, t.TempDir())
			if rep != nil {
				t.Fatal(reply.String(rep))
			}
			from, sender, err := m.Senders()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (!slices.Equal(from, tt.from) || sender != tt.sender) {
				t.Errorf("got %v %q, want %v %q", from, sender, tt.from, tt.sender)
			}
		})
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte("From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n"))
	f.Add([]byte("From: =?utf-8?b?w7Y=?= <a@b>\r\nSender: c@d\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// A small threshold's worth of limit keeps the fuzzer in memory;
		// FuzzReadMessageSpooled covers the file path.
		m, rep := ReadMessage(strings.NewReader(string(b)), 1<<16, "")
		if want := oneShot(b, 1<<16); (rep == nil) != (want == nil) || (rep != nil && reply.String(rep) != reply.String(want)) {
			t.Fatalf("streaming verdict %v, whole-message verdict %v", rep, want)
		}
		if rep != nil {
			return
		}
		defer m.Close()
		if got := readAll(t, m); got != string(b) {
			t.Fatal("raw bytes changed")
		}
		m.Senders()
		m.Subject()
	})
}

func readAll(t testing.TB, m *Message) string {
	t.Helper()
	b, err := io.ReadAll(m.Reader())
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != m.Size() {
		t.Fatalf("Size %d, read %d", m.Size(), len(b))
	}
	return string(b)
}

// oneShot is the pre-streaming ReadMessage's verdict on a whole message
// (size, then NUL, then bare line endings, then the header section): the
// streaming reader must reach the same one.
func oneShot(raw []byte, limit int64) *reply.Reply {
	if int64(len(raw)) > limit {
		return reply.MessageTooLarge(limit)
	}
	if bytes.IndexByte(raw, 0) >= 0 {
		return reply.NULInMessage
	}
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '\r':
			if i+1 >= len(raw) || raw[i+1] != '\n' {
				return reply.BareLineEnding
			}
			i++
		case '\n':
			return reply.BareLineEnding
		}
	}
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	switch {
	case bytes.HasPrefix(raw, []byte("\r\n")):
		end = 0
	case end < 0:
		end = len(raw)
	}
	if end > maxHeaderBytes {
		return reply.HeaderTooLarge
	}
	m := &Message{mem: raw, size: int64(len(raw))}
	return m.parseHeader(int64(end))
}

// TestReadMessageSpooled: a message over SpoolThreshold goes to a file in
// the spool directory, intact, read in small pieces; Close removes it.
func TestReadMessageSpooled(t *testing.T) {
	dir := t.TempDir()
	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789\r\n", 20000) // 1.5 MB
	raw := "From: a@b.example\r\nSubject: big\r\n\r\n" + body
	m, rep := ReadMessage(iotest.OneByteReader(strings.NewReader(raw[:100]+"")), 1<<30, dir)
	if rep != nil {
		t.Fatal(reply.String(rep))
	}
	m.Close()
	m, rep = ReadMessage(iotest.HalfReader(strings.NewReader(raw)), 1<<30, dir)
	if rep != nil {
		t.Fatal(reply.String(rep))
	}
	if _, ok := m.InMemory(); ok || m.SpoolFile() == "" {
		t.Fatal("a 1.5 MB message stayed in memory")
	}
	if m.Subject() != "big" {
		t.Errorf("Subject %q", m.Subject())
	}
	if sha256.Sum256([]byte(readAll(t, m))) != sha256.Sum256([]byte(raw)) {
		t.Error("spooled bytes differ")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("spool not emptied: %v", left)
	}

	// Refusals found late in a spooled message leave no file behind, and
	// keep the whole-message precedence (NUL before a bare LF).
	for _, tt := range []struct {
		name, raw string
		want      *reply.Reply
	}{
		{"bare LF late", raw + "x\ny\r\n", reply.BareLineEnding},
		{"bare LF then NUL", raw[:70000] + "x\ny" + raw[70000:] + "\x00\r\n", reply.NULInMessage},
		{"trailing CR", raw + "x\r", reply.BareLineEnding},
		{"header too large", "X-Big: " + strings.Repeat("a", 990) + "\r\n" + strings.Repeat("X-More: "+strings.Repeat("b", 990)+"\r\n", 1100) + "\r\nx\r\n", reply.HeaderTooLarge},
	} {
		if got, rep := ReadMessage(strings.NewReader(tt.raw), 1<<30, dir); rep == nil || reply.String(rep) != reply.String(tt.want) {
			if got != nil {
				got.Close()
			}
			t.Errorf("%s: got %v, want %s", tt.name, rep, reply.String(tt.want))
		}
		if want := oneShot([]byte(tt.raw), 1<<30); reply.String(want) != reply.String(tt.want) {
			t.Errorf("%s: the whole-message verdict is %s", tt.name, reply.String(want))
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("refused messages left spool files: %v", left)
	}
}

// errReader fails after some bytes, as the DATA reader does on a line too
// long or a bare CR (it returns the reply to send).
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestReadMessageReaderReply(t *testing.T) {
	dir := t.TempDir()
	big := "From: a@b.example\r\n\r\n" + strings.Repeat("x\r\n", 100000)
	_, rep := ReadMessage(&errReader{strings.NewReader(big), reply.LineTooLong}, 1<<30, dir)
	if rep == nil || reply.String(rep) != reply.String(reply.LineTooLong) {
		t.Fatalf("got %v, want the reader's reply", rep)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("spool not emptied: %v", left)
	}
}

// FuzzReadMessageSpooled runs the streaming checks on messages that go to
// a spool file (the memory limit lowered to a few octets, so that every
// input crosses it), in odd read sizes, against the whole-message verdict.
func FuzzReadMessageSpooled(f *testing.F) {
	f.Add([]byte("From: a@b.example\r\n\r\nbody\r\n"), uint8(7))
	f.Add([]byte("\r\n\r\n\x00"), uint8(1))
	f.Add([]byte("a\r\n\r"), uint8(3))
	defer func(n int) { memLimit = n }(memLimit)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte, limit uint8) {
		memLimit = int(limit % 32)
		m, rep := ReadMessage(iotest.HalfReader(bytes.NewReader(raw)), 1<<16, dir)
		want := oneShot(raw, 1<<16)
		if (rep == nil) != (want == nil) || (rep != nil && reply.String(rep) != reply.String(want)) {
			t.Fatalf("streaming verdict %v, whole-message verdict %v", rep, want)
		}
		if rep != nil {
			return
		}
		defer m.Close()
		if got := readAll(t, m); got != string(raw) {
			t.Fatal("raw bytes changed")
		}
		m.Senders()
		m.Subject()
	})
}

// TestWithHead: the first head goes in the room in front of the message,
// sharing its bytes; a second head (another organization's commit) or one
// too large for the room gets a copy; the message itself never changes.
func TestWithHead(t *testing.T) {
	raw := "From: a@b.example\r\n\r\nbody\r\n"
	m, rep := NewMessage([]byte(raw))
	if rep != nil {
		t.Fatal(rep)
	}
	mem, ok := m.InMemory()
	if !ok {
		t.Fatal("a small message should stay in memory")
	}
	check := func(name string, got []byte, head string, shared bool) {
		t.Helper()
		if string(got) != head+raw {
			t.Fatalf("%s: got %q, want %q", name, got, head+raw)
		}
		if s := &got[len(head)] == &mem[0]; s != shared {
			t.Fatalf("%s: shares the message's bytes = %v, want %v", name, s, shared)
		}
		if string(mem) != raw {
			t.Fatalf("%s: the message changed to %q", name, mem)
		}
		if got = append(got, "more"...); string(mem) != raw {
			t.Fatalf("%s: appending to the result changed the message", name)
		}
	}
	check("too large", m.WithHead(bytes.Repeat([]byte{'x'}, headRoom+1)), strings.Repeat("x", headRoom+1), false)
	first := m.WithHead([]byte("Received: one\r\n"))
	check("first", first, "Received: one\r\n", true)
	second := m.WithHead([]byte("Received: two\r\n"))
	check("second", second, "Received: two\r\n", false)
	if string(first) != "Received: one\r\n"+raw {
		t.Fatalf("the second head overwrote the first: %q", first)
	}

	empty, rep := NewMessage(nil)
	if rep != nil {
		t.Fatal(rep)
	}
	if got := empty.WithHead([]byte("Received: x\r\n")); string(got) != "Received: x\r\n" {
		t.Fatalf("empty message: got %q", got)
	}
}
