package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/testcert"
)

// sink is a go-smtp backend that checks PLAIN/LOGIN credentials, refuses
// RCPT to refuse@…, and counts messages.
type sink struct {
	messages atomic.Int64
	// curve is the key exchange of the last TLS connection to send a MAIL.
	curve atomic.Uint32
}

type sinkSession struct {
	s    *sink
	c    *smtp.Conn
	user string
}

func (s *sink) NewSession(c *smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s, c: c}, nil }

func (ss *sinkSession) AuthMechanisms() []string { return []string{"PLAIN", "LOGIN"} }
func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	check := func(u, p string) error {
		if p != "secret" {
			return smtp.ErrAuthFailed
		}
		ss.user = u
		return nil
	}
	if mech == "PLAIN" {
		return sasl.NewPlainServer(func(_, u, p string) error { return check(u, p) }), nil
	}
	return auth.NewLoginServer(check), nil
}
func (ss *sinkSession) Mail(string, *smtp.MailOptions) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	if state, ok := ss.c.TLSConnectionState(); ok {
		ss.s.curve.Store(uint32(state.CurveID))
	}
	return nil
}
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "refuse@") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no"}
	}
	return nil
}
func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if !bytes.Contains(b, []byte("Message-ID: <bench-")) || !bytes.HasSuffix(b, []byte("\r\n")) {
		return errors.New("bad message")
	}
	// The message is written past go-smtp's writer: its end must be the
	// last body line, not an empty line added by the terminator.
	if bytes.Contains(b, []byte("0123456789")) && !bytes.HasSuffix(b, []byte("012345\r\n")) {
		return errors.New("message end changed")
	}
	ss.s.messages.Add(1)
	return nil
}
func (ss *sinkSession) Reset()        {}
func (ss *sinkSession) Logout() error { return nil }

func startSink(t *testing.T, implicit bool) (*sink, string) {
	t.Helper()
	cfg := testcert.New(t, "localhost").ServerConfig()
	s := &sink{}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		l = tls.NewListener(l, cfg)
	} else {
		srv.TLSConfig = cfg
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s, l.Addr().String()
}

