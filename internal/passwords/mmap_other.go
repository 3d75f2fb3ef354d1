//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package passwords

import (
	"errors"
	"os"
)

// mmapFile is unavailable here; the index falls back to ReadAt.
func mmapFile(*os.File, int64) ([]byte, error) { return nil, errors.New("mmap not supported") }

func munmap([]byte) error { return nil }
