// Package core is the Sentinel server's state: the scorer, the port-scan
// detector, the journal that records every change of them, the snapshot
// and the replay that restore them, and the publication of the changes.
// It opens no listener and knows no transport: the ingest paths (package
// ingest) parse at their edge and hand it typed events (Core.Process), the
// process shell (package server) binds the publisher and calls Tick,
// Snapshot and the admin actions.
//
// Data path: the core appends each event to the journal, runs firewall-log
// packets through the port-scan detector, feeds the scorer, publishes a
// dynfw/event for each event and a dynfw/delta for each listing change,
// and finally hands the events to the sinks (the statistics store). Ticks
// every second let listings expire. All state changes pass through the
// journal, so a restart replays them.
//
// Version and serial across restarts: a published (version, serial) pair
// always names the same content. After a graceful stop the state is
// snapshotted and the server comes back with the same version, serial and
// list, so clients go on as if nothing happened. Any start that cannot prove
// the previous run stopped cleanly (a crash, a damaged or missing file)
// starts a new version with serial 0, which makes every client reload the
// list (a lower serial forces the Turris client to reload, a new version
// ours). The new version is the current Unix time, or one more than every
// version published before if that is higher (a fast crash loop). Before
// the first publication the core appends a start record to the journal and
// syncs it, and writes the run mark (runmark.go): from then on, whatever
// happens, the next start is not clean.
package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/journal"
	"github.com/dynfw/sentinel/internal/portscan"
	"github.com/dynfw/sentinel/internal/publish"
	"github.com/dynfw/sentinel/internal/scorecard"
	"github.com/dynfw/sentinel/internal/scoring"
)

// Sink receives every batch of processed events, including the ones the
// port-scan detector derived, after the scorer has seen them. It must not
// block for long (the statistics store queues and batches).
type Sink interface {
	Events([]events.Event)
}

// Core is the serialised state of the server: scorer, detector, journal
// and publisher. Its methods are safe for concurrent use.
type Core struct {
	log      *slog.Logger
	probes   *events.Probes
	mu       sync.Mutex // serialises the scorer, the detector and the journal order
	scorer   *scoring.Scorer
	detector *portscan.Detector
	journal  *journal.Journal
	pub      *publish.Publisher
	sinks    []Sink
	rec      []byte

	processed, derived, journalErrors atomic.Uint64
	snapshots, snapshotErrors         atomic.Uint64
	seen                              []probeSeen // by ProbeID, under mu
	started                           time.Time

	recovery RecoveryStats
	// versionFloor is the highest version a start record names.
	versionFloor uint64
}

// RecoveryStats describe how the last start recovered its state.
type RecoveryStats struct {
	journal.Loss
	// Clean: the previous run stopped gracefully; version and serial kept.
	Clean bool
	// FellBack: the newest snapshot did not verify or was missing.
	FellBack bool
	// StartedEmpty: state existed, nothing verified, and an empty start
	// was accepted.
	StartedEmpty bool
	// Replayed counts the journal records applied after the snapshot;
	// Invalid those that verified but could not be applied.
	Replayed, Invalid int
}

// Config configures the core.
type Config struct {
	DataDir  string
	Scoring  scoring.Config
	Portscan portscan.Config
	// Publish binds the DynFW publisher for the recovered state (the
	// process shell's listener); it must publish nothing before its Run.
	Publish func(publish.State) (*publish.Publisher, error)
	// SyncInterval of the journal (default 1 s): the most events a crash
	// may lose.
	SyncInterval time.Duration
	// StateExpected tells the core that the data directory was used by an
	// earlier run (the caller knows from its own files): an empty or
	// missing journal is then a loss.
	StateExpected bool
	// AcceptEmptyState lets the core start, and publish, an empty list
	// when state existed but none of it verifies. Without it Open fails
	// with journal.ErrNoState.
	AcceptEmptyState bool
	Logger           *slog.Logger
}

// snapshot layout: magic, version, serial, probe names, scorer snapshot.
const snapMagic = "SNTLCORE1"

