package msgpack

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Reader decodes MessagePack values one at a time from a byte slice.
//
// It never copies: ReadStringBytes and ReadExt return sub-slices of the input
// (with their capacity clipped, so appending to them cannot overwrite the
// input), which stay valid as long as the input does. Every declared length
// is checked against the bytes that remain before it is used, so a hostile
// header costs nothing. A method that fails leaves the Reader where it was, so
// after a *TypeError the caller can read the value another way or Skip it.
//
// The zero Reader reads an empty input; Reset points it at another. A Reader
// must not be used from several goroutines at once.
type Reader struct {
	buf []byte
	off int
}

// NewReader returns a Reader positioned at the start of b.
func NewReader(b []byte) *Reader { return &Reader{buf: b} }

// Reset makes r read b from its start, so one Reader can be reused without
// allocating.
func (r *Reader) Reset(b []byte) { r.buf, r.off = b, 0 }

// Remaining returns the number of unread bytes.
func (r *Reader) Remaining() int { return len(r.buf) - r.off }

// Offset returns the position of the next unread byte in the input.
func (r *Reader) Offset() int { return r.off }

// head describes the encoding of the value at some offset.
type head struct {
	t   Type
	hdr int    // bytes before the payload: type byte, length, ext type code
	n   uint64 // str, bin, ext: payload bytes; array: elements; map: entries
}

// parseHead decodes the header of the value at buf[off:]. It checks that the
// header itself is complete but not that the payload or elements are.
func parseHead(buf []byte, off int) (head, error) {
	if off >= len(buf) {
		return head{}, shortError(off)
	}
	c := buf[off]
	switch {
	case c <= 0x7f || c >= 0xe0:
		return head{t: TypeInt, hdr: 1}, nil
	case c <= 0x8f:
		return head{t: TypeMap, hdr: 1, n: uint64(c & 0x0f)}, nil
	case c <= 0x9f:
		return head{t: TypeArray, hdr: 1, n: uint64(c & 0x0f)}, nil
	case c <= 0xbf:
		return head{t: TypeStr, hdr: 1, n: uint64(c & 0x1f)}, nil
	}
	h := head{t: typeOf[c]}
	switch c {
	case 0xc0, 0xc2, 0xc3:
		h.hdr = 1
	case 0xc1:
		return head{}, &DecodeError{Offset: off, Err: ErrInvalidCode}
	case 0xc4, 0xd9, 0xcc, 0xd0:
		h.hdr = 2
	case 0xc5, 0xda, 0xdc, 0xde, 0xc7, 0xcd, 0xd1:
		h.hdr = 3
	case 0xc8:
		h.hdr = 4
	case 0xc6, 0xdb, 0xdd, 0xdf, 0xca, 0xce, 0xd2:
		h.hdr = 5
	case 0xc9:
		h.hdr = 6
	case 0xcb, 0xcf, 0xd3:
		h.hdr = 9
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		h.hdr, h.n = 2, 1<<(c-0xd4)
	}
	b := buf[off:]
	if len(b) < h.hdr {
		return head{}, shortError(off)
	}
	switch c {
	case 0xc4, 0xd9, 0xc7:
		h.n = uint64(b[1])
	case 0xc5, 0xda, 0xdc, 0xde, 0xc8:
		h.n = uint64(binary.BigEndian.Uint16(b[1:]))
	case 0xc6, 0xdb, 0xdd, 0xdf, 0xc9:
		h.n = uint64(binary.BigEndian.Uint32(b[1:]))
	}
	return h, nil
}

func shortError(off int) error {
	return &DecodeError{Offset: off, Err: ErrShortBuffer}
}

func lengthError(off int, h head, remain int) error {
	what := "bytes"
	switch h.t {
	case TypeArray:
		what = "elements"
	case TypeMap:
		what = "entries"
	}
	return &DecodeError{Offset: off, Err: fmt.Errorf("%w: %s of %d %s, %d bytes remain",
		ErrShortBuffer, h.t, h.n, what, remain)}
}

// typeError explains why the value at the current offset is not a want.
func (r *Reader) typeError(want string) error {
	if r.off >= len(r.buf) {
		return shortError(r.off)
	}
	c := r.buf[r.off]
	if c == 0xc1 {
		return &DecodeError{Offset: r.off, Err: ErrInvalidCode}
	}
	return &TypeError{Want: want, Got: typeOf[c], Offset: r.off}
}

