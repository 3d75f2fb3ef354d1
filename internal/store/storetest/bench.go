package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

// Synthetic data with the skew of the real feed: a Zipf distribution over
// ~1M attacker addresses (a few scanners make most of the noise), ~60
// countries, ~1000 devices, and the real trap/action vocabulary.

// benchTraps are the trap/action pairs with rough weights.
var benchTraps = []struct {
	trap, action string
	weight       int
}{
	{"minipot_telnet", "connect", 20}, {"minipot_telnet", "login", 25}, {"minipot_telnet", "invalid", 2},
	{"minipot_ftp", "connect", 4}, {"minipot_ftp", "login", 5}, {"minipot_ftp", "invalid", 1},
	{"minipot_smtp", "connect", 3}, {"minipot_smtp", "login", 3}, {"minipot_smtp", "invalid", 1},
	{"minipot_http", "connect", 4}, {"minipot_http", "login", 3}, {"minipot_http", "message", 4}, {"minipot_http", "invalid", 1},
	{"fwlogs", "small_port_scan", 12}, {"fwlogs", "big_port_scan", 6},
	{"haas", "logged", 6},
}

// Generator produces the synthetic feed.
type Generator struct {
	r                  *rand.Rand
	ipZ, devZ          *rand.Zipf
	userZ, passZ, port *rand.Zipf
	traps              []int // index into benchTraps, repeated by weight
	ports              []uint16
}

// NewGenerator returns a deterministic generator.
func NewGenerator(seed uint64) *Generator {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	g := &Generator{r: r,
		ipZ:   rand.NewZipf(r, 1.1, 2, 1_000_000-1),
		devZ:  rand.NewZipf(r, 1.05, 10, 999),
		userZ: rand.NewZipf(r, 1.2, 1, 4999),
		passZ: rand.NewZipf(r, 1.1, 1, 199_999),
		port:  rand.NewZipf(r, 1.2, 1, 999),
	}
	for i, t := range benchTraps {
		for range t.weight {
			g.traps = append(g.traps, i)
		}
	}
	common := []uint16{23, 22, 80, 443, 8080, 2323, 21, 25, 3389, 445, 5555, 8443, 7547, 3306, 1433, 5900, 6379, 53, 123, 161}
	g.ports = append(g.ports, common...)
	for p := 1024; len(g.ports) < 1000; p += 37 {
		g.ports = append(g.ports, uint16(p))
	}
	return g
}

func (g *Generator) ip(i uint64) netip.Addr {
	if i%20 == 7 { // 5% IPv6
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
	}
	return netip.AddrFrom4([4]byte{byte(11 + i%200), byte(i >> 16), byte(i >> 8), byte(i)})
}

// country is a function of the address, as GeoIP would be: 2% unknown,
// the rest skewed towards the first codes (AA, AB, ...) of 60.
func (g *Generator) country(i uint64) string {
	h := i * 0x9e3779b97f4a7c15
	if h>>58 == 0 {
		return ""
	}
	u := float64(h>>40&0xffff) / 65536
	idx := int(60 * u * u * u)
	return string([]byte{'A' + byte(idx/26), 'A' + byte(idx%26)})
}

// Batch returns n incidents (and 30% passwords, 50% ports) with times in
// [from, to), sorted by time as a live feed would deliver them.
func (g *Generator) Batch(from, to time.Time, n int) *store.Batch {
	b := &store.Batch{}
	span := int64(to.Sub(from) / time.Second)
	times := make([]int64, n)
	for i := range times {
		times[i] = from.Unix() + g.r.Int64N(span)
	}
	slices.Sort(times)
	for _, ts := range times {
		t := time.Unix(ts, 0).UTC()
		ipi := g.ipZ.Uint64()
		dev := g.devZ.Uint64()
		tr := benchTraps[g.traps[g.r.IntN(len(g.traps))]]
		b.Incidents = append(b.Incidents, store.Incident{Time: t, Serial: fmt.Sprintf("%016x", 0x4000000+dev), Token: fmt.Sprintf("%064x", dev*7919),
			Trap: tr.trap, Action: tr.action, IP: g.ip(ipi), Country: g.country(ipi)})
		if g.r.IntN(10) < 3 {
			b.Passwords = append(b.Passwords, store.Password{Time: t, Trap: tr.trap, Username: "user" + strconv.FormatUint(g.userZ.Uint64(), 10),
				Password: "pw" + strconv.FormatUint(g.passZ.Uint64(), 36), IP: g.ip(ipi), Country: g.country(ipi)})
		}
		if g.r.IntN(2) == 0 {
			proto := "TCP"
			if x := g.r.IntN(20); x == 0 {
				proto = "other"
			} else if x < 4 {
				proto = "UDP"
			}
			b.Ports = append(b.Ports, store.Port{Time: t, Port: g.ports[g.port.Uint64()], Protocol: proto, IP: g.ip(ipi)})
		}
	}
	return b
}

