package scoring

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/dynfw/sentinel/internal/events"
)

const (
	// inlineTypes event types are counted in the entry itself; a key that
	// shows more kinds of behaviour (rare, and only for busy attackers)
	// keeps the rest in a side map.
	inlineTypes = 6
	// maxProbes distinct probes are tracked per key, exactly; beyond that
	// the count saturates and explanations say "at least".
	maxProbes = 8
)

// Entry flags.
const (
	fListed     uint8 = 1 << iota
	fSeen             // has had an event (an entry made by Block has not)
	fProbesFull       // more than maxProbes distinct probes
	fAllowed          // overlaps the allow-list
	fNonGlobal        // non-global address space
	fOverride         // has an entry in Scorer.ovr
	fInHeap           // heapAt is the time of a live heap item

	fNever = fAllowed | fNonGlobal
)

// probeSlot is one probe's part of a key's score, as of entry.last. The
// part is only kept when ProbeCap is on.
type probeSlot struct {
	id events.ProbeID
	c  float32
}

type typeCount struct {
	t events.Type
	n uint32
}

// entry is the state of one key. It holds no pointers (see key).
type entry struct {
	score   float64 // as of last
	last    int64   // time of the latest event (score's time base)
	first   int64
	since   int64 // start of the current listing
	minEnd  int64 // the current listing may not end before
	lastEnd int64 // end of the latest listing, for OffenceMemory
	heapAt  int64
	k       key

	offences uint16 // listings counted for escalation
	flags    uint8
	nprobe   uint8
	ntypes   uint8
	types    [inlineTypes]events.Type
	counts   [inlineTypes]uint32
	probes   [maxProbes]probeSlot
}

// listing is one period on the list.
type listing struct {
	start, end        int64
	open              bool
	reason, endReason string
}

// override is a manual decision of an administrator.
type override struct {
	unblock    bool
	set, until int64
	reason     string
}

// keyed is a change with its key, to sort by.
type keyed struct {
	k key
	Change
}

// Change is a listing decision: Key enters (Listed) or leaves the list at
// Time (Unix nanoseconds). Reason says why, for logs and explanations.
type Change struct {
	Key    netip.Prefix `json:"key"`
	Listed bool         `json:"listed"`
	Time   int64        `json:"time"`
	Reason string       `json:"reason"`
}

// Scorer keeps a decaying score per key and decides listings. It is not
// safe for concurrent use, and never reads the clock: all times come from
// events and arguments, so the same calls always give the same results.
type Scorer struct {
	cfg        Config
	v6bits     int
	hl, invHL  float64 // half-life and its inverse, in nanoseconds
	capOn      bool
	capv       float64 // points one probe may contribute
	negligible float64 // a score below this is nothing
	entryAt    float64 // Entry less the decay of one burst, see burstWindow
	weights    []float64
	allow      ranges

	index table
	ents  entries
	more  map[key][]typeCount // types beyond the inline ones
	hist  map[key][]listing
	ovr   map[key]override
	heap  deadlines

	listed  int
	stats   Stats
	changes []keyed // Tick's buffers
	forget  []key
	// Reasons for ends of listings, made once: a tick that ends 100k
	// listings must not format 100k strings.
	whyLow, whyStale string
	tagBuf           []string
}

// Events of one burst count as if they came at once: the decay between
// them must not decide a listing. Without this, four logins of weight 2.5
// would list when they arrive in one batch (exactly 10) and not when they
// arrive seconds apart (9.9997). So a score reaches the entry threshold when
// it is within the decay of one burst (a minute: 0.1 % at the default
// half-life of 12 h) below it, and never more than maxBurstTolerance below.
const (
	burstWindow       = time.Minute
	maxBurstTolerance = 0.01
)

