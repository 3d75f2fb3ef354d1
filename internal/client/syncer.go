package client

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/policy"
	"github.com/dynfw/sentinel/internal/subscription"
)

// SyncConfig configures a Syncer.
type SyncConfig struct {
	Machine MachineConfig
	// BatchInterval is the tick at which queued deltas are applied as one
	// firewall transaction. Default 50 ms.
	BatchInterval time.Duration
	// Once makes Run return after the first list has been applied.
	Once bool
	// Logger; default slog.Default().
	Logger *slog.Logger

	// Server is the DynFW server's name or address, as dialled: the safety
	// floor never blocks any address it resolves to, nor the address of
	// the connection.
	Server string
	// Resolve looks Server up; default net.DefaultResolver.LookupNetIP.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Gateways returns the default gateways, which the floor never blocks;
	// default Gateways("/proc/net"), the namespace the client runs in.
	Gateways func() ([]netip.Addr, error)
	// ProtectInterval is how often the gateways are read and Server
	// resolved again, besides at every full list and reconnection, so that
	// a gateway changed by DHCP is followed. Default 30 s.
	ProtectInterval time.Duration
	// MaxRefusalLogs bounds how many distinct refused entries are
	// remembered so that each is logged only once. Default 1024; beyond
	// it refusals are only counted.
	MaxRefusalLogs int
}

// Stats are the Syncer's counters and gauges, read with atomic loads (for
// metrics) while Run works.
type Stats struct {
	Serial, Version   atomic.Uint64
	ListsApplied      atomic.Uint64
	DeltasApplied     atomic.Uint64 // deltas handed to the policy
	Duplicates        atomic.Uint64
	OutOfOrder        atomic.Uint64
	Malformed         atomic.Uint64 // messages that could not be decoded
	SkippedBadAddress atomic.Uint64 // list entries and deltas with unusable addresses
	SkippedAllowed    atomic.Uint64 // entries inside the allow-list
	SkippedIPv6       atomic.Uint64 // IPv6 entries while IPv6 is off
	// Refused counts the entries the safety floor refused, by reason
	// (policy.Skip's names: "loopback", "server", "min-prefix", ...).
	Refused map[string]*atomic.Uint64
	// ProtectedServer and ProtectedGateways count the single addresses
	// the floor protects.
	ProtectedServer, ProtectedGateways atomic.Int64
	BackendErrors                      atomic.Uint64
	Reconnects                         atomic.Uint64
	LastMessage                        atomic.Int64 // unix nanoseconds
	LastApplyNanos                     atomic.Int64 // duration of the last firewall change
	Resyncs                            map[string]*atomic.Uint64
	Addr4, Addr6                       atomic.Int64
	Net4, Net6                         atomic.Int64
	Connected                          atomic.Bool
	applyObservers                     []func(time.Duration)
}

// OnApply registers a function called with the duration of every firewall
// change (for a latency histogram). Call it before Run.
func (st *Stats) OnApply(f func(time.Duration)) { st.applyObservers = append(st.applyObservers, f) }

var resyncReasons = []string{"serial gap", "gap not filled in time", "serial went back", "two different deltas with one serial", "new version", "catching up", "backend failure"}

func newStats() *Stats {
	st := &Stats{Resyncs: map[string]*atomic.Uint64{}, Refused: map[string]*atomic.Uint64{}}
	for _, r := range resyncReasons {
		st.Resyncs[r] = new(atomic.Uint64)
	}
	for _, r := range policy.Refusals() {
		st.Refused[r.String()] = new(atomic.Uint64)
	}
	st.Resyncs["other"] = new(atomic.Uint64)
	return st
}

// Syncer keeps a firewall backend in sync with a DynFW server: a
// subscription.Session receives the messages and applies the serial rules;
// the Syncer is its Handler, which applies lists and delta batches through
// the address policy and hands the resulting element changes to the backend.
type Syncer struct {
	cfg     SyncConfig
	conn    *Conn
	backend firewall.Backend
	set     *policy.Set
	sess    *subscription.Session
	log     *slog.Logger
	stats   *Stats

	ctx         context.Context
	batch       []policy.Change
	applied     bool // the backend holds a state we know
	needReplace bool // the backend's contents are uncertain after a failure
	retryAt     time.Time
	retryDelay  time.Duration
	done        bool
	replaceReq  atomic.Bool

	// The addresses the floor protects: Server's as last resolved, the
	// default gateways as last read, and when they were looked up.
	serverAddrs   []netip.Addr
	gateways      []netip.Addr
	lookedUp      time.Time
	resolving     bool
	gatewayErr    bool                  // a failure to read them was logged
	refusedLogged map[netip.Prefix]bool // refused entries already logged
	refusedFull   bool                  // the overflow was logged
}

