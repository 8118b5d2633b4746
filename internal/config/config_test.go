package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "postern.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadAndFlagsOverride(t *testing.T) {
	c := Defaults()
	p := write(t, "hostname = \"mail.contoso.com\"\nsubmission = \"127.0.0.1:2587\"\nidle_timeout = \"90s\"\nmx = \"off\"\n")
	if err := c.Load(p); err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "mail.contoso.com" || c.Submission != "127.0.0.1:2587" || c.IdleTimeout.Duration != 90*time.Second || c.MX != Off {
		t.Fatalf("loaded %+v", c)
	}
	if c.Submissions != ":465" {
		t.Errorf("a key absent from the file keeps its default: %q", c.Submissions)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse([]string{"--submission", "127.0.0.1:3587"}); err != nil {
		t.Fatal(err)
	}
	if c.Submission != "127.0.0.1:3587" || c.Hostname != "mail.contoso.com" {
		t.Errorf("flags must override the file and keep the rest: %+v", c)
	}
}

func TestStrictDecoding(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{"hostname = \"x\"\nsubmision = \":587\"\n", "submision"},
		{"idle_timeout = \"soon\"\n", "1:"},
		{"hostname = \n", "1:"},
	} {
		c := Defaults()
		err := c.Load(write(t, tt.body))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v should mention %q", tt.body, err, tt.want)
		}
	}
	c := Defaults()
	if err := c.Load(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Error("a missing file is an error")
	}
}
