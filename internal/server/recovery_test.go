package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/journal"
	"github.com/dynfw/sentinel/internal/publish"
	"github.com/dynfw/sentinel/internal/scoring"
	"github.com/dynfw/sentinel/internal/server/core"
)

// runningCore is a Core with its publisher running, as Server runs it.
type runningCore struct {
	t      *testing.T
	c      *core.Core
	cancel context.CancelFunc
	done   chan struct{}
}

func coreConfig(dir string) CoreConfig {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return CoreConfig{Config: core.Config{DataDir: dir, Scoring: scoring.DefaultConfig(), Logger: log,
		// No sync but the ones the core asks for: what is on disk when
		// the test copies the directory is what a kill -9 leaves.
		SyncInterval: time.Hour},
		Publisher: publish.Config{Listen: []string{"tcp://127.0.0.1:0"}, Logger: log}}
}

func startCore(t *testing.T, cfg CoreConfig) (*runningCore, error) {
	t.Helper()
	c, err := OpenCore(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningCore{t: t, c: c, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(rc.done); c.Publisher().Run(ctx) }()
	t.Cleanup(rc.kill)
	return rc, nil
}

func mustStartCore(t *testing.T, cfg CoreConfig) *runningCore {
	t.Helper()
	rc, err := startCore(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// list feeds logins of addr until it is listed and its delta published.
func (rc *runningCore) list(addr string) {
	rc.t.Helper()
	a := netip.MustParseAddr(addr)
	now := time.Now().UnixNano()
	var evs []events.Event
	for i := range 8 {
		evs = append(evs, events.Event{Time: now + int64(i), Type: events.TelnetLogin, Addr: a, Probe: 1, Source: events.FromZMQ})
	}
	rc.c.Process(evs)
	rc.sync()
	if _, ok := rc.c.Explain(a); !ok {
		rc.t.Fatalf("%s not known after its logins", addr)
	}
}

func (rc *runningCore) sync() {
	rc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rc.c.Publisher().Sync(ctx); err != nil {
		rc.t.Fatal(err)
	}
}

// stop is a graceful stop: the final snapshot, then close.
func (rc *runningCore) stop() {
	rc.t.Helper()
	if err := rc.c.Snapshot(context.Background(), true); err != nil {
		rc.t.Fatal(err)
	}
	rc.kill()
}

// kill ends the core without a snapshot. Call it after crashCopy: what a
// kill -9 leaves is the copy.
func (rc *runningCore) kill() {
	if rc.cancel == nil {
		return
	}
	rc.cancel()
	<-rc.done
	rc.c.Close()
	rc.cancel = nil
}

func (rc *runningCore) state() publish.State { return rc.c.Publisher().State() }

// crashCopy copies dir as a kill -9 at this moment would leave it: the
// files as the kernel has them, without what the process still buffers.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestCrashAfterCleanRestartGetsANewVersion is fault 2: stop cleanly,
// start, publish a delta, crash before the journal syncs. The next start
// must not come back with the old version: its serials were spent on
// content the journal never saw.
func TestCrashAfterCleanRestartGetsANewVersion(t *testing.T) {
	dir := t.TempDir()
	a := mustStartCore(t, coreConfig(dir))
	a.list("45.155.205.1")
	a.stop()

	b := mustStartCore(t, coreConfig(dir))
	clean := b.state()
	b.list("45.155.205.2")
	published := b.state()
	if published.Version != clean.Version || published.Serial != clean.Serial+1 {
		t.Fatalf("after the clean restart %+v, then %+v", clean, published)
	}
	crashed := crashCopy(t, dir)
	b.kill()

	c := mustStartCore(t, coreConfig(crashed))
	got := c.state()
	if got.Version <= published.Version {
		t.Fatalf("after the crash: version %d serial %d, but version %d already published serial %d with 45.155.205.2",
			got.Version, got.Serial, published.Version, published.Serial)
	}
	if got.Serial != 0 {
		t.Fatalf("serial %d after an unclean start", got.Serial)
	}
}

// TestCrashLoopVersionsIncrease: crashes in the same second still give
// every start a version above all the earlier ones.
func TestCrashLoopVersionsIncrease(t *testing.T) {
	dir := t.TempDir()
	var last uint64
	for i := range 4 {
		rc := mustStartCore(t, coreConfig(dir))
		v := rc.state().Version
		if i > 0 && v <= last {
			t.Fatalf("start %d: version %d after %d", i, v, last)
		}
		last = v
		rc.list(netip.AddrFrom4([4]byte{45, 155, 205, byte(10 + i)}).String())
		next := crashCopy(t, dir)
		rc.kill()
		dir = next
	}
}

// TestDamagedSnapshotIsNotAnEmptyList is fault 1 through the core: after
// a clean stop, a flipped bit in the snapshot must not make the server
// publish an empty list.
func TestDamagedSnapshotIsNotAnEmptyList(t *testing.T) {
	dir := t.TempDir()
	a := mustStartCore(t, coreConfig(dir))
	a.list("45.155.205.1")
	before := a.state()
	a.stop()
	snaps, _ := filepath.Glob(filepath.Join(dir, "journal", "snapshot-*.bin"))
	for _, s := range snaps {
		b, _ := os.ReadFile(s)
		b[len(b)-2] ^= 1
		os.WriteFile(s, b, 0o600)
	}
	rc, err := startCore(t, coreConfig(dir))
	if err != nil {
		return // refusing is right too
	}
	if got := rc.state(); len(got.List) != len(before.List) {
		t.Fatalf("published %d addresses after a damaged snapshot, %d before", len(got.List), len(before.List))
	}
}

// TestLostJournalRefusesToStart: the journal directory is gone, but the
// data directory shows that this server ran before: starting would
// publish an empty list.
func TestLostJournalRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	a := mustStartCore(t, coreConfig(dir))
	a.list("45.155.205.1")
	before := a.state()
	a.stop()
	os.RemoveAll(filepath.Join(dir, "journal"))
	rc, err := startCore(t, coreConfig(dir))
	if err == nil {
		t.Fatalf("started with %d addresses", len(rc.state().List))
	}
	if !errors.Is(err, journal.ErrNoState) {
		t.Fatal(err)
	}
	// Accepted explicitly: an empty list, under a version above the lost
	// one (the run mark keeps it).
	cfg := coreConfig(dir)
	cfg.AcceptEmptyState = true
	b := mustStartCore(t, cfg)
	if got := b.state(); len(got.List) != 0 || got.Version <= before.Version || !b.c.Recovery().StartedEmpty {
		t.Fatalf("accepted empty start: %+v, before %+v, %+v", got, before, b.c.Recovery())
	}
	b.stop()
	// And the start after it is an ordinary clean one.
	if c := mustStartCore(t, coreConfig(dir)); !c.c.Recovery().Clean {
		t.Fatalf("after the accepted start: %+v", c.c.Recovery())
	}
}

// TestNoSnapshotVerifiesRefuses: every snapshot damaged, and the segments
// from the first one gone: refuse, and say so with ErrNoState.
func TestNoSnapshotVerifiesRefuses(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		rc := mustStartCore(t, coreConfig(dir))
		rc.list(fmt.Sprintf("45.155.205.%d", 30+i))
		if err := rc.c.Snapshot(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		rc.stop()
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "journal", "snapshot-*.bin"))
	if len(snaps) < 2 {
		t.Fatalf("snapshots %v", snaps)
	}
	for _, p := range snaps {
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0x20
		os.WriteFile(p, b, 0o600)
	}
	if _, err := startCore(t, coreConfig(dir)); !errors.Is(err, journal.ErrNoState) {
		t.Fatalf("err %v", err)
	}
}

// TestRunMarkWitness: the clean snapshot is the newest file, but the run
// mark says a run started after it (its journal segment was lost), or the
// mark itself is damaged: not clean.
func TestRunMarkWitness(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"segment of the last run deleted", func(t *testing.T, dir string) {
			segs, _ := filepath.Glob(filepath.Join(dir, "journal", "wal-*.log"))
			os.Remove(segs[len(segs)-1])
		}},
		{"run mark damaged", func(t *testing.T, dir string) {
			p := filepath.Join(dir, core.RunMarkName)
			b, _ := os.ReadFile(p)
			b[10] ^= 1
			os.WriteFile(p, b, 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a := mustStartCore(t, coreConfig(dir))
			a.list("45.155.205.40")
			a.stop()
			b := mustStartCore(t, coreConfig(dir))
			b.list("45.155.205.41")
			published := b.state()
			crashed := crashCopy(t, dir)
			b.kill()
			tc.damage(t, crashed)
			c := mustStartCore(t, coreConfig(crashed))
			if got := c.state(); got.Version <= published.Version || got.Serial != 0 || c.c.Recovery().Clean {
				t.Fatalf("%+v after %+v", got, published)
			}
		})
	}
}

