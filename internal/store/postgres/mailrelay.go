package postgres

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// mailboxChannel is the NOTIFY channel on which nodes tell each other which
// mailboxes' folders changed, so that an IMAP IDLE session on one node
// hears of a delivery committed by another (RFC 2177: the server sends
// EXISTS "as soon as" a message arrives, whichever node took it).
//
// The payload is "NODE ID ID ...": the sending node's random id (its own
// notifications wake its sessions directly, through the hub, and are
// skipped when they come back) and decimal mailbox ids.
const mailboxChannel = "postern_mailbox"

// relayGather is how long the relay collects changed mailboxes before it
// sends them: under load a commit group finishes every few milliseconds,
// and one NOTIFY per gathering costs one round trip and one entry in
// PostgreSQL's notification queue instead of one per commit. Small
// against how soon an IDLE client expects EXISTS.
const relayGather = 10 * time.Millisecond

// maxPayload keeps a NOTIFY payload under PostgreSQL's 8000-byte limit.
const maxPayload = 7900

// mailboxRelay collects the mailboxes this node's commits touched, for
// RelayMailboxChanges to send.
type mailboxRelay struct {
	node string

	mu      sync.Mutex
	pending map[int64]struct{}
	wake    chan struct{}
}

// maxPendingRelay bounds the set of mailboxes waiting to be announced;
// past it (the database unreachable for long, say) further ids are
// dropped: a missed signal costs an IDLE client its wake-up until its
// next command, never a message, and the listeners of other nodes wake
// every session anyway when they reconnect.
const maxPendingRelay = 100000

func (r *mailboxRelay) add(ids []int64) {
	r.mu.Lock()
	for _, id := range ids {
		if id != 0 && len(r.pending) < maxPendingRelay {
			r.pending[id] = struct{}{}
		}
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take empties the pending set.
func (r *mailboxRelay) take() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(r.pending))
	for id := range r.pending {
		ids = append(ids, id)
	}
	clear(r.pending)
	slices.Sort(ids)
	return ids
}

// notifyMailboxes wakes the sessions watching the given mailboxes on this
// node at once and, while RelayMailboxChanges runs, on every other node.
func (s *Store) notifyMailboxes(ids ...int64) {
	s.hub.Notify(ids...)
	if r := s.relay.Load(); r != nil {
		r.add(ids)
	}
}

// RelayMailboxChanges implements store.MailboxChangeRelay: it sends this
// node's folder changes to the other nodes and wakes this node's IDLE
// sessions for theirs, until ctx ends or the store closes. Listening
// takes a connection of its own (LISTEN holds it); sending uses the pool.
//
// What is guaranteed: a change is announced after its transaction
// committed, so a woken session finds it; a node whose listener lost its
// connection wakes every session it has when it is back, since what was
// said meanwhile went unheard. A node killed between a commit and its
// announcement leaves the other nodes' sessions unwoken until their
// client's next command; the message itself is committed and shown then.
func (s *Store) RelayMailboxChanges(ctx context.Context) {
	ctx, cancel := s.untilClosed(ctx)
	defer cancel()
	r := &mailboxRelay{node: newNodeID(), pending: map[int64]struct{}{}, wake: make(chan struct{}, 1)}
	s.relay.Store(r)
	defer s.relay.Store(nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.sendMailboxChanges(ctx, r)
	}()
	s.listenLoop(ctx, "mailbox change listener", mailboxChannel,
		func() { s.hub.NotifyAll() },
		func(payload string) {
			if ids, ok := parseMailboxPayload(payload, r.node); ok {
				s.hub.Notify(ids...)
			}
		})
	wg.Wait()
}

// sendMailboxChanges announces what r gathers, one NOTIFY per gathering.
func (s *Store) sendMailboxChanges(ctx context.Context, r *mailboxRelay) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(relayGather):
		}
		for _, p := range mailboxPayloads(r.node, r.take()) {
			nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.pool.Exec(nctx, "SELECT pg_notify($1, $2)", mailboxChannel, p)
			cancel()
			if err != nil && ctx.Err() == nil {
				// The other nodes' listeners wake all their sessions when
				// they reconnect; an outage that spares them loses this
				// wake-up only (see RelayMailboxChanges).
				slog.Warn("announcing mailbox changes to the other nodes", "err", err)
			}
		}
	}
}

// mailboxPayloads splits ids into payloads of at most maxPayload bytes.
func mailboxPayloads(node string, ids []int64) []string {
	var out []string
	var b strings.Builder
	for _, id := range ids {
		n := strconv.FormatInt(id, 10)
		if b.Len() > 0 && b.Len()+1+len(n) > maxPayload {
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() == 0 {
			b.WriteString(node)
		}
		b.WriteByte(' ')
		b.WriteString(n)
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// parseMailboxPayload reads a payload of mailboxPayloads; ok is false for
// this node's own (self) and for anything malformed, which is ignored
// rather than trusted: only Postern's nodes are expected on the channel,
// but the database is shared.
func parseMailboxPayload(p, self string) (ids []int64, ok bool) {
	node, rest, found := strings.Cut(p, " ")
	if !found || node == self || node == "" {
		return nil, false
	}
	for f := range strings.FieldsSeq(rest) {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil || id <= 0 {
			return nil, false
		}
		ids = append(ids, id)
	}
	return ids, len(ids) > 0
}

func newNodeID() string {
	var b [8]byte
	rand.Read(b[:])
	return strconv.FormatUint(binary.BigEndian.Uint64(b[:]), 36)
}
