package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
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
type sink struct{ messages atomic.Int64 }

type sinkSession struct {
	s    *sink
	user string
}

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

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
	}{
		{name: "STARTTLS PLAIN", cfg: Config{Users: users, Conns: 4, Duration: time.Second, Size: 3000},
			check: func(t *testing.T, r *Result, delivered int64) {
				if r.Messages == 0 || int64(r.Messages) != delivered || r.Errors != 0 || r.Connections != 4 {
					t.Errorf("%+v delivered %d", r, delivered)
				}
			}},
		{name: "implicit TLS, LOGIN, new connection per message, capped", implicit: true,
			cfg: Config{TLS: "implicit", Mechanism: "LOGIN", Users: users, Conns: 3, Duration: 10 * time.Second, Messages: 25, PerConn: 1},
			check: func(t *testing.T, r *Result, delivered int64) {
				if r.Messages != 25 || delivered != 25 || r.Connections != 25 {
					t.Errorf("want exactly 25 messages over 25 connections: %+v delivered %d", r, delivered)
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
			var out strings.Builder
			r.Print(&out, tt.cfg)
			if !strings.Contains(out.String(), "msg/s") {
				t.Errorf("summary:\n%s", out.String())
			}
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
