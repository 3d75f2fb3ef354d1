package testenv

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// Hex decodes a hexadecimal fixture, spaces allowed between the bytes
// ("93 01 02"); bad hex fails the test.
func Hex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// Prefix parses a prefix ("10.0.0.0/8") or a single address ("192.0.2.1",
// which becomes a /32 or a /128), and panics on anything else: it is for
// fixtures written in the test.
func Prefix(s string) netip.Prefix {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen())
}
