package scoring

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/dynfw/sentinel/internal/netspace"
)

// key is the pointer-free form of a listing key, so that the index and
// the entry table hold no pointers and a million keys cost the garbage
// collector nothing. An IPv4 address is stored IPv4-mapped
// (::ffff:a.b.c.d); since events carry unmapped addresses and IPv6 keys
// are masked, no IPv6 key can take that form.
type key struct{ hi, lo uint64 }

const v4Mark = 0xffff << 32

func (k key) is4() bool { return k.hi == 0 && k.lo>>32 == 0xffff }

func (k key) less(o key) bool { return k.hi < o.hi || k.hi == o.hi && k.lo < o.lo }

func (k key) cmp(o key) int {
	switch {
	case k.less(o):
		return -1
	case o.less(k):
		return 1
	}
	return 0
}

// keyOf returns the key of an address: IPv4-mapped addresses are unmapped,
// zones dropped and IPv6 addresses masked to v6bits (128: not aggregated).
func keyOf(a netip.Addr, v6bits int) (key, bool) {
	if !a.IsValid() {
		return key{}, false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return key{lo: v4Mark | uint64(binary.BigEndian.Uint32(b[:]))}, true
	}
	b := a.As16()
	return mask(key{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}, v6bits), true
}

// mask clears the host bits of an IPv6 key beyond bits.
func mask(k key, bits int) key {
	switch {
	case bits >= 128:
	case bits > 64:
		k.lo &= ^uint64(0) << (128 - bits)
	case bits > 0:
		k.hi &= ^uint64(0) << (64 - bits)
		k.lo = 0
	default:
		k = key{}
	}
	return k
}

// hostBits returns k with every host bit beyond bits set: the last address
// of the prefix.
func hostBits(k key, bits int) key {
	switch {
	case bits >= 128:
	case bits > 64:
		k.lo |= ^uint64(0) >> (bits - 64)
	case bits > 0:
		k.hi |= ^uint64(0) >> bits
		k.lo = ^uint64(0)
	default:
		k = key{^uint64(0), ^uint64(0)}
	}
	return k
}

func (k key) addr() netip.Addr {
	if k.is4() {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(k.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b)
}

// prefix is the key as the API shows it: /32 for IPv4, /v6bits for IPv6.
func (k key) prefix(v6bits int) netip.Prefix {
	if k.is4() {
		return netip.PrefixFrom(k.addr(), 32)
	}
	return netip.PrefixFrom(k.addr(), v6bits)
}

// span is an inclusive range of the key space.
type span struct{ first, last key }

// spans is a sorted set of disjoint ranges of the key space, so that
// checking a key against an allow-list of any size is a binary search.
type spans []span

// ranges holds the IPv4 and the IPv6 ranges of a list of prefixes apart:
// IPv4 keys live inside the IPv6 key space (::ffff:0:0/96), where an IPv6
// range such as ::/3 or ::/0 must not reach them.
type ranges struct{ v4, v6 spans }

// rangesOf converts prefixes, IPv4-mapped ones to IPv4, and merges
// overlapping ranges.
func rangesOf(ps []netip.Prefix) ranges {
	var r ranges
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		a, bits := p.Addr(), p.Bits()
		if a.Is4In6() && bits >= 96 {
			a, bits = a.Unmap(), bits-96
		}
		k, _ := keyOf(a, 128)
		if a.Is4() {
			r.v4 = append(r.v4, span{mask(k, bits+96), hostBits(k, bits+96)})
		} else {
			r.v6 = append(r.v6, span{mask(k, bits), hostBits(k, bits)})
		}
	}
	r.v4, r.v6 = r.v4.merge(), r.v6.merge()
	return r
}

