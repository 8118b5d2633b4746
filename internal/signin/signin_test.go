package signin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// cheap are argon2id parameters for tests that need no real cost.
var cheap = auth.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// testAuthenticator signs in sean@contoso.com (password "secret") with a gate, the default throttle and smart lockout and a fake
// clock.
func testAuthenticator(t *testing.T, gate auth.GateConfig, params auth.Params) (*Authenticator, *atomic.Int64) {
	t.Helper()
	hash, _ := auth.HashPasswordWithParams("secret", params)
	off := false
	org := &directory.Organization{ID: 1, Name: "contoso", GUID: "g"}
	sean := &directory.Mailbox{ID: 7, OrgID: 1, Name: "sean", PrimarySmtpAddress: "sean@contoso.com", UserPrincipalName: "sean@contoso.com",
		Type: directory.UserMailbox, PasswordHash: hash, SmtpClientAuthenticationDisabled: &off}
	dir := &directory.Current{}
	dir.Store(directory.NewSnapshot(directory.Contents{Organizations: []*directory.Organization{org}, Mailboxes: []*directory.Mailbox{sean}}))
	clock := &atomic.Int64{}
	clock.Store(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC).UnixNano())
	return &Authenticator{Directory: dir, Cache: auth.NewLoginCache(time.Minute, 100), Throttle: auth.NewThrottle(auth.DefaultThrottleConfig),
		Gate: auth.NewGate(gate), Lockout: auth.NewLockout(auth.DefaultLockoutConfig),
		Now: func() time.Time { return time.Unix(0, clock.Load()) }, Sleep: func(time.Duration) {}}, clock
}

// smtpBasic signs in over SMTP and answers as the SMTP session sees it.
func smtpBasic(a *Authenticator, ip netip.Addr, user, password string) (*directory.Mailbox, *reply.Reply) {
	g, r := a.Basic(context.Background(), SMTP, ip, user, password)
	if r != nil {
		return nil, r.Reply
	}
	return g.Mailbox, nil
}

func TestBasicSignInDecisions(t *testing.T) {
	ip := func(n int) netip.Addr { return netip.AddrFrom4([4]byte{203, 0, 113, byte(n)}) }
	home := netip.MustParseAddr("192.0.2.9")

	t.Run("unknown users cost a verification through the gate", func(t *testing.T) {
		a, _ := testAuthenticator(t, auth.GateConfig{}, cheap)
		for _, user := range []string{"nobody@contoso.com", "sean@contoso.com"} {
			before, _ := a.Gate.Stats()
			if _, rep := smtpBasic(a, ip(1), user, "wrong"); rep != reply.AuthFailed {
				t.Fatalf("%s: %v", user, rep)
			}
			if after, _ := a.Gate.Stats(); after != before+1 {
				t.Fatalf("%s: %d verifications, want 1", user, after-before)
			}
		}
	})

	t.Run("smart lockout: unfamiliar addresses locked without a hash, familiar one served", func(t *testing.T) {
		a, _ := testAuthenticator(t, auth.GateConfig{}, cheap)
		if mb, rep := smtpBasic(a, home, "sean@contoso.com", "secret"); mb == nil {
			t.Fatalf("first sign-in: %v", rep)
		}
		for i := range 10 { // one guess from each of ten addresses: the per-address throttle never sees a pattern
			if _, rep := smtpBasic(a, ip(i), "SEAN@contoso.com", fmt.Sprint("guess", i)); rep != reply.AuthFailed {
				t.Fatalf("guess %d: %v", i, rep)
			}
		}
		before, _ := a.Gate.Stats()
		if _, rep := smtpBasic(a, ip(50), "sean@contoso.com", "secret"); rep != reply.AuthFailed {
			t.Fatalf("right password from an unfamiliar address during the lockout: %v, want %v", rep, reply.AuthFailed)
		}
		if after, _ := a.Gate.Stats(); after != before {
			t.Fatal("a locked-out sign-in must not spend a verification")
		}
		if mb, rep := smtpBasic(a, home, "sean@contoso.com", "secret"); mb == nil {
			t.Fatalf("familiar address during the lockout: %v", rep)
		}
		// Unknown names lock the same way, so a lockout reveals nothing.
		for i := range 10 {
			smtpBasic(a, ip(i), "nobody@contoso.com", fmt.Sprint("guess", i))
		}
		l := a.Lockout.(*auth.Lockout)
		if l.Locked("name:nobody@contoso.com", ip(60), a.Now()) != l.Locked("mailbox:7", ip(60), a.Now()) {
			t.Fatal("unknown and existing names must lock alike")
		}
	})

	t.Run("a full gate answers 454 and counts no failure", func(t *testing.T) {
		a, _ := testAuthenticator(t, auth.GateConfig{Concurrency: 1, Queue: -1}, cheap)
		hold, held := make(chan struct{}), make(chan struct{})
		go a.Gate.Do(netip.MustParseAddr("198.51.100.1"), func() { close(held); <-hold })
		<-held
		for range 20 {
			if _, rep := smtpBasic(a, ip(1), "sean@contoso.com", "wrong"); rep != reply.AuthBusy {
				t.Fatalf("full gate: %v", rep)
			}
		}
		close(hold)
		if d, v := a.Throttle.Check(ip(1), a.Now()); v != auth.Admit || d != 0 {
			t.Fatalf("refused attempts were counted as failures: delay %v verdict %v", d, v)
		}
	})

	t.Run("the login cache serves a known client without the gate", func(t *testing.T) {
		a, _ := testAuthenticator(t, auth.GateConfig{Concurrency: 1, Queue: -1}, cheap)
		if mb, _ := smtpBasic(a, home, "sean@contoso.com", "secret"); mb == nil {
			t.Fatal("first sign-in")
		}
		hold, held := make(chan struct{}), make(chan struct{})
		go a.Gate.Do(netip.MustParseAddr("198.51.100.1"), func() { close(held); <-hold })
		<-held
		defer close(hold)
		if mb, rep := smtpBasic(a, home, "sean@contoso.com", "secret"); mb == nil {
			t.Fatalf("cached sign-in with a full gate: %v", rep)
		}
	})
}

