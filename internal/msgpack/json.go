package msgpack

import (
	"encoding/base64"
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendJSON transcodes the single MessagePack value that makes up src to JSON
// and appends it to dst, without building Go values in between. It is how
// dynfw-client prints payloads "as received", so map keys keep their wire
// order (duplicates included). The output is always valid UTF-8 JSON:
//
//   - str becomes a JSON string; invalid UTF-8 is replaced by U+FFFD;
//   - bin becomes a JSON string if it is valid UTF-8, else "base64:" followed
//     by its standard base64 encoding;
//   - integers are printed exactly (uint64 and int64 extremes included);
//   - floats use strconv's shortest 'g' form (float32 at 32-bit precision);
//     NaN and ±Inf, which JSON cannot express, become null;
//   - ext becomes the string "ext:<type>:base64:<data>";
//   - a map key that is not a str or bin becomes a JSON string of the key as
//     Decode renders it (5 becomes "5", [1 "a"] becomes "[1 a]").
//
// U+2028 and U+2029 are escaped so that the output is also a valid JavaScript
// literal. AppendJSON fails like Decode does (malformed or truncated input,
// nesting deeper than MaxDepth, trailing bytes); on failure it returns dst
// unchanged.
func AppendJSON(dst, src []byte) ([]byte, error) {
	r := Reader{buf: src}
	out, err := r.appendJSON(dst, 0)
	if err != nil {
		return dst, err
	}
	if r.off != len(src) {
		return dst, &DecodeError{Offset: r.off, Err: ErrTrailing}
	}
	return out, nil
}

// appendJSON transcodes one value. depth counts the containers around it.
func (r *Reader) appendJSON(dst []byte, depth int) ([]byte, error) {
	h, err := parseHead(r.buf, r.off)
	if err != nil {
		return dst, err
	}
	switch h.t {
	case TypeNil:
		r.off++
		return append(dst, "null"...), nil
	case TypeBool:
		v, err := r.ReadBool()
		return strconv.AppendBool(dst, v), err
	case TypeInt:
		v, neg, size, err := r.peekInt()
		if err != nil {
			return dst, err
		}
		r.off += size
		if neg {
			return strconv.AppendInt(dst, int64(v), 10), nil
		}
		return strconv.AppendUint(dst, v, 10), nil
	case TypeFloat:
		bits := 64
		if r.buf[r.off] == 0xca {
			bits = 32
		}
		f, err := r.ReadFloat64()
		if err != nil {
			return dst, err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...), nil
		}
		return strconv.AppendFloat(dst, f, 'g', -1, bits), nil
	case TypeStr:
		s, err := r.readPayload(h)
		if err != nil {
			return dst, err
		}
		return appendJSONString(dst, s), nil
	case TypeBin:
		s, err := r.readPayload(h)
		if err != nil {
			return dst, err
		}
		return appendJSONBin(dst, s), nil
	case TypeExt:
		e, err := r.ReadExt()
		if err != nil {
			return dst, err
		}
		dst = append(dst, `"ext:`...)
		dst = strconv.AppendInt(dst, int64(e.Type), 10)
		dst = append(dst, ":base64:"...)
		dst = base64.StdEncoding.AppendEncode(dst, e.Data)
		return append(dst, '"'), nil
	}
	if depth >= MaxDepth {
		return dst, &DecodeError{Offset: r.off, Err: ErrTooDeep}
	}
	if h.t == TypeArray {
		n, err := r.ReadArrayHeader()
		if err != nil {
			return dst, err
		}
		dst = append(dst, '[')
		for i := range n {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = r.appendJSON(dst, depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	}
	n, err := r.ReadMapHeader()
	if err != nil {
		return dst, err
	}
	dst = append(dst, '{')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		switch t, err := r.PeekType(); {
		case err != nil:
			return dst, err
		case t == TypeStr || t == TypeBin:
			// Same rendering as values, so a key reads like the string it is.
			if dst, err = r.appendJSON(dst, depth+1); err != nil {
				return dst, err
			}
		default:
			k, err := r.readKey(depth + 1)
			if err != nil {
				return dst, err
			}
			dst = appendJSONString(dst, []byte(k))
		}
		dst = append(dst, ':')
		if dst, err = r.appendJSON(dst, depth+1); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// appendJSONBin renders bytes that may or may not be text.
func appendJSONBin(dst, b []byte) []byte {
	if utf8.Valid(b) {
		return appendJSONString(dst, b)
	}
	dst = append(dst, `"base64:`...)
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a quoted JSON string, replacing invalid UTF-8
// with U+FFFD.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