// BenchInsert is the body of BenchmarkInsert: batches of 1000 incidents
// (with their passwords and ports), reported as events per second.
func BenchInsert(b *testing.B, s store.Store) {
	g := NewGenerator(1)
	ctx := context.Background()
	from := T0
	batches := make([]*store.Batch, 16)
	for i := range batches {
		batches[i] = g.Batch(from, from.Add(time.Minute), 1000)
		from = from.Add(time.Minute)
	}
	b.ResetTimer()
	events := 0
	for i := 0; b.Loop(); i++ {
		bt := batches[i%len(batches)]
		if err := s.Insert(ctx, bt); err != nil {
			b.Fatal(err)
		}
		events += bt.Len()
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// Period mirrors stats.Periods (internal/stats/periods.go), which this
// package cannot import without a cycle in tests of stats.
type Period struct {
	Name      string
	Span      time.Duration
	Bucket    time.Duration
	Precision store.Precision
}

// Periods are the windows the view shows.
var Periods = []Period{
	{"1h", time.Hour, time.Minute, store.Raw},
	{"6h", 6 * time.Hour, 15 * time.Minute, store.Quarter},
	{"1d", 24 * time.Hour, 30 * time.Minute, store.Quarter},
	{"1w", 7 * 24 * time.Hour, 3 * time.Hour, store.Hour},
	{"1m", 30 * 24 * time.Hour, 24 * time.Hour, store.Day},
	{"3m", 90 * 24 * time.Hour, 48 * time.Hour, store.Day},
	{"1y", 364 * 24 * time.Hour, 14 * 24 * time.Hour, store.Day},
}

// Window is stats.Period.Window: it ends with the bucket in progress
// (of a day for wider buckets).
func (p Period) Window(now time.Time) (start, end time.Time) {
	align := min(p.Bucket, 24*time.Hour)
	end = now.UTC().Truncate(align).Add(align)
	return end.Add(-p.Span), end
}

// viewQueries are the queries the resources of the view (internal/stats
// resources.go) run for one period.
func viewQueries(p Period, now time.Time, ip netip.Addr, tokens []string, pw string) []struct {
	name string
	q    store.Query
} {
	start, end := p.Window(now)
	base := store.Query{Precision: p.Precision, From: start, To: end}
	inc, pws, pts := base, base, base
	inc.Table, pws.Table, pts.Table = store.Incidents, store.Passwords, store.Ports
	var out []struct {
		name string
		q    store.Query
	}
	add := func(name string, q store.Query) {
		out = append(out, struct {
			name string
			q    store.Query
		}{name, q})
	}
	D := func(d ...store.Dim) []store.Dim { return d }
	q := inc
	q.Bucket = p.Bucket
	add("incidents_graph", q)
	q.Measure = store.DistinctIPs
	add("attackers_graph", q)
	q = inc
	q.GroupBy, q.Limit = D(store.DimCountry), 30
	add("top_countries_count", q)
	q.Measure = store.DistinctIPs
	add("top_countries_distinct", q)
	q = inc
	q.GroupBy, q.Limit = D(store.DimIP), 30
	add("top_attackers", q)
	q = inc
	q.GroupBy, q.Limit = D(store.DimTrap, store.DimAction), 15
	add("top_trap_action", q)
	q = inc
	q.GroupBy, q.Bucket, q.Only = D(store.DimCountry), p.Bucket, [][]string{{"AA"}, {"AB"}, {"AC"}, {"AD"}, {"AE"}, {"AF"}, {"AG"}}
	add("countries_multigraph", q)
	q = inc
	q.Bucket, q.IP = p.Bucket, ip
	add("selected_attacker_graph", q)
	q = inc
	q.Bucket, q.DeviceTokens = p.Bucket, tokens
	add("my_incidents_graph", q)
	q = pts
	q.Bucket = p.Bucket
	add("ports_graph", q)
	q = pts
	q.GroupBy, q.Limit = D(store.DimProtocol, store.DimPort), 30
	add("top_ports", q)
	q = pws
	q.GroupBy, q.Limit, q.NonEmpty = D(store.DimPassword), 30, true
	add("top_passwords", q)
	q.GroupBy = D(store.DimUsername)
	add("top_usernames", q)
	q.GroupBy = D(store.DimUsername, store.DimPassword)
	add("top_combinations", q)
	q = pws
	q.Bucket, q.Password = p.Bucket, &pw
	add("selected_password_graph", q)
	q = pws
	q.GroupBy, q.Limit, q.Password = D(store.DimUsername), 30, &pw
	add("logins_of_password", q)
	return out
}

// BenchView fills s with events incidents over the year before now (plus
// passwords and ports), rolls up, and measures every query of every
// period. It logs the figures through t. Enabled by SENTINEL_BENCH_STORE=1
// (SENTINEL_BENCH_EVENTS sets the size, default 1M; SENTINEL_BENCH_RUNS the
// timed runs per query, default 15) because it is long.
func BenchView(t *testing.T, s store.Store) {
	if os.Getenv("SENTINEL_BENCH_STORE") == "" {
		t.Skip("set SENTINEL_BENCH_STORE=1 to run the store benchmark")
	}
	events := 1_000_000
	if v := os.Getenv("SENTINEL_BENCH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		events = n
	}
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 12, 7, 0, 0, time.UTC)
	from := now.Add(-365 * 24 * time.Hour)
	g := NewGenerator(42)
	const perBatch = 5000
	nb := (events + perBatch - 1) / perBatch
	step := now.Sub(from) / time.Duration(nb)
	start := time.Now()
	total := 0
	for i := range nb {
		b := g.Batch(from.Add(time.Duration(i)*step), from.Add(time.Duration(i+1)*step), min(perBatch, events-i*perBatch))
		if err := s.Insert(ctx, b); err != nil {
			t.Fatal(err)
		}
		total += b.Len()
		if i%200 == 199 {
			t.Logf("inserted %d rows in %v", total, time.Since(start).Round(time.Second))
		}
	}
	took := time.Since(start)
	t.Logf("insert: %d rows (%d incidents) in %v: %.0f rows/s", total, events, took.Round(time.Millisecond), float64(total)/took.Seconds())
	rep, err := s.Rollup(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollup: %d buckets, %d rows in %v", rep.Buckets, rep.Rows, rep.Took.Round(time.Millisecond))
	rep, err = s.Rollup(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollup again (nothing to do): %d buckets in %v", rep.Buckets, rep.Took.Round(time.Millisecond))
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status: %s, %d devices, %.1f MB, raw %v", st.Backend, st.Devices, float64(st.Bytes)/1e6, st.Tables)
	for _, r := range st.Rollups {
		t.Logf("  %-9v %-3v watermark %v rows %d", r.Table, r.Precision, r.Watermark.Format(time.DateTime), r.Rows)
	}
	for _, w := range st.Windows {
		t.Logf("  window %-9v %-3v %v: [%v, %v) current %v", w.Table, w.Precision, w.Span, w.From.Format(time.DateTime), w.To.Format(time.DateTime), w.Current)
	}
	hits, _ := s.(interface{ WindowHits() int64 })
	// Parameters of the selected_* and my_* resources: the top attacker,
	// three devices and a common password.
	top, err := s.Query(ctx, store.Query{Table: store.Incidents, Precision: store.Day, From: now.Truncate(24 * time.Hour).Add(-30 * 24 * time.Hour), To: now.Truncate(24 * time.Hour), GroupBy: []store.Dim{store.DimIP}, Limit: 1})
	if err != nil || len(top) == 0 {
		t.Fatal(top, err)
	}
	ip := netip.MustParseAddr(top[0].Keys[0])
	tokens := []string{fmt.Sprintf("%064x", 10*7919), fmt.Sprintf("%064x", 11*7919), fmt.Sprintf("%064x", 500*7919)}
	runs := 15
	if v := os.Getenv("SENTINEL_BENCH_RUNS"); v != "" {
		if runs, _ = strconv.Atoi(v); runs < 1 {
			runs = 1
		}
	}
	var all []time.Duration
	for _, p := range Periods {
		for _, vq := range viewQueries(p, now, ip, tokens, "pw1") {
			var d []time.Duration
			var n int
			var h0 int64
			if hits != nil {
				h0 = hits.WindowHits()
			}
			for i := range runs + 1 {
				t0 := time.Now()
				rows, err := s.Query(ctx, vq.q)
				if err != nil {
					t.Fatalf("%s %s: %v", p.Name, vq.name, err)
				}
				if i > 0 { // the first run warms the cache
					d = append(d, time.Since(t0))
				}
				n = len(rows)
			}
			slices.Sort(d)
			all = append(all, d...)
			from := ""
			if hits != nil && hits.WindowHits() > h0 {
				from = "  (sliding window)"
			}
			t.Logf("%-3s %-24s rows %5d  p50 %8.2f ms  p95 %8.2f ms%s", p.Name, vq.name, n, ms(d[len(d)/2]), ms(d[len(d)*95/100]), from)
		}
	}
	slices.Sort(all)
	t.Logf("all queries: p50 %.2f ms, p95 %.2f ms, max %.2f ms", ms(all[len(all)/2]), ms(all[len(all)*95/100]), ms(all[len(all)-1]))
	// The next day: its events, then the rollup that also moves every
	// window by a day (what a running server pays once a day).
	perDay := events / 365
	for i := 0; i < perDay; i += perBatch {
		day := 24 * time.Hour
		b := g.Batch(now.Add(day*time.Duration(i)/time.Duration(perDay)), now.Add(day*time.Duration(min(i+perBatch, perDay))/time.Duration(perDay)), min(perBatch, perDay-i))
		if err := s.Insert(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	rep, err = s.Rollup(ctx, now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the next day's rollup (%d incidents, every window moved by a day): %d buckets in %v", perDay, rep.Buckets, rep.Took.Round(time.Millisecond))
	if err := s.Retain(ctx, now); err != nil {
		t.Fatal(err)
	}
	if st, err = s.Status(ctx); err == nil {
		t.Logf("after Retain(default retention): %.1f MB (size on disk may not shrink before VACUUM), raw %v", float64(st.Bytes)/1e6, st.Tables)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
