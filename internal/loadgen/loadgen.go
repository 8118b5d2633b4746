// Package loadgen is the load generator behind `postern bench`: N
// concurrent connections submitting mail the way devices do (STARTTLS or
// implicit TLS, AUTH, MAIL/RCPT/DATA), for a set time or message count,
// reporting messages per second and latency percentiles.
//
// It uses go-smtp's client, the same library the server uses, so no other
// dependency is needed; the client does not pipeline, like most devices.
package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Config is one run's parameters.
type Config struct {
	Addr       string
	TLS        string // starttls (default), implicit, none
	CAFile     string
	Insecure   bool
	ServerName string
	Users      []Credential // round-robin over connections; none = no AUTH
	Mechanism  string       // PLAIN (default) or LOGIN
	From       string       // default: the connection's user
	To         []string     // default: the connection's user
	Conns      int
	Duration   time.Duration
	Messages   int // cap on messages; 0 = none
	Size       int // message size in bytes
	PerConn    int // messages per connection; 1 = a new connection per message, 0 = reuse
	Timeout    time.Duration
}

// Credential is a user name and password.
type Credential struct{ Username, Password string }

// Result is what a run measured.
type Result struct {
	Messages, Errors, Connections int
	ErrorsByReply                 map[string]int
	Elapsed                       time.Duration
	PerSecond                     float64
	// Latency is per message: from MAIL FROM to the reply after DATA, plus
	// connect, TLS and AUTH when the message opened its connection.
	P50, P90, P99, Max time.Duration
}

// usersFlag collects repeated -user flags.
type usersFlag struct{ c *Config }

func (u usersFlag) String() string { return "" }
func (u usersFlag) Set(v string) error {
	user, pass, ok := strings.Cut(v, ":")
	if !ok {
		return fmt.Errorf("want USER:PASSWORD, got %q", v)
	}
	u.c.Users = append(u.c.Users, Credential{user, pass})
	return nil
}

// RegisterFlags defines the bench flags on fs and returns the Config they fill.
func RegisterFlags(fs *flag.FlagSet) *Config {
	c := &Config{}
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:587", "server address")
	fs.StringVar(&c.TLS, "tls", "starttls", "starttls, implicit or none")
	fs.StringVar(&c.CAFile, "cafile", "", "PEM CA file to verify the server")
	fs.BoolVar(&c.Insecure, "insecure", false, "do not verify the server certificate")
	fs.StringVar(&c.ServerName, "servername", "localhost", "TLS server name")
	fs.Var(usersFlag{c}, "user", "USER:PASSWORD to sign in as (repeatable; connections take turns)")
	fs.Func("users-file", "file of USER:PASSWORD lines", func(path string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				if err := (usersFlag{c}).Set(line); err != nil {
					return err
				}
			}
		}
		return sc.Err()
	})
	fs.StringVar(&c.Mechanism, "auth", "PLAIN", "PLAIN or LOGIN")
	fs.StringVar(&c.From, "from", "", "envelope and header sender (default: the user)")
	fs.Func("to", "comma-separated recipients (default: the user)", func(v string) error {
		c.To = strings.Split(v, ",")
		return nil
	})
	fs.IntVar(&c.Conns, "c", 8, "concurrent connections")
	fs.DurationVar(&c.Duration, "d", 10*time.Second, "how long to run")
	fs.IntVar(&c.Messages, "n", 0, "stop after this many messages (0: no cap)")
	fs.IntVar(&c.Size, "size", 2048, "message size in bytes")
	fs.IntVar(&c.PerConn, "per-conn", 0, "messages per connection (1: reconnect for every message, as scanners do; 0: reuse)")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "per-command timeout")
	return c
}

// Run drives the server and measures.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Conns < 1 {
		cfg.Conns = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	tlsCfg := &tls.Config{ServerName: cfg.ServerName, InsecureSkipVerify: cfg.Insecure, ClientSessionCache: tls.NewLRUClientSessionCache(cfg.Conns)}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		tlsCfg.RootCAs = x509.NewCertPool()
		if !tlsCfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificates", cfg.CAFile)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()

	var budget atomic.Int64
	budget.Store(int64(cfg.Messages))
	workers := make([]*worker, cfg.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &worker{cfg: &cfg, tls: tlsCfg, errors: map[string]int{}, budget: &budget, id: i}
		if len(cfg.Users) > 0 {
			w.user = cfg.Users[i%len(cfg.Users)]
		}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	wg.Wait()
	res := &Result{Elapsed: time.Since(start), ErrorsByReply: map[string]int{}}
	var lat []time.Duration
	for _, w := range workers {
		res.Messages += w.sent
		res.Connections += w.conns
		lat = append(lat, w.latencies...)
		for k, v := range w.errors {
			res.ErrorsByReply[k] += v
			res.Errors += v
		}
	}
	res.PerSecond = float64(res.Messages) / res.Elapsed.Seconds()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	res.P50, res.P90, res.P99 = pct(0.50), pct(0.90), pct(0.99)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	return res, nil
}

