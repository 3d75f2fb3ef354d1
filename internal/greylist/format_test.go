package greylist

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/testenv"
)

const (
	turrisLicense  = "https://view.sentinel.turris.cz/greylist-data/LICENSE.txt"
	exampleLicense = "https://example.org/greylist-data/LICENSE.txt"
)

var march10 = time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC)

func pfx(s string) netip.Prefix {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen())
}

func entry(addr string, tags ...string) Entry { return Entry{Addr: pfx(addr), Tags: tags} }

// mixedEntries exercise every rule of the writers: unsorted input, unsorted
// and duplicate tags, duplicate networks to merge, IPv4-mapped IPv6, host
// bits in a prefix, no tags, an invalid prefix and an invalid tag.
func mixedEntries() []Entry {
	return []Entry{
		entry("5.6.7.8", "telnet", "smtp", "ftp", "http", "port_scan", "http"),
		entry("2001:db8::/32", "port_scan"),
		entry("1.2.3.4", "telnet"),
		entry("2001:db8::1", "http"),
		entry("10.0.0.0/8"),
		entry("::ffff:9.9.9.9", "haas"),
		entry("1.2.3.4", "ftp", "telnet"),
		entry("192.168.1.77/24", "dns"),
		{Addr: pfx("100.64.0.1"), Tags: []string{}},
		entry("2001:db8::1", "telnet"),
		{Addr: netip.Prefix{}, Tags: []string{"telnet"}},
		entry("3.3.3.3", "bad,tag", "ok", ""),
	}
}

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTurrisSampleByteForByte(t *testing.T) {
	// The example of sentinel-formats.md section 7.2, copied byte for byte
	// into testdata.
	entries := []Entry{
		entry("5.6.7.8", "telnet", "smtp", "port_scan", "http", "ftp"),
		entry("1.2.3.4", "telnet"),
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, turrisLicense, entries); err != nil {
		t.Fatal(err)
	}
	if want := golden(t, "turris-sample.csv"); !bytes.Equal(b.Bytes(), want) {
		t.Errorf("got\n%q\nwant\n%q", b.Bytes(), want)
	}
}

func TestFormatsGolden(t *testing.T) {
	entries := mixedEntries()
	orig := slices.Clone(entries)
	for _, tc := range []struct {
		file  string
		write func(*bytes.Buffer, []Entry) error
	}{
		{"mixed.csv", func(b *bytes.Buffer, e []Entry) error { return WriteCSV(b, exampleLicense, e) }},
		{"mixed.json", func(b *bytes.Buffer, e []Entry) error {
			return WriteJSON(b, march10.Add(999*time.Millisecond), exampleLicense, e)
		}},
		{"mixed.txt", func(b *bytes.Buffer, e []Entry) error { return WriteText(b, e) }},
		{"empty.json", func(b *bytes.Buffer, _ []Entry) error { return WriteJSON(b, march10, exampleLicense, nil) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b, entries); err != nil {
				t.Fatal(err)
			}
			if want := golden(t, tc.file); !bytes.Equal(b.Bytes(), want) {
				t.Errorf("got\n%s\nwant\n%s", b.Bytes(), want)
			}
		})
	}
	for i := range entries {
		if entries[i].Addr != orig[i].Addr || !slices.Equal(entries[i].Tags, orig[i].Tags) {
			t.Fatalf("writers modified their input at %d: %v", i, entries[i])
		}
	}
}

func TestEmptyCSVAndText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, exampleLicense, nil); err != nil {
		t.Fatal(err)
	}
	if want := "# For the terms of use see " + exampleLicense + "\nAddress,Tags\n"; b.String() != want {
		t.Errorf("empty CSV %q, want %q", b.String(), want)
	}
	b.Reset()
	if err := WriteText(&b, nil); err != nil || b.Len() != 0 {
		t.Errorf("empty text %q, %v", b.String(), err)
	}
}

