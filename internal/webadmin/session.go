package webadmin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// session is one signed-in browser. It lives only in the server's memory:
// the cookie carries a random 256-bit identifier and nothing else, so a
// restart signs everyone out and a stolen cookie is worthless once the
// session ends (sign-out, idle or absolute timeout).
type session struct {
	id   string
	csrf string
	// mailboxID is the admin's mailbox; its role is read from its role
	// group memberships at every request, so that Remove-RoleGroupMember
	// takes effect at once. Zero for the server administrator.
	mailboxID   int64
	serverAdmin bool
	// orgID is the organization administered: the mailbox's own, or the
	// one the server administrator switched to.
	orgID    int64
	created  time.Time
	lastSeen time.Time
	// flash is a one-time notice shown on the next page ("Changes saved").
	flash string
}

// sessionStore holds the sessions, bounded: past max, the least recently
// used session is dropped, so that sign-ins cannot grow the server's
// memory without limit.
type sessionStore struct {
	mu       sync.Mutex
	m        map[string]*session
	idle     time.Duration
	absolute time.Duration
	max      int
}

func newSessionStore(idle, absolute time.Duration, max int) *sessionStore {
	return &sessionStore{m: map[string]*session{}, idle: idle, absolute: absolute, max: max}
}

// randomToken is 256 random bits, URL-safe.
func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session.
func (s *sessionStore) create(now time.Time, mailboxID, orgID int64, serverAdmin bool) *session {
	sess := &session{id: randomToken(), csrf: randomToken(), mailboxID: mailboxID, orgID: orgID, serverAdmin: serverAdmin, created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		s.evict(now)
	}
	s.m[sess.id] = sess
	return sess
}

// evict drops expired sessions and, if none had expired, the least
// recently used one. s.mu is held.
func (s *sessionStore) evict(now time.Time) {
	var oldest *session
	for id, sess := range s.m {
		if s.expired(sess, now) {
			delete(s.m, id)
			continue
		}
		if oldest == nil || sess.lastSeen.Before(oldest.lastSeen) {
			oldest = sess
		}
	}
	if len(s.m) >= s.max && oldest != nil {
		delete(s.m, oldest.id)
	}
}

func (s *sessionStore) expired(sess *session, now time.Time) bool {
	return now.Sub(sess.lastSeen) >= s.idle || now.Sub(sess.created) >= s.absolute
}

// get finds a live session and marks it used; an expired one is removed.
// It returns a copy, so that handlers read it without the lock.
func (s *sessionStore) get(id string, now time.Time) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[id]
	if !ok {
		return session{}, false
	}
	if s.expired(sess, now) {
		delete(s.m, id)
		return session{}, false
	}
	sess.lastSeen = now
	return *sess, true
}

// update changes a live session.
func (s *sessionStore) update(id string, fn func(*session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.m[id]; ok {
		fn(sess)
	}
}

// takeFlash returns and clears the session's notice.
func (s *sessionStore) takeFlash(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.m[id]; ok {
		f := sess.flash
		sess.flash = ""
		return f
	}
	return ""
}

// remove ends a session (sign-out).
func (s *sessionStore) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// len counts the sessions held.
func (s *sessionStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// tokensEqual compares secrets in constant time.
func tokensEqual(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// linkStore holds the server administrator's one-time sign-in links
// (`postern admin-link`): each works once, for a few minutes.
type linkStore struct {
	mu  sync.Mutex
	m   map[string]time.Time
	ttl time.Duration
}

// maxLinks bounds the links waiting to be used.
const maxLinks = 64

func (l *linkStore) create(now time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]time.Time{}
	}
	for t, exp := range l.m {
		if !now.Before(exp) || len(l.m) >= maxLinks {
			delete(l.m, t)
		}
	}
	t := randomToken()
	l.m[t] = now.Add(l.ttl)
	return t
}

// valid reports whether a link is live, without using it up.
func (l *linkStore) valid(token string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	exp, ok := l.m[token]
	return ok && now.Before(exp)
}

// use consumes a link; it reports whether it was live.
func (l *linkStore) use(token string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	exp, ok := l.m[token]
	delete(l.m, token)
	return ok && now.Before(exp)
}
