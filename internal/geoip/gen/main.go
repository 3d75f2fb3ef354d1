// Command gen regenerates the data of package geoip from Debian packages:
//
//   - data/geoip.dat from tor-geoipdb (/usr/share/tor/geoip and geoip6),
//     re-encoded in the compact format of geoip.Table.MarshalBinary and
//     gzip-compressed;
//   - names_gen.go, the country names, from iso-codes
//     (/usr/share/iso-codes/json/iso_3166-1.json), plus Kosovo;
//   - known_gen_test.go, addresses sampled from the source files with the
//     country the source gives them, so the tests check the embedded data
//     against the source without needing the source installed.
//
// Run it with go generate ./internal/geoip or go run ./internal/geoip/gen
// from anywhere in the module.
//
// The generator is compiled with the package it feeds, so when the country
// list changes it first writes names_gen.go and then runs itself again,
// letting the data encoding see the new list.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"log"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynfw/sentinel/internal/geoip"
)

var (
	geoip4  = flag.String("geoip", "/usr/share/tor/geoip", "tor IPv4 geoip file")
	geoip6  = flag.String("geoip6", "/usr/share/tor/geoip6", "tor IPv6 geoip file")
	isoJSON = flag.String("iso", "/usr/share/iso-codes/json/iso_3166-1.json", "iso-codes ISO 3166-1 JSON")
	dir     = flag.String("dir", "", "package directory (default: found with go list)")
	again   = flag.Bool("again", false, "internal: second run after names_gen.go changed")
)

// The licence the Attribution constant describes. A source with another
// header needs a human to update the attribution, so the generator stops.
var wantHeader = []string{
	"Vendor:    IPFire Project",
	"License:   CC BY-SA 4.0",
	"https://location.ipfire.org/",
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("geoip/gen: ")
	flag.Parse()
	if *dir == "" {
		out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "github.com/dynfw/sentinel/internal/geoip").Output()
		if err != nil {
			log.Fatalf("go list: %v", err)
		}
		*dir = strings.TrimSpace(string(out))
	}

	names := readNames(*isoJSON)
	changed := write(filepath.Join(*dir, "names_gen.go"), namesSource(names))
	if changed {
		if *again {
			log.Fatal("names_gen.go changed on the second run")
		}
		log.Print("names_gen.go updated; running again with the new country list")
		args := append([]string{"run", "github.com/dynfw/sentinel/internal/geoip/gen", "-again"}, os.Args[1:]...)
		cmd := exec.Command("go", args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			log.Fatal(err)
		}
		return
	}

	src4, hdr4 := readSource(*geoip4)
	src6, hdr6 := readSource(*geoip6)
	for _, h := range []header{hdr4, hdr6} {
		for _, w := range wantHeader {
			if !strings.Contains(h.text, w) {
				log.Fatalf("%s: header lacks %q: check the licence and update geoip.Attribution and data/README, then this check", h.path, w)
			}
		}
	}
	if hdr4.generated != hdr6.generated {
		log.Fatalf("geoip and geoip6 come from different exports (%s, %s)", hdr4.generated, hdr6.generated)
	}
	version := "IPFire Location, generated " + hdr4.generated
	if v := debVersion("tor-geoipdb"); v != "" {
		version += " (Debian tor-geoipdb " + v + ")"
	}

	var ranges []geoip.Range
	for _, s := range append(src4, src6...) {
		ranges = append(ranges, s.Range)
	}
	t, err := geoip.NewTable(version, ranges)
	if err != nil {
		log.Fatal(err)
	}
	raw, err := t.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	if _, err := zw.Write(raw); err != nil {
		log.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	// Check the result before writing: decode it and compare the ranges.
	var back geoip.Table
	if err := back.UnmarshalBinary(raw); err != nil {
		log.Fatalf("decoding what was just encoded: %v", err)
	}
	if !slices.Equal(back.Ranges(), t.Ranges()) {
		log.Fatal("decoded ranges differ from the encoded ones")
	}
	write(filepath.Join(*dir, "data", "geoip.dat"), z.Bytes())
	n4, n6 := t.Len()
	log.Printf("data/geoip.dat: %d bytes (%d uncompressed), %d IPv4 and %d IPv6 ranges from %d+%d source lines",
		z.Len(), len(raw), n4, n6, len(src4), len(src6))

	write(filepath.Join(*dir, "known_gen_test.go"), knownSource(hdr4.generated, names, src4, src6))
}

type country struct {
	Code, Name string
}

