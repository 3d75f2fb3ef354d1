// Package policy turns what a DynFW server lists into what a firewall must
// block, and keeps that desired state in memory so that nothing ever has to
// be read back from the kernel.
//
// Entries enter as the server's addresses and prefixes (already validated by
// the dynfw package), from a full list (Sync) or from deltas (Apply).
// The policy drops what must never be blocked (the allow-list, IPv6 when it
// is turned off) and refuses what the safety floor protects: entries that
// cover the unspecified, loopback, link-local or multicast space, the
// DynFW server's or the default gateway's address, or (unless allowed)
// private, CGNAT and unique-local space, directly or through an IPv6 form
// that embeds such an IPv4 address (netspace), and entries shorter than a
// minimum prefix. A compromised server or key can then never lock a router
// out of its own network. It optionally widens IPv6 addresses to a prefix such as /64,
// and counts references, so that removing one address never unblocks a
// prefix that another listed address still needs. What leaves are the
// changes of kernel elements, as firewall.Elements, ready for a backend.
package policy

import (
	"net/netip"
	"slices"

	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/netspace"
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
	// AllowPrivate lets private (RFC 1918), CGNAT and unique-local entries
	// through the safety floor; the rest of the floor always holds.
	AllowPrivate bool
	// MinPrefix4 and MinPrefix6 refuse entries shorter than /MinPrefix4
	// (IPv4) or /MinPrefix6 (IPv6). 0 takes the defaults, DefaultMinPrefix4
	// and DefaultMinPrefix6.
	MinPrefix4, MinPrefix6 int
}

// Default minimum prefix lengths: no DynFW server lists networks wider
// than an IPv4 /8 or an IPv6 /16, and a wider entry could only be an
// attempt to block everyone.
const (
	DefaultMinPrefix4 = 8
	DefaultMinPrefix6 = 16
)

// Skip says why an entry was not turned into an element.
type Skip int

// Reasons for skipping an entry. The Refuse reasons are the safety floor's
// (see Refused).
const (
	NotSkipped Skip = iota
	SkipAllowed
	SkipIPv6
	RefuseUnspecified // covers 0.0.0.0/8 or ::
	RefuseLoopback
	RefuseLinkLocal
	RefuseMulticast
	RefuseTranslation // 64:ff9b:1::/48, the local-use NAT64 prefix
	RefuseServer      // covers an address of the DynFW server
	RefuseGateway     // covers a default gateway
	RefusePrivate     // RFC 1918, without AllowPrivate
	RefuseCGNAT       // 100.64.0.0/10, without AllowPrivate
	RefuseUniqueLocal // fc00::/7, without AllowPrivate
	RefuseMinPrefix   // shorter than MinPrefix4 or MinPrefix6
	numSkips
)

// Refusals lists the floor's reasons, for metrics.
func Refusals() []Skip {
	var out []Skip
	for r := RefuseUnspecified; r < numSkips; r++ {
		out = append(out, r)
	}
	return out
}

// Refused reports whether the safety floor refused the entry (rather than
// the operator's allow-list or IPv6 setting skipping it).
func (s Skip) Refused() bool { return s >= RefuseUnspecified && s < numSkips }

// String is the reason as metrics label it.
func (s Skip) String() string {
	switch s {
	case SkipAllowed:
		return "allow-list"
	case SkipIPv6:
		return "ipv6-disabled"
	case RefuseServer:
		return "server"
	case RefuseGateway:
		return "gateway"
	case RefuseMinPrefix:
		return "min-prefix"
	}
	for c, r := range refuseOf {
		if r == s && s != NotSkipped {
			return netspace.Class(c).String()
		}
	}
	return "none"
}

// refuseOf maps the classes of protected space to reasons.
var refuseOf = [...]Skip{
	netspace.Unspecified: RefuseUnspecified,
	netspace.Loopback:    RefuseLoopback,
	netspace.LinkLocal:   RefuseLinkLocal,
	netspace.Multicast:   RefuseMulticast,
	netspace.Translation: RefuseTranslation,
	netspace.Private:     RefusePrivate,
	netspace.CGNAT:       RefuseCGNAT,
	netspace.UniqueLocal: RefuseUniqueLocal,
	netspace.Special:     NotSkipped, // documentation, benchmarking...: the server's business
}

