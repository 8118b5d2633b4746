package e2e

// Issue 17, "50 mailboxes signing in for the first time at once": a print
// server (one address) opens a connection for each of its users at once;
// none of them has a cached login, so each costs an argon2id verification.
// Every one must be served (235, then its message accepted), none refused
// with 454, and the server must give the verifications' memory back.

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// signInBurstSize is how many mailboxes TestFirstSignInBurst signs in at
// once: 20 by default (make test: outcomes only), POSTERN_SIGNIN_BURST=50
// for the figure, which also samples the server's RSS for 40 s
// after the burst (BENCHMARKS.md, "First sign-in burst").
func signInBurstSize() (n int, measure bool) {
	if n, err := strconv.Atoi(os.Getenv("POSTERN_SIGNIN_BURST")); err == nil && n > 0 {
		return n, true
	}
	return 20, false
}

// TestFirstSignInBurst: n mailboxes sign in for the first time at once
// from one address (a print server with n users), each on a new
// implicit-TLS connection, and each sends one message. Every sign-in
// succeeds and every message is accepted: distinct accounts with their
// right passwords wait for their verification instead of hearing
// "454 4.7.0" (the AUTH flood test keeps guessing bounded). Afterwards the
// server gives the verifications' memory back: its RSS falls under twice
// its idle size (a generous deadline of a minute; before, the dead argon2id
// blocks stayed resident until the collector's forced run two minutes
// later).
func TestFirstSignInBurst(t *testing.T) {
	n, measure := signInBurstSize()
	in := newInstance(t)
	var script strings.Builder
	script.WriteString("Set-TransportConfig -SmtpClientAuthenticationDisabled $false\n")
	for i := range n {
		fmt.Fprintf(&script, "New-Mailbox -Name user%d -PrimarySmtpAddress user%d@contoso.com -Password Burst-Pass-%d\n", i, i, i)
	}
	in.shell(script.String())
	in.start()
	addr := in.addrs["submissions"]
	cfg := in.tlsConfig()
	const source = "127.0.3.1"

	// The idle baseline: started, listeners up, nothing signed in yet.
	baseline := in.procKiB("VmRSS")

	var (
		mu       sync.Mutex
		peak     = baseline
		samples  []string // "t_ms:KiB", every 100 ms
		stop     = make(chan struct{})
		sampling sync.WaitGroup
	)
	start := time.Now()
	sample := func() {
		kib, err := in.procStatus("VmRSS")
		if err == nil {
			mu.Lock()
			peak = max(peak, kib)
			samples = append(samples, fmt.Sprintf("%d:%d", time.Since(start).Milliseconds(), kib))
			mu.Unlock()
		}
	}
	sampling.Go(func() {
		for {
			sample()
			select {
			case <-stop:
				sample() // the last one, as the test ends
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})

	type outcome struct {
		user     int
		toAuth   time.Duration // from the burst's start to the 235
		toAccept time.Duration // to the message's 250
		failure  string
	}
	outcomes := make([]outcome, n)
	begin := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-begin
			o := outcome{user: i}
			defer func() { outcomes[i] = o }()
			t0 := time.Now()
			c, greet, err := dialAuth(source, addr, cfg.Clone())
			if c == nil {
				o.failure = fmt.Sprintf("connect: %q %v", greet, err)
				return
			}
			defer c.close()
			user := fmt.Sprintf("user%d@contoso.com", i)
			r, err := c.auth(user, fmt.Sprintf("Burst-Pass-%d", i))
			if err != nil || !strings.HasPrefix(r, "235") {
				o.failure = fmt.Sprintf("AUTH: %q %v", r, err)
				return
			}
			o.toAuth = time.Since(t0)
			if f := sendOn(c, user, user); f != "" {
				o.failure = f
				return
			}
			o.toAccept = time.Since(t0)
		})
	}
	close(begin)
	wg.Wait()
	burst := time.Since(start)

	var auth []time.Duration
	for _, o := range outcomes {
		if o.failure != "" {
			t.Errorf("user%d: %s", o.user, o.failure)
			continue
		}
		auth = append(auth, o.toAuth)
	}
	slices.Sort(auth)
	if len(auth) > 0 {
		t.Logf("%d first sign-ins at once from %s: time to 235 min %v, median %v, max %v; burst done in %v",
			n, source, auth[0].Round(time.Millisecond), auth[len(auth)/2].Round(time.Millisecond),
			auth[len(auth)-1].Round(time.Millisecond), burst.Round(time.Millisecond))
		var each []string
		for _, o := range outcomes {
			each = append(each, fmt.Sprintf("%d:%d/%d", o.user, o.toAuth.Milliseconds(), o.toAccept.Milliseconds()))
		}
		t.Logf("per mailbox, ms to 235 / to 250 after DATA: %s", strings.Join(each, " "))
	}

	if measure {
		// The bar: RSS back under twice the idle baseline within
		// 30 s of the burst. Recorded in BENCHMARKS.md, not asserted: the
		// machine's load decides timings.
		time.Sleep(40 * time.Second)
	}
	if !waitUntil(time.Minute, func() bool { kib, err := in.procStatus("VmRSS"); return err == nil && kib < 2*baseline }) {
		kib, _ := in.procStatus("VmRSS")
		t.Errorf("RSS %d MiB a minute after the burst, idle %d MiB: the verifications' memory was not given back", kib>>10, baseline>>10)
	}
	close(stop)
	sampling.Wait()
	mu.Lock()
	defer mu.Unlock()
	back := "never"
	doneMs := burst.Milliseconds()
	for _, s := range samples {
		ms, kib, _ := strings.Cut(s, ":")
		m, _ := strconv.ParseInt(ms, 10, 64)
		k, _ := strconv.ParseInt(kib, 10, 64)
		if m >= doneMs && k < 2*baseline {
			back = fmt.Sprintf("%.1f s after the burst", float64(m-doneMs)/1000)
			break
		}
	}
	last := samples[len(samples)-1]
	t.Logf("RSS: idle %d MiB, peak %d MiB, last %s KiB (t_ms:KiB), under 2x idle: %s", baseline>>10, peak>>10, last, back)
	if measure {
		t.Logf("RSS samples (ms since the burst began:KiB): %s", strings.Join(samples, " "))
	}
	if hwm, err := in.procStatus("VmHWM"); err == nil {
		t.Logf("VmHWM %d MiB", hwm>>10)
	}
}

