//go:build !linux

package sqlite

import "syscall"

func fdatasync(fd int) error { return syscall.Fsync(fd) }

// punchHole does nothing where hole punching is Linux's own: the space
// comes back when the whole segment is removed.
func punchHole(path string, off, size int64) error { return nil }
