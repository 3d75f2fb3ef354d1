// Package devicetoken generates and validates Sentinel device tokens.
//
// A device token is the per-router secret that sentinel-proxy puts into every
// MQTT topic it publishes (sentinel/collect/<CN>/<token>/...) and that Sentinel
// View uses as the key of the router's private statistics page. Its format
// (sentinel-formats.md §3.5) is 64 lowercase hexadecimal characters: 28 random
// bytes in hex, then "%08x" of the zlib CRC-32 of those 28 raw bytes. The CRC
// only catches typing mistakes; the secrecy comes from the 224 random bits.
//
// Tokens enter as strings through Validate, which applies the reference
// validator's checks in its order and returns its messages as sentinel errors,
// and leave through Generate (fresh random bytes) or FromBytes (given bytes,
// for test vectors). Fingerprint gives a short, non-reversible label for logs,
// which must never contain a token.
package devicetoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
)

const (
	// Len is the length of a device token in characters.
	Len = 64
	// RandomLen is the number of random bytes a token encodes; the remaining
	// 4 bytes (8 characters) are their CRC-32.
	RandomLen = 28

	randomHexLen = 2 * RandomLen
)

// The errors of Validate. Their texts are the messages that the reference
// validator (sentinel-device-token -v, sentinel-proxy at start-up) prints, so
// that an operator sees the same words on the router and on the server.
var (
	ErrEmpty  = errors.New("device_token must be specified")
	ErrLength = errors.New("device_token must be 64 characters long")
	ErrNotHex = errors.New("device_token must consist of lowercase hexachars")
	ErrCRC    = errors.New("device_token crc check failed")

	// ErrCRCNotLowercase is returned for a token whose CRC part is correct
	// in value but not written as "%08x" (upper-case digits, say). The
	// reference validator accepts such tokens because it parses the CRC
	// part with strtoul; Validate does not (see Validate). The error wraps
	// ErrNotHex and prints the same message, so code that only knows the
	// four reference errors still classifies it.
	ErrCRCNotLowercase = fmt.Errorf("%w", ErrNotHex)
)

// Generate returns a new token made of RandomLen bytes from crypto/rand.
// The error is non-nil only if the system's random source fails.
func Generate() (string, error) {
	var b [RandomLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("devicetoken: reading random bytes: %w", err)
	}
	return FromBytes(b), nil
}

// FromBytes returns the token that encodes random, as the reference generator
// would write it. It is deterministic, for test vectors and fixtures; real
// tokens must come from Generate.
func FromBytes(random [RandomLen]byte) string {
	var s [Len]byte
	hex.Encode(s[:randomHexLen], random[:])
	putCRC(s[randomHexLen:], crc32.ChecksumIEEE(random[:]))
	return string(s[:])
}

// putCRC writes crc as "%08x" into dst[:8], without fmt's allocation.
func putCRC(dst []byte, crc uint32) {
	const digits = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		dst[i] = digits[crc&0xf]
		crc >>= 4
	}
}

// Validate checks s in the reference validator's order and returns the first
// failure: ErrEmpty, ErrLength, ErrNotHex (or ErrCRCNotLowercase), ErrCRC.
// It returns nil for a well-formed token.
//
// Validate rejects every token the reference rejects, with the same message.
// It differs in two places, both deliberate:
//
//   - The reference parses the 8 CRC characters with strtoul(…, 16), which
//     also takes upper-case digits, leading blanks, a sign, a "0x" prefix and
//     trailing junk. Validate accepts only the canonical lowercase "%08x" and
//     returns ErrCRCNotLowercase for the forms strtoul would have let
//     through. The token keys a router's Sentinel View page and is compared
//     as a string everywhere on the server; accepting "…807077E9" next to
//     "…807077e9" would give one secret two spellings and split a router's
//     data between two keys. No generator produces such a token, and
//     sentinel-proxy's own start-up check is the reference validator, so
//     only a hand-edited token is affected, and it is reported precisely.
//   - The reference returns "must be specified" only for a NULL pointer and
//     "must be 64 characters long" for "". A Go string has no NULL; an
//     absent token is "", so "" gives ErrEmpty, as sentinel-formats.md says.
//
// The C validator measures its input with strlen and so stops at a NUL
// byte; Validate treats NUL as any other non-hex byte. MQTT topics, where
// tokens come from, cannot contain NUL.
func Validate(s string) error {
	if s == "" {
		return ErrEmpty
	}
	if len(s) != Len {
		return ErrLength
	}
	var raw [RandomLen]byte
	for i := range raw {
		hi, lo := unhex(s[2*i]), unhex(s[2*i+1])
		if hi < 0 || lo < 0 {
			return ErrNotHex
		}
		raw[i] = byte(hi<<4 | lo)
	}
	crc := crc32.ChecksumIEEE(raw[:])
	var want [8]byte
	putCRC(want[:], crc)
	tail := s[randomHexLen:]
	if tail == string(want[:]) {
		return nil
	}
	for i := 0; i < len(tail); i++ {
		if unhex(tail[i]) < 0 {
			// Not canonical: tell apart the tokens the reference would
			// have accepted from those it rejects as well.
			if strtoul16(tail) == crc {
				return ErrCRCNotLowercase
			}
			return ErrCRC
		}
	}
	return ErrCRC
}

// unhex returns the value of a lowercase hex digit, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// strtoul16 models (uint32)strtoul(s, NULL, 16) of glibc in the C locale for
// NUL-free s of at most 8 characters, as the reference validator computes
// the provided CRC: optional blanks, an optional sign, an optional 0x or 0X,
// then hex digits of either case up to the first other character. A minus
// sign negates the result modulo 2^64, which the cast reduces to 2^32. Eight
// characters cannot overflow an unsigned long, so ERANGE never happens.
func strtoul16(s string) uint32 {
	i := 0
	for i < len(s) && (s[i] == ' ' || '\t' <= s[i] && s[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	// glibc skips "0x" even when no digit follows; the value is then 0,
	// the same as parsing the lone "0", so skipping it here is exact.
	if i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') {
		i += 2
	}
	var v uint32
	for ; i < len(s); i++ {
		c := s[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			i = len(s)
			continue
		}
		v = v<<4 | uint32(d)
	}
	if neg {
		v = -v
	}
	return v
}

// Fingerprint returns a short label for s that is safe to log: "t:" and the
// first 12 hex characters of the SHA-256 of s. Anyone who holds the token
// lets them find a device's log lines (printf %s "$token" | sha256sum); the
// label itself reveals nothing of the token, unlike a prefix of it, which
// would leak part of the secret. It accepts any string, valid or not, so that
// rejected tokens can be reported too.
func Fingerprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "t:" + hex.EncodeToString(sum[:6])
}
