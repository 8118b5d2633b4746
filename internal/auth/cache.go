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
// Dovecot's auth cache does, so that a scanner opening a new connection per
// message costs one argon2id hash, not one per message (DESIGN.md: argon2id
// manages only ~40–100 verifications a second on both cores).
//
// Entries are keyed by HMAC-SHA256(random per-process key, user NUL
// password): the password is never kept, not even as a plain hash. An entry
// also records the stored hash it was verified against, so a password
// change (a new hash) invalidates it without any explicit purge.
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
	return true
}

// Store records a successful verification against verifiedHash.
func (c *LoginCache) Store(username, password, verifiedHash string, now time.Time) {
	d := c.digest(username, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[d] = cacheEntry{hash: verifiedHash, expires: now.Add(c.ttl)}
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
