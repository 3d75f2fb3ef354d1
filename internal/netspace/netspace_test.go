package netspace

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// pfx parses an address or a prefix of a fixture.
var pfx = testenv.Prefix

func TestMeets(t *testing.T) {
	for _, tc := range []struct {
		p     string
		cs    Classes
		class Class
		form  string
	}{
		// Every class, directly.
		{"0.0.0.0", NonGlobal, Unspecified, ""},
		{"0.1.2.3", NonGlobal, Unspecified, ""},
		{"::", NonGlobal, Unspecified, ""},
		{"127.0.0.1", NonGlobal, Loopback, ""},
		{"::1", NonGlobal, Loopback, ""},
		{"169.254.1.1", NonGlobal, LinkLocal, ""},
		{"fe80::/10", NonGlobal, LinkLocal, ""},
		{"fe80::1", NonGlobal, LinkLocal, ""},
		{"224.0.0.1", NonGlobal, Multicast, ""},
		{"239.255.255.250", NonGlobal, Multicast, ""},
		{"ff02::1", NonGlobal, Multicast, ""},
		{"64:ff9b:1::a00:1", NonGlobal, Translation, ""},
		{"10.1.2.3", NonGlobal, Private, ""},
		{"172.31.255.255", NonGlobal, Private, ""},
		{"192.168.0.0/16", NonGlobal, Private, ""},
		{"100.64.0.1", NonGlobal, CGNAT, ""},
		{"fd00::1", NonGlobal, UniqueLocal, ""},
		{"192.0.2.1", NonGlobal, Special, ""},
		{"2001:db8::1", NonGlobal, Special, ""},
		{"240.0.0.1", NonGlobal, Special, ""},
		{"255.255.255.255", NonGlobal, Special, ""},
		{"fec0::1", NonGlobal, Special, ""},
		{"3fff::1", NonGlobal, Special, ""},
		// Global space.
		{"1.1.1.1", NonGlobal, Global, ""},
		{"100.63.255.255", NonGlobal, Global, ""},
		{"100.128.0.0", NonGlobal, Global, ""},
		{"172.32.0.0", NonGlobal, Global, ""},
		{"223.255.255.255", NonGlobal, Global, ""},
		{"2a00:1450::1", NonGlobal, Global, ""},
		{"2001:db9::1", NonGlobal, Global, ""},
		{"11.0.0.0/8", NonGlobal, Global, ""},
		// Prefixes that contain protected space: the most important
		// class names them.
		{"0.0.0.0/0", NonGlobal, Unspecified, ""},
		{"::/0", NonGlobal, Unspecified, ""},
		{"0.0.0.0/0", Local, Private, ""},
		{"8.0.0.0/6", NonGlobal, Private, ""},
		{"96.0.0.0/4", NonGlobal, CGNAT, ""},
		{"192.0.0.0/8", Local, Private, ""},
		{"192.0.0.0/8", Floor, Global, ""},
		{"fe00::/7", NonGlobal, LinkLocal, ""},
		{"fc00::/7", Floor | Local, UniqueLocal, ""},
		{"fc00::/6", Floor | Local, LinkLocal, ""},
		{"f000::/4", NonGlobal, LinkLocal, ""},
		{"::/96", NonGlobal, Unspecified, ""},
		{"::/127", NonGlobal, Unspecified, ""},
		{"::2", Floor, Unspecified, "ipv4-compatible"},
		{"::2", NonGlobal, Unspecified, "ipv4-compatible"},
		// The classes asked for only.
		{"10.1.2.3", Floor, Global, ""},
		{"127.0.0.1", Local, Global, ""},
		{"2001:db8::1", Floor | Local, Global, ""},
		// Embedded forms of IPv4 space.
		{"2002:7f00:1::1", NonGlobal, Loopback, "6to4"},
		{"2002:7f00:1::1", Floor, Loopback, "6to4"},
		{"2002:7f00::/24", Floor, Loopback, "6to4"},
		{"2002:a00:1::/48", Local, Private, "6to4"},
		{"2002:a00:1::/48", Floor, Global, ""},
		{"2002:808:808::1", NonGlobal, Global, ""},
		{"2002::/16", Floor, Unspecified, "6to4"},
		{"2002:8000::/17", Floor, LinkLocal, "6to4"},
		{"2002:808::/32", NonGlobal, Global, ""},
		{"2002:e000::/19", Floor, Multicast, "6to4"},
		{"64:ff9b::7f00:1", Floor, Loopback, "nat64"},
		{"64:ff9b::a00:1", Local, Private, "nat64"},
		{"64:ff9b::808:808", Floor | Local, Global, ""},
		{"64:ff9b::808:808", NonGlobal, Special, ""}, // outside 2000::/3
		{"::ffff:7f00:1/128", Floor, Loopback, "ipv4-mapped"},
		{"::ffff:0:0/96", Floor, Unspecified, "ipv4-mapped"},
		{"::ffff:a9fe:1", Floor, LinkLocal, "ipv4-mapped"},
		{"::7f00:1", Floor, Loopback, "ipv4-compatible"},
		{"::ffff:0:e000:1", Floor, Multicast, "ipv4-translated"},
		// Teredo: the client address is the complement of the last 32 bits.
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", Floor, Loopback, "teredo"},    // 127.0.0.1
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", Local, Private, "teredo"},     // 10.0.0.1
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", NonGlobal, Special, "teredo"}, // 192.0.2.45
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", NonGlobal, Global, ""},        // 8.8.8.8
		{"2001::/32", Floor, Unspecified, "teredo"},
	} {
		got := Meets(pfx(tc.p), tc.cs)
		if got.Class != tc.class || got.Form != tc.form {
			t.Errorf("Meets(%s, %b) = %v %q, want %v %q", tc.p, tc.cs, got.Class, got.Form, tc.class, tc.form)
		}
	}
}

