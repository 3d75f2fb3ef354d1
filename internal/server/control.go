package server

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/ingest/mqtt"
	"github.com/dynfw/sentinel/internal/ingest/probe"
	"github.com/dynfw/sentinel/internal/scoring"
)

// The core's side of the operator's commands (package control): the
// decisions in force, the probes heard from, and probe messages that the
// operator hands in (sentinel emit).

// probeSeen counts one probe's events since the start.
type probeSeen struct {
	events uint64
	last   int64 // receive time of the latest, Unix nanoseconds
}

// countProbe counts e for its probe; call with c.mu held.
func (c *Core) countProbe(e *events.Event) {
	id := int(e.Probe)
	if id >= len(c.seen) {
		if id > 1<<20 {
			return // the registry interns far fewer; never grow without bound
		}
		c.seen = append(c.seen, make([]probeSeen, id+1-len(c.seen))...)
	}
	ps := &c.seen[id]
	ps.events++
	ps.last = max(ps.last, e.Time)
}

// ProbeStat is a probe with its events since the start.
type ProbeStat struct {
	events.Probe
	Events   uint64
	LastSeen time.Time // zero when none since the start
}

// ProbeStats returns every probe the server knows (from the saved state or
// since the start), with what it sent since the start.
func (c *Core) ProbeStats() []ProbeStat {
	all := c.probes.All()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ProbeStat, 0, len(all))
	for id, p := range all {
		if id == 0 {
			continue // "unknown"
		}
		st := ProbeStat{Probe: p}
		if id < len(c.seen) && c.seen[id].events > 0 {
			st.Events, st.LastSeen = c.seen[id].events, time.Unix(0, c.seen[id].last).UTC()
		}
		out = append(out, st)
	}
	return out
}

// Decisions explains, as of now, every listed key and every key with a
// manual override: listed keys first, the latest listed first, then the
// overrides by key.
func (c *Core) Decisions(now time.Time) []scoring.Explanation {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []netip.Prefix
	c.scorer.Listed(func(k netip.Prefix, _ []string) bool { keys = append(keys, k); return true })
	c.scorer.Overridden(func(k netip.Prefix) bool { keys = append(keys, k); return true })
	out := make([]scoring.Explanation, 0, len(keys))
	done := make(map[netip.Prefix]bool, len(keys))
	for _, k := range keys {
		if done[k] {
			continue
		}
		done[k] = true
		if ex, ok := c.scorer.Explain(k.Addr(), now); ok {
			out = append(out, ex)
		}
	}
	slices.SortStableFunc(out, func(a, b scoring.Explanation) int {
		if a.Listed != b.Listed {
			if a.Listed {
				return -1
			}
			return 1
		}
		if a.Listed {
			if c := b.Since.Compare(a.Since); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.Key.String(), b.Key.String())
	})
	return out
}

// localCounts are the counters of the control channel's emitted events.
type localCounts struct {
	accepted atomic.Uint64
	parse    probe.Counts  // refusals of the parser, by reason
	badTime  atomic.Uint64 // a ts outside [now − MaxPast, now + MaxFuture]
	badTopic atomic.Uint64 // a sentinel-proxy topic that does not parse
}

// Reasons of the control channel's refusals beyond the parser's.
const (
	reasonBadTime  = "bad_time"
	reasonBadTopic = "bad_device"
)

func (lc *localCounts) refused() map[string]uint64 {
	m := lc.parse.Refused()
	m[reasonBadTime] = lc.badTime.Load()
	m[reasonBadTopic] = lc.badTopic.Load()
	return m
}

// maxEmitErrors bounds the reasons an EmitResult quotes.
const maxEmitErrors = 10

// ProcessLocal processes a probe message that the operator handed in on
// the control channel (sentinel emit): parsed by the probe parser as if a
// probe had sent it over ZMQ, with two differences that only a trusted
// sender gets. The topic may be a sentinel-proxy topic naming a device
// (sentinel/collect/<serial>/<token>/<suffix>, checked as the MQTT ingest
// checks it), whose events then belong to that device as if they had come
// through the proxy. And each entry's "ts" places the event in time,
// within [now − control.MaxPast, now + control.MaxFuture]; an entry
// outside is refused. The result counts what was processed and says why
// the rest was refused; the operator's own input may be quoted back to it,
// the log never quotes it.
func (c *Core) ProcessLocal(topic string, payload []byte, now time.Time) control.EmitResult {
	var res control.EmitResult
	refuse := func(msg string) {
		res.Refused++
		if len(res.Errors) < maxEmitErrors {
			res.Errors = append(res.Errors, msg)
		}
	}
	suffix, pr := topic, events.Probe{Name: "local"}
	if strings.HasPrefix(topic, mqtt.DefaultRoot+"/") {
		t, err := mqtt.ParseTopic("", topic)
		if err == nil && (t.Legacy() || t.Status) {
			err = fmt.Errorf("want %s/<serial>/<device token>/<probe topic>", mqtt.DefaultRoot)
		}
		if err != nil {
			c.local.badTopic.Add(1)
			c.logs.Log(c.log, slog.LevelWarn, "local:"+reasonBadTopic, "control: emitted message refused", slog.String("reason", reasonBadTopic))
			refuse("topic: " + err.Error())
			return res
		}
		// One probe per device: a serial that comes with another token
		// is another device, as the statistics store sees it.
		suffix = t.Suffix
		pr = events.Probe{Name: "local:" + t.Serial + ":" + devicetoken.Fingerprint(t.Token), Serial: t.Serial, Token: t.Token}
	}
	id := c.probes.ID(pr)
	evs, errs := probe.Parse(nil, suffix, payload, probe.Meta{Received: now.UnixNano(), Probe: id, Source: events.FromAdmin})
	for _, e := range errs {
		r := c.local.parse.Add(e)
		if r == probe.ReasonIgnored {
			continue
		}
		c.logs.Log(c.log, slog.LevelWarn, "local:"+r, "control: emitted entry refused", e.LogAttrs()...)
		refuse(e.Error())
	}
	lo, hi := now.Add(-control.MaxPast).Unix(), now.Add(control.MaxFuture).Unix()
	kept := evs[:0]
	for _, e := range evs {
		if e.TS != 0 {
			if e.TS < lo || e.TS > hi {
				c.local.badTime.Add(1)
				c.logs.Log(c.log, slog.LevelWarn, "local:"+reasonBadTime, "control: emitted entry refused", slog.String("reason", reasonBadTime))
				refuse(fmt.Sprintf("ts %s: outside the accepted window, from %v before the server's time to %v after it",
					time.Unix(e.TS, 0).UTC().Format(time.RFC3339), control.MaxPast, control.MaxFuture))
				continue
			}
			e.Time = e.TS * int64(time.Second)
		}
		kept = append(kept, e)
	}
	if len(kept) > 0 {
		c.Process(kept)
	}
	res.Accepted = len(kept)
	c.local.accepted.Add(uint64(len(kept)))
	return res
}
