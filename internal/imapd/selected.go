package imapd

import (
	"context"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"postern.dev/postern/internal/store"
)

// selected is the client's view of the selected folder: its UIDs in
// sequence-number order (message n is uids[n-1]), the MODSEQ the view is
// up to date with, and the UIDs the store has expunged that the client
// has not been told about yet (RFC 9051 section 7.5.1: EXPUNGE may not be
// sent during FETCH, STORE or SEARCH, so those messages keep their
// sequence numbers until a command that allows it).
//
// The view is refreshed from the store (MailChanges since its MODSEQ)
// after every command and when the store signals a change to an idling
// session; nothing is shared between sessions in memory, so sessions on
// other nodes of a shared store work the same way.
type selected struct {
	folder   store.MailFolder
	readOnly bool
	uids     []uint32
	modseq   uint64
	uidNext  uint32
	pending  map[uint32]bool // expunged, not announced
	saved    imap.UIDSet     // SEARCHRES ($)
}

// seqOf is the sequence number of a UID in the view, 0 if absent.
func (v *selected) seqOf(uid uint32) uint32 {
	i, ok := slices.BinarySearch(v.uids, uid)
	if !ok {
		return 0
	}
	return uint32(i + 1)
}

// absorb takes a change this session made as known when nothing else
// happened in between (prev is the folder's MODSEQ before it), so that it
// is not reported back to the session that made it.
func (v *selected) absorb(prev, next uint64) {
	if prev == v.modseq && next > v.modseq {
		v.modseq = next
	}
}

// flagNames is what FLAGS and PERMANENTFLAGS list: the system flags and
// the keywords clients commonly set; \* lets a client create others.
var flagNames = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft,
	"$Forwarded", "$MDNSent", "$Junk", "$NotJunk"}

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	s.mu.Lock()
	s.sel = nil // RFC 9051 section 6.3.2: a failed SELECT leaves no folder selected
	s.mu.Unlock()
	f, err := s.folder(ctx, name)
	if err != nil {
		return nil, s.storeErr(err, "select")
	}
	uids, state, err := s.srv.opts.Store.MailUIDs(ctx, s.acct.Mailbox, f.ID)
	if err != nil {
		return nil, s.storeErr(err, "select")
	}
	v := &selected{folder: state, readOnly: options.ReadOnly, uids: uids, modseq: state.HighestModSeq,
		uidNext: state.UIDNext, pending: map[uint32]bool{}}
	perm := append(slices.Clone(flagNames), imap.FlagWildcard)
	if v.readOnly {
		perm = nil
	}
	data := &imap.SelectData{
		Flags:          flagNames,
		PermanentFlags: perm,
		NumMessages:    uint32(len(uids)),
		UIDNext:        imap.UID(state.UIDNext),
		UIDValidity:    state.UIDValidity,
	}
	// IMAP4rev1's [UNSEEN n]: the first unread message.
	data.FirstUnseenSeqNum = v.seqOf(state.FirstUnseen)
	s.mu.Lock()
	s.sel = v
	s.mu.Unlock()
	return data, nil
}

func (s *session) Unselect() error {
	s.mu.Lock()
	s.sel = nil
	s.mu.Unlock()
	return nil
}

// Poll reports what changed in the selected folder since the view's
// MODSEQ: flag changes (FETCH), expunges (when allowed) and new messages
// (EXISTS).
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pollLocked(w, allowExpunge)
}

func (s *session) pollLocked(w *imapserver.UpdateWriter, allowExpunge bool) error {
	v := s.sel
	if v == nil {
		return nil
	}
	ctx, cancel := s.ctx()
	defer cancel()
	c, err := s.srv.opts.Store.MailChanges(ctx, s.acct.Mailbox, v.folder.ID, v.modseq)
	if err != nil {
		// The folder was deleted under the session, or the store failed:
		// say so and leave the view as it is.
		s.log.Warn("imap poll", "folder", v.folder.Name, "error", err)
		return nil
	}
	if c.HighestModSeq != v.modseq {
		for _, u := range c.Expunged {
			if v.seqOf(u) != 0 {
				v.pending[u] = true
			}
		}
		var added []uint32
		for _, it := range c.Changed {
			if it.UID >= v.uidNext {
				if !slices.Contains(c.Expunged, it.UID) {
					added = append(added, it.UID)
				}
				continue
			}
			seq := v.seqOf(it.UID)
			if seq == 0 || v.pending[it.UID] {
				continue
			}
			if err := w.WriteMessageFlags(seq, imap.UID(it.UID), toFlags(it.Flags)); err != nil {
				return err
			}
		}
		v.modseq, v.uidNext = c.HighestModSeq, max(v.uidNext, c.UIDNext)
		if allowExpunge {
			if err := v.flushExpunges(w.WriteExpunge); err != nil {
				return err
			}
		}
		if len(added) > 0 {
			v.uids = append(v.uids, added...)
			if err := w.WriteNumMessages(uint32(len(v.uids))); err != nil {
				return err
			}
		}
		return nil
	}
	if allowExpunge {
		return v.flushExpunges(w.WriteExpunge)
	}
	return nil
}

