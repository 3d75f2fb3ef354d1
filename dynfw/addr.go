package dynfw

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Reasons an address is rejected, wrapped by *AddrError.
var (
	ErrInvalidAddr      = errors.New("not an IP address")
	ErrZone             = errors.New("addresses with a zone are not allowed")
	ErrPrefixNotAllowed = errors.New("prefixes are not allowed")
	ErrInvalidPrefixLen = errors.New("invalid prefix length")
)

// MaxValueLen bounds AddrError.Value, so that a hostile entry cannot flood
// logs or pin a large input in memory.
const MaxValueLen = 64

// AddrError describes an address that could not be used. It is returned by
// ParseAddr, collected in List.Skipped, and wrapped (inside a *FieldError for
// field "ip") by DecodeDelta and DecodeEvent.
type AddrError struct {
	Index int    // position in a dynfw/list array; -1 elsewhere
	Value string // the text as received, cut to MaxValueLen bytes; "" if it was not a string
	Err   error  // one of the Err* address errors, or a msgpack type error
}

// Error names the list index (if any), the value and the reason.
func (e *AddrError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("list[%d]: invalid address %q: %v", e.Index, e.Value, e.Err)
	}
	return fmt.Sprintf("invalid address %q: %v", e.Value, e.Err)
}

// Unwrap returns the reason.
func (e *AddrError) Unwrap() error { return e.Err }

// clip copies at most MaxValueLen bytes of b.
func clip[T string | []byte](b T) string {
	if len(b) > MaxValueLen {
		b = b[:MaxValueLen]
	}
	return string(b)
}

// ParseAddr validates and normalises one address as DynFW carries it:
//
//   - an IPv4 or IPv6 address becomes a Prefix with all its bits (/32, /128);
//   - an IPv4-mapped IPv6 address (::ffff:1.2.3.4) becomes the IPv4 address,
//     so the same host never appears twice in different forms;
//   - an address with a zone (fe80::1%eth0) is rejected: a zone means nothing
//     off the host that wrote it;
//   - a CIDR prefix (10.0.0.0/8, 2001:db8::/32) is accepted only if
//     allowPrefix is set, and is masked (10.1.2.3/8 becomes 10.0.0.0/8)
//     rather than rejected, since the covered range is unambiguous; a mapped
//     prefix of /96 or longer becomes IPv4 (::ffff:10.0.0.0/104 is
//     10.0.0.0/8);
//   - a prefix that has all the bits (1.2.3.4/32) is a single address and is
//     accepted even without allowPrefix.
//
// The error is an *AddrError with Index -1.
func ParseAddr(s string, allowPrefix bool) (netip.Prefix, error) {
	p, err := parseAddr(s, allowPrefix)
	if err != nil {
		return netip.Prefix{}, &AddrError{Index: -1, Value: clip(s), Err: err}
	}
	return p, nil
}

// parseAddr is ParseAddr on either a string or the zero-copy bytes of a
// decoded message. It returns a bare reason, so that callers who only count
// bad entries do not pay for an *AddrError.
// ParseAddrBytes is ParseAddr for a byte slice, such as a zero-copy string
// from a msgpack payload: dotted IPv4, by far the most common, is parsed
// without allocating. The error is the bare reason, not an *AddrError.
func ParseAddrBytes(b []byte, allowPrefix bool) (netip.Prefix, error) {
	return parseAddr(b, allowPrefix)
}

func parseAddr[T string | []byte](s T, allowPrefix bool) (netip.Prefix, error) {
	if a, ok := parseIPv4(s); ok {
		return netip.PrefixFrom(a, 32), nil
	}
	return parseAddrSlow(string(s), allowPrefix)
}

// parseIPv4 parses a plain dotted-quad without allocating. It accepts exactly
// what netip.ParseAddr accepts as IPv4 (four decimal fields of 0-255, no
// leading zeros) and reports false for anything else, which the caller then
// hands to netip. It runs for every entry of a million-entry list, hence the
// unrolled digits; FuzzParseAddr checks it against netip.
func parseIPv4[T string | []byte](s T) (netip.Addr, bool) {
	if len(s) < len("0.0.0.0") || len(s) > len("255.255.255.255") {
		return netip.Addr{}, false
	}
	var ip [4]byte
	i := 0
	for field := range 4 {
		if field > 0 {
			if i >= len(s) || s[i] != '.' {
				return netip.Addr{}, false
			}
			i++
		}
		if i >= len(s) {
			return netip.Addr{}, false
		}
		d := s[i] - '0' // bytes below '0' wrap around above 9
		if d > 9 {
			return netip.Addr{}, false
		}
		v := uint(d)
		i++
		if i < len(s) {
			if d = s[i] - '0'; d <= 9 {
				if v == 0 { // leading zero
					return netip.Addr{}, false
				}
				v = v*10 + uint(d)
				i++
				if i < len(s) {
					if d = s[i] - '0'; d <= 9 {
						v = v*10 + uint(d)
						i++
					}
				}
			}
		}
		if v > 255 {
			return netip.Addr{}, false
		}
		ip[field] = byte(v)
	}
	if i != len(s) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

func parseAddrSlow(s string, allowPrefix bool) (netip.Prefix, error) {
	if strings.IndexByte(s, '%') >= 0 {
		return netip.Prefix{}, ErrZone
	}
	addr, bitsText, hasBits := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, ErrInvalidAddr
	}
	bits := a.BitLen()
	if hasBits {
		if bits, err = parseBits(bitsText, a.BitLen()); err != nil {
			return netip.Prefix{}, err
		}
	}
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	if bits != a.BitLen() && !allowPrefix {
		return netip.Prefix{}, ErrPrefixNotAllowed
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// parseBits parses a prefix length the way netip.ParsePrefix does: decimal,
// no sign, no leading zero, at most max.
func parseBits(s string, max int) (int, error) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, ErrInvalidPrefixLen
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrInvalidPrefixLen
		}
		n = n*10 + int(s[i]-'0')
	}
	if n > max {
		return 0, ErrInvalidPrefixLen
	}
	return n, nil
}

// normalize gives p the form ParseAddr would: unmapped and masked.
func normalize(p netip.Prefix) netip.Prefix {
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// FormatAddr returns the text of p as DynFW carries it: a single address
// without a /32 or /128 suffix, a prefix in CIDR notation, both normalised as
// ParseAddr would (so 10.1.2.3/8 prints as 10.0.0.0/8 and ::ffff:1.2.3.4/128
// as 1.2.3.4). It returns "" for the zero Prefix. ParseAddr(FormatAddr(p),
// true) returns p for every p that ParseAddr can return.
func FormatAddr(p netip.Prefix) string {
	var buf [64]byte
	return string(appendAddr(buf[:0], p))
}

func appendAddr(b []byte, p netip.Prefix) []byte {
	if p.Bits() == 32 && p.Addr().Is4() {
		return p.Addr().AppendTo(b) // nearly every entry of a list
	}
	if !p.IsValid() {
		return b
	}
	p = normalize(p)
	if p.IsSingleIP() {
		return p.Addr().AppendTo(b)
	}
	return p.AppendTo(b)
}