// New returns an empty scorer. Zero and invalid fields of cfg take their
// defaults (see Config.Check).
func New(cfg Config) *Scorer {
	cfg = cfg.normalise()
	s := &Scorer{
		cfg:        cfg,
		v6bits:     cfg.v6bits(),
		hl:         float64(cfg.HalfLife),
		capOn:      cfg.ProbeCap < 1,
		capv:       cfg.ProbeCap * cfg.Entry,
		negligible: cfg.Entry / 100,
		allow:      rangesOf(cfg.Allow),
		index:      newTable(0),
		more:       map[key][]typeCount{},
		hist:       map[key][]listing{},
		ovr:        map[key]override{},
	}
	s.invHL = 1 / s.hl
	s.entryAt = cfg.Entry * max(math.Exp2(-float64(burstWindow)*s.invHL), 1-maxBurstTolerance)
	s.whyLow = fmt.Sprintf("score below the exit threshold %g", cfg.Exit)
	s.whyStale = fmt.Sprintf("no event for %v", cfg.MaxAge)
	s.weights = make([]float64, events.Count())
	for t := range s.weights {
		s.weights[t] = cfg.weightOf(events.Type(t))
	}
	return s
}

// Config returns the configuration in effect, defaults filled in.
func (s *Scorer) Config() Config { return s.cfg }

// weight returns the weight of t, resolving types registered after New on
// first sight.
func (s *Scorer) weight(t events.Type) float64 {
	if int(t) < len(s.weights) {
		return s.weights[t]
	}
	if int(t) >= events.Count() {
		return 0 // not a type (yet): never cache it
	}
	for len(s.weights) < events.Count() {
		s.weights = append(s.weights, s.cfg.weightOf(events.Type(len(s.weights))))
	}
	return s.weights[t]
}

// Key returns the key an address is scored under: the address itself,
// unmapped, or its IPv6 aggregate. It is the zero Prefix for an invalid
// address.
func (s *Scorer) Key(a netip.Addr) netip.Prefix {
	k, ok := keyOf(a, s.v6bits)
	if !ok {
		return netip.Prefix{}
	}
	return k.prefix(s.v6bits)
}

// Observe scores one event at its Time and returns the listing it causes,
// if any. Events of unknown types, of weight 0 or without an address are
// ignored. Events may come slightly out of order: an older event counts
// with the weight it would have decayed to.
func (s *Scorer) Observe(e *events.Event) (Change, bool) {
	w := s.weight(e.Type)
	k, ok := keyOf(e.Addr, s.v6bits)
	if !(w > 0) || !ok {
		s.stats.Ignored++
		return Change{}, false
	}
	s.stats.Events++
	t := e.Time
	i, ok := s.index.get(k, &s.ents)
	if !ok {
		i = s.add(k, t)
	}
	en := s.ents.at(i)
	if en.flags&fSeen == 0 {
		// Nothing scored yet (a new key, or one an override created), so
		// the time base can move freely.
		en.flags |= fSeen
		en.first, en.last = t, t
	}
	switch {
	case t > en.last:
		d := math.Exp2((float64(en.last) - float64(t)) * s.invHL)
		en.score *= d
		if s.capOn {
			for j := range en.nprobe {
				en.probes[j].c *= float32(d)
			}
		}
		en.last = t
	case t < en.last:
		w *= math.Exp2((float64(t) - float64(en.last)) * s.invHL)
		en.first = min(en.first, t)
	}
	en.score += s.credit(en, e.Probe, w)
	s.count(en, e.Type)
	if en.flags&(fListed|fNever) == 0 && en.score >= s.entryAt && !s.unblocked(en, t) {
		c := s.list(en, t, false, fmt.Sprintf("score %.1f reached the entry threshold %g with %s", en.score, s.cfg.Entry, e.Type))
		s.schedule(en, t)
		return c, true
	}
	return Change{}, false
}

