//go:build unix

package zcert

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
)

// The modes must not depend on the umask: a permissive one must not expose
// the secret, and a strict one must not hide the public certificate or lock
// the owner out of the directory. Not parallel: the umask is per process.
func TestModesIgnoreUmask(t *testing.T) {
	for _, mask := range []int{0, 0o022, 0o077, 0o277} {
		t.Run(fmt.Sprintf("umask %03o", mask), func(t *testing.T) {
			old := syscall.Umask(mask)
			defer syscall.Umask(old)

			dir := filepath.Join(t.TempDir(), "new")
			if _, _, err := LoadOrCreate(dir, "k"); err != nil {
				t.Fatal(err)
			}
			assertMode(t, dir, 0o700)
			assertMode(t, filepath.Join(dir, "k.key_secret"), 0o600)
			assertMode(t, filepath.Join(dir, "k.key"), 0o644)

			c := exampleCert(t)
			if err := c.SaveSecret(filepath.Join(dir, "s")); err != nil {
				t.Fatal(err)
			}
			if err := c.SavePublic(filepath.Join(dir, "p")); err != nil {
				t.Fatal(err)
			}
			assertMode(t, filepath.Join(dir, "s"), 0o600)
			assertMode(t, filepath.Join(dir, "p"), 0o644)
		})
	}
}

// Load must stop reading an endless file rather than allocate without bound.
func TestLoadDevZero(t *testing.T) {
	_, err := Load("/dev/zero")
	var pe *ParseError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &pe) || pe.Path != "/dev/zero" {
		t.Fatalf("Load(/dev/zero): %v, want ErrTooLarge naming the file", err)
	}
}
