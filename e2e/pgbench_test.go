package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"postern.dev/postern/internal/testpg"
)

// TestPGBenchThroughput measures authenticated submission throughput for
// BENCHMARKS.md: SQLite (one node) against PostgreSQL with one and three
// nodes, each node loaded by its own `postern bench` (16 connections over
// 16 mailboxes, 2 KiB messages, reused connections), run at once. It is a
// measurement, not a test: it runs only with POSTERN_BENCH=1.
func TestPGBenchThroughput(t *testing.T) {
	if os.Getenv("POSTERN_BENCH") == "" {
		t.Skip("a measurement: set POSTERN_BENCH=1 to run it")
	}
	secs := os.Getenv("POSTERN_BENCH_SECONDS")
	if secs == "" {
		secs = "10"
	}
	lift := []string{"--max-connections-per-ip", "0", "--connection-rate-per-ip", "0"}
	setup := func(data, url string) string {
		var script, users strings.Builder
		script.WriteString("Set-TransportConfig -SmtpClientAuthenticationDisabled $false\n")
		for i := 1; i <= 16; i++ {
			fmt.Fprintf(&script, "New-Mailbox -Name dev%d -PrimarySmtpAddress dev%d@contoso.com -Password Bench-Pass-1\n", i, i)
			fmt.Fprintf(&users, "dev%d@contoso.com:Bench-Pass-1\n", i)
		}
		scriptPath := filepath.Join(t.TempDir(), "setup.ps1") // not in data: a new data directory must be empty
		if err := os.WriteFile(scriptPath, []byte(script.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"--data", data}
		if url != "" {
			args = append(args, "--store", url)
		}
		// A cmdlet first: it creates a fresh SQLite data directory, which
		// shell wants to exist.
		if out, err := exec.Command(binary, append(args, "New-AcceptedDomain", "-Name", "contoso.com", "-DomainName", "contoso.com")...).CombinedOutput(); err != nil {
			t.Fatalf("setup: %v\n%s", err, out)
		}
		if out, err := exec.Command(binary, append(args, "shell", "-f", scriptPath)...).CombinedOutput(); err != nil {
			t.Fatalf("setup: %v\n%s", err, out)
		}
		path := filepath.Join(t.TempDir(), "users.txt")
		if err := os.WriteFile(path, []byte(users.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var report func(name string, nodes []*instance, outs []string)
	run := func(name string, nodes []*instance, users string) {
		// Warm-up, one node at a time: each node verifies each mailbox's
		// password once (argon2id; later sign-ins hit its login cache;
		// those refused for the per-address cap on verifications in
		// progress try again), so that the measured run shows submission, not
		// 48 argon2 verifications queuing on two cores.
		for _, in := range nodes {
			if out, err := exec.Command(binary, "bench", "-addr", in.addrs["submission"], "-cafile", in.caFile(), "-users-file", users,
				"-to", "dev1@contoso.com", "-d", "6s", "-c", "16", "-size", "2048").CombinedOutput(); err != nil {
				t.Fatalf("warm-up: %v\n%s", err, out)
			}
		}
		// Two recipients: dev1@contoso.com (every message filed into one
		// Inbox, whose row each commit locks: the worst case for several
		// nodes) and an outside address (queued for delivery; the resolver
		// knows no MX, so it stays queued).
		for _, to := range []string{"dev1@contoso.com", "rcpt@fabrikam.example"} {
			outs := make([]string, len(nodes))
			var wg sync.WaitGroup
			for i, in := range nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out, err := exec.Command(binary, "bench", "-addr", in.addrs["submission"], "-cafile", in.caFile(), "-users-file", users,
						"-to", to, "-d", secs+"s", "-c", "16", "-size", "2048").CombinedOutput()
					if err != nil {
						t.Errorf("bench on node %d: %v\n%s", i, err, out)
					}
					outs[i] = string(out)
				}()
			}
			wg.Wait()
			report(name+", to "+to, nodes, outs)
		}
	}
	report = func(name string, nodes []*instance, outs []string) {
		for i, out := range outs {
			t.Logf("%s, node %d:\n%s", name, i+1, out)
			var warnings []string
			for _, line := range strings.Split(nodes[i].log.String(), "\n") {
				if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
					warnings = append(warnings, line)
				}
			}
			if len(warnings) > 0 {
				t.Logf("node %d: %d warnings and errors, the first: %s", i+1, len(warnings), strings.Join(warnings[:min(3, len(warnings))], "\n"))
			}
		}
	}

	if os.Getenv("POSTERN_BENCH_NODES") == "" {
		data := t.TempDir()
		users := setup(data, "")
		single := &instance{t: t, data: data, extra: lift}
		single.start()
		run("SQLite", []*instance{single}, users)
		single.stop()
	}

	for _, n := range benchNodes() {
		url := testpg.New(t)
		first := t.TempDir()
		users := setup(first, url)
		var nodes []*instance
		for i := range n {
			d := first
			if i > 0 {
				d = t.TempDir()
			}
			in := &instance{t: t, data: d, extra: append([]string{"--store", url, "--secret-key-file", filepath.Join(first, "secret.key")}, lift...)}
			in.start()
			nodes = append(nodes, in)
		}
		run(fmt.Sprintf("PostgreSQL, %d node(s)", n), nodes, users)
		for _, in := range nodes {
			in.stop()
		}
	}
}

// benchNodes is the PostgreSQL node counts to measure
// (POSTERN_BENCH_NODES=3 for one of them).
func benchNodes() []int {
	if os.Getenv("POSTERN_BENCH_NODES") == "3" {
		return []int{3}
	}
	return []int{1, 3}
}
