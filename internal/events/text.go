package events

import (
	"strings"
	"unicode/utf8"
)

// MaxText bounds each attacker-typed string an event keeps (a username, a
// password, a URL, a user agent), in bytes of its storable form.
const MaxText = 1024

// Storable turns an attacker-typed string into text that every part of
// the server can hold and show as it is: valid UTF-8 without NUL, which
// PostgreSQL refuses (SQLSTATE 22021), and without the invisible controls
// that pages and terminals would hide or act on. Every ingest path calls
// it where it parses a probe's message (package probe, package httpin),
// once: the store, the password checker and the pages then all see the
// same string, identical on SQLite and PostgreSQL.
//
// The rule, which Original reverses:
//
//   - A byte that is not part of valid UTF-8, a C0 control other than tab
//     and newline (U+0000–U+0008, U+000B–U+001F, so NUL and carriage
//     return too), DEL (U+007F) or a C1 control (U+0080–U+009F) is written
//     as \xHH, two lower-case hex digits per byte (a C1 control is two
//     bytes, \xc2\x80 for U+0080).
//   - A backslash that comes before "x" and two hex digits is written
//     \x5c, so that text which already reads like an escape is not taken
//     for one. Every other backslash stays as it is.
//   - Everything else is copied, so that ordinary text, including tabs,
//     newlines and backslashes elsewhere, is unchanged.
//
// The result is at most limit bytes (no limit when limit <= 0), cut
// before the first rune or escape that would not fit whole, never inside
// one. Storable reads at most limit+utf8.UTFMax bytes of s.
//
// Storable is not idempotent (its output's escapes would be escaped
// again): call it exactly once, where the string enters.
func Storable(s string, limit int) string {
	if limit > 0 && len(s) > limit+utf8.UTFMax {
		s = s[:limit+utf8.UTFMax]
	}
	clean := clean(s)
	if clean == len(s) && (limit <= 0 || len(s) <= limit) {
		return s
	}
	if limit <= 0 {
		limit = int(^uint(0) >> 1)
	}
	var b strings.Builder
	b.Grow(min(limit, len(s)+len(s)/2))
	if clean > limit {
		// Copy the clean prefix up to the last rune that fits whole.
		clean = limit
		for clean > 0 && !utf8.RuneStart(s[clean]) {
			clean--
		}
	}
	b.WriteString(s[:clean])
	const hex = "0123456789abcdef"
	for i := clean; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1, escaped(r):
			if b.Len()+4*n > limit {
				return b.String()
			}
			for _, c := range []byte(s[i : i+n]) {
				b.WriteString(`\x`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			}
		case r == '\\' && looksEscaped(s[i:]):
			if b.Len()+4 > limit {
				return b.String()
			}
			b.WriteString(`\x5c`)
		default:
			if b.Len()+n > limit {
				return b.String()
			}
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// StorableBytes is Storable of a byte slice, copying only what it keeps.
func StorableBytes(p []byte, limit int) string {
	if limit > 0 && len(p) > limit+utf8.UTFMax {
		p = p[:limit+utf8.UTFMax]
	}
	return Storable(string(p), limit)
}

// Original returns the bytes that Storable was given (up to its cut): each
// \xHH is the byte HH, everything else stands for itself.
func Original(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && looksEscaped(s[i:]) {
			out = append(out, unhex(s[i+2])<<4|unhex(s[i+3]))
			i += 3
			continue
		}
		out = append(out, s[i])
	}
	return out
}

// clean returns the length of the prefix of s that Storable copies as it
// is.
func clean(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' || c == 0x7f || c == '\\' && looksEscaped(s[i:]) {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 || escaped(r) {
			return i
		}
		i += n
	}
	return len(s)
}

// escaped reports whether Storable writes the valid rune r as \xHH
// escapes.
func escaped(r rune) bool {
	return r < 0x20 && r != '\t' && r != '\n' || r >= 0x7f && r <= 0x9f
}

// looksEscaped reports whether s starts with \x and two hex digits.
func looksEscaped(s string) bool {
	return len(s) >= 4 && s[0] == '\\' && s[1] == 'x' && isHex(s[2]) && isHex(s[3])
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