func TestEmbedded(t *testing.T) {
	byName := map[string]Form{}
	for _, f := range Forms() {
		byName[f.Name] = f
	}
	for _, tc := range []struct {
		form, p, want string
	}{
		{"6to4", "2002:7f00:1::1", "127.0.0.1/32"},
		{"6to4", "2002:7f00:1::/48", "127.0.0.1/32"},
		{"6to4", "2002:7f00::/24", "127.0.0.0/8"},
		{"6to4", "2002::/16", "0.0.0.0/0"},
		{"6to4", "2000::/3", "0.0.0.0/0"},
		{"6to4", "2003::/16", ""},
		{"nat64", "64:ff9b::c000:201", "192.0.2.1/32"},
		{"nat64", "64:ff9b::c000:200/120", "192.0.2.0/24"},
		{"nat64", "64:ff9b::/64", "0.0.0.0/0"},
		{"teredo", "2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1/32"},
		{"teredo", "2001:0:4136:e378:8000:63bf:80ff:ff00/120", "127.0.0.0/24"},
		{"teredo", "2001:0:4136:e378::/64", "0.0.0.0/0"},
		{"ipv4-mapped", "::ffff:a00:0/104", "10.0.0.0/8"},
		{"ipv4-mapped", "10.0.0.0/8", ""},
	} {
		got, ok := byName[tc.form].Embedded(pfx(tc.p))
		if tc.want == "" {
			if ok {
				t.Errorf("%s of %s: %v, want none", tc.form, tc.p, got)
			}
			continue
		}
		if !ok || got != pfx(tc.want) {
			t.Errorf("%s of %s: %v %v, want %s", tc.form, tc.p, got, ok, tc.want)
		}
	}
}

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		p, a string
		ok   bool
		form string
	}{
		{"198.51.100.1", "198.51.100.1", true, ""},
		{"198.51.100.0/24", "198.51.100.1", true, ""},
		{"0.0.0.0/0", "198.51.100.1", true, ""},
		{"198.51.100.2", "198.51.100.1", false, ""},
		{"2001:db8::/32", "2001:db8::1", true, ""},
		{"::/0", "2001:db8::1", true, ""},
		{"::/0", "198.51.100.1", true, "ipv4-mapped"},
		{"2002:c633:6401::/48", "198.51.100.1", true, "6to4"},
		{"64:ff9b::c633:6401", "198.51.100.1", true, "nat64"},
		{"64:ff9b::c633:6401", "::ffff:198.51.100.1", true, "nat64"},
		{"64:ff9b::c633:6402", "198.51.100.1", false, ""},
		{"198.51.100.1", "2001:db8::1", false, ""},
		{"fe80::/10", "fe80::1%eth0", true, ""},
	} {
		form, ok := Covers(pfx(tc.p), netip.MustParseAddr(tc.a))
		if ok != tc.ok || form != tc.form {
			t.Errorf("Covers(%s, %s) = %q %v, want %q %v", tc.p, tc.a, form, ok, tc.form, tc.ok)
		}
	}
}

