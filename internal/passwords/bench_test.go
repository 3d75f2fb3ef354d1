package passwords

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// benchCorpus builds a corpus of PWBENCH_N random hashes (default
// 1,000,000, about one per bucket); scripts/bench-passwords.sh
// measures 100M.
func benchCorpus(b *testing.B) *Corpus {
	b.Helper()
	n := 1_000_000
	if s := os.Getenv("PWBENCH_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	path := filepath.Join(b.TempDir(), "bench.idx")
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	bl := NewBuilder(BuilderOptions{TempDir: b.TempDir()})
	for i := 0; i < n; i++ {
		var h Hash
		for j := 0; j < 20; j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < 20; k++ {
				h[j+k] = byte(v >> (8 * k))
			}
		}
		if err := bl.Add(Entry{Hash: h, Count: 1 + rng.Uint64N(10), Sources: Source(1 << rng.IntN(5))}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := bl.Finish(context.Background(), path); err != nil {
		b.Fatal(err)
	}
	c, err := OpenCorpus(path, CorpusOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkRangeLookup measures a range lookup of a random prefix: the
// zero-copy bucket of the mapped index with every entry decoded, the
// Corpus lookup (file + live layer, copied into a reused buffer), and the
// whole range handler without the network (lookup and rendering).
func BenchmarkRangeLookup(b *testing.B) {
	c := benchCorpus(b)
	ix := c.idx
	b.Run("Index.Range", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 1))
		var sink uint64
		for b.Loop() {
			bk, err := ix.Range(rng.Uint32N(NumBuckets))
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < bk.Len(); i++ {
				sink += bk.At(i).Count
			}
		}
		_ = sink
	})
	b.Run("Corpus.AppendRange", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 1))
		var buf []Entry
		for b.Loop() {
			var err error
			if buf, err = c.AppendRange(buf[:0], rng.Uint32N(NumBuckets)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RangeHandler", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 1))
		h := c.RangeHandler()
		w := &discardWriter{h: http.Header{}}
		req := httptest.NewRequest("GET", "/range/00000", nil)
		for b.Loop() {
			req.URL.Path = "/range/" + strconv.FormatUint(uint64(rng.Uint32N(NumBuckets))|1<<20, 16)[1:]
			h.ServeHTTP(w, req)
		}
	})
	b.Run("RangeHandlerPadded", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 1))
		h := c.RangeHandler()
		w := &discardWriter{h: http.Header{}}
		req := httptest.NewRequest("GET", "/range/00000", nil)
		req.Header.Set("Add-Padding", "true")
		for b.Loop() {
			req.URL.Path = "/range/" + strconv.FormatUint(uint64(rng.Uint32N(NumBuckets))|1<<20, 16)[1:]
			h.ServeHTTP(w, req)
		}
	})
}
