package protolog

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMask(t *testing.T) {
	for _, tc := range []struct {
		line string
		sasl bool
		want string
	}{
		{"AUTH PLAIN AHVzZXIAc2VjcmV0", false, "AUTH PLAIN ****"},
		{"auth plain AHVzZXIAc2VjcmV0", false, "auth plain ****"},
		{"AUTH XOAUTH2 dXNlcj1...", false, "AUTH XOAUTH2 ****"},
		{"AUTH LOGIN", false, "AUTH LOGIN"},
		{"AUTH LOGIN dXNlcg==", false, "AUTH LOGIN ****"},
		{"c2VjcmV0", true, "****"},
		{"*", true, "*"},
		{"MAIL FROM:<a@b.test>", false, "MAIL FROM:<a@b.test>"},
		{"AUTHX PLAIN x y", false, "AUTHX PLAIN x y"},
		{"", false, ""},
	} {
		if got := Mask(tc.line, tc.sasl); got != tc.want {
			t.Errorf("Mask(%q, %v) = %q, want %q", tc.line, tc.sasl, got, tc.want)
		}
	}
}

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Verbose("Client Frontend") {
		t.Fatal("verbose by default")
	}
	l.SetVerbose("Client Frontend", true)
	if !l.Verbose("Client Frontend") || l.Verbose("Default Frontend") {
		t.Fatal("SetVerbose")
	}
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	s := l.Session("Client Frontend", a)
	s.Sent("250-Hello\r\n250 SIZE 1\r\n")
	s.Received(`MAIL FROM:<"a,b"@c.test>`, false)
	s.Message(42)
	s.Close()
	l.Session("Client Frontend", b).Close()
	recs, err := l.Read(Query{ClientIP: a})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Event+" "+r.Data)
		if r.Remote != "192.0.2.1" || r.Connector != "Client Frontend" || r.Session != s.ID() {
			t.Errorf("record %+v", r)
		}
	}
	want := "+ |> 250-Hello|> 250 SIZE 1|< MAIL FROM:<\"a,b\"@c.test>|* <message of 42 bytes>|- "
	if strings.Join(got, "|") != want {
		t.Errorf("got %q\nwant %q", strings.Join(got, "|"), want)
	}
	if recs, _ := l.Read(Query{Limit: 2}); len(recs) != 2 || recs[1].Remote != "192.0.2.2" {
		t.Errorf("limit keeps the newest: %+v", recs)
	}
	if recs, _ := l.Read(Query{Since: time.Now().Add(time.Hour)}); len(recs) != 0 {
		t.Errorf("since: %+v", recs)
	}
}

// TestRotation: files rotate at the size limit, and the total stays
// bounded; files past the maximum age are removed.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l, err := Open(dir, Limits{MaxFileSize: 1000, MaxAge: 48 * time.Hour, MaxTotalSize: 5000})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.now = func() time.Time { now = now.Add(time.Millisecond); return now }
	s := l.Session("Default Frontend", netip.MustParseAddr("192.0.2.1"))
	for range 500 {
		s.Received(strings.Repeat("x", 50), false)
	}
	files, _ := l.files()
	if len(files) < 4 {
		t.Fatalf("only %d files", len(files))
	}
	var total int64
	for _, f := range files {
		fi, _ := os.Stat(f)
		if fi.Size() > 1000 {
			t.Errorf("%s is %d bytes", f, fi.Size())
		}
		total += fi.Size()
	}
	if total > 5000 {
		t.Errorf("total %d over the limit", total)
	}
	// Age: an old file goes at the next rotation.
	old := filepath.Join(dir, "RECV20000101T000000.000000000.log")
	os.WriteFile(old, []byte(header), 0o600)
	os.Chtimes(old, now.Add(-72*time.Hour), now.Add(-72*time.Hour))
	for range 50 {
		s.Received(strings.Repeat("y", 50), false)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("old file kept: %v", err)
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add(`2026-12-02T16:00:00Z,Client Frontend,0001,3,192.0.2.1,<,"MAIL FROM:<a@b>"` + "\n")
	f.Add("x,y\n")
	f.Fuzz(func(t *testing.T, line string) {
		r, ok := ParseRecord(line)
		if !ok || strings.ContainsAny(r.Data+r.Connector+r.Session+r.Remote+r.Event, "\n") {
			return
		}
		again, ok := ParseRecord(formatRecord(r))
		if !ok || !again.Time.Equal(r.Time) || again.Data != r.Data || again.Remote != r.Remote || again.Sequence != r.Sequence ||
			again.Connector != r.Connector || again.Session != r.Session || again.Event != r.Event {
			t.Fatalf("round trip of %q: %+v, %v", line, again, ok)
		}
	})
}

// BenchmarkRecord is the cost of one logged line (a command or a reply
// line) on a Verbose listener; listeners at None pay nothing per line.
func BenchmarkRecord(b *testing.B) {
	l, err := Open(b.TempDir(), DefaultLimits)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	s := l.Session("Client Frontend", netip.MustParseAddr("192.0.2.1"))
	b.ReportAllocs()
	for b.Loop() {
		s.Received("RCPT TO:<someone@contoso.com>", false)
	}
}

// BenchmarkVerboseOff is the per-connection check of a listener at None.
func BenchmarkVerboseOff(b *testing.B) {
	l, err := Open(b.TempDir(), DefaultLimits)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.SetVerbose("Client Frontend", true)
	b.ReportAllocs()
	for b.Loop() {
		if l.Verbose("Default Frontend") {
			b.Fatal("on")
		}
	}
}
