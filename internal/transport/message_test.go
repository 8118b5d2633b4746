package transport

import (
	"slices"
	"strings"
	"testing"

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
			m, rep := ReadMessage(strings.NewReader(tt.in), limit)
			if tt.want != nil {
				if rep == nil || reply.String(rep) != reply.String(tt.want) {
					t.Fatalf("got %v, want %s", rep, reply.String(tt.want))
				}
				return
			}
			if rep != nil {
				t.Fatalf("refused: %s", reply.String(rep))
			}
			if string(m.Raw) != tt.in {
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
			m, rep := ReadMessage(strings.NewReader(tt.header+"\r\nbody\r\n"), 1<<20)
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
		m, rep := ReadMessage(strings.NewReader(string(b)), 1<<16)
		if rep != nil {
			return
		}
		m.Senders()
		m.Subject()
	})
}
