package greylist

import (
	"encoding/hex"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strings"
	"time"
)

// tmpPrefix starts the names of files being written. The handler never
// serves them (no valid name starts with '.') and Open removes those left by
// a crash.
const tmpPrefix = ".tmp-"

// writeAtomic replaces name (relative to root) with data so that readers see
// either the old file or the new one, never a mix, even across a crash: the
// data is written to a temporary file in the same directory, its mtime set,
// fsynced, renamed over name, and the directory fsynced so that the rename
// itself is durable. A zero mtime keeps the time of writing.
func writeAtomic(root *os.Root, name string, data []byte, mtime time.Time) (err error) {
	dir, base := path.Split(name)
	var rnd [8]byte
	for i := range rnd {
		rnd[i] = byte(rand.Uint32())
	}
	tmp := dir + tmpPrefix + base + "-" + hex.EncodeToString(rnd[:])
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			root.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	// The mtime is the snapshot time that Last-Modified reports, so it is
	// set before the fsync that makes it durable with the data. The file is
	// ours (created with O_EXCL under a random name), so Root.Chtimes's
	// documented symlink race cannot be used against it.
	if !mtime.IsZero() {
		if err = root.Chtimes(tmp, mtime, mtime); err != nil {
			return err
		}
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = root.Rename(tmp, name); err != nil {
		return err
	}
	return syncDir(root, dir)
}

func syncDir(root *os.Root, dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := root.Open(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeTemps deletes temporary files that a crash left in dir.
func removeTemps(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := root.Remove(path.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
