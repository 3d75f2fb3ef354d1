package file

import (
	"bytes"
	"net/netip"
	"slices"

	"github.com/dynfw/sentinel/internal/firewall"
)

// Set is a blocked set held in memory as three sorted lists without
// duplicates: IPv4 addresses, IPv6 addresses and prefixes. Backends that
// rewrite their whole output (this package, the exec backend when it replays)
// keep one so that they never read their output back.
//
// Sorted slices rather than maps: the output has to be sorted anyway, a
// slice costs 4 bytes per IPv4 address where a map costs several times
// that, and a batch of d changes is merged into n elements with d binary
// searches and n bytes of memmove, which is cheaper than re-sorting a map's
// keys for every write.
//
// The zero Set is empty and ready to use. A Set is not safe for concurrent
// use.
type Set struct {
	cur firewall.Elements
	// spare holds the previous lists' memory for Apply's merge to write
	// into, so that a steady stream of small batches allocates nothing.
	spare firewall.Elements
	// add and del are Apply's sorted copies of the caller's batch; Apply
	// filters them in place and returns them.
	add, del firewall.Elements
}

// Len is the number of elements.
func (s *Set) Len() int { return s.cur.Len() }

// Elements returns the set's lists, sorted as firewall.Elements.Sort
// orders them. The result shares memory with the Set: it is valid until the
// next Replace or Apply and must not be modified.
func (s *Set) Elements() *firewall.Elements { return &s.cur }

// Replace makes the set hold exactly e. Duplicates in e are dropped;
// e itself is not modified.
func (s *Set) Replace(e *firewall.Elements) {
	if e == nil {
		e = &firewall.Elements{}
	}
	s.cur.Addr4 = sorted4(s.cur.Addr4, e.Addr4)
	s.cur.Addr6 = sorted6(s.cur.Addr6, e.Addr6)
	s.cur.Nets = sortedNets(s.cur.Nets, e.Nets)
}

// Apply deletes del from the set, then adds add (so an element in both ends
// up present). Either may be nil; neither is modified.
//
// It returns what actually changed, sorted: the elements of del that were
// present and the elements of add that were absent once del was applied.
// With the caller's guarantees of firewall.Backend these are simply del and
// add; filtering keeps the output of a backend exact even if a caller
// breaks them. The results share memory with the Set and are valid until
// the next Replace or Apply.
func (s *Set) Apply(add, del *firewall.Elements) (added, deleted *firewall.Elements) {
	if add == nil {
		add = &firewall.Elements{}
	}
	if del == nil {
		del = &firewall.Elements{}
	}
	s.add.Addr4 = sorted4(s.add.Addr4, add.Addr4)
	s.add.Addr6 = sorted6(s.add.Addr6, add.Addr6)
	s.add.Nets = sortedNets(s.add.Nets, add.Nets)
	s.del.Addr4 = sorted4(s.del.Addr4, del.Addr4)
	s.del.Addr6 = sorted6(s.del.Addr6, del.Addr6)
	s.del.Nets = sortedNets(s.del.Nets, del.Nets)

	s.cur.Addr4, s.spare.Addr4, s.del.Addr4, s.add.Addr4 = merge(s.cur.Addr4, s.spare.Addr4, s.del.Addr4, s.add.Addr4, cmp4)
	s.cur.Addr6, s.spare.Addr6, s.del.Addr6, s.add.Addr6 = merge(s.cur.Addr6, s.spare.Addr6, s.del.Addr6, s.add.Addr6, cmp6)
	s.cur.Nets, s.spare.Nets, s.del.Nets, s.add.Nets = merge(s.cur.Nets, s.spare.Nets, s.del.Nets, s.add.Nets, firewall.ComparePrefix)
	return &s.add, &s.del
}

// merge removes the sorted del from the sorted cur, then inserts the sorted
// add, using spare's memory for the intermediate list. It returns the new
// list, the memory to keep as spare, and del and add filtered in place to
// what changed.
func merge[T any](cur, spare, del, add []T, cmp func(a, b T) int) (next, nextSpare, gone, fresh []T) {
	gone, fresh = del[:0], add[:0]
	if len(del) > 0 {
		out := spare[:0]
		rest := cur
		for _, d := range del {
			i, found := slices.BinarySearchFunc(rest, d, cmp)
			out = append(out, rest[:i]...)
			if found {
				gone = append(gone, d)
				i++
			}
			rest = rest[i:]
		}
		cur, spare = append(out, rest...), cur
	}
	if len(add) > 0 {
		out := spare[:0]
		rest := cur
		for _, a := range add {
			i, found := slices.BinarySearchFunc(rest, a, cmp)
			out = append(out, rest[:i]...)
			rest = rest[i:]
			if !found {
				fresh = append(fresh, a)
				out = append(out, a)
			}
		}
		cur, spare = append(out, rest...), cur
	}
	return cur, spare, gone, fresh
}

func cmp4(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmp6(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) }

// sorted4 copies src into dst's memory, sorted and without duplicates.
// slices.Sort rather than SortFunc: a million IPv4 addresses sort about
// twice as fast without the comparison callback.
func sorted4(dst, src []uint32) []uint32 {
	dst = append(dst[:0], src...)
	slices.Sort(dst)
	return slices.Compact(dst)
}

func sorted6(dst, src [][16]byte) [][16]byte {
	dst = append(dst[:0], src...)
	slices.SortFunc(dst, cmp6)
	return slices.Compact(dst)
}

// sortedNets also normalises what Elements.Add would have: prefixes are
// masked and IPv4-mapped prefixes become IPv4, so that equal networks
// compare equal. Invalid prefixes are dropped.
func sortedNets(dst, src []netip.Prefix) []netip.Prefix {
	dst = dst[:0]
	for _, p := range src {
		if !p.IsValid() {
			continue
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		dst = append(dst, p.Masked())
	}
	slices.SortFunc(dst, firewall.ComparePrefix)
	return slices.Compact(dst)
}
