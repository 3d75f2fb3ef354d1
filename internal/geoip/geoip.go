// Package geoip maps IP addresses to countries for the server: statistics
// pages and per-country views need a country for every attacker address, and
// a fresh installation must have one without registering for and downloading
// a commercial database first.
//
// Default returns a table compiled into the binary from Debian's
// tor-geoipdb package (/usr/share/tor/geoip and geoip6), which Tor converts
// from the IPFire Location database. Open loads a newer or better database at
// run time: a MaxMind or DB-IP .mmdb file, or a file in Tor's geoip text
// format.
//
// # Data licence and attribution
//
// The embedded data is derived from the IPFire Location database
// (https://location.ipfire.org/) by the IPFire Project, licensed under
// CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/). It was
// converted to ranges by Tor's geoip-db-tool and shipped by Debian in
// tor-geoipdb; this package merged adjacent ranges and re-encoded them
// (data/geoip.dat). The licence requires crediting the source wherever the
// data is shown: web pages that display countries show [Attribution]. The
// derived file itself stays under CC BY-SA 4.0, see data/README.
//
// Debian's /usr/share/doc/tor-geoipdb/copyright is outdated: it still names
// the WebHosting.Info IP-to-Country Database. The data file headers, which
// describe the data actually shipped, name IPFire Location and CC BY-SA 4.0.
//
// # Updating the data
//
// Install tor-geoipdb and iso-codes, then run go generate ./internal/geoip
// (or go run ./internal/geoip/gen). The generator rewrites data/geoip.dat,
// names_gen.go and known_gen_test.go, and refuses input whose licence header
// no longer matches Attribution.
package geoip

//go:generate go run ./gen

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
)

// Attribution credits the source of the embedded data, as CC BY-SA 4.0
// requires. Show it on every page that displays countries from Default.
const Attribution = "IP address country data: IPFire Location database " +
	"(https://location.ipfire.org/) by the IPFire Project, licensed under " +
	"CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/); " +
	"converted by Tor's geoip-db-tool (Debian tor-geoipdb) and re-encoded by Sentinel DynFW."

// DB finds the country of an address.
type DB interface {
	// Country returns the ISO 3166-1 alpha-2 code (upper case, "XK" for
	// Kosovo) of a's country, or "" when it is unknown, private or reserved.
	// IPv4-mapped IPv6 addresses are looked up as IPv4.
	Country(a netip.Addr) string
}

// Table is an immutable, in-memory range table: sorted range starts per
// address family and the country of each range up to the next start. It is
// safe for concurrent use. Lookups are a binary search and never allocate.
type Table struct {
	v4   []uint32
	v4cc []uint8
	// IPv6 range starts need all 128 bits: the upper 64 alone would not
	// do, thousands of ranges in the tor data end inside a /64.
	v6   []u128
	v6cc []uint8
	// Direct indexes over 16 address bits, the /16s of IPv4 and the /20s
	// of 2000::/4 (all allocated IPv6 unicast space): v4idx[k] is the
	// number of starts below block k, so a lookup binary-searches only
	// the starts inside its block, usually a few cache lines, instead of
	// ~19 scattered ones. This halves the IPv4 lookup time.
	v4idx []uint32
	v6idx []uint32
	// codes maps a country index to its code; codes[0] is "" (unknown).
	codes       []string
	version     string
	attribution string
}

//go:embed data/geoip.dat
var embedded []byte

var (
	defaultOnce  sync.Once
	defaultTable *Table
)

// Default returns the table embedded in the binary. It is decoded on first
// use (about 15 ms and 10 MB of memory) rather than at program start, so
// binaries that link the package but never look up a country pay nothing.
func Default() *Table {
	defaultOnce.Do(func() {
		t, err := decodeGzip(embedded)
		if err != nil {
			// The file is generated and covered by tests, so this is a
			// build defect rather than a run-time condition.
			panic("geoip: embedded database: " + err.Error())
		}
		t.attribution = Attribution
		defaultTable = t
	})
	return defaultTable
}

// Version describes the data for display, e.g. the source and its date.
func (t *Table) Version() string { return t.version }

// Attribution returns the credit the data's licence asks pages showing its
// countries to display: the Attribution constant for the embedded table and
// for tor geoip files from IPFire Location, "" for other files, whose
// licence the package cannot know.
func (t *Table) Attribution() string { return t.attribution }

// Len returns the number of IPv4 and IPv6 ranges (including the ranges
// recorded as unknown between countries).
func (t *Table) Len() (v4, v6 int) { return len(t.v4), len(t.v6) }

// Country implements DB.
func (t *Table) Country(a netip.Addr) string {
	a = a.Unmap()
	if !public(a) {
		return ""
	}
	x := addrU128(a)
	var i uint8
	if a.Is4() {
		i = t.lookup4(uint32(x.lo))
	} else {
		i = t.lookup6(x)
	}
	if int(i) < len(t.codes) { // only false for the zero Table
		return t.codes[i]
	}
	return ""
}

