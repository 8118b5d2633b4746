// Package backup takes a consistent online backup of a Postern data
// directory into one tar.gz file, and restores one into a new directory.
//
// Consistency while a server runs. The database is copied with SQLite's
// `VACUUM INTO` (sqlite.org/lang_vacuum.html#vacuuminto) on a read-only
// connection: it reads one snapshot under SQLite's own locking (in WAL
// mode a reader never blocks the server's writer), and this process never
// writes to the database or takes the data directory's flock, so it never
// writes behind a running server's back. Bodies in segment files (small
// messages, DATA/bodies/*.seg) are copied into the snapshot's
// message_bodies, each checked against the CRC its row keeps: one released
// (and punched out) after the snapshot was taken fails the check, and the
// snapshot is taken again. Large message bodies are files in
// DATA/bodies (README "Durability"): a file is made durable before the
// transaction that names it commits, and removed only after the
// transaction that forgets it commits, and files are never changed once
// written. So every file the snapshot names existed when the snapshot was
// taken; one that is missing when it is copied was released since, and a
// newer snapshot no longer names it: the snapshot is then taken again
// (bounded), keeping the files already copied.
package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite"

	"postern.dev/postern/internal/store/sqlite"
)

// ManifestName is the first member of a backup: what it holds.
const ManifestName = "MANIFEST.json"

// Format is the manifest's format version.
const Format = 1

// Manifest describes a backup.
type Manifest struct {
	Format  int       `json:"format"`
	Created time.Time `json:"created"`
	Version string    `json:"version"`
	// Files are the members after the manifest, relative to the data
	// directory ("postern.db", "bodies/…", "secret.key", "tls/…"), or
	// under "external/" for files configured outside it.
	Files []File `json:"files"`
	// External maps an "external/…" member to the path it was read from
	// (a secret_key_file or tls_cert outside the data directory).
	External map[string]string `json:"external,omitempty"`
}

// File is one member of a backup.
type File struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// Options say what to back up besides the data directory's own files.
type Options struct {
	Data string
	// Extra files configured outside the data directory (secret key,
	// TLS certificate and key); a path inside Data is taken with it.
	Extra   []string
	Version string
}

// skipped are the data directory's entries that are not state: the
// database (copied by snapshot, with its WAL), the lock, the admin socket,
// the spool of unacknowledged uploads and the bodies (copied by name).
func skipped(name string) bool {
	switch name {
	case sqlite.FileName, sqlite.FileName + "-wal", sqlite.FileName + "-shm", sqlite.FileName + "-journal",
		"postern.lock", "spool", sqlite.BodiesDir:
		return true
	}
	return strings.HasPrefix(name, ".")
}

