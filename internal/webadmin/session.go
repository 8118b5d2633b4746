package webadmin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"postern.dev/postern/internal/store"
)

// session is one signed-in browser. It is kept in the store
// (store.Ephemeral), so that every node sharing the store knows it and a
// browser may reach any node behind a load balancer, and it survives a
// restart. The cookie carries a random 256-bit identifier and nothing
// else; the store keeps the session under its SHA-256, so a copy of the
// database signs nobody in, and a stolen cookie is worthless once the
// session ends (sign-out, idle or absolute timeout).
type session struct {
	id string
	sessionRecord
}

// sessionRecord is what the store keeps of a session.
type sessionRecord struct {
	CSRF string `json:"csrf"`
	// MailboxID is the admin's mailbox; its role is read from its role
	// group memberships at every request, so that Remove-RoleGroupMember
	// takes effect at once. Zero for the server administrator.
	MailboxID   int64 `json:"mailbox,omitempty"`
	ServerAdmin bool  `json:"server_admin,omitempty"`
	// OrgID is the organization administered: the mailbox's own, or the
	// one the server administrator switched to.
	OrgID    int64     `json:"org"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	// Flash is a one-time notice shown on the next page ("Changes saved").
	Flash string `json:"flash,omitempty"`
}

// Kinds of the admin center's records in store.Ephemeral.
const (
	kindSession = "admin-session"
	kindLink    = "admin-link"
	kindFlow    = "oidc-flow"
)

// touchEvery is how stale a session's recorded last use may get before a
// request writes it again: a page view costs a read of the store, and a
// write at most once a minute per session. The idle timeout is therefore
// kept to within a minute.
const touchEvery = time.Minute

// sessionStore keeps the sessions in the store, bounded: past max, the
// sessions nearest to expiry are dropped, so that sign-ins cannot grow
// the store without limit.
type sessionStore struct {
	st       store.Ephemeral
	idle     time.Duration
	absolute time.Duration
	max      int
}

func newSessionStore(st store.Ephemeral, idle, absolute time.Duration, max int) *sessionStore {
	return &sessionStore{st: st, idle: idle, absolute: absolute, max: max}
}

// randomToken is 256 random bits, URL-safe.
func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenKey is the store's key for a secret the browser holds.
func tokenKey(token string) []byte {
	d := sha256.Sum256([]byte(token))
	return d[:]
}

// expires is when a session ends unless used again.
func (s *sessionStore) expires(r sessionRecord) time.Time {
	idle, abs := r.LastSeen.Add(s.idle), r.Created.Add(s.absolute)
	if idle.Before(abs) {
		return idle
	}
	return abs
}

func (s *sessionStore) put(ctx context.Context, sess *session, max int) error {
	v, err := json.Marshal(sess.sessionRecord)
	if err != nil {
		return err
	}
	return s.st.PutEphemeral(ctx, kindSession, tokenKey(sess.id), v, s.expires(sess.sessionRecord), max)
}

// create starts a session.
func (s *sessionStore) create(ctx context.Context, now time.Time, mailboxID, orgID int64, serverAdmin bool) (*session, error) {
	sess := &session{id: randomToken(), sessionRecord: sessionRecord{CSRF: randomToken(), MailboxID: mailboxID, OrgID: orgID,
		ServerAdmin: serverAdmin, Created: now, LastSeen: now}}
	return sess, s.put(ctx, sess, s.max)
}

// get finds a live session and marks it used. ok is false when there is
// none (ended, expired, or never was); err is a failure of the store.
func (s *sessionStore) get(ctx context.Context, id string, now time.Time) (session, bool, error) {
	v, err := s.st.GetEphemeral(ctx, kindSession, tokenKey(id), now)
	if errors.Is(err, store.ErrNotFound) {
		return session{}, false, nil
	}
	if err != nil {
		return session{}, false, err
	}
	sess := session{id: id}
	if err := json.Unmarshal(v, &sess.sessionRecord); err != nil {
		return session{}, false, nil // not one of ours: no session
	}
	if !now.Before(s.expires(sess.sessionRecord)) {
		return session{}, false, nil
	}
	if now.Sub(sess.LastSeen) >= touchEvery {
		sess.LastSeen = now
		if err := s.put(ctx, &sess, 0); err != nil {
			return session{}, false, err
		}
	}
	return sess, true, nil
}

// update changes a live session.
func (s *sessionStore) update(ctx context.Context, id string, now time.Time, fn func(*sessionRecord)) error {
	sess, ok, err := s.get(ctx, id, now)
	if !ok || err != nil {
		return err
	}
	fn(&sess.sessionRecord)
	return s.put(ctx, &sess, 0)
}

// takeFlash returns and clears the session's notice.
func (s *sessionStore) takeFlash(ctx context.Context, id string, now time.Time) string {
	var f string
	s.update(ctx, id, now, func(r *sessionRecord) { f, r.Flash = r.Flash, "" })
	return f
}

// remove ends a session (sign-out).
func (s *sessionStore) remove(ctx context.Context, id string) error {
	return s.st.DeleteEphemeral(ctx, kindSession, tokenKey(id))
}

// tokensEqual compares secrets in constant time.
func tokensEqual(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// linkStore holds the server administrator's one-time sign-in links
// (`postern admin-link`) in the store, so that a link made on one node
// works on any: each works once, for a few minutes.
type linkStore struct {
	st  store.Ephemeral
	ttl time.Duration
}

// maxLinks bounds the links waiting to be used.
const maxLinks = 64

func (l *linkStore) create(ctx context.Context, now time.Time) (string, error) {
	t := randomToken()
	return t, l.st.PutEphemeral(ctx, kindLink, tokenKey(t), []byte{}, now.Add(l.ttl), maxLinks)
}

// valid reports whether a link is live, without using it up.
func (l *linkStore) valid(ctx context.Context, token string, now time.Time) bool {
	_, err := l.st.GetEphemeral(ctx, kindLink, tokenKey(token), now)
	return err == nil
}

// use consumes a link; it reports whether it was live.
func (l *linkStore) use(ctx context.Context, token string, now time.Time) bool {
	_, err := l.st.TakeEphemeral(ctx, kindLink, tokenKey(token), now)
	return err == nil
}
