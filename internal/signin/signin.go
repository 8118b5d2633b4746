// Package signin is the one sign-in service of SMTP AUTH, IMAP4 and POP3:
// who may sign in, with which password or token, to which mailbox, from
// which address, and how often.
//
// One Authenticator serves every protocol, so that the failed-sign-in
// throttle per client address, the verification gate and the smart lockout
// per account are shared: an attacker gets no more guesses by spreading
// them over three protocols. The decisions themselves (which switch refuses
// whom, what a token may open) are package policy's; this package gathers
// the facts (the directory, the password check, the token check) and keeps
// the counters.
//
// The protocol servers are thin: they call Basic or OAuth and turn a Grant
// into a session, a Refusal into their protocol's answer. Successful
// sign-ins are counted for the sign-in report without the servers doing
// anything more (Recorder).
package signin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/oauth"
	"postern.dev/postern/internal/policy"
	"postern.dev/postern/internal/reply"
)

// Protocol is the protocol a client signs in with.
type Protocol = policy.Protocol

// The protocols.
const (
	SMTP  Protocol = policy.SMTP
	IMAP4 Protocol = policy.IMAP4
	POP3  Protocol = policy.POP3
)

// Grant is a successful sign-in.
type Grant struct {
	// Actor is whose credentials (password or token) signed in; nil for an
	// application's own token (app-only OAuth), whose AppID is set instead.
	Actor *directory.Mailbox
	// Mailbox is the mailbox opened: Actor, or a mailbox Actor (or the
	// application) holds FullAccess on.
	Mailbox *directory.Mailbox
	// Method is Basic (a password) or OAuth (a bearer token).
	Method policy.AuthMethod
	// AppID is the application of an app-only token; empty otherwise.
	AppID string
}

// Refusal is a refused sign-in.
type Refusal struct {
	// Reply is the SMTP reply, what SMTP sends. IMAP4 and POP3 send their
	// own words (Text, or their generic failure) and read Temporary and
	// Close.
	Reply *reply.Reply
	// Temporary: throttled, too many verifications in progress, or the
	// token issuer unreachable; the client may retry later. IMAP answers NO
	// [UNAVAILABLE] (RFC 5530), POP3 -ERR [SYS/TEMP] (RFC 3206).
	Temporary bool
	// Close: the client address is blocked for failing too often; answer,
	// then close the connection.
	Close bool
	// Text is what IMAP4 or POP3 sends for this refusal when it differs
	// from its generic failure (reply.IMAPNotConnected); empty otherwise.
	Text string
	// Reason says, for the server's log, which rule refused. Never send it
	// to the client.
	Reason string
}

func refused(rep *reply.Reply, reason string) *Refusal {
	return &Refusal{Reply: rep, Temporary: reply.IsTemporary(rep), Close: rep == reply.AuthThrottled, Reason: reason}
}

func denied(d *policy.Denial) *Refusal {
	r := refused(d.Reply, d.Reason)
	r.Text = d.Text
	return r
}

// Authenticator checks sign-ins: the failed-sign-in throttle by client
// address, the per-account smart lockout, the password (through the
// verified-login cache, else one argon2id verification through the gate)
// or the token, then the policy chain of the protocol.
type Authenticator struct {
	Directory *directory.Current
	Cache     *auth.LoginCache
	Throttle  auth.AddressThrottle
	// Gate bounds argon2id verifications in flight and waiting; nil runs
	// them unbounded (unit tests).
	Gate *auth.Gate
	// Lockout is the per-account smart lockout; nil disables it.
	Lockout auth.AccountLockout
	Now     func() time.Time
	// Sleep waits out a throttling delay; replaced in tests.
	Sleep func(time.Duration)
	// Verifier checks OAuth bearer tokens; Log records why one was refused
	// (never the token itself).
	Verifier *oauth.Verifier
	Log      *slog.Logger
	// LocalKeys gives the built-in issuer's keys, checked in process.
	LocalKeys func() jose.JSONWebKeySet
	// SignIns counts successful sign-ins for the sign-in report; nil
	// counts nothing.
	SignIns *Recorder

	lastBusyLog atomic.Int64 // unix seconds of the last "verifications refused" log line
}

// logKey is the context key of a session's logger.
type logKey struct{}

// WithLog carries a session's logger (with its session ID) to the
// Authenticator, whose lines then name the session too.
func WithLog(ctx context.Context, log *slog.Logger) context.Context {
	return context.WithValue(ctx, logKey{}, log)
}

