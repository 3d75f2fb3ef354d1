package subscription

import (
	"slices"
	"time"

	"github.com/dynfw/sentinel/dynfw"
)

// Phase is where the synchronisation stands.
type Phase int

// Phases of Machine.
const (
	// Resyncing: waiting for a dynfw/list; deltas are buffered. The
	// handler keeps its last good set meanwhile (or nothing before the
	// first list).
	Resyncing Phase = iota
	// Synced: applying deltas in serial order.
	Synced
	// Verifying: applying deltas and also waiting for a list to check the
	// state against, after a reconnect or periodically.
	Verifying
)

func (p Phase) String() string {
	switch p {
	case Resyncing:
		return "resyncing"
	case Synced:
		return "synced"
	case Verifying:
		return "verifying"
	}
	return "unknown"
}

// Effects is what the Machine asks its driver to do. Calls happen
// synchronously, in order, from the Machine's methods.
type Effects interface {
	Subscribe(topic string)
	Unsubscribe(topic string)
	// ApplyList makes the handler's set equal to the list whose header is l;
	// the driver holds the payload. An error leaves the Machine resyncing.
	ApplyList(l *dynfw.List) error
	// ApplyDelta queues a delta for the next batch. ok is false for a
	// delta whose address was unusable: it advances the serial only.
	ApplyDelta(d dynfw.Delta, ok bool)
	// Note reports something worth a log line and a metric: "resync"
	// (with a reason), "duplicate", "out-of-order", "stale-list",
	// "no-list", "verified".
	Note(what, detail string)
}

// MachineConfig tunes the serial rules.
type MachineConfig struct {
	// Window is how far ahead of the next expected serial a delta may be
	// and still be held back waiting for the gap to fill. Default 32.
	Window uint64
	// HoldTimeout is how long a gap may stay open before a resync.
	// Default 2 s.
	HoldTimeout time.Duration
	// ListTimeout is how long to wait for a list before subscribing again
	// (resyncing) or giving up a verification. Default 60 s; the Turris
	// server sends one every 10 s.
	ListTimeout time.Duration
	// VerifyInterval, when positive, checks the state against a list this
	// often while synced.
	VerifyInterval time.Duration
	// MaxBuffer bounds the deltas kept while resyncing. Default 100,000.
	MaxBuffer int
}

// applied remembers a recent delta, to tell a duplicate from a reset.
type applied struct {
	serial uint64
	op     dynfw.Op
	addr   string
}

const recentSize = 256

// Machine applies the DynFW serial rules. It follows the documented client
// workflow (subscribe to dynfw/list, load it, unsubscribe, apply dynfw/delta
// in order), with these refinements:
//
//   - dynfw/delta is subscribed together with dynfw/list and buffered, so no
//     delta is lost between the list and the switch to deltas;
//   - the next serial is applied; a duplicate of a recently applied delta is
//     ignored; a short out-of-order run (within Window) is held back and
//     applied in order once the gap fills, or forces a resync after
//     HoldTimeout;
//   - a real gap, a lower serial that is not a duplicate, or a new list
//     version triggers a resync through dynfw/list;
//   - after a reconnect and every VerifyInterval, a list is fetched to check
//     the state while deltas keep flowing; only what differs is changed.
//
// A Machine is not safe for concurrent use; time is passed in by the caller.
type Machine struct {
	cfg MachineConfig
	fx  Effects

	phase   Phase
	have    bool // a list has been applied
	version uint64
	serial  uint64

	pending      map[uint64]pendingDelta
	pendingSince time.Time
	buffer       []pendingDelta
	since        time.Time // when the phase started
	lastVerify   time.Time

	recent     [recentSize]applied
	recentNext int
}

type pendingDelta struct {
	d  dynfw.Delta
	ok bool
}

// NewMachine returns a Machine in the Resyncing phase; call Start.
func NewMachine(cfg MachineConfig, fx Effects) *Machine {
	if cfg.Window == 0 {
		cfg.Window = 32
	}
	if cfg.HoldTimeout == 0 {
		cfg.HoldTimeout = 2 * time.Second
	}
	if cfg.ListTimeout == 0 {
		cfg.ListTimeout = 60 * time.Second
	}
	if cfg.MaxBuffer == 0 {
		cfg.MaxBuffer = 100_000
	}
	return &Machine{cfg: cfg, fx: fx, pending: map[uint64]pendingDelta{}}
}

// Phase returns the current phase.
func (m *Machine) Phase() Phase { return m.phase }

// State returns the version and serial of the applied state, and whether a
// list has been applied at all.
func (m *Machine) State() (version, serial uint64, have bool) {
	return m.version, m.serial, m.have
}

// Start subscribes to deltas and lists.
func (m *Machine) Start(now time.Time) {
	m.phase, m.since, m.lastVerify = Resyncing, now, now
	m.fx.Subscribe(dynfw.TopicDelta)
	m.fx.Subscribe(dynfw.TopicList)
}

func (m *Machine) resync(now time.Time, reason string) {
	m.fx.Note("resync", reason)
	clear(m.pending)
	m.buffer = m.buffer[:0]
	if m.phase != Resyncing {
		if m.phase != Verifying {
			m.fx.Subscribe(dynfw.TopicList)
		}
		m.phase, m.since = Resyncing, now
	}
}

