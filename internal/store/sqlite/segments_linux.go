package sqlite

import (
	"os"

	"golang.org/x/sys/unix"
)

func fdatasync(fd int) error { return unix.Fdatasync(fd) }

// punchHole frees the blocks of a released body (fallocate(2)
// FALLOC_FL_PUNCH_HOLE; the file keeps its size, and the other bodies
// their offsets).
func punchHole(path string, off, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, size)
}

// writeAtv writes bufs one after the other at off, with as few pwritev(2)
// calls as the kernel allows.
func writeAtv(f *os.File, bufs [][]byte, off int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for len(bufs) > 0 {
		var n int
		var werr error
		if err := rc.Control(func(fd uintptr) {
			n, werr = unix.Pwritev(int(fd), bufs[:min(len(bufs), 1024)], off)
		}); err != nil {
			return err
		}
		if werr != nil {
			if werr == unix.EINTR {
				continue
			}
			return werr
		}
		off += int64(n)
		for n > 0 {
			if n < len(bufs[0]) {
				bufs[0] = bufs[0][n:]
				n = 0
			} else {
				n -= len(bufs[0])
				bufs = bufs[1:]
			}
		}
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
	}
	return nil
}
