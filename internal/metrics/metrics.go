// Package metrics is a small Prometheus registry: counters, gauges and
// histograms, with or without labels, and gauges computed when scraped,
// exposed in the Prometheus text format 0.0.4. It exists so that
// dynfw-client, which runs on routers, can export metrics without linking
// the much larger client_golang.
//
// Data enters through handles: a program registers each metric once, at
// start, on a Registry, and keeps the returned *Counter, *Gauge or
// *Histogram (or, for labelled metrics, the handle that With returns for
// one combination of label values). Updating a handle is one or two atomic
// operations and takes no lock. Data leaves through Registry.WriteTo or
// Registry.ServeHTTP, which read every value at the time of the scrape.
//
// Registration validates names and panics on a programmer's error: an
// invalid metric or label name, a name registered twice, bad buckets. Those
// are bugs that the first run of any test finds, so an error return that
// every caller would have to check is not worth it. Updates never panic
// except Counter.Add with a negative value, for the same reason.
//
// The output lists families sorted by name and, within a family, series
// sorted by their label values; a histogram's series have their buckets in
// increasing order, then _sum and _count.
package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds metric families and writes them in the text format. The
// zero Registry is not usable; create one with NewRegistry. All methods are
// safe for concurrent use.
type Registry struct {
	mu       sync.Mutex
	families []family        // sorted by name
	claimed  map[string]bool // sample names in use, to refuse collisions
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{claimed: map[string]bool{}}
}

// family is one metric family: its HELP, TYPE and samples.
type family interface {
	familyName() string
	// appendText appends the family in the text format.
	appendText(b []byte) []byte
}

