package nftables

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/firewall/fwtest"
)

// newNS gives a test its own network namespace with nft available.
func newNS(t testing.TB) *fwtest.Netns {
	t.Helper()
	return fwtest.NewNetns(t, "nft")
}

// open creates a backend in ns; it is closed (keep) at cleanup, which
// leaves the namespace's removal to clean up.
func open(t testing.TB, ns *fwtest.Netns, cfg Config) *Backend {
	t.Helper()
	cfg.NetNS = int(ns.File.Fd())
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close(true) })
	return b
}

// elems builds Elements from prefixes as strings.
func elems(ss ...string) *firewall.Elements {
	e := &firewall.Elements{}
	for _, s := range ss {
		if !strings.Contains(s, "/") {
			a := netip.MustParseAddr(s)
			s = netip.PrefixFrom(a, a.BitLen()).String()
		}
		e.Add(netip.MustParsePrefix(s))
	}
	return e
}

// nftSet is what `nft -j list set` says about a set.
type nftSet struct {
	Type  string            `json:"type"`
	Flags []string          `json:"flags"`
	Size  int               `json:"size"`
	Elem  []json.RawMessage `json:"elem"`
}

// listSet reads a set from the kernel with nft and returns its definition
// and its elements as strings: "192.0.2.1", "10.0.0.0/8",
// "10.0.0.0-11.0.255.255", sorted.
func listSet(t testing.TB, ns *fwtest.Netns, family, table, set string) (nftSet, []string) {
	t.Helper()
	out := ns.Run(t, "nft", "-j", "list", "set", family, table, set)
	var doc struct {
		Nftables []struct {
			Set *nftSet `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j output: %v\n%s", err, out)
	}
	for _, x := range doc.Nftables {
		if x.Set == nil {
			continue
		}
		var got []string
		for _, raw := range x.Set.Elem {
			got = append(got, elemString(t, raw))
		}
		slices.Sort(got)
		return *x.Set, got
	}
	t.Fatalf("no set in nft output:\n%s", out)
	return nftSet{}, nil
}

func elemString(t testing.TB, raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var v struct {
		Prefix *struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
		Range []string `json:"range"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("element %s: %v", raw, err)
	}
	switch {
	case v.Prefix != nil:
		return fmt.Sprintf("%s/%d", v.Prefix.Addr, v.Prefix.Len)
	case len(v.Range) == 2:
		return v.Range[0] + "-" + v.Range[1]
	}
	t.Fatalf("element %s: unknown form", raw)
	return ""
}

// wantSets checks the four blocking sets of table inet dynfw (names with
// prefix) against the expected elements, each list in any order.
func wantSets(t testing.TB, ns *fwtest.Netns, table, prefix string, want map[string][]string) {
	t.Helper()
	for _, name := range []string{"addr4", "addr6", "net4", "net6"} {
		_, got := listSet(t, ns, "inet", table, prefix+name)
		w := slices.Clone(want[name])
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("set %s: %q, want %q", name, got, w)
		}
	}
}

// member reports whether `nft get element` finds addr in the set.
func member(t testing.TB, ns *fwtest.Netns, table, set, addr string) bool {
	t.Helper()
	out, err := ns.Try("nft", "get", "element", "inet", table, set, "{ "+addr+" }")
	if err != nil && !strings.Contains(out, "No such file or directory") {
		t.Fatalf("nft get element %s %s: %v\n%s", set, addr, err, out)
	}
	return err == nil
}

// nftScript loads a ruleset fragment with nft -f.
func nftScript(t testing.TB, ns *fwtest.Netns, script string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "script.nft")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	ns.Run(t, "nft", "-f", f)
}

// rules returns the rules of a chain as nft prints them, one per line.
func rules(t testing.TB, ns *fwtest.Netns, family, table, chain string) []string {
	t.Helper()
	out := ns.Run(t, "nft", "list", "chain", family, table, chain)
	var rs []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if strings.Contains(l, "saddr") {
			rs = append(rs, l)
		}
	}
	return rs
}
