package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// ErrRunning is returned by Lock when another server uses the data
// directory.
var ErrRunning = errors.New("another sentinel server runs on this data directory")

// SocketPath is the control socket of the server whose data directory is
// dir.
func SocketPath(dir string) string { return filepath.Join(dir, SocketName) }

// maxSockPath is the longest socket path bind(2) takes everywhere
// (sun_path is 104 bytes on the BSDs, 108 on Linux, with its NUL).
const maxSockPath = 103

// sockAddr is the address to bind or dial for the socket in the directory
// open as d: its path, or, when that is too long for a socket address, the
// same file reached through the directory's descriptor (Linux).
func sockAddr(d *os.File) string {
	p := SocketPath(d.Name())
	if len(p) <= maxSockPath || runtime.GOOS != "linux" {
		return p
	}
	return "/proc/self/fd/" + strconv.Itoa(int(d.Fd())) + "/" + SocketName
}

// DirLock is the exclusive lock of a server on its data directory.
type DirLock struct {
	dir  *os.File
	path string
}

// Lock locks the data directory dir (which must exist) for this process.
// It returns an error wrapping ErrRunning when another process holds the
// lock, or a server (of a version without the lock) answers on the
// control socket. The kernel releases the lock when the process ends,
// however it ends.
func Lock(dir string) (*DirLock, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := lockDir(d); err != nil {
		d.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%w (%s is locked by another process)", ErrRunning, dir)
		}
		return nil, fmt.Errorf("data directory: locking %s: %w", dir, err)
	}
	l := &DirLock{dir: d, path: SocketPath(dir)}
	if c, err := net.DialTimeout("unix", sockAddr(d), time.Second); err == nil {
		c.Close()
		d.Close()
		return nil, fmt.Errorf("%w (a server answers on %s)", ErrRunning, l.path)
	}
	return l, nil
}

// Release releases the lock; call it last, when nothing of the data
// directory is written any more.
func (l *DirLock) Release() { l.dir.Close() }

// Listener is the control socket of a running server.
type Listener struct {
	net.Listener
	path string
}

// Listen listens on the control socket of the locked directory, mode
// 0600, replacing the socket a server that died left behind.
func (l *DirLock) Listen() (*Listener, error) {
	path, addr := l.path, sockAddr(l.dir)
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket: %s exists and is not a socket", path)
		}
		// Nobody answers on it (Lock checked) and nobody else may
		// listen in this directory: it is stale.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket: removing the stale %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", addr)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// Close removes it by its path, not by addr: a descriptor's number
	// may name another file by then.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	// Created with the umask's mode; the directory (0700) already keeps
	// others out, this keeps the socket closed in a directory that is not.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return &Listener{Listener: ln, path: path}, nil
}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// Running reports whether a server answers on the control socket of the
// data directory dir.
func Running(ctx context.Context, dir string) bool {
	c := Local(dir)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.Ping(ctx) == nil
}
