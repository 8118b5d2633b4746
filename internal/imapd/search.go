package imapd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decodes ISO-8859-x, Windows-125x... for header and text search
	"github.com/emersion/go-message/textproto"

	"postern.dev/postern/internal/store"
)

// SEARCH is answered in two passes. The first evaluates what the item list
// knows (sequence and UID sets, flags, sizes, internal dates) over one
// read of the folder's items; only messages that pass it are opened, and
// only for the criteria that need them: header criteria (FROM, SUBJECT,
// HEADER, SENTBEFORE...) read the header block; BODY and TEXT read the
// text, decoded from its transfer encoding. The message bytes one SEARCH
// may read are capped (Options.SearchBudget) and so is its time; past
// either it fails with [LIMIT] rather than going on (RFC 5530).

var errSearchLimit = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
	Text: "The search reads too much mail; narrow it (by date, folder or sender)."}

const searchTimeout = 60 * time.Second

func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.current()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), searchTimeout)
	defer cancel()
	items, err := s.srv.opts.Store.MailItems(ctx, s.acct.Mailbox, v.folder.ID, nil)
	if err != nil {
		return nil, s.storeErr(err, "search")
	}
	e := &evaluator{s: s, v: v, ctx: ctx, budget: s.srv.opts.SearchBudget}
	var data imap.SearchData
	var seqs imap.SeqSet
	var uids imap.UIDSet
	for i := range items {
		it := &items[i]
		seq := v.seqOf(it.UID)
		if seq == 0 {
			continue // not in the client's view yet
		}
		c := &candidate{item: it, seq: seq}
		ok, err := e.match(c, criteria)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		uids.AddNum(imap.UID(it.UID))
		num := seq
		if kind == imapserver.NumKindUID {
			num = it.UID
		} else {
			seqs.AddNum(seq)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		data.Max = max(data.Max, num)
		data.Count++
	}
	if kind == imapserver.NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	if options.ReturnSave {
		v.saved = uids
	}
	return &data, nil
}

// candidate is one message under evaluation, with what was read of it.
type candidate struct {
	item   *store.MailItem
	seq    uint32
	hdr    *textproto.Header
	text   []byte // lower-cased decoded text, once read
	hasTxt bool
}

type evaluator struct {
	s      *session
	v      *selected
	ctx    context.Context
	budget int64
}

// match evaluates criteria against a candidate: cheap keys first, so that
// a message that fails one never has its header or body read.
func (e *evaluator) match(c *candidate, k *imap.SearchCriteria) (bool, error) {
	if !e.matchMeta(c, k) {
		return false, nil
	}
	for _, n := range k.Not {
		if !cheapOnly(&n) {
			continue
		}
		ok, err := e.match(c, &n)
		if err != nil || ok {
			return false, err
		}
	}
	if len(k.Header) > 0 || !k.SentSince.IsZero() || !k.SentBefore.IsZero() {
		h, err := e.header(c)
		if err != nil {
			return false, err
		}
		for _, f := range k.Header {
			if !headerContains(h, f.Key, f.Value) {
				return false, nil
			}
		}
		if !k.SentSince.IsZero() || !k.SentBefore.IsZero() {
			d, err := mail.ParseDate(h.Get("Date"))
			if err != nil {
				return false, nil
			}
			if !matchDate(d, k.SentSince, k.SentBefore) {
				return false, nil
			}
		}
	}
	for _, needle := range k.Body {
		ok, err := e.textContains(c, needle, false)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, needle := range k.Text {
		ok, err := e.textContains(c, needle, true)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, n := range k.Not {
		if cheapOnly(&n) {
			continue
		}
		ok, err := e.match(c, &n)
		if err != nil || ok {
			return false, err
		}
	}
	for _, or := range k.Or {
		a, err := e.match(c, &or[0])
		if err != nil {
			return false, err
		}
		if a {
			continue
		}
		b, err := e.match(c, &or[1])
		if err != nil || !b {
			return false, err
		}
	}
	return true, nil
}

// cheapOnly reports whether criteria need nothing beyond the item list.
func cheapOnly(k *imap.SearchCriteria) bool {
	if len(k.Header) > 0 || len(k.Body) > 0 || len(k.Text) > 0 || !k.SentSince.IsZero() || !k.SentBefore.IsZero() {
		return false
	}
	for i := range k.Not {
		if !cheapOnly(&k.Not[i]) {
			return false
		}
	}
	for i := range k.Or {
		if !cheapOnly(&k.Or[i][0]) || !cheapOnly(&k.Or[i][1]) {
			return false
		}
	}
	return true
}

func (e *evaluator) matchMeta(c *candidate, k *imap.SearchCriteria) bool {
	it := c.item
	for _, set := range k.SeqNum {
		if !e.inSet(c, set) {
			return false
		}
	}
	for _, set := range k.UID {
		if !e.inSet(c, set) {
			return false
		}
	}
	if !matchDate(it.InternalDate, k.Since, k.Before) {
		return false
	}
	for _, f := range k.Flag {
		if !hasFlag(it.Flags, string(f)) {
			return false
		}
	}
	for _, f := range k.NotFlag {
		if hasFlag(it.Flags, string(f)) {
			return false
		}
	}
	if k.Larger != 0 && it.Size <= k.Larger {
		return false
	}
	if k.Smaller != 0 && it.Size >= k.Smaller {
		return false
	}
	return true
}

// inSet checks a sequence or UID set, "*" and "$" resolved against the
// view.
func (e *evaluator) inSet(c *candidate, set imap.NumSet) bool {
	if imap.IsSearchRes(set) {
		return e.v.saved.Contains(imap.UID(c.item.UID))
	}
	n := uint32(len(e.v.uids))
	switch set := set.(type) {
	case imap.SeqSet:
		for _, r := range set {
			a, b := staticRange(r.Start, r.Stop, n)
			if a <= c.seq && c.seq <= b {
				return true
			}
		}
	case imap.UIDSet:
		var top uint32
		if n > 0 {
			top = e.v.uids[n-1]
		}
		for _, r := range set {
			a, b := staticRange(uint32(r.Start), uint32(r.Stop), top)
			if a <= c.item.UID && c.item.UID <= b {
				return true
			}
		}
	}
	return false
}

// matchDate compares dates only (RFC 9051 section 6.4.4: "disregarding
// time and timezone").
func matchDate(t, since, before time.Time) bool {
	day := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) }
	d := day(t)
	if !since.IsZero() && d.Before(day(since)) {
		return false
	}
	if !before.IsZero() && !d.Before(day(before)) {
		return false
	}
	return true
}

