package passwords

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"
)

// CorpusOptions tune a Corpus.
type CorpusOptions struct {
	// MaxLive is the number of distinct live hashes from which Run
	// compacts without waiting for its interval; default 1,000,000
	// (about 100 MB of live layer).
	MaxLive int
	// CacheMaxAge is the max-age of the range API's Cache-Control header;
	// default one hour, negative for no-store.
	CacheMaxAge time.Duration
	// Logf, if set, receives background compaction failures.
	Logf func(format string, args ...any)
}

// Corpus is the password corpus as the APIs see it: the index file plus an
// in-memory live layer of the passwords added since the file was built,
// merged at query time. Compact rebuilds the file from both. All methods
// are safe for concurrent use.
type Corpus struct {
	path string
	opts CorpusOptions

	compactMu sync.Mutex // one compaction or reload at a time
	mu        sync.RWMutex
	idx       *Index // nil while there is no file
	live      *liveLayer
	frozen    *liveLayer // the layer being compacted, still served
	wake      chan struct{}
	now       func() time.Time
}

// liveLayer holds the entries of the live layer by 20-bit prefix. Buckets
// are short (the honeypots add a few passwords per second against a
// million buckets), so they are unsorted slices.
type liveLayer struct {
	buckets map[uint32][]Entry
	n       int
}

func newLive() *liveLayer { return &liveLayer{buckets: make(map[uint32][]Entry)} }

func (l *liveLayer) add(e Entry) {
	p := e.Hash.Prefix()
	b := l.buckets[p]
	for i := range b {
		if b[i].Hash == e.Hash {
			b[i].merge(e)
			return
		}
	}
	l.buckets[p] = append(b, e)
	l.n++
}

// sorted returns every entry in hash order.
func (l *liveLayer) sorted() []Entry {
	out := make([]Entry, 0, l.n)
	for _, b := range l.buckets {
		out = append(out, b...)
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmpHash(&a.Hash, &b.Hash) })
	return out
}

// OpenCorpus opens the corpus stored at path. A missing file is an empty
// corpus (the first Compact creates it); a corrupt one is an error.
func OpenCorpus(path string, opts CorpusOptions) (*Corpus, error) {
	if opts.MaxLive <= 0 {
		opts.MaxLive = 1_000_000
	}
	if opts.CacheMaxAge == 0 {
		opts.CacheMaxAge = time.Hour
	}
	c := &Corpus{path: path, opts: opts, live: newLive(), wake: make(chan struct{}, 1), now: time.Now}
	ix, err := Open(path)
	switch {
	case err == nil:
		c.idx = ix
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, err
	}
	return c, nil
}

// Close closes the index file. The live layer is lost: it is rebuilt from
// the stored events newer than Watermark on the next start.
func (c *Corpus) Close() error {
	c.compactMu.Lock()
	defer c.compactMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.idx.Close()
	c.idx = nil
	return err
}

// HashPassword is the SHA-1 of the UTF-8 password, as the checker page
// computes it in the browser.
func HashPassword(password string) Hash { return sha1.Sum([]byte(password)) }

// Add counts one attempt of password seen by source.
func (c *Corpus) Add(password string, source Source) {
	c.AddHash(HashPassword(password), 1, source)
}

// AddHash adds count observations of a hash seen by sources.
func (c *Corpus) AddHash(h Hash, count uint64, sources Source) {
	if count == 0 {
		return
	}
	c.mu.Lock()
	c.live.add(Entry{Hash: h, Count: count, Sources: sources})
	full := c.live.n >= c.opts.MaxLive
	c.mu.Unlock()
	if full {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// Lookup returns every entry of a 20-bit prefix (0 ≤ prefix < NumBuckets)
// in hash order, file and live layer merged.
func (c *Corpus) Lookup(prefix uint32) ([]Entry, error) {
	return c.AppendRange(nil, prefix)
}

// AppendRange is Lookup appending to dst, so that a caller can reuse
// buffers.
func (c *Corpus) AppendRange(dst []Entry, prefix uint32) ([]Entry, error) {
	if prefix >= NumBuckets {
		return dst, fmt.Errorf("prefix %#x out of range", prefix)
	}
	start := len(dst)
	c.mu.RLock()
	if c.idx != nil {
		b, err := c.idx.Range(prefix)
		if err != nil {
			c.mu.RUnlock()
			return dst, err
		}
		for i, n := 0, b.Len(); i < n; i++ {
			dst = append(dst, b.At(i))
		}
	}
	fromFile := len(dst)
	if c.frozen != nil {
		dst = append(dst, c.frozen.buckets[prefix]...)
	}
	dst = append(dst, c.live.buckets[prefix]...)
	c.mu.RUnlock()
	if len(dst) == fromFile {
		return dst, nil
	}
	part := dst[start:]
	slices.SortStableFunc(part, func(a, b Entry) int { return cmpHash(&a.Hash, &b.Hash) })
	out := part[:0]
	for _, e := range part {
		if n := len(out); n > 0 && out[n-1].Hash == e.Hash {
			out[n-1].merge(e)
			continue
		}
		out = append(out, e)
	}
	return dst[:start+len(out)], nil
}

// Get returns the entry of one hash.
func (c *Corpus) Get(h Hash) (Entry, bool, error) {
	es, err := c.Lookup(h.Prefix())
	if err != nil {
		return Entry{}, false, err
	}
	for _, e := range es {
		if e.Hash == h {
			return e, true, nil
		}
	}
	return Entry{}, false, nil
}

// Warm pre-faults the mapping of the index file; see Index.Warm.
func (c *Corpus) Warm() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.idx == nil {
		return 0
	}
	return c.idx.Warm()
}

// CorpusStats describe a Corpus.
type CorpusStats struct {
	Path       string
	FileSize   int64
	FileHashes uint64
	// LiveHashes counts the distinct hashes of the live layer (some may
	// also be in the file).
	LiveHashes int
	Watermark  time.Time
}

// Stats describes the corpus.
func (c *Corpus) Stats() CorpusStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := CorpusStats{Path: c.path, LiveHashes: c.live.n}
	if c.frozen != nil {
		s.LiveHashes += c.frozen.n
	}
	if c.idx != nil {
		s.FileSize, s.FileHashes, s.Watermark = c.idx.Size(), c.idx.Len(), c.idx.Watermark()
	}
	return s
}

