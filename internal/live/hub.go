// Package live serves the DynFW live page at /dynfw/: the current state of a
// DynFW list (status, version, serial, size), the latest events and deltas,
// and event counts per country, pushed to browsers as they happen.
//
// The reference page (Sentinel View's /dynfw/ with its dynfw-backend bridge)
// forwarded every message, including every dynfw/list of about 10,000
// addresses every few seconds, to every browser over a WebSocket, and each
// browser rebuilt its DOM and counted events itself. Here the state lives on
// the server in a Hub, fed by one DynFW subscription with the router
// client's serial rules (internal/subscription). A browser receives one small
// snapshot when it connects and then only the changes, over Server-Sent
// Events; the list itself is available on request as text, never pushed.
//
// Fan-out is a shared ring of pre-encoded frames: publishing a change costs
// one encoding and one slot whatever the number of browsers, each browser
// reads the ring at its own pace, and a browser that falls more than the ring
// behind, or whose connection stops accepting data, is disconnected (it
// reconnects and gets a fresh snapshot) without ever holding up the others.
package live

import (
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/geoip"
)

// Countries finds the ISO 3166-1 alpha-2 country code of an address, or ""
// when it is unknown. geoip.DB (and so geoip.Default()) satisfies it.
type Countries interface {
	Country(netip.Addr) string
}

// Page is what the Layout hook receives: the page title, the elements that
// belong in <head> (the stylesheet and the deferred script), and the body.
type Page struct {
	Title string
	Head  template.HTML
	Body  template.HTML
}

// Options configure a Hub. Zero fields take the documented defaults.
type Options struct {
	Logger *slog.Logger
	// Countries maps event and delta addresses to countries. Default: the
	// table embedded in the binary, geoip.Default().
	Countries Countries
	// Attribution is shown under the page as text (the licence notice of
	// the country data). When Countries is nil it defaults to
	// geoip.Attribution, which the embedded data requires.
	Attribution string
	// MaxClients bounds the concurrent event streams (default 5000);
	// MaxPerAddr bounds them per client address (default 32: a few tabs
	// of several people behind one NAT).
	MaxClients int
	MaxPerAddr int
	// ClientAddr returns the key the per-address limit counts by. Default:
	// the TCP peer's address, an IPv6 address reduced to its /64 (one
	// subscriber usually holds a whole /64). Behind a reverse proxy, pass a
	// function that reads the address the proxy forwards.
	ClientAddr func(*http.Request) string
	// Backlog is the number of frames the ring keeps (default 4096): a
	// browser further behind than that is disconnected.
	Backlog int
	// WriteTimeout disconnects a browser whose connection accepts no data
	// for this long (default 10 s); it also overrides the server's own
	// write timeout for event streams.
	WriteTimeout time.Duration
	// Heartbeat is the interval of keep-alive comments on an otherwise idle
	// stream (default 15 s), so that proxies do not close it.
	Heartbeat time.Duration
	// FlushInterval is the shortest time between two writes to one
	// browser (default 25 ms): under a burst a browser gets one write per
	// interval carrying everything new instead of one per frame, which
	// divides the wake-ups and system calls on both sides by the burst
	// size for at most this much added delay. Negative disables it.
	FlushInterval time.Duration
	// CountryInterval batches the per-country counters into one frame at
	// most this often (default 500 ms).
	CountryInterval time.Duration
	// Retry is the reconnection delay announced to browsers (default 2 s;
	// each browser gets up to twice as much, at random, so that a restart
	// does not bring them all back at the same instant).
	Retry time.Duration
	// MapSVG, when set, renders a world map coloured by event counts per
	// country; the page's script re-colours its elements that carry a
	// data-cc attribute (an upper-case country code). Without it the page
	// shows only the country table.
	MapSVG func(counts map[string]int64) template.HTML
	// Layout, when set, writes the page wrapped in the site's layout.
	// Default: a standalone HTML page.
	Layout func(w http.ResponseWriter, r *http.Request, p Page)
	// Now is the clock, for tests.
	Now func() time.Time
}

