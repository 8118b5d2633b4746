package smtpd

import (
	"context"
	"errors"
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

// Authenticator checks a password sign-in: the failed-AUTH throttle by
// client address, the per-account smart lockout, the password (through the
// verified-login cache, else one argon2id verification through the gate),
// then the policy chain.
type Authenticator struct {
	Directory *directory.Current
	Cache     *auth.LoginCache
	Throttle  *auth.Throttle
	// Gate bounds argon2id verifications in flight and waiting; nil runs
	// them unbounded (unit tests).
	Gate *auth.Gate
	// Lockout is the per-account smart lockout; nil disables it.
	Lockout *auth.Lockout
	Now     func() time.Time
	// Sleep waits out a throttling delay; replaced in tests.
	Sleep func(time.Duration)
	// Verifier checks OAuth bearer tokens; Log records why one was refused
	// (never the token itself).
	Verifier *oauth.Verifier
	Log      *slog.Logger
	// LocalKeys gives the built-in issuer's keys, checked in process.
	LocalKeys func() jose.JSONWebKeySet

	lastBusyLog atomic.Int64 // unix seconds of the last "verifications refused" log line
}

// logKey is the context key of a session's logger.
type logKey struct{}

// withSessionLog carries a session's logger (with its session ID) to the
// Authenticator, whose lines then name the session too.
func withSessionLog(ctx context.Context, log *slog.Logger) context.Context {
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
func (a *Authenticator) admit(ip netip.Addr, now time.Time) (*auth.Attempt, *reply.Reply) {
	at, delay, verdict := a.Throttle.Reserve(ip, now)
	switch verdict {
	case auth.Blocked:
		return nil, reply.AuthThrottled
	case auth.Pending:
		return nil, reply.AuthBusy
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

// Basic signs in with a user name and password. It returns the mailbox on
// success, otherwise the reply for the client.
//
// Every failure for a wrong or unknown name costs the same argon2 hash and
// gets the same reply, so replies and timing do not tell whether a mailbox
// exists; only a client that knows the password sees which switch refuses it.
// A sign-in the smart lockout refuses gets that same 535 5.7.3 without a
// hash: Exchange Online answers a locked-out Basic sign-in with its generic
// "Authentication unsuccessful", and unknown names lock alike, so the
// lockout reveals nothing about which mailboxes exist.
func (a *Authenticator) Basic(ip netip.Addr, username, password string) (*directory.Mailbox, *reply.Reply) {
	now := a.Now()
	dir := a.Directory.Load()
	mb := dir.MailboxBySignIn(username)
	// A login verified in the last minutes (the same name, password and
	// stored hash) needs no verification and cannot be a guess, so it
	// takes no place in the address's failure budget: the devices of an
	// office behind one address sign in together without waiting on each
	// other. A blocked address is refused all the same.
	cached := mb != nil && mb.PasswordHash != "" && a.Cache.Lookup(username, password, mb.PasswordHash, now)
	var attempt *auth.Attempt
	if cached {
		if _, blocked := a.Throttle.Check(ip, now); blocked {
			return nil, reply.AuthThrottled
		}
	} else {
		var rep *reply.Reply
		if attempt, rep = a.admit(ip, now); rep != nil {
			return nil, rep
		}
	}
	failed, succeeded := false, false
	defer func() { attempt.Done(failed, a.Now()) }()

	var signIn *auth.SignIn
	if a.Lockout != nil {
		var locked bool
		signIn, locked = a.Lockout.Begin(lockoutAccount(mb, username), ip, password, now)
		if locked {
			failed = true // counts against the address: a guess, even unverified
			return nil, reply.AuthFailed
		}
		defer func() { signIn.Done(failed, succeeded, a.Now()) }()
	}

	valid := cached
	if !cached {
		var err error
		if valid, err = a.verify(ip, mb, password); err != nil {
			return nil, reply.AuthBusy
		}
		if valid {
			a.Cache.Store(username, password, mb.PasswordHash, now)
		}
	}
	failed, succeeded = !valid, valid

	facts := policy.AuthFacts{Mailbox: mb, CredentialsValid: valid, Method: policy.Basic}
	if mb != nil {
		facts.Org = dir.Organization(mb.OrgID)
		facts.Policy = dir.EffectiveAuthenticationPolicy(mb)
	}
	if rep := policy.Authenticate(facts); rep != nil {
		return nil, rep
	}
	return mb, nil
}

// OAuth signs in with a bearer token (XOAUTH2 or OAUTHBEARER) for user
// (which may be empty with OAUTHBEARER). It returns the mailbox on success,
// otherwise the reply for the client. The client learns only what Exchange
// tells it, "Authentication unsuccessful"; the reason goes to the log.
func (a *Authenticator) OAuth(ctx context.Context, ip netip.Addr, user, token string) (*directory.Mailbox, *reply.Reply) {
	now := a.Now()
	attempt, rep := a.admit(ip, now)
	if rep != nil {
		return nil, rep
	}
	failed := false
	defer func() { attempt.Done(failed, a.Now()) }()
	refuse := func(rep *reply.Reply, reason string) (*directory.Mailbox, *reply.Reply) {
		if log := sessionLog(ctx, a.Log); log != nil {
			log.Warn("OAuth sign-in refused", "ip", ip, "user", user, "reason", reason)
		}
		failed = rep == reply.AuthFailed
		return nil, rep
	}
	dir := a.Directory.Load()
	var issuers []oauth.Issuer
	for _, s := range dir.Contents().AuthServers {
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
		return refuse(reply.AuthFailed, "no AuthServer is configured (New-AuthServer)")
	}
	id, iss, err := a.Verifier.Verify(ctx, token, issuers)
	if errors.Is(err, oauth.ErrKeysUnavailable) {
		return refuse(reply.AuthTemporary, err.Error())
	}
	if err != nil {
		return refuse(reply.AuthFailed, err.Error())
	}
	mb, rep, reason := policy.AuthorizeToken(dir, policy.TokenFacts{Orgs: trustingOrganizations(dir, iss, id.AppID), User: id.User, AppID: id.AppID,
		Scopes: id.Scopes, Roles: id.Roles, Requested: user})
	if rep != nil {
		return refuse(rep, "AuthServer "+iss.Name+": "+reason)
	}
	facts := policy.AuthFacts{Mailbox: mb, CredentialsValid: true, Method: policy.OAuth,
		Org: dir.Organization(mb.OrgID), Policy: dir.EffectiveAuthenticationPolicy(mb)}
	if rep := policy.Authenticate(facts); rep != nil {
		return nil, rep
	}
	return mb, nil
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
		for _, s := range dir.Contents().AuthServers {
			if s.BuiltIn && s.OrgID == app.OrgID && !s.Enabled {
				return nil // Set-AuthServer Postern -Enabled $false in the app's organization
			}
		}
		return []int64{app.OrgID}
	}
	var orgs []int64
	for _, s := range dir.Contents().AuthServers {
		if s.Enabled && !s.BuiltIn && s.Issuer == iss.Issuer {
			orgs = append(orgs, s.OrgID)
		}
	}
	return orgs
}
