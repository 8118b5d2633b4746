package pop3

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/testcert"
)

const (
	msg1 = "From: a@contoso.com\r\nSubject: one\r\n\r\nHello\r\n.dot line\r\n"
	msg2 = "From: b@contoso.com\nSubject: two\n\nline1\nline2\nline3\n" // LF only
	msg3 = "Subject: three\r\n\r\nno newline at end"
)

func fixtureMessages() []memMsg {
	return []memMsg{
		{uid: "AAA1", text: msg1},
		{uid: "AAA2", text: msg2},
		{uid: "odd uid", text: msg3}, // not a valid UIDL: shown as a digest
	}
}

// step is one command and the exact response it must get (lines joined
// by CRLF); eof: then the server has closed the connection.
type step struct {
	send string
	raw  string // sent as it is, after send
	want string
	eof  bool
}

func runSteps(t *testing.T, cl *client, steps []step) {
	t.Helper()
	for i, st := range steps {
		if st.send != "" {
			cl.send(st.send + "\r\n")
		}
		if st.raw != "" {
			cl.send(st.raw)
		}
		if st.want != "" {
			got := cl.lines(strings.Count(st.want, "\r\n") + 1)
			if got != st.want {
				t.Fatalf("step %d %q:\n got %q\nwant %q", i, st.send, got, st.want)
			}
		}
		if st.eof {
			cl.eof()
		}
	}
}

const capaPlain = "+OK\r\nTOP\r\nUIDL\r\nSTLS\r\nRESP-CODES\r\nPIPELINING\r\n."

