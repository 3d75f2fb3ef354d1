package greylist

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
)

// countingWriter measures the output without keeping it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkWriteCSV1M writes a million canonical entries, what a snapshot
// does after normalising.
func BenchmarkWriteCSV1M(b *testing.B) {
	entries := ipv4Entries(1_000_000)
	var cw countingWriter
	WriteCSV(&cw, DefaultLicenseURL, entries)
	b.SetBytes(cw.n)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteCSV(io.Discard, DefaultLicenseURL, entries); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteCSV1MShuffled includes normalising a shuffled list (sort
// and copy) in every run.
func BenchmarkWriteCSV1MShuffled(b *testing.B) {
	entries := ipv4Entries(1_000_000)
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteCSV(io.Discard, DefaultLicenseURL, entries); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteJSON1M(b *testing.B) {
	entries := ipv4Entries(1_000_000)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteJSON(io.Discard, march10, DefaultLicenseURL, entries); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshot1M is the whole daily job for a million entries: render
// three formats, hash them, write six files with fsync.
func BenchmarkSnapshot1M(b *testing.B) {
	entries := ipv4Entries(1_000_000)
	s, _ := newStore(b, b.TempDir(), Options{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Snapshot(march10.AddDate(0, 0, i), entries); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func benchServe(b *testing.B, n int, conditional bool) {
	s, _ := newStore(b, b.TempDir(), Options{Clock: newFakeClock(march10)})
	if err := s.Snapshot(march10, ipv4Entries(n)); err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, "/greylist-data/greylist-latest.csv", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	want := http.StatusOK
	if conditional {
		req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
		want = http.StatusNotModified
	}
	if !conditional {
		b.SetBytes(int64(rec.Body.Len()))
	}
	w := &discardResponse{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, req)
		if w.code != want {
			b.Fatalf("status %d", w.code)
		}
	}
}

// discardResponse is a ResponseWriter that keeps nothing, so that the
// benchmark measures the handler and not a recorder's buffer.
type discardResponse struct {
	h    http.Header
	code int
}

func (w *discardResponse) Header() http.Header { return w.h }
func (w *discardResponse) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
}
func (w *discardResponse) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}

// BenchmarkServeLatest304 is the common case of a client polling with the
// ETag it already has.
func BenchmarkServeLatest304(b *testing.B) { benchServe(b, 10_000, true) }

// BenchmarkServeLatest200 sends the whole file (10k entries, the size of the
// Turris list).
func BenchmarkServeLatest200(b *testing.B) { benchServe(b, 10_000, false) }
