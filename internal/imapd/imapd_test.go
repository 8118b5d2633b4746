package imapd

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlite"
)

func TestListSpecialUseAndHiddenFolders(t *testing.T) {
	h := newHarness(t)
	c := h.login(t, nil)
	list, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true}}).Collect()
	must(t, err)
	got := map[string][]imap.MailboxAttr{}
	var names []string
	for _, l := range list {
		got[l.Mailbox] = l.Attrs
		names = append(names, l.Mailbox)
	}
	want := []string{"INBOX", "Archive", "Deleted Items", "Drafts", "Junk Email", "Sent Items"}
	if !slices.Equal(names, want) {
		t.Fatalf("LIST names = %q, want %q", names, want)
	}
	for name, attr := range map[string]imap.MailboxAttr{"Sent Items": imap.MailboxAttrSent, "Drafts": imap.MailboxAttrDrafts,
		"Deleted Items": imap.MailboxAttrTrash, "Junk Email": imap.MailboxAttrJunk, "Archive": imap.MailboxAttrArchive} {
		if !slices.Contains(got[name], attr) {
			t.Errorf("%s attrs %v lack %s", name, got[name], attr)
		}
	}
	if _, err := c.Select("Outbox", nil).Wait(); err == nil {
		t.Error("Outbox must not be selectable over IMAP")
	}
	if err := c.Delete("Sent Items").Wait(); err == nil || !strings.Contains(err.Error(), "CANNOT") {
		t.Errorf("deleting a default folder: %v, want NO [CANNOT]", err)
	}
	ns, err := c.Namespace().Wait()
	must(t, err)
	if len(ns.Personal) != 1 || ns.Personal[0].Prefix != "" || ns.Personal[0].Delim != '/' {
		t.Errorf("NAMESPACE = %+v", ns)
	}
}

