package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/store"
)

// testStorableText: what events.Storable makes of attacker-typed bytes
// comes back byte for byte, in grouping and as a filter, on every backend.
func testStorableText(t *testing.T, s store.Store) {
	ctx := context.Background()
	raw := []string{
		"a\x00b", "pw\xff\xfe", strings.Repeat("€", 342), "\xed\xa0\x80", "\r\x1b[31m\x7f\u009b",
		`C:\x41 \\ \`, "tab\there\nnewline", "🔑 密码 heslo", strings.Repeat("\x00", 400),
	}
	var b store.Batch
	want := map[string]bool{}
	for i, r := range raw {
		pw := events.Storable(r, events.MaxText)
		want[pw] = true
		b.Passwords = append(b.Passwords, store.Password{Time: T0.Add(time.Duration(i) * time.Second), Trap: "minipot_telnet", Username: pw, Password: pw})
	}
	if err := s.Insert(ctx, &b); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Query(ctx, store.Query{Table: store.Passwords, From: T0, To: T0.Add(time.Hour), GroupBy: []store.Dim{store.DimUsername, store.DimPassword}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if !want[r.Keys[1]] || r.Keys[0] != r.Keys[1] || r.Value != 1 {
			t.Errorf("row %q %d", r.Keys, r.Value)
		}
		delete(want, r.Keys[1])
	}
	for pw := range want {
		t.Errorf("%q not read back", pw)
	}
	for _, r := range raw[:3] {
		pw := events.Storable(r, events.MaxText)
		rows, err := s.Query(ctx, store.Query{Table: store.Passwords, From: T0, To: T0.Add(time.Hour), Password: &pw})
		if err != nil || len(rows) != 1 || rows[0].Value != 1 {
			t.Errorf("filter by %q: %v %v", pw, rows, err)
		}
	}
}

// testRefused: an Insert the database refuses for what a row holds says
// so with a *store.RejectedError, and writes nothing of the batch.
func testRefused(t *testing.T, s store.Store) {
	ctx := context.Background()
	b := store.Batch{
		Incidents: []store.Incident{{Time: T0, Trap: "haas", Action: "logged", IP: ip(0)}, {Time: T0, Trap: "haas", Action: "logged"}},
		Passwords: []store.Password{{Time: T0, Trap: "haas", Username: "u", Password: "p"}},
	}
	err := s.Insert(ctx, &b)
	var re *store.RejectedError
	if !errors.As(err, &re) || re.Reason != store.RejectInvalid || re.Code == "" {
		t.Fatalf("incident without an address: %v", err)
	}
	for _, tb := range []store.Table{store.Incidents, store.Passwords} {
		rows, err := s.Query(ctx, store.Query{Table: tb, From: T0, To: T0.Add(time.Hour)})
		if err != nil || len(rows) > 1 || len(rows) == 1 && rows[0].Value != 0 {
			t.Errorf("%v after a refused batch: %v %v", tb, rows, err)
		}
	}
}