func TestSessions(t *testing.T) {
	odd := uidlOf("odd uid")
	signIn := []step{
		{send: "USER alice@contoso.com", want: "+OK"},
		{send: "PASS secret pass", want: okLoggedOn},
	}
	tests := []struct {
		name     string
		insecure bool
		setup    func(*memStore, *memBox)
		steps    []step
		// afterDeleted and afterSeen are what the maildrop must have
		// deleted and marked read at the end.
		afterDeleted []string
		afterSeen    []string
	}{
		{
			name: "plain port: CAPA names STLS and no way to sign in",
			steps: []step{
				{send: "CAPA", want: capaPlain},
				{send: "NOOP", want: errBadState},
				{send: "QUIT", want: okSigningOff, eof: true},
			},
		},
		{
			name: "plain port: USER, AUTH and PASS before STLS are refused, the third closes",
			steps: []step{
				{send: "USER alice@contoso.com", want: errBadState},
				{send: "AUTH PLAIN AGFsaWNlAHNlY3JldA==", want: errBadState},
				{send: "PASS secret", want: errBadState + closing, eof: true},
			},
		},
		{
			name:     "transaction: STAT LIST UIDL RETR TOP DELE RSET QUIT",
			insecure: true,
			steps: append(slices.Clone(signIn), []step{
				{send: "STAT", want: fmt.Sprintf("+OK 3 %d", len(msg1)+len(msg2)+len(msg3))},
				{send: "LIST", want: fmt.Sprintf("+OK 3 %d\r\n1 %d\r\n2 %d\r\n3 %d\r\n.", len(msg1)+len(msg2)+len(msg3), len(msg1), len(msg2), len(msg3))},
				{send: "LIST 2", want: fmt.Sprintf("+OK 2 %d", len(msg2))},
				{send: "UIDL", want: "+OK\r\n1 AAA1\r\n2 AAA2\r\n3 " + odd + "\r\n."},
				{send: "UIDL 1", want: "+OK 1 AAA1"},
				{send: "RETR 1", want: "+OK\r\nFrom: a@contoso.com\r\nSubject: one\r\n\r\nHello\r\n..dot line\r\n."},
				{send: "RETR 2", want: "+OK\r\nFrom: b@contoso.com\r\nSubject: two\r\n\r\nline1\r\nline2\r\nline3\r\n."},
				{send: "RETR 3", want: "+OK\r\nSubject: three\r\n\r\nno newline at end\r\n."},
				{send: "TOP 2 1", want: "+OK\r\nFrom: b@contoso.com\r\nSubject: two\r\n\r\nline1\r\n."},
				{send: "TOP 1 0", want: "+OK\r\nFrom: a@contoso.com\r\nSubject: one\r\n\r\n."},
				{send: "TOP 1 99", want: "+OK\r\nFrom: a@contoso.com\r\nSubject: one\r\n\r\nHello\r\n..dot line\r\n."},
				{send: "DELE 1", want: "+OK"},
				{send: "DELE 1", want: errDeleted},
				{send: "RETR 1", want: errDeleted},
				{send: "LIST 1", want: errDeleted},
				{send: "STAT", want: fmt.Sprintf("+OK 2 %d", len(msg2)+len(msg3))},
				{send: "LIST", want: fmt.Sprintf("+OK 2 %d\r\n2 %d\r\n3 %d\r\n.", len(msg2)+len(msg3), len(msg2), len(msg3))},
				{send: "RSET", want: "+OK"},
				{send: "STAT", want: fmt.Sprintf("+OK 3 %d", len(msg1)+len(msg2)+len(msg3))},
				{send: "dele 3", want: "+OK"},
				{send: "DELE 2", want: "+OK"},
				{send: "RETR 1", want: "+OK\r\nFrom: a@contoso.com\r\nSubject: one\r\n\r\nHello\r\n..dot line\r\n."},
				{send: "NOOP", want: "+OK"},
				{send: "QUIT", want: okSigningOff + " 2 messages deleted.", eof: true},
			}...),
			afterDeleted: []string{"AAA2", "odd uid"},
			afterSeen:    []string{"AAA1"}, // retrieved after RSET, not deleted
		},
		{
			name:     "TOP does not mark read, RETR does, RSET forgets it",
			insecure: true,
			steps: append(slices.Clone(signIn), []step{
				{send: "TOP 1 0", want: "+OK\r\nFrom: a@contoso.com\r\nSubject: one\r\n\r\n."},
				{send: "RETR 2", want: "+OK\r\nFrom: b@contoso.com\r\nSubject: two\r\n\r\nline1\r\nline2\r\nline3\r\n."},
				{send: "RSET", want: "+OK"},
				{send: "RETR 3", want: "+OK\r\nSubject: three\r\n\r\nno newline at end\r\n."},
				{send: "QUIT", want: okSigningOff, eof: true},
			}...),
			afterSeen: []string{"odd uid"},
		},
		{
			name:     "message numbers: out of range, zero, not a number, wrong argument count",
			insecure: true,
			steps: append(slices.Clone(signIn), []step{
				{send: "RETR 4", want: errOutOfRange},
				{send: "LIST 99999", want: errOutOfRange},
				{send: "TOP 4 1", want: errOutOfRange},
				{send: "NOOP", want: "+OK"},
				{send: "RETR 0", want: errBadArgument},
				{send: "RETR", want: errArgumentCount},
				{send: "TOP 1 x", want: errBadArgument + closing, eof: true},
			}...),
		},
		{
			name:     "huge numbers are bad arguments, not overflows",
			insecure: true,
			steps: append(slices.Clone(signIn), []step{
				{send: "RETR 99999999999999999999", want: errBadArgument},
				{send: "TOP 1 -1", want: errBadArgument},
				{send: "QUIT", want: okSigningOff, eof: true},
			}...),
		},
		{
			name:     "connection dropped without QUIT deletes nothing",
			insecure: true,
			steps: append(slices.Clone(signIn), []step{
				{send: "DELE 1", want: "+OK"},
			}...),
			afterDeleted: nil,
		},
		{
			name:     "QUIT with nothing marked deletes nothing",
			insecure: true,
			steps: append(slices.Clone(signIn), []step{
				{send: "QUIT", want: okSigningOff, eof: true},
			}...),
		},
		{
			name:     "QUIT says when deletions fail",
			insecure: true,
			setup:    func(_ *memStore, b *memBox) { b.deleteErr = errors.New("disk full") },
			steps: append(slices.Clone(signIn), []step{
				{send: "DELE 1", want: "+OK"},
				{send: "QUIT", want: errNotRemoved, eof: true},
			}...),
		},
		{
			name:     "a message removed since the snapshot",
			insecure: true,
			setup:    func(_ *memStore, b *memBox) { b.msgs[1].gone = true },
			steps: append(slices.Clone(signIn), []step{
				{send: "RETR 2", want: errDeleted},
				{send: "RETR 1", want: "+OK\r\nFrom: a@contoso.com\r\nSubject: one\r\n\r\nHello\r\n..dot line\r\n."},
			}...),
		},
		{
			name:     "wrong password three times closes",
			insecure: true,
			steps: []step{
				{send: "USER alice@contoso.com", want: "+OK"},
				{send: "PASS wrong", want: "-ERR " + textLogonFail},
				{send: "USER alice@contoso.com", want: "+OK"},
				{send: "PASS", want: "-ERR " + textLogonFail},
				{send: "AUTH PLAIN " + b64("\x00alice@contoso.com\x00nope"), want: "-ERR " + textAuthFail + closing, eof: true},
			},
		},
		{
			name:     "a temporary refusal carries SYS/TEMP and is not counted",
			insecure: true,
			setup: func(s *memStore, _ *memBox) {
				s.refusals["busy@contoso.com"] = &Refusal{Temporary: true}
				s.refusals["slow@contoso.com"] = &Refusal{Temporary: true, Text: "[LOGIN-DELAY] Try again in a minute."}
			},
			steps: []step{
				{send: "USER busy@contoso.com", want: "+OK"},
				{send: "PASS x", want: "-ERR [SYS/TEMP] Server Unavailable. 21"},
				{send: "USER busy@contoso.com", want: "+OK"},
				{send: "PASS x", want: "-ERR [SYS/TEMP] Server Unavailable. 21"},
				{send: "USER slow@contoso.com", want: "+OK"},
				{send: "PASS x", want: "-ERR [LOGIN-DELAY] Try again in a minute."},
				{send: "USER busy@contoso.com", want: "+OK"},
				{send: "PASS x", want: "-ERR [SYS/TEMP] Server Unavailable. 21"},
				{send: "QUIT", want: okSigningOff, eof: true},
			},
		},
		{
			name:     "a refusal that closes, with the sign-in service's text",
			insecure: true,
			setup: func(s *memStore, _ *memBox) {
				s.refusals["blocked@contoso.com"] = &Refusal{Close: true, Text: "Logon failure: blocked.\r\ninjected"}
			},
			steps: []step{
				{send: "USER blocked@contoso.com", want: "+OK"},
				{send: "PASS x", want: "-ERR Logon failure: blocked.  injected" + closing, eof: true},
			},
		},
		{
			name:     "an Authenticator error that is not a refusal is temporary",
			insecure: true,
			setup: func(s *memStore, _ *memBox) {
				s.refusals["err@contoso.com"] = errors.New("database is locked")
			},
			steps: []step{
				{send: "USER err@contoso.com", want: "+OK"},
				{send: "PASS x", want: errUnavailable},
			},
		},
		{
			name:     "the maildrop cannot be listed",
			insecure: true,
			setup:    func(_ *memStore, b *memBox) { b.listErr = errors.New("io error") },
			steps: append(slices.Clone(signIn[:1]), []step{
				{send: "PASS secret pass", want: errUnavailable},
				{send: "STAT", want: errBadState},
			}...),
		},
		{
			name:     "state errors: PASS without USER, USER twice, STLS without TLS, transaction commands before sign-in",
			insecure: true,
			steps: []step{
				{send: "PASS x", want: errBadState},
				{send: "USER a", want: "+OK"},
				{send: "USER b", want: errBadState},
				{send: "QUIT", want: okSigningOff, eof: true},
			},
		},
		{
			name:     "after sign-in USER, AUTH and STLS are not valid",
			insecure: true,
			steps: append(slices.Clone(signIn), []step{
				{send: "USER alice@contoso.com", want: errBadState},
				{send: "AUTH PLAIN", want: errBadState},
				{send: "CAPA", want: "+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\nUSER\r\nSTLS\r\nRESP-CODES\r\nPIPELINING\r\n."},
				{send: "STLS", want: errBadState + closing, eof: true},
			}...),
		},
		{
			name:     "unknown commands, APOP, leading space, non-ASCII",
			insecure: true,
			steps: []step{
				{send: "APOP mrose c4c9334bac560ecc979e58001b3e22fb", want: errUnknownCommand},
				{send: " CAPA", want: errUnknownCommand},
				{send: "USER \xc3\xa9", want: errNotASCII + closing, eof: true},
			},
		},
		{
			name:     "an empty line is a bad command",
			insecure: true,
			steps: []step{
				{send: "", want: ""},
				{send: "\r\nNOOP", want: errUnknownCommand + "\r\n" + errBadState},
			},
		},
		{
			name:     "AUTH lists its mechanisms",
			insecure: true,
			steps: []step{
				{send: "AUTH", want: "+OK\r\nPLAIN\r\nXOAUTH2\r\nOAUTHBEARER\r\n."},
				{send: "AUTH CRAM-MD5", want: errBadArgument},
				{send: "AUTH PLAIN a b", want: errArgumentCount},
			},
		},
		{
			name:     "AUTH PLAIN with an initial response",
			insecure: true,
			steps: []step{
				{send: "AUTH PLAIN " + b64("\x00alice@contoso.com\x00secret pass"), want: okAuthed},
				{send: "STAT", want: fmt.Sprintf("+OK 3 %d", len(msg1)+len(msg2)+len(msg3))},
			},
		},
		{
			name:     "AUTH PLAIN after an empty challenge",
			insecure: true,
			steps: []step{
				{send: "auth plain", want: "+ "},
				{send: b64("alice@contoso.com\x00alice@contoso.com\x00secret pass"), want: okAuthed},
			},
		},
		{
			name:     "AUTH cancelled with *, and an undecodable response",
			insecure: true,
			steps: []step{
				{send: "AUTH PLAIN", want: "+ "},
				{send: "*", want: "-ERR " + textAuthCancl},
				{send: "AUTH PLAIN", want: "+ "},
				{send: "not base64!", want: "-ERR " + textAuthFail},
				{send: "AUTH PLAIN =", want: "-ERR " + textAuthFail + closing, eof: true},
			},
		},
		{
			name:     "AUTH XOAUTH2: a good token, as Exchange's two-line form",
			insecure: true,
			setup:    func(s *memStore, _ *memBox) { s.tokens["tok-alice"] = "alice@contoso.com" },
			steps: []step{
				{send: "AUTH XOAUTH2", want: "+ "},
				{send: b64("user=alice@contoso.com\x01auth=Bearer tok-alice\x01\x01"), want: okAuthed},
				{send: "LIST 1", want: fmt.Sprintf("+OK 1 %d", len(msg1))},
			},
		},
		{
			name:     "AUTH XOAUTH2: a refused token gets the error challenge, then the refusal",
			insecure: true,
			steps: []step{
				{send: "AUTH XOAUTH2 " + b64("user=alice@contoso.com\x01auth=Bearer forged\x01\x01"), want: "+ " + base64.StdEncoding.EncodeToString([]byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/SMTP.Send"}`))},
				{raw: "\r\n", want: "-ERR " + textAuthFail},
			},
		},
		{
			name:     "AUTH OAUTHBEARER with a 20 KiB token in the initial response",
			insecure: true,
			setup:    func(s *memStore, _ *memBox) { s.tokens[strings.Repeat("t", 20000)] = "alice@contoso.com" },
			steps: []step{
				{send: "AUTH OAUTHBEARER " + b64("n,a=alice@contoso.com,\x01host=x\x01auth=Bearer "+strings.Repeat("t", 20000)+"\x01\x01"), want: okAuthed},
			},
		},
		{
			name:     "a temporary refusal of a token ends the exchange without the error challenge",
			insecure: true,
			setup: func(s *memStore, _ *memBox) {
				s.refusals["alice@contoso.com"] = &Refusal{Temporary: true, Text: "The identity provider cannot be reached."}
			},
			steps: []step{
				{send: "AUTH XOAUTH2 " + b64("user=alice@contoso.com\x01auth=Bearer x\x01\x01"), want: "-ERR [SYS/TEMP] The identity provider cannot be reached."},
			},
		},
		{
			name:     "a command line over 255 octets closes; an AUTH line may be longer",
			insecure: true,
			steps: []step{
				{send: "AUTH PLAIN " + strings.Repeat("A", 400), want: "-ERR " + textAuthFail},
				{send: "USER " + strings.Repeat("a", 300), want: errLineTooLong, eof: true},
			},
		},
		{
			name:     "a SASL line over 32 KiB closes",
			insecure: true,
			steps: []step{
				{send: "AUTH PLAIN", want: "+ "},
				{send: strings.Repeat("A", MaxAuthLine+10), want: errLineTooLong, eof: true},
			},
		},
		{
			name:     "pipelined commands are answered in order",
			insecure: true,
			steps: []step{
				{send: "USER alice@contoso.com\r\nPASS secret pass\r\nSTAT\r\nLIST 3\r\nUIDL 2\r\nQUIT", want: okBare + "\r\n" + okLoggedOn + "\r\n" +
					fmt.Sprintf("+OK 3 %d\r\n+OK 3 %d\r\n+OK 2 AAA2\r\n", len(msg1)+len(msg2)+len(msg3), len(msg3)) + okSigningOff, eof: true},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			box := store.addUser("alice@contoso.com", "secret pass", fixtureMessages()...)
			if tc.setup != nil {
				tc.setup(store, box)
			}
			srv := &Server{Auth: store, AllowInsecureAuth: tc.insecure, TLSConfig: testcert.New(t, "localhost").ServerConfig()}
			addr := startServer(t, srv, false)
			cl := dial(t, addr, nil)
			if g := cl.line(); g != greeting {
				t.Fatalf("greeting %q", g)
			}
			runSteps(t, cl, tc.steps)
			cl.c.Close()
			// However the session ended, the maildrop is closed once and
			// only what QUIT applied is deleted.
			waitFor(t, "the maildrop closed", func() bool {
				_, opens, closes := box.state()
				return opens == closes
			})
			if deleted, _, _ := box.state(); !slices.Equal(deleted, tc.afterDeleted) {
				t.Errorf("deleted %q, want %q", deleted, tc.afterDeleted)
			}
			box.mu.Lock()
			seen := slices.Clone(box.seen)
			box.mu.Unlock()
			if !slices.Equal(seen, tc.afterSeen) {
				t.Errorf("marked read %q, want %q", seen, tc.afterSeen)
			}
		})
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestSTLS(t *testing.T) {
	cert := testcert.New(t, "localhost")
	store := newMemStore()
	store.addUser("alice@contoso.com", "pw", fixtureMessages()...)
	addr := startServer(t, &Server{Auth: store, TLSConfig: cert.ServerConfig()}, false)
	cl := dial(t, addr, nil)
	cl.line()
	cl.send("CAPA\r\n")
	if got := cl.multi(); got != capaPlain {
		t.Fatalf("CAPA before TLS: %q", got)
	}
	// A command pipelined behind STLS in plain text must not run under TLS.
	cl.send("STLS\r\nUSER injected\r\n")
	if got := cl.line(); got != okBeginTLS {
		t.Fatalf("STLS: %q", got)
	}
	cl.startTLS(cert.ClientConfig())
	runSteps(t, cl, []step{
		{send: "CAPA", want: "+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\nUSER\r\nRESP-CODES\r\nPIPELINING\r\n."},
		{send: "PASS pw", want: errBadState}, // the injected USER was dropped
		{send: "STLS", want: errBadState},
		{send: "USER alice@contoso.com", want: "+OK"},
		{send: "PASS pw", want: okLoggedOn},
		{send: "QUIT", want: okSigningOff, eof: true},
	})
}

func TestImplicitTLS(t *testing.T) {
	cert := testcert.New(t, "localhost")
	store := newMemStore()
	store.addUser("alice@contoso.com", "pw", fixtureMessages()...)
	srv := &Server{Auth: store, TLSConfig: cert.ServerConfig(), AuthRespCode: true}
	addr := startServer(t, srv, true)
	cl := dial(t, addr, cert.ClientConfig())
	if g := cl.line(); g != greeting {
		t.Fatalf("greeting %q", g)
	}
	runSteps(t, cl, []step{
		{send: "CAPA", want: "+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\nUSER\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n."},
		{send: "STLS", want: errBadState},
		{send: "USER alice@contoso.com", want: "+OK"},
		{send: "PASS bad", want: "-ERR [AUTH] " + textLogonFail},
		{send: "USER alice@contoso.com", want: "+OK"},
		{send: "PASS pw", want: okLoggedOn},
		{send: "RETR 1", want: "+OK\r\nFrom: a@contoso.com\r\nSubject: one\r\n\r\nHello\r\n..dot line\r\n."},
	})
}

func TestImplicitTLSNeedsConfig(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := (&Server{Auth: newMemStore()}).Serve(l, true); err == nil {
		t.Fatal("Serve with implicit TLS and no certificate succeeded")
	}
}

func TestTimeouts(t *testing.T) {
	store := newMemStore()
	box := store.addUser("alice@contoso.com", "pw", fixtureMessages()...)
	srv := &Server{Auth: store, AllowInsecureAuth: true, PreAuthTimeout: 200 * time.Millisecond, IdleTimeout: 400 * time.Millisecond}
	addr := startServer(t, srv, false)

	t.Run("before sign-in", func(t *testing.T) {
		cl := dial(t, addr, nil)
		cl.line()
		start := time.Now()
		cl.send("US") // half a line never extends the timer, nor runs
		if got := cl.line(); got != errTimeout {
			t.Fatalf("got %q", got)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("timeout took %v", d)
		}
		cl.eof()
	})
	t.Run("signed in, trickling a line", func(t *testing.T) {
		cl := dial(t, addr, nil)
		cl.line()
		runSteps(t, cl, []step{{send: "USER alice@contoso.com", want: "+OK"}, {send: "PASS pw", want: okLoggedOn}, {send: "DELE 1", want: "+OK"}})
		// A byte every 50 ms: the whole line never arrives in time.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
					cl.c.Write([]byte("N"))
				}
			}
		}()
		if got := cl.line(); got != errTimeout {
			t.Fatalf("got %q", got)
		}
		cl.eof()
		waitFor(t, "the maildrop closed", func() bool { _, o, c := box.state(); return o == c })
		if deleted, _, _ := box.state(); len(deleted) != 0 {
			t.Fatalf("a timed-out session deleted %q", deleted)
		}
	})
}

func TestShutdown(t *testing.T) {
	store := newMemStore()
	box := store.addUser("alice@contoso.com", "pw", fixtureMessages()...)
	srv := &Server{Auth: store, AllowInsecureAuth: true}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l, false) }()

	idle := dial(t, l.Addr().String(), nil)
	idle.line()
	signedIn := dial(t, l.Addr().String(), nil)
	signedIn.line()
	runSteps(t, signedIn, []step{{send: "USER alice@contoso.com", want: "+OK"}, {send: "PASS pw", want: okLoggedOn}, {send: "DELE 1", want: "+OK"}})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Shutdown of idle connections took %v", d)
	}
	for _, cl := range []*client{idle, signedIn} {
		if got := cl.lines(2); got != errShuttingDown {
			t.Fatalf("got %q", got)
		}
		cl.eof()
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	if deleted, opens, closes := box.state(); len(deleted) != 0 || opens != closes {
		t.Fatalf("after shutdown: deleted %q, %d opened, %d closed", deleted, opens, closes)
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Fatal("the listener still accepts")
	}
}

