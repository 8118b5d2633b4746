package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestExample: uncommenting every line of the example gives a file that
// loads (every key known) into exactly the defaults, so the example shows
// every setting at its true default; each setting has its description.
func TestExample(t *testing.T) {
	ex := Example()
	uncommented := regexp.MustCompile(`(?m)^#([a-z_\[])`).ReplaceAllString(ex, "$1")
	path := filepath.Join(t.TempDir(), "postern.toml")
	if err := os.WriteFile(path, []byte(uncommented), 0o600); err != nil {
		t.Fatal(err)
	}
	got := Config{}
	if err := got.Load(path); err != nil {
		t.Fatalf("%v\n%s", err, uncommented)
	}
	want := Defaults()
	want.Hostname = "mail.example.com"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("example loads as\n%+v\nwant\n%+v", got, want)
	}
	for _, key := range []string{"data", "hostname", "submission", "mx", "idle_timeout", "[delivery]", "retry_min", "[auth]", "lockout_duration"} {
		if !strings.Contains(uncommented, "\n"+key) {
			t.Errorf("example lacks %s", key)
		}
	}
	if !strings.Contains(ex, "# Data is the data directory") || !strings.Contains(ex, "# 25 role: anonymous mail") {
		t.Errorf("descriptions missing:\n%s", ex)
	}
	for _, l := range strings.Split(ex, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			t.Errorf("uncommented line %q", l)
		}
	}
}
