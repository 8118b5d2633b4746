package smtpserver

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"postern.dev/postern/internal/limits"
)

// Limits caps what clients can spend on connections before a session
// exists. They are shared by every listener of a server, so that a flood on
// port 25 also counts against 587 and 465.
type Limits struct {
	// MaxConnections is the server-wide cap on open SMTP connections
	// (Exchange's MaxInboundConnection). 0 means no cap.
	MaxConnections int
	// MaxConnectionsPerIP caps one client address's open connections
	// (Exchange's MaxInboundConnectionPerSource); IPv6 clients count by
	// /64, the block one subscriber usually holds. 0 means no cap.
	MaxConnectionsPerIP int
	// ConnectionRatePerIP is how many connections one address may open
	// per minute (a token bucket that refills evenly and holds a minute's
	// worth). 0 means no limit.
	ConnectionRatePerIP int
}

// Admission counts open connections and recent connection attempts. The
// zero value admits everything; use NewAdmission.
type Admission struct {
	limits Limits
	now    func() time.Time

	mu     sync.Mutex
	open   int
	byAddr map[netip.Prefix]*source
	// sweepAt is the map size that triggers the next sweep: twice what
	// the last sweep left, so sweeping costs O(1) per admission.
	sweepAt int
}

// source is one client address's (or /64's) connections.
type source struct {
	open int
	// tokens is the rate bucket's content at last; it holds at most
	// ConnectionRatePerIP and refills by that much per minute.
	tokens float64
	last   time.Time
}

// maxIdleSources bounds the entries kept only for their rate bucket; past
// it, entries whose bucket has refilled are dropped, and past maxSources
// every entry without an open connection is (the rate of those addresses is
// then forgotten: memory is capped before accuracy).
const (
	maxIdleSources = 4096
	maxSources     = 65536
)

// NewAdmission returns an Admission enforcing limits.
func NewAdmission(l Limits) *Admission {
	return &Admission{limits: l, now: time.Now, byAddr: make(map[netip.Prefix]*source)}
}

// sourceKey is the unit a per-address limit applies to.
func sourceKey(ip netip.Addr) netip.Prefix { return limits.Source(ip) }

// Admit decides whether a new connection from ip may be served; when it
// returns true the caller must call Release once the connection ends.
func (a *Admission) Admit(ip netip.Addr) bool {
	if a == nil {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.limits
	if l.MaxConnections > 0 && a.open >= l.MaxConnections {
		return false
	}
	k := sourceKey(ip)
	s := a.byAddr[k]
	now := a.now()
	if s == nil {
		if len(a.byAddr) >= max(a.sweepAt, maxIdleSources) {
			a.sweep(now, len(a.byAddr) >= maxSources)
			a.sweepAt = 2 * len(a.byAddr)
		}
		s = &source{tokens: float64(l.ConnectionRatePerIP), last: now}
		a.byAddr[k] = s
	}
	if l.MaxConnectionsPerIP > 0 && s.open >= l.MaxConnectionsPerIP {
		return false
	}
	if l.ConnectionRatePerIP > 0 {
		s.refill(now, l.ConnectionRatePerIP)
		if s.tokens < 1 {
			return false
		}
		s.tokens--
	}
	s.open++
	a.open++
	return true
}

// SetLimits changes the caps for the connections admitted from now on
// (a configuration reload); connections already open stay. An address over
// a lowered cap gets no new connection until enough of its own end.
func (a *Admission) SetLimits(l Limits) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l.ConnectionRatePerIP != a.limits.ConnectionRatePerIP {
		// The buckets were filled for the old rate: hold them to the new
		// one, and give addresses that had no bucket (no rate limit
		// before) a full one, as a new address gets.
		for _, s := range a.byAddr {
			if a.limits.ConnectionRatePerIP == 0 {
				s.tokens, s.last = float64(l.ConnectionRatePerIP), a.now()
			}
			s.tokens = min(s.tokens, float64(l.ConnectionRatePerIP))
		}
	}
	a.limits = l
}

// Release ends a connection admitted for ip.
func (a *Admission) Release(ip netip.Addr) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.open--
	k := sourceKey(ip)
	if s := a.byAddr[k]; s != nil {
		s.open--
		if s.open == 0 && a.limits.ConnectionRatePerIP == 0 {
			delete(a.byAddr, k)
		}
	}
}

// Open reports the number of open connections.
func (a *Admission) Open() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.open
}

func (s *source) refill(now time.Time, perMinute int) {
	if d := now.Sub(s.last); d > 0 {
		s.tokens = min(float64(perMinute), s.tokens+d.Minutes()*float64(perMinute))
	}
	s.last = now
}

// sweep drops the sources that have no open connection and a full bucket
// (forgetting them changes no decision), or with all, every source that
// has no open connection.
func (a *Admission) sweep(now time.Time, all bool) {
	for k, s := range a.byAddr {
		if s.open > 0 {
			continue
		}
		if r := a.limits.ConnectionRatePerIP; r > 0 && !all {
			s.refill(now, r)
			if s.tokens < float64(r) {
				continue
			}
		}
		delete(a.byAddr, k)
	}
}

// Listener wraps l so that it hands out only connections the Admission
// admits; the others are closed at once. The admin HTTPS listener uses it:
// HTTP has no 421 to say why.
func (a *Admission) Listener(l net.Listener) net.Listener {
	return &admittingListener{Listener: l, a: a}
}

type admittingListener struct {
	net.Listener
	a *Admission
}

func (l *admittingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		if l.a.Admit(ip) {
			return &admittedConn{Conn: c, release: func() { l.a.Release(ip) }}, nil
		}
		c.Close()
	}
}

// admittedConn gives its admission back when it is first closed.
type admittedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *admittedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// CloseWrite half-closes the connection when the underlying one can (TCP,
// TLS), so a server that ends a session can send its last reply and a FIN,
// then read off what the client still pipelines instead of resetting it.
func (c *admittedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
