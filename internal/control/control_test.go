package control

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// serve runs h on the control socket of dir until the test ends.
func serve(t *testing.T, dir string, h http.Handler) *Listener {
	t.Helper()
	lk, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := lk.Listen()
	if err != nil {
		lk.Release()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		ln.Close()
		lk.Release()
	})
	return ln
}

func health() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) })
	mux.HandleFunc("GET "+PathList, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error": "no list today"}`, http.StatusServiceUnavailable)
	})
	return mux
}

// TestOneServerPerDirectory: a second Lock of a data directory fails
// with ErrRunning while the first holds it, and succeeds once it is
// released.
func TestOneServerPerDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); !errors.Is(err, ErrRunning) {
		t.Fatalf("second lock: %v, want ErrRunning", err)
	}
	a.Release()
	b, err := Lock(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	b.Release()
}

// TestSocket: the socket is 0600, answers, and is gone after Close; a
// socket a dead server left is replaced.
func TestSocket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// What a server killed with SIGKILL leaves: a socket nobody answers.
	stale, err := net.Listen("unix", SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if Running(context.Background(), t.TempDir()) {
		t.Fatal("Running without a socket")
	}
	if Running(context.Background(), dir) {
		t.Fatal("Running on a stale socket")
	}
	ln := serve(t, dir, health())
	fi, err := os.Stat(SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if !Running(context.Background(), dir) {
		t.Fatal("not Running while served")
	}
	ln.Close()
	if _, err := os.Stat(SocketPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
}

// TestLongPath: a data directory whose socket path is too long for a
// socket address still works (Linux: through the directory's descriptor).
func TestLongPath(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the descriptor path is Linux's")
	}
	t.Parallel()
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	serve(t, dir, health())
	if err := Local(dir).Ping(context.Background()); err != nil {
		t.Fatalf("ping over a %d-byte path: %v", len(SocketPath(dir)), err)
	}
}

// TestClientErrors: the client says why a server cannot be reached, and
// passes the server's error on.
func TestClientErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	err := Local(dir).Ping(context.Background())
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), SocketPath(dir)) {
		t.Fatalf("no socket: %v", err)
	}
	serve(t, dir, health())
	_, err = Local(dir).List(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || e.Message != "no list today" {
		t.Fatalf("server error: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c, err := Remote("http://"+addr, "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("refused: %v", err)
	}
	if _, err := Remote("localhost:8080", "t"); err == nil {
		t.Fatal("a URL without a scheme was accepted")
	}
}
