package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postern.dev/postern/internal/store/sqlite"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"postern.db", true},
		{"bodies/0123abcd", true},
		{"tls/cert.pem", true},
		{"external/secret.key", true},
		{"", false},
		{ManifestName, false},
		{"/etc/passwd", false},
		{"../x", false},
		{"bodies/../../x", false},
		{"./postern.db", false},
		{"a//b", false},
		{"a\\b", false},
		{"a\x00b", false},
		{"..", false},
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// newData makes a data directory with a real (empty) database, a secret
// key and a body file that the database does not name.
func newData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := sqlite.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.WriteFile(filepath.Join(dir, "secret.key"), []byte("key"), 0o600)
	os.MkdirAll(filepath.Join(dir, "tls"), 0o700)
	os.WriteFile(filepath.Join(dir, "tls", "cert.pem"), []byte("cert"), 0o600)
	os.WriteFile(filepath.Join(dir, sqlite.BodiesDir, "orphan"), []byte("orphan"), 0o600)
	os.WriteFile(filepath.Join(dir, "postern.lock"), []byte("1\n"), 0o600)
	return dir
}

func TestRoundTrip(t *testing.T) {
	dir := newData(t)
	ext := filepath.Join(t.TempDir(), "outside.key")
	os.WriteFile(ext, []byte("outside"), 0o600)
	var buf bytes.Buffer
	m, err := Create(context.Background(), Options{Data: dir, Extra: []string{ext, filepath.Join(dir, "secret.key"), ""}}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range m.Files {
		names[f.Name] = true
	}
	for _, want := range []string{"postern.db", "secret.key", "tls/cert.pem", "external/outside.key"} {
		if !names[want] {
			t.Errorf("backup lacks %s: %v", want, names)
		}
	}
	for _, not := range []string{"bodies/orphan", "postern.lock", "external/secret.key"} {
		if names[not] {
			t.Errorf("backup holds %s", not)
		}
	}
	dst := filepath.Join(t.TempDir(), "new")
	if _, err := Restore(bytes.NewReader(buf.Bytes()), dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "secret.key")); string(b) != "key" {
		t.Errorf("secret.key restored as %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "external", "outside.key")); string(b) != "outside" {
		t.Errorf("external file restored as %q", b)
	}
	s, err := sqlite.Open(dst)
	if err != nil {
		t.Fatalf("restored database: %v", err)
	}
	s.Close()
	if _, err := Restore(bytes.NewReader(buf.Bytes()), dst); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("second restore: %v, want ErrNotEmpty", err)
	}
}

// archive builds a backup file by hand.
func archive(t testing.TB, m Manifest, members map[string]string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	mj, _ := json.Marshal(m)
	tw.WriteHeader(&tar.Header{Name: ManifestName, Size: int64(len(mj)), Mode: 0o600, Typeflag: tar.TypeReg})
	tw.Write(mj)
	for name, body := range members {
		tw.WriteHeader(&tar.Header{Name: name, Size: int64(len(body)), Mode: 0o600, Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestRestoreRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       Manifest
		members map[string]string
		want    string
	}{
		{"escape", Manifest{Format: 1, Files: []File{{"postern.db", 1}, {"../evil", 1}}}, map[string]string{"postern.db": "x", "../evil": "x"}, "invalid member"},
		{"unlisted", Manifest{Format: 1, Files: []File{{"postern.db", 1}}}, map[string]string{"postern.db": "x", "other": "y"}, "does not match"},
		{"size", Manifest{Format: 1, Files: []File{{"postern.db", 5}}}, map[string]string{"postern.db": "x"}, "does not match"},
		{"missing", Manifest{Format: 1, Files: []File{{"postern.db", 1}, {"secret.key", 1}}}, map[string]string{"postern.db": "x"}, "truncated"},
		{"no database", Manifest{Format: 1, Files: []File{{"secret.key", 1}}}, map[string]string{"secret.key": "x"}, "no postern.db"},
		{"format", Manifest{Format: 99}, nil, "format 99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "d")
			_, err := Restore(bytes.NewReader(archive(t, tc.m, tc.members)), dst)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore: %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dst, "postern.db")); err == nil {
				t.Error("a failed restore left a database behind")
			}
		})
	}
}

// FuzzRestore: whatever the file holds, Restore writes nothing outside
// the directory it is given.
func FuzzRestore(f *testing.F) {
	f.Add(archive(f, Manifest{Format: 1, Files: []File{{"postern.db", 1}, {"bodies/a", 2}}}, map[string]string{"postern.db": "x", "bodies/a": "yy"}))
	f.Add([]byte("not a backup"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		dst := filepath.Join(root, "d")
		Restore(bytes.NewReader(data), dst)
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if e.Name() != "d" {
				t.Fatalf("wrote %s outside the data directory", e.Name())
			}
		}
	})
}