// Set is the desired state: the server's entries and the kernel elements
// they make. It is not safe for concurrent use.
type Set struct {
	cfg     Config
	gen     uint8 // mark of the current full list, see Sync
	classes netspace.Classes

	// Single addresses the floor protects besides the fixed space.
	server, gateways []netip.Addr

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
	if cfg.MinPrefix4 <= 0 {
		cfg.MinPrefix4 = DefaultMinPrefix4
	}
	if cfg.MinPrefix6 <= 0 {
		cfg.MinPrefix6 = DefaultMinPrefix6
	}
	classes := netspace.Floor | netspace.Local
	if cfg.AllowPrivate {
		classes = netspace.Floor
	}
	return &Set{cfg: cfg, classes: classes, v4: map[uint32]uint8{}, v6: map[[16]byte]uint8{}, nets: map[netip.Prefix]uint8{}, refs: map[netip.Prefix]int32{}}
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

// Check reports whether an entry would be skipped, and why. The allow-list
// and the IPv6 setting come first; then the floor, in the order of its
// reasons: the fixed space (netspace.Floor), the server, the gateways,
// private space, the minimum prefix.
func (s *Set) Check(p netip.Prefix) Skip {
	why, _ := s.check(p)
	return why
}

// Explain is Check with, for a refusal through an IPv6 form that embeds an
// IPv4 address, the form's name ("6to4", "nat64", ...), for logs.
func (s *Set) Explain(p netip.Prefix) (Skip, string) { return s.check(p) }

func (s *Set) check(p netip.Prefix) (Skip, string) {
	if p.Addr().Is6() && !p.Addr().Is4In6() && s.cfg.NoIPv6 {
		return SkipIPv6, ""
	}
	for _, a := range s.cfg.Allow {
		if a.Bits() <= p.Bits() && a.Contains(p.Addr()) {
			return SkipAllowed, ""
		}
	}
	// The floor judges what the kernel would hold: the /IPv6Prefix around
	// a single IPv6 address may cover the server though the address does
	// not.
	p, _ = s.element(p)
	hit := netspace.Meets(p, s.classes)
	if hit.Class != netspace.Global && netspace.Floor.Has(hit.Class) {
		return refuseOf[hit.Class], hit.Form
	}
	for _, a := range s.server {
		if form, ok := netspace.Covers(p, a); ok {
			return RefuseServer, form
		}
	}
	for _, a := range s.gateways {
		if form, ok := netspace.Covers(p, a); ok {
			return RefuseGateway, form
		}
	}
	if hit.Class != netspace.Global {
		return refuseOf[hit.Class], hit.Form
	}
	if p.Addr().Is4() && p.Bits() < s.cfg.MinPrefix4 || p.Addr().Is6() && p.Bits() < s.cfg.MinPrefix6 {
		return RefuseMinPrefix, ""
	}
	return NotSkipped, ""
}

// Protected returns the server's and the gateways' addresses the floor
// protects now.
func (s *Set) Protected() (server, gateways []netip.Addr) { return s.server, s.gateways }

// Protect sets the single addresses the floor protects besides the fixed
// space: every address of the DynFW server (those its name resolves to and
// the one connected) and the default gateways. Entries already held that
// now cover one are removed, reported to refused, and the kernel changes
// returned; entries refused before and no longer covering one come back
// with the next full list.
func (s *Set) Protect(server, gateways []netip.Addr, refused func(netip.Prefix, Skip)) (add, del *firewall.Elements) {
	server, gateways = normalize(server), normalize(gateways)
	if slices.Equal(server, s.server) && slices.Equal(gateways, s.gateways) {
		return &firewall.Elements{}, &firewall.Elements{}
	}
	s.server, s.gateways = server, gateways
	var c changes
	drop := func(p netip.Prefix) {
		if why := s.Check(p); why == RefuseServer || why == RefuseGateway {
			s.remove(p, &c)
			if refused != nil {
				refused(p, why)
			}
		}
	}
	// Single IPv4 entries are looked up, not scanned: a router may hold a
	// million of them. An IPv4 address is also covered by IPv6 entries of
	// its embedded forms, which the scan of v6 finds.
	for _, a := range slices.Concat(server, gateways) {
		if a.Is4() {
			if _, ok := s.v4[firewall.V4(a)]; ok {
				drop(netip.PrefixFrom(a, 32))
			}
		}
	}
	for k := range s.v6 {
		drop(netip.PrefixFrom(netip.AddrFrom16(k), 128))
	}
	for p := range s.nets {
		drop(p)
	}
	return s.result(&c)
}

// normalize sorts addresses, unmapped and without zones, and drops
// duplicates and invalid ones.
func normalize(as []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if a.IsValid() {
			out = append(out, a.Unmap().WithZone(""))
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
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
// nothing. skipped is called for entries the policy ignores (for the
// floor's refusals, only when they are added).
func (s *Set) Apply(batch []Change, skipped func(netip.Prefix, Skip)) (add, del *firewall.Elements) {
	var c changes
	for _, ch := range batch {
		if why := s.Check(ch.Addr); why != NotSkipped {
			if why.Refused() && !ch.Add {
				// Removing what the floor refused: nothing to count.
				s.remove(ch.Addr, &c)
				continue
			}
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
