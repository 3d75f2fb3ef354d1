//go:build unix

package file

import (
	"context"
	"os"
	"syscall"
	"testing"
)

// TestPermissions: the file is 0644 whatever the umask, so that other
// users' programs (a web server) can read it.
func TestPermissions(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	b := newBackend(t, Config{})
	if err := b.Replace(context.Background(), elems(t, "1.1.1.1")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(b.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o644 {
		t.Errorf("mode %v, want -rw-r--r--", fi.Mode())
	}
}
