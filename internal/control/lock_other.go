//go:build !unix

package control

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// lockDir does nothing where flock(2) is missing: the check for a live
// socket is all that keeps a second server out.
func lockDir(*os.File) error { return nil }
