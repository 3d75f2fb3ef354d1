package geoip

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
)

// The binary form of a Table, used for the embedded data/geoip.dat (gzip
// compressed on top). It is columnar because columns of similar values
// compress far better than interleaved records:
//
//	magic    "SGEOIP1\n"
//	version  uvarint length, UTF-8 text
//	codes    1 byte n (n <= 255), then n two-letter codes; index 0 is
//	         implicitly "" (unknown), so code i+1 is the i-th listed
//	v4       uvarint count; count uvarint deltas between successive range
//	         starts (the first from 0); count country index bytes
//	v6       uvarint count; per range the uvarint delta of the upper 64
//	         bits, then the lower 64 bits as a uvarint (a delta when the
//	         upper half did not change, else the absolute value, nearly
//	         always 0); count country index bytes
//
// Starts are strictly increasing and each range extends to the next start,
// so unknown stretches are stored as ranges of index 0. Adjacent ranges of
// the same country are merged and no two successive indexes are equal.
const magic = "SGEOIP1\n"

// MarshalBinary encodes t in the format above (uncompressed).
func (t *Table) MarshalBinary() ([]byte, error) {
	if len(t.codes) == 0 || len(t.codes) > 256 || t.codes[0] != "" {
		return nil, errors.New("geoip: table has an invalid code list")
	}
	b := []byte(magic)
	b = binary.AppendUvarint(b, uint64(len(t.version)))
	b = append(b, t.version...)
	b = append(b, byte(len(t.codes)-1))
	for _, c := range t.codes[1:] {
		b = append(b, c...)
	}
	b = binary.AppendUvarint(b, uint64(len(t.v4)))
	var prev uint32
	for _, x := range t.v4 {
		b = binary.AppendUvarint(b, uint64(x-prev))
		prev = x
	}
	b = append(b, t.v4cc...)
	b = binary.AppendUvarint(b, uint64(len(t.v6)))
	var p u128
	for i, x := range t.v6 {
		b = binary.AppendUvarint(b, x.hi-p.hi)
		l := x.lo
		if i > 0 && x.hi == p.hi {
			l -= p.lo
		}
		b = binary.AppendUvarint(b, l)
		p = x
	}
	b = append(b, t.v6cc...)
	return b, nil
}

// UnmarshalBinary decodes the format above, checking every invariant the
// lookups rely on, so a corrupt file is an error and never a wrong answer
// or a panic.
func (t *Table) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	if string(d.bytes(len(magic))) != magic {
		return errors.New("geoip: not a geoip table (bad magic)")
	}
	t.version = string(d.bytes(d.count(1)))
	n := int(d.byte())
	t.codes = make([]string, 1, n+1)
	for range n {
		c := string(d.bytes(2))
		if d.err == nil && !isUpper2(c) {
			d.fail("bad country code %q", c)
		}
		t.codes = append(t.codes, c)
	}
	n4 := d.count(2) // at least one varint byte and one index byte each
	t.v4 = make([]uint32, n4)
	var x uint64
	for i := range t.v4 {
		delta := d.uvarint()
		if i > 0 && delta == 0 {
			d.fail("IPv4 range starts not increasing")
		}
		x += delta
		if x > 0xffffffff {
			d.fail("IPv4 range start out of range")
		}
		t.v4[i] = uint32(x)
	}
	t.v4cc = d.indexes(n4, len(t.codes))
	n6 := d.count(3)
	t.v6 = make([]u128, n6)
	var h, l uint64
	for i := range t.v6 {
		dh, dl := d.uvarint(), d.uvarint()
		if h+dh < h {
			d.fail("IPv6 range start out of range")
		}
		switch {
		case i == 0 || dh > 0:
			h, l = h+dh, dl
		case dl == 0 || l+dl < l:
			d.fail("IPv6 range starts not increasing")
		default:
			l += dl
		}
		t.v6[i] = u128{h, l}
	}
	t.v6cc = d.indexes(n6, len(t.codes))
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.off)
	}
	if d.err != nil {
		*t = Table{} // answers "" rather than half a table
		return d.err
	}
	t.index()
	return nil
}

// decoder reads the binary format, remembering the first error so that the
// code above can read straight through and check once.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("geoip: corrupt table at byte %d: "+format, append([]any{d.off}, args...)...)
	}
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b)-d.off {
		d.fail("truncated")
		return nil
	}
	s := d.b[d.off : d.off+n]
	d.off += n
	return s
}

func (d *decoder) byte() byte {
	if s := d.bytes(1); s != nil {
		return s[0]
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b[d.off:])
	// Overlong forms (a last byte of 0) are rejected so that every table
	// has exactly one encoding.
	if n <= 0 || n > 1 && d.b[d.off+n-1] == 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return x
}

// count reads an element count and bounds it by the bytes left, each
// element taking at least minSize bytes, so a corrupt count cannot make us
// allocate gigabytes.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)-d.off)/uint64(minSize) {
		d.fail("count %d exceeds the data", n)
		return 0
	}
	return int(n)
}

// indexes reads n country indexes below ncodes; successive ranges must
// differ in country, or they would have been merged.
func (d *decoder) indexes(n, ncodes int) []uint8 {
	s := d.bytes(n)
	for i, c := range s {
		if int(c) >= ncodes {
			d.fail("country index %d out of range", c)
			break
		}
		if i > 0 && c == s[i-1] {
			d.fail("unmerged ranges")
			break
		}
	}
	return slices.Clone(s)
}

func isUpper2(c string) bool {
	return len(c) == 2 && 'A' <= c[0] && c[0] <= 'Z' && 'A' <= c[1] && c[1] <= 'Z'
}

