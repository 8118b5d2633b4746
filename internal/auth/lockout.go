package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"time"

	"postern.dev/postern/internal/metrics"
)

// LockoutConfig sets the per-account smart lockout, modelled on Microsoft
// Entra ID's smart lockout (the sign-in service behind Exchange Online):
// a lockout threshold of 10 failed sign-ins and a first lockout of 60
// seconds that grows with each further lockout, applied to sign-ins from
// unfamiliar locations while familiar ones keep working.
type LockoutConfig struct {
	// Threshold is how many failed sign-ins from unfamiliar addresses lock
	// the account.
	Threshold int
	// Window is how long failures are remembered after the last failure
	// or the end of the last lockout, whichever is later. Within it, the
	// first failure after a lockout locks the account again (as Entra
	// does), for twice as long, up to MaxDuration.
	Window      time.Duration
	Duration    time.Duration // first lockout
	MaxDuration time.Duration
	// FamiliarFor is how long an address (IPv6 per /64) stays familiar
	// for an account after a sign-in with the right password from it.
	FamiliarFor time.Duration
	// FamiliarPerAccount is how many familiar addresses are remembered
	// per account (the most recent ones).
	FamiliarPerAccount int
	// MaxAccounts caps each of the two tables (failure records and
	// familiar addresses) in accounts.
	MaxAccounts int
}

// DefaultLockoutConfig: 10 failures within 15 minutes lock the account for
// unfamiliar addresses for 1 minute, then 2, 4, 8, at most 15 minutes;
// an address is familiar for 30 days after a correct password from it
// (8 per account); 100,000 accounts tracked in each table.
var DefaultLockoutConfig = LockoutConfig{
	Threshold: 10, Window: 15 * time.Minute, Duration: time.Minute, MaxDuration: 15 * time.Minute,
	FamiliarFor: 30 * 24 * time.Hour, FamiliarPerAccount: 8, MaxAccounts: 100000,
}

// recentBad is how many recent wrong passwords an account remembers so a
// repeat is not counted again: Entra's smart lockout "tracks the last three
// bad password hashes", so a device retrying a stale password does not
// lock its account out.
const recentBad = 3

// AccountLockout is the per-account smart lockout every password sign-in
// goes through. Lockout is one node's, in memory (the SQLite store, one
// node); a store several nodes share provides one kept in the database,
// so that failures spread over the nodes lock an account as failures at
// one node do, and an address familiar at one node is familiar at all.
type AccountLockout interface {
	// Admit admits a sign-in for account from ip, or reports the account
	// locked for that address (Lockout.Begin). An error means the lockout
	// could not be read (the database is unreachable): the caller refuses
	// the sign-in with a temporary failure and checks no password, since
	// its failure could not be counted.
	Admit(account string, ip netip.Addr, password string, now time.Time) (s *SignIn, locked bool, err error)
	// Config returns the effective configuration.
	Config() LockoutConfig
	// Reconfigure changes the configuration (a configuration reload;
	// zero fields take the defaults).
	Reconfigure(cfg LockoutConfig)
}

// Lockout is the per-account smart lockout: failed sign-ins for one
// account counted across every client address, so that guessing one
// account's password from many addresses (which the per-address Throttle
// cannot see) also stops. Addresses that recently signed in with the right
// password are familiar: their failures are not counted and the lockout
// does not apply to them, so a device that works keeps working during an
// attack on its account.
//
// Accounts are keyed by the caller: the mailbox for existing ones, the name
// tried otherwise, so unknown names lock exactly as existing ones do and a
// lockout does not reveal whether a mailbox exists. Everything is in memory
// and bounded; a restart forgets it.
type Lockout struct {
	cfg LockoutConfig
	key [32]byte

	mu       sync.Mutex
	accounts map[string]*accountFailures
	familiar map[string][]seen // written only on success: an attacker without the password cannot grow or evict it
}

type accountFailures struct {
	count       int
	inflight    int
	level       int // lockouts so far in this run of failures
	last        time.Time
	lockedUntil time.Time
	bad         [recentBad]uint64
	nbad        int
}

type seen struct {
	addr netip.Prefix
	at   time.Time
}

