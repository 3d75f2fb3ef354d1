package passwords

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func randHash(rng *rand.Rand) Hash {
	var h Hash
	for i := range h {
		h[i] = byte(rng.Uint32())
	}
	return h
}

// model is the expected content of an index: merged entries by hash.
type model map[Hash]Entry

func (m model) add(e Entry) {
	o := m[e.Hash]
	o.Hash = e.Hash
	o.merge(e)
	m[e.Hash] = o
}

func (m model) bucket(prefix uint32) []Entry {
	var out []Entry
	for h, e := range m {
		if h.Prefix() == prefix {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmpHash(&a.Hash, &b.Hash) })
	return out
}

func bucketEntries(t testing.TB, ix *Index, prefix uint32) []Entry {
	t.Helper()
	b, err := ix.Range(prefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []Entry
	for i := 0; i < b.Len(); i++ {
		out = append(out, b.At(i))
	}
	return out
}

// randomEntries returns n entries over about n*3/4 distinct hashes, so
// that duplicates with different sources and counts must be merged.
func randomEntries(rng *rand.Rand, n int) ([]Entry, model) {
	m := model{}
	var hashes []Hash
	entries := make([]Entry, 0, n)
	for len(entries) < n {
		var h Hash
		if len(hashes) > 0 && rng.IntN(4) == 0 {
			h = hashes[rng.IntN(len(hashes))]
		} else {
			h = randHash(rng)
			hashes = append(hashes, h)
		}
		e := Entry{Hash: h, Count: uint64(rng.IntN(5)), Sources: Source(1 << rng.IntN(5))}
		if rng.IntN(3) == 0 {
			e.HIBP = uint64(rng.IntN(1000) + 1)
		}
		if e.Count == 0 {
			e.Sources = 0
			if e.HIBP == 0 {
				e.HIBP = 1
			}
		}
		entries = append(entries, e)
		m.add(e)
	}
	return entries, m
}

func checkModel(t *testing.T, ix *Index, m model) {
	t.Helper()
	if ix.Len() != uint64(len(m)) {
		t.Fatalf("Len = %d, want %d", ix.Len(), len(m))
	}
	byPrefix := map[uint32][]Entry{0: nil, NumBuckets - 1: nil}
	for h, e := range m {
		byPrefix[h.Prefix()] = append(byPrefix[h.Prefix()], e)
	}
	for p, want := range byPrefix {
		slices.SortFunc(want, func(a, b Entry) int { return cmpHash(&a.Hash, &b.Hash) })
		if got := bucketEntries(t, ix, p); !slices.Equal(got, want) {
			t.Fatalf("bucket %05x:\n got %v\nwant %v", p, got, want)
		}
	}
	for h, want := range m {
		got, ok, err := ix.Lookup(h)
		if err != nil || !ok || got != want {
			t.Fatalf("Lookup(%s) = %v %v %v, want %v", h, got, ok, err, want)
		}
		h[19] ^= 1
		if _, ok := m[h]; !ok {
			if _, ok, _ := ix.Lookup(h); ok {
				t.Fatalf("Lookup(%s) found an absent hash", h)
			}
		}
	}
	if err := ix.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestBuildLookupRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	entries, m := randomEntries(rng, 20000)
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		limit int
	}{{"in-memory", 0}, {"external-sort", 1 << 15}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".idx")
			tmp := t.TempDir()
			wm := time.Unix(1700000000, 123)
			b := NewBuilder(BuilderOptions{TempDir: tmp, MemoryLimit: tc.limit, Watermark: wm})
			for _, e := range entries {
				if err := b.Add(e); err != nil {
					t.Fatal(err)
				}
			}
			if tc.limit > 0 && len(b.runs) < 10 {
				t.Fatalf("only %d runs: the external sort is not exercised", len(b.runs))
			}
			n, err := b.Finish(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			if n != uint64(len(m)) {
				t.Fatalf("Finish = %d hashes, want %d", n, len(m))
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Fatalf("temporary files left: %v", left)
			}
			ix, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer ix.Close()
			if !ix.Mapped() {
				t.Error("index not memory-mapped")
			}
			if !ix.Watermark().Equal(wm) {
				t.Errorf("Watermark = %v, want %v", ix.Watermark(), wm)
			}
			checkModel(t, ix, m)
		})
	}
	a, _ := os.ReadFile(filepath.Join(dir, "in-memory.idx"))
	b, _ := os.ReadFile(filepath.Join(dir, "external-sort.idx"))
	if !bytes.Equal(a, b) {
		t.Error("in-memory and external-sort builds differ")
	}
}