// spend takes n bytes from the search's budget.
func (e *evaluator) spend(n int64) error {
	if err := e.ctx.Err(); err != nil {
		return errSearchLimit
	}
	if n > e.budget {
		return errSearchLimit
	}
	e.budget -= n
	return nil
}

func (e *evaluator) header(c *candidate) (*textproto.Header, error) {
	if c.hdr != nil {
		return c.hdr, nil
	}
	rc, err := e.s.srv.opts.Store.MessageBody(e.ctx, c.item.Message)
	if errors.Is(err, store.ErrNotFound) {
		h := textproto.Header{}
		c.hdr = &h
		return c.hdr, nil
	}
	if err != nil {
		return nil, e.s.storeErr(err, "search")
	}
	defer rc.Close()
	raw, err := readHeaderBlock(bufio.NewReader(rc))
	if err != nil {
		return nil, e.s.storeErr(err, "search")
	}
	if err := e.spend(int64(len(raw))); err != nil {
		return nil, err
	}
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	c.hdr = &h
	return c.hdr, nil
}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
	return gomessage.CharsetReader(charset, r)
}}

// headerContains implements HEADER, FROM, TO, CC, BCC and SUBJECT: a
// case-insensitive substring of any field of that name, after RFC 2047
// decoding; an empty value matches any message with the field (RFC 9051
// section 6.4.4).
func headerContains(h *textproto.Header, key, value string) bool {
	needle := strings.ToLower(value)
	fields := h.Values(key)
	if value == "" {
		return len(fields) > 0
	}
	for _, f := range fields {
		if d, err := wordDecoder.DecodeHeader(f); err == nil {
			f = d
		}
		if strings.Contains(strings.ToLower(f), needle) {
			return true
		}
	}
	return false
}

// textContains implements BODY (the text parts) and TEXT (header and
// text): the message is read once, its text parts decoded from their
// transfer encoding and charset, lower-cased and kept for the other
// criteria of the same search.
func (e *evaluator) textContains(c *candidate, needle string, withHeader bool) (bool, error) {
	n := strings.ToLower(needle)
	if withHeader {
		h, err := e.header(c)
		if err != nil {
			return false, err
		}
		for f := h.Fields(); f.Next(); {
			v := f.Value()
			if d, err := wordDecoder.DecodeHeader(v); err == nil {
				v = d
			}
			if strings.Contains(strings.ToLower(f.Key()+": "+v), n) {
				return true, nil
			}
		}
	}
	if !c.hasTxt {
		if err := e.spend(c.item.Size); err != nil {
			return false, err
		}
		rc, err := e.s.srv.opts.Store.MessageBody(e.ctx, c.item.Message)
		if errors.Is(err, store.ErrNotFound) {
			c.hasTxt = true
			return false, nil
		}
		if err != nil {
			return false, e.s.storeErr(err, "search")
		}
		c.text = bodyText(io.LimitReader(rc, c.item.Size))
		rc.Close()
		c.hasTxt = true
	}
	return bytes.Contains(c.text, []byte(n)), nil
}

// bodyText collects a message's text parts (text/*, decoded), lower-cased;
// a message that does not parse as MIME is taken as raw text after its
// header.
func bodyText(r io.Reader) []byte {
	var out bytes.Buffer
	ent, err := gomessage.Read(r)
	if ent == nil {
		return nil
	}
	if err != nil && !gomessage.IsUnknownCharset(err) && !gomessage.IsUnknownEncoding(err) {
		io.Copy(&out, ent.Body)
		return bytes.ToLower(out.Bytes())
	}
	ent.Walk(func(_ []int, part *gomessage.Entity, err error) error {
		if err != nil && !gomessage.IsUnknownCharset(err) && !gomessage.IsUnknownEncoding(err) {
			return nil
		}
		t, _, _ := part.Header.ContentType()
		if t == "" || strings.HasPrefix(t, "text/") {
			io.Copy(&out, part.Body)
			out.WriteByte('\n')
		}
		return nil
	})
	return bytes.ToLower(out.Bytes())
}
