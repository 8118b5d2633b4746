package smtpserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

func readData(in string, max int64, maxLine int) (string, error) {
	d := newDataReader(bufio.NewReaderSize(strings.NewReader(in), 16), max, maxLine)
	out, err := io.ReadAll(d)
	return string(out), err
}

func TestDataReader(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		err            error
	}{
		{"plain", "a\r\nb\r\n.\r\n", "a\r\nb\r\n", nil},
		{"empty message", ".\r\n", "", nil},
		{"dot-stuffed line", "..x\r\n...\r\n.\r\n", ".x\r\n..\r\n", nil},
		{"dot inside a line stays", "a.b\r\n.\r\n", "a.b\r\n", nil},
		// The smuggling case: ".\r" then not LF. The bare CR must reach the
		// message checks; go-smtp dropped ".\r" here.
		{"dot CR X shows the bare CR", "a\r\n.\rX\r\n.\r\n", "a\r\n\rX\r\n", nil},
		{"dot CR CR LF", "a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n", nil},
		{"bare LF dot bare LF is no terminator", "a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", nil},
		{"LF dot CRLF after a bare LF is no terminator", "a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", nil},
		{"bare CR passes", "a\rb\r\n.\r\n", "a\rb\r\n", nil},
		{"CR CR LF", "a\r\r\n.\r\n", "a\r\r\n", nil},
		{"NUL passes", "a\x00b\r\n.\r\n", "a\x00b\r\n", nil},
		{"client gone", "a\r\nb", "a\r\nb", io.ErrUnexpectedEOF},
		{"client gone after dot", "a\r\n.", "a\r\n", io.ErrUnexpectedEOF},
		{"line of exactly the limit", strings.Repeat("x", 20) + "\r\n.\r\n", strings.Repeat("x", 20) + "\r\n", nil},
		{"line over the limit", strings.Repeat("x", 21) + "\r\n.\r\n", "", errLineTooLong},
		{"too large", strings.Repeat("abcdefgh\r\n", 11) + ".\r\n", "", errTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readData(tc.in, 100, 20)
			if !errors.Is(err, tc.err) && err != tc.err {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.err == nil && got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// The terminator leaves what follows it unread: a pipelined command after
// the message is the next command, not part of the message.
func TestDataReaderStopsAtTerminator(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("hi\r\n.\r\nQUIT\r\n"))
	out, err := io.ReadAll(newDataReader(br, 1<<20, 1000))
	if err != nil || string(out) != "hi\r\n" {
		t.Fatalf("%q %v", out, err)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "QUIT\r\n" {
		t.Fatalf("left %q", rest)
	}
}

// dotStuff is what a correct client sends for a message with CRLF line
// endings (RFC 5321 section 4.5.2).
func dotStuff(msg string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(msg, "\r\n") {
		if strings.HasPrefix(line, ".") {
			b.WriteByte('.')
		}
		b.WriteString(line)
	}
	return b.String() + ".\r\n"
}

// Every message with proper line endings comes back byte for byte, at
// every read size.
func TestDataReaderRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", ".", " ", "\r\n", "..", "\r\n.", "\t", "é"}
	for i := 0; i < 2000; i++ {
		var b strings.Builder
		for j := rng.IntN(60); j > 0; j-- {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		msg := b.String()
		if msg != "" && !strings.HasSuffix(msg, "\r\n") {
			msg += "\r\n"
		}
		d := newDataReader(bufio.NewReaderSize(strings.NewReader(dotStuff(msg)), 16), 1<<20, 1000)
		var out bytes.Buffer
		buf := make([]byte, 1+rng.IntN(7))
		for {
			n, err := d.Read(buf)
			out.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%q: %v", msg, err)
			}
		}
		if out.String() != msg {
			t.Fatalf("sent %q, got %q", msg, out.String())
		}
	}
}

// unstuff is a plain reference for proper input (CRLF line endings only):
// lines up to the one that is a lone ".", each without one leading dot.
func unstuff(in string) (string, bool) {
	var b strings.Builder
	for {
		line, rest, ok := strings.Cut(in, "\r\n")
		if !ok {
			return "", false // no terminator
		}
		if line == "." {
			return b.String(), true
		}
		b.WriteString(strings.TrimPrefix(line, "."))
		b.WriteString("\r\n")
		in = rest
	}
}

// FuzzDataReader: the reader never panics, never yields more than its
// maximum, and for input with proper line endings yields what the
// reference does.
func FuzzDataReader(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", ".\rX\r\n.\r\n", "..\r\n.\r\n", "a\n.\n", "\r\n.\r", strings.Repeat("x", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := readData(in, 1<<20, 1<<20)
		if len(out) > len(in) {
			t.Fatalf("yielded %d bytes from %d", len(out), len(in))
		}
		if strings.ContainsAny(strings.ReplaceAll(in, "\r\n", ""), "\r\n") {
			return
		}
		want, ok := unstuff(in)
		if ok != (err == nil) || (ok && out != want) {
			t.Fatalf("input %q read as %q, %v; reference %q, %v", in, out, err, want, ok)
		}
		if _, err := readData(in, 8, 1<<20); err == nil && len(want) > 8 {
			t.Fatalf("yielded more than the maximum")
		}
	})
}

