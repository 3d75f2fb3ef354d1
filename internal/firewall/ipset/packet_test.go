package ipset

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/firewall/fwtest"
)

// TestPackets sends real packets: a peer namespace, joined to the
// firewall's namespace by a veth pair, sends UDP datagrams from three
// source addresses of each family to a socket in the firewall's namespace.
// Datagrams from blocked sources never arrive, those from the allowed one
// (inside a blocked prefix) do, and the drop rules' counters move.
func TestPackets(t *testing.T) {
	fw := newNetns(t)
	peer := newNetns(t)
	fw.Run(t, "ip", "link", "add", "fw0", "type", "veth", "peer", "name", "peer0", "netns", peer.Name)
	for _, c := range [][]string{
		{"ip", "addr", "add", "10.77.0.1/24", "dev", "fw0"},
		{"ip", "addr", "add", "fd00:77::1/64", "dev", "fw0", "nodad"},
		{"ip", "link", "set", "fw0", "up"},
	} {
		fw.Run(t, c[0], c[1:]...)
	}
	for _, c := range [][]string{
		{"ip", "addr", "add", "10.77.0.2/24", "dev", "peer0"},
		{"ip", "addr", "add", "10.77.0.3/24", "dev", "peer0"},
		{"ip", "addr", "add", "10.77.0.4/24", "dev", "peer0"},
		{"ip", "addr", "add", "fd00:77::2/64", "dev", "peer0", "nodad"},
		{"ip", "addr", "add", "fd00:77::3/64", "dev", "peer0", "nodad"},
		{"ip", "addr", "add", "fd00:77::4/64", "dev", "peer0", "nodad"},
		{"ip", "link", "set", "peer0", "up"},
	} {
		peer.Run(t, c[0], c[1:]...)
	}
	var listeners = map[bool]*net.UDPConn{}
	for _, v6 := range []bool{false, true} {
		addr := "10.77.0.1:0"
		if v6 {
			addr = "[fd00:77::1]:0"
		}
		err := fw.Do(func() error {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
			listeners[v6] = c
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { listeners[v6].Close() })
	}
	seq := 0
	// arrives sends one datagram from src and reports whether the
	// firewall's socket received it.
	arrives := func(src string) bool {
		t.Helper()
		seq++
		msg := fmt.Appendf(nil, "probe %d from %s", seq, src)
		l := listeners[strings.Contains(src, ":")]
		var c *net.UDPConn
		err := peer.Do(func() error {
			var err error
			c, err = net.DialUDP("udp",
				net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 0)),
				l.LocalAddr().(*net.UDPAddr))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		l.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
		for {
			n, from, err := l.ReadFromUDPAddrPort(buf)
			if err != nil {
				return false // deadline: dropped
			}
			if string(buf[:n]) == string(msg) {
				if from.Addr().String() != src {
					t.Fatalf("probe from %s arrived from %s", src, from.Addr())
				}
				return true
			}
		}
	}
	expect := func(when string, want map[string]bool) {
		t.Helper()
		for src, ok := range want {
			if got := arrives(src); got != ok {
				t.Errorf("%s: datagram from %s arrived=%v, want %v", when, src, got, ok)
			}
		}
	}
	all := func(ok bool) map[string]bool {
		m := map[string]bool{}
		for _, s := range []string{"10.77.0.2", "10.77.0.3", "10.77.0.4", "fd00:77::2", "fd00:77::3", "fd00:77::4"} {
			m[s] = ok
		}
		return m
	}

	b := open(t, fw, Config{
		Rules: true,
		Allow: []netip.Prefix{netip.MustParsePrefix("10.77.0.3/32"), netip.MustParsePrefix("fd00:77::3/128")},
	})
	expect("empty sets", all(true))

	ctx := context.Background()
	// Whole prefixes blocked; .3 is allowed inside them.
	if err := b.Replace(ctx, elems("10.77.0.0/24", "fd00:77::/64")); err != nil {
		t.Fatal(err)
	}
	expect("prefixes blocked", map[string]bool{
		"10.77.0.2": false, "10.77.0.3": true, "10.77.0.4": false,
		"fd00:77::2": false, "fd00:77::3": true, "fd00:77::4": false,
	})
	if n := dropCount(t, fw, "iptables", DefaultName+"-net4"); n == 0 {
		t.Error("the IPv4 prefix drop rule counted no packets")
	}
	if n := dropCount(t, fw, "ip6tables", DefaultName+"-net6"); n == 0 {
		t.Error("the IPv6 prefix drop rule counted no packets")
	}

	// Prefixes replaced by single addresses through deltas.
	if err := b.Apply(ctx, elems("10.77.0.2", "fd00:77::2"), elems("10.77.0.0/24", "fd00:77::/64")); err != nil {
		t.Fatal(err)
	}
	expect("single addresses blocked", map[string]bool{
		"10.77.0.2": false, "10.77.0.3": true, "10.77.0.4": true,
		"fd00:77::2": false, "fd00:77::3": true, "fd00:77::4": true,
	})
	if n := dropCount(t, fw, "iptables", DefaultName); n == 0 {
		t.Error("the IPv4 address drop rule counted no packets")
	}

	// Close(false) lifts the block.
	if err := b.Close(false); err != nil {
		t.Fatal(err)
	}
	expect("after Close(false)", all(true))
}

// dropCount returns the packet counter of the chain's drop rule for set.
func dropCount(t *testing.T, ns *fwtest.Netns, bin, set string) int {
	t.Helper()
	out := ns.Run(t, bin, "-L", DefaultName, "-v", "-x", "-n")
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "DROP" && strings.Contains(line, "match-set "+set+" src") {
			n, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatalf("bad counter line %q", line)
			}
			return n
		}
	}
	t.Fatalf("no drop rule for %s in:\n%s", set, out)
	return 0
}
