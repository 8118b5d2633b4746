package config

import (
	"reflect"
	"testing"
	"time"
)

// TestEveryKeyClassified: every key of the file says how a reload applies
// it, so that no new key is silently ignored by a reload.
func TestEveryKeyClassified(t *testing.T) {
	keys := Keys()
	if len(keys) < 30 {
		t.Fatalf("only %d keys found: %v", len(keys), keys)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		seen[k] = true
		if _, ok := applies[k]; !ok {
			t.Errorf("key %q: decide in applies whether a reload applies it live or needs a restart", k)
		}
	}
	for k := range applies {
		if !seen[k] {
			t.Errorf("applies names %q, which is not a key", k)
		}
	}
}

func TestDiff(t *testing.T) {
	base := Defaults()
	for _, tc := range []struct {
		name   string
		change func(c *Config)
		want   []Change
	}{
		{"nothing", func(c *Config) {}, nil},
		{"listener", func(c *Config) { c.Submission = "127.0.0.1:2587" }, []Change{{"submission", ":587", "127.0.0.1:2587", Reopen}}},
		{"listener off", func(c *Config) { c.MX = Off }, []Change{{"mx", ":25", "off", Reopen}}},
		{"data", func(c *Config) { c.Data = "/srv/postern" }, []Change{{"data", "/var/lib/postern", "/srv/postern", Restart}}},
		{"hostname", func(c *Config) { c.Hostname = "mail.fabrikam.com" }, []Change{{"hostname", base.Hostname, "mail.fabrikam.com", Restart}}},
		{"caps and log", func(c *Config) { c.MaxConnectionsPerIP = 2; c.LogLevel = "debug" }, []Change{
			{"max_connections_per_ip", "50", "2", Live}, {"log_level", "info", "debug", Live}}},
		{"table key", func(c *Config) { c.Delivery.RetryMin = Duration{30 * time.Second} }, []Change{{"delivery.retry_min", "1m0s", "30s", Live}}},
		{"auth", func(c *Config) { c.Auth.LockoutThreshold = 5 }, []Change{{"auth.lockout_threshold", "10", "5", Live}}},
		{"secret hidden", func(c *Config) { c.MetricsToken = "s3cret" }, []Change{{"metrics_token", "(hidden)", "(hidden)", Live}}},
		{"empty shown", func(c *Config) { c.Resolver = "127.0.0.1:53" }, []Change{{"resolver", `""`, "127.0.0.1:53", Live}}},
		{"insecure loopback", func(c *Config) { c.AllowInsecureHTTPLoopback = true }, []Change{{"allow_insecure_http_loopback", "false", "true", Restart}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := base
			tc.change(&next)
			got := Diff(base, next)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Diff = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestApplyOf(t *testing.T) {
	for key, want := range map[string]Apply{
		"data": Restart, "secret_key_file": Restart, "public_url": Restart,
		"admin": Reopen, "submissions": Reopen,
		"idle_timeout": Live, "delivery.workers": Live, "tls_cert": Live, "metrics_token": Live, "trace_retention": Live,
		"no_such_key": Restart,
	} {
		if got := ApplyOf(key); got != want {
			t.Errorf("ApplyOf(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestKeep: every key can be put back to its running value, and only it.
func TestKeep(t *testing.T) {
	cur := Defaults()
	next := cur
	next.Data, next.Delivery.RetryMin, next.Auth.LockoutThreshold, next.MX = "/srv", Duration{time.Second}, 3, Off
	next.Keep("data", cur)
	next.Keep("delivery.retry_min", cur)
	next.Keep("no.such_key", cur)
	next.Keep("delivery.retry_min.x", cur)
	got := Diff(cur, next)
	want := []Change{{"mx", ":25", "off", Reopen}, {"auth.lockout_threshold", "10", "3", Live}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after Keep: %+v, want %+v", got, want)
	}
	for _, k := range Keys() {
		n := next
		n.Keep(k, cur)
		for _, c := range Diff(cur, n) {
			if c.Key == k {
				t.Errorf("Keep(%q) left it changed", k)
			}
		}
	}
}
