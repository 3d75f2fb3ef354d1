package metrics

import (
	"fmt"
	"math"
	"slices"
	"sync/atomic"
)

// DefBuckets are the usual buckets for durations in seconds, from 5 ms to
// 10 s (those of client_golang, so dashboards carry over).
var DefBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// ExponentialBuckets returns n bucket bounds: start, start*factor,
// start*factor², ... It panics unless start > 0, factor > 1 and n >= 1.
func ExponentialBuckets(start, factor float64, n int) []float64 {
	if start <= 0 || factor <= 1 || n < 1 {
		panic(fmt.Sprintf("metrics: ExponentialBuckets(%v, %v, %d)", start, factor, n))
	}
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

// Histogram counts observations in buckets and keeps their sum. Its
// methods are safe for concurrent use and take no lock.
//
// Each bucket counts only its own observations, and the text output adds
// them up; _count is the sum of all buckets, so it always equals the +Inf
// bucket even while observations arrive. _sum is read separately and may
// lag or lead a concurrent observation.
type Histogram struct {
	upper  []float64       // bucket bounds, shared with the family
	counts []atomic.Uint64 // len(upper)+1: the last is above every bound
	sum    atomic.Uint64   // float64 bits
}

func newHistogram(upper []float64) *Histogram {
	return &Histogram{upper: upper, counts: make([]atomic.Uint64, len(upper)+1)}
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	// The first bound >= v: a bucket counts observations <= its bound.
	// NaN compares false everywhere and lands above every bound.
	lo, hi := 0, len(h.upper)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h.upper[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	h.counts[lo].Add(1)
	addFloat(&h.sum, v)
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Sum returns the sum of the observations.
func (h *Histogram) Sum() float64 { return math.Float64frombits(h.sum.Load()) }

// HistogramVec is a histogram family with labels.
type HistogramVec struct {
	name string
	vec  *vec[Histogram]
}

// With returns the histogram for one combination of label values; see
// CounterVec.With.
func (v *HistogramVec) With(values ...string) *Histogram { return v.vec.with(v.name, values) }

type histogramFamily struct {
	meta
	upper []float64
	les   []string // the le label of each bound, formatted once
	vec   *vec[Histogram]
}

// Histogram registers a histogram without labels. buckets are the upper
// bounds, strictly increasing (a final +Inf is implied and may be left
// out); nil means DefBuckets. It panics if name or buckets are invalid or
// the name, name_bucket, name_sum or name_count is taken.
func (r *Registry) Histogram(name, help string, buckets []float64) *Histogram {
	return r.HistogramVec(name, help, buckets).With()
}

// HistogramVec registers a histogram with labels ("le" is reserved). See
// Registry.Histogram.
func (r *Registry) HistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if buckets == nil {
		buckets = DefBuckets
	}
	upper := slices.Clone(buckets)
	if n := len(upper); n > 0 && math.IsInf(upper[n-1], 1) {
		upper = upper[:n-1]
	}
	for i, u := range upper {
		if math.IsNaN(u) || math.IsInf(u, 0) || i > 0 && u <= upper[i-1] {
			panic(fmt.Sprintf("metrics: buckets of %s not strictly increasing finite numbers: %v", name, buckets))
		}
	}
	les := make([]string, len(upper))
	for i, u := range upper {
		les[i] = string(appendFloat(nil, u))
	}
	f := &histogramFamily{
		meta:  newMeta(name, help, "histogram", labels, "le"),
		upper: upper,
		les:   les,
		vec:   newVec(len(labels), func() *Histogram { return newHistogram(upper) }),
	}
	r.register(f, name, name+"_bucket", name+"_sum", name+"_count")
	return &HistogramVec{name: name, vec: f.vec}
}

func (f *histogramFamily) appendText(b []byte) []byte {
	b = f.appendHeader(b)
	for _, s := range f.vec.sorted() {
		h := s.m
		var cum uint64
		for i := range h.counts {
			cum += h.counts[i].Load()
			le := "+Inf"
			if i < len(f.les) {
				le = f.les[i]
			}
			b = appendSample(b, f.name, "_bucket", f.labels, s.values, "le", le, float64(cum))
		}
		b = appendSample(b, f.name, "_sum", f.labels, s.values, "", "", h.Sum())
		b = appendSample(b, f.name, "_count", f.labels, s.values, "", "", float64(cum))
	}
	return b
}
