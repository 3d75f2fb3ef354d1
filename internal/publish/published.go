package publish

import (
	"net/netip"
	"slices"
	"time"
)

// Published is the list as the last dynfw/list carried it (before the first
// one, the restored state that the first will carry). It is immutable and
// shared by every reader: nothing may modify List.
type Published struct {
	Version, Serial uint64
	// List is sorted by address, then by prefix length (ComparePrefix).
	List []netip.Prefix
	// At is when the list was published (or restored).
	At time.Time
}

// Published returns the last published list. Readers (the HTTP list API)
// take no lock the delta path needs: the run goroutine replaces the
// pointer each time it publishes a list.
func (p *Publisher) Published() *Published { return p.published.Load() }

// ComparePrefix orders prefixes by address, then by length: the order of
// dynfw/list and of the list API.
func ComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// sortedList returns the published set, sorted, and remembers it for the
// next call. Only the run goroutine calls it, which owns the set and may
// read it without the lock. Sorting half a million prefixes takes a quarter
// of a second, during which deltas would wait, so the previous sorted list
// is merged with the keys changed since (p.touched), sorted alone: a copy
// and a comparison per entry, some 10 ms at that size. The result is a new
// slice every time, since the previous one may still be read through
// Published.
func (p *Publisher) sortedList() []netip.Prefix {
	if p.sortedOK && p.sortedSerial == p.serial {
		return p.sorted
	}
	defer func() {
		p.sortedSerial, p.sortedOK = p.serial, true
		clear(p.touched)
	}()
	if !p.sortedOK || len(p.touched) > len(p.set)/4 {
		l := make([]netip.Prefix, 0, len(p.set))
		for k := range p.set {
			l = append(l, k)
		}
		slices.SortFunc(l, ComparePrefix)
		p.sorted = l
		return l
	}
	var added, removed []netip.Prefix
	for k := range p.touched {
		_, was := slices.BinarySearchFunc(p.sorted, k, ComparePrefix)
		_, is := p.set[k]
		switch {
		case is && !was:
			added = append(added, k)
		case was && !is:
			removed = append(removed, k)
		}
	}
	slices.SortFunc(added, ComparePrefix)
	slices.SortFunc(removed, ComparePrefix)
	out := make([]netip.Prefix, 0, len(p.set))
	for _, k := range p.sorted {
		if len(removed) > 0 && removed[0] == k {
			removed = removed[1:]
			continue
		}
		for len(added) > 0 && ComparePrefix(added[0], k) < 0 {
			out = append(out, added[0])
			added = added[1:]
		}
		out = append(out, k)
	}
	out = append(out, added...)
	p.sorted = out
	return out
}
