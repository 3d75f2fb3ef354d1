package file

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/dynfw/sentinel/internal/firewall"
)

// Format selects what the file contains.
type Format string

// The formats. Each file holds the complete set, so loading it is always a
// full replacement, never a delta.
const (
	// Plain is one element per line (see the package documentation for
	// the order), ending in a newline; an empty set is an empty file.
	Plain Format = "plain"
	// Ipset is input for `ipset restore`.
	Ipset Format = "ipset"
	// Nft is input for `nft -f`.
	Nft Format = "nft"
)

// AppendAddr4 appends the dotted-quad text of an IPv4 address in the
// firewall.Elements form (1.2.3.4 is 0x01020304). It is the hot loop of a
// million-address file, hence no netip.Addr round trip.
func AppendAddr4(b []byte, v uint32) []byte {
	b = appendByte(b, byte(v>>24))
	b = append(b, '.')
	b = appendByte(b, byte(v>>16))
	b = append(b, '.')
	b = appendByte(b, byte(v>>8))
	b = append(b, '.')
	return appendByte(b, byte(v))
}

func appendByte(b []byte, x byte) []byte {
	if x >= 100 {
		b = append(b, '0'+x/100)
	}
	if x >= 10 {
		b = append(b, '0'+x/10%10)
	}
	return append(b, '0'+x%10)
}

// AppendAddr6 appends the RFC 5952 text of an IPv6 address.
func AppendAddr6(b []byte, a [16]byte) []byte {
	return netip.AddrFrom16(a).AppendTo(b)
}

// Walk calls fn with the plain-format text of every element of e, in the
// order of the plain format when e is sorted (Set.Elements is). The slice
// passed to fn is reused: fn must not keep it. Walk stops at the first
// error fn returns and returns it. A nil e has no elements.
func Walk(e *firewall.Elements, fn func(text []byte) error) error {
	if e == nil {
		return nil
	}
	var buf [64]byte
	for _, v := range e.Addr4 {
		if err := fn(AppendAddr4(buf[:0], v)); err != nil {
			return err
		}
	}
	for _, a := range e.Addr6 {
		if err := fn(AppendAddr6(buf[:0], a)); err != nil {
			return err
		}
	}
	for _, p := range e.Nets {
		if err := fn(p.AppendTo(buf[:0])); err != nil {
			return err
		}
	}
	return nil
}

// chunkWriter collects output in one buffer and hands it to w in chunks, so
// that lines are appended without allocating and written with few system
// calls. The first write error sticks and ends further writing.
type chunkWriter struct {
	w   io.Writer
	buf []byte
	err error
}

// chunkSize is how much is buffered before a write; large enough that a
// million lines take a few hundred system calls.
const chunkSize = 256 << 10

// maybeFlush writes the buffer once it holds a chunk. Callers append at
// most one line between calls, so the buffer never grows much past
// chunkSize.
func (c *chunkWriter) maybeFlush() {
	if len(c.buf) >= chunkSize {
		c.flush()
	}
}

func (c *chunkWriter) flush() {
	if c.err == nil && len(c.buf) > 0 {
		_, c.err = c.w.Write(c.buf)
	}
	c.buf = c.buf[:0]
}

func (c *chunkWriter) str(s string) { c.buf = append(c.buf, s...) }

// addLine returns the buffer extended by "add <name> ", for the caller to
// append an element and a newline to.
func (c *chunkWriter) addLine(name string) []byte {
	b := append(c.buf, "add "...)
	b = append(b, name...)
	return append(b, ' ')
}

// encodePlain writes the sorted e in the plain format.
func encodePlain(c *chunkWriter, e *firewall.Elements) {
	for _, v := range e.Addr4 {
		c.buf = append(AppendAddr4(c.buf, v), '\n')
		c.maybeFlush()
	}
	for _, a := range e.Addr6 {
		c.buf = append(AppendAddr6(c.buf, a), '\n')
		c.maybeFlush()
	}
	for _, p := range e.Nets {
		c.buf = append(p.AppendTo(c.buf), '\n')
		c.maybeFlush()
	}
}

