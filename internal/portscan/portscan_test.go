package portscan

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
)

var base = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

const scanner = "45.155.205.7"

// pkt is a firewall log record: src hit router:port at offset at.
type pkt struct {
	at     time.Duration
	src    string
	router string
	port   uint16
	proto  string
}

func event(p pkt) *events.Event {
	src, router, proto := p.src, p.router, p.proto
	if src == "" {
		src = scanner
	}
	if router == "" {
		router = "89.24.1.1"
	}
	if proto == "" {
		proto = "TCP"
	}
	return &events.Event{Time: base.Add(p.at).UnixNano(), Type: events.FwlogsPacket, Addr: netip.MustParseAddr(src),
		Probe: 1, Source: events.FromMQTT,
		Details: &events.Details{Protocol: proto, Port: 40000, LocalPort: p.port, LocalAddr: netip.MustParseAddr(router)}}
}

// horizontal is a scan of port 23 over n routers, every apart.
func horizontal(start time.Duration, n int, every time.Duration) []pkt {
	var ps []pkt
	for i := range n {
		ps = append(ps, pkt{at: start + time.Duration(i)*every, router: fmt.Sprintf("89.24.%d.%d", i/200, i%200+1), port: 23})
	}
	return ps
}

// vertical is a scan of n ports of one router.
func vertical(start time.Duration, n int, every time.Duration) []pkt {
	var ps []pkt
	for i := range n {
		ps = append(ps, pkt{at: start + time.Duration(i)*every, port: uint16(1 + i)})
	}
	return ps
}

func repeat(p pkt, n int, every time.Duration) []pkt {
	var ps []pkt
	for i := range n {
		q := p
		q.at += time.Duration(i) * every
		ps = append(ps, q)
	}
	return ps
}

func cat(parts ...[]pkt) []pkt { return slices.Concat(parts...) }

