package metrics

import (
	"maps"
	"slices"
)

// mapFuncFamily is a counter with one label whose values a function
// returns at scrape time.
type mapFuncFamily struct {
	meta
	fn func() map[string]uint64
}

func (f *mapFuncFamily) appendText(b []byte) []byte {
	b = f.appendHeader(b)
	m := f.fn()
	values := make([]string, 1)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		values[0] = k
		b = appendSample(b, f.name, "", f.labels, values, "", "", float64(m[k]))
	}
	return b
}

// CounterMapFunc registers a counter with one label whose series fn returns
// when the registry is scraped, as counts by label value: for counters a
// package keeps by reason in its own statistics. fn should return every
// label value it can ever return, zero or not, so that each series exists
// from the start, and no count may decrease. Label values must come from a
// fixed set, never from input. fn runs on the scraping goroutine without the
// registry's lock. It panics if name or label is invalid or name is taken.
func (r *Registry) CounterMapFunc(name, help, label string, fn func() map[string]uint64) {
	r.register(&mapFuncFamily{meta: newMeta(name, help, "counter", []string{label}), fn: fn}, name)
}
