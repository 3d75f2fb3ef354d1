package asn

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The binary form of a Table, gzip-compressed on top for data/asn.dat.
// Columnar, like package geoip's, because columns of similar values
// compress far better than interleaved records:
//
//	magic    "SASNTB1\n"
//	version  uvarint length, UTF-8 text
//	ases     uvarint n; n uvarint deltas between successive AS numbers
//	         (the first from 0; strictly increasing, so never 0); n
//	         uvarint name lengths; the n names, concatenated. AS i+1 is the
//	         i-th listed; index 0 is implicitly the unknown AS
//	v4       uvarint count; count uvarint deltas between successive range
//	         starts (the first from 0); count uvarint AS indexes
//	v6       uvarint count; per range the uvarint delta of the upper 64
//	         bits, then the lower 64 bits as a uvarint (a delta when the
//	         upper half did not change, else the absolute value); count
//	         uvarint AS indexes
//
// Starts are strictly increasing and each range extends to the next
// start, so unknown stretches are ranges of index 0; adjacent ranges of
// the same AS are merged, so no two successive indexes are equal.
const magic = "SASNTB1\n"

// maxName bounds an AS name; registry names are far shorter.
const maxName = 255

// MarshalBinary encodes t in the format above (uncompressed).
func (t *Table) MarshalBinary() ([]byte, error) {
	if len(t.ases) == 0 || t.ases[0] != (AS{}) {
		return nil, errors.New("asn: table has an invalid AS list")
	}
	b := []byte(magic)
	b = binary.AppendUvarint(b, uint64(len(t.version)))
	b = append(b, t.version...)
	ases := t.ases[1:]
	b = binary.AppendUvarint(b, uint64(len(ases)))
	var prev uint32
	for _, a := range ases {
		b = binary.AppendUvarint(b, uint64(a.Number-prev))
		prev = a.Number
	}
	for _, a := range ases {
		b = binary.AppendUvarint(b, uint64(len(a.Name)))
	}
	for _, a := range ases {
		b = append(b, a.Name...)
	}
	b = binary.AppendUvarint(b, uint64(len(t.v4)))
	var p4 uint32
	for _, x := range t.v4 {
		b = binary.AppendUvarint(b, uint64(x-p4))
		p4 = x
	}
	for _, i := range t.v4as {
		b = binary.AppendUvarint(b, uint64(i))
	}
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
	for _, i := range t.v6as {
		b = binary.AppendUvarint(b, uint64(i))
	}
	return b, nil
}

// UnmarshalBinary decodes the format above, checking every invariant the
// lookups rely on, so that a corrupt file is an error, never a wrong
// answer or a panic.
func (t *Table) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	if string(d.bytes(len(magic))) != magic {
		return errors.New("asn: not an AS table (bad magic)")
	}
	t.version = string(d.bytes(d.count(1)))
	n := d.count(2) // a number delta and a length byte at least
	t.ases = make([]AS, n+1)
	var num uint64
	for i := range n {
		delta := d.uvarint()
		if delta == 0 {
			d.fail("AS numbers not increasing")
		}
		num += delta
		if num > 0xffffffff {
			d.fail("AS number out of range")
		}
		t.ases[i+1].Number = uint32(num)
	}
	lens := make([]int, n)
	for i := range lens {
		l := d.uvarint()
		if l > maxName {
			d.fail("AS name of %d bytes", l)
		}
		lens[i] = int(l)
	}
	total := 0
	for _, l := range lens {
		total += l
	}
	// One string for every name, sliced: 90,000 allocations fewer.
	all := string(d.bytes(total))
	for i, l := range lens {
		if d.err != nil {
			break
		}
		s := all[:l]
		all = all[l:]
		if !validName(s) {
			d.fail("AS%d has an invalid name", t.ases[i+1].Number)
		}
		t.ases[i+1].Name = s
	}
	n4 := d.count(2)
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
	t.v4as = d.indexes(n4, len(t.ases))
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
	t.v6as = d.indexes(n6, len(t.ases))
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.off)
	}
	if d.err != nil {
		*t = Table{} // answers "unknown" rather than half a table
		return d.err
	}
	t.index()
	return nil
}

// validName accepts what NewTable keeps: UTF-8 text without control
// characters (or nothing: an AS without a name).
func validName(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// decoder reads the binary format and remembers the first error, so that
// the code above can read straight through and check once.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("asn: corrupt table at byte %d: "+format, append([]any{d.off}, args...)...)
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

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b[d.off:])
	// Overlong forms are refused, so that every table has one encoding.
	if n <= 0 || n > 1 && d.b[d.off+n-1] == 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return x
}

// count reads an element count bounded by the bytes left (each element
// taking at least minSize), so that a corrupt count cannot make us
// allocate gigabytes.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)-d.off)/uint64(minSize) {
		d.fail("count %d exceeds the data", n)
		return 0
	}
	return int(n)
}

// indexes reads n AS indexes below nases; successive ranges must differ,
// or they would have been merged.
func (d *decoder) indexes(n, nases int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		v := d.uvarint()
		if v >= uint64(nases) {
			d.fail("AS index %d out of range", v)
			break
		}
		out[i] = uint32(v)
		if i > 0 && out[i] == out[i-1] {
			d.fail("unmerged ranges")
			break
		}
	}
	return out
}