// Create writes a backup of o.Data to w.
func Create(ctx context.Context, o Options, w io.Writer) (*Manifest, error) {
	if _, err := os.Stat(filepath.Join(o.Data, sqlite.FileName)); err != nil {
		return nil, fmt.Errorf("no Postern database in %s: %w", o.Data, err)
	}
	stage, err := os.MkdirTemp("", "postern-backup-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	snap := filepath.Join(stage, sqlite.FileName)
	bodies := filepath.Join(stage, sqlite.BodiesDir)
	if err := os.Mkdir(bodies, 0o700); err != nil {
		return nil, err
	}
	names, err := snapshot(ctx, o.Data, snap, bodies)
	if err != nil {
		return nil, err
	}

	m := &Manifest{Format: Format, Created: time.Now().UTC(), Version: o.Version, External: map[string]string{}}
	type member struct{ name, src string }
	members := []member{{sqlite.FileName, snap}}
	for _, n := range names {
		members = append(members, member{path.Join(sqlite.BodiesDir, n), filepath.Join(bodies, n)})
	}
	// The rest of the data directory: the secret key, the TLS material
	// (generated or ACME), DKIM keys, anything a later version keeps there.
	err = filepath.WalkDir(o.Data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(o.Data, p)
		if rel == "." {
			return nil
		}
		if !strings.Contains(rel, string(filepath.Separator)) && skipped(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			members = append(members, member{filepath.ToSlash(rel), p})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	absData, _ := filepath.Abs(o.Data)
	for _, p := range o.Extra {
		if p == "" {
			continue
		}
		abs, _ := filepath.Abs(p)
		if rel, err := filepath.Rel(absData, abs); err == nil && !strings.HasPrefix(rel, "..") {
			continue // taken with the data directory
		}
		name := path.Join("external", filepath.Base(p))
		if _, dup := m.External[name]; dup {
			return nil, fmt.Errorf("two configured files named %s", filepath.Base(p))
		}
		m.External[name] = abs
		members = append(members, member{name, p})
	}
	for _, mb := range members {
		fi, err := os.Stat(mb.src)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, File{Name: mb.name, Size: fi.Size()})
	}

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	mj, _ := json.MarshalIndent(m, "", "  ")
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o600, Size: int64(len(mj)), ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(mj); err != nil {
		return nil, err
	}
	for i, mb := range members {
		if err := addFile(tw, mb.name, mb.src, m.Files[i].Size); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return m, gz.Close()
}

// addFile writes src as member name; its size was taken for the manifest,
// and a file that changed since is an error rather than a torn copy.
func addFile(tw *tar.Writer, name, src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: time.Now().UTC(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	n, err := io.Copy(tw, io.LimitReader(f, size))
	if err == nil && n != size {
		err = fmt.Errorf("%s changed while it was backed up", src)
	}
	return err
}

// maxSnapshots bounds the retries when bodies are released during a copy.
const maxSnapshots = 10

// snapshot copies the database to dst with VACUUM INTO and the body files
// it names into bodies, and returns their names.
func snapshot(ctx context.Context, data, dst, bodies string) ([]string, error) {
	q := url.Values{}
	q.Add("mode", "ro")
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, sqlite.FileName)+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	have := map[string]bool{}
	var lastChanged int64
	for attempt := 0; attempt < maxSnapshots; attempt++ {
		os.Remove(dst)
		if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
			return nil, fmt.Errorf("copying the database: %w", err)
		}
		changed, err := inlineSegmentBodies(ctx, dst, filepath.Join(data, sqlite.BodiesDir))
		if err != nil {
			return nil, err
		}
		if changed != 0 {
			// Released after the snapshot: another no longer names it.
			// The same body twice is damage, not a release: the last
			// message a crash interrupted, which the server removes when
			// it starts.
			if changed == lastChanged {
				return nil, fmt.Errorf("message %d: its body in DATA/%s does not match its checksum; start the server once (it removes a message whose commit a crash interrupted), then back up again",
					changed, sqlite.BodiesDir)
			}
			lastChanged = changed
			continue
		}
		names, err := bodyNames(ctx, dst)
		if err != nil {
			return nil, err
		}
		missing := false
		for _, n := range names {
			if have[n] {
				continue
			}
			if err := copyBody(filepath.Join(data, sqlite.BodiesDir, n), filepath.Join(bodies, n)); errors.Is(err, fs.ErrNotExist) {
				missing = true // released after the snapshot: take another
				break
			} else if err != nil {
				return nil, err
			}
			have[n] = true
		}
		if !missing {
			// Files copied for an earlier snapshot that this one no
			// longer names are not part of the backup.
			keep := map[string]bool{}
			for _, n := range names {
				keep[n] = true
			}
			for n := range have {
				if !keep[n] {
					os.Remove(filepath.Join(bodies, n))
				}
			}
			return names, nil
		}
	}
	return nil, fmt.Errorf("message bodies kept changing during %d snapshots; try again", maxSnapshots)
}

// inlineSegmentBodies copies the bodies the snapshot at dbPath has in
// segment files (DATA/bodies/*.seg, which keep changing as bodies are
// released) into its message_bodies table, so that the backup holds each
// body once and no segment file. It returns the first message whose body
// no longer matches its checksum (released, and punched out, after the
// snapshot was taken), or 0.
func inlineSegmentBodies(ctx context.Context, dbPath, bodies string) (changed int64, err error) {
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	type place struct{ id, seq, off, size, crc int64 }
	var places []place
	rows, err := tx.QueryContext(ctx, "SELECT id, body_seg, body_off, size, body_crc FROM messages WHERE body_seg IS NOT NULL")
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var p place
		if err := rows.Scan(&p.id, &p.seq, &p.off, &p.size, &p.crc); err != nil {
			rows.Close()
			return 0, err
		}
		places = append(places, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, p := range places {
		body, err := sqlite.ReadSegmentBody(bodies, p.seq, p.off, p.size, uint32(p.crc))
		if errors.Is(err, sqlite.ErrBodyChanged) {
			return p.id, nil
		}
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO message_bodies (message, data) VALUES (?, ?)", p.id, body); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE messages SET body_seg = NULL, body_off = 0, body_crc = 0 WHERE body_seg IS NOT NULL"); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM body_segments"); err != nil {
		return 0, err
	}
	return 0, tx.Commit()
}

// bodyNames lists the body files a database names.
func bodyNames(ctx context.Context, dbPath string) ([]string, error) {
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT body_file FROM messages WHERE body_file IS NOT NULL ORDER BY body_file")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		if n != filepath.Base(n) || n == "." || n == ".." {
			return nil, fmt.Errorf("unexpected body file name %q", n)
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// copyBody copies (or hard-links, when on one file system: body files are
// never changed) a body file.
func copyBody(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	} else if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
