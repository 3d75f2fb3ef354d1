package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const golden = `# HELP a_total First line.\nSecond \\ line.
# TYPE a_total counter
a_total 2.5
# HELP dynfw_apply_seconds Time to apply a batch.
# TYPE dynfw_apply_seconds histogram
dynfw_apply_seconds_bucket{le="0.25"} 2
dynfw_apply_seconds_bucket{le="1"} 3
dynfw_apply_seconds_bucket{le="10"} 3
dynfw_apply_seconds_bucket{le="+Inf"} 4
dynfw_apply_seconds_sum 20.875
dynfw_apply_seconds_count 4
# HELP dynfw_blocked Addresses blocked.
# TYPE dynfw_blocked gauge
dynfw_blocked 1234
# HELP dynfw_messages_total Messages received, by type.
# TYPE dynfw_messages_total counter
dynfw_messages_total{type="delta"} 1
dynfw_messages_total{type="list"} 3
# HELP dynfw_seconds_since_message Seconds since the last message.
# TYPE dynfw_seconds_since_message gauge
dynfw_seconds_since_message 42.25
# HELP size_bytes Sizes.
# TYPE size_bytes histogram
size_bytes_bucket{kind="a",le="100"} 1
size_bytes_bucket{kind="a",le="1000"} 1
size_bytes_bucket{kind="a",le="+Inf"} 1
size_bytes_sum{kind="a"} 50
size_bytes_count{kind="a"} 1
size_bytes_bucket{kind="b",le="100"} 0
size_bytes_bucket{kind="b",le="1000"} 0
size_bytes_bucket{kind="b",le="+Inf"} 1
size_bytes_sum{kind="b"} 5000
size_bytes_count{kind="b"} 1
# TYPE weird gauge
weird{path="C:\\dir\n\"q\"",x="b"} -2.5
weird{path="a",x="b"} +Inf
weird{path="a",x="c"} 1e+300
`

func goldenRegistry() *Registry {
	r := NewRegistry()
	// Registered out of order: the output is sorted.
	gv := r.GaugeVec("weird", "", "path", "x")
	gv.With(`C:\dir`+"\n"+`"q"`, "b").Set(-2.5)
	gv.With("a", "c").Set(1e300)
	gv.With("a", "b").Set(math.Inf(1))
	msgs := r.CounterVec("dynfw_messages_total", "Messages received, by type.", "type")
	msgs.With("list").Add(3)
	msgs.With("delta").Inc()
	a := r.Counter("a_total", "First line.\nSecond \\ line.")
	a.Add(1.5)
	a.Inc()
	r.Gauge("dynfw_blocked", "Addresses blocked.").Set(1234)
	r.GaugeFunc("dynfw_seconds_since_message", "Seconds since the last message.", func() float64 { return 42.25 })
	h := r.Histogram("dynfw_apply_seconds", "Time to apply a batch.", []float64{0.25, 1, 10})
	for _, v := range []float64{0.125, 0.25, 0.5, 20} {
		h.Observe(v)
	}
	hv := r.HistogramVec("size_bytes", "Sizes.", []float64{100, 1000, math.Inf(1)}, "kind")
	hv.With("b").Observe(5000)
	hv.With("a").Observe(50)
	return r
}

func TestGolden(t *testing.T) {
	r := goldenRegistry()
	var b strings.Builder
	n, err := r.WriteTo(&b)
	if err != nil || n != int64(b.Len()) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	if b.String() != golden {
		t.Errorf("output:\n%s\nwant:\n%s", b.String(), golden)
	}
	e := mustParse(t, r)
	for key, want := range map[string]float64{
		`weird{path="C:\\dir\n\"q\"",x="b"}`: -2.5,
		`dynfw_messages_total{type="list"}`:  3,
		`size_bytes_count{kind="b"}`:         1,
		`dynfw_apply_seconds_bucket{le="1"}`: 3,
	} {
		if got, ok := e.samples[key]; !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", key, got, ok, want)
		}
	}
	if e.help["a_total"] != "First line.\nSecond \\ line." {
		t.Errorf("help %q", e.help["a_total"])
	}
}

