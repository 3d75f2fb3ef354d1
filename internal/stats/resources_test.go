package stats

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestRequestKeyHidesParameters(t *testing.T) {
	tok := strings.Repeat("ab", 32)
	k := Request{Name: "my_all_incidents_graph", Period: "1d", DeviceTokens: []string{tok}}.key()
	if strings.Contains(k, tok) || strings.Contains(k, tok[:10]) {
		t.Fatalf("device token leaks into cache key %q", k)
	}
	pw := "<script>alert(1)</script>"
	kp := Request{Name: "selected_password_by_usages_graph", Period: "1d", Password: pw}.key()
	if strings.Contains(kp, "script") {
		t.Fatalf("password shapes cache key %q", kp)
	}
	// Token order does not matter; different tokens give different keys.
	a := Request{Name: "my_all_incidents_graph", Period: "1d", DeviceTokens: []string{"a", "b"}}.key()
	b := Request{Name: "my_all_incidents_graph", Period: "1d", DeviceTokens: []string{"b", "a"}}.key()
	c := Request{Name: "my_all_incidents_graph", Period: "1d", DeviceTokens: []string{"a", "c"}}.key()
	if a != b || a == c {
		t.Fatalf("keys: %q %q %q", a, b, c)
	}
	ip1 := Request{Name: "selected_attacker_incidents_graph", Period: "1h", IP: netip.MustParseAddr("192.0.2.1")}.key()
	ip2 := Request{Name: "selected_attacker_incidents_graph", Period: "1h", IP: netip.MustParseAddr("192.0.2.2")}.key()
	if ip1 == ip2 {
		t.Fatal("different addresses share a cache key")
	}
	if got := (Request{Name: "all_incidents_graph", Period: "1w"}).key(); got != "all_incidents_graph;1w" {
		t.Fatalf("plain key %q", got)
	}
}

func TestPeriodsMatchReference(t *testing.T) {
	want := map[string]int{"1h": 60, "6h": 24, "1d": 48, "1w": 56, "1m": 30, "3m": 45, "1y": 26}
	for _, p := range Periods {
		s, e := p.Window(mustTime("2026-03-04T05:06:07Z"), 4*time.Minute)
		if n := len(p.Buckets(s, e)); n != want[p.Name] {
			t.Errorf("%s: %d buckets, want %d", p.Name, n, want[p.Name])
		}
		if w := p.Precision.Width(); w > 0 && s.UnixNano()%int64(w) != 0 {
			t.Errorf("%s: window start %v not aligned to %v", p.Name, s, p.Precision)
		}
	}
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
