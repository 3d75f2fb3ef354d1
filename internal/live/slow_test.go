//go:build unix

package live

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
)

// TestSlowClientCutOff: a browser that never reads is disconnected, while
// a browser that reads keeps receiving everything, in time.
func TestSlowClientCutOff(t *testing.T) {
	// The server's send buffers are small too: a kernel that autotunes
	// them to megabytes would otherwise swallow the whole burst for the
	// slow client, and nothing would be slow.
	h := New(Options{Backlog: 1024, WriteTimeout: 500 * time.Millisecond, Countries: testCC})
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = smallSendBuffers{ln.(*net.TCPListener), new(atomic.Int32)}
	srv.Start()
	t.Cleanup(func() { h.Close(); srv.Close() })
	addr := strings.TrimPrefix(srv.URL, "http://")

	// The slow client: a small receive buffer, a request, then silence.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	slow, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /dynfw/events HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	waitFor(t, time.Second, "slow client connected", func() bool { return h.Clients() == 1 })

	fast, _ := openSSE(t, srv.URL+"/dynfw/events", nil)
	next(t, fast, time.Second, "snapshot")
	waitFor(t, time.Second, "fast client connected", func() bool { return h.Clients() == 2 })

	// 20,000 events at about 20,000/s, each ~150 bytes on the wire: far
	// more than the slow client's buffers.
	const n = 20000
	got := make(chan int, 1)
	go func() {
		seen := 0
		for ev := range fast {
			if ev.Event == "event" {
				seen++
				if strings.Contains(ev.Data, `"ip":"10.255.255.255"`) {
					break
				}
			}
		}
		got <- seen
	}()
	name := strings.Repeat("x", 60)
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if i == n-1 {
			a = netip.MustParseAddr("10.255.255.255")
		}
		h.ApplyEvent(dynfw.Event{Name: name, Addr: a})
		if i%100 == 99 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	select {
	case seen := <-got:
		if seen != n {
			t.Fatalf("fast client saw %d of %d events", seen, n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fast client did not receive the last event")
	}
	waitFor(t, 3*time.Second, "slow client cut off", func() bool { return h.Clients() == 1 })
	if slowN, _ := h.Dropped(); slowN != 1 {
		t.Fatalf("%d slow drops", slowN)
	}
	// What the slow client has is a valid prefix of the stream, which it
	// can read to the end: the server closed it.
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(slow)
	var lines int
	for {
		if _, err := br.ReadString('\n'); err != nil {
			break
		}
		lines++
	}
	if lines == 0 {
		t.Fatal("slow client got nothing")
	}
}

// smallSendBuffers gives the first connection it accepts (the slow
// client, which connects first) a 16 KiB send buffer; the fast client keeps
// the kernel's, so that a loaded machine does not make it slow too.
type smallSendBuffers struct {
	*net.TCPListener
	n *atomic.Int32
}

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.TCPListener.AcceptTCP()
	if err != nil {
		return nil, err
	}
	if l.n.Add(1) == 1 {
		c.SetWriteBuffer(16 << 10)
	}
	return c, nil
}
