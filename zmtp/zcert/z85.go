package zcert

import (
	"errors"
	"fmt"
)

// z85Alphabet is the digit order fixed by ZeroMQ RFC 32: digit value i is
// written as z85Alphabet[i].
const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// z85Value maps a character to its digit value plus one, so that the zero
// value of the table means "not in the alphabet" without a second table.
var z85Value = func() (t [256]uint8) {
	for i := 0; i < len(z85Alphabet); i++ {
		t[z85Alphabet[i]] = uint8(i + 1)
	}
	return t
}()

// ErrInvalidZ85 is wrapped by every error DecodeZ85 and EncodeZ85 return, so
// callers can tell malformed key text from I/O problems with errors.Is.
var ErrInvalidZ85 = errors.New("invalid Z85")

// EncodeZ85 encodes src as Z85 (ZeroMQ RFC 32): every 4 bytes, read as a
// big-endian number, become 5 characters. The length of src must be a multiple
// of 4, because Z85 has no padding; otherwise the error wraps ErrInvalidZ85.
func EncodeZ85(src []byte) (string, error) {
	if len(src)%4 != 0 {
		return "", fmt.Errorf("%w: length %d is not a multiple of 4", ErrInvalidZ85, len(src))
	}
	dst := make([]byte, len(src)/4*5)
	encodeZ85(dst, src)
	return string(dst), nil
}

// encodeZ85 writes len(src)/4*5 characters into dst; callers guarantee that
// len(src) is a multiple of 4 and dst is large enough.
func encodeZ85(dst, src []byte) {
	for len(src) >= 4 {
		v := uint32(src[0])<<24 | uint32(src[1])<<16 | uint32(src[2])<<8 | uint32(src[3])
		for i := 4; i >= 0; i-- {
			dst[i] = z85Alphabet[v%85]
			v /= 85
		}
		src, dst = src[4:], dst[5:]
	}
}

// DecodeZ85 decodes Z85 text (ZeroMQ RFC 32). It rejects, with an error
// wrapping ErrInvalidZ85, a length that is not a multiple of 5, any character
// outside the Z85 alphabet (including whitespace), and any 5-character group
// whose value does not fit in 32 bits, so that every accepted string has
// exactly one decoding and re-encodes to itself.
func DecodeZ85(s string) ([]byte, error) {
	if len(s)%5 != 0 {
		return nil, fmt.Errorf("%w: length %d is not a multiple of 5", ErrInvalidZ85, len(s))
	}
	dst := make([]byte, len(s)/5*4)
	if err := decodeZ85(dst, s); err != nil {
		return nil, err
	}
	return dst, nil
}

// decodeZ85 fills dst (len(s)/5*4 bytes) from s, whose length is a multiple
// of 5. It is shared with ParseKey so that a key decodes without allocating.
func decodeZ85(dst []byte, s string) error {
	for g := 0; g < len(s); g += 5 {
		var v uint64
		for i := g; i < g+5; i++ {
			d := z85Value[s[i]]
			if d == 0 {
				return fmt.Errorf("%w: character %q at offset %d is not in the alphabet", ErrInvalidZ85, s[i], i)
			}
			v = v*85 + uint64(d-1)
		}
		// 85^5 exceeds 2^32, so five digits can name values no 4 bytes
		// hold; silently truncating them would give two texts per key.
		if v > 0xFFFFFFFF {
			return fmt.Errorf("%w: group %q at offset %d exceeds 32 bits", ErrInvalidZ85, s[g:g+5], g)
		}
		o := g / 5 * 4
		dst[o] = byte(v >> 24)
		dst[o+1] = byte(v >> 16)
		dst[o+2] = byte(v >> 8)
		dst[o+3] = byte(v)
	}
	return nil
}
