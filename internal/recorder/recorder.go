// Package recorder writes the server's normalised probe events into the
// statistics store of Sentinel View: each incident with its attacker's
// country and the device that saw it, each tried credential, each port a
// router's firewall logged.
//
// Events enter through Events (a server.Sink), which only converts and
// queues, so that scoring and publishing never wait on the database.
// A writer goroutine inserts the queue in batches, at most every Interval
// or when MaxBatch rows wait. When the database falls behind and the queue
// is full, the newest rows are dropped and counted: the statistics lose
// some rows, the DynFW list loses nothing.
package recorder

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/store"
)

// Countries maps an address to its ISO country code ("" unknown);
// geoip.DB implements it.
type Countries interface {
	Country(netip.Addr) string
}

// Options configure a Recorder.
type Options struct {
	Store     store.Store
	Probes    *events.Probes
	Countries Countries // nil: countries unknown
	// Interval between inserts (default 1 s); MaxBatch rows trigger an
	// insert at once (default 5000); MaxQueue rows wait at most (default
	// 200000).
	Interval time.Duration
	MaxBatch int
	MaxQueue int
	// Passwords, when set, also receives every tried password (the
	// password checker's live corpus).
	Passwords func(trap, password string)
	Logger    *slog.Logger
}

// Recorder is a server.Sink feeding a store.
type Recorder struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	pending store.Batch
	kick    chan struct{}

	// failed counts failed inserts (attempts, not rows).
	inserted, dropped, failed atomic.Uint64
	done                      chan struct{}
}

// New returns a recorder; call Run to start writing.
func New(o Options) *Recorder {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 5000
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 200000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Probes == nil {
		o.Probes = new(events.Probes)
	}
	return &Recorder{o: o, log: o.Logger, kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// Events implements server.Sink: it converts and queues, never blocks on
// the database.
func (r *Recorder) Events(evs []events.Event) {
	r.mu.Lock()
	for i := range evs {
		if r.pending.Len() >= r.o.MaxQueue {
			r.dropped.Add(uint64(len(evs) - i))
			break
		}
		r.add(&evs[i])
	}
	n := r.pending.Len()
	r.mu.Unlock()
	if n >= r.o.MaxBatch {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// add converts one event; callers hold mu.
func (r *Recorder) add(e *events.Event) {
	t := time.Unix(0, e.Time).UTC()
	if e.Type == events.FwlogsPacket {
		if d := e.Details; d != nil && d.LocalPort != 0 {
			r.pending.Ports = append(r.pending.Ports, store.Port{Time: t, Port: d.LocalPort, Protocol: protocol(d.Protocol)})
		}
		return
	}
	trap, action := e.Type.Trap(), e.Type.Action()
	if trap == "" {
		return
	}
	inc := store.Incident{Time: t, Trap: trap, Action: action, IP: e.Addr}
	if p, ok := r.o.Probes.Get(e.Probe); ok {
		inc.Serial, inc.Token = p.Serial, p.Token
		if inc.Serial == "" {
			inc.Serial = p.Name
		}
	}
	if r.o.Countries != nil && e.Addr.IsValid() {
		inc.Country = r.o.Countries.Country(e.Addr)
	}
	r.pending.Incidents = append(r.pending.Incidents, inc)
	if d := e.Details; d != nil && (d.Username != "" || d.Password != "") {
		r.pending.Passwords = append(r.pending.Passwords, store.Password{Time: t, Trap: trap, Username: d.Username, Password: d.Password})
		if r.o.Passwords != nil && d.Password != "" {
			r.o.Passwords(trap, d.Password)
		}
	}
}

// protocol names a transport protocol as Sentinel View does.
func protocol(p string) string {
	switch p {
	case "TCP", "tcp":
		return "TCP"
	case "UDP", "udp":
		return "UDP"
	}
	return "other"
}

// Run inserts queued rows until ctx ends, then inserts what is left
// (bounded by a short timeout) and returns.
func (r *Recorder) Run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-r.kick:
		}
		if ctx.Err() != nil {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.log.Error("statistics rows lost at shutdown", "rows", r.Stats().Queued, "err", err)
			}
			cancel()
			return
		}
		if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("storing statistics failed; will retry", "queued", r.Stats().Queued, "err", err)
		}
	}
}

// Flush inserts every queued row now, in batches of MaxBatch. When an
// insert fails the rows not written go back to the queue (as far as
// MaxQueue allows; the rest are dropped and counted) for the next try.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	b := r.pending
	r.pending = store.Batch{}
	r.mu.Unlock()
	for b.Len() > 0 {
		part := take(&b, r.o.MaxBatch)
		if err := r.o.Store.Insert(ctx, &part); err != nil {
			r.failed.Add(1)
			r.requeue(&part, &b)
			return err
		}
		r.inserted.Add(uint64(part.Len()))
	}
	return nil
}

// requeue puts rows that were not written back in front of the queue.
func (r *Recorder) requeue(parts ...*store.Batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var back store.Batch
	for _, p := range parts {
		back.Incidents = append(back.Incidents, p.Incidents...)
		back.Passwords = append(back.Passwords, p.Passwords...)
		back.Ports = append(back.Ports, p.Ports...)
	}
	back.Incidents = append(back.Incidents, r.pending.Incidents...)
	back.Passwords = append(back.Passwords, r.pending.Passwords...)
	back.Ports = append(back.Ports, r.pending.Ports...)
	if over := back.Len() - r.o.MaxQueue; over > 0 {
		// Drop the oldest rows: the newest matter most to the view.
		r.dropped.Add(uint64(over))
		back = dropOldest(back, over)
	}
	r.pending = back
}

// dropOldest removes n rows, taking from each table in proportion.
func dropOldest(b store.Batch, n int) store.Batch {
	total := b.Len()
	cut := func(k int) int { return k * n / total }
	ci, cp := cut(len(b.Incidents)), cut(len(b.Passwords))
	cq := n - ci - cp
	cq = min(cq, len(b.Ports))
	b.Incidents, b.Passwords, b.Ports = b.Incidents[ci:], b.Passwords[cp:], b.Ports[cq:]
	return b
}

// take moves at most n rows from b into a new batch.
func take(b *store.Batch, n int) store.Batch {
	var out store.Batch
	k := min(n, len(b.Incidents))
	out.Incidents, b.Incidents = b.Incidents[:k:k], b.Incidents[k:]
	n -= k
	k = min(n, len(b.Passwords))
	out.Passwords, b.Passwords = b.Passwords[:k:k], b.Passwords[k:]
	n -= k
	k = min(n, len(b.Ports))
	out.Ports, b.Ports = b.Ports[:k:k], b.Ports[k:]
	return out
}

// Wait blocks until Run has returned.
func (r *Recorder) Wait() { <-r.done }

// Stats are the recorder's counters.
type Stats struct {
	Inserted, Dropped uint64
	// Failed counts insert attempts that failed (their rows were queued
	// again).
	Failed uint64
	Queued int
}

// Stats returns the counters.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	q := r.pending.Len()
	r.mu.Unlock()
	return Stats{Inserted: r.inserted.Load(), Dropped: r.dropped.Load(), Failed: r.failed.Load(), Queued: q}
}