// splitNets splits sorted nets into IPv4 and IPv6 ones: ComparePrefix
// orders all IPv4 prefixes first.
func splitNets(nets []netip.Prefix) (v4, v6 []netip.Prefix) {
	i := 0
	for i < len(nets) && nets[i].Addr().Is4() {
		i++
	}
	return nets[:i], nets[i:]
}

// ipsetTmpSuffix names the set each set's new contents are loaded into
// before the swap.
const ipsetTmpSuffix = "-tmp"

// ipsetMaxName is the longest set name the kernel accepts
// (IPSET_MAXNAMELEN is 32 including the terminating NUL).
const ipsetMaxName = 31

// encodeIpset writes the sorted e as input for `ipset restore`.
//
// ipset restore executes one command after the other, so "flush the set,
// then add every element" would leave packets facing an empty or partial
// set for as long as the adds take. Instead each set's new contents go into
// a temporary set, which is then swapped with the real one (ipset's
// atomic operation; rules that reference the real set keep working) and
// destroyed. The four swaps follow one another at the end of the file.
func encodeIpset(c *chunkWriter, e *firewall.Elements, names SetNames, maxElem int) error {
	net4, net6 := splitNets(e.Nets)
	// Hash sets cannot store the unspecified address ("Null-valued
	// element"), and one refused line would abort the whole restore. It is
	// never a packet's real source, so it is left out. Sorted, it can only
	// come first.
	addr4, addr6 := e.Addr4, e.Addr6
	if len(addr4) > 0 && addr4[0] == 0 {
		addr4 = addr4[1:]
	}
	if len(addr6) > 0 && addr6[0] == ([16]byte{}) {
		addr6 = addr6[1:]
	}
	sets := []struct {
		name, typ, family string
		n                 int
		add               func(name string)
	}{
		{names.Addr4, "hash:ip", "inet", len(addr4), func(name string) {
			for _, v := range addr4 {
				c.buf = append(AppendAddr4(c.addLine(name), v), '\n')
				c.maybeFlush()
			}
		}},
		{names.Addr6, "hash:ip", "inet6", len(addr6), func(name string) {
			for _, a := range addr6 {
				c.buf = append(AppendAddr6(c.addLine(name), a), '\n')
				c.maybeFlush()
			}
		}},
		{names.Net4, "hash:net", "inet", ipsetNetCount(net4), func(name string) { ipsetNets(c, name, net4) }},
		{names.Net6, "hash:net", "inet6", ipsetNetCount(net6), func(name string) { ipsetNets(c, name, net6) }},
	}
	for _, s := range sets {
		if s.n > maxElem {
			return fmt.Errorf("set %s would hold %d elements, more than its maxelem %d", s.name, s.n, maxElem)
		}
	}
	maxStr := strconv.Itoa(maxElem)
	for _, s := range sets {
		// The real set is created only so that the swap below has a
		// partner on the first load; -exist makes that a no-op later, as
		// long as its type and maxelem have not changed.
		for _, name := range []string{s.name, s.name + ipsetTmpSuffix} {
			c.str("create " + name + " " + s.typ + " family " + s.family + " maxelem " + maxStr + " -exist\n")
		}
		// A temporary set left behind by an interrupted load is emptied.
		c.str("flush " + s.name + ipsetTmpSuffix + "\n")
		s.add(s.name + ipsetTmpSuffix)
	}
	for _, s := range sets {
		c.str("swap " + s.name + ipsetTmpSuffix + " " + s.name + "\n")
	}
	for _, s := range sets {
		c.str("destroy " + s.name + ipsetTmpSuffix + "\n")
	}
	return nil
}

