package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/testpg"
)

var lockoutTestConfig = auth.LockoutConfig{Threshold: 3, Window: time.Minute, Duration: 10 * time.Second, MaxDuration: 40 * time.Second,
	FamiliarFor: 2 * time.Minute, FamiliarPerAccount: 2, MaxAccounts: 1000}

var lockoutTestKey = [32]byte{1, 2, 3}

// TestAccountLockoutMatchesMemory: the database's smart lockout gives the
// in-memory one's answers to the same random run of sign-ins — accounts
// tried from several addresses (IPv6 /64 neighbours among them) with
// repeated and new wrong passwords, right ones that make addresses
// familiar (at most two per account), undecided ends, lockouts growing in
// a run and time passing through windows — with two nodes taking turns.
func TestAccountLockoutMatchesMemory(t *testing.T) {
	url := testpg.New(t)
	a, b := openTest(t, url), openTest(t, url)
	defer a.Close()
	defer b.Close()
	nodes := []auth.AccountLockout{a.AccountLockout(lockoutTestConfig, lockoutTestKey), b.AccountLockout(lockoutTestConfig, lockoutTestKey)}
	mem := auth.NewLockout(lockoutTestConfig)
	accounts := []string{"mailbox:1", "mailbox:2", "name:ghost@contoso.com"}
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2:3")}
	passwords := []string{"right", "wrong1", "wrong2", "wrong3", "wrong4", "wrong5"}
	type open struct {
		m, d     *auth.SignIn
		password string
	}
	var flying []open
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Unix(1_800_000_000, 0)
	locked, admitted := 0, 0
	end := func(o open) {
		// "right" succeeds; a wrong password fails, or now and then ends
		// undecided (refused for another reason before the check).
		failed, succeeded := o.password != "right", o.password == "right"
		if failed && rng.IntN(8) == 0 {
			failed = false
		}
		o.m.Done(failed, succeeded, now)
		o.d.Done(failed, succeeded, now)
	}
	for step := range 800 {
		if rng.IntN(2) == 0 || len(flying) == 0 {
			acct, ip := accounts[rng.IntN(len(accounts))], addrs[rng.IntN(len(addrs))]
			pw := passwords[1+rng.IntN(len(passwords)-1)]
			if rng.IntN(6) == 0 {
				pw = "right"
			}
			ms, ml := mem.Begin(acct, ip, pw, now)
			ds, dl, err := nodes[step%2].Admit(acct, ip, pw, now)
			must(t, err)
			if ml != dl {
				t.Fatalf("step %d: Begin(%s, %v, %s): database locked %v, memory %v", step, acct, ip, pw, dl, ml)
			}
			if ml {
				locked++
			} else {
				admitted++
				flying = append(flying, open{ms, ds, pw})
			}
		} else {
			i := rng.IntN(len(flying))
			end(flying[i])
			flying = append(flying[:i], flying[i+1:]...)
		}
		if len(flying) > 3 {
			end(flying[0])
			flying = flying[1:]
		}
		now = now.Add(time.Duration(rng.IntN(8)) * time.Second)
	}
	if locked == 0 || admitted == 0 {
		t.Errorf("the run missed a case: %d locked, %d admitted", locked, admitted)
	}
	t.Logf("%d sign-ins admitted, %d locked out", admitted, locked)
}