// TestParallelGuessesOneAccount: N parallel wrong guesses for one account
// from one address verify at most BlockAfter passwords (run with -race).
func TestParallelGuessesOneAccount(t *testing.T) {
	// A real hash: each verification takes long enough that every guess
	// reaches the throttle before the first failure is known.
	a, _ := testAuthenticator(t, auth.GateConfig{Concurrency: 2, Queue: 500, PerAddress: 500, Wait: time.Minute}, auth.DefaultParams)
	const n = 100
	var wg sync.WaitGroup
	replies := make(chan string, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, rep := smtpBasic(a, netip.MustParseAddr("203.0.113.5"), "sean@contoso.com", fmt.Sprint("guess", i))
			replies <- reply.String(rep)
		})
	}
	close(start)
	wg.Wait()
	close(replies)
	count := map[string]int{}
	for r := range replies {
		count[r]++
	}
	verified, _ := a.Gate.Stats()
	if verified < 1 || verified > int64(auth.DefaultThrottleConfig.BlockAfter) {
		t.Fatalf("%d verifications for %d parallel guesses, want 1..%d; replies %v", verified, n, auth.DefaultThrottleConfig.BlockAfter, count)
	}
	if count[reply.String(reply.AuthFailed)] != int(verified) {
		t.Fatalf("replies %v for %d verifications", count, verified)
	}
}