func TestSelectFetchStoreCopyMoveExpunge(t *testing.T) {
	h := newHarness(t)
	for i := range 3 {
		h.deliver(t, h.sean.ID, store.Inbox, fmt.Sprintf("msg %d", i), "hello body")
	}
	c := h.login(t, nil)
	sel, err := c.Select("INBOX", nil).Wait()
	must(t, err)
	if sel.NumMessages != 3 || sel.UIDNext != 4 || sel.UIDValidity == 0 {
		t.Fatalf("SELECT = %+v", sel)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(1, 2, 3), &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, Envelope: true,
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, Peek: true}, {Peek: true}}}).Collect()
	must(t, err)
	if len(msgs) != 3 {
		t.Fatalf("fetched %d messages", len(msgs))
	}
	for i, m := range msgs {
		if m.Envelope == nil || m.Envelope.Subject != fmt.Sprintf("msg %d", i) {
			t.Errorf("envelope %d: %+v", i, m.Envelope)
		}
		var full, hdr []byte
		for _, b := range m.BodySection {
			if b.Section.Specifier == imap.PartSpecifierHeader {
				hdr = b.Bytes
			} else {
				full = b.Bytes
			}
		}
		if int64(len(full)) != m.RFC822Size || !strings.HasSuffix(string(full), "hello body\r\n") || !strings.HasSuffix(string(hdr), "\r\n\r\n") {
			t.Errorf("message %d: size %d, full %q, header %q", i, m.RFC822Size, full, hdr)
		}
		if len(m.Flags) != 0 {
			t.Errorf("PEEK set flags %v", m.Flags)
		}
	}
	// STORE and implicit \Seen.
	must(t, c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "$Work"}}, nil).Close())
	got, err := c.Fetch(imap.UIDSetNum(2), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierText}}}).Collect()
	must(t, err)
	if !slices.Contains(got[0].Flags, imap.FlagSeen) {
		t.Errorf("BODY[TEXT] did not set \\Seen: %v", got[0].Flags)
	}
	for _, b := range got[0].BodySection {
		if string(b.Bytes) != "hello body\r\n" {
			t.Errorf("BODY[TEXT] = %q", b.Bytes)
		}
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true}).Wait()
	must(t, err)
	if *st.NumMessages != 3 || *st.NumUnseen != 2 {
		t.Errorf("STATUS = messages %d unseen %d", *st.NumMessages, *st.NumUnseen)
	}
	// COPY and MOVE with UIDPLUS.
	cp, err := c.Copy(imap.UIDSetNum(1, 2), "Archive").Wait()
	must(t, err)
	if cp.DestUIDs.String() != "1:2" || cp.SourceUIDs.String() != "1:2" {
		t.Errorf("COPYUID = %+v", cp)
	}
	mv, err := c.Move(imap.UIDSetNum(3), "Deleted Items").Wait()
	must(t, err)
	if mv.DestUIDs.String() != "1" {
		t.Errorf("MOVE COPYUID = %+v", mv)
	}
	// EXPUNGE of \Deleted.
	must(t, c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	exp, err := c.Expunge().Collect()
	must(t, err)
	if !slices.Equal(exp, []uint32{1}) {
		t.Errorf("EXPUNGE = %v", exp)
	}
	sel2, err := c.Select("Archive", nil).Wait()
	must(t, err)
	if sel2.NumMessages != 2 {
		t.Errorf("Archive has %d messages", sel2.NumMessages)
	}
	fl, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	must(t, err)
	if !slices.Contains(fl[0].Flags, imap.FlagFlagged) || !slices.Contains(fl[0].Flags, "$Work") {
		t.Errorf("copy lost its flags: %v", fl[0].Flags)
	}
	// SEARCH.
	must(t, c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close())
	for _, tc := range []struct {
		crit imap.SearchCriteria
		want string
	}{
		{imap.SearchCriteria{}, "1:2"},
		{imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, "1"},
		{imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, "1:2"},
		{imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "MSG 1"}}}, "2"},
		{imap.SearchCriteria{Body: []string{"HELLO"}}, "1:2"},
		{imap.SearchCriteria{Text: []string{"chris@contoso"}}, "1:2"},
		{imap.SearchCriteria{Body: []string{"absent"}}, ""},
		{imap.SearchCriteria{Not: []imap.SearchCriteria{{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "msg 0"}}}}}, "2"},
		{imap.SearchCriteria{SentSince: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, "1:2"},
		{imap.SearchCriteria{SentBefore: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, ""},
	} {
		res, err := c.UIDSearch(&tc.crit, nil).Wait()
		must(t, err)
		if got := res.All.String(); got != tc.want {
			t.Errorf("UID SEARCH %+v = %q, want %q", tc.crit, got, tc.want)
		}
	}
	// APPEND with APPENDUID, and the size cap.
	msg := "From: sean@contoso.com\r\nSubject: draft\r\n\r\ndraft body\r\n"
	ap := c.Append("Drafts", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft}})
	io.WriteString(ap, msg)
	must(t, ap.Close())
	ad, err := ap.Wait()
	must(t, err)
	if ad.UID != 1 || ad.UIDValidity == 0 {
		t.Errorf("APPENDUID = %+v", ad)
	}
	// Folders.
	must(t, c.Create("Projects/2026", nil).Wait())
	must(t, c.Rename("Projects", "Work", nil).Wait())
	list, err := c.List("", "Work*", nil).Collect()
	must(t, err)
	if len(list) != 2 || list[0].Mailbox != "Work" || list[1].Mailbox != "Work/2026" {
		t.Errorf("after RENAME: %+v", list)
	}
	if err := c.Delete("Work").Wait(); err == nil {
		t.Error("deleting a folder with subfolders succeeded")
	}
	must(t, c.Delete("Work/2026").Wait())
	must(t, c.Delete("Work").Wait())
}