// RequestReplace asks Run to push the whole desired set to the backend again
// at its next tick, for a firewall that lost its contents (a firewalld or fw4
// reload). It is safe to call from any goroutine.
func (s *Syncer) RequestReplace() { s.replaceReq.Store(true) }

// NewSyncer wires a connection, an address policy and a backend.
func NewSyncer(cfg SyncConfig, conn *Conn, set *policy.Set, backend firewall.Backend) *Syncer {
	if cfg.BatchInterval <= 0 {
		cfg.BatchInterval = 50 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Resolve == nil {
		cfg.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if cfg.Gateways == nil {
		cfg.Gateways = func() ([]netip.Addr, error) { return Gateways("/proc/net") }
	}
	if cfg.ProtectInterval <= 0 {
		cfg.ProtectInterval = 30 * time.Second
	}
	if cfg.MaxRefusalLogs <= 0 {
		cfg.MaxRefusalLogs = 1024
	}
	s := &Syncer{cfg: cfg, conn: conn, backend: backend, set: set, log: cfg.Logger, stats: newStats(),
		refusedLogged: map[netip.Prefix]bool{}}
	s.sess = subscription.NewSession(conn, s, subscription.Options{Machine: cfg.Machine, Tick: cfg.BatchInterval, TrimAfter: trimAfter})
	return s
}

// Stats returns the live counters.
func (s *Syncer) Stats() *Stats { return s.stats }

// trimAfter is the payload size from which a list is followed by returning
// freed memory to the system.
const trimAfter = 1 << 20

// Run synchronises until ctx ends (or, with Once, until the first list is
// applied). The firewall keeps its last good set whatever happens to the
// connection; Run returns only on ctx's end, with Once, or when the
// connection's socket is closed.
func (s *Syncer) Run(ctx context.Context) error {
	s.ctx = ctx
	// Learn what the floor protects before the first list is applied.
	s.readGateways()
	if s.cfg.Server != "" {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s.serverAddrs = s.resolve(rctx)
		cancel()
	}
	s.lookedUp = time.Now()
	s.protect()
	s.stats.Connected.Store(true)
	err := s.sess.Run(ctx)
	if ctx.Err() != nil && !s.done {
		s.flush(time.Now())
	}
	return err
}

// Note implements subscription.Handler: counters and log lines, and what a
// reconnection asks for.
func (s *Syncer) Note(n subscription.Note) {
	switch n.Kind {
	case subscription.Message:
		s.stats.LastMessage.Store(time.Now().UnixNano())
	case subscription.Connected:
		s.stats.Connected.Store(true)
		s.stats.Reconnects.Add(1)
		s.lookUp(time.Now()) // the server's address may have changed
	case subscription.Disconnected:
		s.stats.Connected.Store(false)
	case subscription.Malformed:
		s.stats.Malformed.Add(1)
		var fe *subscription.FramesError
		switch {
		case errors.As(n.Err, &fe):
			s.log.Warn("ignoring message", "frames", fe.Frames, "reason", "DynFW messages have two frames")
		case n.Topic == dynfw.TopicList:
			s.log.Warn("ignoring malformed list", "err", n.Err)
		case n.Topic == dynfw.TopicDelta:
			s.log.Warn("ignoring malformed delta", "err", n.Err)
		default:
			s.log.Warn("ignoring malformed message", "topic", n.Topic, "err", n.Err)
		}
	case subscription.BadAddress:
		s.stats.SkippedBadAddress.Add(1)
		s.log.Warn("skipping delta with unusable address", "serial", n.Serial, "err", n.Err)
	case subscription.Resync:
		c, ok := s.stats.Resyncs[n.Detail]
		if !ok {
			c = s.stats.Resyncs["other"]
		}
		c.Add(1)
		s.log.Warn("resynchronising", "reason", n.Detail)
	case subscription.Duplicate:
		s.stats.Duplicates.Add(1)
		s.log.Debug("duplicate delta ignored", "detail", n.Detail)
	case subscription.OutOfOrder:
		s.stats.OutOfOrder.Add(1)
		s.log.Debug("delta held back until the gap fills")
	case subscription.Verified:
		s.log.Info("state verified against the server's list")
	default:
		s.log.Warn(n.Kind.String(), "detail", n.Detail)
	}
}

// Tick implements subscription.Handler: a requested replace, the protected
// addresses' periodic lookup, and the batch of deltas.
func (s *Syncer) Tick(now time.Time) {
	if s.replaceReq.Swap(false) && s.applied {
		s.needReplace, s.retryAt = true, time.Time{}
	}
	if now.Sub(s.lookedUp) >= s.cfg.ProtectInterval {
		s.lookUp(now)
	}
	s.flush(now)
}

// Event implements subscription.Handler; the Syncer does not subscribe to
// events.
func (s *Syncer) Event(dynfw.Event) {}

// State implements subscription.Handler; the Syncer keeps its own gauges.
func (s *Syncer) State(subscription.State) {}

func (s *Syncer) skipped(p netip.Prefix, why policy.Skip) {
	switch why {
	case policy.SkipAllowed:
		s.stats.SkippedAllowed.Add(1)
	case policy.SkipIPv6:
		s.stats.SkippedIPv6.Add(1)
	default:
		if !why.Refused() {
			return
		}
		s.stats.Refused[why.String()].Add(1)
		s.logRefusal(p, why)
	}
}

// logRefusal logs a refused entry the first time it is seen, so that a
// server repeating it in every list does not flood the log; the memory of
// what was logged is bounded.
func (s *Syncer) logRefusal(p netip.Prefix, why policy.Skip) {
	if s.refusedLogged[p] {
		return
	}
	if len(s.refusedLogged) >= s.cfg.MaxRefusalLogs {
		if !s.refusedFull {
			s.refusedFull = true
			s.log.Warn("too many refused entries to log each; further ones are refused and counted only", "logged", len(s.refusedLogged))
		}
		return
	}
	s.refusedLogged[p] = true
	args := []any{"entry", p.String(), "reason", why.String()}
	if _, form := s.set.Explain(p); form != "" {
		args = append(args, "form", form)
	}
	s.log.Warn("refusing a listed entry that must never be blocked", args...)
}

// lookUp reads the gateways again, starts resolving the server's name
// (unless a lookup is under way) and applies what changed.
func (s *Syncer) lookUp(now time.Time) {
	s.lookedUp = now
	s.readGateways()
	if s.cfg.Server != "" && !s.resolving {
		s.resolving = true
		go func() {
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			defer cancel()
			addrs := s.resolve(ctx)
			s.sess.Post(func() { s.resolved(addrs) })
		}()
	}
	s.protect()
}

// resolved takes in the result of a lookup, on Run's goroutine.
func (s *Syncer) resolved(addrs []netip.Addr) {
	s.resolving = false
	if addrs != nil {
		s.serverAddrs = addrs
		s.protect()
	}
}

// resolve returns the server's addresses, or nil when the lookup failed
// (the last known ones stay protected).
func (s *Syncer) resolve(ctx context.Context) []netip.Addr {
	addrs, err := s.cfg.Resolve(ctx, s.cfg.Server)
	if err != nil {
		s.log.Warn("cannot resolve the server's addresses; the last known ones stay protected", "server", s.cfg.Server, "err", err)
		return nil
	}
	return addrs
}

func (s *Syncer) readGateways() {
	gws, err := s.cfg.Gateways()
	switch {
	case err != nil && !s.gatewayErr:
		s.gatewayErr = true
		s.log.Warn("cannot read the default gateways; the last known ones stay protected", "err", err)
	case err == nil:
		s.gatewayErr = false
	}
	if err == nil || len(gws) > 0 {
		s.gateways = gws
	}
}

// protect hands the protected addresses to the policy and removes from the
// firewall what now covers one of them.
func (s *Syncer) protect() {
	server := s.serverAddrs
	if a := s.conn.Remote(); a.IsValid() {
		server = append(server[:len(server):len(server)], a)
	}
	srv0, gw0 := s.set.Protected()
	add, del := s.set.Protect(server, s.gateways, s.skipped)
	if srv, gw := s.set.Protected(); !slices.Equal(srv, srv0) || !slices.Equal(gw, gw0) {
		s.stats.ProtectedServer.Store(int64(len(srv)))
		s.stats.ProtectedGateways.Store(int64(len(gw)))
		s.log.Info("addresses the firewall never blocks", "server", srv, "gateways", gw)
	}
	if !s.applied || s.needReplace || add.Len()+del.Len() == 0 {
		return // the next replace applies the policy's state
	}
	start := time.Now()
	if err := s.backend.Apply(s.ctx, add, del); err != nil {
		s.backendFailed(err)
		return
	}
	s.observe(time.Since(start))
	s.log.Info("entries covering a protected address removed", "removed", del.Len())
}

// List implements subscription.Handler: the policy computes what changed
// since the state the backend holds, and the backend applies it in one
// step. The first list (or one after a backend failure) replaces the
// backend's contents entirely, since they are not known.
func (s *Syncer) List(l *subscription.List) error {
	if err := s.flushBatch(); err != nil {
		return err
	}
	// Follow a gateway changed by DHCP before applying the list.
	s.lookUp(time.Now())
	start := time.Now()
	var decodeErr error
	s.set.Reserve(l.Count4, l.Count6)
	add, del := s.set.Sync(func(f func(netip.Prefix)) {
		decodeErr = l.Each(f)
	}, s.skipped)
	if decodeErr != nil { // validated before; cannot happen
		s.needReplace = true
		return decodeErr
	}
	if l.Size() >= trimAfter {
		// The payload is no longer needed; collect it before the backend
		// builds its own large buffers, to keep the peak low on routers.
		l.Release()
		runtime.GC()
	}
	if l.SkippedCount > 0 {
		s.stats.SkippedBadAddress.Add(uint64(l.SkippedCount))
		s.log.Warn("list entries skipped", "count", l.SkippedCount, "first", firstSkipped(&l.List))
	}
	var err error
	replace := !s.applied || s.needReplace
	if replace {
		err = s.backend.Replace(s.ctx, s.set.Elements())
	} else {
		err = s.backend.Apply(s.ctx, add, del)
	}
	if err != nil {
		s.backendFailed(err)
		return err
	}
	s.applied, s.needReplace = true, false
	s.observe(time.Since(start))
	s.stats.ListsApplied.Add(1)
	s.stats.Version.Store(l.Version)
	s.stats.Serial.Store(l.Serial)
	entries, elements := s.set.Len()
	s.log.Info("list applied", "version", l.Version, "serial", l.Serial, "entries", entries, "elements", elements,
		"added", add.Len(), "removed", del.Len(), "replace", replace, "took", time.Since(start).Round(time.Microsecond),
		"since_received", time.Since(l.Received).Round(time.Microsecond))
	if s.cfg.Once {
		s.done = true
		s.sess.Stop()
	}
	return nil
}

func firstSkipped(l *dynfw.List) string {
	if len(l.Skipped) == 0 {
		return ""
	}
	return l.Skipped[0].Error()
}

// Delta implements subscription.Handler: the delta joins the batch of this
// tick.
func (s *Syncer) Delta(d dynfw.Delta, ok bool) {
	s.stats.Serial.Store(d.Serial)
	if !ok {
		return
	}
	s.batch = append(s.batch, policy.Change{Add: d.Op == dynfw.Positive, Addr: d.Addr})
}

// flush applies the batch, or retries a full replace after a failure.
func (s *Syncer) flush(now time.Time) {
	if s.needReplace && s.applied {
		if now.Before(s.retryAt) {
			return
		}
		// Apply queued deltas to the policy first; the replace covers them.
		s.set.Apply(s.batch, s.skipped)
		s.stats.DeltasApplied.Add(uint64(len(s.batch)))
		s.batch = s.batch[:0]
		start := time.Now()
		if err := s.backend.Replace(s.ctx, s.set.Elements()); err != nil {
			s.backendFailed(err)
			return
		}
		s.needReplace, s.retryDelay = false, 0
		s.observe(time.Since(start))
		s.log.Info("firewall restored after a failure", "took", time.Since(start).Round(time.Microsecond))
		return
	}
	if err := s.flushBatch(); err != nil {
		return
	}
}

func (s *Syncer) flushBatch() error {
	if len(s.batch) == 0 {
		return nil
	}
	start := time.Now()
	add, del := s.set.Apply(s.batch, s.skipped)
	s.stats.DeltasApplied.Add(uint64(len(s.batch)))
	n := len(s.batch)
	s.batch = s.batch[:0]
	if add.Len()+del.Len() == 0 {
		return nil
	}
	if !s.applied {
		// Deltas before any list (cannot happen: they are buffered).
		return nil
	}
	if err := s.backend.Apply(s.ctx, add, del); err != nil {
		s.backendFailed(err)
		return err
	}
	s.observe(time.Since(start))
	s.log.Debug("deltas applied", "deltas", n, "added", add.Len(), "removed", del.Len(), "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// backendFailed remembers that the backend's contents are uncertain: the
// next attempt replaces them entirely, after a growing delay.
func (s *Syncer) backendFailed(err error) {
	s.stats.BackendErrors.Add(1)
	s.needReplace = true
	s.retryDelay = min(max(2*s.retryDelay, time.Second), time.Minute)
	s.retryAt = time.Now().Add(s.retryDelay)
	s.log.Error("firewall update failed; the last applied set stays in place", "backend", s.backend.Name(), "err", err, "retry_in", s.retryDelay)
}

func (s *Syncer) observe(d time.Duration) {
	s.stats.LastApplyNanos.Store(int64(d))
	a4, a6, n4, n6 := s.set.Counts()
	s.stats.Addr4.Store(int64(a4))
	s.stats.Addr6.Store(int64(a6))
	s.stats.Net4.Store(int64(n4))
	s.stats.Net6.Store(int64(n6))
	for _, f := range s.stats.applyObservers {
		f(d)
	}
}
