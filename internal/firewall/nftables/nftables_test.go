package nftables

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/firewall/netlink"
	"golang.org/x/sys/unix"
)

var ctx = context.Background()

var dropRules = []string{
	"ip saddr @allow4 accept",
	"ip6 saddr @allow6 accept",
	"ip saddr @addr4 counter packets 0 bytes 0 drop",
	"ip saddr @net4 counter packets 0 bytes 0 drop",
	"ip6 saddr @addr6 counter packets 0 bytes 0 drop",
	"ip6 saddr @net6 counter packets 0 bytes 0 drop",
}

func TestSetupFromScratch(t *testing.T) {
	ns := newNS(t)
	b := open(t, ns, Config{})
	if b.Name() != "nftables" {
		t.Errorf("Name = %q", b.Name())
	}
	for name, want := range map[string]struct {
		typ      string
		interval bool
	}{
		"addr4": {"ipv4_addr", false}, "addr6": {"ipv6_addr", false},
		"net4": {"ipv4_addr", true}, "net6": {"ipv6_addr", true},
		"allow4": {"ipv4_addr", true}, "allow6": {"ipv6_addr", true},
	} {
		s, el := listSet(t, ns, "inet", "dynfw", name)
		if s.Type != want.typ || slices.Contains(s.Flags, "interval") != want.interval || len(el) != 0 {
			t.Errorf("set %s: %+v %v", name, s, el)
		}
		if !want.interval && s.Size != minCapacity {
			t.Errorf("set %s: size %d, want %d", name, s.Size, minCapacity)
		}
	}
	out := ns.Run(t, "nft", "list", "chain", "inet", "dynfw", "input")
	if !strings.Contains(out, "type filter hook input priority filter - 5; policy accept;") {
		t.Errorf("chain input:\n%s", out)
	}
	if got := rules(t, ns, "inet", "dynfw", "input"); !slices.Equal(got, dropRules) {
		t.Errorf("rules:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(dropRules, "\n"))
	}
	if out, err := ns.Try("nft", "list", "chain", "inet", "dynfw", "forward"); err == nil {
		t.Errorf("forward chain without Forward:\n%s", out)
	}
	// Fresh sets are known to be empty: deltas may come before a list.
	if err := b.Apply(ctx, elems("192.0.2.1"), nil); err != nil {
		t.Fatal(err)
	}
	wantSets(t, ns, "dynfw", "", map[string][]string{"addr4": {"192.0.2.1"}})
}

func TestForwardAndPriority(t *testing.T) {
	ns := newNS(t)
	open(t, ns, Config{Forward: true, Priority: 10, Table: "sentinel"})
	for _, c := range []string{"input", "forward"} {
		out := ns.Run(t, "nft", "list", "chain", "inet", "sentinel", c)
		if !strings.Contains(out, "type filter hook "+c+" priority filter + 10; policy accept;") {
			t.Errorf("chain %s:\n%s", c, out)
		}
		if got := rules(t, ns, "inet", "sentinel", c); !slices.Equal(got, dropRules) {
			t.Errorf("chain %s rules:\n%s", c, strings.Join(got, "\n"))
		}
	}
}

func TestAllowList(t *testing.T) {
	ns := newNS(t)
	allow := pfx("192.0.2.0/25", "192.0.2.128/25", "198.51.100.7/32", "2001:db8::/64", "2001:db8::1/128")
	b := open(t, ns, Config{Allow: allow, Forward: true})
	if _, got := listSet(t, ns, "inet", "dynfw", "allow4"); !slices.Equal(got, []string{"192.0.2.0/24", "198.51.100.7"}) {
		t.Errorf("allow4 = %q", got)
	}
	if _, got := listSet(t, ns, "inet", "dynfw", "allow6"); !slices.Equal(got, []string{"2001:db8::/64"}) {
		t.Errorf("allow6 = %q", got)
	}
	// The allow-list does not remove anything from the blocking sets: it
	// is checked by the rules, first.
	if err := b.Replace(ctx, elems("192.0.2.5", "198.51.0.0/16")); err != nil {
		t.Fatal(err)
	}
	wantSets(t, ns, "dynfw", "", map[string][]string{"addr4": {"192.0.2.5"}, "net4": {"198.51.0.0/16"}})
	for _, c := range []string{"input", "forward"} {
		got := rules(t, ns, "inet", "dynfw", c)
		if len(got) != 6 || !strings.HasSuffix(got[0], "@allow4 accept") || !strings.HasSuffix(got[1], "@allow6 accept") {
			t.Errorf("chain %s: allow rules not first:\n%s", c, strings.Join(got, "\n"))
		}
	}
	b.Close(true)
	// A new configuration replaces the allow-list of the leftover table.
	open(t, ns, Config{Allow: pfx("203.0.113.0/24")})
	if _, got := listSet(t, ns, "inet", "dynfw", "allow4"); !slices.Equal(got, []string{"203.0.113.0/24"}) {
		t.Errorf("allow4 after restart = %q", got)
	}
	if _, got := listSet(t, ns, "inet", "dynfw", "allow6"); len(got) != 0 {
		t.Errorf("allow6 after restart = %q", got)
	}
}

func TestSequences(t *testing.T) {
	ns := newNS(t)
	b := open(t, ns, Config{})
	type step struct {
		name      string
		replace   *firewall.Elements
		add, del  *firewall.Elements
		want      map[string][]string
		in, notIn map[string][]string // set -> addresses
	}
	steps := []step{
		{
			name:    "first list",
			replace: elems("192.0.2.1", "192.0.2.2", "2001:db8::1", "10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/16", "2001:db8:1::/64", "2001:db8:1:1::/64"),
			want: map[string][]string{
				"addr4": {"192.0.2.1", "192.0.2.2"}, "addr6": {"2001:db8::1"},
				"net4": {"10.0.0.0-11.0.255.255"}, "net6": {"2001:db8:1::/63"},
			},
			in:    map[string][]string{"net4": {"10.1.2.3", "11.0.5.5", "10.0.0.0"}, "net6": {"2001:db8:1:1::99"}, "addr4": {"192.0.2.1"}},
			notIn: map[string][]string{"net4": {"11.1.0.0", "9.255.255.255"}, "net6": {"2001:db8:1:2::"}, "addr4": {"192.0.2.3"}},
		},
		{
			name: "a prefix removed while an overlapping one stays",
			del:  elems("10.0.0.0/8"),
			want: map[string][]string{
				"addr4": {"192.0.2.1", "192.0.2.2"}, "addr6": {"2001:db8::1"},
				"net4": {"10.1.0.0/16", "11.0.0.0/16"}, "net6": {"2001:db8:1::/63"},
			},
			in:    map[string][]string{"net4": {"10.1.2.3", "11.0.0.1"}},
			notIn: map[string][]string{"net4": {"10.2.0.1", "10.0.0.1"}},
		},
		{
			name: "adjacent halves, single addresses, IPv6",
			add:  elems("10.0.0.0/9", "10.128.0.0/9", "192.0.2.3", "2001:db8::2"),
			del:  elems("2001:db8:1::/64", "192.0.2.1"),
			want: map[string][]string{
				"addr4": {"192.0.2.2", "192.0.2.3"}, "addr6": {"2001:db8::1", "2001:db8::2"},
				"net4": {"10.0.0.0-11.0.255.255"}, "net6": {"2001:db8:1:1::/64"},
			},
			in:    map[string][]string{"net4": {"10.200.0.1"}, "addr4": {"192.0.2.3"}},
			notIn: map[string][]string{"addr4": {"192.0.2.1"}, "net6": {"2001:db8:1::1"}},
		},
		{
			name: "covered prefix removed: nothing changes in the kernel",
			del:  elems("10.1.0.0/16"),
			want: map[string][]string{
				"addr4": {"192.0.2.2", "192.0.2.3"}, "addr6": {"2001:db8::1", "2001:db8::2"},
				"net4": {"10.0.0.0-11.0.255.255"}, "net6": {"2001:db8:1:1::/64"},
			},
			in: map[string][]string{"net4": {"10.1.0.1"}},
		},
		{
			name: "one half removed",
			del:  elems("10.0.0.0/9"),
			want: map[string][]string{
				"addr4": {"192.0.2.2", "192.0.2.3"}, "addr6": {"2001:db8::1", "2001:db8::2"},
				"net4": {"10.128.0.0-11.0.255.255"}, "net6": {"2001:db8:1:1::/64"},
			},
			notIn: map[string][]string{"net4": {"10.1.0.1"}},
		},
		{
			name: "the ends of the address space",
			add:  elems("255.255.255.0/24", "0.0.0.0/8", "ffff::/16", "::/16"),
			want: map[string][]string{
				"addr4": {"192.0.2.2", "192.0.2.3"}, "addr6": {"2001:db8::1", "2001:db8::2"},
				"net4": {"0.0.0.0/8", "10.128.0.0-11.0.255.255", "255.255.255.0/24"},
				"net6": {"::/16", "2001:db8:1:1::/64", "ffff::/16"},
			},
			in:    map[string][]string{"net4": {"255.255.255.255", "0.0.0.0", "0.0.0.1"}, "net6": {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::1"}},
			notIn: map[string][]string{"net4": {"1.0.0.0", "255.255.254.255"}},
		},
		{
			name: "and gone again",
			del:  elems("255.255.255.0/24", "0.0.0.0/8", "ffff::/16", "::/16"),
			want: map[string][]string{
				"addr4": {"192.0.2.2", "192.0.2.3"}, "addr6": {"2001:db8::1", "2001:db8::2"},
				"net4": {"10.128.0.0-11.0.255.255"}, "net6": {"2001:db8:1:1::/64"},
			},
			notIn: map[string][]string{"net4": {"255.255.255.255", "0.0.0.0"}},
		},
		{
			name:    "replace over existing contents",
			replace: elems("198.51.100.1", "172.16.0.0/12"),
			want:    map[string][]string{"addr4": {"198.51.100.1"}, "net4": {"172.16.0.0/12"}},
			notIn:   map[string][]string{"addr4": {"192.0.2.2"}, "net4": {"10.200.0.1"}},
		},
		{
			name:    "replace with nothing",
			replace: &firewall.Elements{},
			want:    map[string][]string{},
		},
	}
	for _, s := range steps {
		var err error
		if s.replace != nil {
			err = b.Replace(ctx, s.replace)
		} else {
			err = b.Apply(ctx, s.add, s.del)
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		wantSets(t, ns, "dynfw", "", s.want)
		for set, as := range s.in {
			for _, a := range as {
				if !member(t, ns, "dynfw", set, a) {
					t.Errorf("%s: %s not in %s", s.name, a, set)
				}
			}
		}
		for set, as := range s.notIn {
			for _, a := range as {
				if member(t, ns, "dynfw", set, a) {
					t.Errorf("%s: %s in %s", s.name, a, set)
				}
			}
		}
		if t.Failed() {
			t.Fatalf("after step %q", s.name)
		}
	}
}

// TestReplaceIsOneTransaction watches the kernel's change events while a
// Replace swaps one list for another: all of it must be one transaction
// (one generation), and the old elements are gone afterwards.
func TestReplaceIsOneTransaction(t *testing.T) {
	ns := newNS(t)
	b := open(t, ns, Config{})
	old := &firewall.Elements{Addr4: seqAddrs(0x0a000000, 3000), Nets: pfx("172.16.0.0/12")}
	if err := b.Replace(ctx, old); err != nil {
		t.Fatal(err)
	}
	cur := &firewall.Elements{Addr4: seqAddrs(0x0b000000, 3000), Nets: pfx("192.168.0.0/16")}
	gensBefore := generation(t, b)
	if err := b.Replace(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if g := generation(t, b); g != gensBefore+1 {
		t.Errorf("generation went from %d to %d: Replace was not one transaction", gensBefore, g)
	}
	_, got := listSet(t, ns, "inet", "dynfw", "addr4")
	if len(got) != 3000 || !slices.Contains(got, "11.0.0.0") || slices.Contains(got, "10.0.0.0") {
		t.Errorf("addr4 after Replace: %d elements, first %v", len(got), got[:min(3, len(got))])
	}
	wantNet := []string{"192.168.0.0/16"}
	if _, got := listSet(t, ns, "inet", "dynfw", "net4"); !slices.Equal(got, wantNet) {
		t.Errorf("net4 = %v", got)
	}
}

// generation reads the ruleset generation (NFT_MSG_GETGEN), which each
// committed transaction increments by one.
func generation(t testing.TB, b *Backend) uint32 {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var gen uint32
	err := b.c.query(unix.NFT_MSG_GETGEN, false, unix.AF_UNSPEC, nil, func(m netlink.Message) error {
		for typ, v := range netlink.Attrs(m.Body) {
			if typ == 1 { // NFTA_GEN_ID
				gen = netlink.BE32(v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("NFT_MSG_GETGEN: %v", err)
	}
	return gen
}

func seqAddrs(start uint32, n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = start + uint32(i)
	}
	return out
}

func TestApplyErrorsAreAtomic(t *testing.T) {
	ns := newNS(t)
	b := open(t, ns, Config{})
	// Duplicates in a full list are harmless.
	if err := b.Replace(ctx, elems("192.0.2.1", "2001:db8::1", "10.0.0.0/8", "192.0.2.1", "10.0.0.0/8")); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"addr4": {"192.0.2.1"}, "addr6": {"2001:db8::1"}, "net4": {"10.0.0.0/8"}}

	// Deleting an absent address: the kernel refuses, names the element,
	// and nothing of the batch is applied.
	err := b.Apply(ctx, elems("192.0.2.50", "2001:db8::50", "12.0.0.0/8"), elems("192.0.2.1", "192.0.2.99"))
	var oe *OpError
	if !errors.Is(err, unix.ENOENT) || !errors.As(err, &oe) || oe.Element != "192.0.2.99" || !strings.Contains(oe.Op, "delete elements from set inet dynfw addr4") {
		t.Fatalf("Apply deleting an absent address: %v", err)
	}
	wantSets(t, ns, "dynfw", "", want)

	// Adding a present address: EEXIST (NLM_F_EXCL), nothing applied.
	err = b.Apply(ctx, elems("2001:db8::1", "192.0.2.60"), elems("192.0.2.1"))
	if !errors.Is(err, unix.EEXIST) || !errors.As(err, &oe) || oe.Element != "2001:db8::1" {
		t.Fatalf("Apply adding a present address: %v", err)
	}
	wantSets(t, ns, "dynfw", "", want)

	// Prefixes are checked in memory before anything is sent.
	if err := b.Apply(ctx, elems("192.0.2.70"), elems("11.0.0.0/8")); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("Apply deleting an absent prefix: %v", err)
	}
	if err := b.Apply(ctx, elems("10.0.0.0/8"), nil); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("Apply adding a present prefix: %v", err)
	}
	wantSets(t, ns, "dynfw", "", want)

	// After the errors the backend is still in step with the kernel.
	if err := b.Apply(ctx, elems("10.0.0.0/7"), elems("10.0.0.0/8", "192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	wantSets(t, ns, "dynfw", "", map[string][]string{"addr6": {"2001:db8::1"}, "net4": {"10.0.0.0/7"}})
}

func TestLeftoverTableIsReused(t *testing.T) {
	ns := newNS(t)
	b := open(t, ns, Config{Forward: true})
	if err := b.Replace(ctx, elems("192.0.2.1", "10.0.0.0/8", "2001:db8::/64")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(true); err != nil {
		t.Fatal(err)
	}
	if err := b.Replace(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Replace after Close: %v", err)
	}
	if err := b.Close(true); err != nil {
		t.Errorf("second Close: %v", err)
	}
	want := map[string][]string{"addr4": {"192.0.2.1"}, "net4": {"10.0.0.0/8"}, "net6": {"2001:db8::/64"}}
	wantSets(t, ns, "dynfw", "", want)

	// A new run reuses the table: the old list stays enforced until the
	// first Replace, rules are not duplicated.
	b = open(t, ns, Config{Forward: true})
	wantSets(t, ns, "dynfw", "", want)
	for _, c := range []string{"input", "forward"} {
		if got := rules(t, ns, "inet", "dynfw", c); !slices.Equal(got, dropRules) {
			t.Errorf("chain %s after restart:\n%s", c, strings.Join(got, "\n"))
		}
	}
	// Contents unknown: deltas wait for a Replace.
	if err := b.Apply(ctx, elems("192.0.2.2"), nil); !errors.Is(err, ErrNeedReplace) {
		t.Errorf("Apply before Replace on a reused table: %v", err)
	}
	if err := b.Replace(ctx, elems("192.0.2.2")); err != nil {
		t.Fatal(err)
	}
	wantSets(t, ns, "dynfw", "", map[string][]string{"addr4": {"192.0.2.2"}})
	if err := b.Apply(ctx, elems("192.0.2.3"), nil); err != nil {
		t.Fatal(err)
	}
	b.Close(true)

	// Without Forward the forward chain of the earlier run goes away.
	open(t, ns, Config{})
	if out, err := ns.Try("nft", "list", "chain", "inet", "dynfw", "forward"); err == nil {
		t.Errorf("forward chain left over:\n%s", out)
	}
	wantSets(t, ns, "dynfw", "", map[string][]string{"addr4": {"192.0.2.2", "192.0.2.3"}})
}

// TestLeftoverTableRepaired starts from a table of the same name whose
// sets and chains differ from ours: New fixes it in one transaction.
func TestLeftoverTableRepaired(t *testing.T) {
	ns := newNS(t)
	script := `
table inet dynfw {
	set addr4 { type ipv6_addr; }
	set stray { type ipv4_addr; elements = { 1.1.1.1 } }
	set net4 { type ipv4_addr; flags interval; elements = { 10.0.0.0/8 } }
	chain input { type filter hook input priority 0; policy accept; ip6 saddr @addr4 drop; }
	chain helper { ip saddr @stray drop; }
	chain forward { type filter hook forward priority -5; policy drop; jump helper; }
}`
	nftScript(t, ns, script)
	b := open(t, ns, Config{})
	out := ns.Run(t, "nft", "list", "table", "inet", "dynfw")
	for _, gone := range []string{"stray", "helper", "chain forward", "priority filter;"} {
		if strings.Contains(out, gone) {
			t.Errorf("%q still there:\n%s", gone, out)
		}
	}
	if got := rules(t, ns, "inet", "dynfw", "input"); !slices.Equal(got, dropRules) {
		t.Errorf("rules:\n%s", strings.Join(got, "\n"))
	}
	if s, _ := listSet(t, ns, "inet", "dynfw", "addr4"); s.Type != "ipv4_addr" {
		t.Errorf("addr4 has type %s", s.Type)
	}
	// net4 matched our definition and was kept with its contents.
	if _, got := listSet(t, ns, "inet", "dynfw", "net4"); !slices.Equal(got, []string{"10.0.0.0/8"}) {
		t.Errorf("net4 = %v", got)
	}
	if err := b.Replace(ctx, elems("10.0.0.0/9")); err != nil {
		t.Fatal(err)
	}
	wantSets(t, ns, "dynfw", "", map[string][]string{"net4": {"10.0.0.0/9"}})
}

func TestClose(t *testing.T) {
	ns := newNS(t)
	b := open(t, ns, Config{Forward: true})
	if err := b.Replace(ctx, elems("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	ns.Run(t, "nft", "add", "table", "inet", "other")
	if err := b.Close(false); err != nil {
		t.Fatal(err)
	}
	out := ns.Run(t, "nft", "list", "tables")
	if strings.Contains(out, "dynfw") || !strings.Contains(out, "table inet other") {
		t.Errorf("tables after Close(false):\n%s", out)
	}
	if _, err := b.Counters(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Counters after Close: %v", err)
	}
	// Close(false) when someone else already removed the table.
	b = open(t, ns, Config{})
	ns.Run(t, "nft", "delete", "table", "inet", "dynfw")
	if err := b.Close(false); err != nil {
		t.Errorf("Close(false) of a vanished table: %v", err)
	}
}

func TestSelfHealAfterTableDeleted(t *testing.T) {
	ns := newNS(t)
	b := open(t, ns, Config{})
	if err := b.Replace(ctx, elems("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	ns.Run(t, "nft", "delete", "table", "inet", "dynfw")
	if err := b.Apply(ctx, elems("192.0.2.2"), nil); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("Apply into a deleted table: %v", err)
	}
	// The client answers a failed Apply with a Replace, which rebuilds.
	if err := b.Replace(ctx, elems("192.0.2.1", "192.0.2.2")); err != nil {
		t.Fatal(err)
	}
	wantSets(t, ns, "dynfw", "", map[string][]string{"addr4": {"192.0.2.1", "192.0.2.2"}})
	if got := rules(t, ns, "inet", "dynfw", "input"); len(got) != 6 {
		t.Errorf("rules after rebuild:\n%s", strings.Join(got, "\n"))
	}
}

const fw4Script = `
table inet fw4 {
	chain input { type filter hook input priority filter; policy accept; ct state established,related accept; }
	chain forward { type filter hook forward priority filter; policy accept; }
}`

func TestSetOnly(t *testing.T) {
	ns := newNS(t)
	if _, err := New(ctx, Config{SetOnly: true, NetNS: int(ns.File.Fd())}); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("set-only without the table: %v", err)
	}
	nftScript(t, ns, fw4Script)
	before := ns.Run(t, "nft", "list", "chains")
	b := open(t, ns, Config{SetOnly: true, Allow: pfx("192.0.2.0/24")})
	if after := ns.Run(t, "nft", "list", "chains"); after != before {
		t.Errorf("chains changed in set-only mode:\n%s\nwas\n%s", after, before)
	}
	if out := ns.Run(t, "nft", "list", "table", "inet", "fw4"); strings.Contains(out, "@dynfw_") {
		t.Errorf("rules added in set-only mode:\n%s", out)
	}
	if _, got := listSet(t, ns, "inet", "fw4", "dynfw_allow4"); !slices.Equal(got, []string{"192.0.2.0/24"}) {
		t.Errorf("dynfw_allow4 = %v", got)
	}
	if err := b.Replace(ctx, elems("198.51.100.1", "2001:db8::1", "10.0.0.0/8", "2001:db8:1::/64")); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"addr4": {"198.51.100.1"}, "addr6": {"2001:db8::1"}, "net4": {"10.0.0.0/8"}, "net6": {"2001:db8:1::/64"}}
	wantSets(t, ns, "fw4", "dynfw_", want)
	if err := b.Apply(ctx, elems("198.51.100.2"), elems("10.0.0.0/8")); err != nil {
		t.Fatal(err)
	}
	want["addr4"] = []string{"198.51.100.1", "198.51.100.2"}
	want["net4"] = nil
	wantSets(t, ns, "fw4", "dynfw_", want)
	if c, err := b.Counters(ctx); err != nil || c != nil {
		t.Errorf("Counters in set-only mode: %v %v", c, err)
	}
	if err := b.Close(true); err != nil {
		t.Fatal(err)
	}
	wantSets(t, ns, "fw4", "dynfw_", want)

	// The system firewall reloads (fw4 re-creates its table): a Replace
	// puts our sets back.
	b = open(t, ns, Config{SetOnly: true})
	ns.Run(t, "nft", "delete", "table", "inet", "fw4")
	nftScript(t, ns, fw4Script)
	if err := b.Replace(ctx, elems("198.51.100.3")); err != nil {
		t.Fatal(err)
	}
	wantSets(t, ns, "fw4", "dynfw_", map[string][]string{"addr4": {"198.51.100.3"}})

	// Close(false): the sets we created go, the table and its chains stay.
	if err := b.Close(false); err != nil {
		t.Fatal(err)
	}
	out := ns.Run(t, "nft", "list", "table", "inet", "fw4")
	if strings.Contains(out, "dynfw_") || !strings.Contains(out, "chain input") {
		t.Errorf("after Close(false):\n%s", out)
	}
}

// TestSetOnlyInUse: when a rule of the system firewall uses our sets,
// Close(false) empties them instead of deleting them; a set the system
// declared itself is reused and never deleted.
func TestSetOnlyInUse(t *testing.T) {
	ns := newNS(t)
	script := `
table ip filter {
	set dynfw_net4 { type ipv4_addr; flags interval; }
	chain input { type filter hook input priority filter; policy accept; }
}`
	nftScript(t, ns, script)
	b := open(t, ns, Config{SetOnly: true, Table: "filter", Family: "ip"})
	ns.Run(t, "nft", "add", "rule", "ip", "filter", "input", "ip", "saddr", "@dynfw_addr4", "drop")
	if err := b.Replace(ctx, elems("198.51.100.1", "10.0.0.0/8", "2001:db8::1")); err != nil {
		t.Fatal(err)
	}
	if _, got := listSet(t, ns, "ip", "filter", "dynfw_addr4"); !slices.Equal(got, []string{"198.51.100.1"}) {
		t.Errorf("dynfw_addr4 = %v", got)
	}
	if _, got := listSet(t, ns, "ip", "filter", "dynfw_net4"); !slices.Equal(got, []string{"10.0.0.0/8"}) {
		t.Errorf("dynfw_net4 = %v", got)
	}
	if out, err := ns.Try("nft", "list", "set", "ip", "filter", "dynfw_addr6"); err == nil {
		t.Errorf("IPv6 set in an ip table:\n%s", out)
	}
	if err := b.Close(false); err != nil {
		t.Fatal(err)
	}
	out := ns.Run(t, "nft", "list", "table", "ip", "filter")
	for _, s := range []string{"set dynfw_addr4", "set dynfw_net4", "@dynfw_addr4"} {
		if !strings.Contains(out, s) {
			t.Errorf("%q gone after Close(false):\n%s", s, out)
		}
	}
	// dynfw_allow4 was ours and unused: deleted. dynfw_net4 was the
	// system's and dynfw_addr4 is in use: emptied.
	if strings.Contains(out, "198.51.100.1") || strings.Contains(out, "10.0.0.0") || strings.Contains(out, "dynfw_allow4") {
		t.Errorf("sets not emptied or not deleted:\n%s", out)
	}
}

func TestSetOnlyIncompatibleSet(t *testing.T) {
	ns := newNS(t)
	script := "table inet fw4 {\n set dynfw_addr4 { type ipv4_addr; flags interval; }\n}\n"
	nftScript(t, ns, script)
	_, err := New(ctx, Config{SetOnly: true, NetNS: int(ns.File.Fd())})
	if !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "dynfw_addr4") {
		t.Fatalf("New with an incompatible set: %v", err)
	}
}

func TestFamilyIP(t *testing.T) {
	ns := newNS(t)
	b := open(t, ns, Config{Family: "ip"})
	if err := b.Replace(ctx, elems("192.0.2.1", "2001:db8::1", "10.0.0.0/8", "2001:db8:1::/64")); err != nil {
		t.Fatal(err)
	}
	if _, got := listSet(t, ns, "ip", "dynfw", "addr4"); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("addr4 = %v", got)
	}
	got := rules(t, ns, "ip", "dynfw", "input")
	want := []string{"ip saddr @allow4 accept", "ip saddr @addr4 counter packets 0 bytes 0 drop", "ip saddr @net4 counter packets 0 bytes 0 drop"}
	if !slices.Equal(got, want) {
		t.Errorf("rules:\n%s", strings.Join(got, "\n"))
	}
	if err := b.Apply(ctx, elems("2001:db8::2", "192.0.2.2"), elems("2001:db8::1")); err != nil {
		t.Fatal(err)
	}
	if _, got := listSet(t, ns, "ip", "dynfw", "addr4"); !slices.Equal(got, []string{"192.0.2.1", "192.0.2.2"}) {
		t.Errorf("addr4 = %v", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Family: "bridge"},
		{SetOnly: true, Forward: true},
		{Allow: []netip.Prefix{{}}},
		{Table: strings.Repeat("x", 300)},
	} {
		if _, err := New(ctx, cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := New(c, Config{}); !errors.Is(err, context.Canceled) {
		t.Errorf("New with a cancelled context: %v", err)
	}
}

// TestCapacity: hash sets are sized for the list; a delta that would
// overflow the size fails before anything is sent, and the next Replace
// sizes the set for the bigger list.
func TestCapacity(t *testing.T) {
	ns := newNS(t)
	b := open(t, ns, Config{})
	if err := b.Replace(ctx, &firewall.Elements{Addr4: seqAddrs(0x0a000000, 100)}); err != nil {
		t.Fatal(err)
	}
	if s, _ := listSet(t, ns, "inet", "dynfw", "addr4"); s.Size != minCapacity {
		t.Errorf("size %d, want %d", s.Size, minCapacity)
	}
	add := &firewall.Elements{Addr4: seqAddrs(0x0b000000, minCapacity-100+1)}
	if err := b.Apply(ctx, add, nil); !errors.Is(err, unix.ENFILE) {
		t.Fatalf("Apply past the size: %v", err)
	}
	if _, got := listSet(t, ns, "inet", "dynfw", "addr4"); len(got) != 100 {
		t.Errorf("%d elements after a refused Apply", len(got))
	}
	// Exactly full is fine.
	add.Addr4 = add.Addr4[1:]
	if err := b.Apply(ctx, add, nil); err != nil {
		t.Fatal(err)
	}
	all := append(seqAddrs(0x0a000000, 100), add.Addr4...)
	all = append(all, 0x0c000000)
	if err := b.Replace(ctx, &firewall.Elements{Addr4: all}); err != nil {
		t.Fatal(err)
	}
	s, got := listSet(t, ns, "inet", "dynfw", "addr4")
	if s.Size != capacityFor(len(all)) || len(got) != len(all) {
		t.Errorf("after Replace: size %d with %d elements, want %d with %d", s.Size, len(got), capacityFor(len(all)), len(all))
	}
}

// TestBigBatch sends a batch bigger than the socket's default buffer and
// than bigBatch (the mmap path), in chunked messages.
func TestBigBatch(t *testing.T) {
	ns := newNS(t)
	b := open(t, ns, Config{})
	const n = 80000
	e := &firewall.Elements{Addr4: seqAddrs(0x0a000000, n)}
	for i := range 20000 {
		e.Addr6 = append(e.Addr6, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}).As16())
	}
	for i := range 5000 {
		e.Nets = append(e.Nets, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16 + byte(i>>8), byte(i), 0}), 24))
	}
	if err := b.Replace(ctx, e); err != nil {
		t.Fatal(err)
	}
	_, got4 := listSet(t, ns, "inet", "dynfw", "addr4")
	_, got6 := listSet(t, ns, "inet", "dynfw", "addr6")
	_, gotNet := listSet(t, ns, "inet", "dynfw", "net4")
	if len(got4) != n || len(got6) != 20000 || len(gotNet) != 1 || gotNet[0] != "172.16.0.0-172.35.135.255" {
		t.Errorf("got %d, %d, %v", len(got4), len(got6), gotNet[:min(3, len(gotNet))])
	}
	for _, a := range []string{"10.0.0.0", "10.1.56.127"} {
		if !member(t, ns, "dynfw", "addr4", a) {
			t.Errorf("%s missing", a)
		}
	}
	if member(t, ns, "dynfw", "addr4", "10.1.56.128") {
		t.Errorf("10.1.56.128 present")
	}
	if b.small != nil && cap(b.small) > netlink.BigBatch {
		t.Errorf("a %d-byte buffer kept after a big batch", cap(b.small))
	}
}

func TestCountersCarryOver(t *testing.T) {
	ns := newNS(t)
	b := open(t, ns, Config{})
	// Put values into the counters by hand: a rule replaced with nft
	// would lose them, ours must carry them across Replace and restart.
	c, err := b.Counters(ctx)
	if err != nil || len(c) != 2 || c[0] != (Counter{Chain: "input", Family: "ipv4"}) || c[1] != (Counter{Chain: "input", Family: "ipv6"}) {
		t.Fatalf("Counters = %+v, %v", c, err)
	}
	b.mu.Lock()
	bt := b.c.newBatch(4096, nil)
	b.flushChain(bt, "input")
	b.addRules(bt, b.chains[0], map[string]ruleInfo{
		ruleKey("input", "addr4"): {packets: 3, bytes: 300},
		ruleKey("input", "net4"):  {packets: 4, bytes: 400},
		ruleKey("input", "net6"):  {packets: 5, bytes: 500},
	})
	err = b.c.transact(bt)
	b.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	want := []Counter{{"input", "ipv4", 7, 700}, {"input", "ipv6", 5, 500}}
	check := func(when string) {
		t.Helper()
		c, err := b.Counters(ctx)
		if err != nil || !slices.Equal(c, want) {
			t.Errorf("%s: Counters = %+v, %v; want %+v", when, c, err, want)
		}
	}
	check("set by hand")
	if err := b.Replace(ctx, elems("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	check("after Replace")
	b.Close(true)
	b = open(t, ns, Config{})
	check("after restart")
}
