package smtpserver

import (
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
)

// fakeTranscript records what the engine reports, one string an event.
type fakeTranscript struct {
	mu     sync.Mutex
	events []string
	closed chan struct{}
}

func (f *fakeTranscript) add(e string) { f.mu.Lock(); f.events = append(f.events, e); f.mu.Unlock() }
func (f *fakeTranscript) Received(line string, sasl bool) {
	f.add(fmt.Sprintf("< %s sasl=%v", line, sasl))
}
func (f *fakeTranscript) Sent(reply string) { f.add("> " + strings.TrimRight(reply, "\r\n")) }
func (f *fakeTranscript) Message(n int64)   { f.add(fmt.Sprintf("* %d", n)) }
func (f *fakeTranscript) Close()            { f.add("-"); close(f.closed) }

type authRecSession struct{ recSession }

func (authRecSession) AuthMechanisms() []string { return []string{"PLAIN"} }
func (authRecSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(string, string, string) error { return nil }), nil
}

// TestTranscript: the hook sees every client line (SASL responses marked
// as such), every reply, a message by size only, and the close; a server
// without the hook works as before (every other engine test).
func TestTranscript(t *testing.T) {
	tr := &fakeTranscript{closed: make(chan struct{})}
	addr, _, _ := startEngine(t, func(s *Server) {
		s.AllowInsecureAuth = true
		s.Backend = BackendFunc(func(*Conn) (Session, error) { return authRecSession{recSession{&recorder{}}}, nil })
		s.Transcript = func(*Conn) Transcript { return tr }
	})
	c := dialEngine(t, addr)
	c.expect("EHLO client.test", "250 ")
	c.expect("AUTH PLAIN", "334 ")
	c.expect(base64.StdEncoding.EncodeToString([]byte("\x00user\x00secret")), "235 ")
	c.expect("MAIL FROM:<a@b.test>", "250 ")
	c.expect("RCPT TO:<c@d.test>", "250 ")
	c.expect("DATA", "354 ")
	c.expect("Subject: x\r\n\r\nbody\r\n.", "250 ")
	c.expect("BDAT 7 LAST\r\nhello", "503 ") // no transaction: refused, chunk still counted
	c.expect("QUIT", "221 ")
	select {
	case <-tr.closed:
	case <-time.After(20 * time.Second):
		t.Fatal("transcript not closed")
	}
	tr.mu.Lock()
	got := strings.Join(tr.events, "\n")
	tr.mu.Unlock()
	for _, want := range []string{"> 220 ", "< EHLO client.test sasl=false", "< AUTH PLAIN sasl=false", "> 334 ",
		"sasl=true", "> 235 ", "< DATA sasl=false", "> 354 ", "* 20\n> 250 ", "< BDAT 7 LAST sasl=false\n* 7", "< QUIT sasl=false\n> 221 ", "\n-"} {
		if !strings.Contains(got, want) {
			t.Errorf("transcript lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "body") || strings.Contains(got, "Subject") {
		t.Errorf("transcript has the message body:\n%s", got)
	}
}
