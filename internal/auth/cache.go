package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"sync"
	"time"
)

// LoginCache remembers recent successful password verifications, as
// Dovecot's auth cache does, so that a device or scanner that opens a new
// connection per message costs one argon2id hash, not one per message.
//
// Entries are keyed by HMAC-SHA256 (RFC 2104) under a random key made at
// construction, over the lower-cased user name, NUL and the password: the
// password is never kept, not even as a plain hash that could be attacked
// offline from a memory dump without the key. An entry records the stored
// hash the verification was made against, so a password change (a new
// PHC string) invalidates it without any explicit purge.
type LoginCache struct {
	ttl time.Duration
	max int
	key [32]byte

	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
}

type cacheKey [sha256.Size]byte

type cacheEntry struct {
	hash    string // the PHC string the password was verified against
	expires time.Time
}

// NewLoginCache returns a cache that keeps a verification for ttl, and at
// most maxEntries (at least 1) verifications.
func NewLoginCache(ttl time.Duration, maxEntries int) *LoginCache {
	c := &LoginCache{ttl: ttl, max: max(maxEntries, 1), entries: make(map[cacheKey]cacheEntry)}
	rand.Read(c.key[:]) // never fails (crypto/rand, Go 1.24 and later)
	return c
}

func (c *LoginCache) keyFor(username, password string) cacheKey {
	m := hmac.New(sha256.New, c.key[:])
	m.Write([]byte(strings.ToLower(username)))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k cacheKey
	m.Sum(k[:0])
	return k
}

// Lookup reports whether username and password were verified against
// currentHash, the user's PHC string as stored now, less than ttl ago.
func (c *LoginCache) Lookup(username, password, currentHash string, now time.Time) bool {
	k := c.keyFor(username, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return false
	}
	if !now.Before(e.expires) || e.hash != currentHash {
		delete(c.entries, k)
		return false
	}
	return true
}

// Store records that username and password were verified against
// verifiedHash at now.
func (c *LoginCache) Store(username, password, verifiedHash string, now time.Time) {
	k := c.keyFor(username, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[k] = cacheEntry{hash: verifiedHash, expires: now.Add(c.ttl)}
}

// evict runs when the cache is full: it drops expired entries and then, if
// needed, arbitrary ones until a tenth of the room is free, so that the
// scan is paid once per many Stores rather than on each.
func (c *LoginCache) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	target := c.max - max(c.max/10, 1)
	for k := range c.entries {
		if len(c.entries) <= target {
			break
		}
		delete(c.entries, k)
	}
}