// Open recovers the state from the data directory and has cfg.Publish
// bind the publisher for it.
//
// Nothing is published before the recovery is durable: the start record is
// synced and the run mark written before Open returns, and the publisher,
// bound before them, sends nothing before its Run.
func Open(cfg Config) (*Core, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Publish == nil {
		return nil, errors.New("core: no publisher")
	}
	c := &Core{log: cfg.Logger, probes: &events.Probes{}, detector: portscan.New(cfg.Portscan), started: time.Now()}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	mark, markExists, markErr := readRunMark(cfg.DataDir)
	if cfg.AcceptEmptyState {
		c.log.Warn("accept-empty-state is set: if the state cannot be recovered, an empty list is published; unset it once the server runs")
	}
	j, rec, err := journal.Open(filepath.Join(cfg.DataDir, "journal"), journal.Options{SyncInterval: cfg.SyncInterval, Logger: cfg.Logger,
		StateExpected: cfg.StateExpected || markExists, AcceptEmpty: cfg.AcceptEmptyState})
	if err != nil {
		if errors.Is(err, journal.ErrNoState) {
			c.log.Error("refusing to start: the state cannot be recovered and starting empty was not accepted; nothing is published",
				"journal", filepath.Join(cfg.DataDir, "journal"))
			return nil, fmt.Errorf("server: refusing to publish an empty list: %w", err)
		}
		return nil, err
	}
	c.journal = j
	runSeq := j.Seq()
	st, err := c.recover(cfg.Scoring, rec, mark, markExists, markErr)
	if err != nil {
		j.Close()
		return nil, err
	}
	// Bind first (New publishes nothing): a port in use must not cost
	// the clean-stop mark.
	pub, err := cfg.Publish(st)
	if err != nil {
		j.Close()
		return nil, err
	}
	if err := c.startRun(cfg.DataDir, st, rec, runSeq); err != nil {
		pub.Close()
		j.Close()
		return nil, err
	}
	c.pub = pub
	return c, nil
}

// startRun makes the start durable before anything is published: the start
// record (synced), a snapshot when the recovery had to repair or fall back
// (so that the next start does not depend on damaged files), and the run
// mark.
func (c *Core) startRun(dataDir string, st publish.State, rec *journal.Recovery, runSeq uint64) error {
	c.rec = appendStartRecord(c.rec[:0], st.Version, st.Serial)
	if err := c.journal.Append(c.rec); err != nil {
		return fmt.Errorf("server: recording the start: %w", err)
	}
	if err := c.journal.Sync(); err != nil {
		return fmt.Errorf("server: recording the start: %w", err)
	}
	if rec.Loss.Damaged() || rec.FellBack || rec.StartedEmpty {
		if err := c.journal.Snapshot(c.encodeState(st.Version, st.Serial), false); err != nil {
			c.snapshotErrors.Add(1)
			c.log.Error("state snapshot after the recovery failed; the journal still holds everything", "err", err)
		} else {
			c.snapshots.Add(1)
		}
	}
	if err := writeRunMark(dataDir, runMark{Version: st.Version, Seq: runSeq}); err != nil {
		return fmt.Errorf("server: writing the run mark: %w", err)
	}
	return nil
}

