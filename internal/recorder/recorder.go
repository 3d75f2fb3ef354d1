// Package recorder writes the server's normalised probe events into the
// statistics store of Sentinel View: each incident with its attacker's
// country and the device that saw it, each tried credential, each port a
// router's firewall logged.
//
// Events enter through Events (a core.Sink), which only converts and
// queues, so that scoring and publishing never wait on the database.
// A writer goroutine inserts the queue in batches, at most every Interval
// or when MaxBatch rows wait. When the database falls behind and the queue
// is full, the newest rows are dropped and counted: the statistics lose
// some rows, the DynFW list loses nothing.
//
// Two kinds of failed insert are told apart (store.RejectedError). When
// the database is unreachable, times out or shuts down, the rows go back
// to the queue and wait for it: a restart of the database loses nothing
// while the queue holds. When it refuses rows for what they hold (a value
// it cannot store, a constraint), no retry would help: the batch is split
// in halves, each inserted on its own, down to the single rows that fail,
// which are dropped, counted by table and reason, and logged without their
// content. The rest is written, so no row can stop the recorder. The
// ingest paths already make attacker-typed strings storable
// (events.Storable); this is the defence behind it.
package recorder

import (
	"context"
	"errors"
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

// Inserter is what the recorder needs of a store: writing batches
// (store.Store implements it).
type Inserter interface {
	Insert(ctx context.Context, b *store.Batch) error
}

// Options configure a Recorder.
type Options struct {
	Store     Inserter
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
	// Rejected, when set, is told of the rows the database refused and
	// that were dropped: their table, the reason (one of
	// store.RejectReasons) and how many, once per Flush and kind.
	Rejected func(table store.Table, reason string, rows int)
	Logger   *slog.Logger
}

// Recorder is a core.Sink feeding a store.
type Recorder struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	pending store.Batch
	kick    chan struct{}

	// failed counts failed inserts (attempts, not rows); rejected the
	// rows the database refused.
	inserted, dropped, failed, rejected atomic.Uint64
	done                                chan struct{}
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

// Events implements core.Sink: it converts and queues, never blocks on
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
			r.pending.Ports = append(r.pending.Ports, store.Port{Time: t, Port: d.LocalPort, Protocol: protocol(d.Protocol), IP: e.Addr})
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
		r.pending.Passwords = append(r.pending.Passwords, store.Password{Time: t, Trap: trap, Username: d.Username, Password: d.Password,
			IP: e.Addr, Country: inc.Country})
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

// Flush inserts every queued row now, in batches of MaxBatch. Rows the
// database refuses are dropped and counted (see the package comment).
// When an insert fails otherwise, the rows not written go back to the
// queue (as far as MaxQueue allows; the rest are dropped and counted) for
// the next try, and Flush returns the error.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	b := r.pending
	r.pending = store.Batch{}
	r.mu.Unlock()
	refused := map[refusal]int{}
	defer r.report(refused)
	for b.Len() > 0 {
		part := take(&b, r.o.MaxBatch)
		if err := r.insert(ctx, &part, refused); err != nil {
			r.failed.Add(1)
			r.requeue(&part, &b)
			return err
		}
	}
	return nil
}

// refusal is one kind of row the database refused.
type refusal struct {
	table        store.Table
	reason, code string
}

// insert writes b. When the database refuses it, it splits b in halves
// and inserts each, down to single rows, which it drops and counts in
// refused. On any other error it returns the error, with b holding the
// rows not written.
func (r *Recorder) insert(ctx context.Context, b *store.Batch, refused map[refusal]int) error {
	err := r.o.Store.Insert(ctx, b)
	var re *store.RejectedError
	switch {
	case err == nil:
		r.inserted.Add(uint64(b.Len()))
		*b = store.Batch{}
		return nil
	case !errors.As(err, &re) || ctx.Err() != nil:
		return err
	case b.Len() == 1:
		refused[refusal{tableOf(b), re.Reason, re.Code}]++
		r.rejected.Add(1)
		*b = store.Batch{}
		return nil
	}
	first := take(b, b.Len()/2)
	if err := r.insert(ctx, &first, refused); err != nil {
		*b = join(&first, b)
		return err
	}
	return r.insert(ctx, b, refused)
}

// tableOf is the table of a batch of one row.
func tableOf(b *store.Batch) store.Table {
	switch {
	case len(b.Incidents) > 0:
		return store.Incidents
	case len(b.Passwords) > 0:
		return store.Passwords
	}
	return store.Ports
}

// report logs and counts the rows a Flush dropped as refused: one line per
// kind, with no content of the rows, which attackers typed.
func (r *Recorder) report(refused map[refusal]int) {
	for k, n := range refused {
		r.log.Warn("statistics rows refused by the database, dropped", "table", k.table.String(), "reason", k.reason, "code", k.code, "rows", n)
		if r.o.Rejected != nil {
			r.o.Rejected(k.table, k.reason, n)
		}
	}
}

// requeue puts rows that were not written back in front of the queue.
func (r *Recorder) requeue(parts ...*store.Batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	back := join(append(parts, &r.pending)...)
	if over := back.Len() - r.o.MaxQueue; over > 0 {
		// Drop the oldest rows: the newest matter most to the view.
		r.dropped.Add(uint64(over))
		back = dropOldest(back, over)
	}
	r.pending = back
}

// join returns the rows of the batches, in order, in a new batch.
func join(parts ...*store.Batch) store.Batch {
	var out store.Batch
	for _, p := range parts {
		out.Incidents = append(out.Incidents, p.Incidents...)
		out.Passwords = append(out.Passwords, p.Passwords...)
		out.Ports = append(out.Ports, p.Ports...)
	}
	return out
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
	// Dropped counts rows lost because the queue was full.
	Inserted, Dropped uint64
	// Failed counts insert attempts that failed for another reason than
	// refused rows (their rows were queued again).
	Failed uint64
	// Rejected counts rows the database refused, which were dropped.
	Rejected uint64
	Queued   int
}

// Stats returns the counters.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	q := r.pending.Len()
	r.mu.Unlock()
	return Stats{Inserted: r.inserted.Load(), Dropped: r.dropped.Load(), Failed: r.failed.Load(), Rejected: r.rejected.Load(), Queued: q}
}
