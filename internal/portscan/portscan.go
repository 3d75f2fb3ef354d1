// Package portscan detects port scans on the server from routers' firewall
// logs.
//
// Routers running sentinel-fwlogs send one record per dropped packet
// (events.FwlogsPacket, with Details.LocalAddr, LocalPort and Protocol);
// the scan detection itself is left to the server. Packets enter through
// Observe, one at a time, at their Time. For each source address the
// detector counts the distinct targets (local address, local port and
// protocol) it hit within a sliding Window, across all probes, so that a
// horizontal scan of port 23 over many routers and a vertical scan of many
// ports of one router both count. When the count reaches Small, Observe
// returns events.FwlogsSmallPortScan; when it reaches Big,
// events.FwlogsBigPortScan. Each is returned at most once per Window per
// source: a scan that goes on yields one pair of events per window, not a
// flood. The caller builds the event (Source events.FromDetector) and
// hands it to scoring and the publisher.
//
// Memory is bounded: a source keeps at most Big targets (the newest), a
// source silent for a Window is dropped (by Expire, and a little at every
// Observe), and at most MaxSources are tracked; beyond that the least
// recently seen is dropped and counted, which is what a flood of spoofed
// sources costs. The detector reads no clock, so replays are exact, and
// is not safe for concurrent use.
package portscan

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"

	"github.com/dynfw/sentinel/internal/events"
)

// Config sets the detector. New replaces zero fields by the defaults.
type Config struct {
	// Window is the sliding window over which targets are counted, and the
	// shortest time between two scan events of one kind for a source.
	Window time.Duration
	// Small and Big are the numbers of distinct targets within Window at
	// which a small and a big scan are reported. 0 < Small <= Big.
	Small, Big int
	// MaxSources bounds the sources tracked at once.
	MaxSources int
	// IPv6Prefix, between 1 and 127, counts IPv6 sources by their prefix,
	// so a scanner cannot spread its probes over its /64. 0 counts single
	// addresses.
	IPv6Prefix int
}

// DefaultConfig returns the defaults:
//
//   - Window 10 min: scanners of the Internet sweep a port across a network
//     of routers in minutes; a longer window mostly catches coincidences
//     between unrelated background packets.
//   - Small 5 targets: stray packets (a misconfigured peer, a retried
//     connection, backscatter) rarely hit five distinct ports or routers in
//     ten minutes; a scanner does at once.
//   - Big 25 targets: a systematic sweep, not a probe of a few services.
//   - MaxSources 250,000: a few minutes' worth of the distinct sources a
//     large probe network logs; about 30 MB typically (most sources hit
//     one target), 150 MB if every one of them were a big scanner.
//   - IPv6Prefix 0, as the scorer's default.
func DefaultConfig() Config {
	return Config{Window: 10 * time.Minute, Small: 5, Big: 25, MaxSources: 250_000}
}

func (c Config) normalise() Config {
	d := DefaultConfig()
	if c.Window <= 0 {
		c.Window = d.Window
	}
	if c.Big <= 0 {
		c.Big = d.Big
	}
	if c.Small <= 0 || c.Small > c.Big {
		c.Small = min(d.Small, c.Big)
	}
	if c.MaxSources <= 0 {
		c.MaxSources = d.MaxSources
	}
	if c.IPv6Prefix <= 0 || c.IPv6Prefix >= 128 {
		c.IPv6Prefix = 0
	}
	return c
}

// skey is a source address, IPv4 ones IPv4-mapped, without pointers so that
// the index costs the garbage collector nothing.
type skey struct{ hi, lo uint64 }

// target is one (local address, port, protocol) as a 64-bit hash, and when
// the source last hit it. Two targets of one source colliding in 64 bits
// would merely undercount a scan.
type target struct {
	h uint64
	t int64
}

// source is the state of one source address.
type source struct {
	k          skey
	last       int64 // latest packet
	small, big int64 // when the latest scan events were returned
	flags      uint8
	prev, next int32    // least recently seen order; -1 ends
	targets    []target // at most Big, oldest first
}

const (
	hasSmall = 1 << iota
	hasBig
)

