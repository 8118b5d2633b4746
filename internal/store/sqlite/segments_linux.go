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
