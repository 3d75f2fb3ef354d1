package stats

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
	"github.com/dynfw/sentinel/internal/testenv"
)

var testNow = time.Date(2026, 3, 4, 12, 7, 30, 0, time.UTC)

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := backend.Open(context.Background(), filepath.Join(t.TempDir(), "stats.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var (
	traps = [][2]string{{"minipot_telnet", "login"}, {"minipot_telnet", "connect"}, {"minipot_ftp", "login"},
		{"minipot_smtp", "invalid"}, {"minipot_http", "message"}, {"fwlogs", "small_port_scan"}, {"haas", "logged"}}
	countries = []string{"CN", "US", "RU", "CZ", "BR", "IN", "DE", "", "NL", "VN"}
	passwords = []string{"admin", "123456", "root", "", "\n", "<script>alert(1)</script>", "password", "1234", "vizxv", "xc3511"}
	tokens    = []string{"tok-a", "tok-b", "tok-c"}
)

// fill inserts n random rows of each table over the year before now.
func fill(t testing.TB, st store.Store, n int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	var b store.Batch
	span := int64(370 * 24 * time.Hour)
	when := func() time.Time {
		// Half the rows in the last week, so short periods have data.
		if r.IntN(2) == 0 {
			return testNow.Add(-time.Duration(r.Int64N(int64(7 * 24 * time.Hour))))
		}
		return testNow.Add(-time.Duration(r.Int64N(span)))
	}
	for i := range n {
		tr := traps[r.IntN(len(traps))]
		ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(r.IntN(40))})
		if i%7 == 0 {
			ip = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", r.IntN(10)))
		}
		tok := tokens[r.IntN(len(tokens))]
		b.Incidents = append(b.Incidents, store.Incident{Time: when(), Serial: "sn-" + tok, Token: tok, Trap: tr[0], Action: tr[1], IP: ip, Country: countries[r.IntN(len(countries))]})
		b.Passwords = append(b.Passwords, store.Password{Time: when(), Trap: "minipot_telnet", Username: passwords[r.IntN(4)], Password: passwords[r.IntN(len(passwords))],
			IP: ip, Country: b.Incidents[len(b.Incidents)-1].Country})
		b.Ports = append(b.Ports, store.Port{Time: when(), Port: []uint16{22, 23, 80, 443, 8080, 53}[r.IntN(6)], Protocol: []string{"TCP", "UDP", "other"}[r.IntN(3)], IP: ip})
	}
	if err := st.Insert(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

func params(name string) Request {
	req := Request{Name: name}
	switch Catalog[name].Param {
	case NeedsIP:
		req.IP = netip.MustParseAddr("192.0.2.7")
	case NeedsPassword:
		req.Password = "admin"
	case NeedsDevices:
		req.DeviceTokens = []string{"tok-a", "tok-c"}
	}
	return req
}

// TestRollupsEqualRaw is the store's promise seen from the view: every
// resource of every period gives the same answer from its rollup as from
// the raw rows.
func TestRollupsEqualRaw(t *testing.T) {
	st := openStore(t)
	fill(t, st, 4000, 1)
	ctx := context.Background()
	if _, err := st.Rollup(ctx, testNow); err != nil {
		t.Fatal(err)
	}
	hits := st.(interface{ WindowHits() int64 })
	before := hits.WindowHits()
	for _, p := range Periods {
		for _, name := range Names() {
			req := params(name)
			req.Period = p.Name
			rolled, err := Compute(ctx, st, req, testNow, 4*time.Minute)
			if err != nil {
				t.Fatalf("%s/%s: %v", name, p.Name, err)
			}
			raw, err := compute(ctx, st, req, testNow, 4*time.Minute, store.Raw)
			if err != nil {
				t.Fatalf("%s/%s raw: %v", name, p.Name, err)
			}
			if !reflect.DeepEqual(rolled.data(), raw.data()) {
				t.Errorf("%s/%s: rollup %v\nraw %v", name, p.Name, rolled.data(), raw.data())
			}
		}
	}
	// The top lists of the four long periods came from the store's
	// sliding windows: 13 resources each (attackers, countries by
	// attackers ×4 with the graph's top, passwords ×3, usernames ×2,
	// combinations), all equal to the raw answers above.
	if got := hits.WindowHits() - before; got < 4*10 {
		t.Errorf("%d queries answered from sliding windows, want at least 40", got)
	}
}

// TestWindowsMatchPeriods: the store's default sliding windows are the
// long periods' windows, so that their top lists read a few rows.
func TestWindowsMatchPeriods(t *testing.T) {
	want := map[store.Window]bool{}
	for _, p := range Periods {
		if p.Precision == store.Hour || p.Precision == store.Day {
			step := min(p.Bucket, 24*time.Hour)
			want[store.Window{Precision: p.Precision, Span: p.Span - step, Step: step}] = true
		}
	}
	got := map[store.Window]bool{}
	for _, w := range store.DefaultWindows {
		got[w] = true
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("store.DefaultWindows %v, the periods need %v", got, want)
	}
}

func TestShapes(t *testing.T) {
	st := openStore(t)
	fill(t, st, 3000, 2)
	ctx := context.Background()
	if _, err := st.Rollup(ctx, testNow); err != nil {
		t.Fatal(err)
	}
	nonEmpty := 0
	for _, p := range Periods {
		for _, name := range Names() {
			res := Catalog[name]
			req := params(name)
			req.Period = p.Name
			r, err := Compute(ctx, st, req, testNow, 4*time.Minute)
			if err != nil {
				t.Fatalf("%s/%s: %v", name, p.Name, err)
			}
			start, end := p.Window(testNow, 4*time.Minute)
			switch res.Shape {
			case Graph:
				g := r.data().([]GraphPoint)
				if len(g) != len(p.Buckets(start, end)) {
					t.Fatalf("%s/%s: %d points", name, p.Name, len(g))
				}
				if g[len(g)-1].Bucket != end.Format("2006-01-02 15:04") {
					t.Fatalf("%s/%s: last label %s, window end %v", name, p.Name, g[len(g)-1].Bucket, end)
				}
			case MultiGraph:
				m := r.data().(MultiGraphData)
				if len(m.Labels) > res.Limit || len(m.Labels) != len(m.YKeys) || len(m.Data) != len(p.Buckets(start, end)) {
					t.Fatalf("%s/%s: %d labels %d ykeys %d points", name, p.Name, len(m.Labels), len(m.YKeys), len(m.Data))
				}
				for _, item := range m.Data {
					for i := range m.Labels {
						if _, ok := item[fmt.Sprint(i)].(int64); !ok {
							t.Fatalf("%s/%s: item %v lacks series %d", name, p.Name, item, i)
						}
					}
				}
				if len(m.Labels) > 0 {
					nonEmpty++
				}
			case List:
				l := r.data().([]map[string]any)
				if len(l) > res.Limit {
					t.Fatalf("%s/%s: %d items", name, p.Name, len(l))
				}
				for i, item := range l {
					if len(item) != len(res.Fields)+1 {
						t.Fatalf("%s/%s: item %v", name, p.Name, item)
					}
					if i > 0 && item["count"].(int64) > l[i-1]["count"].(int64) {
						t.Fatalf("%s/%s: not sorted: %v", name, p.Name, l)
					}
					for _, f := range res.Fields {
						// An address's unknown country is shown; a
						// ranking of countries has none.
						if s, _ := item[f].(string); f == "country" && len(res.Fields) == 1 && s == "" || (f == "password" || f == "username") && (s == "" || s == "\n") || f == "ip" && s == "::" {
							t.Fatalf("%s/%s: empty %s in %v", name, p.Name, f, item)
						}
					}
				}
				if name == "top_ports_by_scans_list_long" && len(l) > 0 {
					if s := l[0]["port"].(string); s[:3] != "TCP" && s[:3] != "UDP" && s[:5] != "other" {
						t.Fatalf("port label %q", s)
					}
				}
			case Map:
				for c := range r.data().(map[string]int64) {
					if c == "" {
						t.Fatalf("%s/%s: unknown country in map", name, p.Name)
					}
				}
			}
		}
	}
	if nonEmpty == 0 {
		t.Fatal("every multi-line graph is empty: the fixture does not reach the windows")
	}
}

// TestGraphCounts checks a graph against rows placed by hand.
func TestGraphCounts(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	p, _ := LookupPeriod("1h")
	_, end := p.Window(testNow, 0)
	ip := netip.MustParseAddr("198.51.100.9")
	var b store.Batch
	for range 3 {
		b.Incidents = append(b.Incidents, store.Incident{Time: end.Add(-90 * time.Second), Serial: "s", Trap: "minipot_telnet", Action: "login", IP: ip, Country: "CZ"})
	}
	b.Incidents = append(b.Incidents, store.Incident{Time: end.Add(10 * time.Second), Serial: "s", Trap: "minipot_telnet", Action: "login", IP: ip, Country: "CZ"}) // after the window
	if err := st.Insert(ctx, &b); err != nil {
		t.Fatal(err)
	}
	r, err := Compute(ctx, st, Request{Name: "all_incidents_graph", Period: "1h"}, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := r.data().([]GraphPoint)
	if len(g) != 60 || g[58].Count != 3 || g[59].Count != 0 || g[57].Count != 0 {
		t.Fatalf("graph %v", g[55:])
	}
	if g[58].Bucket != end.Add(-time.Minute).Format("2006-01-02 15:04") {
		t.Fatalf("label %s", g[58].Bucket)
	}
	r, _ = Compute(ctx, st, Request{Name: "all_attackers_graph", Period: "1h"}, testNow, 0)
	if g := r.data().([]GraphPoint); g[58].Count != 1 {
		t.Fatalf("distinct attackers %v", g[58])
	}
}

func TestRequestErrors(t *testing.T) {
	e := New(openStore(t), Options{Now: func() time.Time { return testNow }})
	ctx := context.Background()
	for _, tc := range []struct {
		req  Request
		want error
	}{
		{Request{Name: "nope", Period: "1h"}, ErrUnknownResource},
		{Request{Name: "all_incidents_graph", Period: "2h"}, ErrBadPeriod},
		{Request{Name: "selected_attacker_incidents_graph", Period: "1h"}, ErrBadParam},
		{Request{Name: "selected_password_by_usages_graph", Period: "1h"}, ErrBadParam},
	} {
		if _, err := e.Resource(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.req, err, tc.want)
		}
	}
	r, err := e.Resource(ctx, Request{Name: "my_all_incidents_graph", Period: "1d"})
	if err != nil || !reflect.DeepEqual(r.data(), []any{}) {
		t.Fatalf("my_* without devices: %v %v", r.data(), err)
	}
}

// TestSingleFlight: many callers of one missing result share one query.
func TestSingleFlight(t *testing.T) {
	st := openStore(t)
	fill(t, st, 500, 3)
	e := New(st, Options{Now: func() time.Time { return testNow }})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := e.Resource(context.Background(), Request{Name: "selected_attacker_incidents_graph", Period: "1w", IP: netip.MustParseAddr("192.0.2.3")}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if s := e.Stats(); s.Computed != 1 {
		t.Fatalf("computed %d times", s.Computed)
	}
	// Cached now: another call computes nothing.
	if _, err := e.Resource(context.Background(), Request{Name: "selected_attacker_incidents_graph", Period: "1w", IP: netip.MustParseAddr("192.0.2.3")}); err != nil {
		t.Fatal(err)
	}
	if s := e.Stats(); s.Computed != 1 || s.Hits+s.Misses != 21 {
		t.Fatalf("stats %+v", s)
	}
}

// TestRefreshFollowsTheClock: the scheduler recomputes a period's
// resources when their lifetime ends, not before, and that is soon
// enough for an event to show on every period within a minute.
func TestRefreshFollowsTheClock(t *testing.T) {
	st := openStore(t)
	now := testNow
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e := New(st, Options{Now: clock})
	ctx := context.Background()
	n, err := e.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	precached := 0
	for _, name := range Names() {
		if Catalog[name].Precached {
			precached++
		}
	}
	if n != precached*len(Periods) {
		t.Fatalf("first pass computed %d, want %d", n, precached*len(Periods))
	}
	if n, _ := e.Refresh(ctx); n != 0 {
		t.Fatalf("second pass at the same time computed %d", n)
	}
	// Data arrives; 10 s later only the 1h period's results are due.
	var b store.Batch
	b.Incidents = append(b.Incidents, store.Incident{Time: now, Serial: "s", Trap: "haas", Action: "logged", IP: netip.MustParseAddr("203.0.113.5"), Country: "FR"})
	if err := st.Insert(ctx, &b); err != nil {
		t.Fatal(err)
	}
	advance(10 * time.Second)
	if n, _ := e.Refresh(ctx); n != precached {
		t.Fatalf("after 10 s computed %d, want %d (the 1h period)", n, precached)
	}
	// 30 s after the event every period has recomputed, with no rollup
	// run: the event counts everywhere.
	advance(20 * time.Second)
	if n, _ := e.Refresh(ctx); n != precached*len(Periods) {
		t.Fatalf("after 30 s computed %d, want %d (every period)", n, precached*len(Periods))
	}
	for _, p := range Periods {
		if p.TTL > 30*time.Second {
			t.Errorf("%s: results live %v: an event would wait that long", p.Name, p.TTL)
		}
		r, err := e.Resource(ctx, Request{Name: "all_countries_by_incidents_list", Period: p.Name})
		if err != nil || r.data().(map[string]int64)["FR"] != 1 {
			t.Errorf("%s: map %v %v, want FR 1", p.Name, r.data(), err)
		}
	}
}

// TestSharedCache: with Redis, a second instance reads what the first
// computed instead of querying.
func TestSharedCache(t *testing.T) {
	ctx := context.Background()
	addr := "redis://127.0.0.1:6379/15"
	rc, err := NewRedis(ctx, addr)
	if err != nil {
		testenv.Skip(t, "Redis on 127.0.0.1:6379 is unreachable: "+err.Error())
		return
	}
	defer rc.Close()
	if _, err := rc.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	fill(t, st, 300, 4)
	if _, err := st.Rollup(ctx, testNow); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return testNow }
	a := New(st, Options{Now: clock, Shared: rc})
	b := New(st, Options{Now: clock, Shared: rc})
	req := Request{Name: "top_passwords_by_usages_list", Period: "1w"}
	ra, err := a.Resource(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Resource(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.Stats().Computed != 1 || b.Stats().Computed != 0 {
		t.Fatalf("computed a=%d b=%d", a.Stats().Computed, b.Stats().Computed)
	}
	if !reflect.DeepEqual(ra.data(), rb.data()) || len(ra.data().([]map[string]any)) == 0 {
		t.Fatalf("shared data differs:\n%v\n%v", ra.data(), rb.data())
	}
	for _, name := range []string{"all_incidents_graph", "top_traps_by_incidents_graph", "all_countries_by_incidents_list"} {
		req := Request{Name: name, Period: "1w"}
		ra, _ := a.Resource(ctx, req)
		rb, err := b.Resource(ctx, req)
		if err != nil || !reflect.DeepEqual(ra.data(), rb.data()) {
			t.Fatalf("%s: shared copy differs (%v):\n%v\n%v", name, err, ra.data(), rb.data())
		}
	}
	if _, err := rc.Clear(ctx); err != nil {
		t.Fatal(err)
	}
}