// Stats are counters for metrics.
type Stats struct {
	Sources int    `json:"sources"` // tracked now
	Packets uint64 `json:"packets"` // observed
	Ignored uint64 `json:"ignored"` // not packets, or without an address
	Small   uint64 `json:"small"`   // small scans reported
	Big     uint64 `json:"big"`     // big scans reported
	Expired uint64 `json:"expired"` // sources dropped after a quiet window
	Evicted uint64 `json:"evicted"` // sources dropped for MaxSources
}

// Detector counts distinct targets per source over a sliding window.
type Detector struct {
	cfg        Config
	window     int64
	index      map[skey]int32
	srcs       []source
	head, tail int32 // least and most recently seen
	free       [][]target
	stats      Stats
}

// maxFree bounds the pool of target slices kept for new sources.
const maxFree = 4096

// New returns an empty detector.
func New(cfg Config) *Detector {
	cfg = cfg.normalise()
	return &Detector{cfg: cfg, window: int64(cfg.Window), index: map[skey]int32{}, head: -1, tail: -1}
}

// Config returns the configuration in effect, defaults filled in.
func (d *Detector) Config() Config { return d.cfg }

func (d *Detector) key(a netip.Addr) (skey, bool) {
	if !a.IsValid() {
		return skey{}, false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return skey{lo: 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))}, true
	}
	b := a.As16()
	k := skey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
	switch n := d.cfg.IPv6Prefix; {
	case n == 0:
	case n > 64:
		k.lo &= ^uint64(0) << (128 - n)
	default:
		k.hi &= ^uint64(0) << (64 - n)
		k.lo = 0
	}
	return k, true
}

// targetOf hashes where a packet went. The protocol is part of the
// target: TCP and UDP port 53 are two services to a scanner.
func targetOf(dt *events.Details) uint64 {
	var hi, lo uint64
	if a := dt.LocalAddr.Unmap(); a.IsValid() {
		b := a.As16()
		hi, lo = binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	}
	var p uint64
	for i := 0; i < len(dt.Protocol) && i < 8; i++ {
		p = p<<8 | uint64(dt.Protocol[i])
	}
	// Two rounds of multiply-and-fold (wyhash's mixer) with fixed odd
	// constants: targets are only compared within a source, never used
	// as hash-table keys, so they need no secret seed.
	h1, l1 := bits.Mul64(hi^0xa0761d6478bd642f, lo^0xe7037ed1a0b428db)
	h2, l2 := bits.Mul64(h1^l1^uint64(dt.LocalPort), p^0x8ebc6af09c88c6e3)
	return h2 ^ l2
}

// Observe counts one firewall log record and returns the scan event it
// completes, if any. Anything but an events.FwlogsPacket with Details and
// a source address is ignored.
func (d *Detector) Observe(e *events.Event) (events.Type, bool) {
	if e.Type != events.FwlogsPacket || e.Details == nil {
		d.stats.Ignored++
		return events.Invalid, false
	}
	k, ok := d.key(e.Addr)
	if !ok {
		d.stats.Ignored++
		return events.Invalid, false
	}
	d.stats.Packets++
	t := e.Time
	// Amortised cleanup: each packet retires up to two quiet sources, so
	// memory follows the traffic even if Expire is never called.
	for range 2 {
		if d.head < 0 || d.srcs[d.head].last > t-d.window || d.srcs[d.head].k == k {
			break
		}
		d.remove(d.head)
		d.stats.Expired++
	}
	i, ok := d.index[k]
	if ok {
		d.touch(i)
	} else {
		i = d.add(k, t)
	}
	s := &d.srcs[i]
	s.last = max(s.last, t)
	s.targets = d.hit(s.targets, targetOf(e.Details), t)
	n := len(s.targets)
	if n >= d.cfg.Small && (s.flags&hasSmall == 0 || t-s.small >= d.window) {
		s.flags |= hasSmall
		s.small = t
		d.stats.Small++
		return events.FwlogsSmallPortScan, true
	}
	if n >= d.cfg.Big && (s.flags&hasBig == 0 || t-s.big >= d.window) {
		s.flags |= hasBig
		s.big = t
		d.stats.Big++
		return events.FwlogsBigPortScan, true
	}
	return events.Invalid, false
}

