//go:build !linux

package sqlite

import (
	"os"
	"syscall"
)

func fdatasync(fd int) error { return syscall.Fsync(fd) }

// punchHole does nothing where hole punching is Linux's own: the space
// comes back when the whole segment is removed.
func punchHole(path string, off, size int64) error { return nil }

// writeAtv writes bufs one after the other at off.
func writeAtv(f *os.File, bufs [][]byte, off int64) error {
	for _, b := range bufs {
		if _, err := f.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}
