package webserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serve runs a Server for h on a local port and returns its address.
func serve(t *testing.T, cfg Config, h http.Handler) (*Server, string) { return serveBuf(t, cfg, h, 0) }

// serveBuf is serve with send buffers of sndbuf bytes on the server's
// connections (0: the system's, which grow to 4 MB and would swallow a
// whole download before the client reads it).
func serveBuf(t *testing.T, cfg Config, h http.Handler, sndbuf int) (*Server, string) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	s := New(cfg, h)
	var lc net.ListenConfig
	if sndbuf > 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, sndbuf) })
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return s, ln.Addr().String()
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello\n") })

// dial opens a raw connection whose reads give up after a safety limit
// far above the configured timeouts: reaching it means the server kept
// the connection open.
func dial(t *testing.T, addr string) net.Conn { return dialBuf(t, addr, 0) }

// dialBuf is dial with a receive buffer of rcvbuf bytes (0: the system's,
// which grows to megabytes on loopback and would hide a slow reader).
func dialBuf(t *testing.T, addr string, rcvbuf int) net.Conn {
	t.Helper()
	d := net.Dialer{}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
		}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c
}

// get sends a GET on c and reads the answer.
func get(t *testing.T, c net.Conn, br *bufio.Reader, path string) *http.Response {
	t.Helper()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// closedByServer reads until the server closes c. It fails if the read
// ends on the client's own safety deadline instead.
func closedByServer(t *testing.T, c net.Conn, r io.Reader, what string) {
	t.Helper()
	_, err := io.Copy(io.Discard, r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: the server kept the connection open", what)
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestIdleKeepAliveClosed: a keep-alive connection that carries no further
// request is closed after the idle timeout, and one that never sends a
// request after the header timeout.
func TestIdleKeepAliveClosed(t *testing.T) {
	t.Parallel()
	_, addr := serve(t, Config{IdleTimeout: 100 * time.Millisecond, ReadHeaderTimeout: 100 * time.Millisecond}, hello)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	if resp := get(t, c, br, "/"); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("status %d, close %v", resp.StatusCode, resp.Close)
	}
	closedByServer(t, c, br, "idle keep-alive connection")

	silent := dial(t, addr)
	closedByServer(t, silent, silent, "connection without a request")
}

// TestSlowBodyCut: a POST whose body stops arriving is cut after the read
// timeout; the handler sees a read error.
func TestSlowBodyCut(t *testing.T) {
	t.Parallel()
	readErr := make(chan error, 1)
	_, addr := serve(t, Config{ReadTimeout: 200 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
		if err != nil {
			http.Error(w, "body too slow", http.StatusRequestTimeout)
		}
	}))
	c := dial(t, addr)
	fmt.Fprintf(c, "POST /ingest HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n%s", strings.Repeat("x", 10))
	closedByServer(t, c, c, "slow-body POST")
	if err := <-readErr; err == nil {
		t.Fatal("the handler read the whole body")
	}
}

// TestConnectionCap: beyond MaxConns a connection is closed at once with
// no answer; when a slot frees, connections are served again.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	s, addr := serve(t, Config{MaxConns: 2}, hello)
	var held []net.Conn
	for range 2 {
		c := dial(t, addr)
		if resp := get(t, c, bufio.NewReader(c), "/"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		held = append(held, c)
	}
	extra := dial(t, addr)
	fmt.Fprintf(extra, "GET / HTTP/1.1\r\nHost: test\r\n\r\n")
	var got bytes.Buffer
	closedByServer(t, extra, io.TeeReader(extra, &got), "connection over the cap")
	if got.Len() != 0 {
		t.Fatalf("the connection over the cap got an answer: %q", got.String())
	}
	if st := s.Stats(); st.Refused != 1 || st.Open != 2 {
		t.Fatalf("stats %+v", st)
	}
	held[0].Close()
	for s.Stats().Open > 1 {
		time.Sleep(time.Millisecond) // the server notices the close
	}
	c := dial(t, addr)
	if resp := get(t, c, bufio.NewReader(c), "/"); resp.StatusCode != 200 {
		t.Fatalf("after a slot freed: status %d", resp.StatusCode)
	}
}

// TestSlowDownloadProgresses: a download that takes several write timeouts
// to a client that keeps reading completes; a client that stops reading is
// cut after the write timeout.
func TestSlowDownloadProgresses(t *testing.T) {
	t.Parallel()
	const size = 2 << 20
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	writeErr := make(chan error, 2)
	_, addr := serveBuf(t, Config{WriteTimeout: 500 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		_, err := w.Write(body) // one write: the server moves the deadline
		writeErr <- err
	}), 64<<10)

	// 32 KiB every 20 ms: about 1.3 s for the whole body, more than twice
	// the write timeout, yet 25 times the rate the server needs.
	c := dialBuf(t, addr, 16<<10)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 32<<10), nil)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 32<<10)
	n := 0
	for n < size {
		<-tick.C
		m, err := io.ReadFull(resp.Body, buf[:min(len(buf), size-n)])
		n += m
		if err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("handler: %v", err)
	}

	// A client that reads nothing.
	stall := dialBuf(t, addr, 16<<10)
	fmt.Fprintf(stall, "GET /big HTTP/1.1\r\nHost: test\r\n\r\n")
	select {
	case err := <-writeErr:
		if err == nil {
			t.Fatal("a write to a client that reads nothing succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a client that reads nothing holds the handler")
	}
}

// TestShutdownEndsIdle: Shutdown closes idle connections and returns.
func TestShutdownEndsIdle(t *testing.T) {
	t.Parallel()
	s, addr := serve(t, Config{}, hello)
	c := dial(t, addr)
	get(t, c, bufio.NewReader(c), "/")
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	closedByServer(t, c, c, "idle connection at shutdown")
	if s.Stats().Open != 0 {
		t.Fatalf("open %d", s.Stats().Open)
	}
}