// sendOn sends one message on a signed-in connection; "" when accepted.
func sendOn(c *rawConn, from, to string) string {
	for _, cmd := range []string{"MAIL FROM:<" + from + ">", "RCPT TO:<" + to + ">"} {
		if r, err := c.do(cmd); err != nil || !strings.HasPrefix(r, "250") {
			return fmt.Sprintf("%s: %q %v", cmd, r, err)
		}
	}
	if r, err := c.do("DATA"); err != nil || !strings.HasPrefix(r, "354") {
		return fmt.Sprintf("DATA: %q %v", r, err)
	}
	w := c.text.DotWriter()
	fmt.Fprint(w, message(from, to, "first sign-in"))
	w.Close()
	if r, err := c.read(); err != nil || !strings.HasPrefix(r, "250") {
		return fmt.Sprintf("end of DATA: %q %v", r, err)
	}
	return ""
}

// TestMemoryLimit: --memory-limit sets the runtime's soft memory limit,
// and the server says which limit is in force and where it comes from
// (GOMEMLIMIT wins when set).
func TestMemoryLimit(t *testing.T) {
	in := newInstance(t, "--memory-limit", "1GiB")
	in.start()
	want := `msg="soft memory limit" bytes=1073741824 from=memory_limit`
	if os.Getenv("GOMEMLIMIT") != "" {
		want = `msg="soft memory limit"`
	}
	if !strings.Contains(in.log.String(), want) {
		t.Fatalf("no %s in the log:\n%s", want, in.log.String())
	}
}