// recover restores the scorer from the snapshot, replays the journal and
// chooses the version and serial to publish.
func (c *Core) recover(cfg scoring.Config, rec *journal.Recovery, mark runMark, markExists bool, markErr error) (publish.State, error) {
	var st publish.State
	c.scorer = scoring.New(cfg)
	var snapVersion, snapSerial uint64
	if rec.Snapshot != nil {
		b := rec.Snapshot
		if len(b) < len(snapMagic) || string(b[:len(snapMagic)]) != snapMagic {
			return st, errors.New("server: the snapshot is not a core snapshot")
		}
		b = b[len(snapMagic):]
		var ok bool
		if snapVersion, b, ok = readUvarint(b); !ok {
			return st, errRecord
		}
		if snapSerial, b, ok = readUvarint(b); !ok {
			return st, errRecord
		}
		n, b, ok := readUvarint(b)
		if !ok || n > uint64(len(b)) {
			return st, errRecord
		}
		for i := uint64(0); i < n; i++ {
			var name string
			if name, b, ok = readString(b); !ok {
				return st, errRecord
			}
			c.probes.ID(events.Probe{Name: name})
		}
		sc, err := scoring.Restore(cfg, b)
		if err != nil {
			return st, fmt.Errorf("server: restoring the scorer: %w", err)
		}
		c.scorer = sc
	}
	rs := RecoveryStats{Loss: rec.Loss, FellBack: rec.FellBack, StartedEmpty: rec.StartedEmpty}
	for _, r := range rec.Records {
		if err := c.replay(r); err != nil {
			rs.Invalid++
			continue
		}
		rs.Replayed++
	}
	if rs.Invalid > 0 {
		c.log.Warn("journal: records that verify but cannot be applied were skipped", "count", rs.Invalid)
	}
	c.scorer.Listed(func(k netip.Prefix, _ []string) bool { st.List = append(st.List, k); return true })

	// The run mark must agree that the clean snapshot ends the last run:
	// a run that started after it (its mark names a later segment) and
	// whose journal is gone did not stop cleanly.
	markOK := !markExists || markErr == nil && mark.Seq < rec.Base && mark.Version == snapVersion
	rs.Clean = rec.Clean && rec.Snapshot != nil && markOK
	// Every version published before: the snapshot's, the start records',
	// the run mark's.
	prev := max(snapVersion, c.versionFloor)
	if markErr == nil {
		prev = max(prev, mark.Version)
	}
	lossArgs := []any{"replayed", rs.Replayed, "invalid_records", rs.Invalid, "torn_tail_bytes", rec.Loss.TornTailBytes,
		"snapshots_quarantined", rec.Loss.SnapshotsQuarantined, "snapshots_missing", rec.Loss.SnapshotsMissing,
		"segments_quarantined", rec.Loss.SegmentsQuarantined, "segments_missing", rec.Loss.SegmentsMissing,
		"damaged_regions", rec.Loss.DamagedRegions, "skipped_bytes", rec.Loss.SkippedBytes}
	switch {
	case rs.Clean:
		st.Version, st.Serial = snapVersion, snapSerial
		c.log.Info("state restored after a clean stop", "version", st.Version, "serial", st.Serial, "listed", len(st.List))
	case rec.Fresh && !markExists:
		st.Version = max(uint64(time.Now().Unix()), prev+1)
		c.log.Info("starting with an empty state", "version", st.Version)
	default:
		// Events (and deltas already published) may be missing: a new
		// version and a lower serial make every client reload.
		st.Version, st.Serial = max(uint64(time.Now().Unix()), prev+1), 0
		args := append([]any{"listed", len(st.List), "new_version", st.Version}, lossArgs...)
		switch {
		case rec.StartedEmpty:
			c.log.Error("STARTING EMPTY: the state existed but nothing of it verifies; an empty list is published because accept-empty-state is set",
				append(args, "quarantine", journal.QuarantineDir)...)
		case rec.Loss.Damaged() || rec.FellBack || markErr != nil:
			if markErr != nil {
				args = append(args, "run_mark", "does not verify")
			}
			c.log.Warn("journal damage: state recovered with losses (damaged files are in journal/quarantine); clients will reload", args...)
		case rec.Clean && markExists && mark.Seq >= rec.Base:
			c.log.Warn("the journal of the last run is missing: state recovered from the clean stop before it; clients will reload", args...)
		default:
			c.log.Warn("state recovered after an unclean stop; clients will reload", args...)
		}
	}
	c.recovery = rs
	return st, nil
}

func (c *Core) replay(r []byte) error {
	if len(r) == 0 {
		return errRecord
	}
	switch r[0] {
	case recEvent:
		er, err := parseEventRecord(r[1:])
		if err != nil {
			return err
		}
		t, ok := events.Lookup(er.typ)
		if !ok {
			return fmt.Errorf("unknown event type %q", er.typ)
		}
		er.e.Type = t
		er.e.Probe = c.probes.ID(events.Probe{Name: er.probe})
		if t == events.FwlogsPacket {
			return nil // scans were journaled as derived events
		}
		c.scorer.Observe(&er.e)
	case recTick:
		t, _, ok := readVarint(r[1:])
		if !ok {
			return errRecord
		}
		c.scorer.Tick(time.Unix(0, t), func(scoring.Change) {})
	case recStart:
		v, _, err := parseStartRecord(r[1:])
		if err != nil {
			return err
		}
		c.versionFloor = max(c.versionFloor, v)
	case recBlock, recUnblock, recClear:
		ar, err := parseAdminRecord(r[1:])
		if err != nil {
			return err
		}
		if _, _, err := c.applyAdmin(r[0], ar); err != nil {
			return err
		}
	default:
		return errRecord
	}
	return nil
}