// NewLockout makes a smart lockout; zero fields take DefaultLockoutConfig's.
func NewLockout(cfg LockoutConfig) *Lockout {
	l := &Lockout{cfg: cfg.withDefaults(), accounts: make(map[string]*accountFailures), familiar: make(map[string][]seen)}
	if _, err := rand.Read(l.key[:]); err != nil {
		panic(err)
	}
	return l
}

// WithDefaults is cfg with its zero fields set to DefaultLockoutConfig's,
// as NewLockout and Reconfigure take it.
func (cfg LockoutConfig) WithDefaults() LockoutConfig { return cfg.withDefaults() }

func (cfg LockoutConfig) withDefaults() LockoutConfig {
	d := DefaultLockoutConfig
	if cfg.Threshold <= 0 {
		cfg.Threshold = d.Threshold
	}
	if cfg.Window <= 0 {
		cfg.Window = d.Window
	}
	if cfg.Duration <= 0 {
		cfg.Duration = d.Duration
	}
	if cfg.MaxDuration < cfg.Duration {
		cfg.MaxDuration = max(d.MaxDuration, cfg.Duration)
	}
	if cfg.FamiliarFor <= 0 {
		cfg.FamiliarFor = d.FamiliarFor
	}
	if cfg.FamiliarPerAccount <= 0 {
		cfg.FamiliarPerAccount = d.FamiliarPerAccount
	}
	if cfg.MaxAccounts <= 0 {
		cfg.MaxAccounts = d.MaxAccounts
	}
	return cfg
}

// Config returns the effective configuration.
func (l *Lockout) Config() LockoutConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// Reconfigure changes the configuration (a configuration reload; zero
// fields take the defaults, as in NewLockout). What the tables hold is
// kept: failures counted so far count against the new threshold, and
// lockouts in force run to the end they were given.
func (l *Lockout) Reconfigure(cfg LockoutConfig) {
	cfg = cfg.withDefaults()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
}

// digest is a keyed hash of a wrong password, so that the table never
// holds anything a reader could test guesses against.
func (l *Lockout) digest(password string) uint64 { return PasswordDigest(&l.key, password) }

// PasswordDigest is the keyed hash under which the smart lockout remembers
// recent wrong passwords (Entra's "last three bad password hashes"): 64
// bits of HMAC-SHA256, so that neither the table nor a copy of it holds
// anything to test guesses against without the key.
func PasswordDigest(key *[32]byte, password string) uint64 {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(password))
	return binary.LittleEndian.Uint64(m.Sum(nil))
}

// SignIn is one sign-in attempt's place in an account's lockout budget;
// Done returns it.
type SignIn struct {
	end  func(failed, succeeded bool, now time.Time)
	done bool
}

// NewSignIn makes the SignIn of an AccountLockout implementation: end
// records the attempt's outcome, at most once.
func NewSignIn(end func(failed, succeeded bool, now time.Time)) *SignIn { return &SignIn{end: end} }

// Begin admits a sign-in for account from ip, or reports the account locked
// for that address. Attempts in flight count against the threshold, so
// parallel guesses from many addresses are bounded as sequential ones are.
// A familiar address is always admitted and never counted.
func (l *Lockout) Begin(account string, ip netip.Addr, password string, now time.Time) (s *SignIn, locked bool) {
	k := key(ip)
	d := l.digest(password)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isFamiliar(account, k, now) {
		return NewSignIn(func(failed, succeeded bool, now time.Time) { l.done(account, k, true, 0, failed, succeeded, now) }), false
	}
	a := l.current(account, now)
	if a != nil && (now.Before(a.lockedUntil) || a.count+a.inflight >= l.cfg.Threshold) {
		metrics.AuthLockouts.Inc()
		return nil, true
	}
	if a == nil {
		if len(l.accounts) >= l.cfg.MaxAccounts {
			l.sweep(now)
		}
		a = &accountFailures{last: now}
		l.accounts[account] = a
	}
	a.inflight++
	return NewSignIn(func(failed, succeeded bool, now time.Time) { l.done(account, k, false, d, failed, succeeded, now) }), false
}

// Admit implements AccountLockout: Begin, which never fails.
func (l *Lockout) Admit(account string, ip netip.Addr, password string, now time.Time) (*SignIn, bool, error) {
	s, locked := l.Begin(account, ip, password, now)
	return s, locked, nil
}

