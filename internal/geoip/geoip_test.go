package geoip

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestKnown checks the embedded data against addresses the generator
// sampled from the tor-geoipdb source files (known_gen_test.go).
func TestKnown(t *testing.T) {
	tbl := Default()
	if len(known) < 100 {
		t.Fatalf("only %d known addresses", len(known))
	}
	for _, k := range known {
		a := netip.MustParseAddr(k.addr)
		want := k.country
		if !public(a) {
			want = ""
		}
		if got := tbl.Country(a); got != want {
			t.Errorf("Country(%s) = %q, want %q", a, got, want)
		}
		if a.Is4() {
			m := netip.AddrFrom16(a.As16())
			if got := tbl.Country(m); got != want {
				t.Errorf("Country(%s) = %q, want %q", m, got, want)
			}
		}
	}
}

func TestDefault(t *testing.T) {
	tbl := Default()
	if !strings.Contains(tbl.Version(), "IPFire Location") || !strings.Contains(tbl.Version(), knownSourceGenerated) {
		t.Errorf("Version() = %q", tbl.Version())
	}
	if tbl.Attribution() != Attribution {
		t.Errorf("Attribution() = %q", tbl.Attribution())
	}
	if n4, n6 := tbl.Len(); n4 < 100_000 || n6 < 100_000 {
		t.Errorf("Len() = %d, %d", n4, n6)
	}
	// Every code the table can return has a name.
	for _, c := range tbl.codes[1:] {
		if Name(c) == "" {
			t.Errorf("table code %q has no name", c)
		}
	}
	for _, s := range []string{
		"1.0.0.1", "::ffff:1.0.0.1", // first AU range of the source
	} {
		if got := tbl.Country(netip.MustParseAddr(s)); got != "AU" {
			t.Errorf("Country(%s) = %q, want AU", s, got)
		}
	}
	for _, s := range []string{
		"10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.1.1",
		"0.0.0.0", "255.255.255.255", "224.0.0.1", "100.64.0.1", "192.0.2.1",
		"198.51.100.7", "203.0.113.9", "240.0.0.1", "198.18.0.1",
		"::", "::1", "fe80::1", "fd00::1", "ff02::1", "2001:db8::1",
		"::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::808:808",
	} {
		if got := tbl.Country(netip.MustParseAddr(s)); got != "" {
			t.Errorf("Country(%s) = %q, want \"\" (private or reserved)", s, got)
		}
	}
	if got := tbl.Country(netip.Addr{}); got != "" {
		t.Errorf("Country(zero Addr) = %q", got)
	}
	var zero Table
	if got := zero.Country(netip.MustParseAddr("1.0.0.1")); got != "" {
		t.Errorf("zero Table: Country = %q", got)
	}
	// Zones do not matter.
	a := netip.MustParseAddr(known[len(known)-2].addr)
	if got, want := tbl.Country(a.WithZone("eth0")), tbl.Country(a); got != want {
		t.Errorf("Country with zone = %q, want %q", got, want)
	}
}

func TestDefaultConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	got := make([]*Table, 8)
	for i := range got {
		wg.Go(func() {
			got[i] = Default()
			got[i].Country(netip.MustParseAddr("1.0.0.1"))
		})
	}
	wg.Wait()
	for _, g := range got {
		if g != got[0] {
			t.Fatal("Default returned different tables")
		}
	}
}

func TestName(t *testing.T) {
	for code, want := range map[string]string{
		"CZ": "Czechia", "cz": "Czechia", "Cz": "Czechia", "XK": "Kosovo",
		"GB": "United Kingdom", "DE": "Germany", "US": "United States",
		"": "", "C": "", "CZE": "", "??": "", "EU": "", "AP": "", "UK": "",
		"ZZ": "", "\xff\xff": "", "C\x00": "", "1A": "",
	} {
		if got := Name(code); got != want {
			t.Errorf("Name(%q) = %q, want %q", code, got, want)
		}
	}
	if len(countryList) < 249 {
		t.Errorf("only %d countries", len(countryList))
	}
	if !slices.IsSortedFunc(countryList[:], func(a, b struct{ code, name string }) int { return strings.Compare(a.code, b.code) }) {
		t.Error("countryList not sorted")
	}
}

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"CZ": "CZ", "cz": "CZ", "UK": "GB", "uk": "GB", "XK": "XK",
		"??": "", "EU": "", "AP": "", "CS": "", "AN": "", "ZZ": "", "": "",
	} {
		if got := canonical(in); got != want {
			t.Errorf("canonical(%q) = %q, want %q", in, got, want)
		}
	}
}