func TestRun(t *testing.T) {
	users := []Credential{{"a@contoso.com", "secret"}, {"b@contoso.com", "secret"}}
	tests := []struct {
		name     string
		implicit bool
		cfg      Config
		check    func(t *testing.T, r *Result, delivered int64)
		// curve, when set, is the key exchange the server must have seen.
		curve tls.CurveID
	}{
		{name: "STARTTLS PLAIN", cfg: Config{Users: users, Conns: 4, Duration: time.Second, Size: 3000},
			check: func(t *testing.T, r *Result, delivered int64) {
				if r.Messages == 0 || int64(r.Messages) != delivered || r.Errors != 0 || r.Connections != 4 {
					t.Errorf("%+v delivered %d", r, delivered)
				}
			}, curve: tls.X25519MLKEM768},
		{name: "STARTTLS, X25519 only offered", cfg: Config{Users: users, Conns: 2, Messages: 4, Duration: 10 * time.Second, PerConn: 1, Groups: []tls.CurveID{tls.X25519}},
			check: func(t *testing.T, r *Result, delivered int64) {
				if r.Messages != 4 || delivered != 4 {
					t.Errorf("%+v delivered %d", r, delivered)
				}
			}, curve: tls.X25519},
		{name: "implicit TLS, LOGIN, new connection per message, capped", implicit: true,
			cfg: Config{TLS: "implicit", Mechanism: "LOGIN", Users: users, Conns: 3, Duration: 10 * time.Second, Messages: 25, PerConn: 1},
			check: func(t *testing.T, r *Result, delivered int64) {
				if r.Messages != 25 || delivered != 25 || r.Connections != 25 {
					t.Errorf("want exactly 25 messages over 25 connections: %+v delivered %d", r, delivered)
				}
			}},
		{name: "open loop, reused connections: exactly the messages due, no sooner than due",
			cfg: Config{Users: users, Conns: 4, Duration: time.Minute, Messages: 40, Rate: 200},
			check: func(t *testing.T, r *Result, delivered int64) {
				// Message i is due at i/200 s: the 40th at 195 ms.
				if r.Messages != 40 || delivered != 40 || r.Errors != 0 || r.Connections != 4 || r.Elapsed < 195*time.Millisecond {
					t.Errorf("%+v delivered %d", r, delivered)
				}
			}},
		{name: "open loop, new connection per message",
			cfg: Config{Users: users, Conns: 2, Duration: time.Minute, Messages: 10, Rate: 100, PerConn: 1},
			check: func(t *testing.T, r *Result, delivered int64) {
				if r.Messages != 10 || delivered != 10 || r.Connections != 10 || r.Elapsed < 90*time.Millisecond {
					t.Errorf("%+v delivered %d", r, delivered)
				}
			}},
		{name: "refused recipient is counted by reply", cfg: Config{Users: users, Conns: 1, Messages: 5, Duration: 5 * time.Second, To: []string{"refuse@x.example"}},
			check: func(t *testing.T, r *Result, delivered int64) {
				if r.Messages != 0 || r.ErrorsByReply["550 5.1.1"] != 5 || delivered != 0 {
					t.Errorf("%+v", r)
				}
			}},
		{name: "wrong password", cfg: Config{Users: []Credential{{"a@contoso.com", "bad"}}, Conns: 1, Duration: 300 * time.Millisecond},
			check: func(t *testing.T, r *Result, delivered int64) {
				if r.Messages != 0 || r.ErrorsByReply["535 5.7.8"] == 0 {
					t.Errorf("%+v", r)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, addr := startSink(t, tt.implicit)
			tt.cfg.Addr, tt.cfg.Insecure = addr, true
			r, err := Run(context.Background(), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r, s.messages.Load())
			if got := tls.CurveID(s.curve.Load()); tt.curve != 0 && got != tt.curve {
				t.Errorf("key exchange %v, want %v", got, tt.curve)
			}
			// The client's CPU is measured wherever getrusage is: it is
			// what scripts/compare.sh takes off the machine's busy time.
			if r.Messages > 0 && runtime.GOOS == "linux" && r.CPU <= 0 {
				t.Errorf("%d messages sent and no client CPU measured", r.Messages)
			}
			var out strings.Builder
			r.Print(&out, tt.cfg)
			if !strings.Contains(out.String(), "msg/s") {
				t.Errorf("summary:\n%s", out.String())
			}
			checkSummary(t, out.String(), r)
		})
	}
}

func TestServerDown(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	start := time.Now()
	r, err := Run(context.Background(), Config{Addr: addr, Conns: 2, Duration: 500 * time.Millisecond, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Messages != 0 || r.Errors == 0 || time.Since(start) > 3*time.Second {
		t.Fatalf("%+v after %v", r, time.Since(start))
	}
}

// checkSummary finds the one summary line and checks that it parses as
// key=value pairs agreeing with the result.
func checkSummary(t *testing.T, out string, r *Result) {
	t.Helper()
	var line string
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "summary ") {
			if line != "" {
				t.Fatalf("two summary lines:\n%s", out)
			}
			line = strings.TrimSpace(l)
		}
	}
	kv := map[string]string{}
	for _, f := range strings.Fields(strings.TrimPrefix(line, "summary ")) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("summary field %q is not key=value: %s", f, line)
		}
		kv[k] = v
	}
	for k, want := range map[string]string{"ok": fmt.Sprint(r.Messages), "err": fmt.Sprint(r.Errors), "sent": fmt.Sprint(r.Messages + r.Errors)} {
		if kv[k] != want {
			t.Errorf("summary %s=%q, want %q: %s", k, kv[k], want, line)
		}
	}
	for _, k := range []string{"rate", "msg_per_s", "p50_ms", "p99_ms", "late_p99_ms", "client_cpu_s"} {
		if _, err := strconv.ParseFloat(kv[k], 64); err != nil {
			t.Errorf("summary %s=%q: %v", k, kv[k], err)
		}
	}
}

func TestPace(t *testing.T) {
	tests := []struct {
		rate  float64
		limit int
	}{
		{rate: 50, limit: 5},
		{rate: 20000, limit: 300}, // faster than the ticker: several due per tick
	}
	for _, tt := range tests {
		due := make(chan time.Time, tt.limit)
		start := time.Now()
		pace(context.Background(), start, tt.rate, tt.limit, due)
		interval := time.Duration(float64(time.Second) / tt.rate)
		i := 0
		for at := range due {
			if want := start.Add(time.Duration(i) * interval); !at.Equal(want) {
				t.Errorf("rate %g: message %d due at +%v, want +%v", tt.rate, i, at.Sub(start), want.Sub(start))
			}
			i++
		}
		if i != tt.limit {
			t.Errorf("rate %g: %d messages due, want %d", tt.rate, i, tt.limit)
		}
		if last := start.Add(time.Duration(tt.limit-1) * interval); time.Now().Before(last) {
			t.Errorf("rate %g: the pacer returned before the last message was due", tt.rate)
		}
	}
}

func TestDotStuff(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{".a\r\n", "..a\r\n"},
		{"a\r\n.\r\n..b\r\nc.d\r\n", "a\r\n..\r\n...b\r\nc.d\r\n"},
	} {
		if got := string(dotStuff([]byte(tc.in))); got != tc.want {
			t.Errorf("dotStuff(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseGroups(t *testing.T) {
	tests := []struct {
		in      string
		want    []tls.CurveID
		wantErr bool
	}{
		{"", nil, false},
		{"X25519", []tls.CurveID{tls.X25519}, false},
		{" x25519mlkem768 , curvep256", []tls.CurveID{tls.X25519MLKEM768, tls.CurveP256}, false},
		{"X25519,", []tls.CurveID{tls.X25519}, false},
		{"X448", nil, true},
		{"X25519,ffdhe2048", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseGroups(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && !slices.Equal(got, tt.want)) {
			t.Errorf("ParseGroups(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
