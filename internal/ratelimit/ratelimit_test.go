package ratelimit

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	now := time.Date(2025, 1, 20, 12, 0, 0, 0, time.UTC)
	l := New(60, 2, 16, func() time.Time { return now })
	k := netip.MustParsePrefix("192.0.2.1/32")
	for range 2 {
		if ok, _ := l.Allow(k); !ok {
			t.Fatal("burst refused")
		}
	}
	ok, wait := l.Allow(k)
	if ok || wait != time.Second || RetryAfter(wait) != "1" {
		t.Fatalf("over the burst: %v %v", ok, wait)
	}
	if ok, _ := l.Allow(netip.MustParsePrefix("192.0.2.2/32")); !ok {
		t.Fatal("another client shares the bucket")
	}
	now = now.Add(time.Second)
	if ok, _ := l.Allow(k); !ok {
		t.Fatal("no refill")
	}
}

func TestEviction(t *testing.T) {
	now := time.Date(2025, 1, 20, 12, 0, 0, 0, time.UTC)
	l := New(60, 2, 16, func() time.Time { return now })
	for i := range 1000 {
		l.Allow(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32))
		if n := l.Clients(); n > 16 {
			t.Fatalf("%d clients", n)
		}
	}
}

func TestClientKey(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "[2001:db8:1:2:3::4]:5555"
	r.Header.Set("X-Forwarded-For", "203.0.113.1, 198.51.100.2")
	if k := ClientKey(r, false); k.String() != "2001:db8:1:2::/64" {
		t.Error(k)
	}
	if k := ClientKey(r, true); k.String() != "198.51.100.2/32" {
		t.Error(k)
	}
	r.RemoteAddr = "[::ffff:192.0.2.9]:1"
	if k := ClientKey(r, false); k.String() != "192.0.2.9/32" {
		t.Error(k)
	}
}

// AllowN charges a request by its cost: a page of three computations
// takes three tokens, all or none.
func TestAllowN(t *testing.T) {
	now := time.Date(2025, 1, 20, 12, 0, 0, 0, time.UTC)
	l := New(60, 5, 16, func() time.Time { return now })
	k := netip.MustParsePrefix("192.0.2.1/32")
	if ok, _ := l.AllowN(k, 3); !ok {
		t.Fatal("3 of 5 refused")
	}
	ok, wait := l.AllowN(k, 3)
	if ok || wait != time.Second {
		t.Fatalf("3 of 2: %v, wait %v", ok, wait)
	}
	if ok, _ := l.AllowN(k, 2); !ok {
		t.Fatal("a refused request took tokens")
	}
	if ok, _ := l.AllowN(k, 0); !ok {
		t.Fatal("a free request refused")
	}
	now = now.Add(5 * time.Second)
	if ok, _ := l.AllowN(k, 50); !ok {
		t.Fatal("a cost above the burst can never pass")
	}
}
