package zcert

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File suffixes used by pyzmq's create_certificates and czmq's zcertstore.
const (
	PublicSuffix = ".key"
	SecretSuffix = ".key_secret"
)

// Load reads and parses the certificate file at path (see Parse). It reads at
// most MaxSize+1 bytes whatever the file claims to be, so pointing it at a
// huge or endless file fails with ErrTooLarge instead of exhausting memory.
// Parse errors are *ParseError values carrying path; a missing file gives an
// error matching fs.ErrNotExist.
func Load(path string) (*Cert, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("zcert: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("zcert: %w", err)
	}
	if len(data) > MaxSize {
		return nil, &ParseError{Path: path, Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxSize)}
	}
	c, err := Parse(data)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.Path = path
		}
		return nil, err
	}
	return c, nil
}

// SavePublic writes c's public certificate (MarshalPublic) to path with mode
// 0644, replacing any existing file atomically: readers see the old file or
// the complete new one, never a partial write, even across a crash. c must
// pass Validate.
func (c *Cert) SavePublic(path string) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := writeFile(path, c.MarshalPublic(), 0o644, true); err != nil {
		return fmt.Errorf("zcert: %w", err)
	}
	return nil
}

// SaveSecret writes c's secret certificate (MarshalSecret) to path with mode
// 0600, replacing any existing file atomically as SavePublic does. The file
// has mode 0600 before the secret is written into it, whatever the umask, so
// the secret is never readable by other users. c must have a secret key
// (ErrNoSecretKey otherwise) and pass Validate.
func (c *Cert) SaveSecret(path string) error {
	if c.Secret == nil {
		return fmt.Errorf("zcert: %w", ErrNoSecretKey)
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := writeFile(path, c.MarshalSecret(), 0o600, true); err != nil {
		return fmt.Errorf("zcert: %w", err)
	}
	return nil
}

// CreatePair generates a new key pair and writes it as pyzmq's
// create_certificates does: dir/name.key (public, 0644) and
// dir/name.key_secret (secret, 0600), replacing existing files. The secret
// file is written first, so a crash never leaves a public key whose secret is
// lost. name must be a plain file name, without path separators. dir must
// exist.
func CreatePair(dir, name string) (*Cert, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	c, err := New()
	if err != nil {
		return nil, err
	}
	// One time for both banners, as pyzmq does.
	c.Generated = time.Now()
	if err := c.SaveSecret(filepath.Join(dir, name+SecretSuffix)); err != nil {
		return nil, err
	}
	if err := c.SavePublic(filepath.Join(dir, name+PublicSuffix)); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadOrCreate returns the key pair stored in dir/name.key_secret, generating
// and saving a new one if that file does not exist; created reports which
// happened. dir is created with mode 0700 if missing.
//
// The secret certificate is authoritative: an existing one that is unreadable,
// malformed or lacks a secret key is an error (never overwritten, since it may
// hold a key that peers already trust), while dir/name.key is rewritten from
// it when missing, malformed, holding another key, or holding a secret key.
// Concurrent callers for the same name end up with the same key pair, because
// a new secret file is published only if none exists yet.
func LoadOrCreate(dir, name string) (cert *Cert, created bool, err error) {
	if err := checkName(name); err != nil {
		return nil, false, err
	}
	if err := ensureDir(dir); err != nil {
		return nil, false, fmt.Errorf("zcert: %w", err)
	}
	secretPath := filepath.Join(dir, name+SecretSuffix)
	publicPath := filepath.Join(dir, name+PublicSuffix)

	cert, err = Load(secretPath)
	if errors.Is(err, fs.ErrNotExist) {
		cert, err = New()
		if err != nil {
			return nil, false, err
		}
		cert.Generated = time.Now()
		err = writeFile(secretPath, cert.MarshalSecret(), 0o600, false)
		switch {
		case err == nil:
			created = true
		case errors.Is(err, fs.ErrExist):
			// Another process created it since we looked: use theirs.
			cert, err = Load(secretPath)
		default:
			return nil, false, fmt.Errorf("zcert: %w", err)
		}
	}
	if err != nil {
		return nil, false, err
	}
	if cert.Secret == nil {
		return nil, false, &ParseError{Path: secretPath, Err: ErrNoSecretKey}
	}

	pub, err := Load(publicPath)
	var pe *ParseError
	switch {
	case err == nil && pub.Public == cert.Public && pub.Secret == nil:
		return cert, created, nil
	case err == nil, errors.Is(err, fs.ErrNotExist), errors.As(err, &pe):
		if err := cert.SavePublic(publicPath); err != nil {
			return nil, false, err
		}
		return cert, created, nil
	default:
		return nil, false, err
	}
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." ||
		strings.ContainsRune(name, '/') || strings.ContainsRune(name, filepath.Separator) ||
		strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("zcert: invalid certificate name %q: want a file name without directories", name)
	}
	return nil
}

// ensureDir creates dir with mode 0700 if it does not exist; it leaves the
// mode of an existing directory alone, as the administrator may have chosen it.
func ensureDir(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// MkdirAll's mode passes through the umask; set it exactly.
	return os.Chmod(dir, 0o700)
}

// testHookBeforeWrite, when set by tests, is called with the temporary file's
// name after its mode is set and before any data is written to it.
var testHookBeforeWrite func(tmpName string)

// writeFile writes data to path through a temporary file in the same
// directory (so the final step is a rename within one filesystem), synced
// before it takes path's place. With replace, an existing path is replaced
// atomically; without it, an existing path is left alone and the error
// matches fs.ErrExist, which gives create-if-absent without a lock.
func writeFile(path string, data []byte, perm fs.FileMode, replace bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if !closed {
			f.Close()
		}
		// After a successful rename tmp no longer exists; after a link it
		// is a second name that must go either way.
		if err != nil || !replace {
			os.Remove(tmp)
		}
	}()
	// CreateTemp already uses 0600, but that is its implementation detail;
	// setting the mode before writing is what keeps a secret private, and
	// Chmod is not subject to the umask, so public files get exactly perm.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if testHookBeforeWrite != nil {
		testHookBeforeWrite(tmp)
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	closed = true
	if err := f.Close(); err != nil {
		return err
	}
	if replace {
		err = os.Rename(tmp, path)
	} else {
		// link(2) fails if path exists, unlike rename(2).
		err = os.Link(tmp, path)
	}
	if err != nil {
		return err
	}
	// Best effort: the new name is in place; a directory that cannot be
	// synced (some filesystems refuse) leaves its durability to the
	// filesystem, as for any other writer.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
