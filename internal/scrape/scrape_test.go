package scrape

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serve runs a Server on a local port and returns it, its address and the
// number of times the body function ran.
func serve(t *testing.T, cfg Config) (*Server, string, *atomic.Int64) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	var calls atomic.Int64
	s := New(cfg, func(ctx context.Context) []byte {
		calls.Add(1)
		return []byte("up 1\n")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve returned %v, want ErrClosed", err)
		}
	})
	return s, ln.Addr().String(), &calls
}

// dial opens a raw connection whose reads give up after a safety limit
// far above any timeout the tests configure.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// closed reports whether the server closed c (a read ends with EOF).
func closed(t *testing.T, c net.Conn, r *bufio.Reader) bool {
	t.Helper()
	_, err := r.ReadByte()
	if err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read: %v (the server kept the connection open)", err)
	}
	return err != nil
}

func TestGetHeadAndOtherMethods(t *testing.T) {
	t.Parallel()
	_, addr, calls := serve(t, Config{})
	for _, path := range []string{"/metrics", "/"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "up 1\n" || resp.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" ||
			resp.Header.Get("Date") == "" {
			t.Errorf("GET %s: %d %q %v", path, resp.StatusCode, body, resp.Header)
		}
	}
	resp, err := http.Head("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 5 {
		t.Errorf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	resp, err = http.Post("http://"+addr+"/metrics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" || string(body) != "method not allowed\n" {
		t.Errorf("POST: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("body computed %d times, want 3 (GET, GET, HEAD)", n)
	}
}

// TestKeepAlive sends two requests on one connection (pipelined), then
// one asking to close.
func TestKeepAlive(t *testing.T) {
	t.Parallel()
	_, addr, _ := serve(t, Config{})
	c := dial(t, addr)
	io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(c)
	for i := range 2 {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "up 1\n" || resp.Close {
			t.Fatalf("response %d: %d %q close=%v", i, resp.StatusCode, body, resp.Close)
		}
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil || !resp.Close {
		t.Fatalf("response to Connection: close: %v %+v", err, resp)
	}
	io.ReadAll(resp.Body)
	if !closed(t, c, r) {
		t.Error("connection open after Connection: close")
	}
}

// TestCloseAfter checks the requests after whose answer the connection
// ends: HTTP/1.0, a request with a body, and bad requests (400).
func TestCloseAfter(t *testing.T) {
	t.Parallel()
	_, addr, _ := serve(t, Config{})
	for _, c := range []struct {
		name, req string
		status    int
	}{
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", 200},
		{"body", "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 405},
		{"chunked body", "DELETE / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 405},
		{"bad version", "GET / HTTP/2.0\r\n\r\n", 400},
		{"no version", "GET /\r\n\r\n", 400},
		{"bad method", "G(T / HTTP/1.1\r\n\r\n", 400},
		{"bad header", "GET / HTTP/1.1\r\nno colon\r\n\r\n", 400},
		{"huge line", "GET /" + strings.Repeat("a", 5000) + " HTTP/1.1\r\n\r\n", 400},
		{"huge header", "GET / HTTP/1.1\r\n" + strings.Repeat("X-A: "+strings.Repeat("b", 1000)+"\r\n", 20) + "\r\n", 400},
	} {
		conn := dial(t, addr)
		io.WriteString(conn, c.req)
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		io.ReadAll(resp.Body)
		if resp.StatusCode != c.status || !resp.Close {
			t.Errorf("%s: status %d close=%v, want %d and close", c.name, resp.StatusCode, resp.Close, c.status)
		}
		if !closed(t, conn, r) {
			t.Errorf("%s: connection left open", c.name)
		}
	}
}

// TestMaxConns fills the connections: the next one is closed at once and
// counted; once one is free, a new one is served.
func TestMaxConns(t *testing.T) {
	t.Parallel()
	s, addr, _ := serve(t, Config{MaxConns: 2})
	a, b := dial(t, addr), dial(t, addr)
	// Answers on both prove the server admitted them before the third.
	for _, c := range []net.Conn{a, b} {
		io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("admitted connection: %v", err)
		}
	}
	third := dial(t, addr)
	if !closed(t, third, bufio.NewReader(third)) {
		t.Fatal("a connection beyond MaxConns was kept")
	}
	if n := s.Refused(); n != 1 {
		t.Errorf("Refused = %d, want 1", n)
	}
	a.Close()
	// a's slot comes back when the server sees it closed; until then a
	// new connection may still be refused.
	for {
		c := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode == 200 {
			break
		}
	}
}

// TestTimeouts: a request header that does not arrive within
// ReadHeaderTimeout, and an idle keep-alive connection, are closed.
func TestTimeouts(t *testing.T) {
	t.Parallel()
	_, addr, _ := serve(t, Config{ReadHeaderTimeout: 50 * time.Millisecond, IdleTimeout: 50 * time.Millisecond})
	slow := dial(t, addr)
	io.WriteString(slow, "GET / HTTP/1.1\r\n") // and never the end of the header
	if !closed(t, slow, bufio.NewReader(slow)) {
		t.Error("slow request kept")
	}
	idle := dial(t, addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\n\r\n")
	r := bufio.NewReader(idle)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if !closed(t, idle, r) {
		t.Error("idle connection kept")
	}
}

func TestCloseEndsConnections(t *testing.T) {
	t.Parallel()
	s, addr, _ := serve(t, Config{})
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
	r := bufio.NewReader(c)
	if _, err := http.ReadResponse(r, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The response's body is 5 bytes; after it the connection ends.
	io.CopyN(io.Discard, r, 5)
	if !closed(t, c, r) {
		t.Error("connection open after Close")
	}
}
