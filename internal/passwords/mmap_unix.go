//go:build linux || darwin || freebsd || netbsd || openbsd

package passwords

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// mmapFile maps size bytes of f read-only. Lookups are random, so the
// kernel is told not to read ahead (a bucket is a few KiB).
func mmapFile(f *os.File, size int64) ([]byte, error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, errors.New("file too large to map")
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	_ = unix.Madvise(b, unix.MADV_RANDOM)
	return b, nil
}

func munmap(b []byte) error { return unix.Munmap(b) }