func TestIdleWakesOnDelivery(t *testing.T) {
	h := newHarness(t)
	var exists atomic.Uint32
	c := h.login(t, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists.Store(*d.NumMessages)
			}
		},
	}})
	_, err := c.Select("Sent Items", nil).Wait()
	must(t, err)
	idle, err := c.Idle()
	must(t, err)
	// Wait until the server has the subscription, then deliver the way a
	// submission files its Sent Items copy.
	waitUntil(t, 10*time.Second, "IDLE subscription", func() bool { return h.st.Hub().Watchers() == 1 })
	start := time.Now()
	sub := &store.Submission{OrgID: h.org.ID, MessageID: "s1", Subject: "sent", ReceivedAt: time.Now(),
		EnvelopeFrom: "sean@contoso.com", Body: []byte("Subject: sent\r\n\r\nbody\r\n"), Recipients: 1, SentItems: h.sean.ID}
	must(t, h.st.Commit(t.Context(), sub))
	waitUntil(t, 10*time.Second, "EXISTS during IDLE", func() bool { return exists.Load() == 1 })
	t.Logf("IDLE notified %v after the commit", time.Since(start).Round(time.Millisecond))
	if d := time.Since(start); d > time.Second {
		t.Errorf("IDLE notification took %v, want under a second", d)
	}
	must(t, idle.Close())
	must(t, idle.Wait())
	f, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	must(t, err)
	if !slices.Contains(f[0].Flags, imap.FlagSeen) {
		t.Errorf("Sent Items copy is not read: %v", f[0].Flags)
	}
}

func TestTwoSessionsSeeEachOthersChanges(t *testing.T) {
	h := newHarness(t)
	h.deliver(t, h.sean.ID, store.Inbox, "one", "x")
	h.deliver(t, h.sean.ID, store.Inbox, "two", "x")
	var expunged, fetched atomic.Int32
	a := h.login(t, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Expunge: func(uint32) { expunged.Add(1) },
		Fetch:   func(*imapclient.FetchMessageData) { fetched.Add(1) },
	}})
	b := h.login(t, nil)
	_, err := a.Select("INBOX", nil).Wait()
	must(t, err)
	_, err = b.Select("INBOX", nil).Wait()
	must(t, err)
	must(t, b.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	_, err = b.Expunge().Collect()
	must(t, err)
	// A FETCH must not report the expunge (RFC 9051 section 7.5.1); NOOP does.
	msgs, err := a.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{UID: true}).Collect()
	must(t, err)
	if expunged.Load() != 0 {
		t.Fatal("EXPUNGE sent during FETCH")
	}
	if len(msgs) != 1 || msgs[0].UID != 2 {
		t.Errorf("FETCH after a foreign expunge: %+v", msgs)
	}
	must(t, a.Noop().Wait())
	if expunged.Load() != 1 {
		t.Errorf("NOOP reported %d expunges, want 1", expunged.Load())
	}
	if n := a.Mailbox().NumMessages; n != 1 {
		t.Errorf("client view has %d messages", n)
	}
	must(t, b.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagAnswered}}, nil).Close())
	must(t, a.Noop().Wait())
	// imapclient hands an unsolicited FETCH to its handler on a goroutine
	// of its own: the count is awaited, not read at once.
	deadline := time.Now().Add(10 * time.Second)
	for fetched.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if fetched.Load() != 1 {
		t.Errorf("flag change reported %d times, want 1", fetched.Load())
	}
}

// TestStableAcrossRestart: UIDVALIDITY and UIDs survive closing and
// opening the store again.
func TestStableAcrossRestart(t *testing.T) {
	h := newHarness(t)
	h.deliver(t, h.sean.ID, store.Inbox, "a", "x")
	h.deliver(t, h.sean.ID, store.Inbox, "b", "x")
	c := h.login(t, nil)
	before, err := c.Select("INBOX", nil).Wait()
	must(t, err)
	c.Close()
	ctx := t.Context()
	f1, err := h.st.MailFolderByName(ctx, h.sean.ID, "Inbox")
	must(t, err)
	must(t, h.st.Close())
	st, err := sqlite.Open(h.dir)
	must(t, err)
	defer st.Close()
	f2, err := st.MailFolderByName(ctx, h.sean.ID, "INBOX")
	must(t, err)
	if f1.UIDValidity != f2.UIDValidity || f2.UIDValidity != before.UIDValidity || f2.UIDNext != 3 {
		t.Errorf("after reopen: %+v, before %+v", f2, f1)
	}
	uids, _, err := st.MailUIDs(ctx, h.sean.ID, f2.ID)
	must(t, err)
	if !slices.Equal(uids, []uint32{1, 2}) {
		t.Errorf("UIDs after reopen: %v", uids)
	}
}

