package file

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/firewall/fwtest"
)

// ipsetContents lists the sets in the namespace with their members, sorted.
func ipsetContents(t *testing.T, ns *fwtest.Netns) map[string][]string {
	t.Helper()
	sets := map[string][]string{}
	for l := range strings.Lines(ns.Run(t, "ipset", "save")) {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && f[0] == "create":
			sets[f[1]] = []string{}
		case len(f) == 3 && f[0] == "add":
			sets[f[1]] = append(sets[f[1]], f[2])
		}
	}
	for _, m := range sets {
		slices.Sort(m)
	}
	return sets
}

func sortedStrings(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	if s == nil {
		s = []string{}
	}
	return s
}

// TestIpsetRestore loads the ipset file with the real `ipset restore`,
// twice (the second time into existing sets that an iptables rule uses, if
// iptables is there), and checks the kernel's sets.
func TestIpsetRestore(t *testing.T) {
	ns := fwtest.NewNetns(t, "ipset")
	ctx := context.Background()
	b := newBackend(t, Config{Format: Ipset})
	names := DefaultIpsetSets
	// Sets as the ipset backend creates them, with a hashsize of their
	// own: the file's "create -exist" lines must accept them.
	for _, s := range [][]string{
		{names.Addr4, "hash:ip", "inet"}, {names.Addr6, "hash:ip", "inet6"},
		{names.Net4, "hash:net", "inet"}, {names.Net6, "hash:net", "inet6"},
	} {
		ns.Run(t, "ipset", "create", s[0], s[1], "family", s[2], "hashsize", "4096", "maxelem", "262144")
	}

	steps := []struct {
		name string
		set  []string
		want map[string][]string
	}{
		{"first", small, map[string][]string{
			names.Addr4: sortedStrings("1.2.3.4", "9.9.9.9", "10.0.0.1", "255.255.255.255"),
			names.Addr6: sortedStrings("2001:db8::1", "2001:db8::2", "2001:db8::10"),
			names.Net4:  sortedStrings("10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/24"),
			names.Net6:  sortedStrings("2001:db8::/32", "2001:db8:1::/48", "2a00::/16"),
		}},
		{"replaced", []string{"5.5.5.5", "0.0.0.0", "::", "0.0.0.0/0", "2001:db8::/33"}, map[string][]string{
			names.Addr4: sortedStrings("5.5.5.5"),
			names.Addr6: sortedStrings(),
			names.Net4:  sortedStrings("0.0.0.0/1", "128.0.0.0/1"),
			names.Net6:  sortedStrings("2001:db8::/33"),
		}},
		{"emptied", nil, map[string][]string{
			names.Addr4: {}, names.Addr6: {}, names.Net4: {}, names.Net6: {},
		}},
	}
	for i, st := range steps {
		if err := b.Replace(ctx, elems(t, st.set...)); err != nil {
			t.Fatal(err)
		}
		ns.Run(t, "ipset", "restore", "-file", b.cfg.Path)
		if got := ipsetContents(t, ns); fmt.Sprint(got) != fmt.Sprint(st.want) {
			t.Errorf("%s: kernel sets\n%v\nwant\n%v", st.name, got, st.want)
		}
		if i == 0 {
			if _, err := exec.LookPath("iptables"); err == nil {
				// A set in use by a rule cannot be destroyed or
				// recreated, only swapped: the next loads prove it.
				ns.Run(t, "iptables", "-A", "INPUT", "-m", "set", "--match-set", names.Addr4, "src", "-j", "DROP")
			}
		}
	}
}

// TestIpsetRestoreLarge loads a large file, which needs the maxelem the file
// declares (ipset's default is 65536).
func TestIpsetRestoreLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large set")
	}
	ns := fwtest.NewNetns(t, "ipset")
	b := newBackend(t, Config{Format: Ipset})
	e := random4(200_000)
	if err := b.Replace(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	ns.Run(t, "ipset", "restore", "-file", b.cfg.Path)
	out := ns.Run(t, "ipset", "list", "-terse", DefaultIpsetSets.Addr4)
	if !strings.Contains(out, "Number of entries: 200000") {
		t.Errorf("ipset list:\n%s", out)
	}
}

