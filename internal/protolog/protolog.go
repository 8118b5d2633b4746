// Package protolog writes and reads SMTP protocol logs: the conversation of
// the sessions on the listeners where an administrator turned logging on,
// as Exchange's receive connectors do with -ProtocolLoggingLevel Verbose
// (the "device logs" step of Microsoft's SMTP troubleshooting guides).
//
// Files are CSV under DATA/protolog, one record a line, with the fields
// Exchange's protocol logs have (date-time, connector-id, session-id,
// sequence-number, remote-endpoint, event, data); event is "+" (connect),
// "-" (disconnect), "<" (client to server), ">" (server to client) or "*"
// (information). Message bodies are never written, only their size, and
// AUTH payloads are masked (Mask): a protocol log is read by people who
// must not learn passwords or tokens from it.
//
// Files rotate by size and age, and the oldest go when the directory
// passes a total size or a file passes the maximum age, so that logging
// left on cannot fill the disk.
package protolog

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound the log's files.
type Limits struct {
	// MaxFileSize starts a new file (Exchange's ReceiveProtocolLogMaxFileSize,
	// 10 MB by default).
	MaxFileSize int64
	// MaxAge removes files older than it, and starts a new file a day at
	// least (Exchange's ReceiveProtocolLogMaxAge, 30 days).
	MaxAge time.Duration
	// MaxTotalSize removes the oldest files while the directory is larger
	// (Exchange's ReceiveProtocolLogMaxDirectorySize, 250 MB).
	MaxTotalSize int64
}

// DefaultLimits are Exchange's defaults.
var DefaultLimits = Limits{MaxFileSize: 10 << 20, MaxAge: 30 * 24 * time.Hour, MaxTotalSize: 250 << 20}

// fileRotation starts a new file at least this often, so that age-based
// removal takes whole days.
const fileRotation = 24 * time.Hour

// Log is the protocol log of one server.
type Log struct {
	dir    string
	limits Limits
	now    func() time.Time

	// verbose holds the listeners (connector identities) whose sessions
	// are logged; read once per connection, lock-free.
	verbose atomic.Pointer[map[string]bool]
	nextID  atomic.Uint64

	mu      sync.Mutex
	f       *os.File
	size    int64
	opened  time.Time
	written bool

	// orgLogs are the organizations' connector logs (connector.go).
	orgLogs
}

// Open opens (creating) the log directory and removes expired files.
func Open(dir string, limits Limits) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, limits: limits, now: time.Now}
	l.verbose.Store(&map[string]bool{})
	l.nextID.Store(uint64(time.Now().UnixNano()))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune()
	return l, nil
}

// SetVerbose turns logging on or off for a connector identity.
func (l *Log) SetVerbose(identity string, on bool) {
	for {
		old := l.verbose.Load()
		m := make(map[string]bool, len(*old)+1)
		for k, v := range *old {
			m[k] = v
		}
		if on {
			m[identity] = true
		} else {
			delete(m, identity)
		}
		if l.verbose.CompareAndSwap(old, &m) {
			return
		}
	}
}

// Verbose reports whether sessions of a connector are logged.
func (l *Log) Verbose(identity string) bool {
	return l != nil && (*l.verbose.Load())[identity]
}

// Session starts the transcript of one connection: a "+" record now, and
// one record for each line until Close.
func (l *Log) Session(identity string, ip netip.Addr) *Session {
	s := &Session{log: l, connector: identity, id: fmt.Sprintf("%016X", l.nextID.Add(1)), remote: ip.String()}
	s.write("+", "")
	return s
}

// Session is one connection's transcript. It is used by one goroutine.
type Session struct {
	log       *Log
	connector string
	id        string
	remote    string
	seq       int
}

// ID is the session's identifier in the log.
func (s *Session) ID() string { return s.id }

// Received records a line the client sent; sasl marks a SASL response
// (a line after a 334 challenge), which is masked whole.
func (s *Session) Received(line string, sasl bool) { s.write("<", Mask(line, sasl)) }

// Sent records a reply; a multi-line reply is one record a line.
func (s *Session) Sent(reply string) {
	for _, line := range strings.Split(strings.TrimRight(reply, "\r\n"), "\r\n") {
		s.write(">", line)
	}
}