// u128 is an IPv6 address (or an IPv4 address in the low 32 bits) as a
// number.
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

func u32Addr(x uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
}

func u128Addr(x u128) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:], x.lo)
	return netip.AddrFrom16(b)
}

// Range is an inclusive address range announced by one AS, for building a
// Table.
type Range struct {
	From, To netip.Addr
	AS       AS
	// Line is the source line, for error messages; 0 when not from a file.
	Line int
}

// NewTable builds a Table from ranges in any order. Ranges must not overlap
// nor mix address families, every AS needs a number (an AS of number 0 is
// recorded as unknown) and one AS number must always carry the same name;
// names are trimmed of surrounding space. Gaps between ranges are unknown.
// version describes the data for Version.
func NewTable(version string, ranges []Range) (*Table, error) {
	type r struct {
		from, to u128
		as       uint32
		line     int
	}
	names := map[uint32]string{}
	var v4, v6 []r
	for _, g := range ranges {
		f, to := g.From.Unmap(), g.To.Unmap()
		if !f.IsValid() || !to.IsValid() || f.Is4() != to.Is4() {
			return nil, rangeErr(g, "mixes address families")
		}
		x := r{addrU128(f), addrU128(to), g.AS.Number, g.Line}
		if x.from.cmp(x.to) > 0 {
			return nil, rangeErr(g, "starts after its end")
		}
		if x.as != 0 {
			name := strings.TrimSpace(g.AS.Name)
			if !validName(name) || len(name) > maxName {
				return nil, rangeErr(g, "has an invalid AS name")
			}
			if old, ok := names[x.as]; ok && old != name {
				return nil, rangeErr(g, fmt.Sprintf("names AS%d %q, elsewhere %q", x.as, name, old))
			}
			names[x.as] = name
		}
		if f.Is4() {
			v4 = append(v4, x)
		} else {
			v6 = append(v6, x)
		}
	}
	t := &Table{version: version, ases: []AS{{}}}
	nums := make([]uint32, 0, len(names))
	for n := range names {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	index := make(map[uint32]uint32, len(nums)+1)
	index[0] = 0
	for _, n := range nums {
		index[n] = uint32(len(t.ases))
		t.ases = append(t.ases, AS{n, names[n]})
	}
	// flatten turns ranges into (start, index) boundaries: each range
	// yields its start, its end+1 opens an unknown stretch unless the next
	// range starts there, and equal neighbours merge.
	flatten := func(rs []r, family string, last u128) ([]u128, []uint32, error) {
		slices.SortFunc(rs, func(a, b r) int { return a.from.cmp(b.from) })
		var starts []u128
		var ids []uint32
		push := func(at u128, id uint32) {
			if n := len(starts); n > 0 && starts[n-1] == at {
				starts, ids = starts[:n-1], ids[:n-1]
			}
			if n := len(ids); (n > 0 && ids[n-1] == id) || (n == 0 && id == 0) {
				return
			}
			starts, ids = append(starts, at), append(ids, id)
		}
		for i, x := range rs {
			if i > 0 && x.from.cmp(rs[i-1].to) <= 0 {
				return nil, nil, fmt.Errorf("asn: %s range at line %d overlaps the range at line %d", family, x.line, rs[i-1].line)
			}
			push(x.from, index[x.as])
			if x.to != last {
				push(x.to.inc(), 0)
			}
		}
		return starts, ids, nil
	}
	s4, id4, err := flatten(v4, "IPv4", u128{lo: 0xffffffff})
	if err != nil {
		return nil, err
	}
	s6, id6, err := flatten(v6, "IPv6", u128{^uint64(0), ^uint64(0)})
	if err != nil {
		return nil, err
	}
	t.v4, t.v4as = make([]uint32, len(s4)), id4
	for i, s := range s4 {
		t.v4[i] = uint32(s.lo)
	}
	t.v6, t.v6as = s6, id6
	t.index()
	return t, nil
}

func rangeErr(g Range, msg string) error {
	if g.Line > 0 {
		return fmt.Errorf("asn: line %d: range %v-%v %s", g.Line, g.From, g.To, msg)
	}
	return fmt.Errorf("asn: range %v-%v %s", g.From, g.To, msg)
}

// Ranges returns the table's ranges in address order, IPv4 first, without
// the unknown stretches: the inverse of NewTable up to merging, for tests
// and exports.
func (t *Table) Ranges() []Range {
	var out []Range
	for i, s := range t.v4 {
		if t.v4as[i] == 0 {
			continue
		}
		end := uint32(0xffffffff)
		if i+1 < len(t.v4) {
			end = t.v4[i+1] - 1
		}
		out = append(out, Range{From: u32Addr(s), To: u32Addr(end), AS: t.ases[t.v4as[i]]})
	}
	for i, x := range t.v6 {
		if t.v6as[i] == 0 {
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
		out = append(out, Range{From: u128Addr(x), To: u128Addr(end), AS: t.ases[t.v6as[i]]})
	}
	return out
}