// hit records that a source hit target h at t, in targets kept oldest
// first: what left the window is then a prefix, and the target to drop
// when Big are kept is the first.
func (d *Detector) hit(tg []target, h uint64, t int64) []target {
	cut := t - d.window
	if len(tg) > 0 && tg[0].t <= cut {
		j := 1
		for j < len(tg) && tg[j].t <= cut {
			j++
		}
		tg = tg[:copy(tg, tg[j:])]
	}
	for j := range tg {
		if tg[j].h == h {
			if t <= tg[j].t {
				return tg // a late packet: nothing new
			}
			tg = append(tg[:j], tg[j+1:]...)
			break
		}
	}
	switch {
	case len(tg) == d.cfg.Big:
		// Full: the newest Big targets are all that matter to a count
		// that stops at Big.
		tg = tg[:copy(tg, tg[1:])]
	case len(tg) == cap(tg):
		// Grow by hand to stop at Big, not at the next power of two.
		n := make([]target, len(tg), min(max(2*cap(tg), 4), d.cfg.Big))
		copy(n, tg)
		tg = n
	}
	// Insert in time order; packets come nearly sorted, so this is
	// almost always an append.
	j := len(tg)
	tg = append(tg, target{})
	for j > 0 && tg[j-1].t > t {
		tg[j] = tg[j-1]
		j--
	}
	tg[j] = target{h, t}
	return tg
}

// Expire drops every source that has sent nothing within the window
// before now (Unix nanoseconds) and returns how many. Observe also drops
// a few as it goes; call Expire from the server's tick to bound memory
// when packets stop.
func (d *Detector) Expire(now int64) int {
	n := 0
	for d.head >= 0 && d.srcs[d.head].last <= now-d.window {
		d.remove(d.head)
		n++
	}
	d.stats.Expired += uint64(n)
	return n
}

// Len returns the number of sources tracked.
func (d *Detector) Len() int { return len(d.srcs) }

// Stats returns the counters.
func (d *Detector) Stats() Stats {
	st := d.stats
	st.Sources = len(d.srcs)
	return st
}

// add tracks a new source as the most recently seen, dropping the least
// recently seen one first when the detector is full.
func (d *Detector) add(k skey, t int64) int32 {
	if len(d.srcs) >= d.cfg.MaxSources {
		d.remove(d.head)
		d.stats.Evicted++
	}
	var tg []target
	if n := len(d.free); n > 0 {
		tg, d.free = d.free[n-1], d.free[:n-1]
	}
	i := int32(len(d.srcs))
	d.srcs = append(d.srcs, source{k: k, last: t, prev: d.tail, next: -1, targets: tg})
	if d.tail >= 0 {
		d.srcs[d.tail].next = i
	} else {
		d.head = i
	}
	d.tail = i
	d.index[k] = i
	return i
}

// unlink takes source i out of the recency list.
func (d *Detector) unlink(i int32) {
	s := &d.srcs[i]
	if s.prev >= 0 {
		d.srcs[s.prev].next = s.next
	} else {
		d.head = s.next
	}
	if s.next >= 0 {
		d.srcs[s.next].prev = s.prev
	} else {
		d.tail = s.prev
	}
}

// touch makes source i the most recently seen.
func (d *Detector) touch(i int32) {
	if d.tail == i {
		return
	}
	d.unlink(i)
	s := &d.srcs[i]
	s.prev, s.next = d.tail, -1
	d.srcs[d.tail].next = i
	d.tail = i
}

// remove forgets source i, moving the last source into its place.
func (d *Detector) remove(i int32) {
	d.unlink(i)
	s := &d.srcs[i]
	delete(d.index, s.k)
	if len(d.free) < maxFree && s.targets != nil {
		d.free = append(d.free, s.targets[:0])
	}
	last := int32(len(d.srcs) - 1)
	if i != last {
		m := d.srcs[last]
		d.srcs[i] = m
		if m.prev >= 0 {
			d.srcs[m.prev].next = i
		} else {
			d.head = i
		}
		if m.next >= 0 {
			d.srcs[m.next].prev = i
		} else {
			d.tail = i
		}
		d.index[m.k] = i
	}
	d.srcs[last] = source{}
	d.srcs = d.srcs[:last]
}