func TestSignInAnswers(t *testing.T) {
	h := newHarness(t)
	c := h.dial(t, nil)
	err := c.Login("sean@contoso.com", "wrong").Wait()
	if err == nil || !strings.Contains(err.Error(), "LOGIN failed.") || !strings.Contains(err.Error(), "AUTHENTICATIONFAILED") {
		t.Errorf("bad password: %v", err)
	}
	err = c.Login("busy@contoso.com", "x").Wait()
	if err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
		t.Errorf("throttled: %v", err)
	}
	err = c.Authenticate(sasl.NewPlainClient("", "sean@contoso.com", "wrong"))
	if err == nil || !strings.Contains(err.Error(), "AUTHENTICATE failed.") {
		t.Errorf("AUTHENTICATE PLAIN bad password: %v", err)
	}
	must(t, c.Authenticate(sasl.NewPlainClient("", "sean@contoso.com", "secret")))

	// XOAUTH2 with a good token.
	c2 := h.dial(t, nil)
	must(t, c2.Authenticate(xoauth2{"sean@contoso.com", "tok-sean"}))
	if _, err := c2.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// OAUTHBEARER with a bad one.
	c3 := h.dial(t, nil)
	err = c3.Authenticate(sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "sean@contoso.com", Token: "nope"}))
	if err == nil {
		t.Error("OAUTHBEARER with a bad token signed in")
	}

	// A Close refusal answers, then the server hangs up.
	raw := rawTLS(t, h)
	raw.cmd(t, "a LOGIN blocked@contoso.com x", "a NO")
	raw.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.r.ReadString('\n'); err == nil {
		t.Error("connection still open after a Close refusal")
	}
}

type xoauth2 struct{ user, token string }

func (x xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}
func (x xoauth2) Next([]byte) ([]byte, error) { return []byte{}, nil }

// TestStartTLSPolicy: port 143 offers STARTTLS and LOGINDISABLED, refuses
// LOGIN before TLS, and signs in after it.
func TestStartTLSPolicy(t *testing.T) {
	h := newHarness(t)
	conn, err := net.Dial("tcp", h.plain)
	must(t, err)
	defer conn.Close()
	r := bufio.NewReader(conn)
	greet, _ := r.ReadString('\n')
	if !strings.Contains(greet, "STARTTLS") || !strings.Contains(greet, "LOGINDISABLED") || strings.Contains(greet, "AUTH=") {
		t.Fatalf("greeting on 143: %q", greet)
	}
	fmt.Fprintf(conn, "a LOGIN sean@contoso.com secret\r\n")
	line, _ := r.ReadString('\n')
	if !strings.HasPrefix(line, "a NO [PRIVACYREQUIRED]") {
		t.Errorf("LOGIN before TLS: %q", line)
	}
	c, err := imapclient.DialStartTLS(h.plain, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: h.roots, ServerName: "127.0.0.1"}})
	must(t, err)
	defer c.Close()
	must(t, c.Login("sean@contoso.com", "secret").Wait())
	if !c.Caps().Has(imap.CapIdle) {
		t.Errorf("caps after sign-in: %v", c.Caps())
	}
}

type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func rawTLS(t *testing.T, h *harness) *rawConn {
	t.Helper()
	c, err := tls.Dial("tcp", h.tlsAddr, &tls.Config{RootCAs: h.roots, ServerName: "127.0.0.1"})
	must(t, err)
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	return &rawConn{c, r}
}

// cmd sends a line and reads until a line starting with want's tag,
// checking its prefix; it returns every line read.
func (rc *rawConn) cmd(t *testing.T, line, want string) []string {
	t.Helper()
	rc.c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(rc.c, line+"\r\n"); err != nil {
		t.Fatal(err)
	}
	tag, _, _ := strings.Cut(want, " ")
	var lines []string
	for {
		l, err := rc.r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v (read %q)", line, err, lines)
		}
		lines = append(lines, l)
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, want) {
				t.Fatalf("%q answered %q, want %q", line, l, want)
			}
			return lines
		}
	}
}