// Limits of the state the Hub keeps, so that a hostile or broken publisher
// cannot make it grow without bound.
const (
	// Recent is the number of events and of deltas kept and shown.
	Recent = 30
	// maxNameLen cuts event names (they are shown and counted).
	maxNameLen = 64
	// maxKeys bounds the per-country and per-type counters; further keys
	// are counted under "other".
	maxKeys = 512
)

// State names, as shown on the page and in Status.State.
const (
	StateDisconnected = "disconnected"
	StateSyncing      = "syncing"
	StateConnected    = "connected"
)

// Event is one dynfw/event as the page shows it. Times are Unix
// milliseconds of receipt, which order events exactly even when the
// publisher's second-resolution timestamps are equal.
type Event struct {
	Time int64  `json:"t"`
	Name string `json:"event"`
	IP   string `json:"ip"`
	CC   string `json:"cc"`
}

// Delta is one applied dynfw/delta: Op is "+" (added to the list) or "-";
// Size is the size of the list after it.
type Delta struct {
	Time   int64  `json:"t"`
	Op     string `json:"op"`
	IP     string `json:"ip"`
	CC     string `json:"cc"`
	Serial uint64 `json:"serial"`
	Size   int    `json:"size"`
}

// Status is the state of the subscription and of the list.
type Status struct {
	State       string `json:"state"` // StateConnected, StateSyncing or StateDisconnected
	Version     uint64 `json:"version"`
	Serial      uint64 `json:"serial"`
	Size        int    `json:"size"`
	LastMessage int64  `json:"last"`  // Unix ms of the last message received; 0 if none
	Since       int64  `json:"since"` // Unix ms when the hub started counting
	Resyncs     uint64 `json:"resyncs"`
}

// Counts are the event counters since the hub started. Countries and Types
// are complete in a snapshot and hold only the changed entries (with their
// new totals) in a "countries" update.
type Counts struct {
	Total     int64             `json:"total"`
	Unknown   int64             `json:"unknown"` // events whose country is unknown
	Countries map[string]int64  `json:"countries"`
	Types     map[string]int64  `json:"types"`
	Names     map[string]string `json:"names,omitempty"` // country names for the codes above
}

// Snapshot is the whole state a browser needs when it connects (everything
// but the list itself).
type Snapshot struct {
	Status Status  `json:"status"`
	Events []Event `json:"events"` // newest first
	Deltas []Delta `json:"deltas"` // newest first
	Counts
}

// Hub keeps the live state and streams its changes to browsers. Create it
// with New, feed it with Follow (or the Apply methods), mount it with
// Register, and Close it on shutdown.
type Hub struct {
	o   Options
	log *slog.Logger

	mu        sync.Mutex
	list      map[netip.Prefix]struct{}
	listGen   uint64 // changes whenever the list does
	status    Status
	events    [Recent]Event // ring, newest at events[(evNext-1)%Recent]
	evNext    int
	evLen     int
	deltas    [Recent]Delta
	dNext     int
	dLen      int
	counts    Counts
	dirtyCC   map[string]struct{}
	dirtyType map[string]struct{}
	newNames  map[string]string
	lastFrame time.Time // when the last frame (of any kind) was published
	lastStat  int64     // LastMessage at the last status frame
	snapCache []byte    // the snapshot frame, valid while the ring head is snapHead
	snapHead  uint64
	snapOK    bool
	listCache []byte // list.txt, valid while listGen is listCacheGen
	listCGen  uint64
	listCOK   bool

	ring ring

	clients  atomic.Int64
	perAddr  map[string]int // under mu
	closed   chan struct{}
	closeOne sync.Once
	done     chan struct{}

	// Counters for tests and metrics.
	dropsSlow  atomic.Uint64 // browsers cut off for lagging or stalling
	rejected   atomic.Uint64 // streams refused by the limits
	staticETag string
}

