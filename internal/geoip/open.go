package geoip

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// mmdbMarker starts the metadata section of every MaxMind DB file, near its
// end.
var mmdbMarker = []byte("\xab\xcd\xefMaxMind.com")

// Open loads a country database from path, choosing the reader by content
// rather than by file name:
//
//   - a MaxMind DB (.mmdb) file, such as MaxMind GeoLite2/GeoIP2 Country or
//     City or DB-IP's IP-to-Country Lite, is read with maxminddb-golang and
//     returned as *MMDB; call its Close when replacing it;
//   - anything else is parsed as Tor's geoip text format (both the IPv4
//     "FROM_INT,TO_INT,CC" and the IPv6 "FROM_IP6,TO_IP6,CC" lines, which may
//     be mixed in one file) and returned as *Table.
//
// Both results have Version and Attribution methods for display: a page
// showing countries from a file opened here must show that file's
// attribution, not the Attribution constant of the embedded data.
func Open(path string) (DB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: %w", err)
	}
	defer f.Close()
	// The metadata section holds a few hundred bytes of text, so its marker
	// is within the last 128 KiB (the limit the format specification sets).
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("geoip: %w", err)
	}
	tail := make([]byte, min(st.Size(), 128<<10))
	if _, err := f.ReadAt(tail, st.Size()-int64(len(tail))); err != nil {
		return nil, fmt.Errorf("geoip: %s: %w", path, err)
	}
	if bytes.Contains(tail, mmdbMarker) {
		return openMMDB(path)
	}
	return ParseText(f, path)
}

// ParseText reads Tor's geoip text format: one range per line as
// "FROM,TO,CC", FROM and TO being IPv4 addresses as decimal integers (or in
// dotted form) or IPv6 addresses, CC a country code or "??" for unknown.
// Blank lines and lines starting with '#' are ignored; the "Generated:" and
// "Vendor:" header comments of the IPFire-based files go into the version,
// which otherwise is name. Name also prefixes error messages.
func ParseText(r io.Reader, name string) (*Table, error) {
	var ranges []Range
	var vendor, generated string
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		if c, ok := strings.CutPrefix(s, "#"); ok {
			c = strings.TrimSpace(c)
			if v, ok := strings.CutPrefix(c, "Generated:"); ok && generated == "" {
				generated = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(c, "Vendor:"); ok && vendor == "" {
				vendor = strings.TrimSpace(v)
			}
			continue
		}
		g, err := parseLine(s)
		if err != nil {
			return nil, fmt.Errorf("geoip: %s:%d: %w", name, line, err)
		}
		g.Line = line
		ranges = append(ranges, g)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("geoip: %s:%d: %w", name, line+1, err)
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf("geoip: %s: no address ranges: neither a tor geoip text file nor a MaxMind DB", name)
	}
	version := name
	if vendor != "" || generated != "" {
		version = strings.TrimSpace(vendor + " location data, generated " + generated)
	}
	t, err := newTable(version, ranges)
	if err != nil {
		return nil, fmt.Errorf("geoip: %s: %w", name, err)
	}
	if vendor == "IPFire Project" {
		t.attribution = Attribution
	}
	return t, nil
}

func parseLine(s string) (Range, error) {
	f := strings.Split(s, ",")
	if len(f) != 3 {
		return Range{}, fmt.Errorf("want FROM,TO,CC, got %.80q", s)
	}
	var g Range
	var err error
	if g.From, err = parseAddr(f[0]); err != nil {
		return Range{}, err
	}
	if g.To, err = parseAddr(f[1]); err != nil {
		return Range{}, err
	}
	cc := strings.TrimSpace(f[2])
	if len(cc) != 2 {
		return Range{}, fmt.Errorf("bad country code %.20q", cc)
	}
	g.Country = cc
	if g.From.Is4() != g.To.Is4() {
		return Range{}, fmt.Errorf("range %v-%v mixes address families", g.From, g.To)
	}
	if g.To.Less(g.From) {
		return Range{}, fmt.Errorf("range %v-%v starts after its end", g.From, g.To)
	}
	return g, nil
}

func parseAddr(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return u32Addr(uint32(n)), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("bad address %.50q", s)
	}
	return a.Unmap(), nil
}
