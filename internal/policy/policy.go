// Package policy turns what a DynFW server lists into what a firewall must
// block, and keeps that desired state in memory so that nothing ever has to
// be read back from the kernel.
//
// Entries enter as the server's addresses and prefixes (already validated by
// the dynfw package), from a full list (Sync) or from deltas (Add, Remove).
// The policy drops what must never be blocked (the allow-list, IPv6 when it
// is turned off), optionally widens IPv6 addresses to a prefix such as /64,
// and counts references, so that removing one address never unblocks a
// prefix that another listed address still needs. What leaves are the
// changes of kernel elements, as firewall.Elements, ready for a backend.
package policy

import (
	"net/netip"

	"github.com/dynfw/sentinel/internal/firewall"
)

// Config is the address policy.
type Config struct {
	// IPv6Prefix, when between 1 and 127, blocks the whole /IPv6Prefix
	// around every listed IPv6 address (attackers hold whole /64s). 0 blocks
	// single addresses.
	IPv6Prefix int
	// NoIPv6 ignores IPv6 entries entirely.
	NoIPv6 bool
	// Allow lists networks that are never blocked (your own). An entry
	// inside one of them is ignored; a listed prefix that merely overlaps
	// one is kept (backends put the allow-list before their drop rules).
	Allow []netip.Prefix
}

// Skip says why an entry was not turned into an element.
type Skip int

// Reasons for skipping an entry.
const (
	NotSkipped Skip = iota
	SkipAllowed
	SkipIPv6
)

func (s Skip) String() string {
	switch s {
	case SkipAllowed:
		return "allow-list"
	case SkipIPv6:
		return "ipv6-disabled"
	}
	return "none"
}

// Set is the desired state: the server's entries and the kernel elements
// they make. It is not safe for concurrent use.
type Set struct {
	cfg Config
	gen uint8 // mark of the current full list, see Sync

	// Entries as listed, with the generation that last saw them. Single
	// IPv4 and IPv6 addresses are stored compactly; a million IPv4
	// entries cost about 10 MB.
	v4   map[uint32]uint8
	v6   map[[16]byte]uint8
	nets map[netip.Prefix]uint8

	// Reference counts of the elements several entries can share: IPv6
	// expansions and listed prefixes.
	refs map[netip.Prefix]int32
}

// New returns an empty Set.
func New(cfg Config) *Set {
	for i, p := range cfg.Allow {
		cfg.Allow[i] = p.Masked()
	}
	return &Set{cfg: cfg, v4: map[uint32]uint8{}, v6: map[[16]byte]uint8{}, nets: map[netip.Prefix]uint8{}, refs: map[netip.Prefix]int32{}}
}

// Reserve sizes an empty set for about n4 single IPv4 and n6 single IPv6
// entries, so that loading a large first list does not grow the maps step
// by step (each step holds the old and the new table at once).
func (s *Set) Reserve(n4, n6 int) {
	if len(s.v4) == 0 && n4 > 0 {
		s.v4 = make(map[uint32]uint8, n4)
	}
	if len(s.v6) == 0 && n6 > 0 {
		s.v6 = make(map[[16]byte]uint8, n6)
	}
}

// Config returns the policy the set applies.
func (s *Set) Config() Config { return s.cfg }

// Len returns the number of entries and of kernel elements.
func (s *Set) Len() (entries, elements int) {
	entries = len(s.v4) + len(s.v6) + len(s.nets)
	elements = len(s.v4) + len(s.refs)
	if s.cfg.IPv6Prefix == 0 {
		elements += len(s.v6)
	}
	return entries, elements
}

// Counts returns the number of kernel elements by kind, for metrics.
func (s *Set) Counts() (addr4, addr6, net4, net6 int) {
	addr4 = len(s.v4)
	if s.cfg.IPv6Prefix == 0 {
		addr6 = len(s.v6)
	}
	for p := range s.refs {
		if p.Addr().Is4() {
			net4++
		} else {
			net6++
		}
	}
	return addr4, addr6, net4, net6
}

// Elements returns every kernel element, for a backend's Replace.
func (s *Set) Elements() *firewall.Elements {
	e := &firewall.Elements{Addr4: make([]uint32, 0, len(s.v4))}
	for a := range s.v4 {
		e.Addr4 = append(e.Addr4, a)
	}
	if s.cfg.IPv6Prefix == 0 {
		e.Addr6 = make([][16]byte, 0, len(s.v6))
		for a := range s.v6 {
			e.Addr6 = append(e.Addr6, a)
		}
	}
	for p := range s.refs {
		e.Nets = append(e.Nets, p)
	}
	return e
}

// Check reports whether an entry would be skipped, and why.
func (s *Set) Check(p netip.Prefix) Skip {
	if p.Addr().Is6() && !p.Addr().Is4In6() && s.cfg.NoIPv6 {
		return SkipIPv6
	}
	for _, a := range s.cfg.Allow {
		if a.Bits() <= p.Bits() && a.Contains(p.Addr()) {
			return SkipAllowed
		}
	}
	return NotSkipped
}

// kind classifies an entry: single IPv4, single IPv6 or prefix.
func kind(p netip.Prefix) int {
	if p.Bits() == p.Addr().BitLen() {
		if p.Addr().Is4() {
			return 4
		}
		return 6
	}
	return 0
}

// element returns the kernel element an entry maps to, and whether that
// element is shared (reference counted) rather than the entry itself.
func (s *Set) element(p netip.Prefix) (netip.Prefix, bool) {
	switch kind(p) {
	case 6:
		if s.cfg.IPv6Prefix > 0 && s.cfg.IPv6Prefix < 128 {
			return netip.PrefixFrom(p.Addr(), s.cfg.IPv6Prefix).Masked(), true
		}
		return p, false
	case 4:
		return p, false
	}
	return p, true
}

