// Package asn maps IP addresses to the network that announces them: the
// autonomous system (AS) number and the name of its holder. The attacker
// page of Sentinel View shows it next to the country, so that a visitor
// sees at a glance whether an address belongs to a cloud provider, a
// hosting company or a home ISP.
//
// Default returns a table compiled into the binary (data/asn.dat), built by
// the generator in gen from the npm package @ip-location-db/asn, which
// merges RouteViews, the five RIRs' statistics (NRO) and DB-IP's IP to ASN
// Lite database. Only the server links this package; the router client
// never does.
//
// # Data licence and attribution
//
// The source data is licensed under CC BY 4.0
// (https://creativecommons.org/licenses/by/4.0/) by RouteViews
// (https://www.routeviews.org/), DB-IP (https://db-ip.com/) and the NRO
// (https://www.nro.net/). The licence requires crediting them wherever
// the data is used; DB-IP asks web pages showing its results for a link
// back to https://db-ip.com. Pages that show an AS show Credits, with
// their links. See data/README.
//
// # Updating the data
//
// Run go generate ./internal/asn (or go run ./internal/asn/gen -version
// NEW to move to another release of the npm package). The generator runs
// `npm pack` for the pinned version, checks the tarball's integrity and
// licence files, and rewrites data/asn.dat and known_gen_test.go.
package asn

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

	"github.com/dynfw/sentinel/internal/geoip"
)

// AS is an autonomous system: its number and the name of its holder as the
// registries give it (third-party text: escape it wherever it is shown).
// The zero AS means unknown.
type AS struct {
	Number uint32
	Name   string
}

// Known reports whether a is an AS rather than the unknown zero value.
func (a AS) Known() bool { return a.Number != 0 }

// String is "AS13335 Cloudflare, Inc." or "" when unknown.
func (a AS) String() string {
	if !a.Known() {
		return ""
	}
	if a.Name == "" {
		return fmt.Sprintf("AS%d", a.Number)
	}
	return fmt.Sprintf("AS%d %s", a.Number, a.Name)
}

// Credit is one source to credit, with the link its licence asks for.
type Credit struct {
	Name, URL string
}

// Credits are the sources of the embedded data, in the order a page lists
// them, with Licence and LicenceURL after them.
var Credits = []Credit{
	{"RouteViews", "https://www.routeviews.org/"},
	{"DB-IP", "https://db-ip.com"},
	{"NRO", "https://www.nro.net/"},
}

// Licence and LicenceURL name the licence of the embedded data.
const (
	Licence    = "CC BY 4.0"
	LicenceURL = "https://creativecommons.org/licenses/by/4.0/"
)

// Attribution is the plain-text credit of the embedded data, for logs,
// documentation and pages that cannot link (pages that can show Credits).
const Attribution = "IP address to network (AS) data: RouteViews (https://www.routeviews.org/), " +
	"DB-IP (https://db-ip.com) and the NRO (https://www.nro.net/), licensed under CC BY 4.0 " +
	"(https://creativecommons.org/licenses/by/4.0/); merged by ip-location-db (npm @ip-location-db/asn) " +
	"and re-encoded by Sentinel DynFW."

// Table is an immutable, in-memory range table: sorted range starts per
// address family and the AS of each range up to the next start. It is safe
// for concurrent use; lookups are a binary search and never allocate.
type Table struct {
	v4   []uint32
	v4as []uint32 // index into ases; 0: unknown
	v6   []u128
	v6as []uint32
	// Direct indexes over 16 address bits, as in package geoip: the /16s
	// of IPv4 and the /20s of 2000::/4; idx[k] is the number of starts
	// below block k.
	v4idx, v6idx []uint32
	// ases[0] is the unknown AS; the others are sorted by number.
	ases    []AS
	version string
}

//go:embed data/asn.dat
var embedded []byte

var (
	defaultOnce  sync.Once
	defaultTable *Table
)

