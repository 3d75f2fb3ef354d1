package scoring

import (
	"net/netip"
	"testing"
	"time"
)

// TestOverridden: the keys with an override in force, blocked or
// unblocked, and no longer once it is cleared or ends.
func TestOverridden(t *testing.T) {
	m := newSim(t, DefaultConfig())
	s := m.s
	blocked, unblocked := netip.MustParsePrefix("45.155.205.1/32"), netip.MustParsePrefix("45.155.205.2/32")
	if _, _, err := s.Block(blocked, base, base.Add(time.Hour), "b"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Unblock(unblocked, base, base.Add(2*time.Hour), "u"); err != nil {
		t.Fatal(err)
	}
	got := map[netip.Prefix]bool{}
	s.Overridden(func(k netip.Prefix) bool { got[k] = true; return true })
	if len(got) != 2 || !got[blocked] || !got[unblocked] {
		t.Fatalf("overridden %v", got)
	}
	m.to(time.Hour)
	if _, _, err := s.Clear(unblocked, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	n := 0
	s.Overridden(func(netip.Prefix) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d overrides left after the block ended and the unblock was cleared", n)
	}
}
