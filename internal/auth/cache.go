package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"
)

// LoginCache remembers recent successful password verifications, as
// Dovecot's auth cache does, so that a scanner opening a new connection per
// message costs one argon2id hash, not one per message (DESIGN.md: argon2id
// manages only ~40–100 verifications a second on both cores).
//
// Entries are keyed by HMAC-SHA256(random per-process key, user NUL
// password): the password is never kept, not even as a plain hash. An entry
// also records the stored hash it was verified against, so a password
// change (a new hash) invalidates it without any explicit purge.
//
// Entries verified together must not expire together: fifty devices that
// signed in during one minute would otherwise all need argon2id again in
// the same second five minutes later (the burst BENCHMARKS.md records, 194
// "454 4.7.0" under load). So each entry lives ttl less a random fifth of
// it, and a hit in the second half of its life renews it: a device that
// keeps signing in never pays a verification again, and one that stops
// is forgotten within ttl. Renewing changes nothing about what a hit
// proves: argon2id is deterministic, so a verdict for the same name,
// password and stored hash stays true; the ttl only bounds how long the
// HMAC of an unused password stays in memory, where it is cheaper to
// attack than the argon2id hash.
type LoginCache struct {
	ttl time.Duration
	max int
	key [32]byte

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cacheEntry
}

type cacheEntry struct {
	hash    string
	expires time.Time
}

// NewLoginCache keeps entries for ttl, at most maxEntries of them.
func NewLoginCache(ttl time.Duration, maxEntries int) *LoginCache {
	c := &LoginCache{ttl: ttl, max: maxEntries, entries: make(map[[sha256.Size]byte]cacheEntry)}
	if _, err := rand.Read(c.key[:]); err != nil {
		panic(err)
	}
	return c
}

func (c *LoginCache) digest(username, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.key[:])
	m.Write([]byte(strings.ToLower(username)))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var d [sha256.Size]byte
	copy(d[:], m.Sum(nil))
	return d
}

// Lookup reports whether username/password was verified against
// currentHash within the last ttl.
func (c *LoginCache) Lookup(username, password, currentHash string, now time.Time) bool {
	d := c.digest(username, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[d]
	if !ok {
		return false
	}
	if now.After(e.expires) || e.hash != currentHash {
		delete(c.entries, d)
		return false
	}
	if e.expires.Sub(now) < c.ttl/2 {
		e.expires = c.expiry(now)
		c.entries[d] = e
	}
	return true
}

// expiry is when an entry stored or renewed at now expires: ttl less a
// random part of up to a fifth of it, so that entries made together
// spread their expiry over a fifth of the ttl (a minute for five).
func (c *LoginCache) expiry(now time.Time) time.Time {
	spread := int64(c.ttl / 5)
	if spread <= 0 {
		return now.Add(c.ttl)
	}
	return now.Add(c.ttl - time.Duration(mrand.Int64N(spread)))
}

// Store records a successful verification against verifiedHash.
func (c *LoginCache) Store(username, password, verifiedHash string, now time.Time) {
	d := c.digest(username, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[d] = cacheEntry{hash: verifiedHash, expires: c.expiry(now)}
}

// evict drops expired entries, and if that frees nothing, arbitrary ones
// until a tenth of the room is free; amortised over many Stores.
func (c *LoginCache) evict(now time.Time) {
	for k, e := range c.entries {
		if now.After(e.expires) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.max-c.max/10 {
			break
		}
		delete(c.entries, k)
	}
}
