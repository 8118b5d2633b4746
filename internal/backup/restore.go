package backup

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"postern.dev/postern/internal/store/sqlite"
)

// ErrNotEmpty refuses a restore over a directory that already holds a
// database: a restore never overwrites a live store.
var ErrNotEmpty = errors.New("the data directory already holds a Postern database")

// Restore unpacks a backup read from r into data, which must be missing or
// hold no database. Every member must be listed in the manifest, with its
// size; member names are checked so that nothing is written outside data.
// The restored files are fsync'ed before Restore returns.
func Restore(r io.Reader, data string) (*Manifest, error) {
	if _, err := os.Stat(filepath.Join(data, sqlite.FileName)); err == nil {
		return nil, fmt.Errorf("%w (%s); restore into a new directory", ErrNotEmpty, data)
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a Postern backup: %w", err)
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil || h.Name != ManifestName {
		return nil, fmt.Errorf("not a Postern backup: no %s first", ManifestName)
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("backup format %d; this version reads %d", m.Format, Format)
	}
	want := map[string]int64{}
	for _, f := range m.Files {
		if !ValidName(f.Name) {
			return nil, fmt.Errorf("invalid member name %q in the manifest", f.Name)
		}
		want[f.Name] = f.Size
	}
	if _, ok := want[sqlite.FileName]; !ok {
		return nil, fmt.Errorf("the backup holds no %s", sqlite.FileName)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	// The database is written last, under a temporary name: a directory
	// whose restore failed half-way holds no database, so a second
	// restore (or serve) does not take it for a complete one.
	dbTmp := filepath.Join(data, "."+sqlite.FileName+".restore")
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the backup: %w", err)
		}
		size, ok := want[h.Name]
		if !ok || seen[h.Name] || h.Typeflag != tar.TypeReg || h.Size != size {
			return nil, fmt.Errorf("member %q does not match the manifest", h.Name)
		}
		seen[h.Name] = true
		dst := filepath.Join(data, filepath.FromSlash(h.Name))
		if h.Name == sqlite.FileName {
			dst = dbTmp
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return nil, err
		}
		if err := writeFile(dst, tr, size); err != nil {
			return nil, err
		}
	}
	if len(seen) != len(want) {
		return nil, fmt.Errorf("the backup is truncated: %d of %d files", len(seen), len(want))
	}
	if err := os.Rename(dbTmp, filepath.Join(data, sqlite.FileName)); err != nil {
		return nil, err
	}
	if d, err := os.Open(data); err == nil {
		d.Sync()
		d.Close()
	}
	return &m, nil
}

// ValidName reports whether a member name is a clean relative path that
// stays inside the directory it is unpacked into.
func ValidName(name string) bool {
	if name == "" || name == ManifestName || strings.Contains(name, "\\") || strings.ContainsRune(name, 0) || path.IsAbs(name) {
		return false
	}
	if path.Clean(name) != name || name == "." || name == ".." || strings.HasPrefix(name, "../") {
		return false
	}
	return fs.ValidPath(name)
}

func writeFile(dst string, r io.Reader, size int64) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
