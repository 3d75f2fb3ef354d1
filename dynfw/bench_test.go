package dynfw

import (
	"net/netip"
	"sync"
	"testing"
)

// bigList is a list of 1M IPv4 addresses, about 14 MB encoded, plus a
// sprinkling of IPv6 in the mixed variant.
var bigList = sync.OnceValue(func() List {
	const n = 1 << 20
	l := List{Version: 1700000000, Serial: 123456, TS: 1700000001, Addrs: make([]netip.Prefix, n)}
	for i := range l.Addrs {
		l.Addrs[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + i>>16), byte(i >> 8), byte(i), 77}), 32)
	}
	return l
})

var bigMixedList = sync.OnceValue(func() List {
	l := bigList()
	l.Addrs = append([]netip.Prefix(nil), l.Addrs...)
	for i := 0; i < len(l.Addrs); i += 10 {
		l.Addrs[i] = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}), 128)
	}
	return l
})

func benchDecodeList(b *testing.B, l List) {
	payload := l.Marshal()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		got, err := DecodeList(payload, DecodeOptions{})
		if err != nil || len(got.Addrs) != len(l.Addrs) {
			b.Fatalf("%d addresses, %v", len(got.Addrs), err)
		}
	}
}

func BenchmarkDecodeList1M(b *testing.B)          { benchDecodeList(b, bigList()) }
func BenchmarkDecodeList1MTenthIPv6(b *testing.B) { benchDecodeList(b, bigMixedList()) }

func BenchmarkMarshalList1M(b *testing.B) {
	l := bigList()
	b.SetBytes(int64(len(l.Marshal())))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = l.AppendMsgpack(buf[:0])
	}
}

func BenchmarkDecodeDelta(b *testing.B) {
	payload := Delta{Serial: 70000, Op: Positive, Addr: pfx("192.0.2.1"), TS: 1700000000}.Marshal()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeDelta(payload, DecodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDeltaIPv6(b *testing.B) {
	payload := Delta{Serial: 70000, Op: Positive, Addr: pfx("2001:db8::1"), TS: 1700000000}.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeDelta(payload, DecodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalDelta(b *testing.B) {
	d := Delta{Serial: 70000, Op: Positive, Addr: pfx("192.0.2.1"), TS: 1700000000}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = d.AppendMsgpack(buf[:0])
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	payload := Event{Name: "telnet_login", Addr: netip.MustParseAddr("192.0.2.1"), TS: 1700000000}.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(payload, DecodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAddrIPv4(b *testing.B) {
	in := []byte("203.113.200.177")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseAddr(in, false); err != nil {
			b.Fatal(err)
		}
	}
}
