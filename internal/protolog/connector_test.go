package protolog

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// step is one event of a held session, as the SMTP session reports it.
type step struct {
	recv  string // a client line
	sent  string // a reply
	named *Party // Named, for the command being answered
	match *Match // Matched
}

func recv(l string) step               { return step{recv: l} }
func sent(l string) step               { return step{sent: l} }
func named(p Party) step               { return step{named: &p} }
func matched(org int64, c string) step { return step{match: &Match{org, c}} }

func play(p *Pending, steps []step) {
	for _, s := range steps {
		switch {
		case s.recv != "":
			p.Received(s.recv, false)
		case s.sent != "":
			p.Sent(s.sent + "\r\n")
		case s.named != nil:
			p.Named(*s.named)
		case s.match != nil:
			p.Matched(s.match.OrgID, s.match.Connector)
		}
	}
	p.Close()
}

// dataOf reads an organization's log as "event data" lines.
func dataOf(t *testing.T, l *Log, org int64) []string {
	t.Helper()
	recs, err := l.ReadOrg(org, Query{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, strings.TrimSpace(r.Event+" "+r.Data))
	}
	return out
}

// TestPendingKeepOrDrop: a held session is written only to the
// organizations under whose logged connector a command was judged; a
// session that matched none leaves nothing on disk.
func TestPendingKeepOrDrop(t *testing.T) {
	mail := []step{recv("EHLO printer"), sent("250 mail.contoso.com"), recv("MAIL FROM:<scan@contoso.com>"),
		named(Party{Address: "scan@contoso.com", Orgs: []int64{1}}), sent("250 2.1.0 Sender OK")}
	for _, tc := range []struct {
		name    string
		steps   []step
		written map[int64]string // organization: connector
	}{
		{"no command judged under a connector", mail, nil},
		{"nothing but a connection", nil, nil},
		{"judged under organization 1's connector", append(append([]step{}, mail...), matched(1, "Printers")), map[int64]string{1: "Printers"}},
		{"judged twice under the same connector", append(append([]step{}, mail...), matched(1, "Printers"), matched(1, "Printers")), map[int64]string{1: "Printers"}},
		{"judged under two organizations' connectors", append(append([]step{}, mail...), matched(1, "Printers"), matched(2, "Relays")),
			map[int64]string{1: "Printers", 2: "Relays"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir, DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			play(l.Pending("S1", netip.MustParseAddr("192.0.2.7")), tc.steps)
			ids, err := l.OrgIDs()
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != len(tc.written) {
				t.Fatalf("organizations with a log: %v, want %v", ids, tc.written)
			}
			for org, connector := range tc.written {
				recs, err := l.ReadOrg(org, Query{})
				if err != nil || len(recs) == 0 {
					t.Fatalf("organization %d: %v %v", org, recs, err)
				}
				for _, r := range recs {
					if r.Connector != connector || r.Session != "S1" || r.Remote != "192.0.2.7" {
						t.Errorf("organization %d record %+v", org, r)
					}
				}
				if recs[0].Event != "+" || recs[len(recs)-1].Event != "-" {
					t.Errorf("organization %d: not a whole session: %+v", org, recs)
				}
			}
			if files, _ := filepath.Glob(filepath.Join(dir, "RECV*.log")); len(files) != 0 {
				t.Errorf("the listeners' log was written: %v", files)
			}
		})
	}
	// A discarded session is not written even if it matched before.
	l, err := Open(t.TempDir(), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := l.Pending("S2", netip.MustParseAddr("192.0.2.8"))
	p.Matched(1, "Printers")
	p.Discard()
	p.Received("QUIT", false)
	p.Close()
	if ids, _ := l.OrgIDs(); len(ids) != 0 {
		t.Errorf("discarded session written for %v", ids)
	}
}

// TestPendingMasking: each organization's copy shows the addresses the
// session said it may see, and masks the others' in the command and in
// the replies that echo them; syntax errors (never named) are masked for
// everyone; AUTH payloads stay masked as in every protocol log.
func TestPendingMasking(t *testing.T) {
	mine := Party{Address: "out@fabrikam.example", Orgs: []int64{1}}
	theirs := Party{Address: "bob@northwind.test", Orgs: []int64{2}}
	nobody := Party{Address: "x@outside.example"}
	public := Party{Public: true}
	for _, tc := range []struct {
		name  string
		steps []step
		org   int64
		want  []string // the records between "+" and "-"
	}{
		{"own recipient kept", []step{recv("RCPT TO:<out@fabrikam.example>"), named(mine), sent("250 2.1.5 Recipient OK")}, 1,
			[]string{"< RCPT TO:<out@fabrikam.example>", "> 250 2.1.5 Recipient OK"}},
		{"another organization's recipient masked", []step{recv("RCPT TO:<Bob@Northwind.test> NOTIFY=NEVER"), named(theirs),
			sent("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient bob@northwind.test not found by SMTP address lookup")}, 1,
			[]string{"< RCPT TO:<****>", "> 550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient **** not found by SMTP address lookup"}},
		{"the same line kept for its organization", []step{recv("RCPT TO:<Bob@Northwind.test>"), named(theirs), sent("250 2.1.5 Recipient OK")}, 2,
			[]string{"< RCPT TO:<Bob@Northwind.test>", "> 250 2.1.5 Recipient OK"}},
		{"an outside recipient not relayed masked", []step{recv("rcpt to: <x@outside.example>"), named(nobody),
			sent("550 5.7.64 TenantAttribution; Relay Access Denied [x@outside.example]")}, 1,
			[]string{"< RCPT TO:<****>", "> 550 5.7.64 TenantAttribution; Relay Access Denied [****]"}},
		{"a recipient never named (syntax error) masked", []step{recv("RCPT TO:<bob@northwind.test"), sent("501 5.1.3 Bad recipient address syntax <bob@northwind.test")}, 1,
			[]string{"< RCPT TO:<****>", "> 501 5.1.3 Bad recipient address syntax <****"}},
		{"a sender of another organization masked, parameters too", []step{recv("MAIL FROM:<bob@northwind.test> AUTH=<bob@northwind.test> SIZE=10"), named(theirs),
			sent("250 2.1.0 Sender OK")}, 1,
			[]string{"< MAIL FROM:<****>", "> 250 2.1.0 Sender OK"}},
		{"the null sender is public", []step{recv("MAIL FROM:<>"), named(public), sent("250 2.1.0 Sender OK")}, 1,
			[]string{"< MAIL FROM:<>", "> 250 2.1.0 Sender OK"}},
		{"VRFY masked unless named", []step{recv("VRFY bob@northwind.test"), sent("252 2.1.5 Cannot VRFY bob@northwind.test")}, 1,
			[]string{"< VRFY ****", "> 252 2.1.5 Cannot VRFY ****"}},
		{"other commands and replies untouched", []step{recv("EHLO bob@northwind.test"), sent("250 mail.contoso.com Hello"), recv("NOOP"), sent("250 2.0.0 OK")}, 1,
			[]string{"< EHLO bob@northwind.test", "> 250 mail.contoso.com Hello", "< NOOP", "> 250 2.0.0 OK"}},
		{"a reply after the next command is not the masked one's", []step{recv("RCPT TO:<bob@northwind.test>"), named(theirs), sent("250 2.1.5 Recipient OK"),
			recv("RCPT TO:<out@fabrikam.example>"), named(mine), sent("250 2.1.5 Recipient OK out@fabrikam.example")}, 1,
			[]string{"< RCPT TO:<****>", "> 250 2.1.5 Recipient OK", "< RCPT TO:<out@fabrikam.example>", "> 250 2.1.5 Recipient OK out@fabrikam.example"}},
		{"AUTH payload masked", []step{recv("AUTH PLAIN AHVzZXIAc2VjcmV0"), sent("535 5.7.3 Authentication unsuccessful")}, 1,
			[]string{"< AUTH PLAIN ****", "> 535 5.7.3 Authentication unsuccessful"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Open(t.TempDir(), DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			steps := append(tc.steps, matched(tc.org, "C"))
			play(l.Pending("S", netip.MustParseAddr("192.0.2.9")), steps)
			got := dataOf(t, l, tc.org)
			if len(got) < 2 || got[0] != "+" || got[len(got)-1] != "-" {
				t.Fatalf("not a whole session: %q", got)
			}
			if strings.Join(got[1:len(got)-1], "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got[1:len(got)-1], "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestPendingCap: a session past the cap keeps its first records, counts
// the rest, and says so before the disconnect, which is always written.
func TestPendingCap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines int
		size  int
		kept  int // records kept, "+" included
	}{
		{"under the cap", 10, 10, 11},
		{"records cap", 1000, 10, MaxPendingRecords},
		// "+" and as many "NOOP <2000 digits>" lines as fit.
		{"bytes cap", 100, 2000, 1 + (MaxPendingBytes-pendingOverhead)/(len("NOOP ")+2000+pendingOverhead)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Open(t.TempDir(), DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			p := l.Pending("S", netip.MustParseAddr("192.0.2.10"))
			for i := range tc.lines {
				p.Received(fmt.Sprintf("NOOP %0*d", tc.size, i), false)
			}
			if len(p.recs) > MaxPendingRecords || p.bytes > MaxPendingBytes {
				t.Fatalf("held %d records, %d bytes", len(p.recs), p.bytes)
			}
			p.Matched(1, "C")
			p.Close()
			recs, err := l.ReadOrg(1, Query{Limit: 100000})
			if err != nil {
				t.Fatal(err)
			}
			last := recs[len(recs)-1]
			if last.Event != "-" || last.Sequence != tc.lines+1 {
				t.Errorf("last record %+v, want the disconnect with sequence %d", last, tc.lines+1)
			}
			truncated := recs[len(recs)-2].Event == "*" && strings.HasPrefix(recs[len(recs)-2].Data, "truncated: ")
			if want := tc.kept < tc.lines+1; truncated != want {
				t.Errorf("truncation marker %v, want %v: %+v", truncated, want, recs[len(recs)-2])
			}
			kept := len(recs) - 1
			if truncated {
				kept--
				if m := recs[len(recs)-2].Data; !strings.Contains(m, fmt.Sprintf("%d more records", tc.lines+1-tc.kept)) {
					t.Errorf("marker %q", m)
				}
			}
			if kept != tc.kept {
				t.Errorf("kept %d records, want %d", kept, tc.kept)
			}
		})
	}
}

// TestOrgLogsApart: each organization's records are in its own
// directory, and the listeners' log reads none of them.
func TestOrgLogsApart(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for org := int64(1); org <= 2; org++ {
		p := l.Pending(fmt.Sprint("S", org), netip.MustParseAddr("192.0.2.1"))
		p.Received(fmt.Sprintf("EHLO org%d", org), false)
		p.Matched(org, "C")
		p.Close()
	}
	for org := int64(1); org <= 2; org++ {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("org-%d", org))); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(dataOf(t, l, org), "|")
		if !strings.Contains(got, fmt.Sprintf("EHLO org%d", org)) || strings.Contains(got, fmt.Sprintf("EHLO org%d", 3-org)) {
			t.Errorf("organization %d reads %q", org, got)
		}
	}
	if recs, err := l.Read(Query{}); err != nil || len(recs) != 0 {
		t.Errorf("listeners' log: %v %v", recs, err)
	}
	if recs, err := l.ReadOrg(3, Query{}); err != nil || len(recs) != 0 {
		t.Errorf("an organization without a log: %v %v", recs, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "org-3")); err == nil {
		t.Error("reading created a directory")
	}
}

func TestAddressArgument(t *testing.T) {
	for _, tc := range []struct {
		line string
		raw  string
		ok   bool
	}{
		{"RCPT TO:<a@b.test>", "a@b.test", true},
		{"rcpt to: <a@b.test> NOTIFY=NEVER", "a@b.test", true},
		{"MAIL FROM:<>", "", true},
		{"MAIL FROM:a@b.test SIZE=1", "a@b.test", true},
		{"RCPT TO:<a@b.test", "a@b.test", true},
		{"VRFY Bob Smith", "Bob Smith", true},
		{"EXPN staff", "staff", true},
		{"RCPT", "", true},
		{"EHLO a@b.test", "", false},
		{"DATA", "", false},
		{"", "", false},
	} {
		raw, ok := addressArgument(tc.line)
		if raw != tc.raw || ok != tc.ok {
			t.Errorf("addressArgument(%q) = %q, %v; want %q, %v", tc.line, raw, ok, tc.raw, tc.ok)
		}
	}
}

// FuzzMaskAddressed: whatever a client writes, a masked command and the
// reply echoing it never contain the address it named.
func FuzzMaskAddressed(f *testing.F) {
	for _, s := range []string{"RCPT TO:<bob@northwind.test>", "MAIL FROM:<a@b> AUTH=<a@b>", "VRFY x", "rcpt to:<Ä@ü.test>", "RCPT TO:<<<>>>", "RCPT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		raw, ok := addressArgument(line)
		if !ok {
			return
		}
		arg := &clientArg{raw: raw}
		verb, _, _ := strings.Cut(line, " ")
		want := strings.ToUpper(verb) + " ****"
		switch strings.ToUpper(verb) {
		case "MAIL":
			want = "MAIL FROM:<****>"
		case "RCPT":
			want = "RCPT TO:<****>"
		}
		if cmd := maskAddressed("<", line, arg); cmd != want {
			t.Errorf("masked command %q, want %q", cmd, want)
		}
		// An exact occurrence is always replaced; "****" can only make a
		// new one of an argument with a '*' in it.
		rep := maskAddressed(">", "550 5.1.10 Recipient "+raw+" not found", arg)
		if raw != "" && !strings.Contains(raw, "*") && strings.Contains(rep, raw) {
			t.Errorf("masked reply %q still has %q", rep, raw)
		}
	})
}
