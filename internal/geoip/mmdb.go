package geoip

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
)

// MMDB is a DB backed by a MaxMind DB file (memory-mapped by
// maxminddb-golang). It is safe for concurrent use.
type MMDB struct {
	r       *maxminddb.Reader
	version string

	// A country database has a few hundred distinct records shared by
	// hundreds of thousands of networks, so the decoded country is cached
	// by record offset: after warm-up a lookup is a tree walk plus a map
	// read and allocates nothing.
	mu    sync.RWMutex
	cache map[uintptr]string
}

// countryPaths are where the layouts in use keep the country code, in order
// of preference: MaxMind GeoIP2/GeoLite2 and DB-IP Lite (country.iso_code),
// the flat country_code of IPinfo Lite and similar free databases (whose
// "country" is a name, not a map), and MaxMind's registered_country for
// networks it knows only by registrant.
var countryPaths = [][]any{
	{"country", "iso_code"},
	{"country_code"},
	{"registered_country", "iso_code"},
}

func openMMDB(path string) (*MMDB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: %s: %w", path, err)
	}
	m := r.Metadata
	version := m.DatabaseType
	if d := m.Description["en"]; d != "" && d != version {
		version += " (" + d + ")"
	}
	if m.BuildEpoch != 0 {
		version += ", built " + m.BuildTime().UTC().Format("2006-01-02")
	}
	return &MMDB{r: r, version: version, cache: map[uintptr]string{}}, nil
}

// Version describes the database: its type, description and build date.
func (m *MMDB) Version() string { return m.version }

// Attribution returns the credit the licence of a known free database asks
// for, by its database type: MaxMind GeoLite2 (GeoLite2 EULA), DB-IP Lite
// (CC BY 4.0) and IPinfo Lite (CC BY-SA 4.0). Commercial and unknown
// databases return "".
func (m *MMDB) Attribution() string {
	t := strings.ToLower(m.r.Metadata.DatabaseType)
	switch {
	case strings.HasPrefix(t, "geolite2"):
		return "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com."
	case strings.HasPrefix(t, "dbip") || strings.HasPrefix(t, "db-ip"):
		return "IP Geolocation by DB-IP (https://db-ip.com), licensed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)."
	case strings.HasPrefix(t, "ipinfo"):
		return "IP address data powered by IPinfo (https://ipinfo.io), licensed under CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/)."
	}
	return ""
}

// Close unmaps the file. Country must not be called afterwards.
func (m *MMDB) Close() error { return m.r.Close() }

// Country implements DB. Errors (a corrupt file, an IPv6 address in an
// IPv4-only database) mean the country is unknown.
func (m *MMDB) Country(a netip.Addr) string {
	a = a.Unmap()
	if !public(a) {
		return ""
	}
	res := m.r.Lookup(a)
	if !res.Found() {
		return ""
	}
	off := res.Offset()
	m.mu.RLock()
	cc, ok := m.cache[off]
	m.mu.RUnlock()
	if ok {
		return cc
	}
	for _, path := range countryPaths {
		// A path of another type in this layout is an error: try the next.
		var s string
		if res.DecodePath(&s, path...) == nil && s != "" {
			cc = canonical(s)
			break
		}
	}
	m.mu.Lock()
	m.cache[off] = cc
	m.mu.Unlock()
	return cc
}
