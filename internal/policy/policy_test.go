package policy

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall"

	"github.com/dynfw/sentinel/internal/testenv"
)

// pfx parses an address or a prefix of a fixture.
var pfx = testenv.Prefix

// kernel simulates a backend: it fails the test when asked to add an
// element it holds or delete one it lacks, as the Backend contract forbids.
type kernel map[netip.Prefix]bool

func (k kernel) apply(t *testing.T) func(add, del *firewall.Elements) {
	return func(add, del *firewall.Elements) { k.check(t, add, del) }
}

func (k kernel) check(t *testing.T, add, del *firewall.Elements) {
	t.Helper()
	for _, p := range del.Prefixes() {
		if !k[p] {
			t.Fatalf("delete of absent element %v", p)
		}
		delete(k, p)
	}
	for _, p := range add.Prefixes() {
		if k[p] {
			t.Fatalf("add of present element %v", p)
		}
		k[p] = true
	}
}

func (k kernel) sorted() []string {
	var out []string
	for p := range k {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

// want computes the elements of a list of entries from scratch.
func want(cfg Config, entries []netip.Prefix) []string {
	s := New(cfg)
	set := map[string]bool{}
	for _, p := range entries {
		if s.Check(p) != NotSkipped {
			continue
		}
		el, _ := s.element(p)
		set[el.String()] = true
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func list(ps ...string) func(func(netip.Prefix)) {
	return func(f func(netip.Prefix)) {
		for _, p := range ps {
			f(pfx(p))
		}
	}
}

func TestExpansionIsReferenceCounted(t *testing.T) {
	s := New(Config{IPv6Prefix: 64})
	k := kernel{}
	add, del := s.Apply([]Change{{true, pfx("2001:db8::1")}, {true, pfx("2001:db8::2")}}, nil)
	k.check(t, add, del)
	if got := k.sorted(); !slices.Equal(got, []string{"2001:db8::/64"}) {
		t.Fatalf("after two adds: %v", got)
	}
	add, del = s.Apply([]Change{{false, pfx("2001:db8::1")}}, nil)
	k.check(t, add, del)
	if add.Len()+del.Len() != 0 || len(k) != 1 {
		t.Fatalf("removing one of two neighbours unblocked the /64: +%v -%v", add.Prefixes(), del.Prefixes())
	}
	add, del = s.Apply([]Change{{false, pfx("2001:db8::2")}}, nil)
	k.check(t, add, del)
	if len(k) != 0 {
		t.Fatalf("the /64 stays after its last address left: %v", k.sorted())
	}
}

func TestAllowListAndNoIPv6(t *testing.T) {
	var skipped []string
	s := New(Config{Allow: []netip.Prefix{pfx("192.168.0.0/16"), pfx("2001:db8:1::/48")}, NoIPv6: false, AllowPrivate: true})
	add, _ := s.Apply([]Change{
		{true, pfx("192.168.1.1")},    // inside the allow-list
		{true, pfx("192.168.0.0/24")}, // inside too
		{true, pfx("192.0.0.0/8")},    // overlaps: kept, the rules allow first
		{true, pfx("2001:db8:1::5")},  // inside
		{true, pfx("8.8.8.8")},
	}, func(p netip.Prefix, why Skip) { skipped = append(skipped, p.String()+" "+why.String()) })
	got := add.Prefixes()
	if len(got) != 2 || got[0] != pfx("8.8.8.8") || got[1] != pfx("192.0.0.0/8") {
		t.Fatalf("added %v", got)
	}
	if len(skipped) != 3 {
		t.Fatalf("skipped %v", skipped)
	}
	s6 := New(Config{NoIPv6: true})
	add, _ = s6.Apply([]Change{{true, pfx("2001:db8::1")}, {true, pfx("1.1.1.1")}}, nil)
	if add.Len() != 1 || len(add.Addr4) != 1 {
		t.Fatalf("NoIPv6 added %v", add.Prefixes())
	}
}

func TestBatchNetChange(t *testing.T) {
	s := New(Config{})
	k := kernel{}
	k.apply(t)(s.Apply([]Change{{true, pfx("1.1.1.1")}}, nil))
	add, del := s.Apply([]Change{{true, pfx("2.2.2.2")}, {false, pfx("2.2.2.2")}, {false, pfx("1.1.1.1")}, {true, pfx("1.1.1.1")}, {true, pfx("1.1.1.1")}}, nil)
	if add.Len() != 0 || del.Len() != 0 {
		t.Fatalf("a batch that ends where it started changed +%v -%v", add.Prefixes(), del.Prefixes())
	}
	k.check(t, add, del)
}

func TestSyncDiffs(t *testing.T) {
	s := New(Config{IPv6Prefix: 64})
	k := kernel{}
	k.apply(t)(s.Sync(list("1.1.1.1", "2.2.2.2", "2001:db8::1", "11.0.0.0/8"), nil))
	add, del := s.Sync(list("1.1.1.1", "3.3.3.3", "2001:db8::2", "11.0.0.0/8", "11.0.0.0/8"), nil)
	if got := add.Prefixes(); len(got) != 1 || got[0] != pfx("3.3.3.3") {
		t.Fatalf("resync added %v, want only 3.3.3.3 (the /64 stays)", got)
	}
	if got := del.Prefixes(); len(got) != 1 || got[0] != pfx("2.2.2.2") {
		t.Fatalf("resync removed %v", got)
	}
	k.check(t, add, del)
	if got, w := k.sorted(), want(s.cfg, []netip.Prefix{pfx("1.1.1.1"), pfx("3.3.3.3"), pfx("2001:db8::2"), pfx("11.0.0.0/8")}); !slices.Equal(got, w) {
		t.Fatalf("kernel %v, want %v", got, w)
	}
	e, el := s.Len()
	if e != 4 || el != 4 {
		t.Fatalf("Len = %d entries, %d elements", e, el)
	}
}

// TestRandomHistories drives random batches and full lists and checks, after
// every step, that the simulated kernel equals the elements computed from
// scratch and that no backend contract was broken.
func TestRandomHistories(t *testing.T) {
	universe := []string{"1.0.0.1", "1.0.0.2", "1.0.0.0/24", "1.0.0.0/16", "9.9.9.9",
		"2001:db8::1", "2001:db8::2", "2001:db8:0:1::1", "2001:db8::/48", "2001:db8::/64", "fd00::1", "192.168.1.1"}
	for _, cfg := range []Config{{}, {IPv6Prefix: 64}, {IPv6Prefix: 56, Allow: []netip.Prefix{pfx("192.168.0.0/16")}}, {NoIPv6: true}, {AllowPrivate: true, MinPrefix4: 20}} {
		rng := rand.New(rand.NewPCG(1, uint64(cfg.IPv6Prefix)))
		s := New(cfg)
		k := kernel{}
		entries := map[netip.Prefix]bool{}
		for step := 0; step < 2000; step++ {
			if rng.IntN(10) == 0 {
				var l []string
				entries = map[netip.Prefix]bool{}
				for _, u := range universe {
					if rng.IntN(2) == 0 {
						l = append(l, u)
						entries[pfx(u)] = true
					}
				}
				k.apply(t)(s.Sync(list(l...), nil))
			} else {
				var batch []Change
				for i := rng.IntN(6); i >= 0; i-- {
					p := pfx(universe[rng.IntN(len(universe))])
					add := rng.IntN(2) == 0
					batch = append(batch, Change{add, p})
					if add {
						entries[p] = true
					} else {
						delete(entries, p)
					}
				}
				k.apply(t)(s.Apply(batch, nil))
			}
			var ents []netip.Prefix
			for p := range entries {
				ents = append(ents, p)
			}
			if got, w := k.sorted(), want(cfg, ents); !slices.Equal(got, w) {
				t.Fatalf("cfg %+v step %d: kernel %v, want %v", cfg, step, got, w)
			}
			full := s.Elements()
			if full.Len() != len(k) {
				t.Fatalf("Elements() has %d, kernel %d", full.Len(), len(k))
			}
		}
	}
}

func BenchmarkSync1M(b *testing.B) {
	addrs := make([]netip.Prefix, 1_000_000)
	for i := range addrs {
		addrs[i] = netip.PrefixFrom(firewall.AddrFrom4(0x01000000+uint32(i)), 32)
	}
	each := func(f func(netip.Prefix)) {
		for _, p := range addrs {
			f(p)
		}
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s := New(Config{})
		s.Sync(each, nil) // the first list: a million additions
		s.Sync(each, nil) // the same list again: no change
	}
}
