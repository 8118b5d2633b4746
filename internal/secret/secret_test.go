package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "secret.key")
	b, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi, err)
	}
	for _, plain := range []string{"", "p@ss", strings.Repeat("k", 4000)} {
		s, err := b.Seal(plain)
		if err != nil {
			t.Fatal(err)
		}
		if plain != "" && strings.Contains(s, plain) {
			t.Fatalf("sealed value shows the plaintext")
		}
		got, err := b.Open(s)
		if err != nil || got != plain {
			t.Fatalf("Open(Seal(%q)) = %q, %v", plain, got, err)
		}
	}
	a, _ := b.Seal("same")
	c, _ := b.Seal("same")
	if a == c {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}

	// The same file opens what the first Box sealed; another key does not.
	again, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.Open(a); err != nil || got != "same" {
		t.Fatalf("reloaded key: %q %v", got, err)
	}
	other, _ := LoadOrCreate(filepath.Join(t.TempDir(), "other.key"))
	if _, err := other.Open(a); err != ErrCorrupt {
		t.Fatalf("other key opened the value: %v", err)
	}
	for _, bad := range []string{"plain", "v1:", "v1:!!!", a[:len(a)-2]} {
		if _, err := b.Open(bad); err != ErrCorrupt {
			t.Errorf("Open(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestBadKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	os.WriteFile(path, []byte("short\n"), 0o600)
	if _, err := LoadOrCreate(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("bad key file: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	b, _ := New(make([]byte, KeySize))
	s, _ := b.Seal("x")
	f.Add(s)
	f.Add("v1:AAAA")
	f.Fuzz(func(t *testing.T, in string) {
		if out, err := b.Open(in); err == nil && in != "" && out == "" {
			t.Fatal("opened to nothing")
		}
	})
}

// TestDerive: the same key derives the same key for a label (every node
// holding the key file agrees), other labels and other keys others.
func TestDerive(t *testing.T) {
	key := make([]byte, KeySize)
	a, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(key)
	key[0] = 1
	other, _ := New(key)
	if a.Derive("smart lockout") != b.Derive("smart lockout") {
		t.Error("one key derived two keys for one label")
	}
	if a.Derive("smart lockout") == a.Derive("other") || a.Derive("smart lockout") == other.Derive("smart lockout") {
		t.Error("other labels or keys derived the same key")
	}
}
