package nftables

import (
	"errors"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// formatSpans renders spans the way the tests state expectations.
func formatSpans(sp []span, f afamily) string {
	var parts []string
	for _, s := range sp {
		parts = append(parts, s.format(f))
	}
	return strings.Join(parts, " ")
}

func TestPrefixSpan(t *testing.T) {
	for _, tc := range []struct {
		p      string
		lo, hi string
	}{
		{"10.0.0.0/8", "10.0.0.0", "10.255.255.255"},
		{"0.0.0.0/0", "0.0.0.0", "255.255.255.255"},
		{"192.0.2.7/32", "192.0.2.7", "192.0.2.7"},
		{"10.1.2.3/16", "10.1.0.0", "10.1.255.255"}, // host bits masked
		{"2001:db8::/64", "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff"},
		{"2001:db8::/32", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"2001:db8::1/128", "2001:db8::1", "2001:db8::1"},
		{"8000::/1", "8000::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"2001:db8:0:0:8000::/65", "2001:db8:0:0:8000::", "2001:db8::ffff:ffff:ffff:ffff"},
	} {
		p := netip.MustParsePrefix(tc.p)
		f := fam4
		if p.Addr().Is6() {
			f = fam6
		}
		s := prefixSpan(p.Masked(), f)
		if got := addrOf(s.lo, f).String(); got != tc.lo {
			t.Errorf("%s: lo %s, want %s", tc.p, got, tc.lo)
		}
		if got := addrOf(s.hi, f).String(); got != tc.hi {
			t.Errorf("%s: hi %s, want %s", tc.p, got, tc.hi)
		}
		if got, ok := s.prefix(f); !ok || got != p.Masked() {
			t.Errorf("%s: back to prefix: %v %v", tc.p, got, ok)
		}
	}
}

func TestSpanFormat(t *testing.T) {
	f := fam4
	s := span{prefixSpan(netip.MustParsePrefix("10.0.0.0/8"), f).lo, prefixSpan(netip.MustParsePrefix("11.0.0.0/16"), f).hi}
	if got := s.format(f); got != "10.0.0.0-11.0.255.255" {
		t.Errorf("format = %s", got)
	}
	// Aligned start but not a power-of-two size.
	s = span{prefixSpan(netip.MustParsePrefix("10.0.0.0/8"), f).lo, prefixSpan(netip.MustParsePrefix("11.0.0.0/9"), f).hi}
	if _, ok := s.prefix(f); ok {
		t.Errorf("10.0.0.0-11.127.255.255 is not a prefix")
	}
	// Power-of-two size but not aligned.
	s = span{prefixSpan(netip.MustParsePrefix("10.128.0.0/9"), f).lo, prefixSpan(netip.MustParsePrefix("11.0.0.0/9"), f).hi}
	if got := s.format(f); got != "10.128.0.0-11.127.255.255" {
		t.Errorf("format = %s", got)
	}
	s = span{u128{1, 0}, u128{2, 0}}
	if got := s.format(fam6); got != "0:0:0:1::-0:0:0:2::" {
		t.Errorf("format = %s", got)
	}
}

func TestMergeSpans(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want string
	}{
		{"empty", nil, ""},
		{"one", []string{"10.0.0.0/8"}, "10.0.0.0/8"},
		{"nested", []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"}, "10.0.0.0/8"},
		{"adjacent become one", []string{"10.0.0.0/9", "10.128.0.0/9"}, "10.0.0.0/8"},
		{"adjacent not a prefix", []string{"10.0.0.0/8", "11.0.0.0/16"}, "10.0.0.0-11.0.255.255"},
		{"gap of one address stays", []string{"10.0.0.0/31", "10.0.0.3/32"}, "10.0.0.0/31 10.0.0.3/32"},
		{"disjoint sorted", []string{"192.168.0.0/16", "10.0.0.0/8"}, "10.0.0.0/8 192.168.0.0/16"},
		{"chain of adjacent", []string{"10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/23"}, "10.0.0.0/22"},
		{"whole space", []string{"0.0.0.0/1", "128.0.0.0/1", "10.0.0.0/8"}, "0.0.0.0/0"},
		{"end of space", []string{"255.255.255.0/24", "255.255.254.0/24"}, "255.255.254.0/23"},
		{"start of space", []string{"0.0.0.0/8", "1.0.0.0/8"}, "0.0.0.0/7"},
		{"duplicates", []string{"10.0.0.0/8", "10.0.0.0/8"}, "10.0.0.0/8"},
		{"v6 nested and adjacent", []string{"2001:db8::/64", "2001:db8:0:1::/64", "2001:db8::/48"}, "2001:db8::/48"},
		{"v6 end of space", []string{"ffff::/16", "fffe::/16"}, "fffe::/15"},
		{"v6 across the 64-bit halves", []string{"2001:db8::/64", "2001:db8:0:1::/64"}, "2001:db8::/63"},
		{"v4-mapped counts as v4", []string{"::ffff:10.0.0.0/104"}, "10.0.0.0/8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := pfx(tc.in...)
			f := fam4
			if len(ps) > 0 && isV6(ps[0]) {
				f = fam6
			}
			got := formatSpans(mergeSpans(nil, spansOf(nil, ps, f), f), f)
			if got != tc.want {
				t.Errorf("merge(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSpansOfSeparatesFamilies(t *testing.T) {
	ps := pfx("10.0.0.0/8", "2001:db8::/64", "0.0.0.0/8", "::/8", "::ffff:192.0.2.0/120")
	if got := formatSpans(spansOf(nil, ps, fam4), fam4); got != "0.0.0.0/8 10.0.0.0/8 192.0.2.0/24" {
		t.Errorf("IPv4 spans = %q", got)
	}
	if got := formatSpans(spansOf(nil, ps, fam6), fam6); got != "::/8 2001:db8::/64" {
		t.Errorf("IPv6 spans = %q", got)
	}
}

func TestDiffSpans(t *testing.T) {
	for _, tc := range []struct {
		name          string
		old, cur      []string
		wantDel, want string
	}{
		{"same", []string{"10.0.0.0/8"}, []string{"10.0.0.0/8"}, "", ""},
		{"grown", []string{"10.0.0.0/9"}, []string{"10.0.0.0/8"}, "10.0.0.0/9", "10.0.0.0/8"},
		{"one gone one new", []string{"10.0.0.0/8", "12.0.0.0/8"}, []string{"10.0.0.0/8", "13.0.0.0/8"}, "12.0.0.0/8", "13.0.0.0/8"},
		{"all new", nil, []string{"10.0.0.0/8"}, "", "10.0.0.0/8"},
		{"all gone", []string{"10.0.0.0/8", "11.0.0.0/8"}, nil, "10.0.0.0/8 11.0.0.0/8", ""},
		{"split", []string{"10.0.0.0/8"}, []string{"10.0.0.0/9", "10.192.0.0/10"}, "10.0.0.0/8", "10.0.0.0/9 10.192.0.0/10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := spansOf(nil, pfx(tc.old...), fam4)
			cur := spansOf(nil, pfx(tc.cur...), fam4)
			del, add := diffSpans(old, cur)
			if got := formatSpans(del, fam4); got != tc.wantDel {
				t.Errorf("del = %q, want %q", got, tc.wantDel)
			}
			if got := formatSpans(add, fam4); got != tc.want {
				t.Errorf("add = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNetStateChange(t *testing.T) {
	type step struct {
		del, add   []string
		wantMerged string
		wantErr    error
	}
	for _, tc := range []struct {
		name  string
		start []string
		steps []step
	}{
		{"covered range stays blocked", []string{"10.0.0.0/8", "10.1.0.0/16"}, []step{
			{del: []string{"10.0.0.0/8"}, wantMerged: "10.1.0.0/16"},
			{del: []string{"10.1.0.0/16"}, wantMerged: ""},
		}},
		{"inner removed, outer stays", []string{"10.0.0.0/8", "10.1.0.0/16"}, []step{
			{del: []string{"10.1.0.0/16"}, wantMerged: "10.0.0.0/8"},
		}},
		{"adjacent join and split", []string{"10.0.0.0/9"}, []step{
			{add: []string{"10.128.0.0/9"}, wantMerged: "10.0.0.0/8"},
			{del: []string{"10.0.0.0/9"}, wantMerged: "10.128.0.0/9"},
		}},
		{"delete and add together", []string{"10.0.0.0/8"}, []step{
			{del: []string{"10.0.0.0/8"}, add: []string{"10.0.0.0/8", "11.0.0.0/8"}, wantMerged: "10.0.0.0/7"},
		}},
		{"absent delete", []string{"10.0.0.0/8"}, []step{
			{del: []string{"10.1.0.0/16"}, wantErr: unix.ENOENT},
			{del: []string{"11.0.0.0/8"}, wantErr: unix.ENOENT},
			{del: []string{"9.0.0.0/8"}, wantErr: unix.ENOENT},
			{del: []string{"10.0.0.0/8", "12.0.0.0/8"}, wantErr: unix.ENOENT},
		}},
		{"present add", []string{"10.0.0.0/8"}, []step{
			{add: []string{"10.0.0.0/8"}, wantErr: unix.EEXIST},
		}},
		{"from empty", nil, []step{
			{add: []string{"10.0.0.0/8", "192.168.0.0/16"}, wantMerged: "10.0.0.0/8 192.168.0.0/16"},
			{add: []string{"10.255.0.0/16"}, wantMerged: "10.0.0.0/8 192.168.0.0/16"},
			{del: []string{"10.0.0.0/8"}, wantMerged: "10.255.0.0/16 192.168.0.0/16"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := netState{f: fam4}
			st.spans = spansOf(nil, pfx(tc.start...), fam4)
			st.merged = mergeSpans(nil, st.spans, fam4)
			for i, s := range tc.steps {
				before := slices.Clone(st.spans)
				spans, merged, err := st.change(spansOf(nil, pfx(s.del...), fam4), spansOf(nil, pfx(s.add...), fam4))
				if s.wantErr != nil {
					if !errors.Is(err, s.wantErr) {
						t.Fatalf("step %d: err %v, want %v", i, err, s.wantErr)
					}
					if !slices.Equal(st.spans, before) {
						t.Fatalf("step %d: state changed on error", i)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got := formatSpans(merged, fam4); got != s.wantMerged {
					t.Fatalf("step %d: merged %q, want %q", i, got, s.wantMerged)
				}
				st.spans, st.merged = spans, merged
			}
		})
	}
}

// TestNetStateRandom checks change against recomputing from scratch, and
// that applying the diff to the old merged list gives the new one.
func TestNetStateRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randPrefix := func() netip.Prefix {
		bits := 8 + r.IntN(17)
		a := [4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))}
		return netip.PrefixFrom(netip.AddrFrom4(a), bits).Masked()
	}
	held := map[netip.Prefix]bool{}
	st := netState{f: fam4}
	for round := range 300 {
		var add, del []netip.Prefix
		for range r.IntN(6) {
			p := randPrefix()
			if !held[p] && !slices.Contains(add, p) {
				add = append(add, p)
			}
		}
		for p := range held {
			if r.IntN(8) == 0 {
				del = append(del, p)
			}
		}
		spans, merged, err := st.change(spansOf(nil, del, fam4), spansOf(nil, add, fam4))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		next := maps.Clone(held)
		for _, p := range del {
			delete(next, p)
		}
		for _, p := range add {
			next[p] = true
		}
		var all []netip.Prefix
		for p := range next {
			all = append(all, p)
		}
		want := mergeSpans(nil, spansOf(nil, all, fam4), fam4)
		if !slices.Equal(merged, want) {
			t.Fatalf("round %d: merged %s, want %s", round, formatSpans(merged, fam4), formatSpans(want, fam4))
		}
		// Old merged minus deletions plus additions is the new list.
		d, a := diffSpans(st.merged, merged)
		var patched []span
		for _, s := range st.merged {
			if !slices.Contains(d, s) {
				patched = append(patched, s)
			}
		}
		patched = append(patched, a...)
		slices.SortFunc(patched, compareSpan)
		if !slices.Equal(patched, merged) {
			t.Fatalf("round %d: diff does not turn old into new", round)
		}
		for i := 1; i < len(merged); i++ {
			if merged[i].lo.cmp(merged[i-1].hi.next()) <= 0 {
				t.Fatalf("round %d: spans %d and %d overlap or touch", round, i-1, i)
			}
		}
		if r.IntN(10) == 0 {
			continue // as if the kernel refused: the state stays
		}
		st.commit(spans, merged)
		held = next
		if round%7 == 0 {
			// The spare buffers must never alias the live state.
			if want := spansOf(nil, all, fam4); !slices.Equal(st.spans, want) {
				t.Fatalf("round %d: spans corrupted", round)
			}
		}
	}
}

// BenchmarkNetStateChange is the in-memory part of an Apply of 1000
// prefix deltas (500 deletions, 500 additions) with 20,000 prefixes held.
func BenchmarkNetStateChange(b *testing.B) {
	var held, x []netip.Prefix
	for i := range 20000 {
		held = append(held, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 7), byte(i&127) * 2, 0}), 24))
	}
	for i := range 500 {
		x = append(x, netip.PrefixFrom(netip.AddrFrom4([4]byte{11, byte(i >> 7), byte(i&127) * 2, 0}), 24))
	}
	st := netState{f: fam4}
	st.spans = spansOf(nil, held, fam4)
	st.merged = mergeSpans(nil, st.spans, fam4)
	y := held[:500]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		add, del := x, y
		if i%2 == 1 {
			add, del = y, x
		}
		spans, merged, err := st.change(spansOf(nil, del, fam4), spansOf(nil, add, fam4))
		if err != nil {
			b.Fatal(err)
		}
		diffSpans(st.merged, merged)
		st.commit(spans, merged)
		i++
	}
}
