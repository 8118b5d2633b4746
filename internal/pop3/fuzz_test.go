package pop3

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/testcert"
)

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"USER alice", "PASS a b c", "RETR 1", "TOP 1 10", "LIST", "list 2", " NOOP", "", "PASS \xff", "AUTH PLAIN =", "UIDL 99999999999", "DELE 1 2", "TOP -1 0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		verb, arg, perr := parseCommand(line)
		if perr != "" {
			if verb != "" || arg != "" {
				t.Fatalf("error %q with verb %q arg %q", perr, verb, arg)
			}
			return
		}
		if verb != strings.ToUpper(verb) || verb == "" {
			t.Fatalf("verb %q", verb)
		}
		if verb != "PASS" {
			for i := 0; i < len(arg); i++ {
				if arg[i] < 0x20 || arg[i] > 0x7e {
					t.Fatalf("argument %q passed with a byte outside printable ASCII", arg)
				}
			}
		}
		for _, count := range []int{1, 2} {
			for _, optional := range []bool{false, true} {
				msg, lines, perr := parseMessageArgs(arg, count, optional)
				if perr == "" && (msg < 0 || lines < 0 || msg > maxNumber || lines > maxNumber || (msg == 0 && !(optional && arg == ""))) {
					t.Fatalf("parseMessageArgs(%q) = %d, %d", arg, msg, lines)
				}
			}
		}
	})
}

// FuzzWriteMessage checks the streamed encoding against a plain
// reference: undoing the dot-stuffing gives back the message with CRLF
// line ends (RETR) or its header and first lines (TOP), and nothing in it
// can end the response early.
func FuzzWriteMessage(f *testing.F) {
	f.Add([]byte("H: 1\r\n\r\n.body\r\n"), -1)
	f.Add([]byte("a\nb\r\n.\r\n..\n"), 0)
	f.Add([]byte("a\r"), 1)
	f.Add([]byte("\r\n\r\n\r\n"), 2)
	f.Fuzz(func(t *testing.T, in []byte, lines int) {
		if lines < -1 {
			lines = -1
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := writeMessage(w, bytes.NewReader(in), lines); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		got := out.String()
		if !strings.HasSuffix(got, ".\r\n") {
			t.Fatalf("no terminator: %q", got)
		}
		body := strings.Split(strings.TrimSuffix(got, ".\r\n"), "\r\n")
		if body[len(body)-1] != "" {
			t.Fatalf("the terminator is not on a line of its own: %q", got)
		}
		body = body[:len(body)-1]
		for i, l := range body {
			if l == "." {
				t.Fatalf("line %d would end the response early: %q", i, got)
			}
			if strings.HasPrefix(l, ".") {
				body[i] = l[1:]
			} else if strings.Contains(l, "\n") {
				t.Fatalf("bare LF in output line %q", l)
			}
		}
		if want := referenceLines(in, lines); strings.Join(body, "\n") != strings.Join(want, "\n") || len(body) != len(want) {
			t.Fatalf("in %q lines %d:\n got %q\nwant %q", in, lines, body, want)
		}
	})
}

// referenceLines is the plain statement of what writeMessage sends.
func referenceLines(in []byte, bodyLines int) []string {
	parts := strings.Split(string(in), "\n")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	for i, p := range parts {
		parts[i] = strings.TrimSuffix(p, "\r")
	}
	if bodyLines < 0 {
		return parts
	}
	for i, p := range parts {
		if p == "" {
			return parts[:min(len(parts), i+1+bodyLines)]
		}
	}
	return parts
}

// FuzzSession feeds arbitrary client bytes to a whole session (plain text
// allowed, so every state is reachable) and asserts it ends: no panic, no
// hang, the maildrop closed.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"CAPA\r\nUSER alice\r\nPASS pw\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\nDELE 1\r\nRSET\r\nDELE 3\r\nQUIT\r\n",
		"AUTH PLAIN " + b64("\x00alice\x00pw") + "\r\nRETR 2\r\nLIST 9\r\nQUIT\r\n",
		"AUTH XOAUTH2\r\n" + b64("user=alice\x01auth=Bearer tok\x01\x01") + "\r\nUIDL 1\r\n",
		"AUTH OAUTHBEARER " + b64("n,,\x01auth=Bearer bad\x01\x01") + "\r\n\r\n",
		"AUTH PLAIN\r\n*\r\nUSER x\r\nPASS y\r\nPASS z\r\n",
		"STLS\r\n\x16\x03\x01\x00\x05hello",
		"USER " + strings.Repeat("a", 300) + "\r\n",
		"\r\n\r\n\r\n",
		"RETR 1\nTOP 1 0\nNOOP\n",
	} {
		f.Add([]byte(s))
	}
	tlsConfig := testcert.New(f, "localhost").ServerConfig()
	f.Fuzz(func(t *testing.T, input []byte) {
		store := newMemStore()
		box := store.addUser("alice", "pw", fixtureMessages()...)
		store.tokens["tok"] = "alice"
		srv := &Server{Auth: store, AllowInsecureAuth: true, TLSConfig: tlsConfig,
			PreAuthTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}
		sc, cc := net.Pipe()
		c := newConn(srv, sc, false)
		done := make(chan struct{})
		go func() { defer close(done); c.serve() }()
		go io.Copy(io.Discard, cc)
		wrote := make(chan struct{})
		go func() { defer close(wrote); cc.Write(input) }()
		select {
		case <-wrote:
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the session stopped reading without ending")
		}
		cc.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the session did not end")
		}
		if _, opens, closes := box.state(); opens != closes {
			t.Fatalf("maildrop opened %d times, closed %d", opens, closes)
		}
	})
}
