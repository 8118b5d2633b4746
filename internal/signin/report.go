package signin

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"postern.dev/postern/internal/store"
)

// SignInStore is where a Recorder writes its counts.
type SignInStore interface {
	RecordSignIns(ctx context.Context, rows []store.SignIn) error
}

// Recorder counts successful sign-ins for the sign-in report (protocol,
// mailbox, who signed in, client address, method, count, last seen, per UTC
// day). A sign-in costs a map update under a mutex; the counts reach the
// store in one transaction per Flush, so a scanner reconnecting for every
// message does not write a row each time.
type Recorder struct {
	store SignInStore
	log   *slog.Logger
	// maxKeys bounds the distinct rows held between flushes (a sign-in
	// from a new address adds one); past it a flush is started, and past
	// twice it new rows are dropped and counted until the flush is done.
	maxKeys int

	mu       sync.Mutex
	pending  map[signInKey]*store.SignIn
	flushing atomic.Bool
	dropped  atomic.Int64
}

type signInKey struct {
	day      int64
	protocol Protocol
	mailbox  int64
	actor    string
	ip       netip.Addr
	method   string
}

// NewRecorder returns a recorder writing to st; maxKeys <= 0 means 100,000.
func NewRecorder(st SignInStore, log *slog.Logger, maxKeys int) *Recorder {
	if maxKeys <= 0 {
		maxKeys = 100000
	}
	return &Recorder{store: st, log: log, maxKeys: maxKeys, pending: map[signInKey]*store.SignIn{}}
}

// Record counts one successful sign-in. It never blocks on the store.
func (r *Recorder) Record(p Protocol, g *Grant, ip netip.Addr, at time.Time) {
	actor := g.AppID
	if g.Actor != nil {
		actor = g.Actor.PrimarySmtpAddress
	}
	at = at.UTC()
	k := signInKey{day: at.Unix() / 86400, protocol: p, mailbox: g.Mailbox.ID, actor: actor, ip: ip.Unmap(), method: g.Method.String()}
	r.mu.Lock()
	row := r.pending[k]
	if row == nil {
		if len(r.pending) >= 2*r.maxKeys {
			r.mu.Unlock()
			r.dropped.Add(1)
			return
		}
		row = &store.SignIn{OrgID: g.Mailbox.OrgID, Protocol: string(p), Mailbox: g.Mailbox.ID, Actor: actor,
			ClientIP: k.ip.String(), Method: k.method}
		r.pending[k] = row
	}
	row.Count++
	if at.After(row.LastSeen) {
		row.LastSeen = at
	}
	full := len(r.pending) >= r.maxKeys
	r.mu.Unlock()
	if full && r.flushing.CompareAndSwap(false, true) {
		go func() {
			defer r.flushing.Store(false)
			r.flush(context.Background())
		}()
	}
}

// Flush writes the counts gathered so far. On a store failure they are
// kept for the next Flush.
func (r *Recorder) Flush(ctx context.Context) error { return r.flush(ctx) }

func (r *Recorder) flush(ctx context.Context) error {
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	taken := r.pending
	r.pending = make(map[signInKey]*store.SignIn, len(taken))
	r.mu.Unlock()
	rows := make([]store.SignIn, 0, len(taken))
	for _, row := range taken {
		rows = append(rows, *row)
	}
	err := r.store.RecordSignIns(ctx, rows)
	if err != nil {
		// Put them back, merged with what came meanwhile.
		r.mu.Lock()
		for k, old := range taken {
			if cur := r.pending[k]; cur != nil {
				cur.Count += old.Count
				if old.LastSeen.After(cur.LastSeen) {
					cur.LastSeen = old.LastSeen
				}
			} else if len(r.pending) < 2*r.maxKeys {
				r.pending[k] = old
			}
		}
		r.mu.Unlock()
		if r.log != nil {
			r.log.Warn("sign-in report: counts not written; kept for the next attempt", "rows", len(rows), "err", err)
		}
	}
	if n := r.dropped.Swap(0); n > 0 && r.log != nil {
		r.log.Warn("sign-in report: sign-ins not counted, too many distinct rows between writes", "dropped", n)
	}
	return err
}

// Run flushes every interval until ctx ends, then once more.
func (r *Recorder) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.flush(ctx)
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r.flush(final)
			cancel()
			return
		}
	}
}

// record counts a successful sign-in, when a Recorder is set.
func (a *Authenticator) record(p Protocol, g *Grant, ip netip.Addr, at time.Time) {
	if a.SignIns != nil {
		a.SignIns.Record(p, g, ip, at)
	}
}