// Default returns the table embedded in the binary, decoded on first use
// (see BenchmarkDecode for the cost), so that a process that never shows
// an attacker page pays nothing.
func Default() *Table {
	defaultOnce.Do(func() {
		t, err := decodeGzip(embedded)
		if err != nil {
			// The file is generated and covered by tests: a build
			// defect, not a run-time condition.
			panic("asn: embedded table: " + err.Error())
		}
		defaultTable = t
	})
	return defaultTable
}

// Lazy looks addresses up in Default, decoding the table on the first
// lookup rather than when a program wires it up.
type Lazy struct{}

// Lookup is Default().Lookup.
func (Lazy) Lookup(a netip.Addr) AS { return Default().Lookup(a) }

// Version describes the data: its source and release.
func (t *Table) Version() string { return t.version }

// Len returns the number of IPv4 and IPv6 ranges (including the stretches
// recorded as unknown between them) and of autonomous systems.
func (t *Table) Len() (v4, v6, ases int) { return len(t.v4), len(t.v6), len(t.ases) - 1 }

// Lookup returns the AS announcing a, or the zero AS when it is unknown or
// a is not a public address. IPv4-mapped IPv6 addresses are looked up as
// IPv4.
func (t *Table) Lookup(a netip.Addr) AS {
	a = a.Unmap()
	if !geoip.Public(a) {
		return AS{}
	}
	x := addrU128(a)
	var i uint32
	if a.Is4() {
		i = t.lookup4(uint32(x.lo))
	} else {
		i = t.lookup6(x)
	}
	if int(i) < len(t.ases) { // only false for the zero Table
		return t.ases[i]
	}
	return AS{}
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

// lookup4 returns the AS index of the last range starting at or before x,
// 0 when x precedes every range.
func (t *Table) lookup4(x uint32) uint32 {
	if len(t.v4idx) == 0 {
		return 0
	}
	k := x >> 16
	lo, hi := t.v4idx[k], t.v4idx[k+1]
	if lo == hi || t.v4[lo] > x {
		// The range holding x began before its /16.
		if lo == 0 {
			return 0
		}
		return t.v4as[lo-1]
	}
	blk := t.v4[lo:hi]
	b, n := 0, len(blk)
	for n > 1 {
		half := n >> 1
		if blk[b+half] <= x {
			b += half
		}
		n -= half
	}
	return t.v4as[int(lo)+b]
}

// lookup6 is lookup4 for IPv6, with the direct index over 2000::/4.
func (t *Table) lookup6(x u128) uint32 {
	lo, hi := 0, len(t.v6)
	if x.hi>>60 == 2 && len(t.v6idx) > 0 {
		k := x.hi >> 44 & 0xffff
		l, h := int(t.v6idx[k]), int(t.v6idx[k+1])
		if l == h || x.less(t.v6[l]) {
			if l == 0 {
				return 0
			}
			return t.v6as[l-1]
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
	return t.v6as[lo+b]
}

// decodeGzip decodes a gzip-compressed table (see MarshalBinary).
func decodeGzip(b []byte) (*Table, error) {
	if len(b) < 18 {
		return nil, errors.New("asn: gzip: file too short")
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("asn: gzip: %w", err)
	}
	// The gzip trailer records the size (mod 2^32): read into a buffer of
	// that size; a wrong trailer fails gzip's own length check at EOF.
	size := binary.LittleEndian.Uint32(b[len(b)-4:])
	if size > 64<<20 {
		return nil, errors.New("asn: gzip: implausible size")
	}
	raw := make([]byte, size)
	if _, err := io.ReadFull(zr, raw); err != nil {
		return nil, fmt.Errorf("asn: gzip: %w", err)
	}
	if n, err := zr.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return nil, fmt.Errorf("asn: gzip: data beyond the recorded size (%v)", err)
	}
	t := new(Table)
	if err := t.UnmarshalBinary(raw); err != nil {
		return nil, err
	}
	return t, nil
}
