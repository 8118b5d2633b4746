package smtpd

import (
	"net/netip"
	"time"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/directory"
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
}

// Basic signs in with a user name and password. It returns the mailbox on
// success, otherwise the reply for the client.
//
// Every failure for a wrong or unknown name costs the same argon2 hash and
// gets the same reply, so replies and timing do not tell whether a mailbox
// exists; only a client that knows the password sees which switch refuses it.
func (a *Authenticator) Basic(ip netip.Addr, username, password string) (*directory.Mailbox, *reply.Reply) {
	now := a.Now()
	delay, blocked := a.Throttle.Check(ip, now)
	if blocked {
		return nil, reply.AuthThrottled
	}
	if delay > 0 {
		a.Sleep(delay)
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
