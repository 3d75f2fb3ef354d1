package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/firewall/fwtest"
	"github.com/dynfw/sentinel/internal/policy"
	"golang.org/x/sys/unix"
)

func TestParseRoutes(t *testing.T) {
	// Written on a little-endian machine, as /proc/net/route shows
	// addresses in host order.
	v4 := `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
wan	00000000	FE7100CB	0003	0	0	100	00000000	0	0	0
eth1	0000000A	0100000A	0003	0	0	0	000000FF	0	0	0
`
	v6 := `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000003 00000000 00450003     wan
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000004 00000000 80200001       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`
	got4, err := parseRoute4(strings.NewReader(v4))
	if err != nil {
		t.Fatal(err)
	}
	got6, err := parseRoute6(strings.NewReader(v6))
	if err != nil {
		t.Fatal(err)
	}
	want4, want6 := addrList("192.0.2.1", "203.0.113.254"), addrList("fd00::1", "fe80::1")
	if isBigEndian() {
		want4 = addrList("1.2.0.192", "254.113.0.203")
	}
	if !slices.Equal(got4, want4) || !slices.Equal(got6, want6) {
		t.Fatalf("gateways %v %v, want %v %v", got4, got6, want4, want6)
	}
	if _, err := parseRoute4(strings.NewReader("h\neth0 0000000Z 0 0 0 0 0 0\n")); err == nil {
		t.Fatal("a malformed route file parsed")
	}
	// Without IPv6 the file is missing: not an error.
	dir := t.TempDir()
	os.WriteFile(dir+"/route", []byte(v4), 0o644)
	if gws, err := Gateways(dir); err != nil || len(gws) != 2 {
		t.Fatalf("Gateways without ipv6_route: %v %v", gws, err)
	}
}

func isBigEndian() bool { return binary.NativeEndian.Uint16([]byte{0, 1}) == 1 }

