package scoring

import (
	"encoding/binary"
	"net/netip"
	"slices"
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

// isNonGlobal reports whether a key's range meets non-global space. Most
// keys are decided by their first bits; the rest search nonGlobal.
func isNonGlobal(k key, v6bits int) bool {
	if k.is4() {
		switch o := uint8(k.lo >> 24); {
		case o == 0 || o == 10 || o == 127 || o >= 224:
			return true
		case o != 100 && o != 169 && o != 172 && o != 192 && o != 198 && o != 203:
			return false
		}
	} else if v6bits >= 16 {
		switch top := k.hi >> 48; {
		case top>>13 != 1: // outside 2000::/3
			return true
		case top != 0x2001 && top != 0x3fff:
			return false
		}
	}
	return nonGlobal.overlaps(k, v6bits)
}

// overlaps reports whether a key's range meets any range of its family.
func (r *ranges) overlaps(k key, v6bits int) bool {
	if k.is4() {
		return r.v4.overlaps(k, k)
	}
	return r.v6.overlaps(k, hostBits(k, v6bits))
}

// nonGlobal lists the address space that cannot hold an Internet attacker
// (RFC 6890 and its successors): listing such an address could only block
// someone's own network, so it is a cheap way to poison the list. For IPv6
// everything outside 2000::/3 (the only allocated global unicast space) is
// non-global; 64:ff9b::/96 (NAT64) falls there too, and rightly so, since
// those addresses stand for IPv4 hosts behind somebody's translator.
var nonGlobal = rangesOf([]netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("10.0.0.0/8"),      // private
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local
	netip.MustParsePrefix("172.16.0.0/12"),   // private
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("192.168.0.0/16"),  // private
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/3"),            // unspecified, loopback, NAT64, discard, ...
	netip.MustParsePrefix("4000::/2"),        // unallocated, ULA fc00::/7
	netip.MustParsePrefix("8000::/1"),        // link-local fe80::/10, multicast ff00::/8, ...
	netip.MustParsePrefix("2001:2::/48"),     // benchmarking
	netip.MustParsePrefix("2001:10::/28"),    // ORCHID
	netip.MustParsePrefix("2001:20::/28"),    // ORCHIDv2
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("3fff::/20"),       // documentation (RFC 9637)
})