// validName reports whether s is a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)
// or, without colon, a label name ([a-zA-Z_][a-zA-Z0-9_]*). It is written
// out rather than a regexp: the router client links this package, and the
// regexp engine would add a quarter of a megabyte to it.
func validName(s string, colon bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || colon && c == ':' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// register adds f, claiming the sample names it will write.
func (r *Registry) register(f family, samples ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range samples {
		if r.claimed[s] {
			panic(fmt.Sprintf("metrics: %s registered twice (or collides with a histogram's series)", s))
		}
	}
	for _, s := range samples {
		r.claimed[s] = true
	}
	i, _ := slices.BinarySearchFunc(r.families, f.familyName(), func(f family, name string) int {
		return strings.Compare(f.familyName(), name)
	})
	r.families = slices.Insert(r.families, i, f)
}

// meta is what every family has.
type meta struct {
	name, help, typ string
	labels          []string
}

func newMeta(name, help, typ string, labels []string, reserved ...string) meta {
	if !validName(name, true) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	for i, l := range labels {
		if !validName(l, false) || strings.HasPrefix(l, "__") || slices.Contains(reserved, l) {
			panic(fmt.Sprintf("metrics: invalid label name %q for %s", l, name))
		}
		if slices.Contains(labels[:i], l) {
			panic(fmt.Sprintf("metrics: label %q twice in %s", l, name))
		}
	}
	return meta{name: name, help: strings.ToValidUTF8(help, "\uFFFD"), typ: typ, labels: slices.Clone(labels)}
}

func (m *meta) familyName() string { return m.name }

// appendHeader appends the HELP (if there is help) and TYPE lines.
func (m *meta) appendHeader(b []byte) []byte {
	if m.help != "" {
		b = append(b, "# HELP "...)
		b = append(b, m.name...)
		b = append(b, ' ')
		b = appendEscaped(b, m.help, false)
		b = append(b, '\n')
	}
	b = append(b, "# TYPE "...)
	b = append(b, m.name...)
	b = append(b, ' ')
	b = append(b, m.typ...)
	return append(b, '\n')
}

// appendEscaped escapes backslash and newline (HELP text), and double
// quotes too in label values.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendLabels appends {name="value",...} and an optional extra label (le),
// or nothing if there are no labels at all.
func appendLabels(b []byte, names, values []string, extraName, extraValue string) []byte {
	if len(names) == 0 && extraName == "" {
		return b
	}
	b = append(b, '{')
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, n...)
		b = append(b, `="`...)
		b = appendEscaped(b, values[i], true)
		b = append(b, '"')
	}
	if extraName != "" {
		if len(names) > 0 {
			b = append(b, ',')
		}
		b = append(b, extraName...)
		b = append(b, `="`...)
		b = append(b, extraValue...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendFloat formats a sample value: integers exactly and without an
// exponent (counters are mostly integers and read better so), other
// values in Go's shortest form, which Prometheus parses.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendSample appends one sample line.
func appendSample(b []byte, name, suffix string, names, values []string, extraName, extraValue string, v float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	b = appendLabels(b, names, values, extraName, extraValue)
	b = append(b, ' ')
	b = appendFloat(b, v)
	return append(b, '\n')
}

// addFloat adds v to the float64 whose bits are in a.
func addFloat(a *atomic.Uint64, v float64) {
	for {
		old := a.Load()
		if a.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// vec holds the series of one family by their label values. Unlabelled
// families have one series with no values.
type vec[T any] struct {
	mu     sync.RWMutex
	series map[string]*series[T]
	n      int // number of labels
	newT   func() *T
}

type series[T any] struct {
	values []string
	m      *T
}

func newVec[T any](labels int, newT func() *T) *vec[T] {
	return &vec[T]{series: map[string]*series[T]{}, n: labels, newT: newT}
}

// with returns the series for values, creating it on first use. Invalid
// UTF-8 is replaced, since the text format requires UTF-8.
func (v *vec[T]) with(name string, values []string) *T {
	if len(values) != v.n {
		panic(fmt.Sprintf("metrics: %s has %d labels, got %d values", name, v.n, len(values)))
	}
	// Length-prefixed, so that no two different value lists share a key.
	var kb []byte
	for _, s := range values {
		kb = strconv.AppendInt(kb, int64(len(s)), 10)
		kb = append(kb, ':')
		kb = append(kb, s...)
	}
	key := string(kb)
	v.mu.RLock()
	s := v.series[key]
	v.mu.RUnlock()
	if s != nil {
		return s.m
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s := v.series[key]; s != nil {
		return s.m
	}
	vals := make([]string, len(values))
	for i, s := range values {
		vals[i] = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = &series[T]{values: vals, m: v.newT()}
	v.series[key] = s
	return s.m
}

// sorted returns the series ordered by their label values.
func (v *vec[T]) sorted() []*series[T] {
	v.mu.RLock()
	out := make([]*series[T], 0, len(v.series))
	for _, s := range v.series {
		out = append(out, s)
	}
	v.mu.RUnlock()
	slices.SortFunc(out, func(a, b *series[T]) int { return slices.Compare(a.values, b.values) })
	return out
}

// Counter is a value that only goes up. Its methods are safe for concurrent
// use and take no lock.
type Counter struct {
	// Integer increments, the common case, are one atomic add; others
	// need a compare-and-swap loop on the float bits.
	ints  atomic.Uint64
	float atomic.Uint64
}

// Inc adds one.
func (c *Counter) Inc() { c.ints.Add(1) }

// Add adds v, which must not be negative (Add panics: a counter that goes
// down is a bug, and Prometheus would read it as a reset).
func (c *Counter) Add(v float64) {
	switch {
	case v < 0:
		panic(fmt.Sprintf("metrics: counter decreased by %v", v))
	case v < 1<<63 && v == math.Trunc(v):
		c.ints.Add(uint64(v))
	default:
		addFloat(&c.float, v)
	}
}

// Value returns the current value.
func (c *Counter) Value() float64 {
	return float64(c.ints.Load()) + math.Float64frombits(c.float.Load())
}

// Gauge is a value that goes up and down. Its methods are safe for
// concurrent use and take no lock.
type Gauge struct{ bits atomic.Uint64 }

// Set sets the value.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Add adds v, which may be negative.
func (g *Gauge) Add(v float64) { addFloat(&g.bits, v) }

// Inc adds one.
func (g *Gauge) Inc() { g.Add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.Add(-1) }

// Value returns the current value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

// scalarFamily is a counter or gauge family.
type scalarFamily[T any] struct {
	meta
	vec   *vec[T]
	value func(*T) float64
}

func (f *scalarFamily[T]) appendText(b []byte) []byte {
	b = f.appendHeader(b)
	for _, s := range f.vec.sorted() {
		b = appendSample(b, f.name, "", f.labels, s.values, "", "", f.value(s.m))
	}
	return b
}

// CounterVec is a counter family with labels.
type CounterVec struct {
	name string
	vec  *vec[Counter]
}

// With returns the counter for one combination of label values, in the
// order of the label names given at registration, creating it on first
// use. Call it once and keep the result: With takes a lock and allocates.
// It panics if the number of values is wrong.
func (v *CounterVec) With(values ...string) *Counter { return v.vec.with(v.name, values) }

// GaugeVec is a gauge family with labels.
type GaugeVec struct {
	name string
	vec  *vec[Gauge]
}

// With returns the gauge for one combination of label values; see
// CounterVec.With.
func (v *GaugeVec) With(values ...string) *Gauge { return v.vec.with(v.name, values) }

// Counter registers a counter without labels. It panics if name is invalid
// or taken.
func (r *Registry) Counter(name, help string) *Counter {
	return r.CounterVec(name, help).With()
}

// CounterVec registers a counter with labels. It panics if a name is
// invalid or taken.
func (r *Registry) CounterVec(name, help string, labels ...string) *CounterVec {
	f := &scalarFamily[Counter]{
		meta:  newMeta(name, help, "counter", labels),
		vec:   newVec(len(labels), func() *Counter { return new(Counter) }),
		value: (*Counter).Value,
	}
	r.register(f, name)
	return &CounterVec{name: name, vec: f.vec}
}

// Gauge registers a gauge without labels. It panics if name is invalid or
// taken.
func (r *Registry) Gauge(name, help string) *Gauge {
	return r.GaugeVec(name, help).With()
}

// GaugeVec registers a gauge with labels. It panics if a name is invalid
// or taken.
func (r *Registry) GaugeVec(name, help string, labels ...string) *GaugeVec {
	f := &scalarFamily[Gauge]{
		meta:  newMeta(name, help, "gauge", labels),
		vec:   newVec(len(labels), func() *Gauge { return new(Gauge) }),
		value: (*Gauge).Value,
	}
	r.register(f, name)
	return &GaugeVec{name: name, vec: f.vec}
}

// funcFamily is a counter or gauge whose value a function computes at
// scrape time.
type funcFamily struct {
	meta
	fn func() float64
}

func (f *funcFamily) appendText(b []byte) []byte {
	b = f.appendHeader(b)
	return appendSample(b, f.name, "", nil, nil, "", "", f.fn())
}

// GaugeFunc registers a gauge whose value fn returns when the registry is
// scraped, for values that exist elsewhere or are cheaper to compute on
// demand ("seconds since the last message"). fn runs on the scraping
// goroutine, without the registry's lock, and must be safe for that. It
// panics if name is invalid or taken.
func (r *Registry) GaugeFunc(name, help string, fn func() float64) {
	r.register(&funcFamily{meta: newMeta(name, help, "gauge", nil), fn: fn}, name)
}

// CounterFunc registers a counter whose value fn returns when the registry
// is scraped; fn must never return less than before. See GaugeFunc.
func (r *Registry) CounterFunc(name, help string, fn func() float64) {
	r.register(&funcFamily{meta: newMeta(name, help, "counter", nil), fn: fn}, name)
}

// WriteTo writes every family in the text format 0.0.4. It implements
// io.WriterTo.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r.appendText(nil))
	return int64(n), err
}

// appendText appends every family. Families are copied out under the lock
// and written without it, so that a GaugeFunc may itself use the registry.
func (r *Registry) appendText(b []byte) []byte {
	r.mu.Lock()
	families := slices.Clone(r.families)
	r.mu.Unlock()
	for _, f := range families {
		b = f.appendText(b)
	}
	return b
}

// ContentType is the media type of the text format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// ServeHTTP answers GET and HEAD with the metrics in the text format, so a
// Registry can be mounted at /metrics.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body := r.appendText(nil)
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}