// TestShutdownBounded: a connection stuck in a command (a RETR of a big
// message to a client that does not read) is closed when Shutdown's
// context ends.
func TestShutdownBounded(t *testing.T) {
	store := newMemStore()
	store.addUser("alice@contoso.com", "pw", bigMessage("S", 200<<20))
	srv := &Server{Auth: store, AllowInsecureAuth: true}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l, false)
	cl := dial(t, l.Addr().String(), nil)
	cl.line()
	runSteps(t, cl, []step{{send: "USER alice@contoso.com", want: "+OK"}, {send: "PASS pw", want: okLoggedOn}, {send: "RETR 1"}})
	// The client reads nothing more: the server's writes fill the
	// socket buffers and block, in the middle of the command.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

func TestMaxMessagesCapsTheSnapshot(t *testing.T) {
	store := newMemStore()
	var msgs []memMsg
	for i := range 10 {
		msgs = append(msgs, memMsg{uid: fmt.Sprintf("U%d", i), text: "Subject: x\r\n\r\nbody\r\n"})
	}
	store.addUser("alice@contoso.com", "pw", msgs...)
	addr := startServer(t, &Server{Auth: store, AllowInsecureAuth: true, MaxMessages: 4}, false)
	cl := dial(t, addr, nil)
	cl.line()
	runSteps(t, cl, []step{
		{send: "USER alice@contoso.com", want: "+OK"}, {send: "PASS pw", want: okLoggedOn},
		{send: "STAT", want: fmt.Sprintf("+OK 4 %d", 4*len("Subject: x\r\n\r\nbody\r\n"))},
		{send: "UIDL", want: "+OK\r\n1 U0\r\n2 U1\r\n3 U2\r\n4 U3\r\n."},
	})
}