// credit returns what an event of weight w from probe p adds to the score,
// after the probe cap, and records the probe.
func (s *Scorer) credit(en *entry, p events.ProbeID, w float64) float64 {
	for j := range en.nprobe {
		sl := &en.probes[j]
		if sl.id == p {
			if s.capOn {
				w = min(w, max(s.capv-float64(sl.c), 0))
				sl.c += float32(w)
			}
			return w
		}
	}
	if en.nprobe < maxProbes {
		sl := probeSlot{id: p}
		if s.capOn {
			w = min(w, s.capv)
			sl.c = float32(w)
		}
		en.probes[en.nprobe] = sl
		en.nprobe++
		return w
	}
	// A ninth sensor: the key already has more independent witnesses than
	// any cap asks for, so the rest count in full.
	en.flags |= fProbesFull
	return w
}

func (s *Scorer) count(en *entry, t events.Type) {
	for j := range en.ntypes {
		if en.types[j] == t {
			if en.counts[j] < math.MaxUint32 {
				en.counts[j]++
			}
			return
		}
	}
	if en.ntypes < inlineTypes {
		en.types[en.ntypes], en.counts[en.ntypes] = t, 1
		en.ntypes++
		return
	}
	more := s.more[en.k]
	for j := range more {
		if more[j].t == t {
			if more[j].n < math.MaxUint32 {
				more[j].n++
			}
			return
		}
	}
	s.more[en.k] = append(more, typeCount{t, 1})
}

// add creates the entry of a new key at time t.
func (s *Scorer) add(k key, t int64) uint32 {
	i := s.ents.grow()
	*s.ents.at(i) = entry{k: k, first: t, last: t, flags: s.classify(k)}
	s.index.insert(k, i)
	s.schedule(s.ents.at(i), t)
	return i
}

// classify returns the never-listed flags of a key.
func (s *Scorer) classify(k key) uint8 {
	var f uint8
	if s.allow.overlaps(k, s.v6bits) {
		f |= fAllowed
	}
	switch {
	case !s.cfg.ListNonGlobal:
		if isNonGlobal(k, s.v6bits) {
			f |= fNonGlobal
		}
	case floor.meets(k, s.v6bits):
		f |= fNonGlobal // never, whatever the configuration
	}
	return f
}

// unblocked reports whether an administrator keeps the key off the list.
func (s *Scorer) unblocked(en *entry, t int64) bool {
	if en.flags&fOverride == 0 {
		return false
	}
	o := s.ovr[en.k]
	return o.unblock && o.until > t
}

// scoreAt is the score decayed to t.
func (s *Scorer) scoreAt(en *entry, t int64) float64 {
	if t <= en.last {
		return en.score
	}
	return en.score * math.Exp2((float64(en.last)-float64(t))*s.invHL)
}

// decayTo returns when the score falls to level, if no event comes.
func (s *Scorer) decayTo(en *entry, level float64) int64 {
	if en.score <= level {
		return en.last
	}
	dt := math.Ceil(s.hl * math.Log2(en.score/level))
	if dt >= math.MaxInt64/2 {
		return math.MaxInt64
	}
	return satAdd(en.last, time.Duration(dt))
}

func satAdd(t int64, d time.Duration) int64 {
	if d > 0 && t > math.MaxInt64-int64(d) {
		return math.MaxInt64
	}
	if d < 0 && t < math.MinInt64-int64(d) {
		return math.MinInt64
	}
	return t + int64(d)
}

// minDuration is the shortest listing after n remembered offences.
func (s *Scorer) minDuration(n uint16) time.Duration {
	d := s.cfg.MinDuration
	for range n {
		if d >= s.cfg.MaxDuration/2 {
			return s.cfg.MaxDuration
		}
		d *= 2
	}
	return min(d, s.cfg.MaxDuration)
}

// offences is the number of listings still remembered at t.
func (s *Scorer) offences(en *entry, t int64) uint16 {
	if en.offences > 0 && en.flags&fListed == 0 && t >= satAdd(en.lastEnd, s.cfg.OffenceMemory) {
		return 0
	}
	return en.offences
}

// Why a listing ends.
const (
	endScore = iota
	endStale
	endAllowed
	endNonGlobal
)

