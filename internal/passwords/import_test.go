package passwords

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	secret := HashPassword("secret")
	for _, tc := range []struct {
		line  string
		count uint64
		err   string
	}{
		{"E5E9FA1BA31ECD1AE84F75CAAA474F3A663F05F4:12\n", 12, ""},
		{"e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4:12\r\n", 12, ""},
		{"e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4:18446744073709551615", 1<<64 - 1, ""},
		{"  E5E9FA1BA31ECD1AE84F75CAAA474F3A663F05F4:1  \r\n", 1, ""},
		{"\r\n", 0, "blank line"},
		{"E5E9FA1BA31ECD1AE84F75CAAA474F3A663F05F4\n", 0, "no ':'"},
		{"E5E9FA1BA31ECD1AE84F75CAAA474F3A663F05F:1\n", 0, "39 characters"},
		{"X5E9FA1BA31ECD1AE84F75CAAA474F3A663F05F4:1\n", 0, "not hexadecimal"},
		{"E5E9FA1BA31ECD1AE84F75CAAA474F3A663F05F4:\n", 0, "missing count"},
		{"E5E9FA1BA31ECD1AE84F75CAAA474F3A663F05F4:-1\n", 0, "not a decimal"},
		{"E5E9FA1BA31ECD1AE84F75CAAA474F3A663F05F4:1:2\n", 0, "not a decimal"},
		{"E5E9FA1BA31ECD1AE84F75CAAA474F3A663F05F4:0\n", 0, "count is zero"},
		{"E5E9FA1BA31ECD1AE84F75CAAA474F3A663F05F4:18446744073709551616", 0, "overflows"},
	} {
		h, n, err := ParseLine([]byte(tc.line))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseLine(%q) error %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil || h != secret || n != tc.count {
			t.Errorf("ParseLine(%q) = %s %d %v", tc.line, h, n, err)
		}
	}
}

func TestImport(t *testing.T) {
	a, b, c := HashPassword("a"), HashPassword("b"), HashPassword("c")
	upper := func(h Hash) string { return strings.ToUpper(h.String()) }
	input := "\xef\xbb\xbf" + upper(a) + ":10\r\n" + // BOM, CRLF
		h2s(b) + ":3\n" + // lowercase, LF
		"\r\n" + // blank
		"not a hash line\r\n" + // line 4: malformed
		upper(a) + ":5\r\n" + // duplicate: summed
		upper(c) + ":0\n" + // line 6: zero count
		strings.Repeat("F", 3<<20) + "\n" + // line 7: a 3 MiB line
		upper(c) + ":1" // no final newline
	var phases []string
	var last Progress
	out := filepath.Join(t.TempDir(), "hibp.idx")
	st, err := ImportWith(context.Background(), strings.NewReader(input), int64(len(input)), out, ImportOptions{
		MemoryLimit: 1 << 15,
		Progress: func(p Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
			last = p
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Lines != 8 || st.Blank != 1 || st.Imported != 4 || st.Malformed != 3 || st.Hashes != 3 || st.Bytes != int64(len(input)) {
		t.Fatalf("Stats = %+v", st)
	}
	wantEx := []Malformed{
		{4, "not a hash line", "no ':' between hash and count"},
		{6, upper(c) + ":0", "count is zero"},
		{7, strings.Repeat("F", 80), "line too long"},
	}
	if fmt.Sprint(st.Examples) != fmt.Sprint(wantEx) {
		t.Fatalf("Examples = %v\nwant %v", st.Examples, wantEx)
	}
	if strings.Join(phases, ",") != "reading,merging,done" || last.Bytes != int64(len(input)) || last.Lines != 8 || last.Malformed != 3 {
		t.Fatalf("progress phases %v, last %+v", phases, last)
	}
	ix, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	for h, want := range map[Hash]uint64{a: 15, b: 3, c: 1} {
		if e, ok, _ := ix.Lookup(h); !ok || e.HIBP != want || e.Count != 0 || e.Sources != 0 {
			t.Errorf("Lookup(%s) = %+v %v, want HIBP %d", h, e, ok, want)
		}
	}
}

func h2s(h Hash) string { return h.String() }

// TestImportLarge imports enough random lines for several sorted runs and
// checks every hash, and that Merge keeps an existing index's entries.
func TestImportLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	m := model{}
	var sb strings.Builder
	for i := 0; i < 30000; i++ {
		h := randHash(rng)
		n := uint64(rng.IntN(100) + 1)
		m.add(Entry{Hash: h, HIBP: n})
		fmt.Fprintf(&sb, "%s:%d\r\n", strings.ToUpper(h.String()), n)
	}
	out := filepath.Join(t.TempDir(), "big.idx")
	honeypot := Entry{Hash: HashPassword("secret"), Count: 4, Sources: SourceTelnet}
	if _, err := Build(context.Background(), out, []Entry{honeypot}, BuilderOptions{}); err != nil {
		t.Fatal(err)
	}
	m.add(honeypot)
	st, err := ImportWith(context.Background(), strings.NewReader(sb.String()), int64(sb.Len()), out, ImportOptions{Merge: true, MemoryLimit: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed != 0 || st.Hashes != uint64(len(m)) {
		t.Fatalf("Stats = %+v, want %d hashes", st, len(m))
	}
	ix, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	checkModel(t, ix, m)
}

func TestImportCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	line := HashPassword("a").String() + ":1\n"
	out := filepath.Join(t.TempDir(), "x.idx")
	if _, err := Import(ctx, strings.NewReader(strings.Repeat(line, 70000)), 0, out, nil); err == nil {
		t.Fatal("cancelled import succeeded")
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*")); len(m) != 0 {
		t.Fatalf("files left: %v", m)
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	pb := NewProgressBar(&buf)
	pb.Update(Progress{Phase: "reading", Bytes: 512 << 20, Total: 1 << 30, Lines: 1e6, LinesPerSec: 2.5e6, Elapsed: 10e9, Malformed: 2})
	pb.Update(Progress{Phase: "merging", Merged: 10, MergeTotal: 40})
	pb.Update(Progress{Phase: "done", Merged: 40, MergeTotal: 40})
	pb.Finish()
	want := "\rreading  [###############...............]  50.0%  512.0 MiB/1.0 GiB  2.50M lines/s  ETA 10s  (2 malformed)\n" +
		"\rmerging  [#######.......................]  25.0%  10/40 entries" +
		"\rdone     [##############################] 100.0%  40/40 entries\n"
	if buf.String() != want {
		t.Fatalf("bar output\n%q\nwant\n%q", buf.String(), want)
	}
	if s := FormatProgress(Progress{Phase: "reading", Bytes: 2048, LinesPerSec: 10}, 10); s != "reading   2.0 KiB  10 lines/s" {
		t.Fatalf("unknown total: %q", s)
	}
}
