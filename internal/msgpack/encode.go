package msgpack

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
)

// The Append functions never fail: they pick the smallest encoding exactly as
// msgpack-python's packb does, so the output is byte-identical to the Python
// reference publisher. Lengths above math.MaxUint32 cannot be encoded in
// MessagePack at all; the Append functions panic on them (and on negative
// counts) because such a call is a programming error, like indexing out of
// range.

// AppendNil appends nil.
func AppendNil(b []byte) []byte { return append(b, 0xc0) }

// AppendBool appends true or false.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// AppendUint appends v in the smallest unsigned encoding: positive fixint,
// uint8, uint16, uint32 or uint64.
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v < 0x80:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
	}
}

// AppendInt appends v like Python does: a non-negative value takes the
// unsigned encodings (see AppendUint), a negative one the smallest of
// negative fixint, int8, int16, int32 and int64.
func AppendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return AppendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
	}
}

// AppendFloat64 appends v as a float64 (0xcb), as Python does for every float.
func AppendFloat64(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(v))
}

// AppendFloat32 appends v as a float32 (0xca). Python never emits this; it
// exists so that a decoded float32 can be re-encoded unchanged.
func AppendFloat32(b []byte, v float32) []byte {
	return binary.BigEndian.AppendUint32(append(b, 0xca), math.Float32bits(v))
}

// appendLen appends the header of a str, bin, array or map of length n, given
// the fix-format base code (0 when the kind has none) and the 8/16/32-bit
// codes (code8 0 when the kind has no 8-bit form).
func appendLen(b []byte, n int, fixBase byte, fixMax int, code8, code16, code32 byte) []byte {
	switch {
	case n < 0 || uint64(n) > math.MaxUint32:
		panic(fmt.Sprintf("msgpack: length %d cannot be encoded", n))
	case n <= fixMax:
		return append(b, fixBase|byte(n))
	case code8 != 0 && n <= math.MaxUint8:
		return append(b, code8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, code16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, code32), uint32(n))
	}
}

// AppendString appends s as a MessagePack str (fixstr, str8, str16, str32).
// The bytes are written as they are; s need not be valid UTF-8.
func AppendString(b []byte, s string) []byte {
	b = appendLen(b, len(s), 0xa0, 31, 0xd9, 0xda, 0xdb)
	return append(b, s...)
}

// AppendStringBytes appends s as a MessagePack str, like AppendString, for
// text that is already in a byte slice (it avoids a string conversion).
func AppendStringBytes(b []byte, s []byte) []byte {
	b = appendLen(b, len(s), 0xa0, 31, 0xd9, 0xda, 0xdb)
	return append(b, s...)
}

// AppendBytes appends v as a MessagePack bin (bin8, bin16, bin32), which is
// what packb emits for Python bytes.
func AppendBytes(b []byte, v []byte) []byte {
	b = appendLen(b, len(v), 0, -1, 0xc4, 0xc5, 0xc6)
	return append(b, v...)
}

// AppendArrayHeader appends the header of an array of n elements; the caller
// appends the n elements next.
func AppendArrayHeader(b []byte, n int) []byte {
	return appendLen(b, n, 0x90, 15, 0, 0xdc, 0xdd)
}

// AppendMapHeader appends the header of a map of n entries; the caller
// appends n keys and values next, alternating.
func AppendMapHeader(b []byte, n int) []byte {
	return appendLen(b, n, 0x80, 15, 0, 0xde, 0xdf)
}

// AppendExt appends an extension value, using fixext when len(data) is 1, 2,
// 4, 8 or 16 and ext8/16/32 otherwise.
func AppendExt(b []byte, typ int8, data []byte) []byte {
	switch len(data) {
	case 1:
		b = append(b, 0xd4, byte(typ))
	case 2:
		b = append(b, 0xd5, byte(typ))
	case 4:
		b = append(b, 0xd6, byte(typ))
	case 8:
		b = append(b, 0xd7, byte(typ))
	case 16:
		b = append(b, 0xd8, byte(typ))
	default:
		b = appendLen(b, len(data), 0, -1, 0xc7, 0xc8, 0xc9)
		b = append(b, byte(typ))
	}
	return append(b, data...)
}

// Append appends the MessagePack encoding of a generic Go value: nil, bool,
// every Go integer type, float32, float64, string, []byte (as bin), Ext, Map,
// map[string]any (keys sorted, so the output is deterministic), []any and
// []string. It is the inverse of Decode: Append of a decoded value decodes to
// an equal value. It fails on other types and on nesting deeper than
// MaxDepth (which also stops self-referencing slices); on failure b is
// returned unchanged.
func Append(b []byte, v any) ([]byte, error) {
	out, err := appendValue(b, v, 0)
	if err != nil {
		return b, err
	}
	return out, nil
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return AppendNil(b), nil
	case bool:
		return AppendBool(b, v), nil
	case int:
		return AppendInt(b, int64(v)), nil
	case int8:
		return AppendInt(b, int64(v)), nil
	case int16:
		return AppendInt(b, int64(v)), nil
	case int32:
		return AppendInt(b, int64(v)), nil
	case int64:
		return AppendInt(b, v), nil
	case uint:
		return AppendUint(b, uint64(v)), nil
	case uint8:
		return AppendUint(b, uint64(v)), nil
	case uint16:
		return AppendUint(b, uint64(v)), nil
	case uint32:
		return AppendUint(b, uint64(v)), nil
	case uint64:
		return AppendUint(b, v), nil
	case float32:
		return AppendFloat32(b, v), nil
	case float64:
		return AppendFloat64(b, v), nil
	case string:
		return AppendString(b, v), nil
	case []byte:
		return AppendBytes(b, v), nil
	case Ext:
		return AppendExt(b, v.Type, v.Data), nil
	case []string:
		b = AppendArrayHeader(b, len(v))
		for _, s := range v {
			b = AppendString(b, s)
		}
		return b, nil
	}
	if depth >= MaxDepth {
		return b, fmt.Errorf("msgpack: cannot encode %T: %w", v, ErrTooDeep)
	}
	var err error
	switch v := v.(type) {
	case []any:
		b = AppendArrayHeader(b, len(v))
		for _, e := range v {
			if b, err = appendValue(b, e, depth+1); err != nil {
				return b, err
			}
		}
	case Map:
		b = AppendMapHeader(b, len(v))
		for _, kv := range v {
			b = AppendString(b, kv.Key)
			if b, err = appendValue(b, kv.Value, depth+1); err != nil {
				return b, err
			}
		}
	case map[string]any:
		b = AppendMapHeader(b, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			b = AppendString(b, k)
			if b, err = appendValue(b, v[k], depth+1); err != nil {
				return b, err
			}
		}
	default:
		return b, fmt.Errorf("msgpack: cannot encode a value of type %T", v)
	}
	return b, nil
}