// flushExpunges announces pending expunges, highest sequence number first
// (so that each stays valid as the ones above it go), and drops them from
// the view.
func (v *selected) flushExpunges(write func(uint32) error) error {
	if len(v.pending) == 0 {
		return nil
	}
	seqs := make([]uint32, 0, len(v.pending))
	for u := range v.pending {
		if seq := v.seqOf(u); seq != 0 {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	for i := len(seqs) - 1; i >= 0; i-- {
		if err := write(seqs[i]); err != nil {
			return err
		}
	}
	v.uids = slices.DeleteFunc(v.uids, func(u uint32) bool { return v.pending[u] })
	clear(v.pending)
	return nil
}

// idlePoll is how often an idling session looks at the store even without
// a signal: a change made by another process on the same data directory
// (an offline cmdlet) signals no one in this one.
const idlePoll = 30 * time.Second

func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	t := time.NewTicker(idlePoll)
	defer t.Stop()
	for {
		if err := s.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-s.watch.C:
		case <-t.C:
		}
	}
}

func toFlags(l []string) []imap.Flag {
	out := make([]imap.Flag, len(l))
	for i, f := range l {
		out[i] = imap.Flag(f)
	}
	return out
}

func fromFlags(l []imap.Flag) []string {
	out := make([]string, len(l))
	for i, f := range l {
		out[i] = string(f)
	}
	return out
}

// ref is a message the client named: its sequence number and UID.
type ref struct{ seq, uid uint32 }

// resolve turns a sequence or UID set into the messages of the view it
// names, in ascending order, each once. Ranges are sorted and merged
// first, so a set of 10,000 overlapping ranges costs no more than its
// union: O(ranges log ranges + ranges log n + matches).
func (v *selected) resolve(set imap.NumSet) []ref {
	if imap.IsSearchRes(set) {
		set = v.saved
	}
	n := uint32(len(v.uids))
	var ranges []store.UIDRange
	isUID := false
	switch set := set.(type) {
	case imap.SeqSet:
		if n == 0 {
			return nil
		}
		for _, r := range set {
			a, b := staticRange(r.Start, r.Stop, n)
			ranges = append(ranges, store.UIDRange{Start: a, Stop: b})
		}
	case imap.UIDSet:
		isUID = true
		var maxUID uint32
		if n > 0 {
			maxUID = v.uids[n-1]
		}
		for _, r := range set {
			a, b := staticRange(uint32(r.Start), uint32(r.Stop), maxUID)
			ranges = append(ranges, store.UIDRange{Start: a, Stop: b})
		}
	default:
		return nil
	}
	ranges = mergeRanges(ranges)
	var out []ref
	for _, r := range ranges {
		if !isUID {
			for seq := r.Start; seq <= min(r.Stop, n) && seq != 0; seq++ {
				out = append(out, ref{seq, v.uids[seq-1]})
				if seq == ^uint32(0) {
					break
				}
			}
			continue
		}
		i, _ := slices.BinarySearch(v.uids, r.Start)
		for ; i < len(v.uids) && v.uids[i] <= r.Stop; i++ {
			out = append(out, ref{uint32(i + 1), v.uids[i]})
		}
	}
	return out
}

// staticRange resolves "*" (0) to max and orders the ends (RFC 9051
// section 9: "4:2" is "2:4").
func staticRange(a, b, max uint32) (uint32, uint32) {
	if a == 0 {
		a = max
	}
	if b == 0 {
		b = max
	}
	if a > b {
		a, b = b, a
	}
	return a, b
}

func mergeRanges(in []store.UIDRange) []store.UIDRange {
	slices.SortFunc(in, func(a, b store.UIDRange) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	out := in[:0]
	for _, r := range in {
		if k := len(out); k > 0 && uint64(r.Start) <= uint64(out[k-1].Stop)+1 {
			out[k-1].Stop = max(out[k-1].Stop, r.Stop)
			continue
		}
		out = append(out, r)
	}
	return out
}

// uidRanges compresses refs (ascending) into UID ranges for the store.
func uidRanges(refs []ref) []store.UIDRange {
	var out []store.UIDRange
	for _, r := range refs {
		if k := len(out); k > 0 && out[k-1].Stop+1 == r.uid {
			out[k-1].Stop = r.uid
			continue
		}
		out = append(out, store.UIDRange{Start: r.uid, Stop: r.uid})
	}
	return out
}

// current returns the selected view, or an error for commands that need
// one (imapserver checks the state; this guards a folder deleted away).
func (s *session) current() (*selected, error) {
	if s.sel == nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "No folder selected."}
	}
	return s.sel, nil
}

var errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "The folder is open read-only."}

// writable returns the selected view for a command that changes the
// folder (STORE, MOVE), or errReadOnly when it was opened with EXAMINE
// (RFC 9051 section 6.3.3).
func (s *session) writable() (*selected, error) {
	v, err := s.current()
	if err == nil && v.readOnly {
		return nil, errReadOnly
	}
	return v, err
}

func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.writable()
	if err != nil {
		return err
	}
	refs := v.resolve(numSet)
	if len(refs) == 0 {
		return nil
	}
	op := store.FlagsSet
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = store.FlagsAdd
	case imap.StoreFlagsDel:
		op = store.FlagsRemove
	}
	ctx, cancel := s.ctx()
	defer cancel()
	res, err := s.srv.opts.Store.SetMailFlags(ctx, s.acct.Mailbox, v.folder.ID, uidRanges(refs), op, fromFlags(flags.Flags))
	if err != nil {
		return s.storeErr(err, "store")
	}
	v.absorb(res.PrevModSeq, res.HighestModSeq)
	if flags.Silent {
		return nil
	}
	items, err := s.srv.opts.Store.MailItems(ctx, s.acct.Mailbox, v.folder.ID, uidRanges(refs))
	if err != nil {
		return s.storeErr(err, "store")
	}
	byUID := make(map[uint32]*store.MailItem, len(items))
	for i := range items {
		byUID[items[i].UID] = &items[i]
	}
	for _, r := range refs {
		it := byUID[r.uid]
		if it == nil {
			continue
		}
		mw := w.CreateMessage(r.seq)
		mw.WriteUID(imap.UID(r.uid))
		mw.WriteFlags(toFlags(it.Flags))
		if err := mw.Close(); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) destination(ctx context.Context, name string) (store.MailFolder, error) {
	d, err := s.folder(ctx, name)
	if err != nil {
		// RFC 9051 section 6.4.7: TRYCREATE when the target is missing.
		return d, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "The destination folder doesn't exist."}
	}
	return d, nil
}

func copyData(res store.CopyResult) *imap.CopyData {
	d := &imap.CopyData{UIDValidity: res.UIDValidity}
	for i := range res.Source {
		d.SourceUIDs.AddNum(imap.UID(res.Source[i]))
		d.DestUIDs.AddNum(imap.UID(res.Dest[i]))
	}
	return d
}

func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.current()
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	d, err := s.destination(ctx, dest)
	if err != nil {
		return nil, err
	}
	refs := v.resolve(numSet)
	if len(refs) == 0 {
		return nil, nil
	}
	res, err := s.srv.opts.Store.CopyMail(ctx, s.acct.Mailbox, v.folder.ID, uidRanges(refs), d.ID)
	if err != nil {
		return nil, s.storeErr(err, "copy")
	}
	if len(res.Source) == 0 {
		return nil, nil
	}
	return copyData(res), nil
}

func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.writable()
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	d, err := s.destination(ctx, dest)
	if err != nil {
		return err
	}
	if d.ID == v.folder.ID {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Source and destination are the same folder."}
	}
	refs := v.resolve(numSet)
	if len(refs) == 0 {
		return nil
	}
	res, ex, err := s.srv.opts.Store.MoveMail(ctx, s.acct.Mailbox, v.folder.ID, uidRanges(refs), d.ID)
	if err != nil {
		return s.storeErr(err, "move")
	}
	if len(res.Source) == 0 {
		return nil
	}
	if err := w.WriteCopyData(copyData(res)); err != nil {
		return err
	}
	v.absorb(ex.PrevModSeq, ex.HighestModSeq)
	for _, u := range ex.UIDs {
		v.pending[u] = true
	}
	return v.flushExpunges(w.WriteExpunge)
}

func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.current()
	if err != nil {
		return err
	}
	if v.readOnly {
		// CLOSE after EXAMINE expunges nothing (RFC 9051 section 6.4.1).
		return nil
	}
	var ranges []store.UIDRange
	if uids != nil {
		// UID EXPUNGE (RFC 4315): only those, among the view's.
		ranges = uidRanges(v.resolve(*uids))
		if len(ranges) == 0 {
			return nil
		}
	}
	ctx, cancel := s.ctx()
	defer cancel()
	ex, err := s.srv.opts.Store.ExpungeMail(ctx, s.acct.Mailbox, v.folder.ID, ranges)
	if err != nil {
		return s.storeErr(err, "expunge")
	}
	v.absorb(ex.PrevModSeq, ex.HighestModSeq)
	for _, u := range ex.UIDs {
		if v.seqOf(u) != 0 {
			v.pending[u] = true
		}
	}
	return v.flushExpunges(w.WriteExpunge)
}
