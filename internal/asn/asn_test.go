package asn

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dynfw/sentinel/internal/geoip"
)

// TestKnown checks the embedded data against addresses the generator
// sampled from the source files (known_gen_test.go).
func TestKnown(t *testing.T) {
	tbl := Default()
	if len(known) < 300 {
		t.Fatalf("only %d known addresses", len(known))
	}
	for _, k := range known {
		a := netip.MustParseAddr(k.addr)
		want := AS{k.as, k.name}
		if !geoip.Public(a) {
			want = AS{}
		}
		if got := tbl.Lookup(a); got != want {
			t.Errorf("Lookup(%s) = %+v, want %+v", a, got, want)
		}
		if a.Is4() {
			m := netip.AddrFrom16(a.As16())
			if got := tbl.Lookup(m); got != want {
				t.Errorf("Lookup(%s) = %+v, want %+v", m, got, want)
			}
		}
	}
}

func TestDefault(t *testing.T) {
	tbl := Default()
	if v := tbl.Version(); !strings.Contains(v, "ip-location-db") || !strings.Contains(v, knownSourceVersion) {
		t.Errorf("Version() = %q", v)
	}
	if n4, n6, nas := tbl.Len(); n4 < 100_000 || n6 < 50_000 || nas < 50_000 {
		t.Errorf("Len() = %d, %d, %d", n4, n6, nas)
	}
	for _, c := range Credits {
		if !strings.Contains(Attribution, c.Name) || !strings.Contains(Attribution, c.URL) {
			t.Errorf("Attribution lacks %+v", c)
		}
	}
	// Well-known networks, IPv4 and IPv6.
	for _, c := range []struct {
		addr string
		as   uint32
	}{
		{"1.1.1.1", 13335}, {"2606:4700:4700::1111", 13335},
		{"8.8.8.8", 15169}, {"2001:4860:4860::8888", 15169},
	} {
		if got := tbl.Lookup(netip.MustParseAddr(c.addr)); got.Number != c.as || got.Name == "" {
			t.Errorf("Lookup(%s) = %+v, want AS%d", c.addr, got, c.as)
		}
	}
}