// Done ends the attempt. failed: the password was wrong (counted unless the
// address is familiar or the same wrong password was counted recently).
// succeeded: the password was right, which makes the address familiar.
// Neither: it was not decided. Calling it again does nothing.
func (s *SignIn) Done(failed, succeeded bool, now time.Time) {
	if s == nil || s.done {
		return
	}
	s.done = true
	s.end(failed, succeeded, now)
}

func (l *Lockout) done(account string, addr netip.Prefix, familiar bool, password uint64, failed, succeeded bool, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if succeeded {
		l.remember(account, addr, now)
	}
	if familiar {
		return
	}
	a := l.current(account, now)
	if a == nil { // swept while in flight
		if !failed {
			return
		}
		a = &accountFailures{}
		l.accounts[account] = a
	} else if a.inflight > 0 {
		a.inflight--
	}
	if !failed || slices.Contains(a.bad[:a.nbad], password) {
		return
	}
	copy(a.bad[1:], a.bad[:recentBad-1])
	a.bad[0] = password
	a.nbad = min(a.nbad+1, recentBad)
	a.count++
	a.last = now
	if a.count >= l.cfg.Threshold {
		d := l.cfg.Duration << min(a.level, 20)
		if d <= 0 || d > l.cfg.MaxDuration {
			d = l.cfg.MaxDuration
		}
		a.lockedUntil = now.Add(d)
		a.level++
		// The first failure after the lockout locks again.
		a.count = l.cfg.Threshold - 1
	}
}

// Locked reports whether account is locked for ip now (for tests and
// diagnostics; sign-ins use Begin).
func (l *Lockout) Locked(account string, ip netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isFamiliar(account, key(ip), now) {
		return false
	}
	a := l.current(account, now)
	return a != nil && now.Before(a.lockedUntil)
}

// current returns account's record with expired failures forgotten.
func (l *Lockout) current(account string, now time.Time) *accountFailures {
	a := l.accounts[account]
	if a == nil {
		return nil
	}
	if now.Sub(later(a.last, a.lockedUntil)) > l.cfg.Window {
		if a.inflight > 0 {
			*a = accountFailures{inflight: a.inflight, last: now}
			return a
		}
		delete(l.accounts, account)
		return nil
	}
	return a
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (l *Lockout) isFamiliar(account string, k netip.Prefix, now time.Time) bool {
	for _, s := range l.familiar[account] {
		if s.addr == k && now.Sub(s.at) <= l.cfg.FamiliarFor {
			return true
		}
	}
	return false
}

// remember makes k familiar for account, keeping the most recent
// FamiliarPerAccount addresses.
func (l *Lockout) remember(account string, k netip.Prefix, now time.Time) {
	list, ok := l.familiar[account]
	if !ok && len(l.familiar) >= l.cfg.MaxAccounts {
		l.sweepFamiliar(now)
	}
	list = slices.DeleteFunc(list, func(s seen) bool { return s.addr == k || now.Sub(s.at) > l.cfg.FamiliarFor })
	list = append([]seen{{addr: k, at: now}}, list...)
	if len(list) > l.cfg.FamiliarPerAccount {
		list = list[:l.cfg.FamiliarPerAccount]
	}
	l.familiar[account] = list
}

// sweep drops expired failure records, then arbitrary ones that are
// neither locked nor in flight, then any, down to nine tenths of the cap,
// so the table stays bounded and the scan is paid once per many records.
func (l *Lockout) sweep(now time.Time) {
	for k := range l.accounts {
		l.current(k, now)
	}
	for pass := range 2 {
		for k, a := range l.accounts {
			if len(l.accounts) < roomy(l.cfg.MaxAccounts) {
				return
			}
			if pass == 1 || (a.inflight == 0 && !now.Before(a.lockedUntil)) {
				delete(l.accounts, k)
			}
		}
	}
}

// sweepFamiliar drops expired familiar addresses, then arbitrary accounts'
// lists down to nine tenths of the cap.
func (l *Lockout) sweepFamiliar(now time.Time) {
	for k, list := range l.familiar {
		list = slices.DeleteFunc(list, func(s seen) bool { return now.Sub(s.at) > l.cfg.FamiliarFor })
		if len(list) == 0 {
			delete(l.familiar, k)
		} else {
			l.familiar[k] = list
		}
	}
	for k := range l.familiar {
		if len(l.familiar) < roomy(l.cfg.MaxAccounts) {
			return
		}
		delete(l.familiar, k)
	}
}