// end returns when the current listing ends if nothing else happens, not
// counting a manual block, and why.
func (s *Scorer) end(en *entry) (int64, int) {
	switch {
	case en.flags&fAllowed != 0:
		return math.MinInt64, endAllowed
	case en.flags&fNonGlobal != 0:
		return math.MinInt64, endNonGlobal
	}
	stale := satAdd(max(en.last, en.since), s.cfg.MaxAge)
	low := max(en.minEnd, s.decayTo(en, s.cfg.Exit))
	if stale <= low {
		return stale, endStale
	}
	return low, endScore
}

// forgetAt returns when an unlisted key without overrides may be dropped.
func (s *Scorer) forgetAt(en *entry) int64 {
	at := max(satAdd(en.last, s.cfg.Forget), s.decayTo(en, s.negligible))
	if en.offences > 0 {
		at = max(at, satAdd(en.lastEnd, s.cfg.OffenceMemory))
	}
	return at
}

// nextAt returns when Tick must look at the key again.
func (s *Scorer) nextAt(en *entry) int64 {
	at := int64(math.MaxInt64)
	var o override
	if en.flags&fOverride != 0 {
		o = s.ovr[en.k]
		at = o.until
	}
	switch {
	case en.flags&fListed != 0:
		if en.flags&fOverride != 0 && !o.unblock && en.flags&fNever == 0 {
			return at // the block holds it; look again when the block ends
		}
		d, _ := s.end(en)
		return min(at, d)
	case en.flags&fOverride != 0:
		return at // an override pins the state until it ends
	}
	return s.forgetAt(en)
}

// schedule makes sure the key has a heap item no later than its next
// deadline, and after t.
func (s *Scorer) schedule(en *entry, t int64) {
	at := s.nextAt(en)
	if at <= t {
		at = t + 1
	}
	if en.flags&fInHeap == 0 || at < en.heapAt {
		en.flags |= fInHeap
		en.heapAt = at
		s.heap.push(item{at, en.k})
	}
}

// list puts the key on the list at t. A manual listing has no minimum
// duration of its own: the block sets how long it lasts.
func (s *Scorer) list(en *entry, t int64, manual bool, reason string) Change {
	en.offences = s.offences(en, t)
	en.since = t
	en.minEnd = t
	if !manual {
		en.minEnd = satAdd(t, s.minDuration(en.offences))
	}
	if en.offences < math.MaxUint16 {
		en.offences++
	}
	en.flags |= fListed
	s.listed++
	s.record(en.k, listing{start: t, open: true, reason: reason})
	return Change{Key: en.k.prefix(s.v6bits), Listed: true, Time: t, Reason: reason}
}

// unlist takes the key off the list at t.
func (s *Scorer) unlist(en *entry, t int64, reason string) Change {
	en.flags &^= fListed
	s.listed--
	en.lastEnd = t
	if h := s.hist[en.k]; len(h) > 0 && h[len(h)-1].open {
		h[len(h)-1].open = false
		h[len(h)-1].end = t
		h[len(h)-1].endReason = reason
	}
	return Change{Key: en.k.prefix(s.v6bits), Time: t, Reason: reason}
}

// record appends to a key's bounded history.
func (s *Scorer) record(k key, l listing) {
	h := s.hist[k]
	if len(h) >= s.cfg.History {
		h = append(h[:0], h[len(h)-s.cfg.History+1:]...)
	}
	s.hist[k] = append(h, l)
}

