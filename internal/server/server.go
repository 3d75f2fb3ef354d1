// Package server is the Sentinel server's core: it wires ingest (ZMQ from
// probes, MQTT from sentinel-proxy, HTTP from other sensors), the journal,
// the port-scan detector, the scorer, the DynFW publisher, the greylist and
// the HTTP API into one process.
//
// Data path: every ingest path turns messages into events (package probe,
// httpin) and hands them to the core. The core appends each event to the
// journal, runs firewall-log packets through the port-scan detector, feeds
// the scorer, publishes a dynfw/event for each event and a dynfw/delta for
// each listing change, and finally hands the events to the sinks (the
// statistics store). Ticks every second let listings expire. All state
// changes pass through the journal, so a restart replays them.
//
// Version and serial across restarts: after a graceful stop the state is
// snapshotted and the server comes back with the same version, serial and
// list, so clients go on as if nothing happened. After a crash the last
// second of events may be lost, including deltas already published; the
// server then starts a new version (the current Unix time) with serial 0,
// which makes every client reload the list (a lower serial forces the
// Turris client to reload, a new version ours).
package server

import (
	"context"
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
	"github.com/dynfw/sentinel/internal/ingest/mqtt"
	"github.com/dynfw/sentinel/internal/ingest/probe"
	"github.com/dynfw/sentinel/internal/journal"
	"github.com/dynfw/sentinel/internal/lograte"
	"github.com/dynfw/sentinel/internal/portscan"
	"github.com/dynfw/sentinel/internal/publish"
	"github.com/dynfw/sentinel/internal/scoring"
	"github.com/dynfw/sentinel/zmtp"
	"github.com/dynfw/sentinel/zmtp/zcert"
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
	mqttParse                         probe.Counts    // refusals of MQTT payloads by reason
	logs                              lograte.Limiter // refusals logged once per interval
	started                           time.Time
}

// CoreConfig configures the core.
type CoreConfig struct {
	DataDir   string
	Scoring   scoring.Config
	Portscan  portscan.Config
	Publisher publish.Config
	// SyncInterval of the journal (default 1 s): the most events a crash
	// may lose.
	SyncInterval time.Duration
	Logger       *slog.Logger
}

// snapshot layout: magic, version, serial, probe names, scorer snapshot.
const snapMagic = "SNTLCORE1"

