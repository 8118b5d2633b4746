package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
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

// TestSegmentBodiesInBackup: bodies the server keeps in segment files come
// back whole from a backup, as rows of message_bodies (no segment file is
// in it); a body punched out after the snapshot is caught by its checksum.
func TestSegmentBodiesInBackup(t *testing.T) {
	ctx := context.Background()
	dir := newData(t)
	s, err := sqlite.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	org := &directory.Organization{Name: "contoso", GUID: "g"}
	if err := s.SaveOrganization(ctx, org); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	var bodies [][]byte
	for i := range 3 {
		body := []byte(fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", i, strings.Repeat("x", 5000+i)))
		sub := &store.Submission{OrgID: org.ID, MessageID: fmt.Sprintf("%d@test", i), ReceivedAt: time.Now(), Body: body,
			Recipients: 1, Remote: []store.RemoteDelivery{{Recipient: "r@fabrikam.example"}}}
		if err := s.Commit(ctx, sub); err != nil {
			t.Fatal(err)
		}
		ids, bodies = append(ids, sub.ID), append(bodies, body)
	}
	s.Close()

	var buf bytes.Buffer
	m, err := Create(ctx, Options{Data: dir}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		if strings.HasSuffix(f.Name, ".seg") {
			t.Errorf("the backup holds the segment %s", f.Name)
		}
	}
	dst := filepath.Join(t.TempDir(), "new")
	if _, err := Restore(bytes.NewReader(buf.Bytes()), dst); err != nil {
		t.Fatal(err)
	}
	r, err := sqlite.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, id := range ids {
		rc, err := r.MessageBody(ctx, id)
		if err != nil {
			t.Fatalf("message %d from the backup: %v", i, err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, bodies[i]) {
			t.Errorf("message %d from the backup differs", i)
		}
	}

	// A body punched out after a snapshot was taken: that snapshot is
	// not used.
	snap := filepath.Join(t.TempDir(), "snap.db")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("VACUUM INTO ?", snap); err != nil {
		t.Fatal(err)
	}
	var seq, off int64
	if err := db.QueryRow("SELECT body_seg, body_off FROM messages WHERE id = ?", ids[1]).Scan(&seq, &off); err != nil {
		t.Fatal(err)
	}
	seg, err := os.OpenFile(filepath.Join(dir, sqlite.BodiesDir, fmt.Sprintf("%010d.seg", seq)), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	seg.WriteAt(make([]byte, 100), off)
	seg.Close()
	if changed, err := inlineSegmentBodies(ctx, snap, filepath.Join(dir, sqlite.BodiesDir)); err != nil || changed != ids[1] {
		t.Errorf("inlining a snapshot whose body changed: %d, %v; want message %d", changed, err, ids[1])
	}
	// Changed in every snapshot: damage the server repairs at its start.
	buf.Reset()
	if _, err := Create(ctx, Options{Data: dir}, &buf); err == nil || !strings.Contains(err.Error(), "start the server once") {
		t.Errorf("backup of a store with a damaged body: %v", err)
	}
}
