package scoring

import (
	"net/netip"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
)

// addrN is the n-th of a set of distinct global addresses, a quarter of
// them IPv6.
func addrN(n int) netip.Addr {
	if n%4 == 3 {
		return netip.AddrFrom16([16]byte{0x2a, 0x01, 0x4f, 0x8, 0, 0, byte(n >> 16), byte(n >> 8), 15: byte(n)})
	}
	return netip.AddrFrom4([4]byte{45, byte(n >> 16), byte(n >> 8), byte(n)})
}

// stream returns events over keys addresses, in turn, 1 ms apart, of the
// mix a probe network sends (mostly connects, some logins).
func stream(n, keys int) []events.Event {
	types := []events.Type{events.TelnetConnect, events.TelnetConnect, events.HTTPConnect, events.HTTPMessage,
		events.TelnetLogin, events.TelnetConnect, events.FTPConnect, events.SMTPConnect}
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = events.Event{Time: base.Add(time.Duration(i) * time.Millisecond).UnixNano(), Type: types[i%len(types)],
			Addr: addrN(i % keys), Probe: events.ProbeID(i % 5), Source: events.FromMQTT}
	}
	return evs
}

func benchObserve(b *testing.B, cfg Config, keys int) {
	evs := stream(1<<20, keys)
	s := New(cfg)
	for i := range min(keys, len(evs)) {
		s.Observe(&evs[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		e := &evs[i&(len(evs)-1)]
		if i >= len(evs) {
			// Keep time moving forward on later laps.
			e.Time += int64(time.Hour)
		}
		s.Observe(e)
	}
}

// BenchmarkObserveRepeated is the common case: a busy attacker's key is
// hot in the cache.
func BenchmarkObserveRepeated(b *testing.B) { benchObserve(b, DefaultConfig(), 64) }

// BenchmarkObserveDistinct100k cycles through 100k known keys, so that
// every event misses the cache.
func BenchmarkObserveDistinct100k(b *testing.B) { benchObserve(b, DefaultConfig(), 100_000) }

// BenchmarkObserveCapped adds the per-probe cap and IPv6 aggregation.
func BenchmarkObserveCapped(b *testing.B) {
	cfg := DefaultConfig()
	cfg.ProbeCap, cfg.IPv6Prefix = 0.6, 64
	benchObserve(b, cfg, 100_000)
}

// BenchmarkObserveNew gives every event a new key: map growth, a heap
// item and the classification, amortised.
func BenchmarkObserveNew(b *testing.B) {
	s := New(DefaultConfig())
	b.ReportAllocs()
	for i := range b.N {
		s.Observe(&events.Event{Time: base.UnixNano() + int64(i), Type: events.TelnetConnect, Addr: addrN(i)})
	}
}

// listedScorer has n listed keys and as many quiet unlisted ones.
func listedScorer(b *testing.B, n int) *Scorer {
	s := New(DefaultConfig())
	for i := range n {
		for j := range 5 {
			s.Observe(&events.Event{Time: base.Add(time.Duration(j) * time.Second).UnixNano(), Type: events.TelnetLogin, Addr: addrN(i)})
		}
		s.Observe(&events.Event{Time: base.UnixNano(), Type: events.TelnetConnect, Addr: addrN(n + i)})
	}
	if s.Len() != n {
		b.Fatalf("%d listed", s.Len())
	}
	return s
}

// BenchmarkTick100kListed is the tick the server makes every second with
// 100k keys listed and nothing due.
func BenchmarkTick100kListed(b *testing.B) {
	s := listedScorer(b, 100_000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Tick(base.Add(time.Hour+time.Duration(i)*time.Second), func(Change) {})
	}
}

// BenchmarkTick100kExpire is the worst tick: 100k listings end at once
// (and the other 100k keys are due to be forgotten the next day).
func BenchmarkTick100kExpire(b *testing.B) {
	snap := listedScorer(b, 100_000).AppendSnapshot(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s, err := Restore(DefaultConfig(), snap)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		b.StartTimer()
		s.Tick(base.Add(24*time.Hour), func(Change) { n++ })
		if n != 100_000 {
			b.Fatalf("%d changes", n)
		}
	}
}

func millionKeys(b *testing.B) *Scorer {
	s := New(DefaultConfig())
	evs := stream(1<<20, 1_000_000)
	for i := range evs {
		s.Observe(&evs[i])
	}
	for i := range 20_000 {
		s.Observe(&events.Event{Time: evs[len(evs)-1].Time, Type: events.HaasLoggedActive, Addr: addrN(i), Probe: 1})
		s.Observe(&events.Event{Time: evs[len(evs)-1].Time, Type: events.HaasLogged, Addr: addrN(i), Probe: 2})
	}
	if k := s.Stats().Keys; k != 1_000_000 {
		b.Fatalf("%d keys", k)
	}
	return s
}

func BenchmarkSnapshot1M(b *testing.B) {
	s := millionKeys(b)
	buf := s.AppendSnapshot(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		buf = s.AppendSnapshot(buf[:0])
	}
	b.ReportMetric(float64(len(buf))/1e6, "MB")
}

func BenchmarkRestore1M(b *testing.B) {
	snap := millionKeys(b).AppendSnapshot(nil)
	b.SetBytes(int64(len(snap)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := Restore(DefaultConfig(), snap); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkListed100k(b *testing.B) {
	s := listedScorer(b, 100_000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n := 0
		for _, tags := range s.Listed {
			n += len(tags)
		}
	}
}

// BenchmarkIsNonGlobal classifies keys the way the scorer does for every
// first event of an address: global keys (the common case, decided by the
// first bits) and a mix with private, documentation, 6to4 and Teredo keys.
func BenchmarkIsNonGlobal(b *testing.B) {
	for _, bc := range []struct {
		name  string
		addrs []string
	}{
		{"global", []string{"45.1.2.3", "185.220.101.4", "8.8.8.8", "2a01:4f8::1", "2600::1", "91.1.1.1", "2a00:1450::1", "2c0f::1"}},
		{"mixed", []string{"45.1.2.3", "185.220.101.4", "10.1.2.3", "192.168.1.1", "100.64.1.1", "198.51.100.7",
			"2a01:4f8::1", "2001:db8::1", "2001:470::1", "2002:7f00:1::1", "2002:c000:204::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
			"8.8.8.8", "203.0.113.9", "3fff::1", "2600::1"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			keys := make([]key, len(bc.addrs))
			for i, a := range bc.addrs {
				keys[i], _ = keyOf(netip.MustParseAddr(a), 128)
			}
			b.ReportAllocs()
			n := 0
			for i := range b.N {
				if isNonGlobal(keys[i%len(keys)], 128) {
					n++
				}
			}
			_ = n
		})
	}
}
