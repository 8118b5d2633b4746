package protolog

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Protocol logging per inbound connector (Set-InboundConnector
// -ProtocolLoggingLevel Verbose) is an organization's own setting, read by
// that organization's admins. A listener's log cannot serve them: it holds
// every organization's sessions. Nor can a connector's session be logged
// as it goes, because a connector is matched per recipient, after the
// first commands (policy.JudgeAnonymous), and one session can carry
// another organization's recipients. So:
//
//   - a session from a client that could match a logged connector is held
//     in memory (Pending), capped at MaxPendingRecords and
//     MaxPendingBytes, and nothing is written while it lasts;
//   - at its end it is written to the log of each organization under whose
//     connector at least one command was actually judged (Matched), and
//     dropped if there is none: an address merely in a connector's range
//     proves nothing about whose session it was;
//   - each organization's copy is masked for it: an address the client
//     named (MAIL FROM, RCPT TO, VRFY, EXPN) is shown only to the
//     organizations the SMTP session said may see it (Party), and the
//     replies that answer such a command have the address masked too, so
//     that no organization sees another's addresses.
//
// The copies go to a directory per organization, DATA/protolog/org-<id>,
// rotated and pruned with the same limits as the listeners' log. One
// directory per organization, rather than records tagged with the
// organization in shared files, makes the wall structural: reading an
// organization's log never opens a file holding another's sessions, so a
// filtering mistake cannot leak them, and one organization's volume can
// never push another's records out of the size limit.

// The cap on a held session: past it the session's records are counted,
// not kept, and the copies written say how many are missing.
const (
	MaxPendingRecords = 256
	MaxPendingBytes   = 64 << 10
)

// pendingOverhead approximates a record's fixed fields in a file, so that
// a session of many empty lines is capped too.
const pendingOverhead = 64

// Org is the log of one organization's inbound connectors, opened on
// first use.
func (l *Log) Org(id int64) (*Log, error) {
	if id <= 0 {
		return nil, fmt.Errorf("protocol log of organization %d: not an organization", id)
	}
	l.orgMu.Lock()
	defer l.orgMu.Unlock()
	if o := l.orgs[id]; o != nil {
		return o, nil
	}
	o, err := Open(filepath.Join(l.dir, orgDirName(id)), l.limits)
	if err != nil {
		return nil, err
	}
	o.now = l.now
	if l.orgs == nil {
		l.orgs = map[int64]*Log{}
	}
	l.orgs[id] = o
	return o, nil
}

func orgDirName(id int64) string { return "org-" + strconv.FormatInt(id, 10) }

// OrgIDs lists the organizations that have a connector log on disk.
func (l *Log) OrgIDs() ([]int64, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, e := range entries {
		if rest, ok := strings.CutPrefix(e.Name(), "org-"); ok && e.IsDir() {
			if id, err := strconv.ParseInt(rest, 10, 64); err == nil && id > 0 && orgDirName(id) == e.Name() {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// ReadOrg reads an organization's connector log; an organization that
// never logged has none, which is no error.
func (l *Log) ReadOrg(id int64, q Query) ([]Record, error) {
	if _, err := os.Stat(filepath.Join(l.dir, orgDirName(id))); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	o, err := l.Org(id)
	if err != nil {
		return nil, err
	}
	return o.Read(q)
}

// closeOrgs closes the organizations' files.
func (l *Log) closeOrgs() {
	l.orgMu.Lock()
	defer l.orgMu.Unlock()
	for _, o := range l.orgs {
		o.Close()
	}
}

// Party is an address a client named, and who may see it: the
// organizations listed, or every organization when Public.
type Party struct {
	// Address is the address as the server understood it, which replies
	// echo; empty when it did not parse.
	Address string
	Orgs    []int64
	Public  bool
}

func (p *Party) visibleTo(org int64) bool {
	return p != nil && (p.Public || slices.Contains(p.Orgs, org))
}

// Match is an organization's connector under which a command was judged.
type Match struct {
	OrgID     int64
	Connector string
}

// clientArg is the argument of a command that names an address, as the
// client wrote it, and the party the session said it is.
type clientArg struct {
	raw   string
	party *Party
}

type heldRecord struct {
	Record
	// arg is the addressing command this record is, or answers; nil for
	// every other record.
	arg *clientArg
}

// Pending is one connection's transcript, held until the connection ends
// and then written, masked, to the log of every organization whose
// connector judged one of its commands. It is used by the connection's
// goroutine only.
type Pending struct {
	log    *Log
	id     string
	remote string
	seq    int

	recs  []heldRecord
	bytes int
	// over counts the records and bytes past the cap.
	over, overBytes int
	firstOver       int

	cur     *clientArg
	matched []Match
	done    bool
}

// Pending starts holding a connection's transcript under session ID id
// (the SMTP session's, as the message trace has it).
func (l *Log) Pending(id string, ip netip.Addr) *Pending {
	p := &Pending{log: l, id: id, remote: ip.Unmap().String()}
	p.add("+", "", nil)
	return p
}

// ID is the session's identifier.
func (p *Pending) ID() string { return p.id }

// Received records a line the client sent (see Session.Received).
func (p *Pending) Received(line string, sasl bool) {
	p.cur = nil
	if !sasl {
		if raw, ok := addressArgument(line); ok {
			p.cur = &clientArg{raw: raw}
		}
	}
	p.add("<", Mask(line, sasl), p.cur)
}

// Sent records a reply; the lines that answer an addressing command carry
// it, so that the address they may echo is masked with the command.
func (p *Pending) Sent(reply string) {
	for _, line := range strings.Split(strings.TrimRight(reply, "\r\n"), "\r\n") {
		p.add(">", line, p.cur)
	}
}

// Message records a message or a BDAT chunk by its size only.
func (p *Pending) Message(bytes int64) {
	p.add("*", fmt.Sprintf("<message of %d bytes>", bytes), nil)
}

// Named says who may see the address of the command being answered (the
// last MAIL FROM, RCPT TO, VRFY or EXPN). An addressing command never
// named (a syntax error the engine refused) is masked for everyone.
func (p *Pending) Named(party Party) {
	if p.cur != nil {
		p.cur.party = &party
	}
}

// Matched records that a command was accepted or refused under an
// organization's logged connector: the session will be written to that
// organization's log.
func (p *Pending) Matched(org int64, connector string) {
	m := Match{OrgID: org, Connector: connector}
	if !slices.Contains(p.matched, m) {
		p.matched = append(p.matched, m)
	}
}

// Matches lists the connectors the session was judged under, in order.
func (p *Pending) Matches() []Match { return p.matched }

// Discard drops what is held and stops holding: the client turned out
// not to be able to match a logged connector.
func (p *Pending) Discard() {
	p.recs, p.cur, p.matched, p.done = nil, nil, nil, true
}

// Close ends the session: its copies are written to the organizations
// whose connector it matched, and nothing at all when it matched none.
func (p *Pending) Close() {
	if p.done {
		return
	}
	p.done = true
	last := heldRecord{Record: p.record("-", "")}
	for _, m := range p.matched {
		o, err := p.log.Org(m.OrgID)
		if err != nil {
			continue // logging must never break a session
		}
		o.appendAll(p.copyFor(m, last))
	}
	p.recs = nil
}

// copyFor renders the organization's copy: its addresses only, the
// truncation marker when the cap was reached, and the disconnect.
func (p *Pending) copyFor(m Match, last heldRecord) []Record {
	out := make([]Record, 0, len(p.recs)+2)
	for _, h := range p.recs {
		r := h.Record
		r.Connector = m.Connector
		if h.arg != nil && !h.arg.party.visibleTo(m.OrgID) {
			r.Data = maskAddressed(r.Event, r.Data, h.arg)
		}
		out = append(out, r)
	}
	if p.over > 0 {
		r := last.Record
		r.Event, r.Sequence = "*", p.firstOver
		r.Data = fmt.Sprintf("truncated: %d more records (%d bytes) not kept; a held session keeps at most %d records or %d bytes", p.over, p.overBytes, MaxPendingRecords, MaxPendingBytes)
		r.Connector = m.Connector
		out = append(out, r)
	}
	r := last.Record
	r.Connector = m.Connector
	return append(out, r)
}

func (p *Pending) record(event, data string) Record {
	r := Record{Time: p.log.now().UTC(), Session: p.id, Sequence: p.seq, Remote: p.remote, Event: event, Data: data}
	p.seq++
	return r
}

func (p *Pending) add(event, data string, arg *clientArg) {
	if p.done {
		return
	}
	size := len(data) + pendingOverhead
	if p.over > 0 || len(p.recs) >= MaxPendingRecords || p.bytes+size > MaxPendingBytes {
		if p.over == 0 {
			p.firstOver = p.seq
		}
		p.over++
		p.overBytes += len(data)
		p.seq++
		return
	}
	p.bytes += size
	p.recs = append(p.recs, heldRecord{Record: p.record(event, data), arg: arg})
}

// addressVerbs are the commands whose argument is an address.
var addressVerbs = []string{"MAIL", "RCPT", "VRFY", "EXPN"}

// addressArgument finds the address a command names: the path of MAIL
// FROM:<...> and RCPT TO:<...> (RFC 5321 section 4.1.1.2-3), up to the
// closing bracket or the first space, or the argument of VRFY and EXPN.
// ok is false for every other line.
func addressArgument(line string) (raw string, ok bool) {
	verb, rest, _ := strings.Cut(line, " ")
	if !slices.ContainsFunc(addressVerbs, func(v string) bool { return strings.EqualFold(v, verb) }) {
		return "", false
	}
	if strings.EqualFold(verb, "VRFY") || strings.EqualFold(verb, "EXPN") {
		return strings.TrimSpace(rest), true
	}
	if _, after, found := strings.Cut(rest, ":"); found {
		rest = after
	}
	rest = strings.TrimLeft(rest, " ")
	if after, found := strings.CutPrefix(rest, "<"); found {
		if path, _, closed := strings.Cut(after, ">"); closed {
			return path, true
		}
		return after, true
	}
	path, _, _ := strings.Cut(rest, " ")
	return path, true
}

// maskAddressed hides an address from an organization that may not see
// it: the command is reduced to its verb with the address as ****
// ("RCPT TO:<****>"; parameters go too, since ORCPT and AUTH= carry
// addresses), and a reply loses every place it echoes the address.
func maskAddressed(event, data string, arg *clientArg) string {
	if event == "<" {
		verb, _, _ := strings.Cut(data, " ")
		switch strings.ToUpper(verb) {
		case "MAIL":
			return "MAIL FROM:<****>"
		case "RCPT":
			return "RCPT TO:<****>"
		default:
			return strings.ToUpper(verb) + " ****"
		}
	}
	data = replaceFold(data, arg.raw)
	if arg.party != nil {
		data = replaceFold(data, arg.party.Address)
	}
	return data
}

// replaceFold replaces every occurrence of s in data, in any case, with
// ****.
func replaceFold(data, s string) string {
	if s == "" || len(s) > len(data) {
		return data
	}
	var b strings.Builder
	for i := 0; i < len(data); {
		if i+len(s) <= len(data) && strings.EqualFold(data[i:i+len(s)], s) {
			b.WriteString("****")
			i += len(s)
			continue
		}
		b.WriteByte(data[i])
		i++
	}
	return b.String()
}

// appendAll writes a session's records together, so that another session
// ending at the same time never interleaves with them.
func (l *Log) appendAll(recs []Record) {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(formatRecord(r))
	}
	text := b.String()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.ensureFile(int64(len(text))); err != nil {
		return
	}
	n, _ := l.f.WriteString(text)
	l.size += int64(n)
}

// orgLogs is the state Log keeps for its organizations' logs.
type orgLogs struct {
	orgMu sync.Mutex
	orgs  map[int64]*Log
}
