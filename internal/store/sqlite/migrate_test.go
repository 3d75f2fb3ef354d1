package sqlite

import (
	"context"
	"database/sql"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/sqlbuild"
	"github.com/dynfw/sentinel/internal/store/storetest"
)

// TestMigrateAddresses upgrades a database of schema 2 with stored rows:
// password and port rows get the unknown address, and the traps of each
// address are rolled up from the raw incidents up to the 15-minute
// watermark, as if they had always been.
func TestMigrateAddresses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "stats.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"migrations/0001_init.sql", "migrations/0002_windows.sql"} {
		body, err := migrations.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	t0 := storetest.T0.Unix()
	a4, a6 := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")
	for i, r := range []struct {
		at     int64
		ip     netip.Addr
		action string
	}{{0, a4, "login"}, {60, a4, "login"}, {1000, a4, "connect"}, {1000, a6, "login"}, {3700, a6, "login"}} {
		if _, err := db.ExecContext(ctx, "INSERT INTO incidents (time, device_id, trap, action, ip, country) VALUES (?, 1, 'minipot_telnet', ?, ?, 'CZ')",
			t0+r.at, r.action, sqlbuild.IPBytes(r.ip)); err != nil {
			t.Fatal(i, err)
		}
	}
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustExec("INSERT INTO passwords (time, trap, username, password) VALUES (?, 'minipot_telnet', 'root', 'admin')", t0)
	mustExec("INSERT INTO ports (time, port, protocol) VALUES (?, 23, 'TCP')", t0)
	// The 15-minute rollup stands at T0+30m: the incident at T0+3700s is
	// beyond it and is rolled up later, as usual.
	mustExec("UPDATE rollup_state SET watermark = ? WHERE tbl = 0 AND prec = 1", t0+1800)
	mustExec("PRAGMA user_version = 2")
	db.Close()

	s, err := Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := store.Query{Table: store.Incidents, Precision: store.Quarter, From: storetest.T0, To: storetest.T0.Add(30 * time.Minute),
		GroupBy: []store.Dim{store.DimIP, store.DimTrap, store.DimAction}}
	got, err := s.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"192.0.2.7 minipot_telnet login": 2, "192.0.2.7 minipot_telnet connect": 1, "2001:db8::7 minipot_telnet login": 1}
	if len(got) != len(want) {
		t.Fatalf("rolled up traps: %+v", got)
	}
	for _, r := range got {
		if k := r.Keys[0] + " " + r.Keys[1] + " " + r.Keys[2]; want[k] != r.Value {
			t.Errorf("%s: %d, want %d", k, r.Value, want[k])
		}
	}
	for _, tbl := range []store.Table{store.Passwords, store.Ports} {
		rows, err := s.Query(ctx, store.Query{Table: tbl, From: storetest.T0, To: storetest.T0.Add(time.Hour), GroupBy: []store.Dim{store.DimIP}})
		if err != nil || len(rows) != 1 || rows[0].Keys[0] != "::" {
			t.Errorf("%v after the upgrade: %+v %v", tbl, rows, err)
		}
	}
	// New rows carry their address.
	if err := s.Insert(ctx, &store.Batch{Passwords: []store.Password{{Time: storetest.T0, Trap: "haas", Username: "u", Password: "p", IP: a6, Country: "DE"}}}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Query(ctx, store.Query{Table: store.Passwords, From: storetest.T0, To: storetest.T0.Add(time.Hour), IP: a6, GroupBy: []store.Dim{store.DimCountry, store.DimPassword}})
	if err != nil || len(rows) != 1 || rows[0].Keys[0] != "DE" || rows[0].Keys[1] != "p" {
		t.Errorf("new password row: %+v %v", rows, err)
	}
}
