package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"postern.dev/postern/internal/store/sqlite"
)

// The data directory belongs to one process at a time. `postern serve`
// holds an exclusive flock(2) on DATA/postern.lock for its whole life; a
// cmdlet run while no server answers on the admin socket takes the same
// lock before it opens the database. So a second server fails before it
// opens any listener (and never touches the first one's admin socket), and
// no cmdlet writes to a database behind a running server's back. flock
// locks belong to the open file: the kernel drops them when the process
// dies, so a killed server leaves no stale lock behind.

// LockName is the lock file in the data directory.
const LockName = "postern.lock"

// ErrDataDirInUse means another process holds the data directory's lock.
var ErrDataDirInUse = errors.New("the data directory is in use by another postern process")

// dirLock is a held data directory lock; Unlock releases it.
type dirLock struct{ f *os.File }

// lockDataDir takes the data directory's lock without waiting;
// ErrDataDirInUse when another process holds it.
func lockDataDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s)", ErrDataDirInUse, dir)
		}
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	// The holder's process ID, for an admin wondering who holds it.
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &dirLock{f}, nil
}

// Unlock releases the lock.
func (l *dirLock) Unlock() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}

// ErrNoDataDir is a --data directory that does not exist, or holds no
// Postern data: only `postern serve` creates one.
var ErrNoDataDir = errors.New("no data directory")

// prepareDataDir checks the data directory. Only serve (create) makes a
// missing one, and reports that it did; a cmdlet given a missing or
// mistyped directory fails with a clear error rather than starting a
// silent empty database there. An existing empty directory is a new one
// (tests and installers create it first); a non-empty directory without
// a database is a mistake.
func prepareDataDir(dir string, create bool) (created bool, err error) {
	return prepareDataDirFor(dir, create, true)
}

// prepareDataDirFor is prepareDataDir for a node whose database may be
// elsewhere: with holdsDB false (the store is PostgreSQL) a directory
// without a SQLite database is a node's, not a mistake.
func prepareDataDirFor(dir string, create, holdsDB bool) (created bool, err error) {
	if dir == "" {
		return false, fmt.Errorf("%w: give one with --data DIR", ErrNoDataDir)
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist) && create:
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, err
		}
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, fmt.Errorf("%w: %s does not exist; `postern serve --data %s` creates one (check the --data path)", ErrNoDataDir, dir, dir)
	case err != nil:
		return false, err
	case !fi.IsDir():
		return false, fmt.Errorf("%w: %s is not a directory", ErrNoDataDir, dir)
	}
	if create || !holdsDB {
		return false, nil
	}
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err == nil {
		return false, nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	// The lock file alone is what a cmdlet refused by a busy lock, or a
	// server stopped before its first start finished, leaves.
	names, err := d.Readdirnames(2)
	names = slices.DeleteFunc(names, func(n string) bool { return n == LockName })
	if len(names) > 0 {
		return false, fmt.Errorf("%w: %s holds no Postern database (%s); check the --data path", ErrNoDataDir, dir, sqlite.FileName)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return false, nil
}

// listenPrivateUnix listens on a Unix socket at path that is never
// reachable by anyone but the owner, not even for an instant: the socket
// is bound inside a fresh 0700 directory, made 0600 there, and only then
// renamed into place (rename(2) is atomic). Binding at path and chmodding
// afterwards would leave it world-connectable between the two calls (its
// mode comes from the umask), and a process-wide umask change would race
// with other goroutines creating files. It returns the listener and the
// file it created, so that Close removes that socket and no other.
func listenPrivateUnix(path string) (*net.UnixListener, os.FileInfo, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".admin-sock-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o700); err != nil {
		return nil, nil, err
	}
	bound := filepath.Join(tmp, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: bound, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	// The path it was bound at goes away with the rename; Close must not
	// unlink whatever is at either path later.
	l.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, os.FileInfo, error) {
		l.Close()
		return nil, nil, err
	}
	if err := os.Chmod(bound, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(bound, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return l, fi, nil
}

// removeIfSame removes path only if it is still the file fi describes.
func removeIfSame(path string, fi os.FileInfo) {
	if fi == nil {
		return
	}
	if cur, err := os.Lstat(path); err == nil && os.SameFile(cur, fi) {
		os.Remove(path)
	}
}

// NodeIDName is the file, in the data directory, naming this node among
// the nodes that share a PostgreSQL store.
const NodeIDName = "node-id"

// queueNode is the name this node's delivery workers lease outbound items
// under. On SQLite it is the hostname, as before. On a shared PostgreSQL
// store it must tell this node from every other, or a node starting
// (which frees the leases left under its name by its own crash) would free
// the live leases of a peer greeting with the same hostname, and both
// would deliver the same items: so the hostname is followed by an ID made
// once, at random, and kept in the data directory.
func queueNode(dataDir, hostname string, shared bool) (string, error) {
	if !shared {
		return hostname, nil
	}
	path := filepath.Join(dataDir, NodeIDName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var id [8]byte
		rand.Read(id[:])
		b = []byte(hex.EncodeToString(id[:]))
		if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
			return "", fmt.Errorf("node ID: %w", err)
		}
	} else if err != nil {
		return "", fmt.Errorf("node ID: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" || len(id) > 64 {
		return "", fmt.Errorf("node ID: %s holds no ID; remove it to make a new one", path)
	}
	return hostname + "/" + id, nil
}