// PeekType returns the kind of the next value without consuming it. It fails
// with ErrShortBuffer at the end of the input and with ErrInvalidCode on 0xc1.
func (r *Reader) PeekType() (Type, error) {
	if r.off >= len(r.buf) {
		return TypeInvalid, shortError(r.off)
	}
	t := typeOf[r.buf[r.off]]
	if t == TypeInvalid {
		return TypeInvalid, &DecodeError{Offset: r.off, Err: ErrInvalidCode}
	}
	return t, nil
}

// IsNil reports whether the next value is nil, without consuming it.
func (r *Reader) IsNil() bool {
	return r.off < len(r.buf) && r.buf[r.off] == 0xc0
}

// ReadNil consumes a nil.
func (r *Reader) ReadNil() error {
	if !r.IsNil() {
		return r.typeError("nil")
	}
	r.off++
	return nil
}

// ReadBool reads a bool.
func (r *Reader) ReadBool() (bool, error) {
	if r.off < len(r.buf) {
		switch r.buf[r.off] {
		case 0xc2:
			r.off++
			return false, nil
		case 0xc3:
			r.off++
			return true, nil
		}
	}
	return false, r.typeError("bool")
}

// peekInt decodes the integer at the current offset without consuming it.
// A negative value is returned as its two's-complement bits with neg set;
// anything else (including non-negative values in signed encodings) as its
// magnitude.
func (r *Reader) peekInt() (v uint64, neg bool, size int, err error) {
	b := r.buf[r.off:]
	if len(b) == 0 {
		return 0, false, 0, shortError(r.off)
	}
	c := b[0]
	if c <= 0x7f {
		return uint64(c), false, 1, nil
	}
	if c >= 0xe0 {
		return uint64(int64(int8(c))), true, 1, nil
	}
	var s int64
	switch c {
	case 0xcc, 0xd0:
		size = 2
	case 0xcd, 0xd1:
		size = 3
	case 0xce, 0xd2:
		size = 5
	case 0xcf, 0xd3:
		size = 9
	default:
		return 0, false, 0, r.typeError("int")
	}
	if len(b) < size {
		return 0, false, 0, shortError(r.off)
	}
	switch c {
	case 0xcc:
		return uint64(b[1]), false, size, nil
	case 0xcd:
		return uint64(binary.BigEndian.Uint16(b[1:])), false, size, nil
	case 0xce:
		return uint64(binary.BigEndian.Uint32(b[1:])), false, size, nil
	case 0xcf:
		return binary.BigEndian.Uint64(b[1:]), false, size, nil
	case 0xd0:
		s = int64(int8(b[1]))
	case 0xd1:
		s = int64(int16(binary.BigEndian.Uint16(b[1:])))
	case 0xd2:
		s = int64(int32(binary.BigEndian.Uint32(b[1:])))
	case 0xd3:
		s = int64(binary.BigEndian.Uint64(b[1:]))
	}
	return uint64(s), s < 0, size, nil
}

// ReadUint reads an integer of any encoding into a uint64. A negative value
// fails with ErrRange.
func (r *Reader) ReadUint() (uint64, error) {
	if r.off < len(r.buf) && r.buf[r.off] <= 0x7f {
		r.off++
		return uint64(r.buf[r.off-1]), nil
	}
	return r.readUintSlow()
}

func (r *Reader) readUintSlow() (uint64, error) {
	v, neg, size, err := r.peekInt()
	if err != nil {
		return 0, err
	}
	if neg {
		return 0, &DecodeError{Offset: r.off, Err: fmt.Errorf("%w: %d does not fit uint64", ErrRange, int64(v))}
	}
	r.off += size
	return v, nil
}

// ReadInt reads an integer of any encoding into an int64. A value above
// math.MaxInt64 fails with ErrRange.
func (r *Reader) ReadInt() (int64, error) {
	v, neg, size, err := r.peekInt()
	if err != nil {
		return 0, err
	}
	if !neg && v > math.MaxInt64 {
		return 0, &DecodeError{Offset: r.off, Err: fmt.Errorf("%w: %d does not fit int64", ErrRange, v)}
	}
	r.off += size
	return int64(v), nil
}

// ReadFloat64 reads a float32 or float64. Integers are not converted: a
// float field holding an int is a sender bug worth reporting.
func (r *Reader) ReadFloat64() (float64, error) {
	b := r.buf[r.off:]
	if len(b) > 0 {
		switch b[0] {
		case 0xca:
			if len(b) < 5 {
				return 0, shortError(r.off)
			}
			r.off += 5
			return float64(math.Float32frombits(binary.BigEndian.Uint32(b[1:]))), nil
		case 0xcb:
			if len(b) < 9 {
				return 0, shortError(r.off)
			}
			r.off += 9
			return math.Float64frombits(binary.BigEndian.Uint64(b[1:])), nil
		}
	}
	return 0, r.typeError("float")
}

