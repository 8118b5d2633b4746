// Package loadgen is the load generator behind `postern bench`: N
// concurrent connections submitting mail the way devices do (STARTTLS or
// implicit TLS, AUTH, MAIL/RCPT/DATA), for a set time or message count,
// reporting messages per second and latency percentiles.
//
// Two ways to drive: closed loop (the default: each connection sends its
// next message as soon as the last one is answered, which finds the peak
// rate) and open loop (-rate N: messages are due at N per second across
// all connections whatever the server does, so that the latency of a
// server that falls behind grows instead of the load shrinking; the
// "coordinated omission" that a closed loop hides).
//
// It uses go-smtp's client, the same library the server uses, so no other
// dependency is needed; the client does not pipeline, like most devices.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/textproto"
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
	// Rate, when above 0, makes the run open loop: Rate messages per
	// second across all connections, each due at its own time.
	Rate float64
	// Groups, when set, are the only key exchanges the client offers
	// (RFC 8446 section 4.2.7's supported_groups), most preferred first;
	// none offers Go's defaults, which lead with X25519MLKEM768.
	Groups []tls.CurveID
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
	// LagP99 and LagMax (open loop only) are how late messages started
	// after they were due: near zero while the connections keep up with
	// the rate; growing when every connection is busy, which says the rate
	// is beyond what this many connections can carry.
	LagP99, LagMax time.Duration
	// CPU is what the run cost this process (user and system time; zero
	// where it is not measured). On a machine shared with the server it is
	// CPU the server did not have.
	CPU time.Duration
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
	fs.Func("groups", "comma-separated TLS key exchanges to offer, most preferred first (X25519, X25519MLKEM768, CurveP256...; default: Go's)", func(v string) error {
		groups, err := ParseGroups(v)
		c.Groups = groups
		return err
	})
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
	fs.Float64Var(&c.Rate, "rate", 0, "open loop: messages per second across all connections (0: each connection sends as fast as it is answered)")
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
	tlsCfg := &tls.Config{ServerName: cfg.ServerName, InsecureSkipVerify: cfg.Insecure, ClientSessionCache: tls.NewLRUClientSessionCache(cfg.Conns), CurvePreferences: cfg.Groups}
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
	cpu0 := processCPU()
	start := time.Now()
	var due chan time.Time
	if cfg.Rate > 0 {
		due = make(chan time.Time, dueBuffer)
		go pace(ctx, start, cfg.Rate, cfg.Messages, due)
	}
	for i := range workers {
		w := &worker{cfg: &cfg, tls: tlsCfg, errors: map[string]int{}, budget: &budget, id: i, due: due}
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
	res := &Result{Elapsed: time.Since(start), CPU: processCPU() - cpu0, ErrorsByReply: map[string]int{}}
	var lat, lag []time.Duration
	for _, w := range workers {
		res.Messages += w.sent
		res.Connections += w.conns
		lat = append(lat, w.latencies...)
		lag = append(lag, w.lags...)
		for k, v := range w.errors {
			res.ErrorsByReply[k] += v
			res.Errors += v
		}
	}
	res.PerSecond = float64(res.Messages) / res.Elapsed.Seconds()
	slices.Sort(lat)
	slices.Sort(lag)
	res.P50, res.P90, res.P99, res.Max = percentile(lat, 0.50), percentile(lat, 0.90), percentile(lat, 0.99), percentile(lat, 1)
	res.LagP99, res.LagMax = percentile(lag, 0.99), percentile(lag, 1)
	return res, nil
}

// knownGroups are the key exchanges crypto/tls implements, by their names
// in its CurveID.String.
var knownGroups = []tls.CurveID{tls.X25519, tls.X25519MLKEM768, tls.SecP256r1MLKEM768, tls.SecP384r1MLKEM1024, tls.CurveP256, tls.CurveP384, tls.CurveP521}

// ParseGroups reads a comma-separated list of key exchange names, in any
// case ("x25519,CurveP256"); an empty list is none (Go's defaults).
func ParseGroups(v string) ([]tls.CurveID, error) {
	var groups []tls.CurveID
	for name := range strings.SplitSeq(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		i := slices.IndexFunc(knownGroups, func(g tls.CurveID) bool { return strings.EqualFold(g.String(), name) })
		if i < 0 {
			return nil, fmt.Errorf("unknown TLS group %q (known: %s)", name, groupNames(knownGroups))
		}
		groups = append(groups, knownGroups[i])
	}
	return groups, nil
}