// u128 is an IPv6 address (or an IPv4 address in the low 32 bits) as a
// number, for building tables.
type u128 struct{ hi, lo uint64 }

func (x u128) cmp(y u128) int {
	if c := cmp.Compare(x.hi, y.hi); c != 0 {
		return c
	}
	return cmp.Compare(x.lo, y.lo)
}

// less compares through the borrow of a 128-bit subtraction, without
// branches, for the lookup loops.
func (x u128) less(y u128) bool {
	_, borrow := bits.Sub64(x.lo, y.lo, 0)
	_, borrow = bits.Sub64(x.hi, y.hi, borrow)
	return borrow != 0
}

func (x u128) inc() u128 {
	x.lo++
	if x.lo == 0 {
		x.hi++
	}
	return x
}

func addrU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// Range is an inclusive address range of one country, for building a Table.
type Range struct {
	From, To netip.Addr
	// Country is an ISO 3166-1 alpha-2 code in either case; anything Name
	// does not know (such as "??", "EU" or "AP") is stored as unknown, and
	// the deprecated "UK" means "GB".
	Country string
	// Line is the source line, for error messages; 0 when not from a file.
	Line int
}

// NewTable builds a Table from ranges in any order. Ranges must not overlap
// and must not mix address families; gaps between them are unknown. The
// version describes the data for Version.
func NewTable(version string, ranges []Range) (*Table, error) {
	t, err := newTable(version, ranges)
	if err != nil {
		return nil, fmt.Errorf("geoip: %w", err)
	}
	return t, nil
}

func newTable(version string, ranges []Range) (*Table, error) {
	type r struct {
		from, to u128
		code     string
		line     int
	}
	var v4, v6 []r
	for _, g := range ranges {
		f, to := g.From.Unmap(), g.To.Unmap()
		if !f.IsValid() || !to.IsValid() || f.Is4() != to.Is4() {
			return nil, rangeErr(g, "mixes address families")
		}
		x := r{addrU128(f), addrU128(to), canonical(g.Country), g.Line}
		if x.from.cmp(x.to) > 0 {
			return nil, rangeErr(g, "starts after its end")
		}
		if f.Is4() {
			v4 = append(v4, x)
		} else {
			v6 = append(v6, x)
		}
	}
	t := &Table{version: version, codes: []string{""}}
	index := map[string]uint8{"": 0}
	code := func(c string) uint8 {
		i, ok := index[c]
		if !ok {
			i = uint8(len(t.codes))
			index[c] = i
			t.codes = append(t.codes, c)
		}
		return i
	}
	// flatten turns ranges into (start, index) boundaries: each range
	// yields its start, its end+1 opens an unknown stretch unless the next
	// range starts there, and equal neighbours merge.
	flatten := func(rs []r, family string, last u128) ([]u128, []uint8, error) {
		slices.SortFunc(rs, func(a, b r) int { return a.from.cmp(b.from) })
		var starts []u128
		var ccs []uint8
		push := func(at u128, cc uint8) {
			if n := len(starts); n > 0 && starts[n-1] == at {
				starts, ccs = starts[:n-1], ccs[:n-1]
			}
			if n := len(ccs); (n > 0 && ccs[n-1] == cc) || (n == 0 && cc == 0) {
				return
			}
			starts, ccs = append(starts, at), append(ccs, cc)
		}
		for i, x := range rs {
			if i > 0 && x.from.cmp(rs[i-1].to) <= 0 {
				return nil, nil, fmt.Errorf("%s range at line %d overlaps the range at line %d", family, x.line, rs[i-1].line)
			}
			push(x.from, code(x.code))
			if x.to != last {
				push(x.to.inc(), 0)
			}
		}
		return starts, ccs, nil
	}
	s4, cc4, err := flatten(v4, "IPv4", u128{lo: 0xffffffff})
	if err != nil {
		return nil, err
	}
	s6, cc6, err := flatten(v6, "IPv6", u128{^uint64(0), ^uint64(0)})
	if err != nil {
		return nil, err
	}
	if len(t.codes) > 256 {
		return nil, errors.New("more than 255 countries")
	}
	t.v4, t.v4cc = make([]uint32, len(s4)), cc4
	for i, s := range s4 {
		t.v4[i] = uint32(s.lo)
	}
	t.v6, t.v6cc = s6, cc6
	t.index()
	return t, nil
}

func rangeErr(g Range, msg string) error {
	if g.Line > 0 {
		return fmt.Errorf("line %d: range %v-%v %s", g.Line, g.From, g.To, msg)
	}
	return fmt.Errorf("range %v-%v %s", g.From, g.To, msg)
}

// Ranges returns the table's country ranges in address order, IPv4 first,
// without the unknown stretches. It is the inverse of NewTable up to merging
// and code normalisation, for exporting and for tests.
func (t *Table) Ranges() []Range {
	var out []Range
	for i, s := range t.v4 {
		if t.v4cc[i] == 0 {
			continue
		}
		end := uint32(0xffffffff)
		if i+1 < len(t.v4) {
			end = t.v4[i+1] - 1
		}
		out = append(out, Range{From: u32Addr(s), To: u32Addr(end), Country: t.codes[t.v4cc[i]]})
	}
	for i, x := range t.v6 {
		if t.v6cc[i] == 0 {
			continue
		}
		end := u128{^uint64(0), ^uint64(0)}
		if i+1 < len(t.v6) {
			end = t.v6[i+1]
			if end.lo == 0 {
				end.hi--
			}
			end.lo--
		}
		out = append(out, Range{From: u128Addr(x), To: u128Addr(end), Country: t.codes[t.v6cc[i]]})
	}
	return out
}

func u32Addr(x uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
}

func u128Addr(x u128) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:], x.lo)
	return netip.AddrFrom16(b)
}
