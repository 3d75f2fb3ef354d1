package view

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
)

// freshEnv is a View over the real statistics engine on SQLite, with a
// clock the test moves.
type freshEnv struct {
	st     store.Store
	engine *stats.Engine
	srv    *httptest.Server
	mu     sync.Mutex
	now    time.Time
}

func (f *freshEnv) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

func (f *freshEnv) advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

func newFreshEnv(t *testing.T) *freshEnv {
	t.Helper()
	ctx := context.Background()
	st, err := backend.Open(ctx, filepath.Join(t.TempDir(), "stats.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Not on a bucket boundary of any period: 13:07:30 UTC.
	f := &freshEnv{st: st, now: time.Date(2026, 3, 4, 13, 7, 30, 0, time.UTC)}
	// History: a few events days ago, rolled up.
	var b store.Batch
	for i := range 6 {
		b.Incidents = append(b.Incidents, store.Incident{Time: f.now.Add(-time.Duration(20+i*7) * time.Hour), Serial: "s",
			Trap: "minipot_telnet", Action: "login", IP: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), Country: "CZ"})
	}
	if err := st.Insert(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Rollup(ctx, f.now); err != nil {
		t.Fatal(err)
	}
	f.engine = stats.New(st, stats.Options{Now: f.clock})
	v, err := New(Options{Source: f.engine, SessionKey: make([]byte, 32), Now: f.clock, RateLimit: RateLimit{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	v.Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// refresh is one pass of the engine's scheduler (Run does one every few
// seconds).
func (f *freshEnv) refresh(t *testing.T) {
	t.Helper()
	if _, err := f.engine.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// chartTotalJS sums the values in the tooltips of the overview's
// "Incidents" chart, and says whether its last point is drawn as in
// progress.
const chartTotalJS = `(() => {
	const svg = [...document.querySelectorAll("svg.chart")].find(s => s.getAttribute("aria-label") === "Incidents");
	if (!svg) return {Total: -1};
	let total = 0;
	for (const t of svg.querySelectorAll("rect.hit title")) {
		const m = /: ([0-9,]+)\s*$/.exec(t.textContent);
		if (m) total += parseInt(m[1].replace(/,/g, ""), 10);
	}
	const cap = svg.querySelector("text.inprogress");
	return {Total: total, Partial: !!svg.querySelector(".partial"), Caption: cap ? cap.textContent : ""};
})()`

// TestBrowserFreshOnEveryPeriod: an event shows on the overview of every
// period within a minute of arriving, with no rollup run in between (a
// bucket boundary of the day, the week or the month may be hours away),
// and the newest point of the chart is drawn as in progress.
func TestBrowserFreshOnEveryPeriod(t *testing.T) {
	tb := startChromium(t)
	f := newFreshEnv(t)
	tb.setup(1280, "light", "UTC")
	f.refresh(t)
	type chart struct {
		Total   int
		Partial bool
		Caption string
	}
	before := map[string]chart{}
	for _, p := range stats.Periods {
		tb.open(f.srv.URL + "/?period=" + p.Name)
		var c chart
		tb.eval(chartTotalJS, &c)
		before[p.Name] = c
	}
	// The event arrives; 30 s pass on the clock; the scheduler runs.
	ev := store.Batch{Incidents: []store.Incident{{Time: f.clock().Add(time.Second), Serial: "s", Trap: "minipot_telnet", Action: "login",
		IP: netip.MustParseAddr("2001:db8::77"), Country: "NZ"}}}
	if err := f.st.Insert(context.Background(), &ev); err != nil {
		t.Fatal(err)
	}
	f.advance(30 * time.Second)
	f.refresh(t)
	for _, p := range stats.Periods {
		// Another URL: the browser may keep the page of a moment ago (its
		// max-age), which a person's next visit would not see.
		tb.open(f.srv.URL + "/?period=" + p.Name + "&after=1")
		var c chart
		tb.eval(chartTotalJS, &c)
		if c.Total != before[p.Name].Total+1 {
			t.Errorf("%s: the incidents chart counts %d, %d before the event: the event does not show", p.Name, c.Total, before[p.Name].Total)
		}
		if !c.Partial || !strings.Contains(c.Caption, "in progress") {
			t.Errorf("%s: the newest point is not drawn as in progress (%+v)", p.Name, c)
		}
		tb.screenshot("fresh-" + p.Name)
	}
	if errs := tb.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}

// TestChartInProgress: the buckets not over at Now are drawn dashed and
// captioned; without Now (or with every bucket over) nothing is.
func TestChartInProgress(t *testing.T) {
	buckets := []string{"2026-03-04 12:00", "2026-03-04 13:00", "2026-03-04 14:00"}
	ss := []series{{Label: "Incidents", Values: []int64{3, 5, 1}}}
	now := time.Date(2026, 3, 4, 13, 20, 0, 0, time.UTC)
	svg := string(lineChart("t", buckets, ss, chartOpts{Bucket: time.Hour, Now: now}))
	wellFormed(t, svg)
	for _, want := range []string{`class="line s0 partial"`, `stroke-dasharray`, `dashed: last point in progress`, `(in progress, up to 13:20 UTC)`} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %s:\n%s", want, svg)
		}
	}
	if n := strings.Count(svg, "in progress, up to"); n != 1 {
		t.Errorf("%d tooltips in progress, want 1", n)
	}
	for _, o := range []chartOpts{{Bucket: time.Hour}, {Bucket: time.Hour, Now: now.Add(time.Hour)}} {
		if svg := string(lineChart("t", buckets, ss, o)); strings.Contains(svg, "partial") || strings.Contains(svg, "in progress") {
			t.Errorf("Now %v: drawn in progress", o.Now)
		}
	}
	if got := inProgressCaption(2); got != "dashed: last "+strconv.Itoa(2)+" points in progress" {
		t.Error(got)
	}
}