// TestNotPublic: no AS for addresses that cannot be on the Internet,
// whatever a source says.
func TestNotPublic(t *testing.T) {
	tbl, err := NewTable("t", []Range{
		rg("0.0.0.0", "255.255.255.255", 1, "Everything v4"),
		rg("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 2, "Everything v6"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"10.1.2.3", "192.168.1.1", "127.0.0.1", "100.64.0.1", "192.0.2.1", "198.51.100.7", "203.0.113.9",
		"0.0.0.0", "255.255.255.255", "224.0.0.1", "::", "::1", "fe80::1", "fc00::1", "2001:db8::1", "ff02::1", "::ffff:10.0.0.1"} {
		if got := tbl.Lookup(netip.MustParseAddr(s)); got.Known() {
			t.Errorf("Lookup(%s) = %+v, want unknown", s, got)
		}
	}
	if got := tbl.Lookup(netip.MustParseAddr("::ffff:1.2.3.4")); got.Number != 1 {
		t.Errorf("mapped address: %+v", got)
	}
	if got := tbl.Lookup(netip.Addr{}); got.Known() {
		t.Errorf("zero Addr: %+v", got)
	}
}

func rg(from, to string, n uint32, name string) Range {
	return Range{From: netip.MustParseAddr(from), To: netip.MustParseAddr(to), AS: AS{n, name}}
}

// TestEdges: the first and last address of every range, the addresses
// around them, /16 and /20 index blocks entered mid-range, and IPv6
// outside 2000::/4.
func TestEdges(t *testing.T) {
	ranges := []Range{
		rg("1.0.0.0", "1.0.0.255", 13335, "Cloudflare"),
		rg("1.0.1.0", "1.0.1.255", 64500, "A"),
		rg("1.0.3.0", "1.2.0.10", 64501, "Spans /16s"), // gap before it
		rg("1.2.0.11", "1.2.0.11", 64500, "A"),         // a single address
		rg("223.255.255.0", "223.255.255.255", 64502, "Last v4"),
		rg("2a00::", "2a00::ffff", 64503, "B"),
		rg("2a00::1:0", "2a00:0:0:1::ffff", 64504, "C"),
		rg("2a01:0:0:0:8000::", "2a0f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 64505, "Spans /20s"),
		rg("3000::", "3000::ff", 64506, "Outside 2000::/4 index"),
	}
	tbl, err := NewTable("edges", ranges)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr string
		want uint32
	}{
		{"1.0.0.0", 13335}, {"1.0.0.255", 13335}, {"1.0.1.0", 64500}, {"1.0.1.255", 64500},
		{"1.0.2.0", 0}, {"1.0.2.255", 0}, {"1.0.3.0", 64501}, {"1.1.0.0", 64501}, {"1.1.255.255", 64501},
		{"1.2.0.0", 64501}, {"1.2.0.10", 64501}, {"1.2.0.11", 64500}, {"1.2.0.12", 0},
		{"0.255.255.255", 0}, {"223.255.254.255", 0}, {"223.255.255.0", 64502}, {"223.255.255.255", 64502},
		{"2a00::", 64503}, {"2a00::ffff", 64503}, {"2a00::1:0", 64504}, {"2a00:0:0:1::ffff", 64504},
		{"2a00:0:0:1::1:0", 0}, {"2a01::", 0}, {"2a01:0:0:0:7fff:ffff:ffff:ffff", 0},
		{"2a01:0:0:0:8000::", 64505}, {"2a05::1", 64505}, {"2a0f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 64505},
		{"2a10::", 0}, {"1fff:ffff::1", 0}, {"3000::", 64506}, {"3000::ff", 64506}, {"3000::100", 0},
	} {
		got := tbl.Lookup(netip.MustParseAddr(c.addr))
		if got.Number != c.want {
			t.Errorf("Lookup(%s) = %+v, want AS%d", c.addr, got, c.want)
		}
	}
	// Merging: adjacent ranges of one AS become one.
	if got := tbl.Ranges(); len(got) != len(ranges) {
		t.Errorf("Ranges() = %d ranges, want %d", len(got), len(ranges))
	}
	m, err := NewTable("m", []Range{rg("5.0.0.0", "5.0.0.255", 7, "X"), rg("5.0.1.0", "5.0.1.255", 7, "X")})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Ranges(); len(got) != 1 || got[0].To != netip.MustParseAddr("5.0.1.255") {
		t.Errorf("merged ranges: %+v", got)
	}
}

func TestNewTableErrors(t *testing.T) {
	for name, rs := range map[string][]Range{
		"overlap":       {rg("5.0.0.0", "5.0.1.0", 1, "A"), rg("5.0.1.0", "5.0.2.0", 2, "B")},
		"families":      {rg("5.0.0.0", "2a00::", 1, "A")},
		"inverted":      {rg("5.0.1.0", "5.0.0.0", 1, "A")},
		"two names":     {rg("5.0.0.0", "5.0.0.1", 1, "A"), rg("6.0.0.0", "6.0.0.1", 1, "B")},
		"control chars": {rg("5.0.0.0", "5.0.0.1", 1, "A\x1b[31m")},
		"bad utf-8":     {rg("5.0.0.0", "5.0.0.1", 1, "A\xff")},
	} {
		if _, err := NewTable("x", rs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func smallTable(t testing.TB) []byte {
	tbl, err := NewTable("small", []Range{
		rg("1.0.0.0", "1.0.0.255", 13335, "Cloudflare, Inc."), rg("1.0.1.0", "1.0.1.255", 4134, "Chinanet"),
		rg("2a00::", "2a00::ffff", 3320, "Deutsche Telekom AG"), rg("2a00::1:0", "2a00:0:0:1::ffff", 25192, "CZ.NIC, z.s.p.o."),
		rg("2a01::", "2a01::1", 25192, "CZ.NIC, z.s.p.o."),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tbl.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMarshalRoundTrip(t *testing.T) {
	b := smallTable(t)
	var tbl Table
	if err := tbl.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got := tbl.Lookup(netip.MustParseAddr("2a00::1:5")); got != (AS{25192, "CZ.NIC, z.s.p.o."}) {
		t.Errorf("Lookup = %+v", got)
	}
	if got := tbl.Lookup(netip.MustParseAddr("1.0.1.9")).String(); got != "AS4134 Chinanet" {
		t.Errorf("String() = %q", got)
	}
	out, err := tbl.MarshalBinary()
	if err != nil || !bytes.Equal(out, b) {
		t.Errorf("re-encoding differs (%v)", err)
	}
}

func TestUnmarshalCorrupt(t *testing.T) {
	b := smallTable(t)
	for n := range len(b) {
		if err := new(Table).UnmarshalBinary(b[:n]); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	if err := new(Table).UnmarshalBinary(append(slices.Clip(b), 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("trailing byte: %v", err)
	}
	// Flipping any bit gives an error or a valid table, never a panic.
	for i := range len(b) * 8 {
		c := slices.Clone(b)
		c[i/8] ^= 1 << (i % 8)
		var x Table
		if x.UnmarshalBinary(c) == nil {
			x.Lookup(netip.MustParseAddr("1.0.0.1"))
			x.Lookup(netip.MustParseAddr("2a00::1"))
		}
	}
	for _, g := range [][]byte{nil, []byte("not gzip"), []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\x03\x00\x00\x00\x00\xff\xff\xff\x7f")} {
		if _, err := decodeGzip(g); err == nil {
			t.Errorf("decodeGzip(%q) accepted garbage", g)
		}
	}
}

func FuzzUnmarshalBinary(f *testing.F) {
	f.Add(smallTable(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		var tbl Table
		if tbl.UnmarshalBinary(b) != nil {
			return
		}
		// A table that decodes answers, with valid names, and re-encodes
		// to the same bytes.
		for _, a := range []string{"1.0.0.1", "2a00::1", "8.8.8.8", "2a01::"} {
			if as := tbl.Lookup(netip.MustParseAddr(a)); !validName(as.Name) {
				t.Fatalf("Lookup(%s) name %q", a, as.Name)
			}
		}
		if out, err := tbl.MarshalBinary(); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encoding: %v, equal %v", err, bytes.Equal(out, b))
		}
	})
}

func TestDefaultConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if Default().Lookup(netip.MustParseAddr("1.1.1.1")).Number != 13335 {
				t.Error("wrong AS")
			}
		})
	}
	wg.Wait()
}

func TestAllocs(t *testing.T) {
	tbl := Default()
	a4, a6 := netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("2001:4860:4860::8888")
	if n := testing.AllocsPerRun(100, func() { tbl.Lookup(a4); tbl.Lookup(a6) }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

// sampleAddrs returns n random public addresses inside the table's ranges
// of one family (a server looks up attackers, who have an AS).
func sampleAddrs(tbl *Table, n int, v6 bool) []netip.Addr {
	rng := rand.New(rand.NewPCG(1, 2))
	var rs []Range
	for _, g := range tbl.Ranges() {
		if g.From.Is6() == v6 && geoip.Public(g.From) {
			rs = append(rs, g)
		}
	}
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		g := rs[rng.IntN(len(rs))]
		from, to := addrU128(g.From), addrU128(g.To)
		a := from
		switch {
		case from.hi == to.hi && to.lo-from.lo == ^uint64(0):
			a.lo = rng.Uint64()
		case from.hi == to.hi:
			a.lo += rng.Uint64N(to.lo - from.lo + 1)
		default:
			a.hi += rng.Uint64N(to.hi - from.hi)
			a.lo = rng.Uint64()
		}
		addr := u128Addr(a)
		if !v6 {
			addr = u32Addr(uint32(a.lo))
		}
		if geoip.Public(addr) {
			out = append(out, addr)
		}
	}
	return out
}

func benchLookup(b *testing.B, v6 bool) {
	tbl := Default()
	addrs := sampleAddrs(tbl, 4096, v6)
	b.ReportAllocs()
	i, found := 0, 0
	for b.Loop() {
		if tbl.Lookup(addrs[i%len(addrs)]).Known() {
			found++
		}
		i++
	}
	b.ReportMetric(float64(found)/float64(i), "found/op")
}

func BenchmarkLookupV4(b *testing.B) { benchLookup(b, false) }
func BenchmarkLookupV6(b *testing.B) { benchLookup(b, true) }

// BenchmarkDecode measures what the first Default call costs.
func BenchmarkDecode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeGzip(embedded); err != nil {
			b.Fatal(err)
		}
	}
}