// New returns a Hub with an empty state and starts its timer goroutine
// (country batches and heartbeats); Close stops it.
func New(o Options) *Hub {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Countries == nil {
		o.Countries = geoip.Default()
		if o.Attribution == "" {
			o.Attribution = geoip.Attribution
		}
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 5000
	}
	if o.MaxPerAddr <= 0 {
		o.MaxPerAddr = 32
	}
	if o.ClientAddr == nil {
		o.ClientAddr = peerKey
	}
	if o.Backlog <= 0 {
		o.Backlog = 4096
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 25 * time.Millisecond
	}
	if o.CountryInterval <= 0 {
		o.CountryInterval = 500 * time.Millisecond
	}
	if o.Retry <= 0 {
		o.Retry = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	now := o.Now()
	h := &Hub{
		o: o, log: o.Logger,
		list:      map[netip.Prefix]struct{}{},
		status:    Status{State: StateDisconnected, Since: now.UnixMilli()},
		counts:    Counts{Countries: map[string]int64{}, Types: map[string]int64{}},
		dirtyCC:   map[string]struct{}{},
		dirtyType: map[string]struct{}{},
		newNames:  map[string]string{},
		perAddr:   map[string]int{},
		closed:    make(chan struct{}),
		done:      make(chan struct{}),
		lastFrame: now,
	}
	h.ring.init(o.Backlog)
	h.staticETag = staticVersion()
	go h.timers()
	return h
}

// Close disconnects every browser and stops the timers. Register it with
// http.Server.RegisterOnShutdown: event streams never end by themselves, so
// Shutdown would otherwise wait for them until its context expires.
func (h *Hub) Close() {
	h.closeOne.Do(func() { close(h.closed) })
	<-h.done
}

func (h *Hub) timers() {
	defer close(h.done)
	batch := time.NewTicker(h.o.CountryInterval)
	defer batch.Stop()
	for {
		select {
		case <-h.closed:
			return
		case <-batch.C:
			h.tick(h.o.Now())
		}
	}
}

// tick publishes the batched counters, a periodic status while messages keep
// arriving (so "updated" stays current without a frame per message), and a
// heartbeat on an idle ring.
func (h *Hub) tick(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.dirtyCC) > 0 || len(h.dirtyType) > 0 {
		c := Counts{Total: h.counts.Total, Unknown: h.counts.Unknown,
			Countries: make(map[string]int64, len(h.dirtyCC)), Types: make(map[string]int64, len(h.dirtyType))}
		for k := range h.dirtyCC {
			c.Countries[k] = h.counts.Countries[k]
		}
		for k := range h.dirtyType {
			c.Types[k] = h.counts.Types[k]
		}
		if len(h.newNames) > 0 {
			c.Names = h.newNames
			h.newNames = map[string]string{}
		}
		clear(h.dirtyCC)
		clear(h.dirtyType)
		h.publishLocked(now, "countries", c)
	}
	if h.status.LastMessage != h.lastStat && now.Sub(time.UnixMilli(h.lastStat)) >= 5*time.Second {
		h.publishStatusLocked(now)
	}
	if now.Sub(h.lastFrame) >= h.o.Heartbeat {
		h.ring.push(heartbeat)
		h.lastFrame = now
	}
}

var heartbeat = []byte(": keep-alive\n\n")

// publishLocked encodes v as one SSE frame of the given event type and puts
// it on the ring. The frame carries the ring sequence as its id, so that a
// reconnecting browser sends Last-Event-ID (answered with a fresh snapshot).
func (h *Hub) publishLocked(now time.Time, event string, v any) {
	data, err := json.Marshal(v)
	if err != nil { // only plain structs and maps are encoded
		h.log.Error("live: encoding frame", "event", event, "err", err)
		return
	}
	seq := h.ring.head.Load()
	b := make([]byte, 0, len(data)+len(event)+40)
	b = appendFrame(b, seq, event, data)
	h.ring.push(b)
	h.lastFrame = now
}

func (h *Hub) publishStatusLocked(now time.Time) {
	h.lastStat = h.status.LastMessage
	h.publishLocked(now, "status", h.status)
}

func appendFrame(b []byte, id uint64, event string, data []byte) []byte {
	b = append(b, "id: "...)
	b = appendUint(b, id)
	b = append(b, "\nevent: "...)
	b = append(b, event...)
	b = append(b, "\ndata: "...)
	b = append(b, data...) // JSON from encoding/json has no raw newlines
	return append(b, "\n\n"...)
}

func appendUint(b []byte, v uint64) []byte {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, buf[i:]...)
}

// country returns a's country code, "" when unknown.
func (h *Hub) country(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return h.o.Countries.Country(a)
}

