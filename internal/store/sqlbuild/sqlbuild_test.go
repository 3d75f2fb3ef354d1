package sqlbuild

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

var testDialect = Dialect{Name: "test", Placeholder: func(n int) string { return "$" + strconv.Itoa(n) }, Least: "LEAST", Greatest: "GREATEST"}

// TestValuesArePlaceholders: attacker-typed strings, tokens and addresses
// reach the database as arguments, never as SQL text.
func TestValuesArePlaceholders(t *testing.T) {
	evil := "x'); DROP TABLE passwords; --"
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, q := range []store.Query{
		{Table: store.Passwords, From: t0, To: t0.Add(time.Hour), Password: &evil, GroupBy: []store.Dim{store.DimUsername}, NonEmpty: true},
		{Table: store.Passwords, From: t0, To: t0.Add(time.Hour), GroupBy: []store.Dim{store.DimPassword}, Only: [][]string{{evil}}},
		{Table: store.Incidents, From: t0, To: t0.Add(time.Hour), DeviceTokens: []string{evil}, GroupBy: []store.Dim{store.DimCountry}, Only: [][]string{{evil}}},
		{Table: store.Incidents, Precision: store.Hour, From: t0, To: t0.Add(time.Hour), IP: netip.MustParseAddr("2001:db8::1"), Bucket: time.Hour},
	} {
		sql, args, empty, err := BuildQuery(testDialect, q)
		if err != nil || empty {
			t.Fatalf("%v %v", err, empty)
		}
		if strings.Contains(sql, "DROP") || strings.Contains(sql, "2001") || strings.Contains(sql, "'") {
			t.Errorf("value in SQL text: %s", sql)
		}
		if n := strings.Count(sql, "$"); n < len(args) {
			t.Errorf("%d placeholders for %d args: %s", n, len(args), sql)
		}
		if q.Password != nil && !slices.Contains(args, any(evil)) {
			t.Errorf("password not among args %v", args)
		}
	}
}

func TestAlign(t *testing.T) {
	for _, c := range []struct{ t, w, floor, ceil int64 }{{0, 900, 0, 0}, {1, 900, 0, 900}, {899, 900, 0, 900}, {900, 900, 900, 900}, {-1, 900, -900, 0}} {
		if f, cl := floorTo(c.t, c.w), ceilTo(c.t, c.w); f != c.floor || cl != c.ceil {
			t.Errorf("align(%d, %d) = %d, %d; want %d, %d", c.t, c.w, f, cl, c.floor, c.ceil)
		}
	}
}

func TestIPRoundTrip(t *testing.T) {
	for _, s := range []string{"192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "::1", "::"} {
		a := netip.MustParseAddr(s)
		if got := IPString(IPBytes(a)); got != a.Unmap().String() {
			t.Errorf("%s: %s", s, got)
		}
	}
}
