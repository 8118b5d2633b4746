package smtpclient

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		in, want string // want: Reply.String(), or "error"
		enhanced string
	}{
		{"250 OK\r\n", "250 OK", ""},
		{"250\r\n", "250", ""},
		{"550 5.1.1 user unknown\r\n", "550 5.1.1 user unknown", "5.1.1"},
		{"451 4.7.500 Access denied, please try again later\r\n", "451 4.7.500 Access denied, please try again later", "4.7.500"},
		{"550 4.1.1 class disagrees\r\n", "550 4.1.1 class disagrees", ""},
		{"250-mx.test\r\n250-SIZE 1000\r\n250 STARTTLS\r\n", "250 mx.test SIZE 1000 STARTTLS", ""},
		{"550-5.7.1 first\r\n550 5.7.1 second\r\n", "550 5.7.1 first second", "5.7.1"},
		{"250 bare LF\n", "250 bare LF", ""},
		{"hello there\r\n", "error", ""},
		{"25\r\n", "error", ""},
		{"650 six\r\n", "error", ""},
		{"250_x\r\n", "error", ""},
		{"250-a\r\n251 b\r\n", "error", ""},
		{"250-unterminated", "error", ""},
		{"250 " + strings.Repeat("x", 100000) + "\r\n", "error", ""},
		{strings.Repeat("250-x\r\n", 500) + "250 end\r\n", "error", ""},
	}
	for _, tt := range tests {
		rep, err := readReply(bufio.NewReader(strings.NewReader(tt.in)))
		if tt.want == "error" {
			if err == nil {
				t.Errorf("%q: want error, got %v", clip(tt.in), rep)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if rep.String() != tt.want || rep.Enhanced != tt.enhanced {
			t.Errorf("%q: got %q (enhanced %q), want %q (%q)", tt.in, rep.String(), rep.Enhanced, tt.want, tt.enhanced)
		}
	}
}

func TestErrorPermanent(t *testing.T) {
	if !(&Error{Reply: &Reply{Code: 550}}).Permanent() {
		t.Error("550 is permanent")
	}
	for _, e := range []*Error{{Reply: &Reply{Code: 451}}, {Step: "connect", Err: errors.New("refused")}} {
		if e.Permanent() {
			t.Errorf("%v is temporary", e)
		}
	}
}

// FuzzReadReply: whatever a server sends, the parser returns a reply or an
// error, never panics, and a reply it returns is a valid one.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250 OK\r\n", "250-a\r\n250 b\r\n", "550 5.1.1 x\r\n", "2", "\r\n", "250-\n250\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rep, err := readReply(bufio.NewReader(strings.NewReader(in)))
		if err != nil {
			return
		}
		if rep.Code < 200 || rep.Code > 599 || len(rep.Lines) == 0 || len(rep.Lines) > maxReplyLines {
			t.Fatalf("accepted an invalid reply: %+v", rep)
		}
	})
}