// sessionLog returns the session's logger from ctx, or fallback.
func sessionLog(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(logKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return fallback
}

// admit reserves a place in the client address's failed-AUTH budget: a
// refusal for an address that failed too often (421, the connection
// closes), a temporary failure while its last places are held by attempts
// still being checked, or a delay before checking.
//
// A Pending attempt waits (up to the throttle's PendingWait) for the
// address's attempts in flight to end rather than hearing 454 at once:
// their outcome decides, so a print server whose users sign in together is
// served in turn, and parallel guesses are still stopped at the budget.
func (a *Authenticator) admit(ip netip.Addr, now time.Time) (*auth.Attempt, *Refusal) {
	at, delay, verdict := a.Throttle.Reserve(ip, now)
	if w, ok := a.Throttle.(auth.PendingWaiter); ok && verdict == auth.Pending && w.PendingWait() > 0 {
		deadline := time.NewTimer(w.PendingWait())
		defer deadline.Stop()
		for verdict == auth.Pending {
			select {
			case <-w.Settled(ip):
			case <-deadline.C:
				return nil, refused(reply.AuthBusy, "the address's last places stayed held by attempts being checked")
			}
			at, delay, verdict = a.Throttle.Reserve(ip, a.Now())
		}
	}
	switch verdict {
	case auth.Blocked:
		return nil, refused(reply.AuthThrottled, "the address failed too often")
	case auth.Pending:
		return nil, refused(reply.AuthBusy, "the address's last places are held by attempts being checked")
	case auth.Unavailable:
		return nil, refused(reply.AuthTemporaryFailure, "the address's failed sign-ins could not be counted")
	}
	if delay > 0 {
		a.Sleep(delay)
	}
	return at, nil
}

// lockoutAccount names the account the smart lockout counts for a sign-in:
// the mailbox, whichever of its names was used, or else the name tried, so
// that unknown names are counted (and locked) exactly as existing ones.
func lockoutAccount(mb *directory.Mailbox, username string) string {
	if mb != nil {
		return "mailbox:" + strconv.FormatInt(mb.ID, 10)
	}
	return "name:" + strings.ToLower(strings.TrimSpace(username))
}

// verify checks password against mb's stored hash through the gate. Unknown
// users, mailboxes without a password and unreadable hashes cost the same
// argon2id verification (DummyVerify, at DefaultParams like every stored
// hash) through the same gate, so neither timing nor a 454 tells whether a
// mailbox exists.
func (a *Authenticator) verify(ip netip.Addr, mb *directory.Mailbox, password string) (valid bool, err error) {
	run := func() {
		if mb == nil || mb.PasswordHash == "" {
			auth.DummyVerify(password)
			return
		}
		ok, err := auth.VerifyPassword(mb.PasswordHash, password)
		if err != nil {
			auth.DummyVerify(password)
		}
		valid = ok && err == nil
	}
	if a.Gate == nil {
		run()
		return valid, nil
	}
	if err := a.Gate.Do(ip, run); err != nil {
		a.logBusy()
		return false, err
	}
	return valid, nil
}

// logBusy says, at most once a minute, that verifications are being
// refused: an admin sees a flood without a line per attempt.
func (a *Authenticator) logBusy() {
	if a.Log == nil {
		return
	}
	now := time.Now().Unix()
	last := a.lastBusyLog.Load()
	if now-last < 60 || !a.lastBusyLog.CompareAndSwap(last, now) {
		return
	}
	verified, refused := a.Gate.Stats()
	c := a.Gate.Config()
	a.Log.Warn("password verifications refused: too many in progress (AUTH flood?)", "verified", verified, "refused", refused,
		"concurrency", c.Concurrency, "queue", c.Queue, "per_address", c.PerAddress)
}

// Basic signs in with a user name and password over protocol p.
//
// IMAP4 and POP3 user names may open another mailbox, as Exchange Online
// allows: user@contoso.com\shared@contoso.com (or with "/"), the password
// being the user's (see splitDelegate).
//
// Every failure for a wrong or unknown name costs the same argon2 hash and
// gets the same reply, so replies and timing do not tell whether a mailbox
// exists; only a client that knows the password sees which switch refuses it.
// A sign-in the smart lockout refuses gets that same generic failure without
// a hash: Exchange Online answers a locked-out Basic sign-in with its generic
// "Authentication unsuccessful", and unknown names lock alike, so the
// lockout reveals nothing about which mailboxes exist.
func (a *Authenticator) Basic(ctx context.Context, p Protocol, ip netip.Addr, username, password string) (*Grant, *Refusal) {
	now := a.Now()
	dir := a.Directory.Load()
	name, target, delegate := username, "", false
	actor := dir.MailboxBySignIn(username)
	if actor == nil && p != SMTP {
		if n, t, ok := splitDelegate(dir, username); ok {
			name, target, delegate = n, t, true
			actor = dir.MailboxBySignIn(n)
		}
	}
	valid, r := a.checkPassword(ip, actor, name, password, now)
	if r != nil {
		return nil, r
	}

	facts := policy.AuthFacts{Protocol: p, Mailbox: actor, CredentialsValid: valid, Method: policy.Basic}
	if actor != nil {
		facts.Org = dir.Organization(actor.OrgID)
		facts.Policy = dir.EffectiveAuthenticationPolicy(actor)
		if delegate {
			facts.Actor, facts.Mailbox = actor, delegateTarget(dir, actor, target)
			facts.FullAccess = facts.Mailbox != nil && dir.MailboxHasFullAccess(actor.ID, facts.Mailbox.ID)
		}
	}
	if d := policy.Authenticate(facts); d != nil {
		return nil, denied(d)
	}
	g := &Grant{Actor: actor, Mailbox: facts.Mailbox, Method: policy.Basic}
	a.record(p, g, ip, now)
	return g, nil
}

// checkPassword checks a password for actor (nil: no such user) under the
// failed-sign-in throttle of ip and the smart lockout: a refusal when
// either refuses, else whether the password is right. Every protocol and
// the web admin center go through it, so they share one budget.
func (a *Authenticator) checkPassword(ip netip.Addr, actor *directory.Mailbox, name, password string, now time.Time) (valid bool, r *Refusal) {
	// A login verified in the last minutes (the same name, password and
	// stored hash) needs no verification and cannot be a guess, so it
	// takes no place in the address's failure budget: the devices of an
	// office behind one address sign in together without waiting on each
	// other. A blocked address is refused all the same.
	cached := actor != nil && actor.PasswordHash != "" && a.Cache.Lookup(name, password, actor.PasswordHash, now)
	var attempt *auth.Attempt
	if cached {
		switch _, verdict := a.Throttle.Check(ip, now); verdict {
		case auth.Blocked:
			return false, refused(reply.AuthThrottled, "the address failed too often")
		case auth.Unavailable:
			return false, refused(reply.AuthTemporaryFailure, "the address's failed sign-ins could not be counted")
		}
	} else if attempt, r = a.admit(ip, now); r != nil {
		return false, r
	}
	failed, succeeded := false, false
	defer func() { attempt.Done(failed, a.Now()) }()

	var signIn *auth.SignIn
	if a.Lockout != nil {
		var locked bool
		var err error
		signIn, locked, err = a.Lockout.Admit(lockoutAccount(actor, name), ip, password, now)
		if err != nil {
			return false, refused(reply.AuthTemporaryFailure, "the account's failed sign-ins could not be counted")
		}
		if locked {
			failed = true // counts against the address: a guess, even unverified
			return false, refused(reply.AuthFailed, "the account is locked out (smart lockout)")
		}
		defer func() { signIn.Done(failed, succeeded, a.Now()) }()
	}

	valid = cached
	if !cached {
		var err error
		if valid, err = a.verify(ip, actor, password); err != nil {
			return false, refused(reply.AuthBusy, "too many password verifications in progress")
		}
		if valid {
			a.Cache.Store(name, password, actor.PasswordHash, now)
		}
	}
	failed, succeeded = !valid, valid
	return valid, nil
}

// OAuth signs in with a bearer token (XOAUTH2 or OAUTHBEARER) over
// protocol p, for user (XOAUTH2 user=, OAUTHBEARER a=: the mailbox to open,
// which may be empty with OAUTHBEARER for a user's own mailbox). The client
// learns only what Exchange tells it; the reason goes to the log.
func (a *Authenticator) OAuth(ctx context.Context, p Protocol, ip netip.Addr, user, token string) (*Grant, *Refusal) {
	now := a.Now()
	attempt, r := a.admit(ip, now)
	if r != nil {
		return nil, r
	}
	failed := false
	defer func() { attempt.Done(failed, a.Now()) }()
	refuse := func(r *Refusal) (*Grant, *Refusal) {
		if log := sessionLog(ctx, a.Log); log != nil {
			log.Warn("OAuth sign-in refused", "protocol", string(p), "ip", ip, "user", user, "reason", r.Reason)
		}
		failed = r.Reply == reply.AuthFailed
		return nil, r
	}
	dir := a.Directory.Load()
	var issuers []oauth.Issuer
	for _, s := range dir.AllAuthServers() {
		// The built-in issuer serves every organization; one organization
		// disabling its record stops only its own apps (trustingOrganizations).
		if s.Enabled || s.BuiltIn {
			iss := oauth.Issuer{ID: s.ID, Name: s.Name, Issuer: s.Issuer, JwksURI: s.JwksUri,
				Audience: s.Audience, UserClaims: s.UserClaims}
			if s.BuiltIn {
				if a.LocalKeys == nil {
					continue // the built-in issuer is not running here
				}
				iss.Keys = a.LocalKeys
			}
			issuers = append(issuers, iss)
		}
	}
	if a.Verifier == nil || len(issuers) == 0 {
		return refuse(refused(reply.AuthFailed, "no AuthServer is configured (New-AuthServer)"))
	}
	id, iss, err := a.Verifier.Verify(ctx, token, issuers)
	if errors.Is(err, oauth.ErrKeysUnavailable) {
		return refuse(refused(reply.AuthTemporary, err.Error()))
	}
	if err != nil {
		return refuse(refused(reply.AuthFailed, err.Error()))
	}
	actor, mb, d := policy.AuthorizeToken(dir, policy.TokenFacts{Protocol: p, Orgs: trustingOrganizations(dir, iss, id.AppID), User: id.User,
		AppID: id.AppID, Scopes: id.Scopes, Roles: id.Roles, Requested: user})
	if d != nil {
		d.Reason = "AuthServer " + iss.Name + ": " + d.Reason
		return refuse(denied(d))
	}
	for _, m := range []*directory.Mailbox{mb, actor} {
		// Set-User -STSRefreshTokensValidFrom: a token issued before it
		// (or one that does not say when it was issued) is revoked.
		if m != nil && !m.TokensValidFrom.IsZero() && (id.IssuedAt.IsZero() || id.IssuedAt.Before(m.TokensValidFrom)) {
			return refuse(refused(reply.AuthFailed, fmt.Sprintf("AuthServer %s: the token was issued at %s, before %s's STSRefreshTokensValidFrom (%s)",
				iss.Name, id.IssuedAt.UTC().Format(time.RFC3339), m.Name, m.TokensValidFrom.UTC().Format(time.RFC3339))))
		}
	}
	facts := policy.AuthFacts{Protocol: p, Mailbox: mb, CredentialsValid: true, Method: policy.OAuth,
		Org: dir.Organization(mb.OrgID), Policy: dir.EffectiveAuthenticationPolicy(mb)}
	if actor != nil && actor != mb {
		// A delegate's token: AuthorizeToken checked the FullAccess grant.
		facts.Actor, facts.FullAccess, facts.Policy = actor, true, dir.EffectiveAuthenticationPolicy(actor)
	}
	if d := policy.Authenticate(facts); d != nil {
		return nil, denied(d)
	}
	g := &Grant{Actor: actor, Mailbox: mb, Method: policy.OAuth}
	if actor == nil {
		g.AppID = id.AppID
	}
	a.record(p, g, ip, now)
	return g, nil
}

// trustingOrganizations are the organizations a verified token may sign in
// to. Postern's built-in issuer serves every organization, and its token
// proves the app registration it was issued to, which belongs to one
// organization (New-OAuthApp in that organization). Any other issuer is
// trusted by every organization with an enabled AuthServer for the same
// issuer URL.
func trustingOrganizations(dir *directory.Snapshot, iss *oauth.Issuer, appID string) []int64 {
	if iss.Keys != nil {
		app := dir.OAuthApp(appID)
		if app == nil {
			return nil
		}
		for _, s := range dir.AllAuthServers() {
			if s.BuiltIn && s.OrgID == app.OrgID && !s.Enabled {
				return nil // Set-AuthServer Postern -Enabled $false in the app's organization
			}
		}
		return []int64{app.OrgID}
	}
	var orgs []int64
	for _, s := range dir.AllAuthServers() {
		if s.Enabled && !s.BuiltIn && s.Issuer == iss.Issuer {
			orgs = append(orgs, s.OrgID)
		}
	}
	return orgs
}