func TestLabelEscaping(t *testing.T) {
	values := []string{
		"", `"`, `\`, "\n", `\n`, `\"`, "a\"b\\c\nd", "tab\there", "ünïcödé", "trailing\\",
		"bad utf-8 \xff\xfe",
	}
	r := NewRegistry()
	c := r.CounterVec("c", "h", "v")
	for i, v := range values {
		c.With(v).Add(float64(i + 1))
	}
	e := mustParse(t, r)
	if len(e.samples) != len(values) {
		t.Fatalf("%d series, want %d", len(e.samples), len(values))
	}
	for i, v := range values {
		want := strings.ToValidUTF8(v, "\uFFFD")
		key := fmt.Sprintf("c{v=%q}", want)
		if got := e.samples[key]; got != float64(i+1) {
			t.Errorf("value %q: series %s = %v, want %d", v, key, got, i+1)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	tests := []struct {
		name    string
		buckets []float64
		obs     []float64
		want    []uint64 // cumulative, +Inf last
		sum     float64
	}{
		{"on the bounds", []float64{1, 2, 3}, []float64{1, 2, 3}, []uint64{1, 2, 3, 3}, 6},
		{"between", []float64{1, 2, 3}, []float64{0.5, 1.5, 2.5, 3.5}, []uint64{1, 2, 3, 4}, 8},
		{"negative and huge", []float64{0}, []float64{-1, 0, 1e308, math.Inf(1)}, []uint64{2, 4}, math.Inf(1)},
		{"no buckets", []float64{}, []float64{1, 2}, []uint64{2}, 3},
		{"explicit +Inf dropped", []float64{1, math.Inf(1)}, []float64{1, 5}, []uint64{1, 2}, 6},
		{"exponential", ExponentialBuckets(1, 10, 3), []float64{1, 10, 100, 1000}, []uint64{1, 2, 3, 4}, 1111},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			h := r.Histogram("h", "", tt.buckets)
			for _, v := range tt.obs {
				h.Observe(v)
			}
			e := mustParse(t, r)
			bounds := []string{}
			for _, b := range tt.buckets {
				if !math.IsInf(b, 1) {
					bounds = append(bounds, string(appendFloat(nil, b)))
				}
			}
			bounds = append(bounds, "+Inf")
			for i, le := range bounds {
				if got := e.samples[`h_bucket{le="`+le+`"}`]; got != float64(tt.want[i]) {
					t.Errorf("le=%s: %v, want %d", le, got, tt.want[i])
				}
			}
			if h.Count() != uint64(len(tt.obs)) || e.samples["h_count"] != float64(len(tt.obs)) {
				t.Errorf("count %d / %v, want %d", h.Count(), e.samples["h_count"], len(tt.obs))
			}
			if h.Sum() != tt.sum || e.samples["h_sum"] != tt.sum {
				t.Errorf("sum %v / %v, want %v", h.Sum(), e.samples["h_sum"], tt.sum)
			}
		})
	}
	// Default buckets.
	r := NewRegistry()
	r.Histogram("d", "", nil).Observe(0.3)
	if e := mustParse(t, r); e.samples[`d_bucket{le="0.25"}`] != 0 || e.samples[`d_bucket{le="0.5"}`] != 1 || len(e.samples) != len(DefBuckets)+3 {
		t.Errorf("default buckets: %v", e.samples)
	}
}

