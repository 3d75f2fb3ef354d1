package dynfw

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseAddr(t *testing.T) {
	for _, c := range []struct {
		in          string
		allowPrefix bool
		want        string // FormatAddr of the result; "" when err is set
		err         error
	}{
		{in: "1.2.3.4", want: "1.2.3.4"},
		{in: "0.0.0.0", want: "0.0.0.0"},
		{in: "255.255.255.255", want: "255.255.255.255"},
		{in: "2001:db8::1", want: "2001:db8::1"},
		{in: "2001:0DB8:0000::0001", want: "2001:db8::1"},
		{in: "::", want: "::"},
		{in: "::1.2.3.4", want: "::102:304"}, // IPv4-compatible is plain IPv6
		{in: "::ffff:1.2.3.4", want: "1.2.3.4"},
		{in: "::ffff:102:304", want: "1.2.3.4"},
		{in: "1.2.3.4/32", want: "1.2.3.4"},
		{in: "2001:db8::1/128", want: "2001:db8::1"},
		{in: "::ffff:1.2.3.4/128", want: "1.2.3.4"},
		{in: "10.0.0.0/8", err: ErrPrefixNotAllowed},
		{in: "10.0.0.0/8", allowPrefix: true, want: "10.0.0.0/8"},
		{in: "10.1.2.3/8", allowPrefix: true, want: "10.0.0.0/8"},
		{in: "0.0.0.0/0", allowPrefix: true, want: "0.0.0.0/0"},
		{in: "2001:db8::/32", allowPrefix: true, want: "2001:db8::/32"},
		{in: "2001:db8:ffff::1/32", allowPrefix: true, want: "2001:db8::/32"},
		{in: "2001:db8::/32", err: ErrPrefixNotAllowed},
		{in: "::ffff:10.0.0.0/104", allowPrefix: true, want: "10.0.0.0/8"},
		{in: "::ffff:10.1.2.3/104", allowPrefix: true, want: "10.0.0.0/8"},
		{in: "::ffff:0.0.0.0/96", allowPrefix: true, want: "0.0.0.0/0"},
		{in: "::ffff:0.0.0.0/80", allowPrefix: true, want: "::/80"},
		{in: "::ffff:10.0.0.0/104", err: ErrPrefixNotAllowed},
		{in: "1.2.3.4/33", allowPrefix: true, err: ErrInvalidPrefixLen},
		{in: "2001:db8::/129", allowPrefix: true, err: ErrInvalidPrefixLen},
		{in: "1.2.3.4/08", allowPrefix: true, err: ErrInvalidPrefixLen},
		{in: "1.2.3.4/+8", allowPrefix: true, err: ErrInvalidPrefixLen},
		{in: "1.2.3.4/", allowPrefix: true, err: ErrInvalidPrefixLen},
		{in: "1.2.3.4/1234", allowPrefix: true, err: ErrInvalidPrefixLen},
		{in: "/8", allowPrefix: true, err: ErrInvalidAddr},
		{in: "fe80::1%eth0", err: ErrZone},
		{in: "fe80::1%eth0/64", allowPrefix: true, err: ErrZone},
		{in: "::ffff:1.2.3.4%eth0", err: ErrZone},
		{in: "", err: ErrInvalidAddr},
		{in: "garbage", err: ErrInvalidAddr},
		{in: "1.2.3", err: ErrInvalidAddr},
		{in: "1.2.3.4.5", err: ErrInvalidAddr},
		{in: "1.2.3.256", err: ErrInvalidAddr},
		{in: "01.2.3.4", err: ErrInvalidAddr},
		{in: "1.2.3.04", err: ErrInvalidAddr},
		{in: "1.2.3.4 ", err: ErrInvalidAddr},
		{in: " 1.2.3.4", err: ErrInvalidAddr},
		{in: "1..2.3", err: ErrInvalidAddr},
		{in: "1.2.3.-4", err: ErrInvalidAddr},
		{in: "1.2.3.4\x00", err: ErrInvalidAddr},
		{in: "2001:db8:::1", err: ErrInvalidAddr},
		{in: "example.com", err: ErrInvalidAddr},
	} {
		p, err := ParseAddr(c.in, c.allowPrefix)
		if c.err != nil {
			var ae *AddrError
			if !errors.Is(err, c.err) || !errors.As(err, &ae) || ae.Index != -1 || ae.Value != c.in {
				t.Errorf("ParseAddr(%q, %v) = %v, %v; want *AddrError wrapping %v", c.in, c.allowPrefix, p, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseAddr(%q, %v): %v", c.in, c.allowPrefix, err)
			continue
		}
		if got := FormatAddr(p); got != c.want {
			t.Errorf("ParseAddr(%q, %v) formats as %q, want %q", c.in, c.allowPrefix, got, c.want)
		}
		if p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Errorf("ParseAddr(%q) = %v is not normalised", c.in, p)
		}
		if back, err := ParseAddr(FormatAddr(p), true); err != nil || back != p {
			t.Errorf("ParseAddr(FormatAddr(%v)) = %v, %v", p, back, err)
		}
	}
}

func TestParseAddrSingleHasAllBits(t *testing.T) {
	for in, bits := range map[string]int{"1.2.3.4": 32, "::ffff:1.2.3.4": 32, "2001:db8::1": 128} {
		p, err := ParseAddr(in, false)
		if err != nil || p.Bits() != bits || !p.IsSingleIP() {
			t.Errorf("ParseAddr(%q) = %v, %v; want a /%d", in, p, err, bits)
		}
	}
}

func TestParseIPv4FastPathAgreesWithNetip(t *testing.T) {
	for _, s := range []string{
		"1.2.3.4", "0.0.0.0", "255.255.255.255", "256.0.0.0", "1.2.3", "1.2.3.4.", ".1.2.3.4",
		"01.2.3.4", "0.01.0.0", "1.2.3.0400", "1.2.3.400", "1234.1.1.1", "1.2.3.4a", "1:2::3",
		"1.2.3.4/8", "a.b.c.d", "1.2.3.-4", "00.0.0.0", "1.2..4", "9.9.9.9", "100.200.250.255",
		"1.2.3.4%x",
	} {
		a, ok := parseIPv4(s)
		want, err := netip.ParseAddr(s)
		if ok && (err != nil || a != want) {
			t.Errorf("fast path accepted %q as %v; netip says %v, %v", s, a, want, err)
		}
		if !ok && err == nil && want.Is4() {
			t.Errorf("fast path rejected %q, which netip parses as %v", s, want)
		}
	}
}

func TestFormatAddr(t *testing.T) {
	mapped := netip.MustParseAddr("::ffff:10.1.2.3")
	for _, c := range []struct {
		p    netip.Prefix
		want string
	}{
		{netip.Prefix{}, ""},
		{netip.MustParsePrefix("1.2.3.4/32"), "1.2.3.4"},
		{netip.MustParsePrefix("2001:db8::1/128"), "2001:db8::1"},
		{netip.MustParsePrefix("10.0.0.0/8"), "10.0.0.0/8"},
		{netip.MustParsePrefix("10.1.2.3/8"), "10.0.0.0/8"},
		{netip.PrefixFrom(mapped, 128), "10.1.2.3"},
		{netip.PrefixFrom(mapped, 104), "10.0.0.0/8"},
		{netip.MustParsePrefix("2001:db8::/32"), "2001:db8::/32"},
	} {
		if got := FormatAddr(c.p); got != c.want {
			t.Errorf("FormatAddr(%v) = %q, want %q", c.p, got, c.want)
		}
	}
}

func TestAddrErrorMessage(t *testing.T) {
	long := strings.Repeat("x", 200)
	_, err := ParseAddr(long, false)
	var ae *AddrError
	if !errors.As(err, &ae) || len(ae.Value) != MaxValueLen {
		t.Fatalf("value of a long bad address kept %d bytes, want %d", len(ae.Value), MaxValueLen)
	}
	if got := err.Error(); len(got) > 200 || !strings.Contains(got, "not an IP address") {
		t.Errorf("message %q", got)
	}
	e := &AddrError{Index: 3, Value: "1.2.3.999", Err: ErrInvalidAddr}
	if got, want := e.Error(), `list[3]: invalid address "1.2.3.999": not an IP address`; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}
