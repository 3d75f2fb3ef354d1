package nftables

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/firewall/fwtest"
	"github.com/dynfw/sentinel/internal/firewall/netns"
)

// inNetns runs fn on a thread switched into the network namespace f. A
// socket stays in the namespace it was created in, so fn may create
// sockets and return them.
func inNetns(t *testing.T, f *os.File, fn func()) {
	t.Helper()
	if err := netns.Do(int(f.Fd()), func() error { fn(); return nil }); err != nil {
		t.Fatal(err)
	}
}

// reach tries a TCP connection from src to dst port 9 (nothing listens).
// A refused connection means the SYN reached the peer's stack; a timeout
// means it was dropped on the way.
func reach(t *testing.T, from *fwtest.Netns, src, dst string) bool {
	t.Helper()
	return reachWithin(t, from, src, dst, 400*time.Millisecond)
}

func reachWithin(t *testing.T, from *fwtest.Netns, src, dst string, timeout time.Duration) bool {
	t.Helper()
	var err error
	inNetns(t, from.File, func() {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: timeout}
		var c net.Conn
		c, err = d.DialContext(context.Background(), "tcp", net.JoinHostPort(dst, "9"))
		if c != nil {
			c.Close()
		}
	})
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return true
	case errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		return false
	}
	t.Fatalf("connect %s -> %s: unexpected %v", src, dst, err)
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestPackets sends real packets through a veth pair into a namespace
// protected by the backend: blocked sources are dropped and counted,
// allow-listed and unlisted ones get through.
func TestPackets(t *testing.T) {
	fw := newNS(t)
	peer := newNS(t)
	fw.Run(t, "ip", "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", peer.Name)
	for _, args := range [][]string{
		{"addr", "add", "10.99.0.1/24", "dev", "va"},
		{"-6", "addr", "add", "fd00:99::1/64", "dev", "va", "nodad"},
		{"link", "set", "va", "up"},
		{"link", "set", "lo", "up"},
	} {
		fw.Run(t, "ip", args...)
	}
	for _, args := range [][]string{
		{"addr", "add", "10.99.0.2/24", "dev", "vb"},
		{"addr", "add", "10.99.0.3/24", "dev", "vb"},
		{"addr", "add", "10.99.0.4/24", "dev", "vb"},
		{"-6", "addr", "add", "fd00:99::2/64", "dev", "vb", "nodad"},
		{"-6", "addr", "add", "fd00:99::3/64", "dev", "vb", "nodad"},
		{"link", "set", "vb", "up"},
		{"link", "set", "lo", "up"},
	} {
		peer.Run(t, "ip", args...)
	}
	// Before any rule every source gets through. This also fills the
	// neighbour caches: the first neighbour solicitation for a second
	// address on a fresh veth often goes unanswered and is only retried
	// after a second, longer than the drop tests wait.
	for _, c := range [][2]string{{"10.99.0.2", "10.99.0.1"}, {"10.99.0.3", "10.99.0.1"}, {"10.99.0.4", "10.99.0.1"},
		{"fd00:99::2", "fd00:99::1"}, {"fd00:99::3", "fd00:99::1"}} {
		if !reachWithin(t, peer, c[0], c[1], 3*time.Second) {
			t.Fatalf("%s -> %s: no connectivity before any rule", c[0], c[1])
		}
	}

	b := open(t, fw, Config{Allow: pfx("10.99.0.3/32", "fd00:99::3/128")})
	// The whole peer network is blocked; one address of each family is
	// allow-listed.
	if err := b.Replace(ctx, elems("10.99.0.0/24", "fd00:99::/64")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		src, dst string
		want     bool
	}{
		{"10.99.0.2", "10.99.0.1", false},
		{"10.99.0.3", "10.99.0.1", true}, // allow-listed
		{"fd00:99::2", "fd00:99::1", false},
		{"fd00:99::3", "fd00:99::1", true}, // allow-listed
	} {
		if got := reach(t, peer, c.src, c.dst); got != c.want {
			t.Errorf("%s -> %s: reached %v, want %v", c.src, c.dst, got, c.want)
		}
	}
	counters, err := b.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(counters) != 2 || counters[0].Packets == 0 || counters[0].Bytes == 0 || counters[1].Packets == 0 {
		t.Errorf("counters after drops: %+v", counters)
	}

	// A single address instead of the network: only it is dropped.
	if err := b.Apply(ctx, elems("10.99.0.2"), elems("10.99.0.0/24", "fd00:99::/64")); err != nil {
		t.Fatal(err)
	}
	if reach(t, peer, "10.99.0.2", "10.99.0.1") {
		t.Error("10.99.0.2 reached the firewall namespace while blocked")
	}
	if !reach(t, peer, "10.99.0.4", "10.99.0.1") || !reach(t, peer, "fd00:99::2", "fd00:99::1") {
		t.Error("unblocked addresses dropped")
	}
	after, err := b.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after[0].Packets <= counters[0].Packets || after[1].Packets != counters[1].Packets {
		t.Errorf("counters %+v then %+v: want IPv4 up, IPv6 unchanged", counters, after)
	}
	if err := b.Close(false); err != nil {
		t.Fatal(err)
	}
	if !reach(t, peer, "10.99.0.2", "10.99.0.1") {
		t.Error("still dropped after Close(false)")
	}
}