// ipsetNets writes the add lines of a hash:net set. hash:net rejects a
// zero-length prefix, so /0 is written as its two halves.
func ipsetNets(c *chunkWriter, name string, nets []netip.Prefix) {
	line := func(p netip.Prefix) {
		c.buf = append(p.AppendTo(c.addLine(name)), '\n')
		c.maybeFlush()
	}
	for _, p := range nets {
		if p.Bits() != 0 {
			line(p)
			continue
		}
		// p is 0.0.0.0/0 or ::/0.
		top := netip.MustParseAddr("128.0.0.0")
		if p.Addr().Is6() {
			top = netip.MustParseAddr("8000::")
		}
		line(netip.PrefixFrom(p.Addr(), 1))
		line(netip.PrefixFrom(top, 1))
	}
}

// ipsetNetCount is the number of add lines ipsetNets writes.
func ipsetNetCount(nets []netip.Prefix) int {
	n := len(nets)
	for _, p := range nets {
		if p.Bits() == 0 {
			n++
		}
	}
	return n
}

// nftChunk is how many elements go into one `add element` statement: the
// whole file is one transaction either way, and moderate lines keep the
// file readable and nft's parser memory small.
const nftChunk = 1024

// encodeNft writes the sorted e as input for `nft -f`.
//
// nft -f applies the whole file as one transaction, so here flushing and
// refilling the sets is atomic: packets see the old contents or the new.
// The prefix sets are interval sets, which cannot hold overlapping
// elements; a prefix inside another listed prefix adds nothing, so it is
// left out, and auto-merge lets nft join adjacent ones.
func encodeNft(c *chunkWriter, e *firewall.Elements, table string, names SetNames) {
	net4, net6 := splitNets(e.Nets)
	net4, net6 = outermost(net4), outermost(net6)
	prefix := "inet " + table
	c.str("add table " + prefix + "\n")
	c.str("add set " + prefix + " " + names.Addr4 + " { type ipv4_addr; }\n")
	c.str("add set " + prefix + " " + names.Addr6 + " { type ipv6_addr; }\n")
	c.str("add set " + prefix + " " + names.Net4 + " { type ipv4_addr; flags interval; auto-merge; }\n")
	c.str("add set " + prefix + " " + names.Net6 + " { type ipv6_addr; flags interval; auto-merge; }\n")
	for _, name := range []string{names.Addr4, names.Addr6, names.Net4, names.Net6} {
		c.str("flush set " + prefix + " " + name + "\n")
	}
	// elems writes n elements in statements of nftChunk.
	elems := func(name string, n int, text func(b []byte, i int) []byte) {
		for i := 0; i < n; i++ {
			if i%nftChunk == 0 {
				c.str("add element " + prefix + " " + name + " { ")
			} else {
				c.str(", ")
			}
			c.buf = text(c.buf, i)
			if i%nftChunk == nftChunk-1 || i == n-1 {
				c.str(" }\n")
			}
			c.maybeFlush()
		}
	}
	elems(names.Addr4, len(e.Addr4), func(b []byte, i int) []byte { return AppendAddr4(b, e.Addr4[i]) })
	elems(names.Addr6, len(e.Addr6), func(b []byte, i int) []byte { return AppendAddr6(b, e.Addr6[i]) })
	elems(names.Net4, len(net4), func(b []byte, i int) []byte { return net4[i].AppendTo(b) })
	elems(names.Net6, len(net6), func(b []byte, i int) []byte { return net6[i].AppendTo(b) })
}

// outermost returns the sorted prefixes that no other prefix of the list
// contains. In ComparePrefix order a prefix comes before everything it
// contains, and kept prefixes are disjoint, so only the last kept one can
// contain the next.
func outermost(nets []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(nets))
	for _, p := range nets {
		if n := len(out); n > 0 && out[n-1].Overlaps(p) {
			continue
		}
		out = append(out, p)
	}
	return out
}