// cleanName makes an event name safe to keep and count: valid UTF-8, no
// control characters, at most maxNameLen bytes. (Escaping for HTML is the
// template's and the script's business; this only bounds what is stored.)
func cleanName(s string) string {
	if len(s) > maxNameLen {
		s = s[:maxNameLen]
	}
	ok := utf8.ValidString(s)
	for i := 0; ok && i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			ok = false
		}
	}
	if ok {
		return s
	}
	b := make([]rune, 0, len(s))
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f {
			r = '?'
		}
		b = append(b, r)
	}
	s = string(b)
	for len(s) > maxNameLen {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// count adds one to m[key], folding new keys into "other" once m is full.
func count(m map[string]int64, key string) string {
	if _, ok := m[key]; !ok && len(m) >= maxKeys-1 { // one left for "other"
		key = "other"
	}
	m[key]++
	return key
}

// touch records that a message arrived.
func (h *Hub) touchLocked(now time.Time) { h.status.LastMessage = now.UnixMilli() }

// ApplyEvent records a dynfw/event: it joins the latest events, its country
// and type are counted, and browsers receive it at once (the counters follow
// in the next batch).
func (h *Hub) ApplyEvent(e dynfw.Event) {
	now := h.o.Now()
	ev := Event{Time: now.UnixMilli(), Name: cleanName(e.Name), CC: h.country(e.Addr)}
	if e.Addr.IsValid() {
		ev.IP = e.Addr.Unmap().WithZone("").String()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.touchLocked(now)
	h.events[h.evNext] = ev
	h.evNext = (h.evNext + 1) % Recent
	h.evLen = min(h.evLen+1, Recent)
	h.counts.Total++
	if ev.CC == "" {
		h.counts.Unknown++
	} else {
		if _, seen := h.counts.Countries[ev.CC]; !seen {
			h.newNames[ev.CC] = geoip.Name(ev.CC)
		}
		h.dirtyCC[count(h.counts.Countries, ev.CC)] = struct{}{}
	}
	h.dirtyType[count(h.counts.Types, ev.Name)] = struct{}{}
	h.publishLocked(now, "event", ev)
}

// ApplyDelta applies a dynfw/delta to the list and streams it. The serial
// rules (order, gaps, resyncs) are the caller's: Follow applies only what
// the client state machine accepts.
func (h *Hub) ApplyDelta(d dynfw.Delta) {
	now := h.o.Now()
	dl := Delta{Time: now.UnixMilli(), IP: dynfw.FormatAddr(d.Addr), Serial: d.Serial, CC: h.country(d.Addr.Addr())}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.touchLocked(now)
	h.status.Serial = d.Serial
	switch d.Op {
	case dynfw.Positive:
		dl.Op = "+"
		h.list[d.Addr] = struct{}{}
	case dynfw.Negative:
		dl.Op = "-"
		delete(h.list, d.Addr)
	default:
		return
	}
	h.listGen++
	h.status.Size = len(h.list)
	dl.Size = h.status.Size
	h.deltas[h.dNext] = dl
	h.dNext = (h.dNext + 1) % Recent
	h.dLen = min(h.dLen+1, Recent)
	h.publishLocked(now, "delta", dl)
}

// advanceSerial records a delta whose address was unusable: the serial
// moves on, the list does not change.
func (h *Hub) advanceSerial(serial uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.touchLocked(h.o.Now())
	h.status.Serial = serial
}

// ApplyList replaces the list (a dynfw/list, or a resync). Browsers receive
// only a status frame with the new version, serial and size.
func (h *Hub) ApplyList(version, serial uint64, addrs []netip.Prefix) {
	now := h.o.Now()
	list := make(map[netip.Prefix]struct{}, len(addrs))
	for _, p := range addrs {
		list[p] = struct{}{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.touchLocked(now)
	h.list = list
	h.listGen++
	h.status.Version, h.status.Serial, h.status.Size = version, serial, len(list)
	h.publishStatusLocked(now)
}

// touch records a message that changes nothing visible by itself (a list
// the state machine does not need, a malformed message).
func (h *Hub) touch() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.touchLocked(h.o.Now())
}

// SetState sets the connection state shown on the page (one of the State
// constants) and the number of resyncs so far; browsers receive a status
// frame when either changed.
func (h *Hub) SetState(state string, resyncs uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.status.State == state && h.status.Resyncs == resyncs {
		return
	}
	h.status.State, h.status.Resyncs = state, resyncs
	h.publishStatusLocked(h.o.Now())
}

// Snapshot returns the current state (everything but the list).
func (h *Hub) Snapshot() Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snapshotLocked()
}

func (h *Hub) snapshotLocked() Snapshot {
	s := Snapshot{Status: h.status, Events: make([]Event, 0, h.evLen), Deltas: make([]Delta, 0, h.dLen)}
	for i := 1; i <= h.evLen; i++ {
		s.Events = append(s.Events, h.events[(h.evNext-i+Recent)%Recent])
	}
	for i := 1; i <= h.dLen; i++ {
		s.Deltas = append(s.Deltas, h.deltas[(h.dNext-i+Recent)%Recent])
	}
	s.Counts = Counts{Total: h.counts.Total, Unknown: h.counts.Unknown,
		Countries: maps(h.counts.Countries), Types: maps(h.counts.Types), Names: map[string]string{}}
	for cc := range h.counts.Countries {
		if n := geoip.Name(cc); n != "" {
			s.Names[cc] = n
		}
	}
	return s
}

func maps(m map[string]int64) map[string]int64 {
	c := make(map[string]int64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// snapshotFrame returns the snapshot as an SSE frame and the ring position
// it is consistent with: the browser continues from there. The encoding is
// shared by every browser that connects before the next change, which keeps
// a reconnection storm (after a restart) cheap.
func (h *Hub) snapshotFrame() ([]byte, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	head := h.ring.head.Load()
	if h.snapOK && h.snapHead == head {
		return h.snapCache, head
	}
	data, err := json.Marshal(h.snapshotLocked())
	if err != nil {
		h.log.Error("live: encoding snapshot", "err", err)
		data = []byte("{}")
	}
	h.snapCache = appendFrame(nil, head, "snapshot", data)
	h.snapHead, h.snapOK = head, true
	return h.snapCache, head
}

// ListText returns the current list, sorted, one address or prefix per
// line. It is rendered on request and kept until the list changes.
func (h *Hub) ListText() []byte {
	h.mu.Lock()
	if h.listCOK && h.listCGen == h.listGen {
		b := h.listCache
		h.mu.Unlock()
		return b
	}
	gen := h.listGen
	keys := make([]netip.Prefix, 0, len(h.list))
	for k := range h.list {
		keys = append(keys, k)
	}
	h.mu.Unlock()
	slices.SortFunc(keys, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	b := make([]byte, 0, 16*len(keys))
	for _, k := range keys {
		b = append(b, dynfw.FormatAddr(k)...)
		b = append(b, '\n')
	}
	h.mu.Lock()
	if h.listGen == gen {
		h.listCache, h.listCGen, h.listCOK = b, gen, true
	}
	h.mu.Unlock()
	return b
}

// ring is the shared outgoing queue: a fixed array of frames indexed by
// sequence number. One writer (under Hub.mu) stores a frame and advances
// head; any number of readers follow at their own pace without locks and
// detect that they were overtaken when a slot holds a newer sequence.
type ring struct {
	slots  []atomic.Pointer[frame]
	head   atomic.Uint64 // sequence of the next frame
	notify atomic.Pointer[chan struct{}]
}

type frame struct {
	seq  uint64
	data []byte
}

func (r *ring) init(n int) {
	r.slots = make([]atomic.Pointer[frame], n)
	ch := make(chan struct{})
	r.notify.Store(&ch)
}

// push appends a frame and wakes the waiting readers. Callers hold Hub.mu.
func (r *ring) push(data []byte) {
	seq := r.head.Load()
	r.slots[seq%uint64(len(r.slots))].Store(&frame{seq: seq, data: data})
	r.head.Store(seq + 1)
	ch := make(chan struct{})
	old := r.notify.Swap(&ch)
	close(*old)
}

// get returns the frame with sequence seq, or false if it was overwritten.
func (r *ring) get(seq uint64) ([]byte, bool) {
	f := r.slots[seq%uint64(len(r.slots))].Load()
	if f == nil || f.seq != seq {
		return nil, false
	}
	return f.data, true
}
