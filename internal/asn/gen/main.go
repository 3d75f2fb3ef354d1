// Command gen regenerates the data of package asn from the npm package
// @ip-location-db/asn:
//
//   - data/asn.dat, the IPv4 and IPv6 ranges with their AS number and
//     name, in the compact format of asn.Table.MarshalBinary,
//     gzip-compressed;
//   - known_gen_test.go, addresses sampled from the source files with the
//     AS the source gives them, so that the tests check the embedded data
//     against the source without needing it.
//
// It fetches the pinned release with `npm pack` (or reads -tgz), checks the
// tarball against the pinned integrity (sha512, as npm records it) and the
// licence files against what Credits and data/README describe, so that
// running it again gives the same bytes, and a release under other terms
// stops it. Run it with go generate ./internal/asn. To move to another
// release, run go run ./internal/asn/gen -version V -integrity sha512-...,
// review the licence, then update pinnedVersion and pinnedIntegrity.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dynfw/sentinel/internal/asn"
)

const (
	pkg             = "@ip-location-db/asn"
	pinnedVersion   = "2.3.2026061719"
	pinnedIntegrity = "sha512-PpqYi7wyEyWwunXBtl+y3Vi403SvNywotWwvmiYCOUtE0SVol/Sf492Ee+eErEznmGapxEQB2SAfrpXuZ9a+vQ=="
)

var (
	version   = flag.String("version", pinnedVersion, "release of "+pkg+" to fetch")
	integrity = flag.String("integrity", "", "expected npm integrity (sha512-...) of that release (default: the pinned one for the pinned version)")
	tgz       = flag.String("tgz", "", "use this tarball (npm pack output) instead of fetching")
	dir       = flag.String("dir", "", "package directory (default: found with go list)")
)

// The licence statements data/README and asn.Credits rest on. A release
// whose files say otherwise needs a human to read them first.
var wantLicence = map[string][]string{
	"package/ROUTEVIEWS-LICENSE": {"Route Views", "Creative Commons Attribution 4.0", "routeviews.org"},
	"package/DBIP-LICENSE":       {"DB-IP", "Creative Commons Attribution 4.0", "DB-IP.com"},
	"package/NRO_LICENSE":        {"NRO", "Creative Commons Attribution 4.0", "nro.net"},
	"package/package.json":       {"CC-BY-4.0"},
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("asn/gen: ")
	flag.Parse()
	if *dir == "" {
		out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "github.com/dynfw/sentinel/internal/asn").Output()
		if err != nil {
			log.Fatalf("go list: %v", err)
		}
		*dir = strings.TrimSpace(string(out))
	}
	want := *integrity
	if want == "" {
		if *version != pinnedVersion {
			log.Fatalf("-version %s needs -integrity (npm view %s@%s dist.integrity)", *version, pkg, *version)
		}
		want = pinnedIntegrity
	}
	path := *tgz
	if path == "" {
		tmp, err := os.MkdirTemp("", "asn-gen")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		path = npmPack(tmp, pkg+"@"+*version)
	}
	blob, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	sum := sha512.Sum512(blob)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != want {
		log.Fatalf("%s: integrity %s, want %s", path, got, want)
	}
	files := untar(blob)
	for name, needles := range wantLicence {
		text, ok := files[name]
		if !ok {
			log.Fatalf("tarball lacks %s", name)
		}
		for _, n := range needles {
			if !strings.Contains(string(text), n) {
				log.Fatalf("%s no longer says %q: review the licence, then update data/README, asn.Credits and this check", name, n)
			}
		}
	}

	var ranges []asn.Range
	v4, fixed4 := readCSV(files, "package/asn-ipv4.csv", true)
	v6, fixed6 := readCSV(files, "package/asn-ipv6.csv", false)
	for _, s := range append(slices.Clone(v4), v6...) {
		ranges = append(ranges, s.Range)
	}
	ver := fmt.Sprintf("ip-location-db asn %s (RouteViews, NRO, DB-IP)", *version)
	t, err := asn.NewTable(ver, ranges)
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
	var back asn.Table
	if err := back.UnmarshalBinary(raw); err != nil {
		log.Fatalf("decoding what was just encoded: %v", err)
	}
	if !slices.Equal(back.Ranges(), t.Ranges()) {
		log.Fatal("decoded ranges differ from the encoded ones")
	}
	write(filepath.Join(*dir, "data", "asn.dat"), z.Bytes())
	n4, n6, nas := t.Len()
	log.Printf("data/asn.dat: %d bytes (%d uncompressed), %d IPv4 and %d IPv6 ranges, %d ASes, from %d+%d source lines (%d overlaps resolved)",
		z.Len(), len(raw), n4, n6, nas, len(v4), len(v6), fixed4+fixed6)
	write(filepath.Join(*dir, "known_gen_test.go"), knownSource(*version, v4, v6))
}