func r(from, to, cc string) Range {
	return Range{From: netip.MustParseAddr(from), To: netip.MustParseAddr(to), Country: cc}
}

func TestNewTable(t *testing.T) {
	tbl, err := NewTable("test", []Range{
		r("2.0.0.0", "2.0.0.255", "fr"), // out of order on purpose
		r("0.0.0.0", "0.255.255.255", "US"),
		r("1.0.0.0", "1.0.0.255", "AU"),
		r("1.0.1.0", "1.0.1.255", "AU"), // merges with the previous
		r("1.0.2.0", "1.0.2.255", "??"),
		r("1.0.3.0", "1.0.3.255", "EU"), // not a country
		r("1.0.4.0", "1.0.4.255", "UK"),
		r("255.255.255.0", "255.255.255.255", "CZ"),
		r("2a00::", "2a00::ffff", "DE"), // inside a /64
		r("2a00::1:0", "2a00:0:0:1::ffff", "CZ"),
		r("2a01::", "2a01:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "CZ"),
		r("ffff::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "NL"),
		r("1::", "1::ff", "JP"), // outside 2000::/4 and its index
		r("3000::", "3000::ff", "PL"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if n4, n6 := tbl.Len(); n4 != 8 || n6 != 10 {
		t.Errorf("Len() = %d, %d, want 8, 10 (merged)", n4, n6)
	}
	for a, want := range map[string]string{
		"0.1.2.3": "", // reserved "this network" block, whatever the data says
		"1.0.0.0": "AU", "1.0.1.255": "AU", "1.0.2.1": "", "1.0.3.1": "",
		"1.0.4.0": "GB", "1.0.4.255": "GB", "1.0.5.0": "", "0.255.255.255": "",
		"2.0.0.0": "FR", "2.0.0.255": "FR", "2.0.1.0": "", "1.255.255.255": "",
		"2a00::": "DE", "2a00::ffff": "DE", "2a00::1:0": "CZ", "2a00:0:0:1::ffff": "CZ",
		"2a00:0:0:1::1:0": "", "2a01:1234::1": "CZ", "2a02::": "", "29ff:ffff::": "",
		// 255.255.255.255 is broadcast, ff00::/8 multicast: never a country.
		"255.255.255.254": "", "ffff::1": "",
		"1::": "JP", "1::ff": "JP", "1::100": "", "::2": "", "3000::": "PL", "3000::100": "", "2fff::": "",
	} {
		if got := tbl.Country(netip.MustParseAddr(a)); got != want {
			t.Errorf("Country(%s) = %q, want %q", a, got, want)
		}
	}
	// The edge ranges are still stored, as Ranges shows.
	want := []Range{
		r("0.0.0.0", "0.255.255.255", "US"),
		r("1.0.0.0", "1.0.1.255", "AU"),
		r("1.0.4.0", "1.0.4.255", "GB"),
		r("2.0.0.0", "2.0.0.255", "FR"),
		r("255.255.255.0", "255.255.255.255", "CZ"),
		r("1::", "1::ff", "JP"),
		r("2a00::", "2a00::ffff", "DE"),
		r("2a00::1:0", "2a00:0:0:1::ffff", "CZ"),
		r("2a01::", "2a01:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "CZ"),
		r("3000::", "3000::ff", "PL"),
		r("ffff::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "NL"),
	}
	if got := tbl.Ranges(); !slices.Equal(got, want) {
		t.Errorf("Ranges() =\n%v\nwant\n%v", got, want)
	}
	// Adjacent ranges of the same country merge into one.
	tbl, err = NewTable("", []Range{r("8.0.0.0", "8.0.0.255", "US"), r("8.0.1.0", "8.0.1.255", "us"), r("8.0.2.0", "8.0.2.255", "CA")})
	if err != nil {
		t.Fatal(err)
	}
	if n4, _ := tbl.Len(); n4 != 3 {
		t.Errorf("Len() = %d, want 3 (US, CA, unknown after)", n4)
	}
}

func TestNewTableErrors(t *testing.T) {
	for name, rs := range map[string][]Range{
		"overlap":  {r("1.0.0.0", "1.0.0.255", "AU"), r("1.0.0.255", "1.0.1.0", "CN")},
		"contains": {r("1.0.0.0", "1.0.3.255", "AU"), r("1.0.1.0", "1.0.1.255", "CN"), r("1.0.2.0", "1.0.2.255", "CN")},
		"reversed": {r("1.0.0.255", "1.0.0.0", "AU")},
		"families": {r("1.0.0.0", "2a00::", "AU")},
		"invalid":  {{Country: "AU"}},
	} {
		if _, err := NewTable("", rs); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "geoip: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

// TestMarshalRoundTrip checks that the embedded file is exactly what the
// encoder makes of the decoded table, i.e. that encoding and decoding are
// inverse on the real data.
func TestMarshalRoundTrip(t *testing.T) {
	zr, err := gzip.NewReader(bytes.NewReader(embedded))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Default().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw) {
		t.Fatalf("re-encoded table differs from the embedded one (%d vs %d bytes)", len(got), len(raw))
	}
	// And NewTable(Ranges()) rebuilds the same table.
	tbl := Default()
	again, err := NewTable(tbl.Version(), tbl.Ranges())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := again.MarshalBinary(); !bytes.Equal(b, raw) {
		t.Fatal("NewTable(Ranges()) differs from the table")
	}
}

func smallTable(t testing.TB) []byte {
	tbl, err := NewTable("small", []Range{
		r("1.0.0.0", "1.0.0.255", "AU"), r("1.0.1.0", "1.0.1.255", "CN"),
		r("2a00::", "2a00::ffff", "DE"), r("2a00::1:0", "2a00:0:0:1::ffff", "CZ"), r("2a01::", "2a01::1", "CZ"),
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

func TestUnmarshalCorrupt(t *testing.T) {
	b := smallTable(t)
	var tbl Table
	if err := tbl.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for n := range len(b) {
		if err := new(Table).UnmarshalBinary(b[:n]); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	if err := new(Table).UnmarshalBinary(append(slices.Clip(b), 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("trailing byte: %v", err)
	}
	// Flipping any bit must give an error or a valid table, never a panic.
	for i := range len(b) * 8 {
		c := slices.Clone(b)
		c[i/8] ^= 1 << (i % 8)
		var x Table
		if x.UnmarshalBinary(c) == nil {
			x.Country(netip.MustParseAddr("1.0.0.1"))
			x.Country(netip.MustParseAddr("2a00::1"))
		}
	}
	if _, err := decodeGzip([]byte("not gzip")); err == nil {
		t.Error("decodeGzip accepted garbage")
	}
}

func FuzzUnmarshalBinary(f *testing.F) {
	f.Add(smallTable(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		var tbl Table
		if tbl.UnmarshalBinary(b) != nil {
			return
		}
		// A table that decodes must answer and re-encode to the same bytes.
		for _, a := range []string{"1.0.0.1", "2a00::1", "8.8.8.8", "2a01::"} {
			tbl.Country(netip.MustParseAddr(a))
		}
		if out, err := tbl.MarshalBinary(); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encoding: %v, equal %v", err, bytes.Equal(out, b))
		}
	})
}

const textFixture = `# This file has been converted from the IPFire Location database
#
# Generated: Thu, 25 Jun 2026 04:33:59 GMT
# Vendor:    IPFire Project
# License:   CC BY-SA 4.0
#
15726992,15726999,??
16777216,16777471,AU
16777472,16778239,CN
1.0.4.0,1.0.7.255,UK

2001:2::,2001:2:0:ffff:ffff:ffff:ffff:ffff,JP
2001:506:9::4,2001:506:9::5,us
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenText(t *testing.T) {
	db, err := Open(writeFile(t, "geoip", strings.ReplaceAll(textFixture, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	tbl, ok := db.(*Table)
	if !ok {
		t.Fatalf("Open returned %T, want *Table", db)
	}
	if v := tbl.Version(); v != "IPFire Project location data, generated Thu, 25 Jun 2026 04:33:59 GMT" {
		t.Errorf("Version() = %q", v)
	}
	if tbl.Attribution() != Attribution {
		t.Errorf("Attribution() = %q", tbl.Attribution())
	}
	for a, want := range map[string]string{
		"1.0.0.0": "AU", "1.0.0.255": "AU", "1.0.1.0": "CN", "1.0.3.255": "CN",
		"::ffff:1.0.2.3": "CN", "1.0.4.1": "GB", "1.0.8.0": "", "0.239.249.145": "",
		"2001:2::1": "JP", "2001:2:0:ffff::1": "JP", "2001:2:1::": "",
		"2001:506:9::4": "US", "2001:506:9::5": "US", "2001:506:9::6": "", "2001:506:9::3": "",
	} {
		if got := db.Country(netip.MustParseAddr(a)); got != want {
			t.Errorf("Country(%s) = %q, want %q", a, got, want)
		}
	}
	// Without header comments the version is the file name.
	tbl2, err := ParseText(strings.NewReader("16777216,16777471,AU\n"), "custom.txt")
	if err != nil {
		t.Fatal(err)
	}
	if tbl2.Version() != "custom.txt" || tbl2.Attribution() != "" {
		t.Errorf("Version() = %q, Attribution() = %q", tbl2.Version(), tbl2.Attribution())
	}
}

func TestOpenMalformed(t *testing.T) {
	for name, c := range map[string]struct{ content, msg string }{
		"empty":      {"", "no address ranges"},
		"comments":   {"# nothing\n\n", "no address ranges"},
		"binary":     {"\x00\x01\x02garbage\xff", ":1: want FROM,TO,CC"},
		"fields":     {"1,2\n", ":1: want FROM,TO,CC"},
		"extra":      {"1,2,CZ,x\n", ":1: want FROM,TO,CC"},
		"address":    {"# ok\n1,2,CZ\nfoo,3,CZ\n", `:3: bad address "foo"`},
		"too big":    {"4294967296,4294967297,CZ\n", "bad address"},
		"code":       {"1,2,CZE\n", "bad country code"},
		"reversed":   {"16777471,16777216,AU\n", ":1: range 1.0.0.255-1.0.0.0 starts after its end"},
		"families":   {"16777216,2001::,AU\n", "mixes address families"},
		"overlap":    {"16777216,16777471,AU\n16777400,16777500,CN\n", "IPv4 range at line 2 overlaps the range at line 1"},
		"overlap v6": {"2001::,2001::ff,AU\n2001::10,2001::20,CN\n", "IPv6 range at line 2 overlaps"},
		"zone":       {"fe80::1%eth0,fe80::2,CZ\n", "bad address"},
	} {
		p := writeFile(t, "bad", c.content)
		_, err := Open(p)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "geoip: "+p) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %q, want the path and %q", name, err, c.msg)
		}
	}
	_, err := Open(filepath.Join(t.TempDir(), "missing.mmdb"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// A file with the MaxMind marker but no valid database is an mmdb error.
	p := writeFile(t, "broken.mmdb", "xx\xab\xcd\xefMaxMind.com\x00")
	if _, err := Open(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("broken mmdb: %v", err)
	}
}

func FuzzParseText(f *testing.F) {
	f.Add(textFixture)
	f.Add("1,2,CZ\n3,4,??\n")
	f.Fuzz(func(t *testing.T, s string) {
		tbl, err := ParseText(strings.NewReader(s), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "geoip: fuzz") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		for _, g := range tbl.Ranges() {
			if g.Country == "" || Name(g.Country) == "" {
				t.Fatalf("range %v has a bad country", g)
			}
			for _, a := range []netip.Addr{g.From, g.To} {
				if got := tbl.Country(a); got != g.Country && public(a) {
					t.Fatalf("Country(%s) = %q, want %q", a, got, g.Country)
				}
			}
		}
	})
}

func TestAllocs(t *testing.T) {
	tbl := Default()
	a4, a6 := netip.MustParseAddr("1.0.0.1"), netip.MustParseAddr(known[len(known)-1].addr)
	if n := testing.AllocsPerRun(100, func() { tbl.Country(a4); tbl.Country(a6) }); n != 0 {
		t.Errorf("Table.Country allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { Name("cz") }); n != 0 {
		t.Errorf("Name allocates %v times", n)
	}
}

// sampleAddrs returns n random addresses of the family inside the ranges
// (a server looks up attackers, who have one),
// so that every lookup takes the full search.
func sampleAddrs(ranges []Range, n int, v6 bool) []netip.Addr {
	rng := rand.New(rand.NewPCG(1, 2))
	var rs []Range
	for _, g := range ranges {
		if g.From.Is6() == v6 && public(g.From) {
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
		if public(addr) {
			out = append(out, addr)
		}
	}
	return out
}

func benchCountry(b *testing.B, db DB, addrs []netip.Addr) {
	b.ReportAllocs()
	i, found := 0, 0
	for b.Loop() {
		if db.Country(addrs[i%len(addrs)]) != "" {
			found++
		}
		i++
	}
	b.ReportMetric(float64(found)/float64(i), "found/op")
}

func BenchmarkCountryV4(b *testing.B) {
	benchCountry(b, Default(), sampleAddrs(Default().Ranges(), 4096, false))
}

func BenchmarkCountryV6(b *testing.B) {
	benchCountry(b, Default(), sampleAddrs(Default().Ranges(), 4096, true))
}

// BenchmarkDecode measures what the first Default call costs.
func BenchmarkDecode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeGzip(embedded); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkName(b *testing.B) {
	for b.Loop() {
		Name("CZ")
	}
}