// ReadStringBytes reads a str or a bin and returns its bytes as a sub-slice
// of the input (no copy, no UTF-8 check). Senders disagree on which of the two
// carries text, so both are accepted wherever text is expected.
func (r *Reader) ReadStringBytes() ([]byte, error) {
	// Inlined fast path for fixstr, which nearly every string on a Sentinel
	// wire uses.
	if b := r.buf[r.off:]; len(b) > 0 && b[0]&0xe0 == 0xa0 && int(b[0]&0x1f) < len(b) {
		n := int(b[0]&0x1f) + 1
		r.off += n
		return b[1:n:n], nil
	}
	return r.readStringSlow()
}

func (r *Reader) readStringSlow() ([]byte, error) {
	h, err := parseHead(r.buf, r.off)
	if err != nil {
		return nil, err
	}
	if h.t != TypeStr && h.t != TypeBin {
		return nil, r.typeError("str or bin")
	}
	return r.readPayload(h)
}

// readPayload consumes a str, bin or ext whose header is h, after checking
// that the declared length fits in the input.
func (r *Reader) readPayload(h head) ([]byte, error) {
	start := r.off + h.hdr
	if h.n > uint64(len(r.buf)-start) {
		return nil, lengthError(r.off, h, len(r.buf)-start)
	}
	end := start + int(h.n)
	r.off = end
	return r.buf[start:end:end], nil
}

// ReadString reads a str or bin, like ReadStringBytes, and copies it into a
// string.
func (r *Reader) ReadString() (string, error) {
	b, err := r.ReadStringBytes()
	return string(b), err
}

// ReadExt reads an extension value (fixext 1/2/4/8/16, ext 8/16/32). Data
// is a sub-slice of the input.
func (r *Reader) ReadExt() (Ext, error) {
	h, err := parseHead(r.buf, r.off)
	if err != nil {
		return Ext{}, err
	}
	if h.t != TypeExt {
		return Ext{}, r.typeError("ext")
	}
	typ := int8(r.buf[r.off+h.hdr-1])
	data, err := r.readPayload(h)
	if err != nil {
		return Ext{}, err
	}
	return Ext{Type: typ, Data: data}, nil
}

// ReadArrayHeader reads the header of an array and returns its element count;
// the caller reads that many values next. The count is at most Remaining,
// since every element takes at least one byte, so it is safe to allocate for.
func (r *Reader) ReadArrayHeader() (int, error) {
	if r.off < len(r.buf) {
		if c := r.buf[r.off]; c&0xf0 == 0x90 && int(c&0x0f) < len(r.buf)-r.off {
			r.off++
			return int(c & 0x0f), nil
		}
	}
	return r.readContainer(TypeArray, "array", 1)
}

// ReadMapHeader reads the header of a map and returns its entry count; the
// caller reads that many keys and values next, alternating. The count is at
// most Remaining/2, since every key and value takes at least one byte.
func (r *Reader) ReadMapHeader() (int, error) {
	return r.readContainer(TypeMap, "map", 2)
}

func (r *Reader) readContainer(t Type, want string, perEntry uint64) (int, error) {
	h, err := parseHead(r.buf, r.off)
	if err != nil {
		return 0, err
	}
	if h.t != t {
		return 0, r.typeError(want)
	}
	remain := len(r.buf) - r.off - h.hdr
	if h.n > uint64(remain)/perEntry {
		return 0, lengthError(r.off, h, remain)
	}
	r.off += h.hdr
	return int(h.n), nil
}

// Skip consumes the next value, whatever it is, including everything nested
// in it. It works iteratively with a count of values still owed, so it needs
// no depth limit, and it fails as soon as that count exceeds the bytes left.
func (r *Reader) Skip() error {
	off := r.off
	pending := uint64(1)
	for pending > 0 {
		h, err := parseHead(r.buf, off)
		if err != nil {
			return err
		}
		pending--
		remain := uint64(len(r.buf) - off - h.hdr)
		switch h.t {
		case TypeStr, TypeBin, TypeExt:
			if h.n > remain {
				return lengthError(off, h, int(remain))
			}
			off += h.hdr + int(h.n)
			continue
		case TypeArray:
			pending += h.n
		case TypeMap:
			pending += 2 * h.n
		}
		if pending > remain {
			return lengthError(off, h, int(remain))
		}
		off += h.hdr
	}
	r.off = off
	return nil
}