// TestMeetsFastPath compares Meets with a plain scan of every range and
// form, so that the first-byte tables never hide a hit.
func TestMeetsFastPath(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		var p netip.Prefix
		if r.IntN(2) == 0 {
			var b [4]byte
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			p = netip.PrefixFrom(netip.AddrFrom4(b), []int{32, 32, 24, 16, 9, 8, 7, 1}[r.IntN(8)])
		} else {
			var b [16]byte
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			b[0] = []byte{0x20, 0x2a, 0xfe, 0x00, 0xfc, 0xff, 0x3f}[r.IntN(7)]
			if r.IntN(3) == 0 {
				b[1] = []byte{0x01, 0x02, 0x00}[r.IntN(3)]
			}
			p = netip.PrefixFrom(netip.AddrFrom16(b), []int{128, 128, 64, 48, 32, 16, 9, 8, 7, 3}[r.IntN(10)])
		}
		cs := []Classes{NonGlobal, Floor, Local, Floor | Local}[r.IntN(4)]
		want := slowMeets(p.Masked(), cs)
		if got := Meets(p, cs); got.Class != want {
			t.Fatalf("Meets(%v, %b) = %v, want %v", p, cs, got.Class, want)
		}
	}
}

func slowMeets(p netip.Prefix, cs Classes) Class {
	best := Global
	consider := func(c Class) {
		if cs.Has(c) && (best == Global || c < best) {
			best = c
		}
	}
	check := func(q netip.Prefix) {
		for _, r := range Ranges(NonGlobal) {
			if r.Prefix.Overlaps(q) {
				consider(r.Class)
			}
		}
	}
	check(p)
	if best != Global && best != Special {
		return best // a direct hit names the prefix
	}
	for _, f := range Forms() {
		if v4, ok := f.Embedded(p); ok {
			check(v4)
		}
	}
	return best
}

func TestClassNames(t *testing.T) {
	seen := map[string]bool{}
	for c := Global; c < numClasses; c++ {
		if n := c.String(); n == "" || seen[n] {
			t.Errorf("class %d: name %q", c, n)
		}
		seen[c.String()] = true
	}
	if !NonGlobal.Has(Special) || Floor.Has(Private) || !Local.Has(CGNAT) {
		t.Error("groups")
	}
}

func BenchmarkMeets(b *testing.B) {
	ps := []netip.Prefix{pfx("45.1.2.3"), pfx("185.220.101.4"), pfx("10.1.2.3"), pfx("2a01:4f8::1"), pfx("2001:470::1"), pfx("2002:7f00:1::1")}
	cs := Floor | Local
	b.ReportAllocs()
	for i := range b.N {
		Meets(ps[i%len(ps)], cs)
	}
}
