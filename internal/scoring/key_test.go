package scoring

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/dynfw/sentinel/internal/netspace"
)

func randAddr(r *rand.Rand, v6 bool) netip.Addr {
	if !v6 {
		var b [4]byte
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	b[0] = []byte{0x20, 0x2a, 0xfe, 0x00}[r.IntN(4)] // mostly few first bytes, so that ranges meet
	b[1] &= 0x0f
	return netip.AddrFrom16(b)
}

// TestRangesAgainstNetip compares the binary-searched ranges with a plain
// scan of netip prefixes, for single addresses and IPv6 aggregates.
func TestRangesAgainstNetip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var ps []netip.Prefix
		for range r.IntN(20) {
			v6 := r.IntN(2) == 0
			a := randAddr(r, v6)
			bits := r.IntN(a.BitLen()/2) + a.BitLen()/2
			if r.IntN(10) == 0 {
				bits = r.IntN(a.BitLen() + 1)
			}
			p := netip.PrefixFrom(a, bits)
			if v6 && r.IntN(8) == 0 {
				p = netip.PrefixFrom(netip.AddrFrom16(netip.PrefixFrom(a, 32).Masked().Addr().As16()), 32)
			}
			ps = append(ps, p)
		}
		rs := rangesOf(ps)
		for range 200 {
			v6 := r.IntN(2) == 0
			a := randAddr(r, v6)
			if len(ps) > 0 && r.IntN(2) == 0 {
				// An address inside or at an edge of a listed prefix.
				p := ps[r.IntN(len(ps))].Masked()
				a = p.Addr()
				v6 = a.Is6()
			}
			v6bits := 128
			if v6 && r.IntN(2) == 0 {
				v6bits = []int{32, 48, 56, 64, 96}[r.IntN(5)]
			}
			k, _ := keyOf(a, v6bits)
			kp := k.prefix(v6bits)
			want := false
			for _, p := range ps {
				if p.Addr().Is4() == kp.Addr().Is4() && p.Overlaps(kp) {
					want = true
				}
			}
			if got := rs.overlaps(k, v6bits); got != want {
				t.Fatalf("round %d: %v in %v: %v, want %v", round, kp, ps, got, want)
			}
		}
	}
}

func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		addr string
		bits int
		want string
	}{
		{"1.2.3.4", 128, "1.2.3.4/32"},
		{"::ffff:1.2.3.4", 64, "1.2.3.4/32"},
		{"2a01:4f8:1:2:3:4:5:6", 128, "2a01:4f8:1:2:3:4:5:6/128"},
		{"2a01:4f8:1:2:3:4:5:6%eth0", 128, "2a01:4f8:1:2:3:4:5:6/128"},
		{"2a01:4f8:1:2:3:4:5:6", 64, "2a01:4f8:1:2::/64"},
		{"2a01:4f8:1:2:3:4:5:6", 48, "2a01:4f8:1::/48"},
		{"2a01:4f8:1:2:3:4:5:6", 112, "2a01:4f8:1:2:3:4:5:0/112"},
		{"::5", 64, "::/64"},
	} {
		k, ok := keyOf(netip.MustParseAddr(tc.addr), tc.bits)
		if got := k.prefix(tc.bits); !ok || got.String() != tc.want {
			t.Errorf("%s /%d: %v", tc.addr, tc.bits, got)
		}
	}
	if _, ok := keyOf(netip.Addr{}, 128); ok {
		t.Error("invalid address keyed")
	}
}

// TestNonGlobalFastPath checks the first-bits tables and the key-form
// search against the shared definition (netspace.Meets), embedded forms
// included; and the floor that ListNonGlobal keeps.
func TestNonGlobalFastPath(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	for range 200000 {
		v6 := r.IntN(2) == 0
		a := randAddr(r, v6)
		if v6 && r.IntN(2) == 0 {
			b := a.As16()
			b[0], b[1] = []byte{0x20, 0x3f, 0x00, 0xfe}[r.IntN(4)], []byte{0x01, 0xff, 0x00, 0x02}[r.IntN(4)]
			if b[1] == 0x01 && r.IntN(2) == 0 {
				b[2], b[3] = 0, 0 // Teredo
			}
			if b[1] == 0x02 && r.IntN(2) == 0 {
				b[2] = []byte{0x7f, 0x0a, 0xa9, 0xe0, 0x2d}[r.IntN(5)] // 6to4 of a chosen first octet
			}
			a = netip.AddrFrom16(b)
		}
		bits := 128
		if v6 {
			bits = []int{128, 64, 48, 40, 24, 16, 12, 3}[r.IntN(8)]
		}
		k, _ := keyOf(a, bits)
		p := k.prefix(bits)
		want := netspace.Meets(p, netspace.NonGlobal).Class != netspace.Global
		if got := isNonGlobal(k, bits); got != want {
			t.Fatalf("%v: %v, want %v", p, got, want)
		}
		wantFloor := netspace.Meets(p, netspace.Floor).Class != netspace.Global
		if got := floor.meets(k, bits); got != wantFloor {
			t.Fatalf("%v: floor %v, want %v", p, got, wantFloor)
		}
	}
}