// stepReference reads DATA one byte at a time through step alone, the
// state machine that the reader's fast paths must agree with.
func stepReference(in string, max int64, maxLine int) (string, error) {
	d := &dataReader{max: max, maxLine: maxLine, buf: make([]byte, 0, 2)}
	var out []byte
	for i := 0; i < len(in); i++ {
		o := d.step(in[i])
		if d.err != nil {
			return string(out), d.err
		}
		if !d.count(int64(len(o))) {
			return string(out), d.err
		}
		out = append(out, o...)
		if d.state == stateEOF {
			return string(out), nil
		}
	}
	return string(out), io.ErrUnexpectedEOF
}

// FuzzDataReaderFastPath: on any input (bare CR and LF, dots, NUL, long
// lines), with any buffer and read size, the reader yields what step alone
// yields, and fails where step fails; the terminator leaves the rest
// unread.
func FuzzDataReaderFastPath(f *testing.F) {
	for _, s := range []string{
		"a\r\n.\r\n", ".\rX\r\n.\r\n", "..\r\n.\r\n", "a\n.\n", "\r\n.\r", "ab\rc\r\n\n.\r\n",
		strings.Repeat("0123456789\r\n", 30) + ".\r\nQUIT\r\n", strings.Repeat("x", 50) + "\r\n.\r\n",
	} {
		f.Add(s, uint16(16), uint8(7), uint16(1000), uint8(40))
	}
	f.Fuzz(func(t *testing.T, in string, bufSize uint16, readSize uint8, max uint16, maxLine uint8) {
		bufSize = 16 + bufSize%4096
		want, wantErr := stepReference(in, int64(max), int(maxLine))
		br := bufio.NewReaderSize(strings.NewReader(in), int(bufSize))
		d := newDataReader(br, int64(max), int(maxLine))
		var out bytes.Buffer
		buf := make([]byte, 1+int(readSize))
		var err error
		for {
			var n int
			n, err = d.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				break
			}
		}
		if wantErr == nil {
			if err != io.EOF || out.String() != want {
				t.Fatalf("input %q: read %q, %v; step alone %q", in, out.String(), err, want)
			}
			rest, _ := io.ReadAll(br)
			if consumed := len(in) - len(rest); !strings.HasSuffix(in[:consumed], "\r\n.\r\n") && in[:consumed] != ".\r\n" {
				t.Fatalf("input %q: stopped after %q", in, in[:consumed])
			}
			return
		}
		if err == io.EOF {
			t.Fatalf("input %q: read %q to the end; step alone fails with %v", in, out.String(), wantErr)
		}
		if wantErr == io.ErrUnexpectedEOF && err != io.ErrUnexpectedEOF {
			t.Fatalf("input %q: %v, step alone %v", in, err, wantErr)
		}
	})
}