// npmPack fetches spec into dir with npm and returns the tarball's path.
func npmPack(dir, spec string) string {
	cmd := exec.Command("npm", "pack", "--json", "--pack-destination", dir, spec)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		log.Fatalf("npm pack %s: %v", spec, err)
	}
	var res []struct {
		Filename string `json:"filename"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res) != 1 {
		log.Fatalf("npm pack %s: unexpected output (%v)", spec, err)
	}
	return filepath.Join(dir, filepath.Base(res[0].Filename))
}

// untar returns the regular files of a .tgz by name.
func untar(blob []byte) map[string][]byte {
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		log.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			log.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 256<<20))
		if err != nil {
			log.Fatal(err)
		}
		out[h.Name] = b
	}
}

type sourceRange struct {
	asn.Range
	raw string // the AS name as in the file
}

// readCSV parses "FROM,TO,ASN,NAME" lines. Deliberately independent of
// package asn, so that the sampled expectations check it rather than
// repeat it. Overlapping ranges (the source has a few) are resolved in
// favour of the range that starts later, which is the more specific one:
// the earlier range is cut short, and resumes after a range nested in it.
func readCSV(files map[string][]byte, name string, v4 bool) ([]sourceRange, int) {
	b, ok := files[name]
	if !ok {
		log.Fatalf("tarball lacks %s", name)
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = 4
	r.ReuseRecord = true
	var out []sourceRange
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		from, err1 := netip.ParseAddr(rec[0])
		to, err2 := netip.ParseAddr(rec[1])
		num, err3 := strconv.ParseUint(rec[2], 10, 32)
		if err := errors.Join(err1, err2, err3); err != nil || from.Is4() != v4 || to.Is4() != v4 || num == 0 {
			log.Fatalf("%s:%d: bad line %q (%v)", name, line, strings.Join(rec, ","), err)
		}
		out = append(out, sourceRange{asn.Range{From: from, To: to, AS: asn.AS{Number: uint32(num), Name: strings.TrimSpace(rec[3])}, Line: line}, rec[3]})
	}
	slices.SortStableFunc(out, func(a, b sourceRange) int { return a.From.Compare(b.From) })
	fixed := 0
	res := make([]sourceRange, 0, len(out))
	for _, s := range out {
		n := len(res)
		if n == 0 || res[n-1].To.Less(s.From) {
			res = append(res, s)
			continue
		}
		fixed++
		prev := res[n-1]
		if fixed > 100 {
			log.Fatalf("%s: more than 100 overlapping ranges; look at the source", name)
		}
		if prev.From == s.From {
			log.Fatalf("%s:%d: two ranges start at %v", name, s.Line, s.From)
		}
		res[n-1].To = s.From.Prev()
		res = append(res, s)
		if s.To.Less(prev.To) {
			rest := prev
			rest.From = s.To.Next()
			res = append(res, rest)
		}
	}
	for i := 1; i < len(res); i++ {
		if !res[i-1].To.Less(res[i].From) {
			log.Fatalf("%s: overlaps around line %d that the generator cannot resolve", name, res[i].Line)
		}
	}
	return res, fixed
}

// knownSource samples about 80 ranges of each family, spread evenly, and
// writes their first, middle and last addresses with their AS.
func knownSource(version string, src4, src6 []sourceRange) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by go run ./gen; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "package asn\n\n")
	fmt.Fprintf(&b, "// knownSourceVersion is the release of %s the embedded data was built from.\n", pkg)
	fmt.Fprintf(&b, "const knownSourceVersion = %q\n\n", version)
	fmt.Fprintf(&b, "// known lists addresses sampled from its files with their AS.\n")
	fmt.Fprintf(&b, "var known = []struct {\n\taddr string\n\tas   uint32\n\tname string\n}{\n")
	for _, src := range [][]sourceRange{src4, src6} {
		for i := 0; i < len(src); i += len(src)/80 + 1 {
			s := src[i]
			fmt.Fprintf(&b, "\t// line %d: %s,%s,%d,%q\n", s.Line, s.From, s.To, s.AS.Number, s.raw)
			for _, a := range []netip.Addr{s.From, mid(s.From, s.To), s.To} {
				fmt.Fprintf(&b, "\t{%q, %d, %q},\n", a, s.AS.Number, s.AS.Name)
			}
		}
	}
	fmt.Fprintf(&b, "}\n")
	out, err := format.Source(b.Bytes())
	if err != nil {
		log.Fatalf("generated code: %v", err)
	}
	return out
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
	for i := range 16 {
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

// write replaces path with b unless it already holds b.
func write(path string, b []byte) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		log.Fatal(err)
	}
}
