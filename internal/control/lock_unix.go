//go:build unix

package control

import (
	"errors"
	"os"
	"syscall"
)

var errLocked = errors.New("locked")

// lockDir takes an exclusive lock on the open directory d, held until d
// is closed or the process ends.
func lockDir(d *os.File) error {
	err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}
