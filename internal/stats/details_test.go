package stats

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

// TestDetailResources: the resources of the attacker and password pages,
// for an IPv4 and an IPv6 address, on a period read from raw rows and one
// read from rollups.
func TestDetailResources(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	v4, v6 := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")
	at := func(d time.Duration) time.Time { return testNow.Add(-d).Truncate(time.Second) }
	b := &store.Batch{
		Incidents: []store.Incident{
			{Time: at(50 * time.Minute), Trap: "minipot_telnet", Action: "login", IP: v4, Country: "CZ"},
			{Time: at(40 * time.Minute), Trap: "minipot_telnet", Action: "login", IP: v4, Country: "CZ"},
			{Time: at(20 * time.Minute), Trap: "fwlogs", Action: "small_port_scan", IP: v4, Country: "CZ"},
			{Time: at(30 * time.Minute), Trap: "haas", Action: "logged", IP: v6, Country: "DE"},
			{Time: at(30 * time.Hour), Trap: "haas", Action: "logged", IP: v6, Country: "DE"},
		},
		Passwords: []store.Password{
			{Time: at(50 * time.Minute), Trap: "minipot_telnet", Username: "root", Password: "xc3511", IP: v4, Country: "CZ"},
			{Time: at(40 * time.Minute), Trap: "minipot_telnet", Username: "admin", Password: "xc3511", IP: v4, Country: "CZ"},
			{Time: at(30 * time.Minute), Trap: "haas", Username: "root", Password: "xc3511", IP: v6, Country: "DE"},
			{Time: at(30 * time.Hour), Trap: "haas", Username: "pi", Password: "raspberry", IP: v6, Country: "DE"},
			// Stored before rows carried an address: not an attacker.
			{Time: at(45 * time.Minute), Trap: "minipot_telnet", Username: "root", Password: "xc3511"},
		},
		Ports: []store.Port{
			{Time: at(20 * time.Minute), Port: 23, Protocol: "TCP", IP: v4},
			{Time: at(20 * time.Minute), Port: 23, Protocol: "TCP", IP: v4},
			{Time: at(20 * time.Minute), Port: 5060, Protocol: "UDP", IP: v4},
			{Time: at(25 * time.Minute), Port: 22, Protocol: "TCP", IP: v6},
		},
	}
	if err := st.Insert(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Rollup(ctx, testNow); err != nil {
		t.Fatal(err)
	}
	get := func(name, period string, ip netip.Addr, pw string) any {
		t.Helper()
		r, err := Compute(ctx, st, Request{Name: name, Period: period, IP: ip, Password: pw}, testNow, 4*time.Minute)
		if err != nil {
			t.Fatalf("%s/%s: %v", name, period, err)
		}
		return r.data()
	}
	list := func(name, period string, ip netip.Addr, pw string) []map[string]any {
		t.Helper()
		d, _ := get(name, period, ip, pw).([]map[string]any)
		return d
	}
	for _, period := range []string{"1h", "1w"} {
		traps := list("selected_attacker_traps_list", period, v4, "")
		want := []map[string]any{{"source": "minipot_telnet", "action": "login", "count": int64(2)}, {"source": "fwlogs", "action": "small_port_scan", "count": int64(1)}}
		if !reflect.DeepEqual(traps, want) {
			t.Errorf("%s traps of %v: %v, want %v", period, v4, traps, want)
		}
	}
	// The hour reads raw rows, the week hourly rollups (its window ends at
	// 12:00, the last 3-hour boundary before now − settle).
	for _, c := range []struct {
		name, period string
		ip           netip.Addr
		pw           string
		want         any
	}{
		{"selected_attacker_passwords_list", "1h", v4, "", []map[string]any{{"password": "xc3511", "count": int64(2)}}},
		{"selected_attacker_usernames_list", "1h", v4, "", []map[string]any{{"username": "admin", "count": int64(1)}, {"username": "root", "count": int64(1)}}},
		{"selected_attacker_ports_list", "1h", v4, "", []map[string]any{{"port": "TCP/23", "count": int64(2)}, {"port": "UDP/5060", "count": int64(1)}}},
		{"selected_attacker_ports_list", "1h", v6, "", []map[string]any{{"port": "TCP/22", "count": int64(1)}}},
		{"selected_attacker_traps_list", "1w", v6, "", []map[string]any{{"source": "haas", "action": "logged", "count": int64(2)}}},
		{"selected_attacker_passwords_list", "1w", v6, "", []map[string]any{{"password": "raspberry", "count": int64(1)}, {"password": "xc3511", "count": int64(1)}}},
		{"selected_attacker_usernames_list", "1w", v6, "", []map[string]any{{"username": "pi", "count": int64(1)}, {"username": "root", "count": int64(1)}}},
		{"attackers_of_password_list", "1h", netip.Addr{}, "xc3511", []map[string]any{
			{"ip": "192.0.2.7", "country": "CZ", "count": int64(2)}, {"ip": "2001:db8::7", "country": "DE", "count": int64(1)}}},
		{"countries_of_password_list", "1h", netip.Addr{}, "xc3511", []map[string]any{{"country": "CZ", "count": int64(2)}, {"country": "DE", "count": int64(1)}}},
		{"attackers_of_password_list", "1w", netip.Addr{}, "raspberry", []map[string]any{{"ip": "2001:db8::7", "country": "DE", "count": int64(1)}}},
		{"attackers_of_password_list", "1d", netip.Addr{}, "raspberry", []map[string]any{}},
		{"selected_attacker_seen", "1h", v4, "", SeenData{First: time.Date(2026, 3, 4, 11, 17, 0, 0, time.UTC), Last: time.Date(2026, 3, 4, 11, 48, 0, 0, time.UTC)}},
		{"selected_attacker_seen", "1w", v6, "", SeenData{First: time.Date(2026, 3, 3, 6, 0, 0, 0, time.UTC), Last: time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)}},
		{"selected_attacker_seen", "1d", v6, "", SeenData{First: time.Date(2026, 3, 4, 11, 30, 0, 0, time.UTC), Last: time.Date(2026, 3, 4, 11, 45, 0, 0, time.UTC)}},
		{"selected_attacker_seen", "1h", netip.MustParseAddr("192.0.2.99"), "", nil},
	} {
		if got := get(c.name, c.period, c.ip, c.pw); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s/%s(%v%s) = %#v, want %#v", c.name, c.period, c.ip, c.pw, got, c.want)
		}
	}
}
