package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/passwords"
	"github.com/dynfw/sentinel/internal/store"
)

// corpusFile is the password checker's index in the data directory.
const corpusFile = "passwords.idx"

// openCorpus opens the password checker's corpus and replays the
// passwords stored from its last compaction (its watermark) until to, as
// far as the store's raw retention reaches, so that a restart loses none.
func openCorpus(ctx context.Context, data string, st store.Store, to time.Time, log *slog.Logger) (*passwords.Corpus, error) {
	c, err := passwords.OpenCorpus(filepath.Join(data, corpusFile), passwords.CorpusOptions{
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
func replayPasswords(ctx context.Context, c *passwords.Corpus, st store.Store, from, to time.Time) (uint64, error) {
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
	store  store.Store
	log    *slog.Logger
	// poll is the time between passes, settle the margin above, compact
	// the time between compactions (sooner when the live layer is full).
	poll, settle, compact time.Duration
	now                   func() time.Time
	// last: every row before it is in the corpus (live layer or file),
	// none from it on. A whole second.
	last time.Time
}

// tailStart is where the tail starts at now: the end of the first range
// that openCorpus replays.
func (t *corpusTail) tailStart() time.Time {
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
// when the live layer is full), until ctx ends.
func (t *corpusTail) run(ctx context.Context) {
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

const passwordsUsage = `Usage: sentinel passwords import [--data DIR] [--replace] FILE

Loads a Have I Been Pwned SHA-1 file (HASH:COUNT per line, any size) into
the password checker's index <data>/passwords.idx, merged with what is
there unless --replace. DIR is the data directory of ` + "`sentinel run`" + `, or
that of ` + "`sentinel view`" + ` (its --data, default <server data>/view), which
keeps its own index. Stop the process that serves the index first, or
restart it right after: when it next compacts, a running one writes its
old index over the import.
`

// cmdPasswords manages the password checker's corpus.
func cmdPasswords(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var data string
	var replace bool
	c := newCommand("sentinel passwords", passwordsUsage)
	c.opts.String(&data, "data", nil, defaultDataDir(), "data directory of sentinel run, or of sentinel view (default "+defaultViewDataDir()+")")
	c.opts.Bool(&replace, "replace", nil, false, "replace the index instead of merging into it")
	sub, rest, code, ok := splitSubcommand(c, args, "", "", stdout, stderr)
	if !ok {
		return code
	}
	if sub != "import" {
		return c.usageError(stderr, "unknown command %q (import)", sub)
	}
	if len(rest) != 1 {
		return c.usageError(stderr, "import takes one FILE")
	}
	if control.Running(ctx, data) {
		fmt.Fprintf(stderr, "sentinel passwords: warning: a sentinel server runs on %s: when it next compacts its index it writes its old one over this import; restart it right after the import\n", data)
	}
	f, err := os.Open(rest[0])
	if err != nil {
		fmt.Fprintf(stderr, "sentinel passwords: %v\n", err)
		return 1
	}
	defer f.Close()
	fi, _ := f.Stat()
	bar := passwords.NewProgressBar(stderr)
	st, err := passwords.ImportWith(ctx, f, fi.Size(), filepath.Join(data, corpusFile), passwords.ImportOptions{
		Merge: !replace, TempDir: data, Progress: bar.Update,
	})
	bar.Finish()
	if err != nil {
		fmt.Fprintf(stderr, "sentinel passwords: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "imported %d hashes from %d lines in %v; the index holds %d hashes\n",
		st.Imported, st.Lines, st.Elapsed.Round(time.Millisecond), st.Hashes)
	if st.Malformed > 0 {
		fmt.Fprintf(stdout, "%d malformed lines, the first:\n", st.Malformed)
		for _, m := range st.Examples {
			fmt.Fprintf(stdout, "  line %d: %s (%q)\n", m.Line, m.Reason, m.Text)
		}
	}
	return 0
}
