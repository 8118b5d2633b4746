// Package mailnotify tells readers of a mailbox (IMAP IDLE sessions) that
// one of its folders changed: a delivery, a Sent Items copy, an APPEND, a
// flag change, an expunge. The store signals the Hub after the transaction
// that made the change has committed, so a woken reader sees the change.
//
// A signal carries no content, only "look again": readers keep their own
// state and ask the store what changed, so a lost, merged or spurious
// signal costs at most one cheap query. That is also what lets a store
// shared by several nodes feed the Hub from the other nodes' changes
// (the PostgreSQL store relays them by LISTEN/NOTIFY).
package mailnotify

import "sync"

// Notifier is what a store signals after a commit that touched mailboxes.
type Notifier interface {
	Notify(mailboxes ...int64)
}

// Watcher is what a reader subscribes to.
type Watcher interface {
	Watch(mailbox int64) *Subscription
}

// Hub is an in-process Notifier and Watcher. The zero value is not usable;
// call New.
type Hub struct {
	mu   sync.Mutex
	subs map[int64]map[*Subscription]struct{}
}

var (
	_ Notifier = (*Hub)(nil)
	_ Watcher  = (*Hub)(nil)
)

// New returns an empty hub.
func New() *Hub {
	return &Hub{subs: map[int64]map[*Subscription]struct{}{}}
}

// Subscription is one reader's interest in one mailbox. C receives a value
// after one or more changes; signals that arrive while one is pending are
// merged (C has room for one), so a slow reader never blocks a commit.
type Subscription struct {
	C       <-chan struct{}
	c       chan struct{}
	hub     *Hub
	mailbox int64
	once    sync.Once
}

// Watch subscribes to changes of a mailbox's folders. The caller must
// Close the subscription.
func (h *Hub) Watch(mailbox int64) *Subscription {
	c := make(chan struct{}, 1)
	s := &Subscription{C: c, c: c, hub: h, mailbox: mailbox}
	h.mu.Lock()
	m := h.subs[mailbox]
	if m == nil {
		m = map[*Subscription]struct{}{}
		h.subs[mailbox] = m
	}
	m[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Close ends the subscription; it is safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		h := s.hub
		h.mu.Lock()
		if m := h.subs[s.mailbox]; m != nil {
			delete(m, s)
			if len(m) == 0 {
				delete(h.subs, s.mailbox)
			}
		}
		h.mu.Unlock()
	})
}

// Notify wakes every subscription of the given mailboxes. It never blocks.
func (h *Hub) Notify(mailboxes ...int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, mb := range mailboxes {
		if mb == 0 || contains(mailboxes[:i], mb) {
			continue
		}
		for s := range h.subs[mb] {
			select {
			case s.c <- struct{}{}:
			default: // one signal is already pending
			}
		}
	}
}

// NotifyAll wakes every subscription: for when signals may have been
// missed (a listener of another node's changes that reconnected).
func (h *Hub) NotifyAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.subs {
		for s := range m {
			select {
			case s.c <- struct{}{}:
			default:
			}
		}
	}
}

func contains(l []int64, v int64) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// Watchers reports how many subscriptions are open (for tests and metrics).
func (h *Hub) Watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.subs {
		n += len(m)
	}
	return n
}