func TestDetector(t *testing.T) {
	const (
		sec = time.Second
		min = time.Minute
	)
	tests := []struct {
		name string
		cfg  func(*Config)
		pkts []pkt
		want []string // "index:type" of every scan event returned
	}{
		{"a few packets are nothing", nil, vertical(0, 4, sec), nil},
		{"five targets are a small scan, once", nil, vertical(0, 24, sec), []string{"4:fwlogs_small_port_scan"}},
		{"twenty-five targets are a big scan, once", nil, vertical(0, 200, 100*time.Millisecond),
			[]string{"4:fwlogs_small_port_scan", "24:fwlogs_big_port_scan"}},
		{"a horizontal scan of one port counts too", nil, horizontal(0, 40, sec),
			[]string{"4:fwlogs_small_port_scan", "24:fwlogs_big_port_scan"}},
		{"the same target repeated counts once", nil, repeat(pkt{port: 23}, 500, 100*time.Millisecond), nil},
		{"a repeated target among others counts once", nil,
			cat(repeat(pkt{port: 22}, 10, sec), vertical(20*sec, 3, sec), repeat(pkt{at: 30 * sec, port: 22}, 10, sec)), nil},
		{"protocols are apart", nil, []pkt{{port: 53, proto: "TCP"}, {at: 1, port: 53, proto: "UDP"}, {at: 2, port: 53, proto: "ICMP"},
			{at: 3, port: 54}, {at: 4, port: 53, proto: "UDP"}, {at: 5, port: 55}}, []string{"5:fwlogs_small_port_scan"}},
		{"a slow scan spread beyond the window is nothing", nil, vertical(0, 100, 3*min), nil},
		{"a scan just within the window", nil, vertical(0, 5, 2*min+29*sec), []string{"4:fwlogs_small_port_scan"}}, // 9:56
		{"a scan just beyond the window", nil, vertical(0, 5, 2*min+31*sec), nil},                                  // 10:04
		{"a scan that goes on reports once per window", nil, vertical(0, 300, 5*sec), []string{
			"4:fwlogs_small_port_scan", "24:fwlogs_big_port_scan", // 0:20, 2:00
			"124:fwlogs_small_port_scan", "144:fwlogs_big_port_scan", // a window after each
			"244:fwlogs_small_port_scan", "264:fwlogs_big_port_scan",
		}},
		{"a source back after a quiet window starts over", nil, cat(vertical(0, 6, sec), vertical(30*min, 6, sec)),
			[]string{"4:fwlogs_small_port_scan", "10:fwlogs_small_port_scan"}},
		{"sources are apart", nil, cat(vertical(0, 3, sec), []pkt{{at: 4 * sec, src: "45.155.205.8", port: 4}, {at: 5 * sec, src: "45.155.205.8", port: 5}}), nil},
		{"IPv4-mapped sources are the same", nil, cat(vertical(0, 3, sec), []pkt{{at: 4 * sec, src: "::ffff:" + scanner, port: 4}, {at: 5 * sec, src: "::ffff:" + scanner, port: 5}}),
			[]string{"4:fwlogs_small_port_scan"}},
		{"IPv6 sources of one /64 add up when aggregated", func(c *Config) { c.IPv6Prefix = 64 }, []pkt{
			{src: "2a01:4f8:1:2::1", port: 1}, {at: 1, src: "2a01:4f8:1:2::2", port: 2}, {at: 2, src: "2a01:4f8:1:2::3", port: 3},
			{at: 3, src: "2a01:4f8:1:2:ffff::4", port: 4}, {at: 4, src: "2a01:4f8:1:2::5", port: 5}}, []string{"4:fwlogs_small_port_scan"}},
		{"IPv6 sources stay apart by default", nil, []pkt{
			{src: "2a01:4f8:1:2::1", port: 1}, {at: 1, src: "2a01:4f8:1:2::2", port: 2}, {at: 2, src: "2a01:4f8:1:2::3", port: 3},
			{at: 3, src: "2a01:4f8:1:2:ffff::4", port: 4}, {at: 4, src: "2a01:4f8:1:2::5", port: 5}}, nil},
		{"thresholds are configurable", func(c *Config) { c.Small, c.Big, c.Window = 2, 3, time.Minute }, vertical(0, 4, sec),
			[]string{"1:fwlogs_small_port_scan", "2:fwlogs_big_port_scan"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			d := New(cfg)
			var got []string
			for i, p := range tc.pkts {
				if typ, ok := d.Observe(event(p)); ok {
					got = append(got, fmt.Sprintf("%d:%s", i, typ))
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			for _, s := range d.srcs {
				if len(s.targets) > d.cfg.Big {
					t.Errorf("%d targets kept", len(s.targets))
				}
			}
		})
	}
}

func TestIgnored(t *testing.T) {
	d := New(DefaultConfig())
	e := event(pkt{port: 1})
	e.Type = events.TelnetConnect
	if _, ok := d.Observe(e); ok || d.Len() != 0 {
		t.Error("a connect counted")
	}
	e = event(pkt{port: 1})
	e.Details = nil
	if _, ok := d.Observe(e); ok || d.Len() != 0 {
		t.Error("a packet without details counted")
	}
	e = event(pkt{port: 1})
	e.Addr = netip.Addr{}
	if _, ok := d.Observe(e); ok || d.Len() != 0 {
		t.Error("a packet without a source counted")
	}
	if st := d.Stats(); st.Ignored != 3 || st.Packets != 0 {
		t.Errorf("%+v", st)
	}
}

// TestMemoryBound floods the detector with sources: it keeps MaxSources,
// counts the rest as evicted, and forgets everything after a window.
func TestMemoryBound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSources = 1000
	d := New(cfg)
	for i := range 50_000 {
		src := netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)}).String()
		for j := range 3 {
			d.Observe(event(pkt{at: time.Duration(i) * time.Millisecond, src: src, port: uint16(j)}))
		}
		if d.Len() > cfg.MaxSources {
			t.Fatalf("%d sources", d.Len())
		}
	}
	st := d.Stats()
	if st.Sources != 1000 || st.Evicted != 49_000 || len(d.index) != 1000 {
		t.Errorf("%+v, index %d", st, len(d.index))
	}
	d.checkList(t)
	// The most recent sources are the ones kept.
	if _, ok := d.index[skey{lo: 0xffff<<32 | uint64(100)<<24 | 49_999}]; !ok {
		t.Error("the newest source was dropped")
	}
	if n := d.Expire(base.Add(50*time.Second + 10*time.Minute).UnixNano()); n != 1000 || d.Len() != 0 {
		t.Errorf("expired %d, %d left", n, d.Len())
	}
	d.checkList(t)
}

// TestAmortisedExpiry checks that sources go even if Expire is never
// called, as long as packets come.
func TestAmortisedExpiry(t *testing.T) {
	d := New(DefaultConfig())
	for i := range 10_000 {
		src := netip.AddrFrom4([4]byte{100, 1, byte(i >> 8), byte(i)}).String()
		d.Observe(event(pkt{at: time.Duration(i) * time.Second, src: src, port: 1}))
	}
	// One new source a second, each quiet after its packet: about a
	// window's worth stay.
	if n := d.Len(); n > 601 {
		t.Errorf("%d sources kept", n)
	}
	d.checkList(t)
}