// Tick applies the passage of time up to now: listings end, overrides
// expire, quiet keys are forgotten. Changes are emitted in key order. Call
// it about every second; it costs nothing when nothing is due.
func (s *Scorer) Tick(now time.Time, emit func(Change)) {
	t := now.UnixNano()
	s.changes, s.forget = s.changes[:0], s.forget[:0]
	for len(s.heap) > 0 && s.heap[0].at <= t {
		it := s.heap.pop()
		i, ok := s.index.get(it.k, &s.ents)
		if !ok {
			continue
		}
		en := s.ents.at(i)
		if en.flags&fInHeap == 0 || en.heapAt != it.at {
			continue // stale: a nearer deadline was pushed since
		}
		en.flags &^= fInHeap
		c, changed, forget := s.evaluate(i, t)
		if changed {
			s.changes = append(s.changes, keyed{en.k, c})
		}
		if forget {
			s.forget = append(s.forget, en.k)
		}
	}
	// Within a tick, order by key, so that neither the output nor the
	// table (whose order removals change) depends on how many stale items
	// happened to sit in the heap: a restored scorer goes on exactly as
	// the original would have.
	slices.SortFunc(s.forget, key.cmp)
	for _, k := range s.forget {
		i, _ := s.index.get(k, &s.ents)
		s.remove(i)
	}
	slices.SortFunc(s.changes, func(a, b keyed) int { return a.k.cmp(b.k) })
	for _, c := range s.changes {
		emit(c.Change)
	}
}

// evaluate brings one key up to date at t: expired override, end or start
// of a listing. It reschedules the key, or reports that it may be
// forgotten.
func (s *Scorer) evaluate(i uint32, t int64) (c Change, changed, forget bool) {
	en := s.ents.at(i)
	var o override
	blockEnded := false
	if en.flags&fOverride != 0 {
		o = s.ovr[en.k]
		if o.until <= t {
			delete(s.ovr, en.k)
			en.flags &^= fOverride
			blockEnded = !o.unblock
		}
	}
	block := en.flags&fOverride != 0 && !o.unblock
	unblock := en.flags&fOverride != 0 && o.unblock
	switch {
	case en.flags&fListed != 0:
		if en.flags&fNever == 0 && block {
			break
		}
		if d, why := s.end(en); d <= t {
			reason := s.endReason(why)
			if blockEnded && why == endScore {
				// The block held the listing; its score never did.
				reason = whyBlockEnded
			}
			c, changed = s.unlist(en, t, reason), true
		}
	case en.flags&fNever != 0 || unblock:
	case block:
		c, changed = s.list(en, t, true, "manual block: "+o.reason), true
	case s.scoreAt(en, t) >= s.entryAt:
		// An unblock ended on a key that kept attacking.
		c, changed = s.list(en, t, false, fmt.Sprintf("score %.1f above the entry threshold %g when the unblock ended",
			s.scoreAt(en, t), s.cfg.Entry)), true
	case en.flags&fOverride == 0 && t >= s.forgetAt(en):
		return c, false, true
	}
	s.schedule(en, t)
	return
}

// whyBlockEnded ends a listing that a manual block held.
const whyBlockEnded = "manual block ended"

func (s *Scorer) endReason(why int) string {
	switch why {
	case endAllowed:
		return "allow-list"
	case endNonGlobal:
		return "non-global address"
	case endStale:
		return s.whyStale
	}
	return s.whyLow
}

// remove forgets entry i, moving the last entry into its place.
func (s *Scorer) remove(i uint32) {
	k := s.ents.at(i).k
	s.index.remove(k, &s.ents)
	delete(s.more, k)
	delete(s.hist, k)
	if last := s.ents.n - 1; i != last {
		*s.ents.at(i) = *s.ents.at(last)
		s.index.move(s.ents.at(i).k, i, &s.ents)
	}
	s.ents.pop()
	s.stats.Forgotten++
}

// Len returns the number of listed keys.
func (s *Scorer) Len() int { return s.listed }

// Stats are counters for metrics.
type Stats struct {
	Keys      int    `json:"keys"`      // keys with state
	Listed    int    `json:"listed"`    // keys on the list
	Overrides int    `json:"overrides"` // manual blocks and unblocks in force
	Events    uint64 `json:"events"`    // events scored
	Ignored   uint64 `json:"ignored"`   // events of weight 0 or without an address
	Forgotten uint64 `json:"forgotten"` // keys dropped after a quiet period
}

// Stats returns the counters.
func (s *Scorer) Stats() Stats {
	st := s.stats
	st.Keys, st.Listed, st.Overrides = int(s.ents.n), s.listed, len(s.ovr)
	return st
}
