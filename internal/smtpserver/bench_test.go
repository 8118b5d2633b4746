package smtpserver

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// discardSession accepts every transaction and reads the message away.
type discardSession struct{}

func (discardSession) Reset()                               {}
func (discardSession) Logout() error                        { return nil }
func (discardSession) Mail(string, *smtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (discardSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }

// benchEngine serves on loopback and returns a connection past EHLO.
func benchEngine(b *testing.B) (net.Conn, *bufio.Reader) {
	b.Helper()
	addr, _, _ := startEngine(b, func(s *Server) {
		s.Backend = BackendFunc(func(*Conn) (Session, error) { return discardSession{}, nil })
		s.MaxLineLength = 1000
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	r := bufio.NewReader(conn)
	readReplies(b, r, 1)
	io.WriteString(conn, "EHLO client.test\r\n")
	readReplies(b, r, 1)
	return conn, r
}

// readReplies reads n whole replies and fails on any that is not 2xx or 3xx.
func readReplies(b *testing.B, r *bufio.Reader, n int) {
	for n > 0 {
		line, err := r.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line[0] != '2' && line[0] != '3' {
			b.Fatalf("reply %q", line)
		}
		if len(line) < 4 || line[3] != '-' {
			n--
		}
	}
}

// BenchmarkPipelinedCommands measures the command loop: 100 NOOPs sent in
// one write, answered in one.
func BenchmarkPipelinedCommands(b *testing.B) {
	conn, r := benchEngine(b)
	batch := strings.Repeat("NOOP\r\n", 100)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		io.WriteString(conn, batch)
		readReplies(b, r, 100)
	}
}

// BenchmarkTransaction measures one pipelined transaction with a small
// message (MAIL, RCPT, DATA, the message, RSET).
func BenchmarkTransaction(b *testing.B) {
	conn, r := benchEngine(b)
	msg := "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n" +
		"Subject: bench\r\n\r\n" + strings.Repeat("A line of the message body, 40 octets.\r\n", 50) + ".\r\nRSET\r\n"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		io.WriteString(conn, msg)
		readReplies(b, r, 5)
	}
}