// applyAdmin applies an override and returns the listing change it causes.
func (c *Core) applyAdmin(kind byte, ar adminRecord) (scoring.Change, bool, error) {
	now, until := time.Unix(0, ar.at), time.Unix(0, ar.until)
	switch kind {
	case recBlock:
		return c.scorer.Block(ar.key, now, until, ar.reason)
	case recUnblock:
		return c.scorer.Unblock(ar.key, now, until, ar.reason)
	default:
		return c.scorer.Clear(ar.key, now)
	}
}

// Probes returns the probe registry.
func (c *Core) Probes() *events.Probes { return c.probes }

// Publisher returns the DynFW publisher.
func (c *Core) Publisher() *publish.Publisher { return c.pub }

// AddSink registers a sink; call before events flow.
func (c *Core) AddSink(s Sink) { c.sinks = append(c.sinks, s) }

// Process handles a batch of ingested events.
func (c *Core) Process(evs []events.Event) {
	var extra []events.Event
	c.mu.Lock()
	for i := range evs {
		e := &evs[i]
		c.countProbe(e)
		c.journalEvent(e, false)
		if e.Type == events.FwlogsPacket {
			if scan, ok := c.detector.Observe(e); ok {
				d := events.Event{Time: e.Time, TS: e.TS, Type: scan, Addr: e.Addr, Probe: e.Probe, Source: events.FromDetector}
				c.journalEvent(&d, true)
				c.observe(&d)
				extra = append(extra, d)
				c.derived.Add(1)
			}
			continue
		}
		c.observe(e)
	}
	c.mu.Unlock()
	c.processed.Add(uint64(len(evs)))
	if len(extra) > 0 {
		evs = append(evs, extra...)
	}
	for _, s := range c.sinks {
		s.Events(evs)
	}
}

func (c *Core) journalEvent(e *events.Event, derived bool) {
	p, _ := c.probes.Get(e.Probe)
	c.rec = appendEventRecord(c.rec[:0], e, p.Name, derived)
	if err := c.journal.Append(c.rec); err != nil {
		c.journalErrors.Add(1)
	}
}

func (c *Core) observe(e *events.Event) {
	if ch, ok := c.scorer.Observe(e); ok {
		c.publishChange(ch)
	}
	if e.Type.Published() {
		c.pub.Event(e.Type, e.Addr, time.Unix(0, e.Time))
	}
}

func (c *Core) publishChange(ch scoring.Change) {
	c.pub.Delta(ch.Listed, ch.Key, time.Unix(0, ch.Time))
	if ch.Listed {
		c.log.Info("listed", "key", ch.Key.String(), "reason", ch.Reason)
	} else {
		c.log.Info("unlisted", "key", ch.Key.String(), "reason", ch.Reason)
	}
}

// Tick applies the passage of time: call it every second.
func (c *Core) Tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec = appendTickRecord(c.rec[:0], now.UnixNano())
	if err := c.journal.Append(c.rec); err != nil {
		c.journalErrors.Add(1)
	}
	c.scorer.Tick(now, c.publishChange)
	c.detector.Expire(now.UnixNano())
}

// Admin actions.

// Block lists key until until, whatever its score.
func (c *Core) Block(key netip.Prefix, until time.Time, reason string) error {
	return c.admin(recBlock, key, until, reason)
}

// Unblock keeps key off the list until until.
func (c *Core) Unblock(key netip.Prefix, until time.Time, reason string) error {
	return c.admin(recUnblock, key, until, reason)
}

// Clear removes a manual override of key.
func (c *Core) Clear(key netip.Prefix) error { return c.admin(recClear, key, time.Time{}, "") }

