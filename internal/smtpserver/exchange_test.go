package smtpserver

import (
	"bufio"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestExchangeTranscript plays a whole session and compares every line the
// engine writes, continuation lines included, with Exchange Online's
// (reference section 1.2 and Exchange's transport replies).
func TestExchangeTranscript(t *testing.T) {
	addr, _, _ := startEngine(t, func(s *Server) { s.EnableSMTPUTF8 = true })
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	readReply := func() []string {
		var lines []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("after %q: %v", lines, err)
			}
			lines = append(lines, strings.TrimSuffix(line, "\r\n"))
			if len(line) < 4 || line[3] != '-' {
				return lines
			}
		}
	}
	greeting := readReply()
	if len(greeting) != 1 || !regexp.MustCompile(`^220 mx\.test Postern ESMTP MAIL Service ready at [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000 \[[0-9A-Za-z]+\]$`).MatchString(greeting[0]) {
		t.Fatalf("greeting %q", greeting)
	}
	steps := []struct {
		send string
		want []string
	}{
		{"EHLO client.test", []string{"250-mx.test Hello [127.0.0.1]", "250-SIZE 1048576", "250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250-CHUNKING", "250 SMTPUTF8"}},
		{"HELO client.test", []string{"250 mx.test Hello [127.0.0.1]"}},
		{"HELP", []string{"214-This server supports the following commands:", "214 HELO EHLO STARTTLS RCPT DATA RSET MAIL QUIT HELP AUTH BDAT"}},
		{"NOOP", []string{"250 2.0.0 OK"}},
		{"VRFY sean", []string{"252 2.1.5 Cannot VRFY user"}},
		{"EXPN staff", []string{"502 5.3.3 Command not implemented"}},
		{"STARTTLS", []string{"500 5.3.3 Unrecognized command"}},
		{"AUTH LOGIN", []string{"504 5.7.4 Unrecognized authentication type"}},
		{"RCPT TO:<a@b.test>", []string{"503 5.5.2 Need mail command"}},
		{"MAIL FROM:<a@b.test> NOTIFY=NEVER", []string{"501 5.5.4 Unrecognized parameter"}},
		{"MAIL FROM:<a@b.test> BODY=BINARYMIME", []string{"501 5.5.4 Unrecognized parameter"}},
		{"MAIL FROM:<a@b.test> BODY=7BITX", []string{"501 5.5.4 Unsupported BODY type"}},
		{"MAIL FROM:<a@b.test> SIZE=99999999", []string{"552 5.3.4 Message size exceeds fixed maximum message size"}},
		{"DATA", []string{"503 5.5.2 Need rcpt command"}},
		{"MAIL FROM:<a@b.test>", []string{"250 2.1.0 Sender OK"}},
		{"MAIL FROM:<a@b.test>", []string{"503 5.5.2 Sender already specified"}},
		{"RCPT TO:<c@d.test> ORCPT=rfc822;c@d.test", []string{"501 5.5.4 Unrecognized parameter"}},
		{"RCPT TO:<c@d.test>", []string{"250 2.1.5 Recipient OK"}},
		{"DATA x", []string{"501 5.5.4 Invalid arguments"}},
		{"DATA", []string{"354 Start mail input; end with <CRLF>.<CRLF>"}},
		{"Subject: x\r\n\r\nbody\r\n.", []string{"250 2.0.0 OK"}},
		{"MAIL FROM:<a@b.test>", []string{"250 2.1.0 Sender OK"}},
		{"RCPT TO:<c@d.test>", []string{"250 2.1.5 Recipient OK"}},
		{"BDAT 4\r\nab", []string{"250 2.6.0 CHUNK received OK, 4 octets"}},
		{"MAIL FROM:<a@b.test>", []string{"503 5.5.1 Bad sequence of commands"}},
		{"BDAT x", []string{"501 5.5.4 Invalid arguments"}},
		{"RSET", []string{"250 2.0.0 Resetting"}},
		{"EHLO", []string{"501 5.0.0 EHLO requires domain address"}},
		{"HELO", []string{"501 5.0.0 HELO requires domain address"}},
		{"EHLO MacBook..", []string{"501 5.5.4 Invalid domain name"}},
		{"QUIT", []string{"221 2.0.0 Service closing transmission channel"}},
	}
	for _, st := range steps {
		io.WriteString(conn, st.send+"\r\n")
		if got := readReply(); strings.Join(got, "\n") != strings.Join(st.want, "\n") {
			t.Errorf("%q:\n got %q\nwant %q", st.send, got, st.want)
		}
	}
}

func TestValidHelo(t *testing.T) {
	for _, tt := range []struct {
		arg  string
		want bool
	}{
		{"mail.contoso.com", true},
		{"mail.contoso.com.", true},
		{"PRINTER01", true}, // bare host names are common on devices
		{"host_name.local", true},
		{"[192.0.2.1]", true},
		{"[IPv6:2001:db8::1]", true},
		{"MacBook..", false},
		{".contoso.com", false},
		{"a..b", false},
		{"[]", false},
		{"[192.0.2.1", false},
		{"bad\x01name", false},
		{"semi;colon", false},
		{strings.Repeat("a", 256), false},
	} {
		if got := validHelo(tt.arg); got != tt.want {
			t.Errorf("validHelo(%q) = %v, want %v", tt.arg, got, tt.want)
		}
	}
}

func FuzzValidHelo(f *testing.F) {
	for _, s := range []string{"mail.contoso.com", "[192.0.2.1]", "MacBook..", "", ".", "[", "a.b."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validHelo(s) && (strings.ContainsAny(s, " \r\n\t") || strings.Contains(strings.TrimSuffix(s, "."), "..") && !strings.HasPrefix(s, "[")) {
			t.Fatalf("validHelo(%q) accepted a name no domain can be", s)
		}
	})
}