// TestReadAtFallback serves the same lookups without a mapping.
func TestReadAtFallback(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	entries, m := randomEntries(rng, 3000)
	path := filepath.Join(t.TempDir(), "p.idx")
	if _, err := Build(context.Background(), path, entries, BuilderOptions{}); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ix.unmap()
	ix.table = make([]byte, tableSize)
	if _, err := ix.f.ReadAt(ix.table, headerSize); err != nil {
		t.Fatal(err)
	}
	if ix.Mapped() {
		t.Fatal("still mapped")
	}
	checkModel(t, ix, m)
}

func TestPrefixBoundaries(t *testing.T) {
	mk := func(s string) Hash {
		h, err := ParseHash(s)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	hs := []Hash{
		mk("0000000000000000000000000000000000000000"),
		mk("00000fffffffffffffffffffffffffffffffffff"),
		mk("0000100000000000000000000000000000000000"),
		mk("ffffefffffffffffffffffffffffffffffffffff"),
		mk("fffff00000000000000000000000000000000000"),
		mk("ffffffffffffffffffffffffffffffffffffffff"),
	}
	var entries []Entry
	for i, h := range hs {
		entries = append(entries, Entry{Hash: h, Count: uint64(i + 1), Sources: SourceHTTP})
	}
	path := filepath.Join(t.TempDir(), "b.idx")
	if _, err := Build(context.Background(), path, entries, BuilderOptions{}); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	for _, tc := range []struct {
		prefix uint32
		want   []Entry
	}{
		{0x00000, entries[0:2]},
		{0x00001, entries[2:3]},
		{0x00002, nil},
		{0xffffe, entries[3:4]},
		{0xfffff, entries[4:6]},
	} {
		if got := bucketEntries(t, ix, tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("bucket %05x = %v, want %v", tc.prefix, got, tc.want)
		}
	}
	if _, err := ix.Range(NumBuckets); err == nil {
		t.Error("Range(2^20) did not fail")
	}
	if err := ix.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestEmptyIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.idx")
	n, err := Build(context.Background(), path, nil, BuilderOptions{})
	if err != nil || n != 0 {
		t.Fatalf("Build = %d, %v", n, err)
	}
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.Len() != 0 || ix.Size() != dataOffset {
		t.Fatalf("Len %d Size %d", ix.Len(), ix.Size())
	}
	for _, p := range []uint32{0, 0xe5e9f, NumBuckets - 1} {
		if b, err := ix.Range(p); err != nil || b.Len() != 0 {
			t.Fatalf("Range(%05x) = %d, %v", p, b.Len(), err)
		}
	}
	if err := ix.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestZeroCountsDroppedAndSaturation(t *testing.T) {
	h1, h2 := HashPassword("a"), HashPassword("b")
	path := filepath.Join(t.TempDir(), "s.idx")
	_, err := Build(context.Background(), path, []Entry{
		{Hash: h1},
		{Hash: h2, Count: math.MaxUint32, Sources: SourceFTP},
		{Hash: h2, Count: 5, HIBP: math.MaxUint64, Sources: SourceSMTP},
	}, BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.Len() != 1 {
		t.Fatalf("Len = %d, want 1 (zero-count entry dropped)", ix.Len())
	}
	e, ok, _ := ix.Lookup(h2)
	want := Entry{Hash: h2, Count: math.MaxUint32, HIBP: math.MaxUint32, Sources: SourceFTP | SourceSMTP}
	if !ok || e != want {
		t.Fatalf("Lookup = %v, want %v", e, want)
	}
}

func TestWriterRejectsUnsorted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.idx")
	w, err := newWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.abort()
	if err := w.add(Entry{Hash: HashPassword("b"), Count: 1}); err != nil {
		t.Fatal(err)
	}
	a := HashPassword("a") // 86f7e437... < e9d71f5e...
	if err := w.add(Entry{Hash: a, Count: 1}); err == nil || !strings.Contains(err.Error(), "not sorted") {
		t.Fatalf("unsorted add: %v", err)
	}
}

func TestCorruptFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	entries, _ := randomEntries(rng, 500)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.idx")
	if _, err := Build(context.Background(), good, entries, BuilderOptions{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(off int) []byte {
		b := bytes.Clone(data)
		b[off] ^= 0x40
		return b
	}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"empty", "shorter than the 64-byte header", nil},
		{"short", "shorter than the 64-byte header", data[:10]},
		{"header only", "size 64 bytes", data[:headerSize]},
		{"truncated", "truncated", data[:len(data)-1]},
		{"extended", "size", append(bytes.Clone(data), 0)},
		{"magic", "bad magic", append([]byte("NOTANIDX"), data[8:]...)},
		{"header bit", "header checksum", flip(30)},
		{"table bit", "offset table checksum", flip(headerSize + 8*0x12345 + 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			ix, err := Open(path)
			if err == nil {
				ix.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q: want ErrCorrupt mentioning %q and the path", err, tc.want)
			}
		})
	}
	t.Run("record bit", func(t *testing.T) {
		path := filepath.Join(dir, "record")
		if err := os.WriteFile(path, flip(len(data)-5), 0o644); err != nil {
			t.Fatal(err)
		}
		ix, err := Open(path)
		if err != nil {
			t.Fatal(err) // records are checked by Verify only
		}
		defer ix.Close()
		if err := ix.Verify(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Verify = %v, want ErrCorrupt", err)
		}
	})
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestParseHashAndPrefix(t *testing.T) {
	h, err := ParseHash("E5E9FA1BA31ECD1AE84F75CAAA474F3A663F05F4")
	if err != nil || h != HashPassword("secret") || h.String() != "e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4" {
		t.Fatalf("ParseHash = %v, %v", h, err)
	}
	if h.Prefix() != 0xe5e9f {
		t.Fatalf("Prefix = %05x", h.Prefix())
	}
	for _, bad := range []string{"", "e5e9fa", "g5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4", "e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4 "} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) succeeded", bad)
		}
	}
	for s, want := range map[string]uint32{"00000": 0, "fffff": 0xfffff, "FFFFF": 0xfffff, "e5E9f": 0xe5e9f} {
		if p, ok := ParsePrefix(s); !ok || p != want {
			t.Errorf("ParsePrefix(%q) = %x %v", s, p, ok)
		}
	}
	for _, bad := range []string{"", "0000", "000000", "0000g", "+0000", "e5e9 "} {
		if _, ok := ParsePrefix(bad); ok {
			t.Errorf("ParsePrefix(%q) succeeded", bad)
		}
	}
}

func TestSources(t *testing.T) {
	if got := SourceAll.Names(); !slices.Equal(got, []string{"telnet", "smtp", "ftp", "http", "haas"}) {
		t.Fatalf("Names = %v", got)
	}
	if got := Source(0).Names(); got == nil || len(got) != 0 {
		t.Fatalf("empty Names = %#v", got)
	}
	if s, ok := ParseSource("minipot_FTP"); !ok || s != SourceFTP {
		t.Fatalf("ParseSource = %v %v", s, ok)
	}
	if _, ok := ParseSource("ssh"); ok {
		t.Fatal("ParseSource(ssh) succeeded")
	}
	if (SourceHaaS|SourceTelnet).String() != "telnet|haas" || Source(0).String() != "none" {
		t.Fatal("String")
	}
}
