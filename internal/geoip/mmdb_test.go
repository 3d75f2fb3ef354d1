package geoip

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

func names(en string) mmdbtype.Map {
	return mmdbtype.Map{"en": mmdbtype.String(en), "de": mmdbtype.String(en + " (de)")}
}

// Record layouts as the real databases have them.
var (
	// MaxMind GeoLite2/GeoIP2 Country.
	maxmindCZ = mmdbtype.Map{
		"continent":          mmdbtype.Map{"code": mmdbtype.String("EU"), "geoname_id": mmdbtype.Uint32(6255148), "names": names("Europe")},
		"country":            mmdbtype.Map{"geoname_id": mmdbtype.Uint32(3077311), "is_in_european_union": mmdbtype.Bool(true), "iso_code": mmdbtype.String("CZ"), "names": names("Czechia")},
		"registered_country": mmdbtype.Map{"geoname_id": mmdbtype.Uint32(3077311), "iso_code": mmdbtype.String("CZ"), "names": names("Czechia")},
	}
	// DB-IP IP-to-Country Lite: the same keys without registered_country.
	dbipDE = mmdbtype.Map{
		"continent": mmdbtype.Map{"code": mmdbtype.String("EU"), "geoname_id": mmdbtype.Uint32(6255148), "names": names("Europe")},
		"country":   mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2921044), "is_in_european_union": mmdbtype.Bool(true), "iso_code": mmdbtype.String("DE"), "names": names("Germany")},
	}
	// MaxMind networks known only by registrant (e.g. satellite providers).
	registeredOnlyUS = mmdbtype.Map{
		"registered_country": mmdbtype.Map{"geoname_id": mmdbtype.Uint32(6252001), "iso_code": mmdbtype.String("US"), "names": names("United States")},
	}
	// IPinfo Lite and similar flat layouts.
	flatSK = mmdbtype.Map{"country_code": mmdbtype.String("SK"), "country": mmdbtype.String("Slovakia"), "asn": mmdbtype.String("AS1")}
	// The minimal record of the brief and a region that is not a country.
	minimalCZ = mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("CZ")}}
	regionEU  = mmdbtype.Map{"continent": mmdbtype.Map{"code": mmdbtype.String("EU")}, "country": mmdbtype.Map{"iso_code": mmdbtype.String("EU")}}
	noCountry = mmdbtype.Map{"continent": mmdbtype.Map{"code": mmdbtype.String("AS")}}
)

// writeMMDB writes a MaxMind DB with the given networks at test time, so no
// binary fixture needs to be committed.
func writeMMDB(t testing.TB, ipVersion int, dbType string, nets map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType,
		Description:  map[string]string{"en": dbType + " test database"},
		IPVersion:    ipVersion,
		RecordSize:   24,
		BuildEpoch:   time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range nets {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	p := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func openMMDBTest(t testing.TB, path string) *MMDB {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := db.(*MMDB)
	if !ok {
		t.Fatalf("Open returned %T, want *MMDB", db)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestOpenMMDB(t *testing.T) {
	m := openMMDBTest(t, writeMMDB(t, 6, "GeoLite2-Country", map[string]mmdbtype.Map{
		"1.2.3.0/24":    minimalCZ,
		"5.6.0.0/16":    maxmindCZ,
		"2.16.0.0/13":   dbipDE,
		"41.0.0.0/11":   registeredOnlyUS,
		"91.127.0.0/16": flatSK,
		"2.56.0.0/14":   regionEU,
		"43.0.0.0/8":    noCountry,
		"2a00::/16":     dbipDE,
		"2a01:4f8::/32": flatSK,
	}))
	if v := m.Version(); v != "GeoLite2-Country (GeoLite2-Country test database), built 2026-06-01" {
		t.Errorf("Version() = %q", v)
	}
	if a := m.Attribution(); !strings.Contains(a, "GeoLite2 data created by MaxMind") {
		t.Errorf("Attribution() = %q", a)
	}
	for a, want := range map[string]string{
		"1.2.3.4": "CZ", "::ffff:1.2.3.4": "CZ", "5.6.7.8": "CZ", "2.17.0.1": "DE",
		"41.1.1.1": "US", "91.127.1.1": "SK", "2.57.1.1": "", "43.1.1.1": "",
		"8.8.8.8": "", "2a00:1450::1": "DE", "2a01:4f8::1": "SK", "2a02::1": "",
		"10.1.2.3": "", "192.168.1.1": "", "::1": "", "fe80::1": "",
	} {
		for range 2 { // the second time from the cache
			if got := m.Country(netip.MustParseAddr(a)); got != want {
				t.Errorf("Country(%s) = %q, want %q", a, got, want)
			}
		}
	}
	a := netip.MustParseAddr("5.6.7.8")
	if n := testing.AllocsPerRun(100, func() { m.Country(a) }); n != 0 {
		t.Errorf("cached MMDB.Country allocates %v times", n)
	}
}

func TestOpenMMDBv4Only(t *testing.T) {
	m := openMMDBTest(t, writeMMDB(t, 4, "DBIP-Country-Lite", map[string]mmdbtype.Map{
		"2.16.0.0/13": dbipDE,
	}))
	for a, want := range map[string]string{
		"2.17.0.1": "DE", "::ffff:2.17.0.1": "DE", "2a00::1": "", "9.9.9.9": "",
	} {
		if got := m.Country(netip.MustParseAddr(a)); got != want {
			t.Errorf("Country(%s) = %q, want %q", a, got, want)
		}
	}
	if !strings.HasPrefix(m.Version(), "DBIP-Country-Lite") || !strings.Contains(m.Attribution(), "DB-IP") {
		t.Errorf("Version() = %q, Attribution() = %q", m.Version(), m.Attribution())
	}
}

func TestMMDBConcurrent(t *testing.T) {
	m := openMMDBTest(t, writeMMDB(t, 6, "GeoLite2-Country", map[string]mmdbtype.Map{
		"1.2.3.0/24": minimalCZ, "2.16.0.0/13": dbipDE, "2a00::/16": flatSK,
	}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				for a, want := range map[string]string{"1.2.3.4": "CZ", "2.17.0.1": "DE", "2a00::1": "SK"} {
					if got := m.Country(netip.MustParseAddr(a)); got != want {
						t.Errorf("Country(%s) = %q, want %q", a, got, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkCountryMMDB(b *testing.B) {
	nets := map[string]mmdbtype.Map{}
	rs := Default().Ranges()[:5000]
	for _, g := range rs {
		for _, p := range rangePrefixes(g.From, g.To) {
			nets[p.String()] = mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(g.Country)}}
		}
	}
	m := openMMDBTest(b, writeMMDB(b, 6, "bench", nets))
	benchCountry(b, m, sampleAddrs(rs, 4096, false))
}

// rangePrefixes splits an IPv4 range into CIDR prefixes.
func rangePrefixes(from, to netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for from.IsValid() && !to.Less(from) {
		bits := 32
		for bits > 0 {
			p, _ := from.Prefix(bits - 1)
			last := lastAddr(p)
			if p.Addr() != from || to.Less(last) {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(from, bits)
		out = append(out, p)
		from = lastAddr(p).Next()
	}
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	x := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	x |= uint32(1)<<(32-p.Bits()) - 1
	return u32Addr(x)
}