func (c *Core) admin(kind byte, key netip.Prefix, until time.Time, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var u int64
	if !until.IsZero() {
		u = until.UnixNano()
	}
	ar := adminRecord{key: key, at: now.UnixNano(), until: u, reason: reason}
	// Validate first: a refused action must not reach the journal.
	ch, changed, err := c.applyAdmin(kind, ar)
	if err != nil {
		return err
	}
	c.rec = appendAdminRecord(c.rec[:0], kind, key, ar.at, ar.until, reason)
	if err := c.journal.Append(c.rec); err != nil {
		c.journalErrors.Add(1)
	}
	// Admin actions are rare and must not be lost: sync now.
	if err := c.journal.Sync(); err != nil {
		c.journalErrors.Add(1)
	}
	if changed {
		c.publishChange(ch)
	}
	return nil
}

// Explain returns the scorer's explanation of an address.
func (c *Core) Explain(addr netip.Addr) (scorecard.Explanation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scorer.Explain(addr, time.Now())
}

// Listed calls fn for every listed key with its greylist tags.
func (c *Core) Listed(fn func(netip.Prefix, []string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scorer.Listed(func(k netip.Prefix, tags []string) bool { fn(k, tags); return true })
}

// Snapshot writes the whole state to the journal; clean marks a graceful
// stop (no event may be processed afterwards).
func (c *Core) Snapshot(ctx context.Context, clean bool) error {
	// Deltas queued before the snapshot must be published, so that the
	// saved serial covers them. If they cannot be, the snapshot is not
	// clean: the next start must not reuse serials that the state and the
	// clients may disagree on.
	if err := c.pub.Sync(ctx); err != nil {
		if !clean {
			return err
		}
		c.log.Error("the last deltas could not be published; the final snapshot is not marked clean", "err", err)
		clean = false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.pub.Stats()
	err := c.journal.Snapshot(c.encodeState(st.Version, st.Serial), clean)
	if err != nil {
		c.snapshotErrors.Add(1)
	} else {
		c.snapshots.Add(1)
	}
	return err
}

// encodeState is the core's snapshot: version, serial, probe names and the
// scorer. Call with c.mu held (or before the core is shared).
func (c *Core) encodeState(version, serial uint64) []byte {
	b := append([]byte(nil), snapMagic...)
	b = binary.AppendUvarint(b, version)
	b = binary.AppendUvarint(b, serial)
	probes := c.probes.All()
	b = binary.AppendUvarint(b, uint64(len(probes)-min(len(probes), 1)))
	for _, p := range probes[min(len(probes), 1):] {
		b = appendString(b, p.Name)
	}
	return c.scorer.AppendSnapshot(b)
}

// Recovery describes how the state was recovered at start.
func (c *Core) Recovery() RecoveryStats { return c.recovery }

// Close syncs and closes the journal and the publisher.
func (c *Core) Close() error {
	err := c.journal.Close()
	if perr := c.pub.Close(); err == nil {
		err = perr
	}
	return err
}

// Stats are counters for metrics.
type Stats struct {
	Processed, Derived, JournalErrors uint64
	Keys                              int
	Uptime                            time.Duration
}

// Stats returns the core's counters.
func (c *Core) Stats() Stats {
	c.mu.Lock()
	n := c.scorer.Len()
	c.mu.Unlock()
	return Stats{Processed: c.processed.Load(), Derived: c.derived.Load(), JournalErrors: c.journalErrors.Load(), Keys: n, Uptime: time.Since(c.started)}
}

// Counters are the core's monotonic counters, read without a lock.
type Counters struct {
	Processed, Derived, JournalErrors, Snapshots, SnapshotErrors uint64
}

// Counters returns the counters.
func (c *Core) Counters() Counters {
	return Counters{Processed: c.processed.Load(), Derived: c.derived.Load(), JournalErrors: c.journalErrors.Load(),
		Snapshots: c.snapshots.Load(), SnapshotErrors: c.snapshotErrors.Load()}
}

// SyncJournal makes what the journal holds durable now (it syncs every
// SyncInterval by itself).
func (c *Core) SyncJournal() error { return c.journal.Sync() }