// Print writes a human summary.
func (r *Result) Print(w io.Writer, cfg Config) {
	fmt.Fprintf(w, "addr=%s tls=%s auth=%s conns=%d size=%d per-conn=%d users=%d duration=%s\n",
		cfg.Addr, cfg.TLS, cfg.Mechanism, cfg.Conns, cfg.Size, cfg.PerConn, len(cfg.Users), cfg.Duration)
	fmt.Fprintf(w, "messages  %d in %.2fs over %d connections\n", r.Messages, r.Elapsed.Seconds(), r.Connections)
	fmt.Fprintf(w, "rate      %.1f msg/s\n", r.PerSecond)
	fmt.Fprintf(w, "latency   p50 %s  p90 %s  p99 %s  max %s\n", ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max))
	if r.Errors > 0 {
		keys := make([]string, 0, len(r.ErrorsByReply))
		for k := range r.ErrorsByReply {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "errors    %d\n", r.Errors)
		for _, k := range keys {
			fmt.Fprintf(w, "  %6d  %s\n", r.ErrorsByReply[k], k)
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

type worker struct {
	cfg       *Config
	tls       *tls.Config
	user      Credential
	id        int
	budget    *atomic.Int64
	sent      int
	conns     int
	latencies []time.Duration
	errors    map[string]int
	body      []byte
	seq       int
}

func (w *worker) run(ctx context.Context) {
	var c *smtp.Client
	var opened time.Time
	perConn := 0
	defer func() {
		if c != nil {
			c.Quit()
		}
	}()
	for ctx.Err() == nil {
		if w.cfg.Messages > 0 && w.budget.Add(-1) < 0 {
			return
		}
		if c == nil {
			opened = time.Now()
			var err error
			if c, err = w.dial(); err != nil {
				w.fail(err)
				select { // a down server must not make us spin
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			w.conns++
			perConn = 0
		}
		begin := time.Now()
		if perConn == 0 {
			begin = opened
		}
		err := w.send(c)
		perConn++
		if err != nil {
			w.fail(err)
		} else {
			w.latencies = append(w.latencies, time.Since(begin))
			w.sent++
		}
		var replyErr *smtp.SMTPError
		switch {
		case err != nil && !errors.As(err, &replyErr):
			c.Close() // the connection broke: open a new one
			c = nil
		case w.cfg.PerConn > 0 && perConn >= w.cfg.PerConn:
			c.Quit()
			c = nil
		}
	}
}

func (w *worker) fail(err error) {
	key := err.Error()
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		key = fmt.Sprintf("%d %d.%d.%d", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	} else if ne := (*net.OpError)(nil); errors.As(err, &ne) {
		key = ne.Op + ": " + ne.Err.Error()
	}
	w.errors[key]++
}

func (w *worker) dial() (*smtp.Client, error) {
	var c *smtp.Client
	var err error
	switch w.cfg.TLS {
	case "implicit":
		c, err = smtp.DialTLS(w.cfg.Addr, w.tls)
	case "none":
		c, err = smtp.Dial(w.cfg.Addr)
	default:
		c, err = smtp.DialStartTLS(w.cfg.Addr, w.tls)
	}
	if err != nil {
		return nil, err
	}
	c.CommandTimeout = w.cfg.Timeout
	c.SubmissionTimeout = w.cfg.Timeout
	if w.user.Username != "" {
		var mech sasl.Client
		if strings.EqualFold(w.cfg.Mechanism, "LOGIN") {
			mech = sasl.NewLoginClient(w.user.Username, w.user.Password)
		} else {
			mech = sasl.NewPlainClient("", w.user.Username, w.user.Password)
		}
		if err := c.Auth(mech); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (w *worker) send(c *smtp.Client) error {
	from := w.cfg.From
	if from == "" {
		from = w.user.Username
	}
	to := w.cfg.To
	if len(to) == 0 {
		to = []string{w.user.Username}
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			c.Reset()
			return err
		}
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := wc.Write(w.message(from, to[0])); err != nil {
		wc.Close()
		return err
	}
	return wc.Close()
}

// message builds a message of about cfg.Size bytes (rounded up to whole
// lines) with a unique Message-ID; the body is printable 76-character lines.
func (w *worker) message(from, to string) []byte {
	w.seq++
	head := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: postern bench\r\nMessage-ID: <bench-%d-%d-%d@loadgen>\r\n\r\n", from, to, time.Now().UnixNano(), w.id, w.seq)
	if w.body == nil {
		line := strings.Repeat("0123456789", 8)[:76] + "\r\n"
		n := max(w.cfg.Size-len(head), 0)
		w.body = []byte(strings.Repeat(line, (n+len(line)-1)/len(line)))
	}
	return append([]byte(head), w.body...)
}