func TestCounterAndGauge(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("c", "")
	c.Inc()
	c.Add(0.5)
	c.Add(2)
	c.Add(0.25)
	if c.Value() != 3.75 {
		t.Errorf("counter %v, want 3.75", c.Value())
	}
	g := r.Gauge("g", "")
	g.Set(10)
	g.Inc()
	g.Dec()
	g.Dec()
	g.Add(-0.5)
	if g.Value() != 8.5 {
		t.Errorf("gauge %v, want 8.5", g.Value())
	}
	var calls int
	r.CounterFunc("f_total", "", func() float64 { calls++; return 7 })
	e := mustParse(t, r)
	if e.types["f_total"] != "counter" || e.samples["f_total"] != 7 || calls != 1 {
		t.Errorf("CounterFunc: %v %v, %d calls", e.types, e.samples, calls)
	}
	// A vec hands out the same handle for the same values.
	v := r.CounterVec("v", "", "a", "b")
	xy := v.With("x", "y")
	if v.With("x", "y") != xy || v.With("xy", "") == xy {
		t.Error("With does not identify series by their values")
	}
}

func TestFormatFloat(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 1: "1", -7: "-7", 1e6: "1000000", 123456789012345: "123456789012345",
		1e15: "1e+15", 0.1: "0.1", 1.5e-7: "1.5e-07", math.Inf(1): "+Inf", math.Inf(-1): "-Inf", math.NaN(): "NaN",
	} {
		if got := string(appendFloat(nil, v)); got != want {
			t.Errorf("appendFloat(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestRegistrationPanics(t *testing.T) {
	tests := map[string]func(r *Registry){
		"empty name":        func(r *Registry) { r.Counter("", "") },
		"bad name":          func(r *Registry) { r.Counter("a-b", "") },
		"digit first":       func(r *Registry) { r.Gauge("1a", "") },
		"twice":             func(r *Registry) { r.Counter("a", ""); r.Gauge("a", "") },
		"func twice":        func(r *Registry) { r.Counter("a", ""); r.GaugeFunc("a", "", nil) },
		"histogram suffix":  func(r *Registry) { r.Histogram("h", "", nil); r.Counter("h_count", "") },
		"suffix first":      func(r *Registry) { r.Gauge("h_bucket", ""); r.Histogram("h", "", nil) },
		"bad label":         func(r *Registry) { r.CounterVec("a", "", "a-b") },
		"reserved label":    func(r *Registry) { r.CounterVec("a", "", "__name") },
		"label twice":       func(r *Registry) { r.CounterVec("a", "", "x", "x") },
		"le":                func(r *Registry) { r.HistogramVec("h", "", nil, "le") },
		"unsorted buckets":  func(r *Registry) { r.Histogram("h", "", []float64{2, 1}) },
		"equal buckets":     func(r *Registry) { r.Histogram("h", "", []float64{1, 1}) },
		"NaN bucket":        func(r *Registry) { r.Histogram("h", "", []float64{math.NaN()}) },
		"too few values":    func(r *Registry) { r.CounterVec("a", "", "x", "y").With("1") },
		"too many values":   func(r *Registry) { r.GaugeVec("a", "", "x").With("1", "2") },
		"negative add":      func(r *Registry) { r.Counter("a", "").Add(-1) },
		"bad exponential":   func(r *Registry) { ExponentialBuckets(0, 2, 3) },
		"bad exponential 2": func(r *Registry) { ExponentialBuckets(1, 1, 3) },
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("did not panic")
				}
			}()
			f(NewRegistry())
		})
	}
	// "le" is fine outside histograms.
	NewRegistry().CounterVec("a", "", "le")
}

