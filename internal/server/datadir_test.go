package server

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// TestListenPrivateUnix: the admin socket appears at its path already
// 0600, and no socket in the data directory is ever wider, even while
// it is being created (a watcher looks the whole time); Close-side
// removal takes only the socket this process created.
func TestListenPrivateUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.sock")
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Value
	var looks atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				fi, err := os.Lstat(filepath.Join(dir, e.Name()))
				if err != nil {
					continue
				}
				switch {
				case fi.Mode()&os.ModeSocket != 0 && fi.Mode().Perm() != 0o600:
					bad.Store(e.Name() + " " + fi.Mode().String())
				case fi.IsDir() && fi.Mode().Perm()&0o077 != 0:
					bad.Store(e.Name() + " " + fi.Mode().String())
				}
			}
			looks.Add(1)
		}
	}()
	for i := 0; i < 20; i++ {
		l, fi, err := listenPrivateUnix(path)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Lstat(path)
		if err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
			t.Fatalf("socket %v %v", st.Mode(), err)
		}
		// It answers at its final path.
		go func() {
			if c, err := l.Accept(); err == nil {
				c.Close()
			}
		}()
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		l.Close()
		removeIfSame(path, fi)
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the socket was not removed: %v", err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Errorf("seen with wider permissions: %v", v)
	}
	if looks.Load() == 0 {
		t.Error("the watcher never looked")
	}
	// Only the temporary directories' leftovers would show here.
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// TestRemoveIfSame: a socket another server put at the path is left.
func TestRemoveIfSame(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.sock")
	l1, fi1, err := listenPrivateUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	l2, fi2, err := listenPrivateUnix(path) // replaces it
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	removeIfSame(path, fi1)
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("removed a socket it did not create: %v", err)
	}
	removeIfSame(path, fi2)
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("kept its own socket: %v", err)
	}
}

func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	l1, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(dir); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second lock: %v", err)
	}
	if _, _, err := OpenAdmin(t.Context(), dir); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("OpenAdmin under a held lock: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "postern.db")); err == nil {
		t.Error("OpenAdmin created a database under a held lock")
	}
	l1.Unlock()
	l2, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	l2.Unlock()
}

func TestPrepareDataDir(t *testing.T) {
	base := t.TempDir()
	nonEmpty := filepath.Join(base, "other")
	os.Mkdir(nonEmpty, 0o700)
	os.WriteFile(filepath.Join(nonEmpty, "notes.txt"), []byte("x"), 0o600)
	withDB := filepath.Join(base, "data")
	os.Mkdir(withDB, 0o700)
	os.WriteFile(filepath.Join(withDB, "postern.db"), nil, 0o600)
	empty := filepath.Join(base, "empty")
	os.Mkdir(empty, 0o700)
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	for _, tt := range []struct {
		name        string
		dir         string
		create      bool
		ok, created bool
	}{
		{"missing, cmdlet", filepath.Join(base, "typo"), false, false, false},
		{"missing, serve", filepath.Join(base, "new"), true, true, true},
		{"empty, cmdlet", empty, false, true, false},
		{"database, cmdlet", withDB, false, true, false},
		{"other files, cmdlet", nonEmpty, false, false, false},
		{"a file", file, false, false, false},
		{"a file, serve", file, true, false, false},
		{"no path", "", false, false, false},
	} {
		created, err := prepareDataDir(tt.dir, tt.create)
		if (err == nil) != tt.ok || created != tt.created {
			t.Errorf("%s: created %v, %v", tt.name, created, err)
		}
		if err != nil && !errors.Is(err, ErrNoDataDir) {
			t.Errorf("%s: %v is not ErrNoDataDir", tt.name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "typo")); err == nil {
		t.Error("a cmdlet created the mistyped directory")
	}
}