// OpenCore recovers the state from the data directory and opens the
// publisher. It creates the DynFW server certificate on first start.
func OpenCore(cfg CoreConfig) (*Core, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Core{log: cfg.Logger, probes: &events.Probes{}, detector: portscan.New(cfg.Portscan), started: time.Now()}
	if cfg.Publisher.Curve == nil {
		cert, created, err := ServerCert(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		if created {
			c.log.Info("created the DynFW server certificate", "public", filepath.Join(cfg.DataDir, "dynfw.key"), "key", cert.Public.String())
		}
		cfg.Publisher.Curve = &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret, PublicKey: cert.Public}
	}
	j, rec, err := journal.Open(filepath.Join(cfg.DataDir, "journal"), journal.Options{SyncInterval: cfg.SyncInterval, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	c.journal = j
	st, err := c.recover(cfg.Scoring, rec)
	if err != nil {
		j.Close()
		return nil, err
	}
	pub, err := publish.New(cfg.Publisher, st)
	if err != nil {
		j.Close()
		return nil, err
	}
	c.pub = pub
	return c, nil
}

// ServerCert loads or creates the publisher's certificate pair in dir
// (dynfw.key, dynfw.key_secret).
func ServerCert(dir string) (*zcert.Cert, bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	return zcert.LoadOrCreate(dir, "dynfw")
}

// recover restores the scorer from the snapshot and replays the journal.
func (c *Core) recover(cfg scoring.Config, rec *journal.Recovery) (publish.State, error) {
	var st publish.State
	c.scorer = scoring.New(cfg)
	if rec.Snapshot != nil {
		b := rec.Snapshot
		if len(b) < len(snapMagic) || string(b[:len(snapMagic)]) != snapMagic {
			return st, errors.New("server: the snapshot is not a core snapshot")
		}
		b = b[len(snapMagic):]
		var ok bool
		var version, serial uint64
		if version, b, ok = readUvarint(b); !ok {
			return st, errRecord
		}
		if serial, b, ok = readUvarint(b); !ok {
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
		st.Version, st.Serial = version, serial
	}
	replayed := 0
	for _, r := range rec.Records {
		if err := c.replay(r); err != nil {
			c.log.Warn("journal: skipping a record", "err", err)
			continue
		}
		replayed++
	}
	c.scorer.Listed(func(k netip.Prefix, _ []string) bool { st.List = append(st.List, k); return true })
	switch {
	case rec.Snapshot == nil && len(rec.Records) == 0:
		st.Version, st.Serial = uint64(time.Now().Unix()), 0
		c.log.Info("starting with an empty state", "version", st.Version)
	case rec.Clean:
		c.log.Info("state restored after a clean stop", "version", st.Version, "serial", st.Serial, "listed", len(st.List))
	default:
		// Events (and deltas already published) may be missing: a new
		// version and a lower serial make every client reload.
		st.Version, st.Serial = uint64(time.Now().Unix()), 0
		c.log.Warn("state recovered after an unclean stop; clients will reload", "replayed", replayed, "truncated_bytes", rec.Truncated,
			"listed", len(st.List), "new_version", st.Version)
	}
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
func (c *Core) Explain(addr netip.Addr) (scoring.Explanation, bool) {
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
	// saved serial covers them.
	if err := c.pub.Sync(ctx); err != nil && !clean {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.pub.Stats()
	b := append([]byte(nil), snapMagic...)
	b = appendUvarint(b, st.Version)
	b = appendUvarint(b, st.Serial)
	probes := c.probes.All()
	b = appendUvarint(b, uint64(len(probes)-min(len(probes), 1)))
	for _, p := range probes[min(len(probes), 1):] {
		b = appendString(b, p.Name)
	}
	b = c.scorer.AppendSnapshot(b)
	return c.journal.Snapshot(b, clean)
}

// Close syncs and closes the journal and the publisher.
func (c *Core) Close() error {
	err := c.journal.Close()
	if perr := c.pub.Close(); err == nil {
		err = perr
	}
	return err
}

// CoreStats are counters for metrics.
type CoreStats struct {
	Processed, Derived, JournalErrors uint64
	Keys                              int
	Uptime                            time.Duration
}

// Stats returns the core's counters.
func (c *Core) Stats() CoreStats {
	c.mu.Lock()
	n := c.scorer.Len()
	c.mu.Unlock()
	return CoreStats{Processed: c.processed.Load(), Derived: c.derived.Load(), JournalErrors: c.journalErrors.Load(), Keys: n, Uptime: time.Since(c.started)}
}

// ProcessProbeMessage parses one probe message that arrived through
// sentinel-proxy's MQTT uplink (device serial and token from the topic) and
// processes its events. Refusals are counted by reason and logged once per
// interval and reason, with the serial's fingerprint, the entry and field
// and the payload's length: the suffix, the serial and the error's text are
// typed by the sender.
func (c *Core) ProcessProbeMessage(suffix string, payload []byte, serial, token string, received time.Time) {
	id := c.probes.ID(events.Probe{Name: "mqtt:" + serial, Serial: serial, Token: token})
	evs, errs := probe.Parse(nil, suffix, payload, probe.Meta{Received: received.UnixNano(), Probe: id, Source: events.FromMQTT})
	for _, e := range errs {
		r := c.mqttParse.Add(e)
		if r == probe.ReasonIgnored {
			continue
		}
		c.logs.Log(c.log, slog.LevelWarn, r, "mqtt ingest: refused", append(e.LogAttrs(),
			slog.String("serial", mqtt.SerialFingerprint(serial)), slog.Int("payload_len", len(payload)))...)
	}
	if len(evs) > 0 {
		c.Process(evs)
	}
}
