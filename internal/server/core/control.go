package core

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/scorecard"
)

// The core's side of the operator's commands (package control): the
// decisions in force and the probes heard from. The probe messages that the
// operator hands in (sentinel emit) come through package ingest/local.

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
func (c *Core) Decisions(now time.Time) []scorecard.Explanation {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []netip.Prefix
	c.scorer.Listed(func(k netip.Prefix, _ []string) bool { keys = append(keys, k); return true })
	c.scorer.Overridden(func(k netip.Prefix) bool { keys = append(keys, k); return true })
	out := make([]scorecard.Explanation, 0, len(keys))
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
	slices.SortStableFunc(out, func(a, b scorecard.Explanation) int {
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
