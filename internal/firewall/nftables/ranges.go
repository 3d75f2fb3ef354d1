package nftables

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
)

// An interval set cannot hold overlapping or touching intervals (the kernel
// rejects a start element inside another interval), while Elements.Nets may
// overlap (10.0.0.0/8 and 10.1.0.0/16) or be adjacent. So the backend keeps
// the multiset of prefixes the caller asked for, derives the merged,
// non-overlapping, non-adjacent spans from it, and sends the kernel only the
// spans that differ between the merged view before and after a change.

// u128 is an address as an unsigned integer. IPv4 uses the low 32 bits, so
// that one type serves both families.
type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// next returns a+1, wrapping at 2^128; callers check against maxAddr first.
func (a u128) next() u128 {
	lo, carry := bits.Add64(a.lo, 1, 0)
	return u128{a.hi + carry, lo}
}

// span is an inclusive address range [lo, hi].
type span struct{ lo, hi u128 }

func compareSpan(a, b span) int {
	if c := a.lo.cmp(b.lo); c != 0 {
		return c
	}
	return a.hi.cmp(b.hi)
}

// afamily describes one address family as the range code sees it.
type afamily struct {
	v6      bool
	keyLen  int  // bytes of a key: 4 or 16
	maxAddr u128 // the last address of the family
}

var (
	fam4 = afamily{v6: false, keyLen: 4, maxAddr: u128{0, 0xffffffff}}
	fam6 = afamily{v6: true, keyLen: 16, maxAddr: u128{^uint64(0), ^uint64(0)}}
)