// groupNames lists key exchanges by name, comma-separated.
func groupNames(groups []tls.CurveID) string {
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.String()
	}
	return strings.Join(names, ",")
}

// percentile of sorted durations; 1 is the maximum, and none is 0.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// dueBuffer is how many due messages may wait for a free connection before
// the pacer itself waits; their lateness is measured either way, since
// each carries the time it was due, not the time it was handed over.
const dueBuffer = 4096

// pace sends the due time of message i, start + i/rate, when that time
// comes, until ctx ends or limit messages (0: no limit) have been due.
func pace(ctx context.Context, start time.Time, rate float64, limit int, due chan<- time.Time) {
	defer close(due)
	interval := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(max(interval, time.Millisecond))
	defer tick.Stop()
	for i := 0; limit == 0 || i < limit; {
		// Every message due by now goes out at once: a ticker coarser
		// than the interval (rates above 1,000/s) must not lower the rate.
		for at := start.Add(time.Duration(i) * interval); !at.After(time.Now()) && (limit == 0 || i < limit); at = start.Add(time.Duration(i) * interval) {
			select {
			case due <- at:
				i++
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// Print writes a human summary.
func (r *Result) Print(w io.Writer, cfg Config) {
	groups := "default"
	if len(cfg.Groups) > 0 {
		groups = groupNames(cfg.Groups)
	}
	fmt.Fprintf(w, "addr=%s tls=%s groups=%s auth=%s conns=%d size=%d per-conn=%d users=%d duration=%s\n",
		cfg.Addr, cfg.TLS, groups, cfg.Mechanism, cfg.Conns, cfg.Size, cfg.PerConn, len(cfg.Users), cfg.Duration)
	fmt.Fprintf(w, "messages  %d in %.2fs over %d connections\n", r.Messages, r.Elapsed.Seconds(), r.Connections)
	fmt.Fprintf(w, "rate      %.1f msg/s\n", r.PerSecond)
	fmt.Fprintf(w, "latency   p50 %s  p90 %s  p99 %s  max %s\n", ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max))
	if r.CPU > 0 && r.Messages > 0 {
		fmt.Fprintf(w, "client    %.2fs CPU, %.0fµs a message\n", r.CPU.Seconds(), float64(r.CPU.Microseconds())/float64(r.Messages))
	}
	if cfg.Rate > 0 {
		fmt.Fprintf(w, "late      p99 %s  max %s (open loop at %g msg/s: start after the message was due)\n", ms(r.LagP99), ms(r.LagMax), cfg.Rate)
	}
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
	fmt.Fprintln(w, r.Summary(cfg))
}

// Summary is the run on one line of key=value pairs, for scripts
// (scripts/compare.sh): times in milliseconds, rates per second, the
// client's CPU in seconds.
func (r *Result) Summary(cfg Config) string {
	return fmt.Sprintf("summary rate=%g conns=%d per_conn=%d size=%d sent=%d ok=%d err=%d elapsed_s=%.2f msg_per_s=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f late_p99_ms=%.2f late_max_ms=%.2f client_cpu_s=%.3f",
		cfg.Rate, cfg.Conns, cfg.PerConn, cfg.Size, r.Messages+r.Errors, r.Messages, r.Errors, r.Elapsed.Seconds(), r.PerSecond,
		msf(r.P50), msf(r.P90), msf(r.P99), msf(r.Max), msf(r.LagP99), msf(r.LagMax), r.CPU.Seconds())
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", msf(d)) }

type worker struct {
	cfg       *Config
	tls       *tls.Config
	user      Credential
	id        int
	budget    *atomic.Int64
	sent      int
	conns     int
	latencies []time.Duration
	lags      []time.Duration // open loop: how late each message started
	due       <-chan time.Time
	errors    map[string]int
	body      []byte
	seq       int
	// raw is the current connection under the client.
	raw *rawConn
}

func (w *worker) run(ctx context.Context) {
	var c *smtp.Client
	perConn := 0
	defer func() {
		if c != nil {
			c.Quit()
		}
	}()
	for ctx.Err() == nil {
		// Open loop with connections reused: the connection is opened
		// before the message is due, as a device keeps its connection
		// open, so that only the message is timed.
		if w.due != nil && w.cfg.PerConn != 1 && c == nil {
			if c = w.connect(ctx); c == nil {
				continue
			}
			perConn = 0
		}
		var begin time.Time
		if w.due != nil {
			at, ok := <-w.due
			if !ok {
				return
			}
			begin = time.Now()
			w.lags = append(w.lags, begin.Sub(at))
		} else if w.cfg.Messages > 0 && w.budget.Add(-1) < 0 {
			return
		}
		if c == nil {
			// A message that opens its connection is timed from the dial:
			// connect, TLS and AUTH are what it waits for.
			opened := time.Now()
			if c = w.connect(ctx); c == nil {
				continue
			}
			perConn = 0
			if begin.IsZero() {
				begin = opened
			}
		}
		if begin.IsZero() {
			begin = time.Now()
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

// connect dials and signs in, counting the connection; on failure it
// counts the error, waits a little (a down server must not make us spin)
// and returns nil.
func (w *worker) connect(ctx context.Context) *smtp.Client {
	c, err := w.dial()
	if err != nil {
		w.fail(err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
		return nil
	}
	w.conns++
	return c
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
	nc, err := net.DialTimeout("tcp", w.cfg.Addr, w.cfg.Timeout)
	if err != nil {
		return nil, err
	}
	raw := &rawConn{Conn: nc}
	switch w.cfg.TLS {
	case "implicit":
		tc := tls.Client(nc, w.tls)
		tc.SetDeadline(time.Now().Add(w.cfg.Timeout))
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return nil, err
		}
		tc.SetDeadline(time.Time{})
		raw.Conn = tc
	case "none":
	default:
		if err := w.startTLS(raw); err != nil {
			nc.Close()
			return nil, err
		}
	}
	w.raw = raw
	c := smtp.NewClient(raw)
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
	// The message goes to the connection in one write, dot-stuffed here,
	// without its last CRLF: go-smtp's writer, which Close still uses,
	// then adds CRLF "." CRLF (RFC 5321 section 4.1.1.4). Through that
	// writer (net/textproto's, byte by byte) a 1 MiB message cost the
	// load generator twice the CPU the server spent receiving it.
	msg := dotStuff(w.message(from, to[0]))
	if _, err := w.raw.Write(msg[:len(msg)-2]); err != nil {
		wc.Close()
		return err
	}
	return wc.Close()
}

// rawConn is the connection under the go-smtp client (TLS already on, for
// the TLS modes), kept to write message data to it directly. greeting is
// read before the connection: after a STARTTLS done here, go-smtp starts
// as on a new connection and expects a 220.
type rawConn struct {
	net.Conn
	greeting []byte
}

func (r *rawConn) Read(p []byte) (int, error) {
	if len(r.greeting) > 0 {
		n := copy(p, r.greeting)
		r.greeting = r.greeting[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

// startTLS does what go-smtp's DialStartTLS does (greeting, EHLO,
// STARTTLS, handshake; RFC 3207), so that the TLS connection is ours to
// write to.
func (w *worker) startTLS(raw *rawConn) error {
	nc := raw.Conn
	nc.SetDeadline(time.Now().Add(w.cfg.Timeout))
	tp := textproto.NewConn(nc)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return err
	}
	if err := tp.PrintfLine("EHLO localhost"); err != nil {
		return err
	}
	if _, _, err := tp.ReadResponse(250); err != nil {
		return err
	}
	if err := tp.PrintfLine("STARTTLS"); err != nil {
		return err
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		return err
	}
	tc := tls.Client(nc, w.tls)
	if err := tc.Handshake(); err != nil {
		return err
	}
	nc.SetDeadline(time.Time{})
	raw.Conn, raw.greeting = tc, []byte("220 TLS on\r\n")
	return nil
}

// dotStuff doubles the dot that starts a line (RFC 5321 section 4.5.2);
// msg is CRLF-terminated lines.
func dotStuff(msg []byte) []byte {
	if msg[0] != '.' && !bytes.Contains(msg, []byte("\n.")) {
		return msg
	}
	out := make([]byte, 0, len(msg)+len(msg)/64)
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line = msg[:i+1]
		}
		if line[0] == '.' {
			out = append(out, '.')
		}
		out = append(out, line...)
		msg = msg[len(line):]
	}
	return out
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
