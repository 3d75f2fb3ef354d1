package ipset

import (
	"bufio"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/firewall/fwtest"
)

// newNetns gives a test its own network namespace with the tools the
// checks use.
func newNetns(t testing.TB) *fwtest.Netns {
	t.Helper()
	return fwtest.NewNetns(t, "ipset", "iptables", "ip6tables", "iptables-restore", "ip6tables-restore")
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// open starts a backend in ns; the caller closes it (a cleanup closes it
// with keep=false if the test did not).
func open(t testing.TB, ns *fwtest.Netns, cfg Config) *Backend {
	t.Helper()
	cfg.NetNS = int(ns.File.Fd())
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close(false) })
	return b
}

// members lists a set's elements with ipset(8), normalised to prefixes
// (fine in tests; the backend itself never lists members).
func members(t testing.TB, ns *fwtest.Netns, set string) []string {
	t.Helper()
	out := ns.Run(t, "ipset", "list", set)
	var got []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "Members:" {
			in = true
			continue
		}
		if !in || line == "" {
			continue
		}
		got = append(got, normPrefix(t, line))
	}
	slices.Sort(got)
	return got
}

func normPrefix(t testing.TB, s string) string {
	t.Helper()
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatalf("bad member %q", s)
		}
		return netip.PrefixFrom(a, a.BitLen()).String()
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatalf("bad member %q", s)
	}
	return p.String()
}

func prefixes(ss ...string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, normPrefixNoT(s))
	}
	slices.Sort(out)
	return out
}

func normPrefixNoT(s string) string {
	if !strings.Contains(s, "/") {
		a := netip.MustParseAddr(s)
		return netip.PrefixFrom(a, a.BitLen()).String()
	}
	return netip.MustParsePrefix(s).String()
}

// header returns the fields of `ipset list -t`: "Type", "Header" (split
// into its key/value words as well), "Number of entries", "References".
func header(t testing.TB, ns *fwtest.Netns, set string) map[string]string {
	t.Helper()
	out := ns.Run(t, "ipset", "list", "-t", set)
	h := map[string]string{}
	for line := range strings.Lines(out) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			continue
		}
		h[k] = v
		if k == "Header" {
			f := strings.Fields(v)
			for i := 0; i+1 < len(f); i += 2 {
				h[f[i]] = f[i+1]
			}
		}
	}
	return h
}

func headerInt(t testing.TB, h map[string]string, k string) int {
	t.Helper()
	n, err := strconv.Atoi(h[k])
	if err != nil {
		t.Fatalf("header field %q = %q: %v", k, h[k], err)
	}
	return n
}

// setNames lists the sets in ns.
func setNames(t testing.TB, ns *fwtest.Netns) []string {
	t.Helper()
	names := strings.Fields(ns.Run(t, "ipset", "list", "-n"))
	slices.Sort(names)
	return names
}

func inSet(ns *fwtest.Netns, set, elem string) bool {
	_, err := ns.Try("ipset", "test", set, elem)
	return err == nil
}

// elems builds Elements from strings.
func elems(ss ...string) *firewall.Elements {
	e := &firewall.Elements{}
	for _, s := range ss {
		if strings.Contains(s, "/") {
			e.Add(netip.MustParsePrefix(s))
		} else {
			a := netip.MustParseAddr(s)
			e.Add(netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return e
}

// seqAddr4 returns n distinct IPv4 addresses spread over the space
// (multiplying by an odd constant is a bijection on uint32), offset by seed.
func seqAddr4(n int, seed uint32) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = (uint32(i)+seed)*2654435761 + 0x0b000000
	}
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
