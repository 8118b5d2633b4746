// Package queue delivers outbound mail: delivery workers lease due items
// from the store's queue, group them by destination, and deliver them over
// SMTP by MX or through outbound connectors' smart hosts, with retries on a
// backoff schedule, delivery status notifications (RFC 3464) to senders,
// DKIM signatures, and a trace event for every step.
//
// Guarantee: an item leaves the queue only in the transaction that records
// its outcome (and stores the non-delivery report, if any). A crash before
// that transaction leaves the item queued; its lease is released when the
// node starts again, and it is delivered again. So a message the remote
// server acknowledged just before a crash can arrive twice (at-least-once,
// as with every MTA); no acknowledged message is ever lost.
package queue

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/secret"
	"postern.dev/postern/internal/smtpclient"
	"postern.dev/postern/internal/store"
)

// Config configures delivery.
type Config struct {
	Store     store.Store
	Directory *directory.Current
	Secrets   *secret.Box
	Resolver  *net.Resolver
	Hostname  string // EHLO name, Reporting-MTA, Received
	Node      string // lease owner; the hostname by default
	Log       *slog.Logger

	// MXPort is the port MX hosts are contacted on: 25, or another for
	// tests on loopback.
	MXPort int
	// Workers bounds concurrent SMTP sessions in all; PerDestination
	// bounds them for one destination (Postfix's
	// default_destination_concurrency_limit plays this role).
	Workers, PerDestination int
	Schedule                Schedule
	Timeouts                smtpclient.Timeouts
	// RootCAs verifies certificates for CertificateValidation and
	// DomainValidation; nil uses the system's roots.
	RootCAs *x509.CertPool
	// HTTPClient fetches OAuth tokens; nil uses one with a 30 s timeout.
	HTTPClient *http.Client
	// Poll is how often the queue is checked for due items when nothing
	// nudges it.
	Poll time.Duration
	Now  func() time.Time
}

// Tuning is the part of Config that a configuration reload changes while
// the queue runs (Reconfigure). Sessions already open finish with what
// they started with; each new attempt, connection and schedule decision
// takes the current one.
type Tuning struct {
	Workers, PerDestination int
	Schedule                Schedule
	Timeouts                smtpclient.Timeouts
	RootCAs                 *x509.CertPool
	Resolver                *net.Resolver
	MXPort                  int
}

func (t Tuning) withDefaults() Tuning {
	if t.MXPort == 0 {
		t.MXPort = 25
	}
	if t.Workers <= 0 {
		t.Workers = 32
	}
	if t.PerDestination <= 0 {
		t.PerDestination = 4
	}
	if t.Schedule.Min <= 0 {
		t.Schedule = DefaultSchedule
	}
	return t
}

// Queue is the running delivery service.
type Queue struct {
	// cfg is fixed at New; its Tuning fields are read only there, tune
	// holds their current values.
	cfg    Config
	tune   atomic.Pointer[Tuning]
	nudge  chan struct{}
	tokens *tokenCache
	keys   sync.Map // sealed DKIM key → crypto.Signer

	mu       sync.Mutex
	dests    map[string]*destination
	idle     map[string][]idleSession // open connections between jobs, by route
	inflight int                      // leased items not yet recorded
	sem      chan struct{}
	wg       sync.WaitGroup
	records  chan *record // outcomes for recordLoop
}

// destination is the work for one route: jobs wait in pending and up to
// PerDestination runners take them, each over its own connection.
type destination struct {
	route   Route
	pending []*job
	runners int
}

// job is one message to some recipients of one route: one SMTP
// transaction.
type job struct {
	msg   store.OutboundItem // the message fields (recipient of the first item)
	items []store.OutboundItem
	route Route
}

