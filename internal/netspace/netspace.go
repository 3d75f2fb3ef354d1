// Package netspace is the one definition of the address space that a DynFW
// server must never list and a DynFW client must never block: the
// special-purpose ranges of RFC 6890 and its successors, grouped in classes,
// and the IPv6 forms that embed an IPv4 address (6to4, NAT64, IPv4-mapped,
// IPv4-compatible, Teredo), so that 2002:7f00:1::1 counts as the loopback
// address it stands for.
//
// A prefix enters as a netip.Prefix; what leaves is the most important class
// of protected space it meets, and the embedded form through which it does.
// "Meets" means overlaps: a listed prefix that contains protected space
// (0.0.0.0/0, 10.0.0.0/7) is as bad as one inside it. The scorer builds its
// own fast tables from Ranges and Forms; the client asks Meets and Covers.
//
// The package depends on net/netip only, so the router client stays small.
package netspace

import "net/netip"

// Class is a kind of protected address space. The order is the order of
// importance: when a prefix meets several classes, the lowest one names it.
type Class uint8

// Classes of address space; Global is none of them.
const (
	Global Class = iota
	// Unspecified is "this host on this network": 0.0.0.0/8 and ::/128.
	// Packets from 0.0.0.0 are DHCP requests a router must answer.
	Unspecified
	// Loopback is 127.0.0.0/8 and ::1.
	Loopback
	// LinkLocal is 169.254.0.0/16 and fe80::/10 (neighbour discovery,
	// IPv6 routers).
	LinkLocal
	// Multicast is 224.0.0.0/4 and ff00::/8.
	Multicast
	// Translation is the local-use IPv4/IPv6 translation prefix
	// 64:ff9b:1::/48 (RFC 8215): where its IPv4 address sits is the
	// operator's choice, so any address in it may stand for loopback or
	// the gateway.
	Translation
	// Private is RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16.
	Private
	// CGNAT is the shared address space 100.64.0.0/10 (RFC 6598).
	CGNAT
	// UniqueLocal is fc00::/7 (RFC 4193).
	UniqueLocal
	// Special is the rest of the non-global space: documentation,
	// benchmarking, IETF protocol assignments, reserved and unallocated
	// space (everything outside 2000::/3 for IPv6), ORCHID.
	Special
	numClasses
)

var classNames = [numClasses]string{"global", "unspecified", "loopback", "link-local", "multicast", "nat64-local", "private", "cgnat", "unique-local", "special-purpose"}

// String is the class's name as metrics and logs show it.
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "unknown"
}

// Classes is a set of classes.
type Classes uint16

// Of returns the set of the given classes.
func Of(cs ...Class) Classes {
	var s Classes
	for _, c := range cs {
		s |= 1 << c
	}
	return s
}

// Has reports whether c is in the set.
func (s Classes) Has(c Class) bool { return s&(1<<c) != 0 }

// Groups of classes.
var (
	// Floor is what no firewall may ever block and no server ever list:
	// blocking it cuts a host off from itself or its link.
	Floor = Of(Unspecified, Loopback, LinkLocal, Multicast, Translation)
	// Local is the space of somebody's own network: a client blocks it
	// only when told to (dynfw-client --allow-private).
	Local = Of(Private, CGNAT, UniqueLocal)
	// NonGlobal is every class: none can hold an Internet attacker, so a
	// server never lists any of it.
	NonGlobal = Floor | Local | Of(Special)
)

// Range is a protected range and its class.
type Range struct {
	Prefix netip.Prefix
	Class  Class
}

// ranges is the table. Ranges may nest (::/3 holds ::1); the most
// important class wins.
var ranges = []Range{
	{netip.MustParsePrefix("0.0.0.0/8"), Unspecified},
	{netip.MustParsePrefix("10.0.0.0/8"), Private},
	{netip.MustParsePrefix("100.64.0.0/10"), CGNAT},
	{netip.MustParsePrefix("127.0.0.0/8"), Loopback},
	{netip.MustParsePrefix("169.254.0.0/16"), LinkLocal},
	{netip.MustParsePrefix("172.16.0.0/12"), Private},
	{netip.MustParsePrefix("192.0.0.0/24"), Special},    // IETF protocol assignments
	{netip.MustParsePrefix("192.0.2.0/24"), Special},    // documentation
	{netip.MustParsePrefix("192.168.0.0/16"), Private},  //
	{netip.MustParsePrefix("198.18.0.0/15"), Special},   // benchmarking
	{netip.MustParsePrefix("198.51.100.0/24"), Special}, // documentation
	{netip.MustParsePrefix("203.0.113.0/24"), Special},  // documentation
	{netip.MustParsePrefix("224.0.0.0/4"), Multicast},
	{netip.MustParsePrefix("240.0.0.0/4"), Special}, // reserved, limited broadcast

	{netip.MustParsePrefix("::/128"), Unspecified},
	{netip.MustParsePrefix("::1/128"), Loopback},
	{netip.MustParsePrefix("fe80::/10"), LinkLocal},
	{netip.MustParsePrefix("ff00::/8"), Multicast},
	{netip.MustParsePrefix("64:ff9b:1::/48"), Translation},
	{netip.MustParsePrefix("fc00::/7"), UniqueLocal},
	{netip.MustParsePrefix("::/3"), Special},         // mapped, compatible, NAT64, discard, unallocated
	{netip.MustParsePrefix("4000::/2"), Special},     // unallocated
	{netip.MustParsePrefix("8000::/1"), Special},     // unallocated, site-local fec0::/10
	{netip.MustParsePrefix("2001:2::/48"), Special},  // benchmarking
	{netip.MustParsePrefix("2001:10::/28"), Special}, // ORCHID
	{netip.MustParsePrefix("2001:20::/28"), Special}, // ORCHIDv2
	{netip.MustParsePrefix("2001:db8::/32"), Special},
	{netip.MustParsePrefix("3fff::/20"), Special}, // documentation (RFC 9637)
}