// checkList verifies the recency list and the index against the table.
func (d *Detector) checkList(t *testing.T) {
	t.Helper()
	seen := 0
	prev := int32(-1)
	for i := d.head; i >= 0; i = d.srcs[i].next {
		if d.srcs[i].prev != prev {
			t.Fatalf("source %d: prev %d, want %d", i, d.srcs[i].prev, prev)
		}
		if j, ok := d.index[d.srcs[i].k]; !ok || j != i {
			t.Fatalf("source %d indexed at %d", i, j)
		}
		if tg := d.srcs[i].targets; len(tg) > d.cfg.Big || !slices.IsSortedFunc(tg, func(a, b target) int { return int(a.t - b.t) }) {
			t.Fatalf("source %d: targets %v", i, tg)
		}
		prev = i
		seen++
	}
	if prev != d.tail || seen != len(d.srcs) || len(d.index) != len(d.srcs) {
		t.Fatalf("list of %d ends at %d (tail %d), %d sources, index %d", seen, prev, d.tail, len(d.srcs), len(d.index))
	}
}

// TestRandomChurn mixes sources, targets and time jumps, and checks the
// structure after each step.
func TestRandomChurn(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSources = 50
	d := New(cfg)
	var at time.Duration
	x := uint32(1)
	next := func() uint32 { x ^= x << 13; x ^= x >> 17; x ^= x << 5; return x }
	for i := range 20_000 {
		at += time.Duration(next()%2000) * time.Millisecond
		src := netip.AddrFrom4([4]byte{100, 2, 0, byte(next() % 80)}).String()
		late := time.Duration(next()%4) * time.Duration(next()%3000) * time.Millisecond // some packets come late
		d.Observe(event(pkt{at: at - late, src: src, port: uint16(next() % 40)}))
		if i%7 == 0 {
			d.Expire(base.Add(at).UnixNano())
		}
		if i%100 == 0 {
			d.checkList(t)
		}
	}
	d.checkList(t)
}

// TestLatePackets checks that packets a little out of order count as if
// they had come in order.
func TestLatePackets(t *testing.T) {
	ps := vertical(0, 5, 2*time.Minute)
	ps[3], ps[4] = ps[4], ps[3]
	ps = append(ps, pkt{at: 30 * time.Second, port: 1}) // an old target seen again, late
	d := New(DefaultConfig())
	var got []int
	for i, p := range ps {
		if _, ok := d.Observe(event(p)); ok {
			got = append(got, i)
		}
	}
	if !slices.Equal(got, []int{4}) {
		t.Errorf("scan events at %v", got)
	}
	tg := d.srcs[0].targets
	// Port 1 moved from 0:00 to 0:30; ports 4 and 5 in time order.
	var at []time.Duration
	for _, x := range tg {
		at = append(at, time.Duration(x.t-base.UnixNano()))
	}
	if want := []time.Duration{30 * time.Second, 2 * time.Minute, 4 * time.Minute, 6 * time.Minute, 8 * time.Minute}; !slices.Equal(at, want) {
		t.Errorf("target times %v, want %v", at, want)
	}
	d.checkList(t)
}

func TestDefaults(t *testing.T) {
	d := New(Config{Small: 30, Big: 10, IPv6Prefix: 200})
	if c := d.Config(); c.Window != 10*time.Minute || c.Small != 5 || c.Big != 10 || c.MaxSources != 250_000 || c.IPv6Prefix != 0 {
		t.Errorf("%+v", c)
	}
}

func BenchmarkObserveKnownSource(b *testing.B) {
	d := New(DefaultConfig())
	evs := make([]events.Event, 64)
	for i := range evs {
		evs[i] = *event(pkt{at: time.Duration(i) * time.Millisecond, port: uint16(i % 40)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		e := &evs[i%len(evs)]
		e.Time += int64(time.Millisecond)
		d.Observe(e)
	}
}

// BenchmarkObserveSources is a scan of the whole probe network by 10k
// sources at once: every packet is from another source.
func BenchmarkObserveSources(b *testing.B) {
	d := New(DefaultConfig())
	evs := make([]events.Event, 1<<16)
	for i := range evs {
		src := netip.AddrFrom4([4]byte{45, 1, byte(i % 10000 >> 8), byte(i % 10000)})
		evs[i] = events.Event{Type: events.FwlogsPacket, Addr: src,
			Details: &events.Details{Protocol: "TCP", LocalPort: uint16(i % 7), LocalAddr: netip.AddrFrom4([4]byte{89, 24, byte(i >> 8), byte(i)})}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		e := &evs[i&(len(evs)-1)]
		e.Time = base.UnixNano() + int64(i)*int64(time.Microsecond)
		d.Observe(e)
	}
}

// BenchmarkObserveNewSources is a flood of spoofed sources against the
// MaxSources bound: every packet evicts one.
func BenchmarkObserveNewSources(b *testing.B) {
	cfg := DefaultConfig()
	cfg.MaxSources = 100_000
	d := New(cfg)
	e := event(pkt{port: 23})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		e.Addr = netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
		e.Time = base.UnixNano() + int64(i)
		d.Observe(e)
	}
}