// New returns a Queue; Run starts it.
func New(cfg Config) *Queue {
	t := Tuning{Workers: cfg.Workers, PerDestination: cfg.PerDestination, Schedule: cfg.Schedule, Timeouts: cfg.Timeouts,
		RootCAs: cfg.RootCAs, Resolver: cfg.Resolver, MXPort: cfg.MXPort}.withDefaults()
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Node == "" {
		cfg.Node = cfg.Hostname
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	q := &Queue{
		cfg:    cfg,
		nudge:  make(chan struct{}, 1),
		tokens: newTokenCache(cfg.HTTPClient),
		dests:  map[string]*destination{},
		idle:   map[string][]idleSession{},
		sem:    make(chan struct{}, t.Workers),
	}
	q.records = make(chan *record, 64)
	q.tune.Store(&t)
	return q
}

// tuning is the current Tuning.
func (q *Queue) tuning() *Tuning { return q.tune.Load() }

// Reconfigure applies a configuration reload (zero fields take the
// defaults, as in New). A new worker count starts a new set of slots:
// sessions running under the old one finish, so for a while both may run.
// Kept connections to smart hosts and MX hosts stay until they idle out.
func (q *Queue) Reconfigure(t Tuning) {
	t = t.withDefaults()
	q.mu.Lock()
	defer q.mu.Unlock()
	if t.Workers != q.tuning().Workers {
		q.sem = make(chan struct{}, t.Workers)
	}
	q.tune.Store(&t)
	q.Nudge() // more workers or a shorter schedule may have work now
}

// Nudge asks for a look at the queue now (new mail was queued, or an admin
// asked for a retry).
func (q *Queue) Nudge() {
	select {
	case q.nudge <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for sessions in progress.
func (q *Queue) Run(ctx context.Context) {
	if err := q.cfg.Store.ReleaseLeases(ctx, q.cfg.Node); err != nil {
		q.cfg.Log.Error("queue: releasing leases", "err", err)
	}
	recorded := make(chan struct{})
	go q.recordLoop(recorded)
	t := time.NewTicker(q.cfg.Poll)
	defer t.Stop()
	for {
		q.fill(ctx)
		q.expireIdle(q.cfg.Now(), false)
		select {
		case <-ctx.Done():
			q.wg.Wait()
			// Every runner has handed over its last outcomes: write them
			// before returning, while the store is still open.
			close(q.records)
			<-recorded
			q.expireIdle(q.cfg.Now(), true)
			return
		case <-t.C:
		case <-q.nudge:
		}
	}
}

// lease is how long a claimed item is kept from other workers: longer than
// any one session can take (connect, greeting, commands and the final
// reply, for every MX host).
const lease = time.Hour

// maxInflight bounds the items leased at once, so that a backlog is not
// leased long before a worker is free for it.
func (q *Queue) maxInflight() int { return q.tuning().Workers * 16 }

// fill claims due items while there is room and hands them to their
// destinations.
func (q *Queue) fill(ctx context.Context) {
	for ctx.Err() == nil {
		q.mu.Lock()
		room := q.maxInflight() - q.inflight
		q.mu.Unlock()
		if room <= 0 {
			return
		}
		items, err := q.cfg.Store.ClaimOutbound(ctx, q.cfg.Now(), lease, q.cfg.Node, min(room, 500))
		if err != nil {
			if ctx.Err() == nil {
				q.cfg.Log.Error("queue: claiming items", "err", err)
			}
			return
		}
		if len(items) == 0 {
			return
		}
		q.dispatch(ctx, items)
		if len(items) < min(room, 500) {
			return
		}
	}
}

// dispatch groups items into jobs (one per message and route) and queues
// them at their destinations, starting runners as the limits allow.
func (q *Queue) dispatch(ctx context.Context, items []store.OutboundItem) {
	snap := q.cfg.Directory.Load()
	type key struct {
		message int64
		route   string
	}
	jobs := map[key]*job{}
	var order []*job
	for _, it := range items {
		r := RouteFor(snap, it.OrgID, domainOf(it.Recipient))
		k := key{it.Message, r.Key}
		j := jobs[k]
		if j == nil {
			j = &job{msg: it, route: r}
			jobs[k] = j
			order = append(order, j)
		}
		j.items = append(j.items, it)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflight += len(items)
	for _, j := range order {
		d := q.dests[j.route.Key]
		if d == nil {
			d = &destination{route: j.route}
			q.dests[j.route.Key] = d
		}
		d.pending = append(d.pending, j)
		for d.runners < q.tuning().PerDestination && d.runners < len(d.pending) {
			d.runners++
			q.wg.Add(1)
			go q.runner(ctx, d)
		}
	}
}

// runner delivers a destination's pending jobs one after another over one
// connection (reused while jobs remain), and ends when none are left.
func (q *Queue) runner(ctx context.Context, d *destination) {
	defer q.wg.Done()
	// The worker slots as they are now: a reload may replace them while
	// this runner works, and it must give back the one it took.
	q.mu.Lock()
	sem := q.sem
	q.mu.Unlock()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		q.mu.Lock()
		d.runners--
		q.mu.Unlock()
		return
	}
	defer func() { <-sem }()
	s := q.takeIdle(d.route.Key)
	for {
		q.mu.Lock()
		if len(d.pending) == 0 {
			d.runners--
			if d.runners == 0 {
				delete(q.dests, d.route.Key)
			}
			if s != nil {
				q.idle[d.route.Key] = append(q.idle[d.route.Key], idleSession{s, q.cfg.Now()})
			}
			q.mu.Unlock()
			return
		}
		j := d.pending[0]
		d.pending = d.pending[1:]
		q.mu.Unlock()

		// The job's items stay counted in inflight until recordLoop has
		// written their outcomes.
		s = q.deliver(ctx, s, j)
	}
}

// idleTime is how long a connection is kept open after its last job, for
// the next message to the same destination (as Postfix's connection cache
// keeps them for its smtp_connection_cache_time_limit).
const idleTime = 5 * time.Second

type idleSession struct {
	s     *session
	since time.Time
}

// takeIdle returns a kept connection to the route, or nil.
func (q *Queue) takeIdle(key string) *session {
	q.mu.Lock()
	defer q.mu.Unlock()
	list := q.idle[key]
	if len(list) == 0 {
		return nil
	}
	s := list[len(list)-1].s
	if len(list) == 1 {
		delete(q.idle, key)
	} else {
		q.idle[key] = list[:len(list)-1]
	}
	return s
}

// expireIdle closes connections idle for longer than idleTime, or all.
func (q *Queue) expireIdle(now time.Time, all bool) {
	var old []*session
	q.mu.Lock()
	for key, list := range q.idle {
		kept := list[:0]
		for _, is := range list {
			if all || now.Sub(is.since) > idleTime {
				old = append(old, is.s)
			} else {
				kept = append(kept, is)
			}
		}
		if len(kept) == 0 {
			delete(q.idle, key)
		} else {
			q.idle[key] = kept
		}
	}
	q.mu.Unlock()
	for _, s := range old {
		s.close()
	}
}

func domainOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == '@' {
			return addr[i+1:]
		}
	}
	return ""
}
