package auth

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
)

var cheap = Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

func TestPasswordHash(t *testing.T) {
	h, err := HashPasswordWithParams("P@ss w0rd ü", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("PHC string: %s", h)
	}
	if ok, err := VerifyPassword(h, "P@ss w0rd ü"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, _ := VerifyPassword(h, "P@ss w0rd u"); ok {
		t.Fatal("wrong password accepted")
	}
	h2, _ := HashPasswordWithParams("P@ss w0rd ü", cheap)
	if h == h2 {
		t.Fatal("salts must differ")
	}
	if ok, err := VerifyPassword(dummyHash, "postern-dummy-password"); !ok || err != nil {
		t.Fatal("dummy hash must be a real hash")
	}
}

func TestMalformedHashes(t *testing.T) {
	good, _ := HashPasswordWithParams("x", cheap)
	parts := strings.Split(good, "$")
	for _, h := range []string{
		"", "$", "plain", "$argon2i$v=19$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=18$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=99999999,t=1,p=1$" + parts[4] + "$" + parts[5], // 95 GiB
		"$argon2id$v=19$m=64,t=1000,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=0$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=300$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$t=1,m=64,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$!!!$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$",
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$" + parts[5] + "$extra",
		"$argon2id$v=19$m=-1,t=1,p=1$" + parts[4] + "$" + parts[5],
	} {
		if ok, err := VerifyPassword(h, "x"); ok || err == nil {
			t.Errorf("%q: ok=%v err=%v", h, ok, err)
		}
	}
}

// run drives a SASL server through responses; nil in responses means the
// client gave no initial response.
func run(s sasl.Server, responses ...[]byte) (challenges []string, err error) {
	for i, r := range responses {
		ch, done, err := s.Next(r)
		if err != nil {
			return challenges, err
		}
		if done {
			if i != len(responses)-1 {
				return challenges, errors.New("done early")
			}
			return challenges, nil
		}
		challenges = append(challenges, string(ch))
	}
	return challenges, errors.New("not done")
}

type recorder struct {
	calls      int
	user, pass string
}

func (r *recorder) check(u, p string) error {
	r.calls++
	r.user, r.pass = u, p
	if p != "secret" {
		return errors.New("wrong")
	}
	return nil
}

func TestPlain(t *testing.T) {
	long := strings.Repeat("a", 256)
	tests := []struct {
		name       string
		responses  [][]byte
		challenges []string
		malformed  bool
		user       string
	}{
		{name: "initial response", responses: [][]byte{[]byte("\x00sean@contoso.com\x00secret")}, user: "sean@contoso.com"},
		{name: "authzid equal", responses: [][]byte{[]byte("Sean@contoso.com\x00sean@contoso.com\x00secret")}, user: "sean@contoso.com"},
		{name: "no initial response", responses: [][]byte{nil, []byte("\x00sean@contoso.com\x00secret")}, challenges: []string{""}, user: "sean@contoso.com"},
		{name: "authzid differs", responses: [][]byte{[]byte("chris@contoso.com\x00sean@contoso.com\x00secret")}, malformed: true},
		{name: "no NULs", responses: [][]byte{[]byte("sean secret")}, malformed: true},
		{name: "one NUL", responses: [][]byte{[]byte("sean\x00secret")}, malformed: true},
		{name: "extra NUL", responses: [][]byte{[]byte("\x00sean\x00sec\x00ret")}, malformed: true},
		{name: "empty authcid", responses: [][]byte{[]byte("\x00\x00secret")}, malformed: true},
		{name: "empty message", responses: [][]byte{{}}, malformed: true},
		{name: "overlong password", responses: [][]byte{[]byte("\x00sean\x00" + long)}, malformed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			ch, err := run(NewPlainServer(rec.check), tt.responses...)
			if tt.malformed {
				if err != ErrMalformedCredentials || rec.calls != 0 {
					t.Fatalf("err=%v calls=%d", err, rec.calls)
				}
				return
			}
			if err != nil || rec.calls != 1 || rec.user != tt.user || rec.pass != "secret" {
				t.Fatalf("err=%v calls=%d user=%q", err, rec.calls, rec.user)
			}
			if strings.Join(ch, "|") != strings.Join(tt.challenges, "|") {
				t.Errorf("challenges %q", ch)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	rec := &recorder{}
	ch, err := run(NewLoginServer(rec.check), nil, []byte("sean@contoso.com"), []byte("secret"))
	if err != nil || strings.Join(ch, "|") != "Username:|Password:" || rec.user != "sean@contoso.com" {
		t.Fatalf("challenges %q err %v user %q", ch, err, rec.user)
	}
	rec = &recorder{}
	ch, err = run(NewLoginServer(rec.check), []byte("sean@contoso.com"), []byte("secret"))
	if err != nil || strings.Join(ch, "|") != "Password:" || rec.calls != 1 {
		t.Fatalf("with initial response: %q %v", ch, err)
	}
	rec = &recorder{}
	if _, err := run(NewLoginServer(rec.check), nil, []byte("sean"), []byte("wrong")); err == nil || err.Error() != "wrong" {
		t.Fatalf("check's error must pass through unchanged: %v", err)
	}
	for _, bad := range [][][]byte{
		{nil, {}},
		{nil, []byte("se\x00an")},
		{nil, []byte(strings.Repeat("u", 300))},
		{nil, []byte("sean"), []byte("pa\x00ss")},
	} {
		rec := &recorder{}
		if _, err := run(NewLoginServer(rec.check), bad...); err != ErrMalformedCredentials || rec.calls != 0 {
			t.Errorf("%q: err=%v calls=%d", bad, err, rec.calls)
		}
	}
}

func TestLoginCache(t *testing.T) {
	c := NewLoginCache(time.Minute, 3)
	now := time.Now()
	c.Store("Sean@contoso.com", "secret", "hash1", now)
	if !c.Lookup("sean@contoso.com", "secret", "hash1", now.Add(30*time.Second)) {
		t.Fatal("hit expected (user names are case-insensitive)")
	}
	if c.Lookup("sean@contoso.com", "other", "hash1", now) {
		t.Fatal("different password must miss")
	}
	if c.Lookup("sean@contoso.com", "secret", "hash2", now) {
		t.Fatal("a changed password hash must miss")
	}
	c.Store("sean@contoso.com", "secret", "hash1", now)
	if c.Lookup("sean@contoso.com", "secret", "hash1", now.Add(2*time.Minute)) {
		t.Fatal("expired entry must miss")
	}
	for i := range 10 {
		c.Store(string(rune('a'+i)), "p", "h", now)
	}
	if len(c.entries) > 3 {
		t.Fatalf("cache grew to %d", len(c.entries))
	}
}

// TestLoginCacheSpreadAndRenew: logins verified together expire over a
// fifth of the ttl, not at once, and a hit in the second half of an
// entry's life renews it (a hit in the first half does not).
func TestLoginCacheSpreadAndRenew(t *testing.T) {
	const ttl = 5 * time.Minute
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	c := NewLoginCache(ttl, 1000)
	const n = 100
	for i := range n {
		c.Store(fmt.Sprint("dev", i), "p", "h", t0)
	}
	expiries := map[time.Time]bool{}
	for _, e := range c.entries {
		if e.expires.Before(t0.Add(ttl-ttl/5)) || e.expires.After(t0.Add(ttl)) {
			t.Fatalf("expires %v after storing, want within [%v, %v]", e.expires.Sub(t0), ttl-ttl/5, ttl)
		}
		expiries[e.expires] = true
	}
	if len(expiries) < n/2 {
		t.Fatalf("%d entries stored together share %d expiry times", n, len(expiries))
	}

	tests := []struct {
		name    string
		lookups []time.Duration // after t0, each must hit
		miss    time.Duration   // then a lookup that must miss
	}{
		{"without renewal it expires", []time.Duration{time.Minute}, ttl + time.Second},
		{"a hit in the second half renews", []time.Duration{3 * time.Minute, 6 * time.Minute, 9 * time.Minute}, 15 * time.Minute},
		{"a hit in the first half does not", []time.Duration{30 * time.Second, time.Minute}, ttl + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewLoginCache(ttl, 10)
			c.Store("sean", "p", "h", t0)
			for _, at := range tt.lookups {
				if !c.Lookup("sean", "p", "h", t0.Add(at)) {
					t.Fatalf("miss at %v", at)
				}
			}
			if c.Lookup("sean", "p", "h", t0.Add(tt.miss)) {
				t.Fatalf("hit at %v", tt.miss)
			}
		})
	}
	// A renewed entry still misses once the password changes.
	c = NewLoginCache(ttl, 10)
	c.Store("sean", "p", "h1", t0)
	c.Lookup("sean", "p", "h1", t0.Add(4*time.Minute))
	if c.Lookup("sean", "p", "h2", t0.Add(5*time.Minute)) {
		t.Fatal("a renewed entry must miss after a password change")
	}
}

func TestThrottle(t *testing.T) {
	th := NewThrottle(DefaultThrottleConfig)
	ip := netip.MustParseAddr("192.0.2.7")
	now := time.Now()
	want := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		d, v := th.Check(ip, now)
		blocked := v == Blocked
		if blocked || d != w {
			t.Fatalf("attempt %d: delay %v blocked %v, want %v", i+1, d, blocked, w)
		}
		th.Failure(ip, now)
	}
	if _, v := th.Check(ip, now.Add(time.Minute)); v != Blocked {
		t.Fatal("10 failures must block")
	}
	if _, v := th.Check(netip.MustParseAddr("192.0.2.8"), now); v == Blocked {
		t.Fatal("another address is not blocked")
	}
	if d, v := th.Check(ip, now.Add(16*time.Minute)); v == Blocked || d != 0 {
		t.Fatalf("after the lockout: %v %v", d, v)
	}
	// IPv6 addresses in one /64 share a count.
	a, b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff:2")
	for range 10 {
		th.Failure(a, now)
	}
	if _, v := th.Check(b, now); v != Blocked {
		t.Fatal("/64 neighbours must share the lockout")
	}
	if _, v := th.Check(netip.MustParseAddr("2001:db8:0:1::1"), now); v == Blocked {
		t.Fatal("another /64 must not")
	}
	// A config without MaxTracked still remembers failures.
	partial := NewThrottle(ThrottleConfig{Window: time.Minute, SlowAfter: 1, BlockAfter: 5, BlockFor: time.Minute, MaxDelay: time.Second})
	partial.Failure(ip, now)
	partial.Failure(ip, now)
	if d, _ := partial.Check(ip, now); d != time.Second {
		t.Fatalf("zero MaxTracked forgot failures: delay %v", d)
	}
	// Old failures are forgotten.
	th.Failure(ip, now.Add(20*time.Minute))
	if d, _ := th.Check(ip, now.Add(40*time.Minute)); d != 0 {
		t.Fatal("failures outside the window must expire")
	}
}

func FuzzPlain(f *testing.F) {
	f.Add([]byte("\x00user\x00pass"), []byte{})
	f.Add([]byte("a\x00b\x00c"), []byte("x"))
	f.Fuzz(func(t *testing.T, first, second []byte) {
		calls := 0
		s := NewPlainServer(func(u, p string) error {
			calls++
			if u == "" || strings.ContainsRune(u, 0) || strings.ContainsRune(p, 0) {
				t.Fatalf("check got malformed input %q %q", u, p)
			}
			return nil
		})
		for _, r := range [][]byte{first, second, first} {
			if _, done, _ := s.Next(r); done {
				break
			}
		}
		if calls > 1 {
			t.Fatal("check called twice")
		}
	})
}

func FuzzLogin(f *testing.F) {
	f.Add([]byte("user"), []byte("pass"), []byte{})
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		calls := 0
		s := NewLoginServer(func(u, p string) error {
			calls++
			if u == "" || bytes.IndexByte([]byte(u+p), 0) >= 0 {
				t.Fatalf("check got malformed input %q %q", u, p)
			}
			return nil
		})
		for _, r := range [][]byte{a, b, c, a} {
			if _, done, _ := s.Next(r); done {
				break
			}
		}
		if calls > 1 {
			t.Fatal("check called twice")
		}
	})
}

func FuzzVerifyPassword(f *testing.F) {
	good, _ := HashPasswordWithParams("x", cheap)
	f.Add(good, "x")
	f.Add("$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA", "")
	f.Fuzz(func(t *testing.T, encoded, password string) {
		VerifyPassword(encoded, password)
	})
}

func BenchmarkVerifyPassword(b *testing.B) {
	h, _ := HashPassword("benchmark")
	for b.Loop() {
		VerifyPassword(h, "benchmark")
	}
}

func BenchmarkLoginCacheHit(b *testing.B) {
	c := NewLoginCache(time.Hour, 1000)
	now := time.Now()
	c.Store("sean@contoso.com", "secret", "h", now)
	for b.Loop() {
		c.Lookup("sean@contoso.com", "secret", "h", now)
	}
}
