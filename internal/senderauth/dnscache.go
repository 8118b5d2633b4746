package senderauth

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"time"
)

// The answers of SPF, DKIM and DMARC lookups are kept for a short while:
// a sender's records are the same for each of its messages, and looking
// them up again cost a quarter of the CPU of inbound mail in the profile
// of a run of 1,800 msg/s (two to four UDP exchanges per message; see
// BENCHMARKS.md). Go's resolver does not give the records' TTLs, so every
// answer is kept for cacheTTL, shorter than the TTL of nearly every SPF,
// DKIM and DMARC record: a changed record is seen at most that much later
// (RFC 2308 allows a resolver to keep a negative answer for the SOA's
// minimum, which is commonly longer). Temporary failures are not kept.
const (
	cacheTTL = time.Minute
	// cacheMax bounds the entries: the names looked up are chosen by
	// whoever sends mail, so the cache must not grow with them.
	cacheMax = 10000
)

// resolver is what the checks look names up with: net.Resolver's methods
// that blitiri.com.ar/go/spf, DKIM and DMARC use.
type resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// dnsCache answers from recent lookups and asks next for the rest.
type dnsCache struct {
	next resolver
	now  func() time.Time

	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
}

type cacheKey struct {
	kind byte // 't' TXT, 'm' MX, 'i' IP addresses, 'p' PTR
	name string
}

type cacheEntry struct {
	value   any // []string, []*net.MX or []net.IPAddr
	err     error
	expires time.Time
}

func newDNSCache(next resolver) *dnsCache {
	return &dnsCache{next: next, now: time.Now, entries: map[cacheKey]cacheEntry{}}
}

// lookup answers k from the cache or by calling ask, and keeps the answer
// if it is one (records, or "no such name / no such record").
func lookup[T any](c *dnsCache, k cacheKey, ask func() (T, error)) (T, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		v, _ := e.value.(T)
		return v, e.err
	}
	v, err := ask()
	var dnsErr *net.DNSError
	if err != nil && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		return v, err // temporary: ask again next time
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= cacheMax {
		c.evict(now)
	}
	c.entries[k] = cacheEntry{value: v, err: err, expires: now.Add(cacheTTL)}
	return v, err
}

// evict drops expired entries, and if that is not enough, a tenth of the
// rest (the map's order: no entry is favoured). c.mu is held.
func (c *dnsCache) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < cacheMax*9/10 {
			break
		}
		delete(c.entries, k)
	}
}

// Callers get their own copy of a cached slice: nothing they do to it
// reaches the next caller.

func (c *dnsCache) LookupTXT(ctx context.Context, name string) ([]string, error) {
	v, err := lookup(c, cacheKey{'t', name}, func() ([]string, error) { return c.next.LookupTXT(ctx, name) })
	return slices.Clone(v), err
}

func (c *dnsCache) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	v, err := lookup(c, cacheKey{'m', name}, func() ([]*net.MX, error) { return c.next.LookupMX(ctx, name) })
	out := make([]*net.MX, len(v))
	for i, mx := range v {
		copied := *mx
		out[i] = &copied
	}
	return out, err
}

func (c *dnsCache) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	v, err := lookup(c, cacheKey{'i', host}, func() ([]net.IPAddr, error) { return c.next.LookupIPAddr(ctx, host) })
	return slices.Clone(v), err
}

func (c *dnsCache) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	v, err := lookup(c, cacheKey{'p', addr}, func() ([]string, error) { return c.next.LookupAddr(ctx, addr) })
	return slices.Clone(v), err
}