// Watermark is the time from which stored password events are not in the
// file: after a restart, the caller replays the events stored since then
// with Add. Zero when there is no file or it was imported without one.
func (c *Corpus) Watermark() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.idx == nil {
		return time.Time{}
	}
	return c.idx.Watermark()
}

// Compact rebuilds the file from the file and the live layer and swaps it
// in. Lookups and Adds continue meanwhile: the live layer is frozen and
// served until the new file is open, and new Adds go to a fresh layer. The
// old file and the frozen layer are already sorted, so this is a single
// streaming merge (no external sort). On failure the frozen layer is put
// back. Compacting an empty live layer does nothing. The new file's
// watermark is the time of the cut, which suits a corpus fed as events
// happen (Add from the recorder); see CompactAt for one fed from the store.
func (c *Corpus) Compact(ctx context.Context) error {
	return c.compact(ctx, time.Time{})
}

// CompactAt is Compact with the watermark chosen by the caller instead of
// the clock: for a corpus fed from stored events (Sentinel View apart from
// the ingest), whose live layer holds exactly the stored events before
// watermark (and after the file's own), and none from watermark on, so
// that the next start replays from there and counts each event once. So
// the caller must not have added events of watermark or later when it
// calls CompactAt (they would be in the file and replayed again); events
// added while it runs go to the new live layer, as with Compact.
func (c *Corpus) CompactAt(ctx context.Context, watermark time.Time) error {
	if watermark.IsZero() {
		return errors.New("password corpus compaction: zero watermark")
	}
	return c.compact(ctx, watermark)
}

// Full reports whether the live layer holds MaxLive hashes or more, when
// Run compacts without waiting for its interval.
func (c *Corpus) Full() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.live.n >= c.opts.MaxLive
}

func (c *Corpus) compact(ctx context.Context, watermark time.Time) error {
	c.compactMu.Lock()
	defer c.compactMu.Unlock()
	c.mu.Lock()
	if c.live.n == 0 {
		c.mu.Unlock()
		return nil
	}
	frozen, old, cut := c.live, c.idx, watermark
	if cut.IsZero() {
		cut = c.now()
	}
	c.frozen, c.live = frozen, newLive()
	c.mu.Unlock()

	newIdx, err := c.rebuild(ctx, old, frozen.sorted(), cut)
	c.mu.Lock()
	if err != nil {
		for _, b := range c.live.buckets {
			for _, e := range b {
				frozen.add(e)
			}
		}
		c.live, c.frozen = frozen, nil
		c.mu.Unlock()
		return fmt.Errorf("password corpus compaction: %w", err)
	}
	c.idx, c.frozen = newIdx, nil
	c.mu.Unlock()
	// No lookup can still hold the old mapping: they run under mu.RLock.
	return old.Close()
}

func (c *Corpus) rebuild(ctx context.Context, old *Index, live []Entry, cut time.Time) (*Index, error) {
	w, err := newWriter(c.path)
	if err != nil {
		return nil, err
	}
	i, n := 0, 0
	add := func(e Entry) error {
		for i < len(live) && cmpHash(&live[i].Hash, &e.Hash) < 0 {
			if err := w.add(live[i]); err != nil {
				return err
			}
			i++
		}
		if n++; n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return w.add(e)
	}
	if old != nil {
		if err := old.scan(add); err != nil {
			w.abort()
			return nil, err
		}
	}
	for ; i < len(live); i++ {
		if err := w.add(live[i]); err != nil {
			w.abort()
			return nil, err
		}
	}
	if _, err := w.commit(cut); err != nil {
		return nil, err
	}
	return Open(c.path)
}

// Reload reopens the file, after an offline Import replaced it. The live
// layer is kept.
func (c *Corpus) Reload() error {
	c.compactMu.Lock()
	defer c.compactMu.Unlock()
	ix, err := Open(c.path)
	if err != nil {
		return err
	}
	c.mu.Lock()
	old := c.idx
	c.idx = ix
	c.mu.Unlock()
	return old.Close()
}

// Run compacts every interval when the live layer is not empty, and sooner
// when it reaches MaxLive hashes, until ctx ends.
func (c *Corpus) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		}
		if err := c.Compact(ctx); err != nil && ctx.Err() == nil && c.opts.Logf != nil {
			c.opts.Logf("%v", err)
		}
	}
}

// Build writes an index file at path from entries (any order, duplicates
// merged). It is a convenience over Builder for small inputs and tests.
func Build(ctx context.Context, path string, entries []Entry, opts BuilderOptions) (uint64, error) {
	b := NewBuilder(opts)
	defer b.Close()
	for _, e := range entries {
		if err := b.Add(e); err != nil {
			return 0, err
		}
	}
	return b.Finish(ctx, path)
}