// TestAccountLockoutAcrossNodes: failures for one account from unfamiliar
// addresses spread over two nodes lock it at the threshold, for every
// node, while an address familiar through a sign-in on one node is let in
// by the other; a wrong password repeated through both nodes counts once;
// each table tracks at most MaxAccounts accounts, the sweep drops what
// expired, and an unreachable database is an error, never an admitted sign-in.
func TestAccountLockoutAcrossNodes(t *testing.T) {
	url := testpg.New(t)
	a, b := openTest(t, url), openTest(t, url)
	defer b.Close()
	cfg := lockoutTestConfig
	cfg.MaxAccounts = 20
	nodes := []auth.AccountLockout{a.AccountLockout(cfg, lockoutTestKey), b.AccountLockout(cfg, lockoutTestKey)}
	now := time.Unix(1_800_000_000, 0)
	home := netip.MustParseAddr("192.0.2.10")
	try := func(node int, acct string, ip netip.Addr, pw string) bool {
		t.Helper()
		s, locked, err := nodes[node].Admit(acct, ip, pw, now)
		must(t, err)
		if !locked {
			s.Done(pw != "right", pw == "right", now)
		}
		return locked
	}
	if try(0, "mailbox:1", home, "right") {
		t.Fatal("first sign-in locked")
	}
	// The same wrong password through both nodes: counted once.
	for i := range 4 {
		if try(i%2, "mailbox:1", netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), "stale") {
			t.Fatalf("a repeated wrong password locked the account (attempt %d)", i+1)
		}
	}
	for i := range cfg.Threshold - 1 {
		if try(i%2, "mailbox:1", netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)}), fmt.Sprint("guess", i)) {
			t.Fatalf("guess %d locked the account early", i+1)
		}
	}
	for i := range nodes {
		if !try(i, "mailbox:1", netip.MustParseAddr("198.51.100.1"), "right") {
			t.Errorf("node %d lets an unfamiliar address in after %d failures over both nodes", i, cfg.Threshold)
		}
	}
	if try(1, "mailbox:1", home, "right") {
		t.Error("the address familiar through node 0 is locked out on node 1")
	}

	// The caps: 60 accounts failing, and 60 signing in, over both nodes.
	for i := range 60 {
		try(i%2, fmt.Sprint("name:flood", i), home, "wrong")
		try(i%2, fmt.Sprint("name:device", i), netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), "right")
	}
	counts := func() (accounts, accountsSize, familiar, familiarSize int) {
		t.Helper()
		must(t, b.r.QueryRow(`SELECT (SELECT COUNT(*) FROM lockout_accounts), (SELECT n FROM lockout_size WHERE tbl = 'accounts'),
			(SELECT COUNT(DISTINCT account) FROM lockout_familiar), (SELECT n FROM lockout_size WHERE tbl = 'familiar')`).
			Scan(&accounts, &accountsSize, &familiar, &familiarSize))
		return
	}
	if n, size, f, fsize := counts(); n > cfg.MaxAccounts || n != size || f > cfg.MaxAccounts || f != fsize {
		t.Errorf("tracked %d accounts (size %d) and %d familiar (size %d); want at most %d each, counted exactly", n, size, f, fsize, cfg.MaxAccounts)
	}
	must(t, b.SweepLockout(context.Background(), cfg, now.Add(24*time.Hour)))
	if n, size, f, fsize := counts(); n != 0 || size != 0 || f != 0 || fsize != 0 {
		t.Errorf("after the sweep a day later: %d accounts (size %d), %d familiar (size %d)", n, size, f, fsize)
	}

	a.Close()
	if s, _, err := nodes[0].Admit("mailbox:2", home, "right", now); err == nil || s != nil {
		t.Errorf("Admit without a database: sign-in %v, err %v; want an error and no sign-in", s, err)
	}
}

// BenchmarkAccountLockout: one password sign-in's cost on the database's
// smart lockout, Admit then Done (two round trips), over 1,000 accounts.
func BenchmarkAccountLockout(b *testing.B) {
	url := testpg.New(b)
	s := openTest(b, url)
	defer s.Close()
	l := s.AccountLockout(auth.DefaultLockoutConfig, lockoutTestKey)
	now := time.Unix(1_800_000_000, 0)
	ip := netip.MustParseAddr("192.0.2.1")
	for i := 0; b.Loop(); i++ {
		si, locked, err := l.Admit(fmt.Sprint("mailbox:", i%1000), ip, "right", now)
		if err != nil || locked {
			b.Fatal(locked, err)
		}
		si.Done(false, true, now)
	}
}