// nftElements lists a set's elements in the namespace, as nft -j shows
// them: addresses, "addr/len" for prefixes, "a-b" for ranges.
func nftElements(t *testing.T, ns *fwtest.Netns, table, set string) []string {
	t.Helper()
	var out struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(ns.Run(t, "nft", "-j", "list", "set", "inet", table, set)), &out); err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, o := range out.Nftables {
		if o.Set == nil {
			continue
		}
		for _, raw := range o.Set.Elem {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				got = append(got, s)
				continue
			}
			var el struct {
				Prefix *struct {
					Addr string `json:"addr"`
					Len  int    `json:"len"`
				} `json:"prefix"`
				Range []string `json:"range"`
			}
			if err := json.Unmarshal(raw, &el); err != nil {
				t.Fatalf("element %s: %v", raw, err)
			}
			switch {
			case el.Prefix != nil:
				got = append(got, fmt.Sprintf("%s/%d", el.Prefix.Addr, el.Prefix.Len))
			case len(el.Range) == 2:
				got = append(got, el.Range[0]+"-"+el.Range[1])
			default:
				t.Fatalf("element %s", raw)
			}
		}
	}
	slices.Sort(got)
	return got
}

// TestNftLoad checks the nft file with the real nft: `nft -c -f` (check
// mode) and then loading it, twice, into a namespace.
func TestNftLoad(t *testing.T) {
	ns := fwtest.NewNetns(t, "nft")
	ctx := context.Background()
	b := newBackend(t, Config{Format: Nft})
	steps := []struct {
		name string
		set  []string
		want map[string][]string
	}{
		{"first", small, map[string][]string{
			"addr4": sortedStrings("1.2.3.4", "9.9.9.9", "10.0.0.1", "255.255.255.255"),
			"addr6": sortedStrings("2001:db8::1", "2001:db8::2", "2001:db8::10"),
			"net4":  sortedStrings("10.0.0.0/8", "192.168.0.0/24"),
			"net6":  sortedStrings("2001:db8::/32", "2a00::/16"),
		}},
		// Adjacent prefixes are merged by nft (auto-merge); the set
		// is flushed first, so nothing of the first load remains.
		{"replaced", []string{"5.5.5.5", "10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/26", "0.0.0.0/0", "0.0.0.0"}, map[string][]string{
			"addr4": sortedStrings("0.0.0.0", "5.5.5.5"),
			"addr6": sortedStrings(),
			"net4":  sortedStrings("0.0.0.0/0"),
			"net6":  sortedStrings(),
		}},
		{"adjacent", []string{"10.0.0.0/25", "10.0.0.128/25"}, map[string][]string{
			"addr4": {}, "addr6": {},
			"net4": sortedStrings("10.0.0.0/24"),
			"net6": {},
		}},
		{"emptied", nil, map[string][]string{"addr4": {}, "addr6": {}, "net4": {}, "net6": {}}},
	}
	for _, st := range steps {
		if err := b.Replace(ctx, elems(t, st.set...)); err != nil {
			t.Fatal(err)
		}
		ns.Run(t, "nft", "-c", "-f", b.cfg.Path)
		ns.Run(t, "nft", "-f", b.cfg.Path)
		for set, want := range st.want {
			if got := nftElements(t, ns, "dynfw", set); !slices.Equal(got, want) {
				t.Errorf("%s: set %s holds %q, want %q", st.name, set, got, want)
			}
		}
	}
}

// TestNftLoadLarge loads a large file with many statements and many
// overlapping prefixes.
func TestNftLoadLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large set")
	}
	ns := fwtest.NewNetns(t, "nft")
	e := random4(100_000)
	for i := range 5000 {
		a := firewall.AddrFrom4(e.Addr4[i])
		e.Nets = append(e.Nets, netip.PrefixFrom(a, 8+i%20).Masked())
	}
	b := newBackend(t, Config{Format: Nft})
	if err := b.Replace(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	ns.Run(t, "nft", "-f", b.cfg.Path)
	if n := len(nftElements(t, ns, "dynfw", "addr4")); n != 100_000 {
		t.Errorf("addr4 holds %d elements, want 100000", n)
	}
}
