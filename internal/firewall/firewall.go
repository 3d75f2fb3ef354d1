// Package firewall defines what a firewall backend of dynfw-client does: hold
// the set of blocked addresses in the kernel (nftables, ipset) or somewhere
// else (a file, another program), and change it atomically.
//
// Data enters as Elements: the client's address policy has already turned
// the server's list into what must be blocked (allow-list applied, IPv6
// expanded to prefixes when asked). A backend never decides what to block and
// never reads large sets back from the kernel: the caller keeps the desired
// state in memory and tells the backend exactly what changes.
package firewall

import (
	"context"
	"encoding/binary"
	"net/netip"
	"slices"
)

// Elements is a set of things to block, split the way kernels store them.
// Addresses are kept compactly so that a million of them costs megabytes,
// not tens of megabytes.
type Elements struct {
	// Addr4 are single IPv4 addresses as big-endian integers
	// (1.2.3.4 is 0x01020304).
	Addr4 []uint32
	// Addr6 are single IPv6 addresses (never IPv4-mapped).
	Addr6 [][16]byte
	// Nets are prefixes shorter than a single address, masked (no host
	// bits), IPv4 or IPv6. They may overlap one another.
	Nets []netip.Prefix
}

// Len is the number of elements.
func (e *Elements) Len() int {
	if e == nil {
		return 0
	}
	return len(e.Addr4) + len(e.Addr6) + len(e.Nets)
}

// Add appends one prefix to the right list: a full-length prefix is a
// single address. IPv4-mapped IPv6 is stored as IPv4.
func (e *Elements) Add(p netip.Prefix) {
	a := p.Addr().Unmap()
	bits := p.Bits()
	if p.Addr().Is4In6() {
		bits -= 96
	}
	switch {
	case bits == a.BitLen() && a.Is4():
		e.Addr4 = append(e.Addr4, V4(a))
	case bits == a.BitLen():
		e.Addr6 = append(e.Addr6, a.As16())
	default:
		e.Nets = append(e.Nets, netip.PrefixFrom(a, bits).Masked())
	}
}

// Sort orders every list, for deterministic output and tests.
func (e *Elements) Sort() {
	slices.Sort(e.Addr4)
	slices.SortFunc(e.Addr6, func(a, b [16]byte) int { return compare16(a, b) })
	slices.SortFunc(e.Nets, ComparePrefix)
}

// Prefixes returns all elements as prefixes, single addresses with full
// length, in the order Addr4, Addr6, Nets.
func (e *Elements) Prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, e.Len())
	for _, a := range e.Addr4 {
		out = append(out, netip.PrefixFrom(AddrFrom4(a), 32))
	}
	for _, a := range e.Addr6 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(a), 128))
	}
	return append(out, e.Nets...)
}

// V4 converts an IPv4 address to its Addr4 form.
func V4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// AddrFrom4 converts an Addr4 value back to an address.
func AddrFrom4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// ComparePrefix orders prefixes by family, address, then length.
func ComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func compare16(a, b [16]byte) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

// Backend keeps a firewall's blocked set equal to what the client asks.
//
// The caller guarantees that Apply never adds an element the backend holds
// and never deletes one it does not hold, so backends need not read kernel
// state to check. Methods are called from one goroutine at a time.
type Backend interface {
	// Name identifies the backend in logs and metrics ("nftables").
	Name() string
	// Replace makes the backend hold exactly e. Where the firewall allows
	// it this is one atomic step: packets see the old set or the new one,
	// never an empty or partial set. Replace is used for the first list
	// after start, when the backend's contents are unknown.
	Replace(ctx context.Context, e *Elements) error
	// Apply adds and deletes elements as one batch, atomically where the
	// firewall allows it. Either may be nil.
	Apply(ctx context.Context, add, del *Elements) error
	// Close releases the backend. With keep, tables, sets, rules and their
	// contents stay in place (the last good set stays enforced while the
	// client is down); otherwise everything the backend created is removed.
	Close(keep bool) error
}