// Message records a message (DATA) or a BDAT chunk by its size only.
func (s *Session) Message(bytes int64) {
	s.write("*", fmt.Sprintf("<message of %d bytes>", bytes))
}

// Close records the end of the connection.
func (s *Session) Close() { s.write("-", "") }

func (s *Session) write(event, data string) {
	rec := Record{Time: s.log.now().UTC(), Connector: s.connector, Session: s.id, Sequence: s.seq,
		Remote: s.remote, Event: event, Data: data}
	s.seq++
	s.log.append(rec)
}

// Mask hides secrets in a client line: the whole of a SASL response
// (RFC 4954 section 4: after a 334 every line is mechanism data, such as
// LOGIN's base64 password or an OAuth token), and the initial response of
// an AUTH command (AUTH PLAIN carries the password in it). A lone "*"
// (the client cancelling the exchange) is kept.
func Mask(line string, sasl bool) string {
	if sasl {
		if line == "*" {
			return line
		}
		return "****"
	}
	if len(line) >= 5 && strings.EqualFold(line[:5], "AUTH ") {
		f := strings.Fields(line)
		if len(f) > 2 {
			return f[0] + " " + f[1] + " ****"
		}
	}
	return line
}

// Record is one line of the log.
type Record struct {
	Time      time.Time
	Connector string
	Session   string
	Sequence  int
	Remote    string
	Event     string
	Data      string
}

const header = "#Fields: date-time,connector-id,session-id,sequence-number,remote-endpoint,event,data\n"

// formatRecord renders a record as one CSV line; a client line with a
// bare CR in it is quoted, never split.
func formatRecord(r Record) string {
	b := make([]byte, 0, 96+len(r.Data))
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	for _, f := range [...]string{r.Connector, r.Session, strconv.Itoa(r.Sequence), r.Remote, r.Event, r.Data} {
		b = append(b, ',')
		b = appendField(b, f)
	}
	return string(append(b, '\n'))
}

// appendField writes a CSV field (RFC 4180), quoted when it must be (as
// encoding/csv would), without encoding/csv's buffer per record.
func appendField(b []byte, f string) []byte {
	if f == "" || !strings.ContainsAny(f, ",\"\r\n") && f[0] != ' ' && f[0] != '\t' {
		return append(b, f...)
	}
	b = append(b, '"')
	for i := range len(f) {
		if f[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, f[i])
	}
	return append(b, '"')
}

func (l *Log) append(r Record) {
	line := formatRecord(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.ensureFile(int64(len(line))); err != nil {
		return // logging must never break a session
	}
	n, _ := l.f.WriteString(line)
	l.size += int64(n)
}

// ensureFile opens a new file when there is none, or the current one
// would pass the maximum size or is a day old.
func (l *Log) ensureFile(next int64) error {
	now := l.now()
	if l.f != nil && l.size+next <= l.limits.MaxFileSize && now.Sub(l.opened) < fileRotation {
		return nil
	}
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	name := filepath.Join(l.dir, "RECV"+now.UTC().Format("20060102T150405.000000000")+".log")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	n, _ := f.WriteString(header)
	l.f, l.size, l.opened = f, int64(n), now
	l.prune()
	return nil
}

// prune removes files past the maximum age, then the oldest while the
// total, counting the file being written at its largest, would pass the
// maximum size; the file being written stays.
func (l *Log) prune() {
	files, err := l.files()
	if err != nil {
		return
	}
	current := ""
	if l.f != nil {
		current = l.f.Name()
	}
	var total int64
	type kept struct {
		path string
		size int64
	}
	var keep []kept
	now := l.now()
	for _, p := range files {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if p != current && l.limits.MaxAge > 0 && now.Sub(fi.ModTime()) > l.limits.MaxAge {
			os.Remove(p)
			continue
		}
		if p != current {
			total += fi.Size()
			keep = append(keep, kept{p, fi.Size()})
		}
	}
	// The file being written may grow to MaxFileSize: room is kept for it.
	for _, k := range keep { // oldest first
		if l.limits.MaxTotalSize <= 0 || total+l.limits.MaxFileSize <= l.limits.MaxTotalSize {
			break
		}
		os.Remove(k.path)
		total -= k.size
	}
}

// files lists the log's files, oldest first (their names sort by time).
func (l *Log) files() ([]string, error) {
	ms, err := filepath.Glob(filepath.Join(l.dir, "RECV*.log"))
	slices.Sort(ms)
	return ms, err
}

// Close closes the current file, and the organizations' logs.
func (l *Log) Close() error {
	l.closeOrgs()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Query selects records: of sessions from ClientIP (all when invalid),
// from Since on, on the given connectors (all when empty), at most Limit
// (the newest; 0 means 1,000). Whole sessions are kept together only as
// far as the limit allows.
type Query struct {
	ClientIP   netip.Addr
	Since      time.Time
	Connectors []string
	Limit      int
}

// Read returns the records a query selects, oldest first.
func (l *Log) Read(q Query) ([]Record, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	l.mu.Lock()
	files, err := l.files()
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, p := range files {
		if fi, err := os.Stat(p); err == nil && fi.ModTime().Before(q.Since) {
			continue // nothing in it is new enough
		}
		f, err := os.Open(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by rotation meanwhile
			}
			return nil, err
		}
		recs, err := parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(p), err)
		}
		for _, r := range recs {
			if r.Time.Before(q.Since) ||
				q.ClientIP.IsValid() && r.Remote != q.ClientIP.Unmap().String() ||
				len(q.Connectors) > 0 && !slices.Contains(q.Connectors, r.Connector) {
				continue
			}
			out = append(out, r)
			if len(out) > 2*q.Limit {
				out = append(out[:0], out[len(out)-q.Limit:]...)
			}
		}
	}
	if len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	return out, nil
}