// changes accumulates element changes and reports each element's net
// change once: an element added and removed within one batch is no change.
// In direct mode (a full Sync, where every entry is inserted or swept at most
// once) unshared elements go straight to the result, so resyncing a list of a
// million addresses needs no map of a million touched elements.
type changes struct {
	direct   bool
	add, del firewall.Elements
	before   map[netip.Prefix]bool // presence before the batch, for touched elements
	order    []netip.Prefix
}

func (c *changes) touch(el netip.Prefix, wasPresent bool) {
	if c.before == nil {
		c.before = map[netip.Prefix]bool{}
	}
	if _, seen := c.before[el]; !seen {
		c.before[el] = wasPresent
		c.order = append(c.order, el)
	}
}

// single records the change of an element that belongs to one entry only.
func (c *changes) single(el netip.Prefix, added bool) {
	if !c.direct {
		c.touch(el, !added)
		return
	}
	if added {
		c.add.Add(el)
	} else {
		c.del.Add(el)
	}
}

// insert adds an entry; it reports whether the entry is new. gen marks it.
func (s *Set) insert(p netip.Prefix, gen uint8, c *changes) bool {
	el, shared := s.element(p)
	switch kind(p) {
	case 4:
		k := firewall.V4(p.Addr())
		if _, ok := s.v4[k]; ok {
			s.v4[k] = gen
			return false
		}
		c.single(el, true)
		s.v4[k] = gen
		return true
	case 6:
		k := p.Addr().As16()
		if _, ok := s.v6[k]; ok {
			s.v6[k] = gen
			return false
		}
		if shared {
			c.touch(el, s.refs[el] > 0)
			s.refs[el]++
		} else {
			c.single(el, true)
		}
		s.v6[k] = gen
		return true
	}
	if _, ok := s.nets[p]; ok {
		s.nets[p] = gen
		return false
	}
	c.touch(el, s.refs[el] > 0)
	s.refs[el]++
	s.nets[p] = gen
	return true
}

// remove deletes an entry; it reports whether it was present.
func (s *Set) remove(p netip.Prefix, c *changes) bool {
	el, shared := s.element(p)
	switch kind(p) {
	case 4:
		k := firewall.V4(p.Addr())
		if _, ok := s.v4[k]; !ok {
			return false
		}
		c.single(el, false)
		delete(s.v4, k)
		return true
	case 6:
		k := p.Addr().As16()
		if _, ok := s.v6[k]; !ok {
			return false
		}
		if shared {
			s.release(el, c)
		} else {
			c.single(el, false)
		}
		delete(s.v6, k)
		return true
	}
	if _, ok := s.nets[p]; !ok {
		return false
	}
	s.release(el, c)
	delete(s.nets, p)
	return true
}

func (s *Set) release(el netip.Prefix, c *changes) {
	c.touch(el, true)
	if s.refs[el] <= 1 {
		delete(s.refs, el)
	} else {
		s.refs[el]--
	}
}

func (s *Set) present(el netip.Prefix) bool {
	switch kind(el) {
	case 4:
		_, ok := s.v4[firewall.V4(el.Addr())]
		return ok
	case 6:
		if s.cfg.IPv6Prefix == 0 {
			_, ok := s.v6[el.Addr().As16()]
			return ok
		}
	}
	return s.refs[el] > 0
}

// result turns the touched elements into the net additions and removals.
func (s *Set) result(c *changes) (add, del *firewall.Elements) {
	add, del = &c.add, &c.del
	for _, el := range c.order {
		was, is := c.before[el], s.present(el)
		switch {
		case !was && is:
			add.Add(el)
		case was && !is:
			del.Add(el)
		}
	}
	return add, del
}

// Change is one delta for Apply.
type Change struct {
	Add  bool
	Addr netip.Prefix
}

// Apply applies a batch of deltas in order and returns the net kernel
// changes. Adding a listed entry or removing an unlisted one changes
// nothing. skipped is called for entries the policy ignores.
func (s *Set) Apply(batch []Change, skipped func(netip.Prefix, Skip)) (add, del *firewall.Elements) {
	var c changes
	for _, ch := range batch {
		if why := s.Check(ch.Addr); why != NotSkipped {
			if skipped != nil {
				skipped(ch.Addr, why)
			}
			continue
		}
		if ch.Add {
			s.insert(ch.Addr, s.gen, &c)
		} else {
			s.remove(ch.Addr, &c)
		}
	}
	return s.result(&c)
}

// Sync makes the set equal to a full list. The list is walked by each,
// which must call its argument once per entry (dynfw.DecodeListFunc fits);
// an entry listed twice counts once. It returns the kernel changes from the
// previous state, so a resync costs what changed, not the list's size. The
// caller must pass a list it has already validated: a failure half-way is
// not undone.
func (s *Set) Sync(each func(func(netip.Prefix)), skipped func(netip.Prefix, Skip)) (add, del *firewall.Elements) {
	c := changes{direct: true}
	s.gen ^= 1
	gen := s.gen
	each(func(p netip.Prefix) {
		if why := s.Check(p); why != NotSkipped {
			if skipped != nil {
				skipped(p, why)
			}
			return
		}
		s.insert(p, gen, &c)
	})
	// Sweep entries the list no longer holds.
	for k, g := range s.v4 {
		if g != gen {
			s.remove(netip.PrefixFrom(firewall.AddrFrom4(k), 32), &c)
		}
	}
	for k, g := range s.v6 {
		if g != gen {
			s.remove(netip.PrefixFrom(netip.AddrFrom16(k), 128), &c)
		}
	}
	for p, g := range s.nets {
		if g != gen {
			s.remove(p, &c)
		}
	}
	return s.result(&c)
}
