package imapd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"postern.dev/postern/internal/store"
)

// Fetch answers FETCH from the item list (flags, size, date: one query
// for the whole set) and, per message, from its stored body, streamed:
// BODY[], BODY[TEXT] and their partial forms are copied from the store to
// the connection without holding the message in memory. MIME-part
// sections and BINARY go through imapserver's extractors, which buffer the
// part; those of large messages take a server-wide slot (Server.parts) so
// that only a few are in memory at once.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, o *imap.FetchOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.current()
	if err != nil {
		return err
	}
	refs := v.resolve(numSet)
	if len(refs) == 0 {
		return nil
	}
	ctx, cancel := s.ctx()
	defer cancel()
	items, err := s.srv.opts.Store.MailItems(ctx, s.acct.Mailbox, v.folder.ID, uidRanges(refs))
	if err != nil {
		return s.storeErr(err, "fetch")
	}
	byUID := make(map[uint32]*store.MailItem, len(items))
	for i := range items {
		byUID[items[i].UID] = &items[i]
	}
	// RFC 9051 section 6.4.5: BODY[...] (not PEEK) sets \Seen, and the
	// FETCH response then carries the new FLAGS.
	seenNow := map[uint32]bool{}
	if !v.readOnly && setsSeen(o) {
		var unseen []ref
		for _, r := range refs {
			if it := byUID[r.uid]; it != nil && !hasFlag(it.Flags, store.FlagSeen) {
				unseen = append(unseen, r)
			}
		}
		if len(unseen) > 0 {
			res, err := s.srv.opts.Store.SetMailFlags(ctx, s.acct.Mailbox, v.folder.ID, uidRanges(unseen), store.FlagsAdd, []string{store.FlagSeen})
			if err != nil {
				return s.storeErr(err, "fetch")
			}
			v.absorb(res.PrevModSeq, res.HighestModSeq)
			for _, c := range res.Changed {
				if it := byUID[c.UID]; it != nil {
					it.Flags = c.Flags
					seenNow[c.UID] = true
				}
			}
		}
	}
	needBody := o.Envelope || o.BodyStructure != nil || len(o.BodySection) > 0 || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0
	for _, r := range refs {
		it := byUID[r.uid]
		if it == nil {
			continue // expunged meanwhile; the client learns it at the next EXPUNGE
		}
		var m *message
		if needBody {
			m = &message{s: s, ctx: ctx, item: it}
			if err := m.loadHeader(); errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return s.storeErr(err, "fetch")
			}
		}
		mw := w.CreateMessage(r.seq)
		if o.UID {
			mw.WriteUID(imap.UID(it.UID))
		}
		if o.Flags || seenNow[it.UID] {
			mw.WriteFlags(toFlags(it.Flags))
		}
		if o.InternalDate {
			mw.WriteInternalDate(it.InternalDate)
		}
		if o.RFC822Size {
			mw.WriteRFC822Size(it.Size)
		}
		if m != nil {
			if err := m.write(mw, o); err != nil {
				mw.Close()
				return err
			}
		}
		if err := mw.Close(); err != nil {
			return err
		}
	}
	return nil
}

