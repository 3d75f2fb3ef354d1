package stats

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/internal/store"
	"golang.org/x/sync/singleflight"
)

// Options configure an Engine.
type Options struct {
	// Settle was how long after a bucket ends before periods read from
	// rollups showed it; the store now reads past its rollups' watermarks,
	// so Period.Window ignores it (kept for callers).
	Settle time.Duration
	// Shared is an optional cache shared by several web instances
	// (Redis). Without it each process computes on its own.
	Shared SharedCache
	// StaleWait is how long a request for a precached resource whose
	// lifetime ended waits for its refresh before it is served stale
	// (default 300 ms).
	StaleWait time.Duration
	// MaxOnDemand bounds the cached results of parameterised resources
	// (one attacker, one password, one visitor's devices); default 4096.
	MaxOnDemand int
	// Rollup and Retain run from Run when true (the process that owns the
	// store; a view-only instance on a shared PostgreSQL may leave them
	// to the ingest process, though running them twice is harmless).
	Maintain bool
	Logger   *slog.Logger
	Now      func() time.Time
}

// Engine computes resources from a store and keeps them fresh: the
// resources without parameters are refreshed in the background for every
// period (Run), so pages read them from memory; parameterised ones are
// computed on demand and cached. Concurrent requests for the same missing
// result share one computation.
type Engine struct {
	st  store.Store
	o   Options
	log *slog.Logger

	mu       sync.Mutex
	cache    map[string]*entry
	onDemand int
	flight   singleflight.Group

	computed, hits, misses, failures atomic.Uint64
	lastRollup                       atomic.Pointer[store.RollupReport]
}

type entry struct {
	res  Result
	end  time.Time // window end it was computed for
	used time.Time // last read, for evicting on-demand entries
	// precached entries are never evicted.
	precached bool
}