func TestJSONDecodes(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, march10, `a "quoted" <url>`, mixedEntries()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Generated time.Time `json:"generated"`
		License   string    `json:"license"`
		Count     int       `json:"count"`
		Entries   []struct {
			Address string   `json:"address"`
			Tags    []string `json:"tags"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.Bytes())
	}
	if !doc.Generated.Equal(march10) || doc.License != `a "quoted" <url>` || doc.Count != 9 || len(doc.Entries) != 9 {
		t.Errorf("decoded %+v", doc)
	}
	for _, e := range doc.Entries {
		if e.Tags == nil {
			t.Errorf("%s: tags null, want []", e.Address)
		}
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []Entry
		want []Entry
	}{
		{"empty", nil, nil},
		{"order of classes",
			[]Entry{entry("::/0"), entry("0.0.0.0/0"), entry("::1"), entry("255.255.255.255"), entry("0.0.0.0")},
			[]Entry{entry("0.0.0.0"), entry("255.255.255.255"), entry("::1"), entry("0.0.0.0/0"), entry("::/0")}},
		{"numeric, not textual, order",
			[]Entry{entry("10.0.0.1"), entry("9.0.0.1"), entry("100.0.0.1")},
			[]Entry{entry("9.0.0.1"), entry("10.0.0.1"), entry("100.0.0.1")}},
		{"prefix length breaks ties",
			[]Entry{entry("10.0.0.0/16"), entry("10.0.0.0/8")},
			[]Entry{entry("10.0.0.0/8"), entry("10.0.0.0/16")}},
		{"mapped prefix",
			[]Entry{entry("::ffff:10.1.0.0/112", "x")},
			[]Entry{entry("10.1.0.0/16", "x")}},
		{"mapped prefix shorter than 96 stays IPv6",
			[]Entry{entry("::ffff:0:0/95", "x")},
			[]Entry{entry("::fffe:0:0/95", "x")}},
		{"merge duplicates",
			[]Entry{entry("1.1.1.1", "b"), entry("1.1.1.1", "a", "b"), entry("1.1.1.1")},
			[]Entry{entry("1.1.1.1", "a", "b")}},
		{"invalid tags",
			[]Entry{entry("1.1.1.1", "", "a b", `q"`, "x\n", "ok", strings.Repeat("t", 65), strings.Repeat("t", 64))},
			[]Entry{entry("1.1.1.1", "ok", strings.Repeat("t", 64))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Normalize(tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Addr != tc.want[i].Addr || !slices.Equal(got[i].Tags, tc.want[i].Tags) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
			if !canonical(got) {
				t.Errorf("result %v is not canonical", got)
			}
		})
	}
}

func TestNormalizeCanonicalIsNoCopy(t *testing.T) {
	in := Normalize(mixedEntries())
	if out := Normalize(in); &out[0] != &in[0] {
		t.Error("Normalize copied an already canonical list")
	}
}

func TestNormalizeDoesNotAppendToCallerTags(t *testing.T) {
	backing := make([]string, 1, 10)
	backing[0] = "b"
	tail := backing[:2]
	tail[1] = "sentinel"
	in := []Entry{{Addr: pfx("1.1.1.1"), Tags: backing[:1]}, entry("1.1.1.1", "a")}
	Normalize(in)
	if tail[1] != "sentinel" {
		t.Errorf("merging wrote into the caller's spare capacity: %q", tail[1])
	}
}

// pythonReadBack is run by TestPythonReadsCSV: it reads the CSV with the csv
// module as intelmq and n6 do, writes the rows back with csv.writer (the
// library DynFW:Snapshoter is written with), and loads the JSON file.
const pythonReadBack = `
import csv, json, sys
with open(sys.argv[1], newline="") as f:
    comment = f.readline()
    rows = list(csv.reader(f))
with open(sys.argv[2], "w", newline="") as f:
    f.write(comment)
    csv.writer(f, lineterminator="\n").writerows(rows)
with open(sys.argv[3]) as f:
    doc = json.load(f)
json.dump({"rows": rows, "entries": doc["entries"], "count": doc["count"]}, sys.stdout)
`