// TestBadInput: oversized literals, overlong lines, unterminated literals
// and 10,000 FETCH ranges get clean answers.
func TestBadInput(t *testing.T) {
	h := newHarness(t)
	for range 5 {
		h.deliver(t, h.sean.ID, store.Inbox, "x", "y")
	}
	rc := rawTLS(t, h)
	// Before sign-in: an APPEND literal is refused before it is read.
	rc.cmd(t, "a0 APPEND INBOX {1000000}", "a0 NO [TOOBIG]")
	rc.cmd(t, "a1 LOGIN sean@contoso.com secret", "a1 OK")
	rc.cmd(t, "a2 SELECT INBOX", "a2 OK")
	// A literal larger than APPENDLIMIT is refused without a continuation.
	rc.cmd(t, "a3 APPEND INBOX {999999999}", "a3 NO [TOOBIG]")
	// A literal inside an ordinary command is capped at 4 KiB.
	// imapserver refuses it without a continuation, but its decoder then
	// waits for the rest of the line until its 30 s command timeout and
	// answers NO [SERVERBUG]: slow, yet nothing is read or buffered.
	rc.cmd(t, "a4 SELECT {100000}", "a4 NO")
	// 10,000 ranges in one FETCH.
	var b strings.Builder
	for i := range 10000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d", i%5+1)
	}
	lines := rc.cmd(t, "a5 FETCH "+b.String()+" (FLAGS)", "a5 OK")
	if len(lines) != 6 {
		t.Errorf("10,000 ranges over 5 messages answered %d lines, want 5 FETCH + OK", len(lines))
	}
	// An overlong line (over imapserver's 50 KiB) gets an error, and the
	// connection stays usable or closes; it never grows without bound.
	long := "a6 FETCH 1 (" + strings.Repeat("FLAGS ", 20000) + ")"
	rc.c.SetDeadline(time.Now().Add(60 * time.Second))
	io.WriteString(rc.c, long+"\r\n")
	sawError := false
	for {
		l, err := rc.r.ReadString('\n')
		if err != nil {
			break // closed: fine
		}
		if strings.Contains(l, " BAD ") || strings.Contains(l, " NO ") || strings.HasPrefix(l, "* BYE") {
			sawError = true
		}
		if strings.HasPrefix(l, "a6 ") || strings.HasPrefix(l, "* BYE") {
			break
		}
		if sawError {
			// Garbage tail lines answered BAD one by one: drain with a tag.
			io.WriteString(rc.c, "a7 NOOP\r\n")
			rc.cmd(t, "a8 NOOP", "a8 OK")
			break
		}
	}
	if !sawError {
		t.Error("an overlong line got no error")
	}

	// An unterminated literal: the server waits for it within its read
	// timeout; the client going away ends the session cleanly.
	rc2 := rawTLS(t, h)
	rc2.cmd(t, "b1 LOGIN sean@contoso.com secret", "b1 OK")
	io.WriteString(rc2.c, "b2 APPEND INBOX {100}\r\n")
	l, _ := rc2.r.ReadString('\n')
	if !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND continuation: %q", l)
	}
	io.WriteString(rc2.c, "only a few bytes")
	rc2.c.Close()
	// The store got nothing half-written.
	waitUntil(t, 10*time.Second, "session end", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		return len(h.srv.sessions) <= 1
	})
	f, err := h.st.MailFolderByName(t.Context(), h.sean.ID, "Inbox")
	must(t, err)
	if f.Messages != 5 {
		t.Errorf("Inbox has %d messages after a broken APPEND, want 5", f.Messages)
	}
}

func TestShutdownSaysBye(t *testing.T) {
	h := newHarness(t)
	rc := rawTLS(t, h)
	rc.cmd(t, "a LOGIN sean@contoso.com secret", "a OK")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextWithTimeout(10 * time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, _ := rc.r.ReadString('\n')
	if !strings.HasPrefix(l, "* BYE") {
		t.Errorf("on shutdown: %q", l)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
