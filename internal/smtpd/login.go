package smtpd

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/go-jose/go-jose/v4"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/oauth"
	"postern.dev/postern/internal/policy"
	"postern.dev/postern/internal/reply"
)

// Authenticator checks a password sign-in: throttling by client address,
// the password (through the verified-login cache), then the policy chain.
type Authenticator struct {
	Directory *directory.Current
	Cache     *auth.LoginCache
	Throttle  *auth.Throttle
	Now       func() time.Time
	// Sleep waits out a throttling delay; replaced in tests.
	Sleep func(time.Duration)
	// Verifier checks OAuth bearer tokens; Log records why one was refused
	// (never the token itself).
	Verifier *oauth.Verifier
	Log      *slog.Logger
	// LocalKeys gives the built-in issuer's keys, checked in process.
	LocalKeys func() jose.JSONWebKeySet
}

// admit applies the failed-AUTH throttle to a client address: a refusal
// for an address that failed too often, or a delay before checking.
func (a *Authenticator) admit(ip netip.Addr, now time.Time) *reply.Reply {
	delay, blocked := a.Throttle.Check(ip, now)
	if blocked {
		return reply.AuthThrottled
	}
	if delay > 0 {
		a.Sleep(delay)
	}
	return nil
}

// Basic signs in with a user name and password. It returns the mailbox on
// success, otherwise the reply for the client.
//
// Every failure for a wrong or unknown name costs the same argon2 hash and
// gets the same reply, so replies and timing do not tell whether a mailbox
// exists; only a client that knows the password sees which switch refuses it.
func (a *Authenticator) Basic(ip netip.Addr, username, password string) (*directory.Mailbox, *reply.Reply) {
	now := a.Now()
	if rep := a.admit(ip, now); rep != nil {
		return nil, rep
	}

	dir := a.Directory.Load()
	mb := dir.MailboxBySignIn(username)
	valid := false
	switch {
	case mb == nil || mb.PasswordHash == "":
		auth.DummyVerify(password)
	case a.Cache.Lookup(username, password, mb.PasswordHash, now):
		valid = true
	default:
		ok, err := auth.VerifyPassword(mb.PasswordHash, password)
		valid = ok && err == nil
		if valid {
			a.Cache.Store(username, password, mb.PasswordHash, now)
		}
	}

	facts := policy.AuthFacts{Mailbox: mb, CredentialsValid: valid, Method: policy.Basic}
	if mb != nil {
		facts.Org = dir.Organization(mb.OrgID)
		facts.Policy = dir.EffectiveAuthenticationPolicy(mb)
	}
	if rep := policy.Authenticate(facts); rep != nil {
		if !valid {
			a.Throttle.Failure(ip, now)
		}
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
	if rep := a.admit(ip, now); rep != nil {
		return nil, rep
	}
	refuse := func(rep *reply.Reply, reason string) (*directory.Mailbox, *reply.Reply) {
		if a.Log != nil {
			a.Log.Warn("OAuth sign-in refused", "ip", ip, "user", user, "reason", reason)
		}
		if rep == reply.AuthFailed {
			a.Throttle.Failure(ip, now)
		}
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
