package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

// T0 is the start of the test data: a Monday, midnight UTC, so that it is
// aligned to every precision.
var T0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// Run runs the conformance suite; open returns a fresh, empty store that
// the suite closes.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	get := func(t *testing.T) store.Store {
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("DimsAndMeasures", func(t *testing.T) { testDims(t, get(t)) })
	t.Run("Filters", func(t *testing.T) { testFilters(t, get(t)) })
	t.Run("BadQueries", func(t *testing.T) { testBad(t, get(t)) })
	t.Run("Devices", func(t *testing.T) { testDevices(t, get(t)) })
	t.Run("RollupIdempotent", func(t *testing.T) { testIdempotent(t, get(t)) })
	t.Run("CatchUp", func(t *testing.T) { testCatchUp(t, get(t)) })
	t.Run("LateRows", func(t *testing.T) { testLate(t, get(t)) })
	t.Run("Rebuild", func(t *testing.T) { testRebuild(t, get(t)) })
	t.Run("Retain", func(t *testing.T) { testRetain(t, get(t)) })
	t.Run("Status", func(t *testing.T) { testStatus(t, get(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, get(t)) })
	t.Run("RollupEqualsRaw", func(t *testing.T) { testProperty(t, get(t)) })
	t.Run("Windows", func(t *testing.T) { testWindows(t, get(t)) })
	t.Run("StorableText", func(t *testing.T) { testStorableText(t, get(t)) })
	t.Run("Refused", func(t *testing.T) { testRefused(t, get(t)) })
	t.Run("FreshOnEveryPeriod", func(t *testing.T) { testFresh(t, get(t)) })
}

var (
	countries = []string{"CZ", "SK", "US", "", "CN", "DE"}
	traps     = [][2]string{{"minipot_telnet", "login"}, {"minipot_telnet", "connect"}, {"minipot_ftp", "login"}, {"minipot_http", "message"}, {"minipot_smtp", "invalid"}, {"fwlogs", "small_port_scan"}, {"fwlogs", "big_port_scan"}, {"haas", "logged"}}
	usernames = []string{"root", "admin", "", "\n", "user", "Root"}
	passwords = []string{"1234", "admin", "", "\n", "x'); DROP TABLE passwords; --", "päss", "%", "?1"}
	ports     = []uint16{22, 23, 80, 443, 8080, 2323}
	protocols = []string{"TCP", "UDP", "other", "tcp", "ICMP"}
)

// Device of index i: two devices share a serial, as a router re-registered
// under a new token would.
func device(i int) (serial, token string) {
	return fmt.Sprintf("sn%02d", i%5), fmt.Sprintf("tok%02d", i)
}

// ip of index i: a mix of IPv4 and IPv6 (and one IPv4-mapped IPv6, which
// must count as its IPv4 address).
func ip(i int) netip.Addr {
	switch i % 4 {
	case 0:
		return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
	case 1:
		return netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i))
	case 2:
		return netip.MustParseAddr(fmt.Sprintf("::ffff:198.51.100.%d", i))
	}
	return netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
}

// Gen returns a random batch of n incidents (and about n/2 passwords and
// ports) with times in [from, to), over small vocabularies so that groups
// and ties are common.
func Gen(r *rand.Rand, from, to time.Time, n int) *store.Batch {
	b := &store.Batch{}
	span := to.Sub(from)
	at := func() time.Time { return from.Add(time.Duration(r.Int64N(int64(span/time.Second))) * time.Second) }
	for range n {
		ta := traps[r.IntN(len(traps))]
		sn, tok := device(r.IntN(7))
		b.Incidents = append(b.Incidents, store.Incident{Time: at(), Serial: sn, Token: tok, Trap: ta[0], Action: ta[1],
			IP: ip(r.IntN(40)), Country: countries[r.IntN(len(countries))]})
	}
	for range n / 2 {
		// One in eight rows without an address, as stored before
		// password and port rows carried one.
		a, c := ip(r.IntN(40)), countries[r.IntN(len(countries))]
		if r.IntN(8) == 0 {
			a, c = netip.Addr{}, ""
		}
		b.Passwords = append(b.Passwords, store.Password{Time: at(), Trap: traps[r.IntN(4)][0],
			Username: usernames[r.IntN(len(usernames))], Password: passwords[r.IntN(len(passwords))], IP: a, Country: c})
		b.Ports = append(b.Ports, store.Port{Time: at(), Port: ports[r.IntN(len(ports))], Protocol: protocols[r.IntN(len(protocols))], IP: ip(r.IntN(40))})
	}
	return b
}