// readNames returns the countries of ISO 3166-1 plus Kosovo, sorted by code.
func readNames(path string) []country {
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	var doc struct {
		List []struct {
			Alpha2 string `json:"alpha_2"`
			Name   string `json:"name"`
		} `json:"3166-1"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		log.Fatalf("%s: %v", path, err)
	}
	var out []country
	for _, c := range doc.List {
		if len(c.Alpha2) != 2 || strings.ToUpper(c.Alpha2) != c.Alpha2 || c.Name == "" {
			log.Fatalf("%s: bad entry %+v", path, c)
		}
		out = append(out, country{c.Alpha2, c.Name})
	}
	if len(out) < 240 {
		log.Fatalf("%s: only %d countries", path, len(out))
	}
	// Kosovo has no ISO 3166-1 code; XK is the user-assigned code that
	// the European Commission, MaxMind, DB-IP and IPFire use for it.
	if !slices.ContainsFunc(out, func(c country) bool { return c.Code == "XK" }) {
		out = append(out, country{"XK", "Kosovo"})
	}
	slices.SortFunc(out, func(a, b country) int { return strings.Compare(a.Code, b.Code) })
	return out
}

func namesSource(names []country) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by go run ./gen; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "package geoip\n\n")
	fmt.Fprintf(&b, "// countryList holds the ISO 3166-1 alpha-2 codes and English short names\n")
	fmt.Fprintf(&b, "// from Debian iso-codes %s, plus Kosovo, sorted by code.\n", debVersion("iso-codes"))
	fmt.Fprintf(&b, "var countryList = [...]struct{ code, name string }{\n")
	for _, c := range names {
		fmt.Fprintf(&b, "\t{%q, %q},\n", c.Code, c.Name)
	}
	fmt.Fprintf(&b, "}\n")
	return gofmt(b.Bytes())
}

type header struct {
	path, text, generated string
}

type sourceRange struct {
	geoip.Range
	raw string // country code as in the file
}

func readSource(path string) ([]sourceRange, header) {
	f, err := os.Open(path)
	if err != nil {
		log.Fatalf("%v (install Debian's tor-geoipdb)", err)
	}
	defer f.Close()
	h := header{path: path}
	var hdr strings.Builder
	var out []sourceRange
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if c, ok := strings.CutPrefix(s, "#"); ok {
			hdr.WriteString(c + "\n")
			if v, ok := strings.CutPrefix(strings.TrimSpace(c), "Generated:"); ok {
				h.generated = strings.TrimSpace(v)
			}
			continue
		}
		if s == "" {
			continue
		}
		// Deliberately independent of geoip.ParseText, so that the
		// sampled expectations check it rather than repeat it.
		from, to, cc, ok := cut3(s)
		if !ok {
			log.Fatalf("%s:%d: malformed line %q", path, line, s)
		}
		out = append(out, sourceRange{geoip.Range{From: addr(path, line, from), To: addr(path, line, to), Country: cc, Line: line}, cc})
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	if h.generated == "" {
		log.Fatalf("%s: no Generated: header", path)
	}
	if _, err := time.Parse(time.RFC1123, h.generated); err != nil {
		log.Fatalf("%s: Generated: %v", path, err)
	}
	h.text = hdr.String()
	return out, h
}

func cut3(s string) (a, b, c string, ok bool) {
	a, rest, ok1 := strings.Cut(s, ",")
	b, c, ok2 := strings.Cut(rest, ",")
	return a, b, c, ok1 && ok2 && len(c) == 2
}

func addr(path string, line int, s string) netip.Addr {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		log.Fatalf("%s:%d: %v", path, line, err)
	}
	return a
}

// knownSource samples about 60 ranges of each file, spread evenly, plus the
// first AU range, and writes their first, middle and last addresses with
// the country expected from the raw code: upper case, UK as GB, and "" for
// anything not in the country list.
func knownSource(generated string, names []country, src4, src6 []sourceRange) []byte {
	valid := map[string]bool{}
	for _, c := range names {
		valid[c.Code] = true
	}
	expect := func(raw string) string {
		raw = strings.ToUpper(raw)
		if raw == "UK" {
			raw = "GB"
		}
		if !valid[raw] {
			return ""
		}
		return raw
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by go run ./gen; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "package geoip\n\n")
	fmt.Fprintf(&b, "// knownSourceGenerated is the Generated: header of the tor-geoipdb\n")
	fmt.Fprintf(&b, "// files the embedded data was built from.\n")
	fmt.Fprintf(&b, "const knownSourceGenerated = %q\n\n", generated)
	fmt.Fprintf(&b, "// known lists addresses sampled from those files with their country.\n")
	fmt.Fprintf(&b, "var known = []struct{ addr, country string }{\n")
	for _, src := range [][]sourceRange{src4, src6} {
		picks := map[int]bool{}
		for i := 0; i < len(src); i += len(src)/60 + 1 {
			picks[i] = true
		}
		picks[len(src)-1] = true
		if i := slices.IndexFunc(src, func(s sourceRange) bool { return s.raw == "AU" }); i >= 0 {
			picks[i] = true
		}
		// Also every range with an unusual code, to pin down the mapping.
		seen := map[string]bool{}
		for i, s := range src {
			if e := expect(s.raw); (e == "" || e != s.raw) && !seen[s.raw] {
				seen[s.raw] = true
				picks[i] = true
			}
		}
		idx := make([]int, 0, len(picks))
		for i := range picks {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		for _, i := range idx {
			s := src[i]
			fmt.Fprintf(&b, "\t// line %d: %s,%s,%s\n", s.Line, s.From, s.To, s.raw)
			for _, a := range []netip.Addr{s.From, mid(s.From, s.To), s.To} {
				fmt.Fprintf(&b, "\t{%q, %q},\n", a, expect(s.raw))
			}
		}
	}
	fmt.Fprintf(&b, "}\n")
	return gofmt(b.Bytes())
}

// mid returns an address halfway between a and b.
func mid(a, b netip.Addr) netip.Addr {
	x, y := a.As16(), b.As16()
	var out [16]byte
	carry := 0
	for i := 15; i >= 0; i-- {
		s := int(x[i]) + int(y[i]) + carry
		out[i], carry = byte(s), s>>8
	}
	// Shift the 129-bit sum right by one.
	for i := 0; i < 16; i++ {
		next := out[i] & 1
		out[i] = out[i]>>1 | byte(carry<<7)
		carry = int(next)
	}
	m := netip.AddrFrom16(out)
	if a.Is4() {
		m = m.Unmap()
	}
	return m
}

func debVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func gofmt(src []byte) []byte {
	out, err := format.Source(src)
	if err != nil {
		log.Fatalf("generated code: %v", err)
	}
	return out
}

// write replaces path with b unless it already holds b, and reports whether
// it changed.
func write(path string, b []byte) bool {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return false
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		log.Fatal(err)
	}
	return true
}