func (m *Machine) verify(now time.Time) {
	if m.phase != Synced {
		return
	}
	m.phase, m.since, m.lastVerify = Verifying, now, now
	m.fx.Subscribe(dynfw.TopicList)
}

// Reconnected tells the Machine the connection came back: deltas may have
// been missed, so the state is checked against the next list.
func (m *Machine) Reconnected(now time.Time) {
	if m.have {
		m.verify(now)
	}
}

// OnList handles a validated dynfw/list header (its payload stays with the
// driver).
func (m *Machine) OnList(now time.Time, l *dynfw.List) {
	switch m.phase {
	case Synced:
		return // unsubscribed; a late one is of no use
	case Verifying:
		if l.Version == m.version && l.Serial < m.serial {
			m.fx.Note("stale-list", "list older than the applied deltas")
			return // our state is newer; wait for the next list
		}
	}
	reason := ""
	switch {
	case !m.have:
	case l.Version != m.version:
		reason = "new version"
	case l.Serial > m.serial:
		reason = "catching up"
	}
	if err := m.fx.ApplyList(l); err != nil {
		if m.phase == Verifying {
			m.phase, m.since = Resyncing, now
		}
		return
	}
	if m.phase == Verifying && reason == "" {
		m.fx.Note("verified", "")
	} else if m.phase == Verifying {
		m.fx.Note("resync", reason)
	}
	m.have, m.version, m.serial = true, l.Version, l.Serial
	m.phase, m.since = Synced, now
	m.fx.Unsubscribe(dynfw.TopicList)
	clear(m.pending)
	buf := m.buffer
	m.buffer = nil
	slices.SortStableFunc(buf, func(a, b pendingDelta) int {
		switch {
		case a.d.Serial < b.d.Serial:
			return -1
		case a.d.Serial > b.d.Serial:
			return 1
		}
		return 0
	})
	for _, p := range buf {
		if p.d.Serial > m.serial {
			m.handle(now, p.d, p.ok)
		}
	}
}

// OnDelta handles a dynfw/delta; ok is false when its address was unusable.
func (m *Machine) OnDelta(now time.Time, d dynfw.Delta, ok bool) {
	if m.phase == Resyncing {
		if len(m.buffer) >= m.cfg.MaxBuffer {
			m.buffer = m.buffer[1:]
		}
		m.buffer = append(m.buffer, pendingDelta{d, ok})
		return
	}
	m.handle(now, d, ok)
}

func (m *Machine) handle(now time.Time, d dynfw.Delta, ok bool) {
	switch {
	case d.Serial == m.serial+1:
		m.apply(d, ok)
		m.drain(now)
	case d.Serial <= m.serial:
		if m.isDuplicate(d) {
			m.fx.Note("duplicate", "")
			return
		}
		m.resync(now, "serial went back")
	case d.Serial-m.serial <= m.cfg.Window:
		if p, held := m.pending[d.Serial]; held {
			if p.d.Op == d.Op && p.d.Addr == d.Addr {
				m.fx.Note("duplicate", "")
				return
			}
			m.resync(now, "two different deltas with one serial")
			return
		}
		if len(m.pending) == 0 {
			m.pendingSince = now
		}
		m.pending[d.Serial] = pendingDelta{d, ok}
		m.fx.Note("out-of-order", "")
	default:
		m.resync(now, "serial gap")
	}
}

func (m *Machine) apply(d dynfw.Delta, ok bool) {
	m.fx.ApplyDelta(d, ok)
	m.serial = d.Serial
	m.recent[m.recentNext] = applied{serial: d.Serial, op: d.Op, addr: d.Addr.String()}
	m.recentNext = (m.recentNext + 1) % recentSize
}

func (m *Machine) drain(now time.Time) {
	for {
		p, ok := m.pending[m.serial+1]
		if !ok {
			break
		}
		delete(m.pending, m.serial+1)
		m.apply(p.d, p.ok)
	}
	if len(m.pending) > 0 {
		m.pendingSince = now // a later gap: give it its own time
	}
}

func (m *Machine) isDuplicate(d dynfw.Delta) bool {
	addr := d.Addr.String()
	for _, a := range m.recent {
		if a.serial == d.Serial && a.op == d.Op && a.addr == addr && a.serial != 0 {
			return true
		}
	}
	return false
}

// Tick handles time: gaps that stay open, lists that do not come, periodic
// verification. Call it regularly (every batch interval).
func (m *Machine) Tick(now time.Time) {
	if len(m.pending) > 0 && now.Sub(m.pendingSince) > m.cfg.HoldTimeout {
		m.resync(now, "gap not filled in time")
	}
	switch m.phase {
	case Resyncing:
		if now.Sub(m.since) > m.cfg.ListTimeout {
			m.fx.Note("no-list", "no dynfw/list received; subscribing again")
			m.fx.Unsubscribe(dynfw.TopicList)
			m.fx.Subscribe(dynfw.TopicList)
			m.since = now
		}
	case Verifying:
		if now.Sub(m.since) > m.cfg.ListTimeout {
			m.fx.Note("no-list", "no dynfw/list to verify against")
			m.fx.Unsubscribe(dynfw.TopicList)
			m.phase, m.since = Synced, now
		}
	case Synced:
		if m.cfg.VerifyInterval > 0 && now.Sub(m.lastVerify) > m.cfg.VerifyInterval {
			m.verify(now)
		}
	}
}