func insert(t *testing.T, s store.Store, m *Model, b *store.Batch) {
	t.Helper()
	if err := s.Insert(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	m.Add(b)
}

func rollup(t *testing.T, s store.Store, now time.Time) store.RollupReport {
	t.Helper()
	rep, err := s.Rollup(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func rowsString(rs []store.Row) string {
	s := ""
	for i, r := range rs {
		if i == 12 {
			return s + fmt.Sprintf(" ... (%d rows)", len(rs))
		}
		if !r.Bucket.IsZero() {
			s += r.Bucket.Format("01-02T15:04") + " "
		}
		s += fmt.Sprintf("%q=%d; ", r.Keys, r.Value)
	}
	return s
}

func sameRows(a, b []store.Row) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Bucket.Equal(b[i].Bucket) || a[i].Value != b[i].Value || !slices.Equal(a[i].Keys, b[i].Keys) {
			return false
		}
	}
	return true
}

func describe(q store.Query) string {
	s := fmt.Sprintf("%v@%v [%s, %s) bucket=%v group=%v measure=%d limit=%d", q.Table, q.Precision,
		q.From.Format(time.DateTime), q.To.Format(time.DateTime), q.Bucket, q.GroupBy, q.Measure, q.Limit)
	if q.IP.IsValid() {
		s += " ip=" + q.IP.String()
	}
	if q.Password != nil {
		s += fmt.Sprintf(" password=%q", *q.Password)
	}
	if q.DeviceTokens != nil {
		s += fmt.Sprintf(" tokens=%q", q.DeviceTokens)
	}
	if q.NonEmpty {
		s += " nonempty"
	}
	if q.Only != nil {
		s += fmt.Sprintf(" only=%q", q.Only)
	}
	return s
}

// check runs q on s and compares with the model.
func check(t *testing.T, s store.Store, m *Model, q store.Query) {
	t.Helper()
	got, err := s.Query(context.Background(), q)
	if err != nil {
		t.Errorf("%s: %v", describe(q), err)
		return
	}
	if want := m.Query(q); !sameRows(got, want) {
		t.Errorf("%s:\n got  %s\n want %s", describe(q), rowsString(got), rowsString(want))
	}
}

// servable reports whether a rollup precision can answer q: attacker
// addresses of incidents are kept with the country, or with the trap and
// action, never with the device; those of passwords without the trap.
func servable(q store.Query) bool {
	if q.Precision == store.Raw {
		return true
	}
	needIP := q.Measure == store.DistinctIPs || q.IP.IsValid() || slices.Contains(q.GroupBy, store.DimIP)
	has := func(d store.Dim) bool { return slices.Contains(q.GroupBy, d) }
	switch q.Table {
	case store.Incidents:
		needTA := has(store.DimTrap) || has(store.DimAction)
		return !needIP || !(q.DeviceTokens != nil || has(store.DimDevice) || needTA && has(store.DimCountry))
	case store.Passwords:
		return !((needIP || has(store.DimCountry)) && has(store.DimTrap))
	}
	return true
}

var groupBys = map[store.Table][][]store.Dim{
	store.Incidents: {nil, {store.DimCountry}, {store.DimTrap}, {store.DimAction}, {store.DimTrap, store.DimAction},
		{store.DimIP}, {store.DimDevice}, {store.DimCountry, store.DimIP}, {store.DimDevice, store.DimCountry},
		{store.DimIP, store.DimTrap, store.DimAction}},
	store.Passwords: {nil, {store.DimPassword}, {store.DimUsername}, {store.DimUsername, store.DimPassword}, {store.DimTrap},
		{store.DimIP}, {store.DimCountry}, {store.DimIP, store.DimPassword}, {store.DimCountry, store.DimUsername}},
	store.Ports: {nil, {store.DimPort}, {store.DimProtocol}, {store.DimProtocol, store.DimPort},
		{store.DimIP}, {store.DimIP, store.DimProtocol, store.DimPort}},
}

// queries returns a spread of queries over [from, to) at precision p.
func queries(p store.Precision, from, to time.Time, buckets ...time.Duration) []store.Query {
	var out []store.Query
	for _, tbl := range []store.Table{store.Incidents, store.Passwords, store.Ports} {
		measures := []store.Measure{store.Count}
		if tbl == store.Incidents {
			measures = append(measures, store.DistinctIPs)
		}
		for _, g := range groupBys[tbl] {
			for _, ms := range measures {
				for _, bk := range append([]time.Duration{0}, buckets...) {
					q := store.Query{Table: tbl, Precision: p, From: from, To: to, Bucket: bk, GroupBy: g, Measure: ms}
					if servable(q) {
						out = append(out, q)
						if bk == 0 && len(g) > 0 {
							q.Limit = 3
							out = append(out, q)
						}
					}
				}
			}
		}
	}
	return out
}

func checkAll(t *testing.T, s store.Store, m *Model, p store.Precision, from, to time.Time, buckets ...time.Duration) {
	t.Helper()
	for _, q := range queries(p, from, to, buckets...) {
		check(t, s, m, q)
	}
}

func testDims(t *testing.T, s store.Store) {
	m := &Model{}
	r := rand.New(rand.NewPCG(1, 2))
	insert(t, s, m, Gen(r, T0, T0.Add(48*time.Hour), 600))
	rollup(t, s, T0.Add(72*time.Hour))
	checkAll(t, s, m, store.Raw, T0, T0.Add(48*time.Hour), time.Hour, 7*time.Minute)
	checkAll(t, s, m, store.Raw, T0.Add(90*time.Second), T0.Add(5*time.Hour+17*time.Second), time.Hour)
	checkAll(t, s, m, store.Quarter, T0.Add(3*time.Hour), T0.Add(30*time.Hour), 15*time.Minute, 2*time.Hour)
	checkAll(t, s, m, store.Hour, T0, T0.Add(48*time.Hour), time.Hour, 3*time.Hour)
	checkAll(t, s, m, store.Day, T0, T0.Add(48*time.Hour), 24*time.Hour, 48*time.Hour)
	// A range without rows: totals are 0, groups empty.
	checkAll(t, s, m, store.Day, T0.Add(-48*time.Hour), T0, 24*time.Hour)
}

func testFilters(t *testing.T, s store.Store) {
	m := &Model{}
	r := rand.New(rand.NewPCG(3, 4))
	insert(t, s, m, Gen(r, T0, T0.Add(24*time.Hour), 800))
	rollup(t, s, T0.Add(48*time.Hour))
	day := T0.Add(24 * time.Hour)
	pw := func(s string) *string { return &s }
	var qs []store.Query
	for _, p := range []store.Precision{store.Raw, store.Quarter, store.Hour, store.Day} {
		for _, bk := range []time.Duration{0, 24 * time.Hour} {
			base := store.Query{Precision: p, From: T0, To: day, Bucket: bk}
			inc := base
			inc.Table = store.Incidents
			for _, a := range []netip.Addr{ip(1), ip(2), ip(0), netip.MustParseAddr("192.0.2.0"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("10.9.9.9")} {
				q := inc
				q.IP = a
				qs = append(qs, q)
				q.GroupBy = []store.Dim{store.DimCountry}
				qs = append(qs, q)
				q.Measure = store.DistinctIPs
				qs = append(qs, q)
			}
			for _, toks := range [][]string{nil, {}, {"tok01"}, {"tok00", "tok05", "nope"}, {"nope"}} {
				for _, g := range [][]store.Dim{nil, {store.DimCountry}, {store.DimTrap}, {store.DimDevice}} {
					q := inc
					q.DeviceTokens = toks
					q.GroupBy = g
					qs = append(qs, q)
				}
			}
			for _, only := range [][][]string{{}, {{"CZ"}}, {{"CZ"}, {""}, {"XX"}}} {
				q := inc
				q.GroupBy = []store.Dim{store.DimCountry}
				q.Only = only
				qs = append(qs, q)
				q.Measure = store.DistinctIPs
				qs = append(qs, q)
			}
			q := inc
			q.GroupBy = []store.Dim{store.DimIP}
			q.Only = [][]string{{ip(1).String()}, {"192.0.2.0"}, {"198.51.100.2"}}
			qs = append(qs, q)
			q.GroupBy = []store.Dim{store.DimTrap, store.DimAction}
			q.Only = [][]string{{"minipot_telnet", "login"}, {"fwlogs", "big_port_scan"}}
			qs = append(qs, q)

			pws := base
			pws.Table = store.Passwords
			for _, g := range [][]store.Dim{{store.DimPassword}, {store.DimUsername}, {store.DimUsername, store.DimPassword}} {
				for _, ne := range []bool{false, true} {
					for _, lim := range []int{0, 1, 4} {
						q := pws
						q.GroupBy, q.NonEmpty, q.Limit = g, ne, lim
						qs = append(qs, q)
					}
				}
			}
			for _, p := range []string{"", "\n", "1234", "x'); DROP TABLE passwords; --", "päss", "absent"} {
				q := pws
				q.Password = pw(p)
				qs = append(qs, q)
				q.GroupBy = []store.Dim{store.DimUsername}
				q.NonEmpty = true
				qs = append(qs, q)
			}
			q = pws
			q.GroupBy = []store.Dim{store.DimPassword}
			q.Only = [][]string{{"admin"}, {"%"}, {"?1"}}
			qs = append(qs, q)

			pts := base
			pts.Table = store.Ports
			pts.GroupBy = []store.Dim{store.DimProtocol, store.DimPort}
			pts.Only = [][]string{{"TCP", "22"}, {"other", "2323"}, {"UDP", "1"}}
			qs = append(qs, pts)
			pts.Only = nil
			pts.Limit = 2
			qs = append(qs, pts)

			// One address's credentials, ports and traps, and the
			// addresses and countries of one password (the detail
			// pages), IPv4, IPv6, IPv4-mapped and unknown ("::").
			for _, a := range []netip.Addr{ip(1), ip(2), ip(4), netip.MustParseAddr("::"), netip.MustParseAddr("10.9.9.9")} {
				for _, g := range [][]store.Dim{nil, {store.DimPassword}, {store.DimUsername}, {store.DimUsername, store.DimPassword}, {store.DimCountry}, {store.DimTrap}} {
					q := pws
					q.IP, q.GroupBy, q.NonEmpty, q.Limit = a, g, len(g) > 0, 3
					qs = append(qs, q)
				}
				for _, g := range [][]store.Dim{nil, {store.DimProtocol, store.DimPort}, {store.DimPort}} {
					q := base
					q.Table, q.IP, q.GroupBy = store.Ports, a, g
					qs = append(qs, q)
				}
				for _, g := range [][]store.Dim{{store.DimTrap, store.DimAction}, {store.DimTrap}, {store.DimAction}} {
					q := inc
					q.IP, q.GroupBy = a, g
					qs = append(qs, q)
				}
			}
			for _, p := range []string{"1234", "admin", "absent"} {
				for _, g := range [][]store.Dim{{store.DimIP}, {store.DimCountry}, {store.DimIP, store.DimCountry}} {
					q := pws
					q.Password, q.GroupBy, q.Limit = pw(p), g, 4
					qs = append(qs, q)
				}
			}
		}
	}
	for _, q := range qs {
		if servable(q) {
			check(t, s, m, q)
		} else if _, err := s.Query(context.Background(), q); !errors.Is(err, store.ErrBadQuery) {
			t.Errorf("%s: got %v, want ErrBadQuery", describe(q), err)
		}
	}
	// Limit keeps the top rows by value, ties by key.
	got, err := s.Query(context.Background(), store.Query{Table: store.Incidents, From: T0, To: day, GroupBy: []store.Dim{store.DimCountry}, Limit: 2})
	if err != nil || len(got) != 2 || got[0].Value < got[1].Value {
		t.Errorf("limit 2: %v %v", rowsString(got), err)
	}
}

func testBad(t *testing.T, s store.Store) {
	hour := T0.Add(time.Hour)
	bad := []store.Query{
		{Table: store.Ports, From: T0, To: hour, GroupBy: []store.Dim{store.DimCountry}},
		{Table: store.Ports, From: T0, To: hour, GroupBy: []store.Dim{store.DimTrap}},
		{Table: store.Incidents, From: T0, To: hour, GroupBy: []store.Dim{store.DimPassword}},
		{Table: store.Incidents, From: T0, To: hour, GroupBy: []store.Dim{store.DimCountry, store.DimCountry}},
		{Table: store.Passwords, From: T0, To: hour, Measure: store.DistinctIPs},
		{Table: store.Incidents, From: T0, To: hour, Measure: 7},
		{Table: 9, From: T0, To: hour},
		{Table: store.Incidents, Precision: 9, From: T0, To: hour},
		{Table: store.Incidents, Precision: store.Quarter, From: T0.Add(time.Minute), To: hour},
		{Table: store.Incidents, Precision: store.Hour, From: T0, To: hour.Add(15 * time.Minute)},
		{Table: store.Incidents, Precision: store.Day, From: T0, To: hour},
		{Table: store.Incidents, Precision: store.Hour, From: T0, To: hour, Bucket: 30 * time.Minute},
		{Table: store.Incidents, From: T0, To: hour, Bucket: 1500 * time.Millisecond},
		{Table: store.Incidents, From: hour, To: T0},
		{Table: store.Incidents, To: hour},
		{Table: store.Incidents, From: T0, To: hour, Limit: -1},
		{Table: store.Incidents, From: T0, To: hour, Password: new(string)},
		{Table: store.Passwords, From: T0, To: hour, DeviceTokens: []string{"a"}},
		{Table: store.Incidents, From: T0, To: hour, GroupBy: []store.Dim{store.DimCountry}, Only: [][]string{{"CZ", "SK"}}},
		{Table: store.Incidents, From: T0, To: hour, GroupBy: []store.Dim{store.DimIP}, Only: [][]string{{"not-an-ip"}}},
		{Table: store.Ports, From: T0, To: hour, GroupBy: []store.Dim{store.DimPort}, Only: [][]string{{"70000"}}},
		{Table: store.Incidents, Precision: store.Hour, From: T0, To: hour, Measure: store.DistinctIPs, GroupBy: []store.Dim{store.DimTrap, store.DimCountry}},
		{Table: store.Incidents, Precision: store.Hour, From: T0, To: hour, IP: ip(1), GroupBy: []store.Dim{store.DimDevice}},
		{Table: store.Passwords, Precision: store.Hour, From: T0, To: hour, IP: ip(1), GroupBy: []store.Dim{store.DimTrap}},
		{Table: store.Passwords, Precision: store.Hour, From: T0, To: hour, GroupBy: []store.Dim{store.DimCountry, store.DimTrap}},
		{Table: store.Incidents, Precision: store.Day, From: T0, To: T0.Add(24 * time.Hour), GroupBy: []store.Dim{store.DimIP}, DeviceTokens: []string{"x"}},
	}
	for _, q := range bad {
		if _, err := s.Query(context.Background(), q); !errors.Is(err, store.ErrBadQuery) {
			t.Errorf("%s: got %v, want ErrBadQuery", describe(q), err)
		}
	}
	if _, err := s.Rebuild(context.Background(), store.Raw, T0, hour); err == nil {
		t.Error("Rebuild(Raw) accepted")
	}
}

func testDevices(t *testing.T, s store.Store) {
	ctx := context.Background()
	m := &Model{}
	mk := func(at time.Time, sn, tok string) store.Incident {
		return store.Incident{Time: at, Serial: sn, Token: tok, Trap: "haas", Action: "logged", IP: ip(0)}
	}
	insert(t, s, m, &store.Batch{Incidents: []store.Incident{mk(T0.Add(time.Hour), "A", "ta"), mk(T0.Add(2*time.Hour), "A", "ta"), mk(T0, "B", "tb")}})
	insert(t, s, m, &store.Batch{Incidents: []store.Incident{mk(T0.Add(-time.Hour), "A", "ta"), mk(T0.Add(5*time.Hour), "A", "ta2"), mk(T0.Add(9*time.Hour), "A", "ta")}})
	got, err := s.Devices(ctx, []string{"ta", "ta2", "zz"})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Device{
		{Serial: "A", Token: "ta", FirstSeen: T0.Add(-time.Hour), LastSeen: T0.Add(9 * time.Hour)},
		{Serial: "A", Token: "ta2", FirstSeen: T0.Add(5 * time.Hour), LastSeen: T0.Add(5 * time.Hour)},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("devices:\n got  %v\n want %v", got, want)
	}
	if got, err := s.Devices(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("no tokens: %v %v", got, err)
	}
	// Two tokens of one serial group under the serial.
	check(t, s, m, store.Query{Table: store.Incidents, From: T0.Add(-time.Hour), To: T0.Add(24 * time.Hour), GroupBy: []store.Dim{store.DimDevice}})
	st, err := s.Status(ctx)
	if err != nil || st.Devices != 3 {
		t.Errorf("status devices = %d, %v; want 3", st.Devices, err)
	}
}

// snapshot is the answer of every query at every precision over a window.
func snapshot(t *testing.T, s store.Store, from, to time.Time) map[string][]store.Row {
	t.Helper()
	out := map[string][]store.Row{}
	for _, p := range []store.Precision{store.Raw, store.Quarter, store.Hour, store.Day} {
		for _, q := range queries(p, from, to, 24*time.Hour) {
			rs, err := s.Query(context.Background(), q)
			if err != nil {
				t.Fatalf("%s: %v", describe(q), err)
			}
			out[describe(q)] = rs
		}
	}
	return out
}

func sameSnapshot(t *testing.T, what string, a, b map[string][]store.Row) {
	t.Helper()
	n := 0
	for k, v := range a {
		if !sameRows(v, b[k]) {
			t.Errorf("%s: %s changed:\n before %s\n after  %s", what, k, rowsString(v), rowsString(b[k]))
			if n++; n > 5 {
				return
			}
		}
	}
}

func rollupRows(t *testing.T, s store.Store) map[string]int64 {
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range st.Rollups {
		out[fmt.Sprint(r.Table, r.Precision)] = r.Rows
	}
	return out
}

func testIdempotent(t *testing.T, s store.Store) {
	m := &Model{}
	r := rand.New(rand.NewPCG(5, 6))
	insert(t, s, m, Gen(r, T0, T0.Add(72*time.Hour), 900))
	now := T0.Add(80 * time.Hour)
	rep := rollup(t, s, now)
	if rep.Buckets == 0 || rep.Rows == 0 {
		t.Errorf("first rollup did nothing: %+v", rep)
	}
	before, rows := snapshot(t, s, T0, T0.Add(72*time.Hour)), rollupRows(t, s)
	rep = rollup(t, s, now)
	if rep.Buckets != 0 {
		t.Errorf("second rollup recomputed %d buckets", rep.Buckets)
	}
	rollup(t, s, now.Add(time.Hour))
	sameSnapshot(t, "second rollup", before, snapshot(t, s, T0, T0.Add(72*time.Hour)))
	if after := rollupRows(t, s); fmt.Sprint(after) != fmt.Sprint(rows) {
		t.Errorf("rollup rows changed: %v -> %v", rows, after)
	}
	checkAll(t, s, m, store.Day, T0, T0.Add(72*time.Hour), 24*time.Hour)
}

func testCatchUp(t *testing.T, s store.Store) {
	m := &Model{}
	r := rand.New(rand.NewPCG(7, 8))
	insert(t, s, m, Gen(r, T0, T0.Add(24*time.Hour), 300))
	rollup(t, s, T0.Add(25*time.Hour))
	// Downtime: nothing rolled up for days while data kept coming, with a
	// gap of several empty days in the middle.
	insert(t, s, m, Gen(r, T0.Add(24*time.Hour), T0.Add(48*time.Hour), 300))
	insert(t, s, m, Gen(r, T0.Add(9*24*time.Hour), T0.Add(11*24*time.Hour), 300))
	rep := rollup(t, s, T0.Add(12*24*time.Hour))
	if rep.Buckets < 3*96 {
		t.Errorf("catch-up computed %d buckets, want at least %d", rep.Buckets, 3*96)
	}
	end := T0.Add(12 * 24 * time.Hour)
	checkAll(t, s, m, store.Quarter, T0, end, 6*time.Hour)
	checkAll(t, s, m, store.Hour, T0, end, 24*time.Hour)
	checkAll(t, s, m, store.Day, T0, end, 24*time.Hour, 14*24*time.Hour)
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range st.Rollups {
		// The last bucket of each precision ends after now − Grace.
		if want := end.Add(-rs.Precision.Width()); !rs.Watermark.Equal(want) {
			t.Errorf("%v %v watermark %v, want %v", rs.Table, rs.Precision, rs.Watermark, want)
		}
	}
}

func testLate(t *testing.T, s store.Store) {
	ctx := context.Background()
	m := &Model{}
	r := rand.New(rand.NewPCG(9, 10))
	insert(t, s, m, Gen(r, T0, T0.Add(50*time.Hour), 600))
	now := T0.Add(50 * time.Hour)
	rollup(t, s, now)
	// Within grace: the last quarter (ends 1 minute before now) is not
	// rolled up yet; rows for it count once it is.
	insert(t, s, m, Gen(r, now.Add(-14*time.Minute), now.Add(-time.Minute), 50))
	// After grace: rows in buckets already rolled up at every precision.
	late := Gen(r, T0.Add(3*time.Hour), T0.Add(5*time.Hour), 40)
	late.Incidents = append(late.Incidents, store.Incident{Time: T0.Add(26 * time.Hour), Serial: "late", Token: "late", Trap: "haas", Action: "logged", IP: netip.MustParseAddr("2001:db8:1::1"), Country: "NZ"})
	insert(t, s, m, late)
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dirty := 0
	for _, r := range st.Rollups {
		dirty += r.Dirty
	}
	if dirty == 0 {
		t.Error("late rows marked no bucket dirty")
	}
	rollup(t, s, now.Add(time.Hour))
	rollup(t, s, now.Add(time.Hour)) // and again: still counted once
	st, _ = s.Status(ctx)
	for _, r := range st.Rollups {
		if r.Dirty != 0 {
			t.Errorf("%v %v: %d dirty buckets left", r.Table, r.Precision, r.Dirty)
		}
	}
	end := T0.Add(48 * time.Hour)
	checkAll(t, s, m, store.Quarter, T0, now, time.Hour)
	checkAll(t, s, m, store.Hour, T0, end, 24*time.Hour)
	checkAll(t, s, m, store.Day, T0, end, 24*time.Hour)
}

func testRebuild(t *testing.T, s store.Store) {
	ctx := context.Background()
	m := &Model{}
	r := rand.New(rand.NewPCG(11, 12))
	insert(t, s, m, Gen(r, T0, T0.Add(72*time.Hour), 600))
	rollup(t, s, T0.Add(73*time.Hour))
	before := snapshot(t, s, T0, T0.Add(72*time.Hour))
	rep, err := s.Rebuild(ctx, store.Quarter, T0.Add(20*time.Hour+7*time.Minute), T0.Add(30*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// 20:00..30:00 at 15m (40), 20h..30h at 1h (10), days 0..2 (2).
	if want := 3 * (40 + 10 + 2); rep.Buckets != want {
		t.Errorf("rebuild computed %d buckets, want %d", rep.Buckets, want)
	}
	sameSnapshot(t, "rebuild", before, snapshot(t, s, T0, T0.Add(72*time.Hour)))
	if _, err := s.Rebuild(ctx, store.Day, T0, T0.Add(365*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	checkAll(t, s, m, store.Day, T0, T0.Add(72*time.Hour), 24*time.Hour)
}

func testRetain(t *testing.T, s store.Store) {
	ctx := context.Background()
	m := &Model{}
	r := rand.New(rand.NewPCG(13, 14))
	insert(t, s, m, Gen(r, T0, T0.Add(20*24*time.Hour), 2000))
	now := T0.Add(20 * 24 * time.Hour)
	// Retain before any rollup deletes nothing: raw rows wait for it.
	if err := s.Retain(ctx, now); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Status(ctx)
	if st.Tables[store.Incidents] != 2000 {
		t.Fatalf("retain before rollup left %d of 2000 raw incidents", st.Tables[store.Incidents])
	}
	// Roll up everything (the daily rollup of the last day completes a
	// day later), then retain as of now.
	rollup(t, s, now.Add(25*time.Hour))
	if err := s.Retain(ctx, now); err != nil {
		t.Fatal(err)
	}
	// Default retention: raw 3 days, 15m 14 days, the rest longer.
	rawCut, qCut := now.Add(-72*time.Hour), now.Add(-14*24*time.Hour)
	var wantRaw int64
	for _, in := range m.Incidents {
		if !in.Time.Before(rawCut) {
			wantRaw++
		}
	}
	st, _ = s.Status(ctx)
	if st.Tables[store.Incidents] != wantRaw {
		t.Errorf("after retain %d raw incidents, want %d", st.Tables[store.Incidents], wantRaw)
	}
	rs, err := s.Query(ctx, store.Query{Table: store.Incidents, Precision: store.Quarter, From: T0, To: qCut})
	if err != nil || len(rs) != 1 || rs[0].Value != 0 {
		t.Errorf("15m rows before the cut: %v %v", rowsString(rs), err)
	}
	checkAll(t, s, m, store.Quarter, qCut, now, 24*time.Hour)
	checkAll(t, s, m, store.Hour, T0, now, 24*time.Hour)
	checkAll(t, s, m, store.Day, T0, now, 24*time.Hour)
	// Rebuilding a range whose source is gone must not wipe the rollups.
	if _, err := s.Rebuild(ctx, store.Quarter, T0, now); err != nil {
		t.Fatal(err)
	}
	checkAll(t, s, m, store.Hour, T0, now, 24*time.Hour)
	checkAll(t, s, m, store.Day, T0, now, 24*time.Hour)
	// Late rows older than the raw retention do not corrupt rollups either.
	if err := s.Insert(ctx, Gen(r, T0.Add(24*time.Hour), T0.Add(25*time.Hour), 10)); err != nil {
		t.Fatal(err)
	}
	rollup(t, s, now.Add(25*time.Hour))
	checkAll(t, s, m, store.Day, T0, now, 24*time.Hour)
}

func testStatus(t *testing.T, s store.Store) {
	ctx := context.Background()
	m := &Model{}
	r := rand.New(rand.NewPCG(15, 16))
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Backend == "" || len(st.Rollups) != 9 || st.Tables[store.Incidents] != 0 {
		t.Errorf("empty status: %+v", st)
	}
	insert(t, s, m, Gen(r, T0, T0.Add(30*time.Hour), 400))
	rollup(t, s, T0.Add(30*time.Hour))
	st, err = s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Tables[store.Incidents] != 400 || st.Tables[store.Passwords] != 200 || st.Tables[store.Ports] != 200 || st.Devices != 7 {
		t.Errorf("status counts: %+v", st)
	}
	for _, rs := range st.Rollups {
		want := T0.Add(30*time.Hour - 15*time.Minute)
		switch rs.Precision {
		case store.Hour:
			want = T0.Add(29 * time.Hour)
		case store.Day:
			want = T0.Add(24 * time.Hour)
		}
		if !rs.Watermark.Equal(want) || rs.Rows == 0 || rs.Dirty != 0 {
			t.Errorf("%v %v: %+v, want watermark %v", rs.Table, rs.Precision, rs, want)
		}
	}
	if st.Bytes < 0 {
		t.Errorf("bytes %d", st.Bytes)
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	m := &Model{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 17))
			for range 10 {
				b := Gen(r, T0, T0.Add(24*time.Hour), 50)
				if err := s.Insert(ctx, b); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				m.Add(b)
				mu.Unlock()
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 20 {
				if _, err := s.Query(ctx, store.Query{Table: store.Incidents, From: T0, To: T0.Add(24 * time.Hour), GroupBy: []store.Dim{store.DimCountry}, Measure: store.DistinctIPs}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 5 {
			if _, err := s.Rollup(ctx, T0.Add(time.Duration(i)*6*time.Hour)); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	rollup(t, s, T0.Add(48*time.Hour))
	checkAll(t, s, m, store.Raw, T0, T0.Add(24*time.Hour), time.Hour)
	checkAll(t, s, m, store.Quarter, T0, T0.Add(24*time.Hour), time.Hour)
	checkAll(t, s, m, store.Day, T0, T0.Add(24*time.Hour))
}

// testProperty: for random data, every rollup precision answers every
// servable query over aligned buckets exactly as the raw rows do.
func testProperty(t *testing.T, s store.Store) {
	ctx := context.Background()
	m := &Model{}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 18))
	start := T0.Add(time.Duration(r.IntN(10)) * 24 * time.Hour)
	days := 3 + r.IntN(3)
	end := start.Add(time.Duration(days) * 24 * time.Hour)
	for range 4 {
		insert(t, s, m, Gen(r, start, end, 400))
	}
	rollup(t, s, end.Add(time.Hour))
	windows := map[store.Precision][2]time.Time{
		store.Quarter: {start.Add(time.Duration(r.IntN(40)) * 15 * time.Minute), end.Add(-time.Duration(r.IntN(40)) * 15 * time.Minute)},
		store.Hour:    {start.Add(time.Duration(r.IntN(20)) * time.Hour), end.Add(-time.Duration(r.IntN(20)) * time.Hour)},
		store.Day:     {start, end},
	}
	buckets := map[store.Precision][]time.Duration{
		store.Quarter: {15 * time.Minute, 30 * time.Minute, 3 * time.Hour},
		store.Hour:    {time.Hour, 3 * time.Hour, 24 * time.Hour},
		store.Day:     {24 * time.Hour, 48 * time.Hour},
	}
	for p, w := range windows {
		for _, q := range queries(p, w[0], w[1], buckets[p]...) {
			got, err := s.Query(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", describe(q), err)
			}
			raw := q
			raw.Precision = store.Raw
			want, err := s.Query(ctx, raw)
			if err != nil {
				t.Fatalf("%s: %v", describe(raw), err)
			}
			if !sameRows(got, want) {
				t.Errorf("%s differs from raw:\n got  %s\n raw  %s", describe(q), rowsString(got), rowsString(want))
			}
			if model := m.Query(q); !sameRows(got, model) {
				t.Errorf("%s differs from the model:\n got   %s\n model %s", describe(q), rowsString(got), rowsString(model))
			}
		}
	}
}

// windowQueries are the queries a sliding window answers, over its range.
func windowQueries(ws store.WindowState) []store.Query {
	D := func(d ...store.Dim) []store.Dim { return d }
	base := store.Query{Table: ws.Table, Precision: ws.Precision, From: ws.From, To: ws.To}
	var shapes []store.Query
	switch ws.Table {
	case store.Incidents:
		shapes = []store.Query{{GroupBy: D(store.DimIP), Measure: store.Count}, {GroupBy: D(store.DimCountry), Measure: store.DistinctIPs}}
	case store.Ports:
		shapes = []store.Query{{GroupBy: D(store.DimProtocol, store.DimPort)}, {GroupBy: D(store.DimPort, store.DimProtocol)}}
	default:
		for _, g := range [][]store.Dim{D(store.DimPassword), D(store.DimUsername), D(store.DimUsername, store.DimPassword), D(store.DimPassword, store.DimUsername)} {
			shapes = append(shapes, store.Query{GroupBy: g}, store.Query{GroupBy: g, NonEmpty: true})
		}
	}
	var out []store.Query
	for _, sh := range shapes {
		for _, limit := range []int{0, 3, 15} {
			q := base
			q.GroupBy, q.Measure, q.NonEmpty, q.Limit = sh.GroupBy, sh.Measure, sh.NonEmpty, limit
			out = append(out, q)
		}
	}
	return out
}

// checkWindows compares every window query of every current window with
// the model, and checks that the store answered them from its windows.
func checkWindows(t *testing.T, s store.Store, m *Model, what string) {
	t.Helper()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hits, _ := s.(interface{ WindowHits() int64 })
	if hits == nil {
		t.Fatalf("%T does not report window hits", s)
	}
	current := 0
	for _, ws := range st.Windows {
		if !ws.Current {
			continue
		}
		current++
		before := hits.WindowHits()
		qs := windowQueries(ws)
		for _, q := range qs {
			check(t, s, m, q)
		}
		if got := hits.WindowHits() - before; got != int64(len(qs)) {
			t.Errorf("%s: window %v %v/%v answered %d of %d queries", what, ws.Table, ws.Precision, ws.Span, got, len(qs))
		}
	}
	if want := 3 * len(store.DefaultWindows); current != want {
		t.Errorf("%s: %d current windows, want %d: %+v", what, current, want, st.Windows)
	}
}

// testWindows checks the sliding windows through their life: the first
// build, late rows inside them, moving forward, a rebuild, retention and a
// downtime longer than a window.
func testWindows(t *testing.T, s store.Store) {
	ctx := context.Background()
	m := &Model{}
	r := rand.New(rand.NewPCG(21, 22))
	day := 24 * time.Hour
	insert(t, s, m, Gen(r, T0, T0.Add(40*day), 3000))
	now := T0.Add(40*day + time.Hour)
	rollup(t, s, now)
	checkWindows(t, s, m, "first build")

	// Late rows inside every window (raw rows are still there: no Retain
	// yet), then a rollup re-rolls their buckets and fixes the windows.
	insert(t, s, m, Gen(r, T0.Add(35*day), T0.Add(39*day), 200))
	insert(t, s, m, Gen(r, T0.Add(20*day), T0.Add(21*day), 100))
	rollup(t, s, now.Add(time.Minute))
	checkWindows(t, s, m, "late rows")

	// Days go by: the windows move, subtracting the days that left.
	for i := range 5 {
		insert(t, s, m, Gen(r, now.Add(time.Duration(i)*day), now.Add(time.Duration(i+1)*day), 300))
		rollup(t, s, now.Add(time.Duration(i+1)*day))
	}
	now = now.Add(5 * day)
	checkWindows(t, s, m, "moved")

	if _, err := s.Rebuild(ctx, store.Quarter, T0, now.Add(-day)); err != nil {
		t.Fatal(err)
	}
	checkWindows(t, s, m, "rebuild")
	if err := s.Retain(ctx, now); err != nil {
		t.Fatal(err)
	}
	checkWindows(t, s, m, "retain")

	// Downtime of 20 days: the week's window starts over.
	insert(t, s, m, Gen(r, now.Add(20*day), now.Add(21*day), 300))
	rollup(t, s, now.Add(22*day))
	checkWindows(t, s, m, "after downtime")
}

// testFresh: an event stored a few seconds ago counts in every query of
// every period of the view, though no rollup holds it yet, and the long
// periods' top lists still come from the sliding windows.
func testFresh(t *testing.T, s store.Store) {
	ctx := context.Background()
	m := &Model{}
	r := rand.New(rand.NewPCG(23, 24))
	day := 24 * time.Hour
	now := T0.Add(40*day + 13*time.Hour + 7*time.Minute + 30*time.Second)
	insert(t, s, m, Gen(r, now.Add(-40*day), now.Add(-3*time.Hour), 3000))
	rollup(t, s, now.Add(-2*time.Hour))
	insert(t, s, m, Gen(r, now.Add(-3*time.Hour), now.Add(-time.Minute), 300))
	rollup(t, s, now)
	// The event: no rollup has seen it (nor the rows of the last minutes).
	a := netip.MustParseAddr("2001:db8:fe::1")
	sn, tok := device(3)
	ev := &store.Batch{
		Incidents: []store.Incident{{Time: now.Add(-5 * time.Second), Serial: sn, Token: tok, Trap: "minipot_telnet", Action: "login", IP: a, Country: "NZ"}},
		Passwords: []store.Password{{Time: now.Add(-5 * time.Second), Trap: "minipot_telnet", Username: "fresh", Password: "fresh-pw", IP: a, Country: "NZ"}},
		Ports:     []store.Port{{Time: now.Add(-5 * time.Second), Port: 2222, Protocol: "TCP", IP: a}},
	}
	insert(t, s, m, ev)
	hits, _ := s.(interface{ WindowHits() int64 })
	var h0 int64
	if hits != nil {
		h0 = hits.WindowHits()
	}
	for _, p := range Periods {
		for _, vq := range viewQueries(p, now, a, []string{tok}, "fresh-pw") {
			check(t, s, m, vq.q)
		}
		start, end := p.Window(now)
		// Distinct attackers per country and graph bucket (the countries
		// graph of the Attackers page), all and a few countries.
		cq := store.Query{Table: store.Incidents, Precision: p.Precision, From: start, To: end, Bucket: p.Bucket, GroupBy: []store.Dim{store.DimCountry}, Measure: store.DistinctIPs}
		check(t, s, m, cq)
		cq.Only = [][]string{{"NZ"}, {"CZ"}, {""}}
		check(t, s, m, cq)
		// Spelled out: the new address is among the period's attackers.
		rs, err := s.Query(ctx, store.Query{Table: store.Incidents, Precision: p.Precision, From: start, To: end, GroupBy: []store.Dim{store.DimIP}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(rs, func(r store.Row) bool { return r.Keys[0] == a.String() && r.Value == 1 }) {
			t.Errorf("%s: the event of 5 s ago is not among the attackers: %s", p.Name, rowsString(rs))
		}
	}
	if hits != nil && hits.WindowHits() == h0 {
		t.Error("no query of the long periods was answered from a sliding window")
	}
}