func setsSeen(o *imap.FetchOptions) bool {
	for _, b := range o.BodySection {
		if !b.Peek {
			return true
		}
	}
	for _, b := range o.BinarySection {
		if !b.Peek {
			return true
		}
	}
	return false
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

// maxHeaderBytes bounds the header block read into memory; a message with
// a longer header is served with its first maxHeaderBytes as header.
const maxHeaderBytes = 1 << 20

// bigMessage is the size from which a MIME-part extraction takes one of
// the server's few slots.
const bigMessage = 1 << 20

// message is one stored message being fetched.
type message struct {
	s    *session
	ctx  context.Context
	item *store.MailItem
	raw  []byte // the header block, blank line included
	hdr  textproto.Header
}

func (m *message) open() (io.ReadCloser, error) {
	return m.s.srv.opts.Store.MessageBody(m.ctx, m.item.Message)
}

// loadHeader reads the header block (and checks the body still exists).
func (m *message) loadHeader() error {
	rc, err := m.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	m.raw, err = readHeaderBlock(bufio.NewReader(rc))
	if err != nil {
		return err
	}
	m.hdr, _ = textproto.ReadHeader(bufio.NewReader(bytes.NewReader(m.raw)))
	return nil
}

// readHeaderBlock reads up to and including the empty line that ends a
// message's header (RFC 5322 section 2.1), at most maxHeaderBytes.
func readHeaderBlock(br *bufio.Reader) ([]byte, error) {
	var buf bytes.Buffer
	for buf.Len() < maxHeaderBytes {
		line, err := br.ReadSlice('\n')
		if len(line) > maxHeaderBytes-buf.Len() {
			line = line[:maxHeaderBytes-buf.Len()]
		}
		buf.Write(line)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return buf.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		if len(line) <= 2 && strings.TrimRight(string(line), "\r\n") == "" {
			return buf.Bytes(), nil
		}
	}
	return buf.Bytes(), nil
}

func (m *message) write(mw *imapserver.FetchResponseWriter, o *imap.FetchOptions) error {
	if o.Envelope {
		mw.WriteEnvelope(imapserver.ExtractEnvelope(m.hdr))
	}
	if o.BodyStructure != nil {
		rc, err := m.open()
		if err != nil {
			return err
		}
		bs := imapserver.ExtractBodyStructure(rc)
		rc.Close()
		mw.WriteBodyStructure(bs)
	}
	for _, sec := range o.BodySection {
		if err := m.writeSection(mw, sec); err != nil {
			return err
		}
	}
	for _, sec := range o.BinarySection {
		var b []byte
		if err := m.buffered(func(r io.Reader) { b = imapserver.ExtractBinarySection(r, sec) }); err != nil {
			return err
		}
		if err := writeLiteral(mw.WriteBinarySection(sec, int64(len(b))), bytes.NewReader(b), int64(len(b))); err != nil {
			return err
		}
	}
	for _, sec := range o.BinarySectionSize {
		var n uint32
		if err := m.buffered(func(r io.Reader) { n = imapserver.ExtractBinarySectionSize(r, sec) }); err != nil {
			return err
		}
		mw.WriteBinarySectionSize(sec, n)
	}
	return nil
}

// buffered runs an imapserver extractor over the message, holding a slot
// for a large one.
func (m *message) buffered(fn func(io.Reader)) error {
	if m.item.Size > bigMessage {
		select {
		case m.s.srv.parts <- struct{}{}:
			defer func() { <-m.s.srv.parts }()
		case <-m.ctx.Done():
			return m.ctx.Err()
		}
	}
	rc, err := m.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	fn(rc)
	return nil
}

// partialRange is the part of a section of size total that a <start.size>
// suffix asks for.
func partialRange(p *imap.SectionPartial, total int64) (start, n int64) {
	if p == nil {
		return 0, total
	}
	start = min(max(p.Offset, 0), total)
	n = total - start
	if p.Size >= 0 && p.Size < n {
		n = p.Size
	}
	return start, n
}

func (m *message) writeSection(mw *imapserver.FetchResponseWriter, sec *imap.FetchItemBodySection) error {
	if len(sec.Part) == 0 {
		switch {
		case sec.Specifier == imap.PartSpecifierNone:
			return m.stream(mw, sec, 0, m.item.Size)
		case sec.Specifier == imap.PartSpecifierText:
			hl := int64(len(m.raw))
			return m.stream(mw, sec, hl, max(m.item.Size-hl, 0))
		case sec.Specifier == imap.PartSpecifierHeader && len(sec.HeaderFields) == 0 && len(sec.HeaderFieldsNot) == 0:
			start, n := partialRange(sec.Partial, int64(len(m.raw)))
			return writeLiteral(mw.WriteBodySection(sec, n), bytes.NewReader(m.raw[start:start+n]), n)
		case sec.Specifier == imap.PartSpecifierHeader:
			b := imapserver.ExtractBodySection(bytes.NewReader(m.raw), sec)
			return writeLiteral(mw.WriteBodySection(sec, int64(len(b))), bytes.NewReader(b), int64(len(b)))
		}
	}
	var b []byte
	if err := m.buffered(func(r io.Reader) { b = imapserver.ExtractBodySection(r, sec) }); err != nil {
		return err
	}
	return writeLiteral(mw.WriteBodySection(sec, int64(len(b))), bytes.NewReader(b), int64(len(b)))
}

// stream writes the bytes [off, off+total) of the message (or the part of
// them a partial asks for) straight from the store.
func (m *message) stream(mw *imapserver.FetchResponseWriter, sec *imap.FetchItemBodySection, off, total int64) error {
	start, n := partialRange(sec.Partial, total)
	rc, err := m.open()
	if err != nil {
		// Released meanwhile: the literal is announced with its size only
		// once the body is open, so nothing half-written goes out.
		return err
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, off+start); err != nil && err != io.EOF {
		return err
	}
	return writeLiteral(mw.WriteBodySection(sec, n), rc, n)
}

// writeLiteral copies exactly n bytes into a literal, padding with spaces
// if the source ends early, so the protocol stays framed whatever the
// store returns.
func writeLiteral(w io.WriteCloser, r io.Reader, n int64) error {
	// A read error (the disk) after the literal's size went out still
	// owes the client n bytes; a write error fails the padding too.
	c, _ := io.CopyN(w, r, n)
	for c < n {
		k := min(n-c, 4096)
		if _, err := w.Write(bytes.Repeat([]byte{' '}, int(k))); err != nil {
			w.Close()
			return err
		}
		c += k
	}
	return w.Close()
}