// merge sorts the ranges and merges nested or overlapping ones, so that
// the ends are sorted too, which the binary search in overlaps relies on.
func (ss spans) merge() spans {
	slices.SortFunc(ss, func(a, b span) int { return a.first.cmp(b.first) })
	merged := ss[:0]
	for _, s := range ss {
		if n := len(merged); n > 0 && !merged[n-1].last.less(s.first) {
			if merged[n-1].last.less(s.last) {
				merged[n-1].last = s.last
			}
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// overlaps reports whether any range meets [first, last].
func (ss spans) overlaps(first, last key) bool {
	if len(ss) == 0 {
		return false
	}
	// The first range that does not end before first.
	i, _ := slices.BinarySearchFunc(ss, first, func(s span, k key) int {
		if s.last.less(k) {
			return -1
		}
		return 1
	})
	return i < len(ss) && !last.less(ss[i].first)
}

// covers reports whether one range holds all of [first, last].
func (ss spans) covers(first, last key) bool {
	i, _ := slices.BinarySearchFunc(ss, first, func(s span, k key) int {
		if s.last.less(k) {
			return -1
		}
		return 1
	})
	return i < len(ss) && !first.less(ss[i].first) && !ss[i].last.less(last)
}

// isNonGlobal reports whether a key's range meets non-global space,
// directly or through an IPv6 form that embeds an IPv4 address (netspace).
// It runs for every new key, so most keys are decided by a table lookup on
// their first bits; the rest search.
func isNonGlobal(k key, v6bits int) bool {
	if k.is4() {
		switch nonGlobal.first4[uint8(k.lo>>24)] {
		case verdictGlobal:
			return false
		case verdictNonGlobal:
			return true
		}
		return nonGlobal.v4.overlaps(k, k)
	}
	if v6bits >= 16 {
		switch first16[k.hi>>48] {
		case verdictGlobal:
			return false
		case verdictNonGlobal:
			return true
		case verdictEmbedded:
			return nonGlobal.embedded(k, v6bits)
		}
	}
	return nonGlobal.meets(k, v6bits)
}

// space is protected address space in key terms: its ranges, the
// embedding forms that can stand for them from outside them, and a verdict
// for every first octet of an IPv4 address.
type space struct {
	ranges
	embeds []embedding
	first4 [256]uint8
}

func spaceOf(cs netspace.Classes) *space {
	rs := netspace.Ranges(cs)
	ps := make([]netip.Prefix, len(rs))
	sp := &space{}
	for i, r := range rs {
		ps[i] = r.Prefix
		if a := r.Prefix.Addr(); a.Is4() {
			first, n := int(a.As4()[0]), 1
			if r.Prefix.Bits() < 8 {
				n = 1 << (8 - r.Prefix.Bits())
			}
			for j := first; j < first+n; j++ {
				sp.first4[j] = verdict(sp.first4[j], r.Prefix.Bits() <= 8)
			}
		}
	}
	sp.ranges = rangesOf(ps)
	for _, e := range embeddings {
		// A form inside the space is found by the range search already.
		if !sp.v6.covers(e.first, e.last) {
			sp.embeds = append(sp.embeds, e)
		}
	}
	return sp
}

// has4 reports whether the IPv4 range [lo, hi] meets the space.
func (sp *space) has4(lo, hi uint32) bool {
	if lo>>24 == hi>>24 {
		switch sp.first4[lo>>24] {
		case verdictGlobal:
			return false
		case verdictNonGlobal:
			return true
		}
	}
	return sp.v4.overlaps(key{lo: v4Mark | uint64(lo)}, key{lo: v4Mark | uint64(hi)})
}

// meets reports whether a key's range meets the space, directly or
// through the IPv4 range it stands for in an embedding form.
func (sp *space) meets(k key, v6bits int) bool {
	if k.is4() {
		return sp.has4(uint32(k.lo), uint32(k.lo))
	}
	return sp.v6.overlaps(k, hostBits(k, v6bits)) || sp.embedded(k, v6bits)
}

// embedded reports whether the IPv4 range an IPv6 key's range stands for
// in an embedding form meets the space.
func (sp *space) embedded(k key, v6bits int) bool {
	first, last := mask(k, v6bits), hostBits(k, v6bits)
	for _, e := range sp.embeds {
		if last.less(e.first) || e.last.less(first) {
			continue
		}
		// All of IPv4 while the key leaves the embedded bits free.
		lo, hi := uint32(0), ^uint32(0)
		if v6bits > e.offset {
			v := bits32(first, e.offset)
			if e.inverted {
				v = ^v
			}
			host := uint32(1<<(32-min(v6bits-e.offset, 32)) - 1)
			lo, hi = v&^host, v|host
		}
		if sp.has4(lo, hi) {
			return true
		}
	}
	return false
}

// nonGlobalWhy names the non-global space a key meets, for error messages:
// "loopback", or "loopback, 6to4 form".
func (s *Scorer) nonGlobalWhy(k key) string {
	cs := netspace.NonGlobal
	if s.cfg.ListNonGlobal {
		cs = netspace.Floor
	}
	h := netspace.Meets(k.prefix(s.v6bits), cs)
	if h.Form != "" {
		return h.Class.String() + ", " + h.Form + " form"
	}
	return h.Class.String()
}

// bits32 returns the 32 bits of k from bit off (0 is the most significant).
func bits32(k key, off int) uint32 {
	switch {
	case off <= 32:
		return uint32(k.hi >> (32 - off))
	case off < 64:
		return uint32(k.hi<<(off-32) | k.lo>>(96-off))
	}
	return uint32(k.lo >> (96 - off))
}

// overlaps reports whether a key's range meets any range of its family.
func (r *ranges) overlaps(k key, v6bits int) bool {
	if k.is4() {
		return r.v4.overlaps(k, k)
	}
	return r.v6.overlaps(k, hostBits(k, v6bits))
}

// nonGlobal is the address space that cannot hold an Internet attacker
// (netspace.NonGlobal: RFC 6890 and its successors): listing such an
// address could only block someone's own network, so it is a cheap way to
// poison the list. floor is the part that is never listed even with
// Config.ListNonGlobal (unspecified, loopback, link-local, multicast).
var (
	nonGlobal = *spaceOf(netspace.NonGlobal)
	floor     = *spaceOf(netspace.Floor)
)

// embedding is a netspace.Form in key terms.
type embedding struct {
	first, last key
	offset      int
	inverted    bool
}

var embeddings = func() []embedding {
	var out []embedding
	for _, f := range netspace.Forms() {
		// Not keyOf: it would unmap ::ffff:0:0.
		b := f.Prefix.Addr().As16()
		k := key{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
		out = append(out, embedding{mask(k, f.Prefix.Bits()), hostBits(k, f.Prefix.Bits()), f.Offset, f.Inverted})
	}
	return out
}()

// Verdicts of the first-bits tables.
const (
	verdictGlobal    = iota // no key starting so meets the space
	verdictNonGlobal        // every key starting so does
	verdictSearch           // it depends on the other bits
	verdictEmbedded         // only through an embedding form (6to4)
)

// first16 holds the verdict on non-global space for every first 16 bits
// of an IPv6 key of at least 16 bits, derived from netspace.
var first16 = verdicts16()

func verdicts16() (v6 [1 << 16]uint8) {
	for _, r := range netspace.Ranges(netspace.NonGlobal) {
		p := r.Prefix
		if p.Addr().Is4() {
			continue
		}
		b := p.Addr().As16()
		first, n := int(b[0])<<8|int(b[1]), 1
		if p.Bits() < 16 {
			n = 1 << (16 - p.Bits())
		}
		for i := first; i < first+n; i++ {
			v6[i] = verdict(v6[i], p.Bits() <= 16)
		}
	}
	for _, e := range embeddings {
		for i := e.first.hi >> 48; i <= e.last.hi>>48; i++ {
			if v6[i] == verdictGlobal {
				v6[i] = verdictEmbedded
			}
		}
	}
	return v6
}

// verdict combines a table entry with a range that covers all its keys
// (whole) or some of them.
func verdict(v uint8, whole bool) uint8 {
	if whole || v == verdictNonGlobal {
		return verdictNonGlobal
	}
	return verdictSearch
}
