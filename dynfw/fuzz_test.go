package dynfw

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/msgpack"
)

func seedPayloads(f *testing.F) {
	l := List{Version: 1700000000, Serial: 70000, TS: 1700000001,
		Addrs: []netip.Prefix{pfx("1.2.3.4"), pfx("2001:db8::1"), pfx("10.0.0.0/8")}}
	for _, b := range [][]byte{
		l.Marshal(),
		List{}.Marshal(),
		Delta{Serial: 1, Op: Positive, Addr: pfx("192.0.2.1"), TS: 2}.Marshal(),
		Delta{Serial: 1 << 40, Op: Negative, Addr: pfx("2001:db8::/32"), TS: 2}.Marshal(),
		Event{Name: "telnet_login", Addr: netip.MustParseAddr("::1"), TS: 3}.Marshal(),
		pack(f, deltaMap(1, "positive", "::ffff:1.2.3.4", 2)),
		pack(f, deltaMap(1, "positive", "bogus", 2)),
		pack(f, msgpack.Map{{Key: "list", Value: []any{1, "1.2.3.4", nil}}, {Key: "version", Value: 1}, {Key: "serial", Value: 1}, {Key: "ts", Value: 1}}),
	} {
		f.Add(b, false)
		f.Add(b, true)
	}
}

// checkDecodeError asserts the shape every decode failure must have.
func checkDecodeError(t *testing.T, err error) {
	var fe *FieldError
	var pe *PayloadError
	if !errors.As(err, &fe) && !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is neither a FieldError nor a PayloadError", err, err)
	}
}

func checkNormalised(t *testing.T, p netip.Prefix, allowPrefix bool) {
	if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" || (!allowPrefix && !p.IsSingleIP()) {
		t.Fatalf("decoded address %v is not normalised (allowPrefix %v)", p, allowPrefix)
	}
}

func FuzzDecodeList(f *testing.F) {
	seedPayloads(f)
	f.Fuzz(func(t *testing.T, data []byte, allowPrefix bool) {
		opt := DecodeOptions{AllowPrefix: allowPrefix}
		l, err := DecodeList(data, opt)
		if err != nil {
			checkDecodeError(t, err)
			if !reflect.DeepEqual(l, List{}) {
				t.Fatalf("error %v came with %+v", err, l)
			}
			return
		}
		if len(l.Skipped) > MaxSkipped || len(l.Skipped) > l.SkippedCount {
			t.Fatalf("%d skipped details for a count of %d", len(l.Skipped), l.SkippedCount)
		}
		for _, p := range l.Addrs {
			checkNormalised(t, p, allowPrefix)
		}
		enc := l.Marshal()
		l2, err := DecodeList(enc, opt)
		if err != nil {
			t.Fatalf("re-encoded list %x: %v", enc, err)
		}
		l.Skipped, l.SkippedCount = nil, 0
		if !reflect.DeepEqual(l, l2) {
			t.Fatalf("round trip changed the list:\n%+v\n%+v", l, l2)
		}
		if !bytes.Equal(enc, l2.Marshal()) {
			t.Fatal("encoding is not a fixed point")
		}
	})
}

func FuzzDecodeDelta(f *testing.F) {
	seedPayloads(f)
	f.Fuzz(func(t *testing.T, data []byte, allowPrefix bool) {
		opt := DecodeOptions{AllowPrefix: allowPrefix}
		d, err := DecodeDelta(data, opt)
		var ae *AddrError
		switch {
		case err == nil:
			checkNormalised(t, d.Addr, allowPrefix)
		case errors.As(err, &ae):
			if d.Addr.IsValid() || len(ae.Value) > MaxValueLen {
				t.Fatalf("address error %v came with address %v", err, d.Addr)
			}
			// Everything but the address is valid: it must survive a round
			// trip with some address.
			d.Addr = pfx("192.0.2.1")
		default:
			checkDecodeError(t, err)
			if d != (Delta{}) {
				t.Fatalf("error %v came with %+v", err, d)
			}
			return
		}
		if d.Op != Positive && d.Op != Negative {
			t.Fatalf("decoded invalid op %v", d.Op)
		}
		d2, err := DecodeDelta(d.Marshal(), opt)
		if err != nil || d2 != d {
			t.Fatalf("round trip: %+v became %+v, %v", d, d2, err)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	seedPayloads(f)
	f.Fuzz(func(t *testing.T, data []byte, allowPrefix bool) {
		opt := DecodeOptions{AllowPrefix: allowPrefix}
		e, err := DecodeEvent(data, opt)
		var ae *AddrError
		switch {
		case err == nil:
			checkNormalised(t, netip.PrefixFrom(e.Addr, e.Addr.BitLen()), false)
		case errors.As(err, &ae):
			if e.Addr.IsValid() {
				t.Fatalf("address error %v came with address %v", err, e.Addr)
			}
			e.Addr = netip.MustParseAddr("2001:db8::1")
		default:
			checkDecodeError(t, err)
			if e != (Event{}) {
				t.Fatalf("error %v came with %+v", err, e)
			}
			return
		}
		e2, err := DecodeEvent(e.Marshal(), opt)
		if err != nil || e2 != e {
			t.Fatalf("round trip: %+v became %+v, %v", e, e2, err)
		}
	})
}

// refParseAddr is ParseAddr written only with netip, without the fast path
// or the hand-written prefix length parser.
func refParseAddr(s string, allowPrefix bool) (netip.Prefix, bool) {
	var a netip.Addr
	var bits int
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		a, bits = p.Addr(), p.Bits()
	} else {
		var err error
		if a, err = netip.ParseAddr(s); err != nil || a.Zone() != "" {
			return netip.Prefix{}, false
		}
		bits = a.BitLen()
	}
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	if bits != a.BitLen() && !allowPrefix {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, bits).Masked(), true
}

// FuzzParseAddr checks ParseAddr, with its allocation-free IPv4 path, against
// a reference built on netip alone, and that FormatAddr round-trips.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "01.2.3.4", "255.255.255.255", "256.1.1.1", "::ffff:1.2.3.4",
		"::ffff:10.0.0.0/104", "10.1.2.3/8", "1.2.3.4/08", "fe80::1%eth0", "2001:db8::/32", "", "1.2.3.4/32"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, allowPrefix bool) {
		p, err := ParseAddr(s, allowPrefix)
		ref, ok := refParseAddr(s, allowPrefix)
		if (err == nil) != ok || p != ref {
			t.Fatalf("ParseAddr(%q, %v) = %v, %v; reference %v, %v", s, allowPrefix, p, err, ref, ok)
		}
		pb, berr := parseAddr([]byte(s), allowPrefix)
		if pb != p || (berr == nil) != (err == nil) {
			t.Fatalf("parseAddr on bytes disagrees with ParseAddr for %q", s)
		}
		if err != nil {
			return
		}
		if back, err := ParseAddr(FormatAddr(p), allowPrefix); err != nil || back != p {
			t.Fatalf("ParseAddr(FormatAddr(%v)) = %v, %v", p, back, err)
		}
	})
}