// TestPendingWaitsForOutcome: a sign-in that finds its address's failed
// sign-in budget held by attempts in flight waits for their outcome
// instead of hearing 454 at once (a print server signing its users in
// together): a success frees a place and the waiting sign-in goes on,
// failures lock the address and it hears 421, and nothing settling within
// PendingWait gives 454.
func TestPendingWaitsForOutcome(t *testing.T) {
	ip := netip.MustParseAddr("203.0.113.9")
	tests := []struct {
		name    string
		settle  func(held []*auth.Attempt, now time.Time) // nil: nothing settles
		want    *reply.Reply                              // nil: signed in
		pending time.Duration
	}{
		{"a success frees a place", func(held []*auth.Attempt, now time.Time) { held[0].Done(false, now) }, nil, time.Minute},
		{"failures lock the address", func(held []*auth.Attempt, now time.Time) {
			for _, h := range held {
				h.Done(true, now)
			}
		}, reply.AuthThrottled, time.Minute},
		{"nothing settles in time", nil, reply.AuthBusy, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := testAuthenticator(t, auth.GateConfig{}, cheap)
			cfg := auth.DefaultThrottleConfig
			cfg.PendingWait = tt.pending
			a.Throttle = auth.NewThrottle(cfg)
			var held []*auth.Attempt
			for range cfg.BlockAfter {
				at, _, v := a.Throttle.Reserve(ip, a.Now())
				if v != auth.Admit {
					t.Fatalf("verdict %v while filling the budget", v)
				}
				held = append(held, at)
			}
			done := make(chan *reply.Reply, 1)
			go func() {
				_, r := smtpBasic(a, ip, "sean@contoso.com", "secret")
				done <- r
			}()
			if tt.settle != nil {
				select {
				case r := <-done:
					t.Fatalf("answered %q while the address's places were held", reply.String(r))
				case <-time.After(100 * time.Millisecond):
				}
				tt.settle(held, a.Now())
			}
			if r := <-done; r != tt.want {
				t.Fatalf("reply %q, want %q", reply.String(r), reply.String(tt.want))
			}
		})
	}
}

// unreachableThrottle is an AddressThrottle whose store cannot be read.
type unreachableThrottle struct{}

func (unreachableThrottle) Reserve(netip.Addr, time.Time) (*auth.Attempt, time.Duration, auth.Verdict) {
	return nil, 0, auth.Unavailable
}
func (unreachableThrottle) Check(netip.Addr, time.Time) (time.Duration, auth.Verdict) {
	return 0, auth.Unavailable
}

// TestThrottleUnavailable: when the failed-sign-in budget cannot be read
// (several nodes, the database unreachable), a sign-in gets 454 4.7.0
// without a verification, whether its login is cached or not: a guess
// whose failure could not be counted is never checked.
func TestThrottleUnavailable(t *testing.T) {
	a, _ := testAuthenticator(t, auth.GateConfig{}, cheap)
	ip := netip.MustParseAddr("203.0.113.5")
	if mb, rep := smtpBasic(a, ip, "sean@contoso.com", "secret"); mb == nil { // cached from now on
		t.Fatal(rep)
	}
	a.Throttle = unreachableThrottle{}
	before, _ := a.Gate.Stats()
	for _, pw := range []string{"secret", "wrong"} {
		if _, rep := smtpBasic(a, ip, "sean@contoso.com", pw); rep != reply.AuthTemporaryFailure {
			t.Errorf("password %q with the throttle unreadable: %v, want 454 4.7.0", pw, rep)
		}
	}
	if after, _ := a.Gate.Stats(); after != before {
		t.Errorf("%d passwords verified with the throttle unreadable", after-before)
	}
}

// unreachableLockout is an AccountLockout whose store cannot be read.
type unreachableLockout struct{}

func (unreachableLockout) Admit(string, netip.Addr, string, time.Time) (*auth.SignIn, bool, error) {
	return nil, false, errors.New("database unreachable")
}
func (unreachableLockout) Config() auth.LockoutConfig     { return auth.DefaultLockoutConfig }
func (unreachableLockout) Reconfigure(auth.LockoutConfig) {}

// TestLockoutUnavailable: when the smart lockout cannot be read, a sign-in
// gets 454 4.7.0 without a verification, and the refusal is not counted as
// a failure against the address (the client did nothing wrong).
func TestLockoutUnavailable(t *testing.T) {
	a, _ := testAuthenticator(t, auth.GateConfig{}, cheap)
	a.Lockout = unreachableLockout{}
	ip := netip.MustParseAddr("203.0.113.6")
	before, _ := a.Gate.Stats()
	for range 5 {
		if _, rep := smtpBasic(a, ip, "sean@contoso.com", "wrong"); rep != reply.AuthTemporaryFailure {
			t.Fatalf("the lockout unreadable: %v, want 454 4.7.0", rep)
		}
	}
	if after, _ := a.Gate.Stats(); after != before {
		t.Errorf("%d passwords verified with the lockout unreadable", after-before)
	}
	if d, v := a.Throttle.Check(ip, a.Now()); v != auth.Admit || d != 0 {
		t.Errorf("refusals for an unreadable lockout counted against the address: delay %v, verdict %v", d, v)
	}
}
