package passwords

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func checkCorpus(t *testing.T, c *Corpus, m model, prefixes []uint32) {
	t.Helper()
	for _, p := range prefixes {
		got, err := c.Lookup(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := m.bucket(p); !slices.Equal(got, want) {
			t.Fatalf("Lookup(%05x):\n got %v\nwant %v", p, got, want)
		}
	}
}

func TestCorpusLiveLayerAndCompact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	path := filepath.Join(t.TempDir(), "corpus.idx")
	entries, m := randomEntries(rng, 2000)
	// Put a file entry into the bucket of "secret" so that file and live
	// entries of one bucket must be merged in order.
	secret := HashPassword("secret")
	near := secret
	near[19] ^= 0xff
	fileNear := Entry{Hash: near, HIBP: 7}
	entries = append(entries, fileNear, Entry{Hash: secret, HIBP: 100})
	m.add(fileNear)
	m.add(Entry{Hash: secret, HIBP: 100})
	if _, err := Build(context.Background(), path, entries, BuilderOptions{}); err != nil {
		t.Fatal(err)
	}

	c, err := OpenCorpus(path, CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cut := time.Unix(1800000000, 0)
	c.now = func() time.Time { return cut }

	c.Add("secret", SourceTelnet)
	c.Add("secret", SourceHaaS)
	m.add(Entry{Hash: secret, Count: 2, Sources: SourceTelnet | SourceHaaS})
	var prefixes []uint32
	for i := 0; i < 300; i++ {
		pw := string(rune('a'+i%26)) + string(rune('0'+i%10)) + string(rune(i))
		src := Source(1 << (i % 5))
		c.Add(pw, src)
		m.add(Entry{Hash: HashPassword(pw), Count: 1, Sources: src})
		prefixes = append(prefixes, HashPassword(pw).Prefix())
	}
	// An existing file hash gains a source in the live layer ("secret" is
	// checked on its own below, so the random pick leaves it alone).
	for h := range m {
		if len(prefixes) > 310 {
			break
		}
		if h == secret {
			continue
		}
		c.AddHash(h, 3, SourceFTP)
		m.add(Entry{Hash: h, Count: 3, Sources: SourceFTP})
		prefixes = append(prefixes, h.Prefix())
	}
	prefixes = append(prefixes, secret.Prefix(), 0, NumBuckets-1)
	checkCorpus(t, c, m, prefixes)
	if e, ok, _ := c.Get(secret); !ok || e.Count != 2 || e.HIBP != 100 || e.Sources != SourceTelnet|SourceHaaS {
		t.Fatalf("Get(secret) = %v %v", e, ok)
	}
	st := c.Stats()
	if st.FileHashes == 0 || st.LiveHashes < 300 {
		t.Fatalf("Stats = %+v", st)
	}

	if err := c.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = c.Stats()
	if st.LiveHashes != 0 || st.FileHashes != uint64(len(m)) || !st.Watermark.Equal(cut) {
		t.Fatalf("after Compact: %+v, want %d file hashes, watermark %v", st, len(m), cut)
	}
	checkCorpus(t, c, m, prefixes)
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	checkModel(t, ix, m)
	ix.Close()
	if err := c.Compact(context.Background()); err != nil {
		t.Fatal(err) // empty live layer: nothing to do
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestCorpusWithoutFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.idx")
	c, err := OpenCorpus(path, CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if es, err := c.Lookup(0xe5e9f); err != nil || len(es) != 0 {
		t.Fatalf("Lookup = %v, %v", es, err)
	}
	if !c.Watermark().IsZero() {
		t.Fatal("Watermark of a missing file")
	}
	c.Add("secret", SourceSMTP)
	if err := c.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if e, ok, _ := c.Get(HashPassword("secret")); !ok || e.Count != 1 || e.Sources != SourceSMTP {
		t.Fatalf("Get = %v %v", e, ok)
	}
	if _, err := c.Lookup(NumBuckets); err == nil {
		t.Fatal("Lookup(2^20) succeeded")
	}
}

func TestOpenCorpusCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.idx")
	if err := os.WriteFile(path, []byte("HASH:COUNT\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCorpus(path, CorpusOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("OpenCorpus = %v, want ErrCorrupt", err)
	}
}

// TestCompactConcurrent adds and looks up while compactions run; with
// -race it checks the locking, and at the end that no add was lost.
func TestCompactConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.idx")
	c, err := OpenCorpus(path, CorpusOptions{MaxLive: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { c.Run(ctx, 5*time.Millisecond); close(runDone) }()
	const writers, adds = 4, 400
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < adds; i++ {
				c.Add(string(rune('A'+i%7)), Source(1<<(w%5)))
				if _, err := c.Lookup(HashPassword(string(rune('A' + i%7))).Prefix()); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	cancel()
	<-runDone
	if err := c.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	var total uint64
	for i := 0; i < 7; i++ {
		e, ok, err := c.Get(HashPassword(string(rune('A' + i))))
		if err != nil || !ok {
			t.Fatalf("Get: %v %v", ok, err)
		}
		total += e.Count
		if e.Sources != SourceTelnet|SourceSMTP|SourceFTP|SourceHTTP {
			t.Errorf("sources %v", e.Sources)
		}
	}
	if total != writers*adds {
		t.Fatalf("total count %d, want %d", total, writers*adds)
	}
	if c.Stats().FileHashes != 7 {
		t.Fatalf("file hashes %d", c.Stats().FileHashes)
	}
}

func TestCorpusReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.idx")
	if _, err := Build(context.Background(), path, []Entry{{Hash: HashPassword("x"), HIBP: 1}}, BuilderOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := OpenCorpus(path, CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Add("y", SourceHTTP)
	if _, err := Build(context.Background(), path, []Entry{{Hash: HashPassword("z"), HIBP: 1}}, BuilderOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	for pw, want := range map[string]bool{"x": false, "y": true, "z": true} {
		if _, ok, _ := c.Get(HashPassword(pw)); ok != want {
			t.Errorf("Get(%q) = %v, want %v", pw, ok, want)
		}
	}
}

// CompactAt stores the caller's watermark, not the clock's, and Full
// follows MaxLive.
func TestCorpusCompactAt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "corpus.idx")
	c, err := OpenCorpus(path, CorpusOptions{MaxLive: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.now = func() time.Time { return time.Unix(1900000000, 0) }
	if err := c.CompactAt(context.Background(), time.Time{}); err == nil {
		t.Error("zero watermark accepted")
	}
	c.Add("one", SourceTelnet)
	if c.Full() {
		t.Error("full with one hash of two")
	}
	c.Add("two", SourceFTP)
	c.Add("two", SourceFTP)
	if !c.Full() {
		t.Error("not full with two hashes of two")
	}
	wm := time.Unix(1800000000, 0)
	if err := c.CompactAt(context.Background(), wm); err != nil {
		t.Fatal(err)
	}
	if !c.Watermark().Equal(wm) || c.Full() {
		t.Errorf("watermark %v, want %v; full %v", c.Watermark(), wm, c.Full())
	}
	if e, ok, _ := c.Get(HashPassword("two")); !ok || e.Count != 2 {
		t.Errorf("two: %+v %v", e, ok)
	}
	// Nothing to compact: the watermark stays.
	if err := c.CompactAt(context.Background(), wm.Add(time.Hour)); err != nil || !c.Watermark().Equal(wm) {
		t.Errorf("empty compaction: %v, watermark %v", err, c.Watermark())
	}
	// Compact still takes the clock.
	c.Add("three", SourceSMTP)
	if err := c.Compact(context.Background()); err != nil || !c.Watermark().Equal(time.Unix(1900000000, 0)) {
		t.Errorf("Compact: %v, watermark %v", err, c.Watermark())
	}
}