// TestConcurrent updates every kind of metric from many goroutines while
// others scrape; run with -race. The totals must be exact and every scrape
// well formed.
func TestConcurrent(t *testing.T) {
	const workers, n = 8, 2000
	r := NewRegistry()
	r.RegisterRuntime()
	c := r.Counter("c_total", "")
	cv := r.CounterVec("cv_total", "", "w")
	g := r.Gauge("g", "")
	h := r.Histogram("h", "", []float64{1, 10, 100})
	hv := r.HistogramVec("hv", "", []float64{1}, "w")
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			mine := cv.With(fmt.Sprint(w % 3))
			for i := range n {
				c.Inc()
				c.Add(0.5)
				mine.Inc()
				g.Add(1)
				g.Add(-1)
				h.Observe(float64(i % 200))
				hv.With(fmt.Sprint(i % 5)).Observe(2)
			}
		})
	}
	done := make(chan struct{})
	var scrapes sync.WaitGroup
	for range 2 {
		scrapes.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := parseStrict(string(r.appendText(nil))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	scrapes.Wait()

	e := mustParse(t, r)
	total := float64(workers * n)
	checks := map[string]float64{
		"c_total":                 total * 1.5,
		`cv_total{w="0"}`:         3 * n,
		`cv_total{w="1"}`:         3 * n,
		`cv_total{w="2"}`:         2 * n,
		"g":                       0,
		"h_count":                 total,
		`h_bucket{le="1"}`:        2 * workers * n / 200,
		`h_bucket{le="100"}`:      101 * workers * n / 200,
		"h_sum":                   workers * n / 200 * (199 * 200 / 2),
		`hv_count{w="4"}`:         total / 5,
		`hv_bucket{w="0",le="1"}`: 0,
	}
	for key, want := range checks {
		if got, ok := e.samples[key]; !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", key, got, ok, want)
		}
	}
}

func TestServeHTTP(t *testing.T) {
	r := goldenRegistry()
	tests := []struct {
		method string
		code   int
		body   string
	}{
		{http.MethodGet, 200, golden},
		{http.MethodHead, 200, ""},
		{http.MethodPost, 405, "method not allowed\n"},
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+"/metrics", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.code || string(body) != tt.body {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, body, tt.code, tt.body)
			}
			if tt.code == 200 {
				if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				if cl := resp.Header.Get("Content-Length"); cl != fmt.Sprint(len(golden)) {
					t.Errorf("Content-Length %q, want %d", cl, len(golden))
				}
			}
		})
	}
}

func TestRuntime(t *testing.T) {
	r := NewRegistry()
	r.RegisterRuntime()
	e := mustParse(t, r)
	for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes"} {
		if e.types[name] != "gauge" || e.samples[name] <= 0 {
			t.Errorf("%s: type %q value %v", name, e.types[name], e.samples[name])
		}
	}
	if rss := e.samples["process_resident_memory_bytes"]; rss < 1<<20 || rss > 1<<34 {
		t.Errorf("resident memory %v bytes is implausible", rss)
	}
}

// TestGaugeFuncMayScrape: a GaugeFunc runs without the registry's lock.
func TestGaugeFuncMayScrape(t *testing.T) {
	r := NewRegistry()
	r.GaugeFunc("size", "", func() float64 {
		// Would deadlock if the scrape held the lock.
		r.mu.Lock()
		defer r.mu.Unlock()
		return float64(len(r.families))
	})
	r.Gauge("other", "")
	mustParse(t, r)
}

func BenchmarkCounterInc(b *testing.B) {
	c := NewRegistry().Counter("c", "")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

func BenchmarkCounterVecHandleInc(b *testing.B) {
	c := NewRegistry().CounterVec("c", "", "family").With("ipv4")
	b.ReportAllocs()
	for b.Loop() {
		c.Inc()
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := NewRegistry().Histogram("h", "", nil)
	b.ReportAllocs()
	v := 0.0
	for b.Loop() {
		h.Observe(v)
		v += 0.001
	}
}

// BenchmarkScrape writes a registry of about the size dynfw-client has.
func BenchmarkScrape(b *testing.B) {
	r := goldenRegistry()
	r.RegisterRuntime()
	cv := r.CounterVec("many_total", "", "kind", "family")
	for i := range 40 {
		cv.With(fmt.Sprint("k", i), "ipv4").Inc()
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = r.appendText(buf[:0])
	}
}
