// Package feed keeps the password checker's corpus (package passwords)
// current from the statistics store, the same way for the two processes
// that serve it: `sentinel run`, which sees the events and adds their
// passwords as they happen (Options.Live), and `sentinel view`, which runs
// apart from the ingest and reads the password rows back from the store
// (the tail, below). Both open the corpus with Open, which replays the rows
// stored since the index's last compaction, and keep it with Feed.Run.
package feed

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/dynfw/sentinel/internal/passwords"
	"github.com/dynfw/sentinel/internal/store"
)

// IndexFile is the password checker's index in a data directory.
const IndexFile = "passwords.idx"

// Source is what the feed reads of a store: the password rows (store.Store
// implements it).
type Source interface {
	Query(ctx context.Context, q store.Query) ([]store.Row, error)
}

// Options configure a Feed.
type Options struct {
	Store  Source
	Logger *slog.Logger
	// Live: the process sees the events and adds their passwords to the
	// corpus itself (Corpus.Add, from the recorder); Open replays the
	// stored rows to the end of the current second and Run only compacts.
	// Otherwise Run tails the store: every Poll it adds the rows of the
	// seconds that ended Settle ago.
	Live bool
	// Poll and Settle: the tail's period and margin (see corpusTail).
	Poll, Settle time.Duration
	// Compact is the time between compactions (default 15 minutes;
	// sooner when the live layer is full).
	Compact time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Feed is an open corpus and what keeps it current.
type Feed struct{ t *corpusTail }

// Open opens the corpus in dir (IndexFile) and replays the password rows
// stored since its last compaction.
func Open(ctx context.Context, dir string, o Options) (*Feed, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Compact <= 0 {
		o.Compact = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if !o.Live && o.Poll <= 0 {
		return nil, fmt.Errorf("password corpus: the poll interval must be positive")
	}
	t := &corpusTail{store: o.Store, log: o.Logger, poll: o.Poll, settle: o.Settle, compact: o.Compact, now: o.Now, live: o.Live}
	if err := t.open(ctx, dir); err != nil {
		return nil, err
	}
	return &Feed{t: t}, nil
}

// Corpus is the open corpus.
func (f *Feed) Corpus() *passwords.Corpus { return f.t.corpus }

// Run keeps the corpus current until ctx ends.
func (f *Feed) Run(ctx context.Context) { f.t.run(ctx) }

// Close closes the corpus.
func (f *Feed) Close() error { return f.t.corpus.Close() }

// openCorpus opens the password checker's corpus and replays the
// passwords stored from its last compaction (its watermark) until to, as
// far as the store's raw retention reaches, so that a restart loses none.
func openCorpus(ctx context.Context, data string, st Source, to time.Time, log *slog.Logger) (*passwords.Corpus, error) {
	c, err := passwords.OpenCorpus(filepath.Join(data, IndexFile), passwords.CorpusOptions{
		Logf: func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return nil, fmt.Errorf("password corpus: %w", err)
	}
	from := c.Watermark()
	if from.IsZero() {
		from = time.Unix(0, 0) // never compacted: every stored row
	}
	if !from.Before(to) {
		return c, nil
	}
	n, err := replayPasswords(ctx, c, st, from, to)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("password corpus: replaying stored passwords: %w", err)
	}
	if n > 0 {
		log.Info("password corpus: replayed stored passwords", "since", from, "until", to, "passwords", n)
	}
	return c, nil
}

// replayPasswords adds the password rows stored in [from, to) to c and
// returns how many it added. It adds nothing unless the query succeeds.
func replayPasswords(ctx context.Context, c *passwords.Corpus, st Source, from, to time.Time) (uint64, error) {
	rows, err := st.Query(ctx, store.Query{Table: store.Passwords, Precision: store.Raw, From: from, To: to,
		GroupBy: []store.Dim{store.DimTrap, store.DimPassword}})
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, r := range rows {
		if r.Keys[1] == "" || r.Value <= 0 {
			continue
		}
		src, _ := passwords.ParseSource(r.Keys[0])
		c.AddHash(passwords.HashPassword(r.Keys[1]), uint64(r.Value), src)
		n += uint64(r.Value)
	}
	return n, nil
}

// corpusTail keeps the corpus of `sentinel view` current. That process
// sees no events, only the store that the ingest process fills, so it
// reads the password rows back: every poll, the rows of [last, end) with
// end = now − settle in whole seconds, which it adds to the corpus before
// moving last to end.
//
// Each stored row is counted once. The store keeps whole seconds and a
// query covers From <= time < To, so the successive ranges [last, end)
// neither overlap nor leave a gap: a row is counted by the one pass whose
// range holds its time. A pass whose query fails adds nothing and leaves
// last where it was, so the next pass reads that range again. Compaction
// runs in the same goroutine, between passes, with CompactAt(last): the
// file's watermark is exactly where the live layer ends, so a restart,
// which replays from the watermark, counts nothing twice either.
//
// The price is the settle margin. A row reaches the store some time after
// its own time (the probe's batching, the network, the recorder's insert
// every second, a slow database); the tail reads a second only settle
// after it ended, so every row stored within settle is counted. A row
// stored later than that, with a time the tail has already passed, is
// missed until the next restart replays the stored rows past the
// watermark. Reading a window again to catch such rows would count the
// others twice, since the rows carry no identity or insertion sequence to
// tell them apart; an attempt missed now and then matters less to a
// password checker than counts that grow by themselves. A larger settle
// misses fewer rows and shows new passwords later (settle plus at most one
// poll).
type corpusTail struct {
	corpus *passwords.Corpus
	store  Source
	log    *slog.Logger
	// poll is the time between passes, settle the margin above, compact
	// the time between compactions (sooner when the live layer is full).
	poll, settle, compact time.Duration
	now                   func() time.Time
	// last: every row before it is in the corpus (live layer or file),
	// none from it on. A whole second.
	last time.Time
	// live: the corpus is fed as events happen (Corpus.Add from the
	// recorder), not from the store; see Options.Live.
	live bool
}

// tailStart is where the tail starts at now: the end of the first range
// that openCorpus replays. A live corpus replays to the end of the current
// second: the recorder adds what arrives from now on.
func (t *corpusTail) tailStart() time.Time {
	if t.live {
		return t.now().UTC().Truncate(time.Second).Add(time.Second)
	}
	return t.now().Add(-t.settle).Truncate(time.Second)
}

// open opens the corpus in data, replays what is stored up to the tail's
// start and sets last.
func (t *corpusTail) open(ctx context.Context, data string) error {
	start := t.tailStart()
	c, err := openCorpus(ctx, data, t.store, start, t.log)
	if err != nil {
		return err
	}
	t.corpus, t.last = c, start
	// A file compacted later than start (a clock stepped back) already
	// holds what lies before its watermark.
	if wm := c.Watermark(); wm.After(start) {
		t.last = wm.Truncate(time.Second)
		if t.last.Before(wm) {
			t.last = t.last.Add(time.Second)
		}
	}
	return nil
}

// pass adds the rows of [last, now − settle) and moves last.
func (t *corpusTail) pass(ctx context.Context) error {
	end := t.tailStart()
	if !end.After(t.last) {
		return nil
	}
	n, err := replayPasswords(ctx, t.corpus, t.store, t.last, end)
	if err != nil {
		return err
	}
	if n > 0 {
		t.log.Debug("password corpus: stored passwords added", "from", t.last, "to", end, "passwords", n)
	}
	t.last = end
	return nil
}

// run makes a pass every poll and compacts every compact interval (or
// when the live layer is full), until ctx ends. A live corpus is only
// compacted, with the clock as its watermark.
func (t *corpusTail) run(ctx context.Context) {
	if t.live {
		t.corpus.Run(ctx, t.compact)
		return
	}
	tick := time.NewTicker(t.poll)
	defer tick.Stop()
	compacted := t.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := t.pass(ctx); err != nil && ctx.Err() == nil {
			t.log.Warn("password corpus: reading stored passwords failed; will retry", "from", t.last, "err", err)
		}
		if t.corpus.Full() || t.now().Sub(compacted) >= t.compact {
			if err := t.corpus.CompactAt(ctx, t.last); err != nil && ctx.Err() == nil {
				t.log.Error("password corpus: compaction failed", "err", err)
			}
			compacted = t.now()
		}
	}
}