// prefixSpan returns the range a masked prefix covers. p must be of the
// family f (IPv4-mapped addresses are unmapped by the caller).
func prefixSpan(p netip.Prefix, f afamily) span {
	var lo u128
	if f.v6 {
		b := p.Addr().As16()
		lo = u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
	} else {
		b := p.Addr().As4()
		lo = u128{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	host := f.keyLen*8 - p.Bits() // number of host bits
	var mask u128
	switch {
	case host >= 128:
		mask = u128{^uint64(0), ^uint64(0)}
	case host >= 64:
		mask = u128{(uint64(1) << (host - 64)) - 1, ^uint64(0)}
	default:
		mask = u128{0, (uint64(1) << host) - 1}
	}
	lo = u128{lo.hi &^ mask.hi, lo.lo &^ mask.lo}
	return span{lo, u128{lo.hi | mask.hi, lo.lo | mask.lo}}
}

// addrOf converts a key back to an address, for error messages and tests.
func addrOf(a u128, f afamily) netip.Addr {
	if !f.v6 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(a.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return netip.AddrFrom16(b)
}

// String shows a span as a prefix when it is one, else as first-last.
func (s span) format(f afamily) string {
	if p, ok := s.prefix(f); ok {
		return p.String()
	}
	return addrOf(s.lo, f).String() + "-" + addrOf(s.hi, f).String()
}

// prefix returns the prefix whose range is exactly s, if there is one.
func (s span) prefix(f afamily) (netip.Prefix, bool) {
	size := u128{s.hi.hi - s.lo.hi, s.hi.lo - s.lo.lo}
	if s.hi.lo < s.lo.lo {
		size.hi--
	}
	// size+1 must be a power of two and lo aligned to it: size is all ones.
	var host int
	switch {
	case size.hi == 0:
		host = bits.Len64(size.lo)
		if size.lo != (uint64(1)<<host)-1 { // 1<<64 is 0 in Go: all ones
			return netip.Prefix{}, false
		}
	case size.lo == ^uint64(0):
		n := bits.Len64(size.hi)
		if size.hi != (uint64(1)<<n)-1 {
			return netip.Prefix{}, false
		}
		host = 64 + n
	default:
		return netip.Prefix{}, false
	}
	p := netip.PrefixFrom(addrOf(s.lo, f), f.keyLen*8-host)
	return p, p.Masked() == p
}

// mergeSpans appends to dst the union of sorted (by compareSpan) spans,
// joining overlapping and adjacent ones, so that the result can go into an
// interval set as it is.
func mergeSpans(dst []span, sorted []span, f afamily) []span {
	start := len(dst)
	for _, s := range sorted {
		if n := len(dst); n > start {
			last := &dst[n-1]
			if s.lo.cmp(last.hi) <= 0 || (last.hi != f.maxAddr && s.lo == last.hi.next()) {
				if s.hi.cmp(last.hi) > 0 {
					last.hi = s.hi
				}
				continue
			}
		}
		dst = append(dst, s)
	}
	return dst
}

// diffSpans compares two merged span lists and returns the spans only in
// old (to delete from the kernel) and only in cur (to add). A span that
// merely grew or shrank appears in both: the kernel cannot resize an
// interval in place.
func diffSpans(old, cur []span) (del, add []span) {
	i, j := 0, 0
	for i < len(old) && j < len(cur) {
		switch c := compareSpan(old[i], cur[j]); {
		case c == 0:
			i++
			j++
		case c < 0:
			del = append(del, old[i])
			i++
		default:
			add = append(add, cur[j])
			j++
		}
	}
	del = append(del, old[i:]...)
	add = append(add, cur[j:]...)
	return del, add
}

// netState is the multiset of prefixes of one family that the caller asked
// to block, sorted, and its merged form as the kernel holds it.
type netState struct {
	f      afamily
	spans  []span // the caller's prefixes as ranges, sorted, no duplicates
	merged []span // mergeSpans(spans)
	// The slices of the state before the last commit, reused by the next
	// change: with many prefixes (IPv6 /64 expansions), allocating two
	// new lists for every delta would keep the garbage collector busy.
	spareSpans, spareMerged []span
}

// commit makes the result of change the current state.
func (s *netState) commit(spans, merged []span) {
	s.spareSpans, s.spareMerged = s.spans[:0], s.merged[:0]
	s.spans, s.merged = spans, merged
}

// spansOf converts the prefixes of family f among ps to sorted spans
// without duplicates, appending to dst.
func spansOf(dst []span, ps []netip.Prefix, f afamily) []span {
	start := len(dst)
	for _, p := range ps {
		if isV6(p) != f.v6 {
			continue
		}
		dst = append(dst, prefixSpan(normPrefix(p), f))
	}
	slices.SortFunc(dst[start:], compareSpan)
	return slices.Compact(dst)
}

// isV6 tells whether p belongs to the IPv6 sets (IPv4-mapped ones do not).
func isV6(p netip.Prefix) bool { return p.Addr().Is6() && !p.Addr().Is4In6() }

// normPrefix unmaps IPv4-mapped prefixes and masks host bits, as
// firewall.Elements.Add does, so that prefixes built by hand compare equal.
func normPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() {
		b := p.Bits() - 96
		if b < 0 {
			b = 0
		}
		return netip.PrefixFrom(p.Addr().Unmap(), b).Masked()
	}
	return p.Masked()
}

// change computes the state after deleting del and adding add (both
// sorted, without duplicates), to be committed if the kernel takes it.
// Deleting a prefix that is not held or adding one that is already held is
// the caller's bug; it is reported like the kernel would (ENOENT, EEXIST)
// and nothing changes.
func (s *netState) change(del, add []span) (spans, merged []span, err error) {
	spans = slices.Grow(s.spareSpans[:0], max(0, len(s.spans)-len(del))+len(add))
	i, j, k := 0, 0, 0
	for i < len(s.spans) || k < len(add) {
		// Skip the held prefix if it is deleted.
		if i < len(s.spans) && j < len(del) {
			switch c := compareSpan(del[j], s.spans[i]); {
			case c == 0:
				i++
				j++
				continue
			case c < 0:
				return nil, nil, fmt.Errorf("delete %s: not in the set: %w", del[j].format(s.f), unix.ENOENT)
			}
		}
		switch {
		case i == len(s.spans):
			spans = append(spans, add[k])
			k++
		case k == len(add):
			spans = append(spans, s.spans[i])
			i++
		default:
			switch c := compareSpan(add[k], s.spans[i]); {
			case c == 0:
				return nil, nil, fmt.Errorf("add %s: already in the set: %w", add[k].format(s.f), unix.EEXIST)
			case c < 0:
				spans = append(spans, add[k])
				k++
			default:
				spans = append(spans, s.spans[i])
				i++
			}
		}
	}
	if j < len(del) {
		return nil, nil, fmt.Errorf("delete %s: not in the set: %w", del[j].format(s.f), unix.ENOENT)
	}
	return spans, mergeSpans(slices.Grow(s.spareMerged[:0], len(s.merged)+len(add)), spans, s.f), nil
}