// TestRecoveryMetrics: a damaged segment shows in /metrics and /healthz
// still answers.
func TestRecoveryMetrics(t *testing.T) {
	dir := t.TempDir()
	a := mustStartCore(t, coreConfig(dir))
	for i := range 4 {
		a.list(fmt.Sprintf("45.155.205.%d", 50+i))
	}
	if err := a.c.SyncJournal(); err != nil {
		t.Fatal(err)
	}
	crashed := crashCopy(t, dir)
	a.kill()
	segs, _ := filepath.Glob(filepath.Join(crashed, "journal", "wal-*.log"))
	seg := segs[len(segs)-1]
	b, _ := os.ReadFile(seg)
	b[len(b)/2] ^= 0x08
	os.WriteFile(seg, b, 0o600)

	ts := startServer(t, crashed, nil)
	var m string
	resp, err := http.Get(ts.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m = string(body)
	for _, want := range []string{"sentinel_journal_recovery_segments_quarantined 1", "sentinel_journal_recovery_damaged_regions 1",
		"sentinel_journal_recovery_clean 0", "sentinel_journal_recovery_fallback 0", "sentinel_journal_snapshots_total 1"} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	q, _ := filepath.Glob(filepath.Join(crashed, "journal", "quarantine", "wal-*"))
	if len(q) != 1 {
		t.Fatalf("quarantine %v", q)
	}
	// Three of the four addresses survive: the damage hit one record.
	if n := len(ts.srv.Core().Publisher().State().List); n < 3 {
		t.Fatalf("%d listed", n)
	}
}

// TestGreylistDirIsEvidence: a data directory that an earlier version of
// the server used (greylist/, no run mark) with its journal gone.
func TestGreylistDirIsEvidence(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "greylist"), 0o700)
	_, err := New(Config{DataDir: dir, DynfwListen: []string{"tcp://127.0.0.1:0"}, Scoring: scoring.DefaultConfig(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if !errors.Is(err, journal.ErrNoState) {
		t.Fatalf("err %v", err)
	}
}

// TestFailedBindKeepsTheCleanStop: a start that fails before it could
// publish (the port is taken) does not cost the clean stop.
func TestFailedBindKeepsTheCleanStop(t *testing.T) {
	dir := t.TempDir()
	a := mustStartCore(t, coreConfig(dir))
	a.list("45.155.205.60")
	before := a.state()
	a.stop()
	blocker := mustStartCore(t, coreConfig(t.TempDir()))
	cfg := coreConfig(dir)
	cfg.Publisher.Listen = []string{"tcp://" + blocker.c.Publisher().Addrs()[0].String()}
	if _, err := startCore(t, cfg); err == nil {
		t.Fatal("bound a port in use")
	}
	b := mustStartCore(t, coreConfig(dir))
	if got := b.state(); !b.c.Recovery().Clean || got.Version != before.Version || got.Serial != before.Serial {
		t.Fatalf("%+v after %+v", got, before)
	}
}
