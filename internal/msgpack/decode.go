package msgpack

import (
	"bytes"
	"fmt"
	"math"
)

// Decode decodes the single MessagePack value that makes up b into generic Go
// values:
//
//   - nil, bool, string (str), []byte (bin), float64 (float32 and float64);
//   - integers as int64 when negative and uint64 otherwise, whatever their
//     encoding, so that a value decodes the same however wide the sender
//     packed it;
//   - arrays as []any, maps as Map (key order and duplicates kept);
//   - extension values, the timestamp (-1) included, as Ext.
//
// A map key that is a str or bin becomes a string of its bytes; any other key
// is decoded and rendered with fmt's %v (5 becomes "5", nil "<nil>", [1 "a"]
// "[1 a]"), which keeps such maps usable without a second key type. fmt, not
// JSON, because JSON would escape a key nested in a key once per level, and
// input of a few dozen bytes could then ask for gigabytes.
//
// Strings, bins and ext data are copied, so the result does not alias b.
// Decode fails on malformed or truncated input, on nesting deeper than
// MaxDepth and on trailing bytes. Memory use grows linearly with len(b).
func Decode(b []byte) (any, error) {
	r := Reader{buf: b}
	v, err := r.ReadValue()
	if err != nil {
		return nil, err
	}
	if r.off != len(b) {
		return nil, &DecodeError{Offset: r.off, Err: ErrTrailing}
	}
	return v, nil
}

// ReadValue decodes the next value into generic Go values, as Decode does.
// On failure the Reader stays where it was.
func (r *Reader) ReadValue() (any, error) {
	start := r.off
	v, err := r.readValue(0)
	if err != nil {
		r.off = start
		return nil, err
	}
	return v, nil
}

// readValue decodes one value. depth counts the containers around it.
func (r *Reader) readValue(depth int) (any, error) {
	h, err := parseHead(r.buf, r.off)
	if err != nil {
		return nil, err
	}
	switch h.t {
	case TypeNil:
		r.off++
		return nil, nil
	case TypeBool:
		return r.ReadBool()
	case TypeInt:
		v, neg, size, err := r.peekInt()
		if err != nil {
			return nil, err
		}
		r.off += size
		if neg {
			return int64(v), nil
		}
		return v, nil
	case TypeFloat:
		return r.ReadFloat64()
	case TypeStr:
		s, err := r.readPayload(h)
		return string(s), err
	case TypeBin:
		b, err := r.readPayload(h)
		return bytes.Clone(b), err
	case TypeExt:
		e, err := r.ReadExt()
		e.Data = bytes.Clone(e.Data)
		return e, err
	}
	if depth >= MaxDepth {
		return nil, &DecodeError{Offset: r.off, Err: ErrTooDeep}
	}
	if h.t == TypeArray {
		n, err := r.ReadArrayHeader()
		if err != nil {
			return nil, err
		}
		a := make([]any, n)
		for i := range a {
			if a[i], err = r.readValue(depth + 1); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	n, err := r.ReadMapHeader()
	if err != nil {
		return nil, err
	}
	m := make(Map, n)
	for i := range m {
		if m[i].Key, err = r.readKey(depth + 1); err != nil {
			return nil, err
		}
		if m[i].Value, err = r.readValue(depth + 1); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// readKey reads a map key as a string: the bytes of a str or bin, or else the
// fmt rendering of the decoded key.
func (r *Reader) readKey(depth int) (string, error) {
	if t, err := r.PeekType(); err != nil {
		return "", err
	} else if t == TypeStr || t == TypeBin {
		b, err := r.ReadStringBytes()
		return string(b), err
	}
	v, err := r.readValue(depth)
	if err != nil {
		return "", err
	}
	return fmt.Sprint(v), nil
}

// Equal reports whether two generic values as produced by Decode are
// identical, comparing floats by their bits (so NaN equals the same NaN and
// 0 differs from -0) and []byte by content. It is meant for round-trip checks
// in tests and fixtures.
func Equal(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool, string, int64, uint64:
		return a == b
	case float64:
		bf, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(bf)
	case []byte:
		bb, ok := b.([]byte)
		return ok && bytes.Equal(a, bb)
	case Ext:
		be, ok := b.(Ext)
		return ok && a.Type == be.Type && bytes.Equal(a.Data, be.Data)
	case []any:
		ba, ok := b.([]any)
		if !ok || len(a) != len(ba) {
			return false
		}
		for i := range a {
			if !Equal(a[i], ba[i]) {
				return false
			}
		}
		return true
	case Map:
		bm, ok := b.(Map)
		if !ok || len(a) != len(bm) {
			return false
		}
		for i := range a {
			if a[i].Key != bm[i].Key || !Equal(a[i].Value, bm[i].Value) {
				return false
			}
		}
		return true
	}
	return false
}
