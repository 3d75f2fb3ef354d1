package recorder

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/geoip"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := backend.Open(context.Background(), filepath.Join(t.TempDir(), "stats.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestEventsBecomeRows(t *testing.T) {
	st := openStore(t)
	probes := new(events.Probes)
	router := probes.ID(events.Probe{Name: "mqtt:0000000A0B0C0D0E", Serial: "0000000A0B0C0D0E", Token: "t0k3n"})
	other := probes.ID(events.Probe{Name: "http:fail2ban"})
	var pw []string
	rec := New(Options{Store: st, Probes: probes, Countries: geoip.Default(), Passwords: func(trap, p string) { pw = append(pw, trap+":"+p) }})
	now := time.Now().UTC().Truncate(time.Second)
	// 1.1.1.1 is in every country database; what matters is that the
	// recorder stores the database's answer.
	attacker := netip.MustParseAddr("1.1.1.1")
	wantCountry := geoip.Default().Country(attacker)
	rec.Events([]events.Event{
		{Time: now.UnixNano(), Type: events.TelnetLogin, Addr: attacker, Probe: router, Details: &events.Details{Username: "root", Password: "<script>alert(1)</script>"}},
		{Time: now.UnixNano(), Type: events.HTTPConnect, Addr: netip.MustParseAddr("2001:db8::1"), Probe: other},
		{Time: now.UnixNano(), Type: events.FwlogsPacket, Addr: attacker, Probe: router, Details: &events.Details{Protocol: "TCP", Port: 40000, LocalPort: 22}},
		{Time: now.UnixNano(), Type: events.FwlogsSmallPortScan, Addr: attacker, Probe: router},
	})
	if s := rec.Stats(); s.Queued != 5 {
		t.Fatalf("queued %d rows, want 5 (3 incidents, 1 password, 1 port)", s.Queued)
	}
	ctx := context.Background()
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := rec.Stats(); s.Inserted != 5 || s.Queued != 0 {
		t.Fatalf("stats %+v", s)
	}
	from, to := now.Add(-time.Minute), now.Add(time.Minute)
	q := func(q store.Query) []store.Row {
		t.Helper()
		q.From, q.To = from, to
		rows, err := st.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	rows := q(store.Query{Table: store.Incidents, GroupBy: []store.Dim{store.DimTrap, store.DimAction, store.DimCountry}})
	got := map[string]int64{}
	for _, r := range rows {
		got[r.Keys[0]+"/"+r.Keys[1]+"/"+r.Keys[2]] = r.Value
	}
	want := map[string]int64{"minipot_telnet/login/" + wantCountry: 1, "minipot_http/connect/": 1, "fwlogs/small_port_scan/" + wantCountry: 1}
	if len(got) != len(want) {
		t.Fatalf("incidents %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("incidents %v, want %v", got, want)
		}
	}
	// The router's device token selects its incidents only.
	if rows := q(store.Query{Table: store.Incidents, DeviceTokens: []string{"t0k3n"}}); len(rows) != 1 || rows[0].Value != 2 {
		t.Fatalf("device rows %v", rows)
	}
	devs, err := st.Devices(ctx, []string{"t0k3n"})
	if err != nil || len(devs) != 1 || devs[0].Serial != "0000000A0B0C0D0E" {
		t.Fatalf("devices %v %v", devs, err)
	}
	if rows := q(store.Query{Table: store.Passwords, GroupBy: []store.Dim{store.DimUsername, store.DimPassword}}); len(rows) != 1 || rows[0].Keys[1] != "<script>alert(1)</script>" {
		t.Fatalf("passwords %v", rows)
	}
	if rows := q(store.Query{Table: store.Ports, GroupBy: []store.Dim{store.DimProtocol, store.DimPort}}); len(rows) != 1 || rows[0].Keys[0] != "TCP" || rows[0].Keys[1] != "22" {
		t.Fatalf("ports %v", rows)
	}
	// Passwords and ports keep the attacker's address (and a password its
	// country), for the detail pages.
	if rows := q(store.Query{Table: store.Passwords, GroupBy: []store.Dim{store.DimIP, store.DimCountry}}); len(rows) != 1 || rows[0].Keys[0] != "1.1.1.1" || rows[0].Keys[1] != wantCountry {
		t.Fatalf("password addresses %v", rows)
	}
	if rows := q(store.Query{Table: store.Ports, IP: attacker, GroupBy: []store.Dim{store.DimPort}}); len(rows) != 1 || rows[0].Keys[0] != "22" {
		t.Fatalf("ports of the attacker %v", rows)
	}
	if len(pw) != 1 || pw[0] != "minipot_telnet:<script>alert(1)</script>" {
		t.Fatalf("password feed %v", pw)
	}
}

// TestQueueBound: when the store falls behind, rows beyond MaxQueue are
// dropped and counted, never blocking the caller.
func TestQueueBound(t *testing.T) {
	st := openStore(t)
	rec := New(Options{Store: st, MaxQueue: 10, MaxBatch: 4})
	evs := make([]events.Event, 25)
	for i := range evs {
		evs[i] = events.Event{Time: time.Now().UnixNano(), Type: events.SMTPConnect, Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})}
	}
	rec.Events(evs)
	if s := rec.Stats(); s.Queued != 10 || s.Dropped != 15 {
		t.Fatalf("stats %+v", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go rec.Run(ctx)
	cancel()
	rec.Wait()
	if s := rec.Stats(); s.Inserted != 10 || s.Queued != 0 {
		t.Fatalf("after Run stopped: %+v", s)
	}
}

// TestFailedInsertKeepsRows: rows an insert could not write wait for the
// next try instead of vanishing.
func TestFailedInsertKeepsRows(t *testing.T) {
	st := openStore(t)
	rec := New(Options{Store: st, MaxQueue: 100})
	evs := make([]events.Event, 7)
	for i := range evs {
		evs[i] = events.Event{Time: time.Now().UnixNano(), Type: events.FTPConnect, Addr: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})}
	}
	rec.Events(evs)
	st.Close() // the database goes away
	if err := rec.Flush(context.Background()); err == nil {
		t.Fatal("insert into a closed store succeeded")
	}
	if s := rec.Stats(); s.Queued != 7 || s.Inserted != 0 || s.Dropped != 0 || s.Failed != 1 {
		t.Fatalf("stats %+v", s)
	}
	rec.Events(evs[:2])
	if s := rec.Stats(); s.Queued != 9 {
		t.Fatalf("queued %d after more events", s.Queued)
	}
}