// index builds v4idx and v6idx.
func (t *Table) index() {
	t.v4idx = make([]uint32, 1<<16+1)
	i := 0
	for k := range t.v4idx {
		for i < len(t.v4) && t.v4[i]>>16 < uint32(k) {
			i++
		}
		t.v4idx[k] = uint32(i)
	}
	t.v6idx = make([]uint32, 1<<16+1)
	i = 0
	for k := range t.v6idx {
		for i < len(t.v6) && t.v6[i].hi < 2<<60|uint64(k)<<44 {
			i++
		}
		t.v6idx[k] = uint32(i)
	}
}

// lookup4 returns the country index of the last range starting at or before
// x, 0 when x precedes every range.
func (t *Table) lookup4(x uint32) uint8 {
	if len(t.v4idx) == 0 {
		return 0
	}
	// The starts in x's /16 are v4[lo:hi]; if none is <= x, the range
	// containing x began before the /16, at lo-1.
	k := x >> 16
	lo, hi := t.v4idx[k], t.v4idx[k+1]
	if lo == hi || t.v4[lo] > x {
		if lo == 0 {
			return 0
		}
		return t.v4cc[lo-1]
	}
	// Written so that the compiler emits conditional moves: a branch
	// would be mispredicted on every other step.
	blk := t.v4[lo:hi]
	b, n := 0, len(blk)
	for n > 1 {
		half := n >> 1
		if blk[b+half] <= x {
			b += half
		}
		n -= half
	}
	return t.v4cc[int(lo)+b]
}

// lookup6 is lookup4 for IPv6, with the direct index over the /20s of
// 2000::/4, where all allocated unicast space is.
func (t *Table) lookup6(x u128) uint8 {
	lo, hi := 0, len(t.v6)
	if x.hi>>60 == 2 && len(t.v6idx) > 0 {
		k := x.hi >> 44 & 0xffff
		l, h := int(t.v6idx[k]), int(t.v6idx[k+1])
		if l == h || x.less(t.v6[l]) {
			if l == 0 {
				return 0
			}
			return t.v6cc[l-1]
		}
		lo, hi = l, h
	} else if hi == 0 || x.less(t.v6[0]) {
		return 0
	}
	blk := t.v6[lo:hi]
	b, n := 0, len(blk)
	for n > 1 {
		half := n >> 1
		if !x.less(blk[b+half]) {
			b += half
		}
		n -= half
	}
	return t.v6cc[lo+b]
}

// Special-purpose blocks (RFC 6890 and successors) that Go's netip
// predicates do not cover. No database assigns them a country, but a stale
// or hand-written file might, and a country for them would only mislead.
var reserved4 = [...]struct{ net, mask uint32 }{
	{0x00000000, 0xff000000}, // 0.0.0.0/8 "this network"
	{0x64400000, 0xffc00000}, // 100.64.0.0/10 carrier-grade NAT
	{0xc0000000, 0xffffff00}, // 192.0.0.0/24 IETF protocol assignments
	{0xc0000200, 0xffffff00}, // 192.0.2.0/24 documentation
	{0xc6120000, 0xfffe0000}, // 198.18.0.0/15 benchmarking
	{0xc6336400, 0xffffff00}, // 198.51.100.0/24 documentation
	{0xcb007100, 0xffffff00}, // 203.0.113.0/24 documentation
	{0xf0000000, 0xf0000000}, // 240.0.0.0/4 reserved
}

var reserved6 = [...]netip.Prefix{
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64, the real peer is IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("100::/64"),       // discard-only
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("3fff::/20"),      // documentation
}

// public reports whether a (already unmapped) can have a country at all.
func public(a netip.Addr) bool {
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	if a.Is4() {
		b := a.As4()
		x := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		for _, r := range reserved4 {
			if x&r.mask == r.net {
				return false
			}
		}
		return true
	}
	for _, p := range reserved6 {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// decodeGzip decodes a gzip-compressed table file (see MarshalBinary).
func decodeGzip(b []byte) (*Table, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	// Read into a buffer sized from the gzip trailer (the uncompressed size
	// mod 2^32) rather than letting io.ReadAll grow one by doubling. A
	// wrong trailer is a corrupt file: the sizes then disagree, or gzip's
	// own length and checksum test at EOF fails.
	size := binary.LittleEndian.Uint32(b[len(b)-4:]) // gzip.NewReader saw more than 4 bytes
	if size > 64<<20 {
		return nil, errors.New("gzip: implausible size")
	}
	raw := make([]byte, size)
	if _, err := io.ReadFull(zr, raw); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if n, err := zr.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return nil, fmt.Errorf("gzip: data beyond the recorded size (%v)", err)
	}
	t := new(Table)
	if err := t.UnmarshalBinary(raw); err != nil {
		return nil, err
	}
	return t, nil
}