func TestPythonReadsCSV(t *testing.T) {
	py := testenv.Python(t)
	dir := t.TempDir()
	entries := mixedEntries()
	var csvb, jsonb bytes.Buffer
	if err := WriteCSV(&csvb, exampleLicense, entries); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&jsonb, march10, exampleLicense, entries); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"in.csv": csvb.Bytes(), "in.json": jsonb.Bytes(), "read.py": []byte(pythonReadBack)}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(py, filepath.Join(dir, "read.py"), filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.csv"), filepath.Join(dir, "in.json"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.Bytes())
	}
	var got struct {
		Rows    [][]string `json:"rows"`
		Entries []struct {
			Address string   `json:"address"`
			Tags    []string `json:"tags"`
		} `json:"entries"`
		Count int `json:"count"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	norm := Normalize(entries)
	want := [][]string{{"Address", "Tags"}}
	for _, e := range norm {
		want = append(want, []string{appendString(e.Addr), strings.Join(e.Tags, ",")})
	}
	if !slices.EqualFunc(got.Rows, want, slices.Equal) {
		t.Errorf("python csv rows\n%q\nwant\n%q", got.Rows, want)
	}
	if got.Count != len(norm) || len(got.Entries) != len(norm) {
		t.Fatalf("python json: count %d, %d entries, want %d", got.Count, len(got.Entries), len(norm))
	}
	for i, e := range norm {
		if got.Entries[i].Address != appendString(e.Addr) || !slices.Equal(got.Entries[i].Tags, e.Tags) {
			t.Errorf("python json entry %d: %+v, want %v", i, got.Entries[i], e)
		}
	}
	rewritten, err := os.ReadFile(filepath.Join(dir, "out.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rewritten, csvb.Bytes()) {
		t.Errorf("Python's csv.writer writes\n%s\nwe write\n%s", rewritten, csvb.Bytes())
	}
}

func appendString(p netip.Prefix) string { return string(appendAddr(nil, p)) }

func TestValidTag(t *testing.T) {
	for tag, want := range map[string]bool{
		"telnet": true, "port_scan": true, "haas_not_logged": true, "ipv6-scan": true, "v1.2": true, "HTTP": true,
		"": false, "a,b": false, `a"`: false, "a b": false, "a\r": false, "é": false, strings.Repeat("x", 65): false,
	} {
		if got := ValidTag(tag); got != want {
			t.Errorf("ValidTag(%q) = %v, want %v", tag, got, want)
		}
	}
}

// TestNormalizeRandom checks the fast key sort against comparePrefix (via
// canonical) and the merge against a map, on random mixed lists with many
// duplicates.
func TestNormalizeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	tagPool := []string{"ftp", "haas", "http", "port_scan", "smtp", "telnet"}
	for round := range 50 {
		var in []Entry
		want := map[netip.Prefix]map[string]bool{}
		for range 1 + r.IntN(2000) {
			var a netip.Addr
			if r.IntN(3) == 0 {
				var b [16]byte
				b[0], b[1], b[15] = 0x20, 0x01, byte(r.IntN(8))
				b[7] = byte(r.IntN(4))
				a = netip.AddrFrom16(b)
			} else {
				a = netip.AddrFrom4([4]byte{byte(r.IntN(3) * 100), 0, byte(r.IntN(4)), byte(r.IntN(8))})
			}
			bits := a.BitLen()
			if r.IntN(4) == 0 {
				bits = r.IntN(a.BitLen() + 1)
			}
			p := netip.PrefixFrom(a, bits)
			var tags []string
			for range r.IntN(3) {
				tags = append(tags, tagPool[r.IntN(len(tagPool))])
			}
			in = append(in, Entry{Addr: p, Tags: tags})
			m := p.Masked()
			if want[m] == nil {
				want[m] = map[string]bool{}
			}
			for _, tg := range tags {
				want[m][tg] = true
			}
		}
		got := Normalize(in)
		if !canonical(got) {
			t.Fatalf("round %d: not in canonical order", round)
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: %d entries, want %d", round, len(got), len(want))
		}
		for _, e := range got {
			if len(e.Tags) != len(want[e.Addr]) {
				t.Fatalf("round %d: %v tags %v, want %v", round, e.Addr, e.Tags, want[e.Addr])
			}
			for _, tg := range e.Tags {
				if !want[e.Addr][tg] {
					t.Fatalf("round %d: %v has tag %s", round, e.Addr, tg)
				}
			}
		}
	}
}