// New returns an engine reading st.
func New(st store.Store, o Options) *Engine {
	if o.Settle == 0 {
		o.Settle = 4 * time.Minute
	}
	if o.StaleWait <= 0 {
		o.StaleWait = 300 * time.Millisecond
	}
	if o.MaxOnDemand <= 0 {
		o.MaxOnDemand = 4096
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{st: st, o: o, log: o.Logger, cache: make(map[string]*entry)}
}

// Resource returns a resource: from the cache when it is fresh, else
// computed once however many callers ask at the same time. A precached
// resource whose refresh is due is served stale while Run refreshes it.
func (e *Engine) Resource(ctx context.Context, req Request) (Result, error) {
	f, err := Resolve(req)
	if err != nil {
		return Result{}, err
	}
	return e.Fetch(ctx, f)
}

// Fetch is Resource for a request Resolve (or Resource.Fetch) resolved.
func (e *Engine) Fetch(ctx context.Context, f Fetch) (Result, error) {
	p := f.Period
	now := e.o.Now()
	_, end := p.Window(now, e.o.Settle)
	key := f.key
	e.mu.Lock()
	if en, ok := e.cache[key]; ok && (en.precached || e.fresh(en, p, end, now)) {
		en.used = now
		r := en.res
		stale := !e.fresh(en, p, end, now)
		e.mu.Unlock()
		e.hits.Add(1)
		if stale {
			// Refresh now, sooner than the scheduler's next pass; wait
			// a moment for it (a light query is done by then), else
			// serve the stale result.
			ch := e.refreshShared(ctx, f, true)
			select {
			case f := <-ch:
				if f.Err == nil {
					r = f.Val.(Result)
				}
			case <-time.After(e.o.StaleWait):
			case <-ctx.Done():
			}
		}
		return r, nil
	}
	e.mu.Unlock()
	e.misses.Add(1)
	ch := e.flight.DoChan(key, func() (any, error) {
		// A flight for this key may have filled the cache between the
		// look above and joining: then there is nothing to compute.
		e.mu.Lock()
		en, ok := e.cache[key]
		if ok && e.fresh(en, p, end, now) {
			r := en.res
			e.mu.Unlock()
			return r, nil
		}
		e.mu.Unlock()
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		return e.refresh(c, f, f.Resource.Precached)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Result{}, r.Err
		}
		return r.Val.(Result), nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// refreshShared starts (or joins) the one refresh of f. It is detached
// from the caller's context, so that the other callers, and the cache, get
// the result even if the first caller gives up.
func (e *Engine) refreshShared(ctx context.Context, f Fetch, precached bool) <-chan singleflight.Result {
	return e.flight.DoChan(f.key, func() (any, error) {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		return e.refresh(c, f, precached)
	})
}

// fresh says whether a cached entry may be served as is.
func (e *Engine) fresh(en *entry, p Period, end, now time.Time) bool {
	return en.end.Equal(end) && now.Sub(en.res.Computed) < p.TTL
}

// refresh computes a resource (or takes it from the shared cache) and
// stores it.
func (e *Engine) refresh(ctx context.Context, f Fetch, precached bool) (Result, error) {
	key := f.key
	now := e.o.Now()
	p := f.Period
	_, end := p.Window(now, e.o.Settle)
	var (
		r   Result
		err error
		got bool
	)
	if e.o.Shared != nil {
		r, got = e.sharedGet(ctx, f, end)
	}
	if !got {
		r, err = computeFetch(ctx, e.st, f, now, e.o.Settle, -1)
		if err != nil {
			e.failures.Add(1)
			return Result{}, err
		}
		e.computed.Add(1)
		if e.o.Shared != nil {
			e.sharedPut(ctx, key, r, end)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !precached {
		if _, ok := e.cache[key]; !ok {
			e.onDemand++
			if e.onDemand > e.o.MaxOnDemand {
				e.evictLocked()
			}
		}
	}
	e.cache[key] = &entry{res: r, end: end, used: now, precached: precached}
	return r, nil
}

// evictLocked drops the least recently used half of the on-demand
// entries: cheap enough, since it runs once per MaxOnDemand/2 additions.
func (e *Engine) evictLocked() {
	var used []time.Time
	for _, en := range e.cache {
		if !en.precached {
			used = append(used, en.used)
		}
	}
	if len(used) == 0 {
		return
	}
	cut := medianTime(used)
	for k, en := range e.cache {
		if !en.precached && !en.used.After(cut) {
			delete(e.cache, k)
			e.onDemand--
		}
	}
}

func medianTime(ts []time.Time) time.Time {
	slices.SortFunc(ts, time.Time.Compare)
	return ts[len(ts)/2]
}

// Refresh brings every precached resource of every period up to date,
// computing those whose window moved or whose lifetime ended. It returns
// the number computed.
func (e *Engine) Refresh(ctx context.Context) (int, error) {
	n := 0
	var errs []error
	for _, p := range Periods {
		for _, name := range Names() {
			res := Catalog[name]
			if !res.Precached {
				continue
			}
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			f, _ := res.Fetch(Request{}, p)
			now := e.o.Now()
			_, end := p.Window(now, e.o.Settle)
			e.mu.Lock()
			en, ok := e.cache[f.key]
			due := !ok || !e.fresh(en, p, end, now)
			e.mu.Unlock()
			if !due {
				continue
			}
			if _, err, _ := e.flight.Do(f.key, func() (any, error) {
				return e.refresh(ctx, f, true)
			}); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

// Run keeps the store's rollups and the precached resources fresh until
// ctx ends: rollups every minute (when Maintain), retention every hour,
// and a refresh pass every 5 seconds (it computes only what is due, which
// with the periods' short lifetimes keeps every period within about 25 s
// of the store); the first pass starts at once.
func (e *Engine) Run(ctx context.Context) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	var lastRollup, lastRetain time.Time
	for {
		now := e.o.Now()
		if e.o.Maintain && now.Sub(lastRollup) >= time.Minute {
			lastRollup = now
			if rep, err := e.st.Rollup(ctx, now); err != nil {
				if ctx.Err() == nil {
					e.log.Error("rollup failed", "err", err)
				}
			} else {
				e.lastRollup.Store(&rep)
				if rep.Buckets > 0 {
					e.log.Debug("rollup", "buckets", rep.Buckets, "rows", rep.Rows, "took", rep.Took)
				}
			}
		}
		if e.o.Maintain && now.Sub(lastRetain) >= time.Hour {
			lastRetain = now
			if err := e.st.Retain(ctx, now); err != nil && ctx.Err() == nil {
				e.log.Error("retention failed", "err", err)
			}
		}
		start := time.Now()
		if n, err := e.Refresh(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("refreshing resources", "err", err)
		} else if n > 0 {
			e.log.Debug("resources refreshed", "count", n, "took", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Forget drops every cached result (the CLI's cache clear, and tests).
func (e *Engine) Forget() {
	e.mu.Lock()
	clear(e.cache)
	e.onDemand = 0
	e.mu.Unlock()
}

// CacheEntry describes a cached result, for `sentinel view cache`.
type CacheEntry struct {
	Key       string
	Computed  time.Time
	WindowEnd time.Time
	Precached bool
}

// Cached lists the cached results.
func (e *Engine) Cached() []CacheEntry {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]CacheEntry, 0, len(e.cache))
	for k, en := range e.cache {
		out = append(out, CacheEntry{Key: k, Computed: en.res.Computed, WindowEnd: en.end, Precached: en.precached})
	}
	return out
}

// EngineStats are counters for metrics.
type EngineStats struct {
	Computed, Hits, Misses, Failures uint64
	Cached                           int
	LastRollup                       *store.RollupReport
}

// Stats returns the engine's counters.
func (e *Engine) Stats() EngineStats {
	e.mu.Lock()
	n := len(e.cache)
	e.mu.Unlock()
	return EngineStats{Computed: e.computed.Load(), Hits: e.hits.Load(), Misses: e.misses.Load(), Failures: e.failures.Load(), Cached: n, LastRollup: e.lastRollup.Load()}
}