// Ranges returns the protected ranges whose class is in cs.
func Ranges(cs Classes) []Range {
	var out []Range
	for _, r := range ranges {
		if cs.Has(r.Class) {
			out = append(out, r)
		}
	}
	return out
}

// Form is an IPv6 range whose addresses carry an IPv4 address: the 32 bits
// at bit Offset (a multiple of 8), complemented when Inverted.
type Form struct {
	Name     string
	Prefix   netip.Prefix
	Offset   int
	Inverted bool
}

// forms are the embeddings a host can be reached through. Teredo's
// client address is its NAT's public address, complemented; its server
// address (bits 32-63) names the Teredo server, not the host, and is not
// checked.
var forms = []Form{
	{"ipv4-mapped", netip.MustParsePrefix("::ffff:0:0/96"), 96, false},
	{"ipv4-compatible", netip.MustParsePrefix("::/96"), 96, false},
	{"ipv4-translated", netip.MustParsePrefix("::ffff:0:0:0/96"), 96, false},
	{"nat64", netip.MustParsePrefix("64:ff9b::/96"), 96, false},
	{"6to4", netip.MustParsePrefix("2002::/16"), 16, false},
	{"teredo", netip.MustParsePrefix("2001::/32"), 96, true},
}

// Forms returns the IPv6 forms that embed an IPv4 address.
func Forms() []Form { return append([]Form(nil), forms...) }

// Embedded returns the IPv4 prefix that the IPv6 prefix p stands for in
// form f, and false when p does not meet f. A prefix that leaves the
// embedded bits free (2002::/16) stands for all of IPv4, 0.0.0.0/0.
func (f Form) Embedded(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() || !p.Addr().Is6() || !p.Overlaps(f.Prefix) {
		return netip.Prefix{}, false
	}
	if p.Bits() <= f.Offset {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
	}
	b := p.Masked().Addr().As16()
	i := f.Offset / 8
	v4 := [4]byte{b[i], b[i+1], b[i+2], b[i+3]}
	if f.Inverted {
		for j := range v4 {
			v4[j] = ^v4[j]
		}
	}
	return netip.PrefixFrom(netip.AddrFrom4(v4), min(p.Bits()-f.Offset, 32)).Masked(), true
}

// Hit is the protected space a prefix meets.
type Hit struct {
	Class Class
	// Form is "" when the prefix meets the range itself, else the name of
	// the IPv6 form through which it stands for the range ("6to4", ...).
	Form string
}

// first4 and first6 hold, for every first byte of an address, the classes
// of the ranges that meet the /8 it starts, so that most prefixes need no
// search; fromForm marks IPv6 /8s that meet an embedding form.
var first4, first6 [256]Classes

const fromForm Classes = 1 << 15

func init() {
	for i := range 256 {
		p4 := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i)}), 8)
		p6 := netip.PrefixFrom(netip.AddrFrom16([16]byte{byte(i)}), 8)
		for _, r := range ranges {
			if r.Prefix.Overlaps(p4) {
				first4[i] |= Of(r.Class)
			}
			if r.Prefix.Overlaps(p6) {
				first6[i] |= Of(r.Class)
			}
		}
		for _, f := range forms {
			if f.Prefix.Overlaps(p6) {
				first6[i] |= fromForm
			}
		}
	}
}

// Meets returns the most important class in cs that p meets, directly or,
// for an IPv6 prefix, through the IPv4 prefix it stands for in an
// embedding form. Global (the zero Hit) means p meets none. A direct hit
// names p unless it is only Special: ::1 is loopback, not the
// IPv4-compatible form of 0.0.0.1, while 64:ff9b::7f00:1 is named loopback
// (through nat64) rather than special-purpose.
func Meets(p netip.Prefix, cs Classes) Hit {
	if !p.IsValid() {
		return Hit{}
	}
	p = p.Masked()
	a := p.Addr()
	if p.Bits() >= 8 {
		if a.Is4() && first4[a.As4()[0]]&cs == 0 {
			return Hit{}
		}
		if a.Is6() && first6[a.As16()[0]]&(cs|fromForm) == 0 {
			return Hit{}
		}
	}
	h := meetsDirect(p, cs)
	if a.Is4() || (h.Class != Global && h.Class != Special) {
		return h
	}
	for _, f := range forms {
		if v4, ok := f.Embedded(p); ok {
			if e := meetsDirect(v4, cs); e.Class != Global && (h.Class == Global || e.Class < h.Class) {
				h = Hit{e.Class, f.Name}
			}
		}
	}
	return h
}

func meetsDirect(p netip.Prefix, cs Classes) Hit {
	var h Hit
	for _, r := range ranges {
		if cs.Has(r.Class) && (h.Class == Global || r.Class < h.Class) && r.Prefix.Overlaps(p) {
			h.Class = r.Class
		}
	}
	return h
}

// Covers reports whether p contains the address a, directly or through
// the IPv4 prefix p stands for in an embedding form (then form names it).
// It is how a client finds entries that would cut it off from a single
// address it must reach, such as its server or its gateway.
func Covers(p netip.Prefix, a netip.Addr) (form string, ok bool) {
	if !p.IsValid() || !a.IsValid() {
		return "", false
	}
	a = a.Unmap().WithZone("")
	if p.Contains(a) {
		return "", true
	}
	if !a.Is4() || !p.Addr().Is6() {
		return "", false
	}
	for _, f := range forms {
		if v4, ok := f.Embedded(p); ok && v4.Contains(a) {
			return f.Name, true
		}
	}
	return "", false
}