// parse reads a log file; a torn last line (a crash mid-write) is skipped.
func parse(r io.Reader) ([]Record, error) {
	br := bufio.NewReader(r)
	var out []Record
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			return out, nil // a line without its newline is torn
		}
		if err != nil {
			return out, err
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		if rec, ok := ParseRecord(line); ok {
			out = append(out, rec)
		}
	}
}

// ParseRecord reads one CSV line of a log file.
func ParseRecord(line string) (Record, bool) {
	f, err := csv.NewReader(strings.NewReader(line)).Read()
	if err != nil || len(f) != 7 {
		return Record{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, f[0])
	if err != nil {
		return Record{}, false
	}
	seq, err := strconv.Atoi(f[3])
	if err != nil {
		return Record{}, false
	}
	return Record{Time: t, Connector: f[1], Session: f[2], Sequence: seq, Remote: f[4], Event: f[5], Data: f[6]}, true
}

// Connector is a listener under the name Exchange gives the default
// receive connector on the same port, so that Exchange's instructions
// (Set-ReceiveConnector "Default Frontend ..." -ProtocolLoggingLevel
// Verbose) apply as written.
type Connector struct {
	Identity string
	Role     string // Postern's listener role, as in the configuration
	Port     int    // the standard port of the role
}

// Connectors are the three listeners: port 25 is Exchange's "Default
// Frontend", 587 its "Client Frontend", and 465 (implicit TLS, RFC 8314)
// its "Client Proxy", the connector that listens on 465.
var Connectors = []Connector{
	{Identity: "Default Frontend", Role: "mx", Port: 25},
	{Identity: "Client Frontend", Role: "submission", Port: 587},
	{Identity: "Client Proxy", Role: "submissions", Port: 465},
}

// ConnectorByName finds a connector by identity or role, ignoring case;
// an Exchange identity with the server name after it ("Default Frontend
// MAIL01", or "MAIL01\Default Frontend MAIL01") is accepted too.
func ConnectorByName(name string) (Connector, bool) {
	name = strings.TrimSpace(name)
	if _, after, ok := strings.Cut(name, `\`); ok {
		name = after
	}
	for _, c := range Connectors {
		if strings.EqualFold(name, c.Identity) || strings.EqualFold(name, c.Role) ||
			len(name) > len(c.Identity)+1 && strings.EqualFold(name[:len(c.Identity)+1], c.Identity+" ") {
			return c, true
		}
	}
	return Connector{}, false
}

// ForRole returns the connector identity of a listener role.
func ForRole(role string) string {
	for _, c := range Connectors {
		if c.Role == role {
			return c.Identity
		}
	}
	return role
}
