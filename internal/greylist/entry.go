package greylist

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// Entry is one listed address or prefix with its greylist tags ("telnet",
// "port_scan", "haas", ...).
type Entry struct {
	// Addr is the listed network. A single address has the full length
	// (/32 or /128) and is written without it.
	Addr netip.Prefix
	// Tags are the reasons for the listing. Order and duplicates do not
	// matter; the writers sort them.
	Tags []string
}

// maxTagLen bounds a tag; real tags are short words such as "port_scan".
const maxTagLen = 64

// ValidTag reports whether t may appear in the files: 1 to 64 ASCII letters,
// digits, '_', '-' or '.'. A comma would split one tag into two for every
// consumer that splits the field on ",", and a quote or a line break would
// need CSV escaping that the Turris format never shows, so such tags are
// refused rather than written ambiguously.
func ValidTag(t string) bool {
	if len(t) == 0 || len(t) > maxTagLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// Normalize returns entries in the canonical form that the writers use:
// prefixes masked, IPv4-mapped IPv6 unmapped and zones dropped; invalid
// prefixes and invalid tags (see ValidTag) left out; tags sorted and
// de-duplicated; entries for the same network merged (the union of their
// tags); entries sorted as the package documentation describes. It does not
// modify its argument, and returns it unchanged (no copy) when it is already
// canonical, which is the common case for lists produced by this package. The
// result may share Tags slices with the argument.
func Normalize(entries []Entry) []Entry {
	out, _ := normalize(entries)
	return out
}

// dropped counts what normalize left out, for the snapshot's log line.
type dropped struct {
	addrs, tags int
}

func normalize(entries []Entry) ([]Entry, dropped) {
	var d dropped
	if canonical(entries) {
		return entries, d
	}
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		p, ok := canonPrefix(e.Addr)
		if !ok {
			d.addrs++
			continue
		}
		tags, n := canonTags(e.Tags)
		d.tags += n
		out = append(out, Entry{Addr: p, Tags: tags})
	}
	out = sortEntries(out)
	// Merge runs of the same network. Tags are copied before merging so that
	// the caller's slices are never appended to.
	w := 0
	for i := 0; i < len(out); i++ {
		if w > 0 && out[w-1].Addr == out[i].Addr {
			merged := make([]string, 0, len(out[w-1].Tags)+len(out[i].Tags))
			merged = append(merged, out[w-1].Tags...)
			merged = append(merged, out[i].Tags...)
			slices.Sort(merged)
			out[w-1].Tags = slices.Compact(merged)
			continue
		}
		out[w] = out[i]
		w++
	}
	clear(out[w:])
	return out[:w], d
}

// canonical reports whether entries are already in canonical form. It is
// one linear pass, far cheaper than sorting a million entries again.
func canonical(entries []Entry) bool {
	for i, e := range entries {
		if p, ok := canonPrefix(e.Addr); !ok || p != e.Addr || !canonicalTags(e.Tags) {
			return false
		}
		if i > 0 && comparePrefix(entries[i-1].Addr, e.Addr) >= 0 {
			return false
		}
	}
	return true
}

// canonPrefix masks p and writes IPv4-mapped IPv6 networks as IPv4, so
// that ::ffff:1.2.3.4 and 1.2.3.4 are one row and one firewall element.
func canonPrefix(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	a, bits := p.Addr().WithZone(""), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	q, err := a.Prefix(bits)
	return q, err == nil
}

func canonicalTags(tags []string) bool {
	for i, t := range tags {
		if !ValidTag(t) || (i > 0 && tags[i-1] >= t) {
			return false
		}
	}
	return true
}

// canonTags returns tags sorted, de-duplicated and without invalid ones,
// and how many invalid ones it left out.
func canonTags(tags []string) ([]string, int) {
	if canonicalTags(tags) {
		return tags, 0
	}
	out := make([]string, 0, len(tags))
	n := 0
	for _, t := range tags {
		if ValidTag(t) {
			out = append(out, t)
		} else {
			n++
		}
	}
	slices.Sort(out)
	return slices.Compact(out), n
}

// class orders the four kinds of rows: IPv4 addresses, IPv6 addresses,
// IPv4 prefixes, IPv6 prefixes.
func class(p netip.Prefix) int {
	c := 0
	if p.Addr().Is6() {
		c = 1
	}
	if p.Bits() != p.Addr().BitLen() {
		c += 2
	}
	return c
}

func comparePrefix(a, b netip.Prefix) int {
	if ca, cb := class(a), class(b); ca != cb {
		return ca - cb
	}
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// sortEntries returns es in canonical order. It sorts integer keys and
// then gathers the entries, several times faster than sorting the entries
// with comparePrefix (lists from a scorer's map arrive in random order). An
// IPv4 key is one uint64 (prefix flag, address, length, index), which
// slices.Sort compares without a function call; IPv6 keys are structs.
func sortEntries(es []Entry) []Entry {
	if len(es) > v4IndexMask {
		slices.SortFunc(es, func(a, b Entry) int { return comparePrefix(a.Addr, b.Addr) })
		return es
	}
	var v4 []uint64
	var v6 []v6Key
	for i, e := range es {
		a, prefix := e.Addr.Addr(), class(e.Addr) >= 2
		if a.Is4() {
			b := a.As4()
			k := uint64(binary.BigEndian.Uint32(b[:]))<<31 | uint64(e.Addr.Bits())<<25 | uint64(i)
			if prefix {
				k |= 1 << 63
			}
			v4 = append(v4, k)
			continue
		}
		b := a.As16()
		v6 = append(v6, v6Key{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), prefix, uint8(e.Addr.Bits()), int32(i)})
	}
	slices.Sort(v4)
	slices.SortFunc(v6, func(a, b v6Key) int {
		switch {
		case a.prefix != b.prefix:
			if b.prefix {
				return -1
			}
			return 1
		case a.hi != b.hi:
			return cmp.Compare(a.hi, b.hi)
		case a.lo != b.lo:
			return cmp.Compare(a.lo, b.lo)
		}
		return int(a.bits) - int(b.bits)
	})
	p4, _ := slices.BinarySearch(v4, 1<<63)
	p6 := len(v6)
	for i, k := range v6 {
		if k.prefix {
			p6 = i
			break
		}
	}
	out := make([]Entry, 0, len(es))
	for _, k := range v4[:p4] {
		out = append(out, es[k&v4IndexMask])
	}
	for _, k := range v6[:p6] {
		out = append(out, es[k.idx])
	}
	for _, k := range v4[p4:] {
		out = append(out, es[k&v4IndexMask])
	}
	for _, k := range v6[p6:] {
		out = append(out, es[k.idx])
	}
	return out
}

// v4IndexMask is the 25 bits of an IPv4 key that hold the entry's index;
// longer lists (over 33 million entries) are sorted the slow way.
const v4IndexMask = 1<<25 - 1

type v6Key struct {
	hi, lo uint64 // the address, big-endian
	prefix bool
	bits   uint8
	idx    int32
}

// appendAddr writes a single address without its length and a prefix in
// CIDR notation.
func appendAddr(b []byte, p netip.Prefix) []byte {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().AppendTo(b)
	}
	return p.AppendTo(b)
}