func addrList(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// TestGatewaysInNamespace reads the default gateways of a network
// namespace through /proc/PID/net of a process inside it, as the client
// reads its own /proc/net there.
func TestGatewaysInNamespace(t *testing.T) {
	ns := fwtest.NewNetns(t)
	ns.Run(t, "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	ns.Run(t, "ip", "link", "set", "d1", "up")
	ns.Run(t, "ip", "link", "set", "d0", "up")
	ns.Run(t, "ip", "addr", "add", "198.51.100.2/24", "dev", "d0")
	ns.Run(t, "ip", "addr", "add", "2001:db8:1::2/64", "dev", "d0", "nodad")
	ns.Run(t, "ip", "route", "add", "default", "via", "198.51.100.254")
	ns.Run(t, "ip", "-6", "route", "add", "default", "via", "2001:db8:1::fe")
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "cat")
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	// ip netns exec execs cat in place: the pid is the process inside
	// once it has entered the namespace.
	var st unix.Stat_t
	if err := unix.Fstat(int(ns.File.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	inside := fmt.Sprintf("net:[%d]", st.Ino)
	waitFor(t, "cat to enter the namespace", func() bool {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid))
		return l == inside
	})
	gws, err := Gateways(fmt.Sprintf("/proc/%d/net", cmd.Process.Pid))
	if want := addrList("198.51.100.254", "2001:db8:1::fe"); err != nil || !slices.Equal(gws, want) {
		t.Fatalf("gateways %v (%v), want %v", gws, err, want)
	}
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSyncerFloor: a server (or a stolen key) lists what would cut the host
// off; nothing of it reaches the firewall, the legitimate entries of the
// same list and deltas do, every refusal is counted by reason and logged
// once however often the list repeats.
func TestSyncerFloor(t *testing.T) {
	f := newFakeServer(t, 30*time.Millisecond)
	bad := []string{"0.0.0.0/0", "::/0", "127.0.0.0/8", "::1", "fe80::/10", "ff00::/8", "224.0.0.0/4", "10.0.0.0/8",
		"2002:7f00:1::1", "198.51.100.1", "198.51.100.0/24", "203.0.113.254", "2.0.0.0/7", "100.64.0.0/10", "fd00::/16"}
	good := []string{"45.1.2.3", "198.51.100.77", "2a00:1450::/32", "11.0.0.0/16"}
	for _, a := range append(slices.Clone(bad[:8]), good[:2]...) {
		f.change(true, a, true)
	}
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	conn, err := Dial(Config{Server: "127.0.0.1", Port: f.port, ServerKey: f.key, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.WaitConnected(ctx, false); err != nil {
		t.Fatal(err)
	}
	mem := fwtest.NewMemory()
	cfg := SyncConfig{BatchInterval: 5 * time.Millisecond, Logger: logger, Server: "dynfw.example", Machine: MachineConfig{HoldTimeout: 20 * time.Millisecond},
		Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
			if host != "dynfw.example" {
				return nil, fmt.Errorf("unknown host %s", host)
			}
			return addrList("198.51.100.1", "2001:db8:5::1"), nil
		},
		Gateways: func() ([]netip.Addr, error) { return addrList("203.0.113.254", "fe80::1"), nil },
	}
	s := NewSyncer(cfg, conn, policy.New(policy.Config{}), mem)
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	defer func() { rcancel(); <-done }()

	want := []string{"198.51.100.77/32", "45.1.2.3/32"}
	waitContents(t, mem, want, 5*time.Second)
	// The rest arrives as deltas.
	for _, a := range append(slices.Clone(bad[8:]), good[2:]...) {
		f.change(true, a, true)
	}
	want = []string{"11.0.0.0/16", "198.51.100.77/32", "2a00:1450::/32", "45.1.2.3/32"}
	waitContents(t, mem, want, 5*time.Second)
	// Lost deltas force lists again: the refusals repeat, the log does not.
	for range 3 {
		lists := s.Stats().ListsApplied.Load()
		f.change(true, "46.0.0.1", false)
		f.change(false, "46.0.0.1", true)
		waitFor(t, "a resync", func() bool { return s.Stats().ListsApplied.Load() > lists })
	}
	f.change(true, "47.0.0.1", true)
	waitContents(t, mem, append(want, "47.0.0.1/32"), 5*time.Second)

	st := s.Stats()
	wantReasons := map[string]int{"unspecified": 2, "loopback": 3, "link-local": 1, "multicast": 2, "private": 1, "server": 2,
		"gateway": 1, "min-prefix": 1, "cgnat": 1, "unique-local": 1}
	for reason, n := range wantReasons {
		if got := st.Refused[reason].Load(); got < uint64(n) {
			t.Errorf("refused %q: %d, want at least %d", reason, got, n)
		}
	}
	if got := st.Refused["nat64-local"].Load(); got != 0 {
		t.Errorf("nat64-local refusals: %d", got)
	}
	if st.ListsApplied.Load() < 2 {
		t.Fatalf("%d lists applied; the test needs repeats", st.ListsApplied.Load())
	}
	for _, b := range bad {
		p := mustPrefix(b)
		if n := logs.count("entry=" + p.String() + " "); n != 1 {
			t.Errorf("%s logged %d times, want once\n%s", p, n, logs.String())
		}
	}
	if n := logs.count("form=6to4"); n != 1 {
		t.Errorf("the 6to4 form is named %d times", n)
	}
	if st.ProtectedServer.Load() != 3 || st.ProtectedGateways.Load() != 2 {
		t.Errorf("protected %d server and %d gateway addresses", st.ProtectedServer.Load(), st.ProtectedGateways.Load())
	}
}

// TestSyncerFollowsGateway: when the default gateway changes (DHCP), an
// entry that covers the new one leaves the firewall without waiting for a
// list, and a failure to read the routes keeps the last known gateways.
func TestSyncerFollowsGateway(t *testing.T) {
	f := newFakeServer(t, 30*time.Millisecond)
	f.change(true, "45.1.2.3", true)
	f.change(true, "46.0.0.0/16", true)
	var gw atomic.Pointer[[]netip.Addr]
	var fail atomic.Bool
	gw.Store(&[]netip.Addr{netip.MustParseAddr("203.0.113.254")})
	cfg := SyncConfig{ProtectInterval: 10 * time.Millisecond, Gateways: func() ([]netip.Addr, error) {
		if fail.Load() {
			return nil, fmt.Errorf("no /proc")
		}
		return *gw.Load(), nil
	}}
	s, mem, _ := startSyncer(t, f, cfg, policy.Config{})
	waitContents(t, mem, []string{"45.1.2.3/32", "46.0.0.0/16"}, 5*time.Second)
	gw.Store(&[]netip.Addr{netip.MustParseAddr("46.0.7.1")})
	waitContents(t, mem, []string{"45.1.2.3/32"}, 5*time.Second)
	if n := s.Stats().Refused["gateway"].Load(); n != 1 {
		t.Fatalf("gateway refusals %d", n)
	}
	if n := s.Stats().ListsApplied.Load(); n != 1 {
		t.Fatalf("%d lists applied: the gateway must be followed without one", n)
	}
	// Reading fails: the last gateway stays protected.
	fail.Store(true)
	f.change(true, "46.0.0.0/16", true)
	f.change(true, "48.1.1.1", true)
	waitContents(t, mem, []string{"45.1.2.3/32", "48.1.1.1/32"}, 5*time.Second)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRefusalLogIsBounded: a server listing endless distinct refused
// entries costs a bounded memory; past the bound they are counted only,
// and the overflow is logged once.
func TestRefusalLogIsBounded(t *testing.T) {
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	s := NewSyncer(SyncConfig{Logger: logger, MaxRefusalLogs: 10}, nil, policy.New(policy.Config{}), fwtest.NewMemory())
	for round := range 3 {
		for i := range 100 {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(round), byte(i)}), 32)
			s.skipped(p, s.set.Check(p))
		}
	}
	if n := s.stats.Refused["private"].Load(); n != 300 {
		t.Fatalf("counted %d refusals", n)
	}
	if len(s.refusedLogged) != 10 || logs.count("refusing a listed entry") != 10 || logs.count("too many refused entries") != 1 {
		t.Fatalf("remembered %d, logged:\n%s", len(s.refusedLogged), logs.String())
	}
}
