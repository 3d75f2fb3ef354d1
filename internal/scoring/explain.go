package scoring

import (
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/dynfw/sentinel/internal/events"
)

// Explanation says what the scorer knows of a key and why it is or is not
// listed. It is meant for the admin API and Sentinel View, as JSON.
type Explanation struct {
	Key netip.Prefix `json:"key"`
	// Score is the score decayed to the time of the question; Entry and
	// Exit are the thresholds it is compared with.
	Score float64 `json:"score"`
	Entry float64 `json:"entry_threshold"`
	Exit  float64 `json:"exit_threshold"`
	// Listed says whether the key is on the list; Reason why it entered
	// (the event that crossed the entry threshold, or a manual block) and
	// Since when.
	Listed bool      `json:"listed"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	// EarliestEnd is when the listing ends if no further event comes.
	EarliestEnd time.Time `json:"earliest_end,omitzero"`
	// NeverListed is "allow-list" or "non-global address" for keys that
	// are scored but never published.
	NeverListed string `json:"never_listed,omitempty"`
	// Offences is the number of remembered listings (the current one
	// included), which sets the minimum duration of the next.
	Offences int `json:"offences"`
	// Tags are the greylist tags of every event type seen, sorted.
	Tags []string `json:"tags"`
	// Counts are the events seen, by event name.
	Counts    map[string]uint64 `json:"counts"`
	FirstSeen time.Time         `json:"first_seen,omitzero"`
	LastSeen  time.Time         `json:"last_seen,omitzero"`
	// Probes is the number of distinct probes that reported the key; when
	// ProbesAtLeast is set there were more than the scorer counts exactly.
	Probes        int  `json:"probes"`
	ProbesAtLeast bool `json:"probes_at_least,omitempty"`
	// History lists the latest listings, oldest first; the last one is
	// the current listing when Listed.
	History  []Listing `json:"history,omitempty"`
	Override *Override `json:"override,omitempty"`
}

// Listing is one period on the list.
type Listing struct {
	Start     time.Time `json:"start"`
	End       time.Time `json:"end,omitzero"` // zero while it lasts
	Reason    string    `json:"reason"`
	EndReason string    `json:"end_reason,omitempty"`
}

// Override is a manual decision in force.
type Override struct {
	Kind   string    `json:"kind"` // "block" or "unblock"
	Set    time.Time `json:"set"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// Explain returns the explanation of the key of addr as of now, or false
// when the scorer holds nothing about it.
func (s *Scorer) Explain(addr netip.Addr, now time.Time) (Explanation, bool) {
	k, ok := keyOf(addr, s.v6bits)
	if !ok {
		return Explanation{}, false
	}
	i, ok := s.index.get(k, &s.ents)
	if !ok {
		return Explanation{}, false
	}
	en := s.ents.at(i)
	t := now.UnixNano()
	x := Explanation{
		Key:      k.prefix(s.v6bits),
		Score:    s.scoreAt(en, t),
		Entry:    s.cfg.Entry,
		Exit:     s.cfg.Exit,
		Listed:   en.flags&fListed != 0,
		Offences: int(s.offences(en, t)),
		Tags:     s.tags(en, nil),
		Counts:   map[string]uint64{},
		Probes:   int(en.nprobe),
	}
	x.ProbesAtLeast = en.flags&fProbesFull != 0
	switch {
	case en.flags&fAllowed != 0:
		x.NeverListed = "allow-list"
	case en.flags&fNonGlobal != 0:
		x.NeverListed = "non-global address"
	}
	if en.flags&fSeen != 0 {
		x.FirstSeen, x.LastSeen = unixTime(en.first), unixTime(en.last)
	}
	s.eachType(en, func(t events.Type, n uint32) { x.Counts[t.String()] += uint64(n) })
	for _, l := range s.hist[k] {
		h := Listing{Start: unixTime(l.start), Reason: l.reason, EndReason: l.endReason}
		if !l.open {
			h.End = unixTime(l.end)
		}
		x.History = append(x.History, h)
	}
	var block int64
	if en.flags&fOverride != 0 {
		o := s.ovr[k]
		x.Override = &Override{Kind: "block", Set: unixTime(o.set), Until: unixTime(o.until), Reason: o.reason}
		if o.unblock {
			x.Override.Kind = "unblock"
		} else {
			block = o.until
		}
	}
	if x.Listed {
		x.Since = unixTime(en.since)
		if n := len(x.History); n > 0 && x.History[n-1].End.IsZero() {
			x.Reason = x.History[n-1].Reason
		}
		if end, _ := s.end(en); end != math.MinInt64 {
			x.EarliestEnd = unixTime(max(end, block, t))
		} else {
			x.EarliestEnd = unixTime(t)
		}
	}
	return x, true
}

// eachType calls f for every event type counted for the key.
func (s *Scorer) eachType(en *entry, f func(events.Type, uint32)) {
	for j := range en.ntypes {
		f(en.types[j], en.counts[j])
	}
	if en.ntypes == inlineTypes {
		for _, tc := range s.more[en.k] {
			f(tc.t, tc.n)
		}
	}
}

// tags appends the sorted, distinct greylist tags of the key to buf.
func (s *Scorer) tags(en *entry, buf []string) []string {
	buf = buf[:0]
	s.eachType(en, func(t events.Type, _ uint32) {
		if tag := t.Tag(); tag != "" && !slices.Contains(buf, tag) {
			buf = append(buf, tag)
		}
	})
	slices.Sort(buf)
	if buf == nil {
		buf = []string{}
	}
	return buf
}

// Listed calls yield for every listed key with its sorted greylist tags,
// until yield returns false; it is an iter.Seq2, so `for key, tags :=
// range s.Listed` works. The tags slice is reused: copy it to keep it.
// yield must not call the scorer's other methods.
func (s *Scorer) Listed(yield func(key netip.Prefix, tags []string) bool) {
	for i := range s.ents.n {
		en := s.ents.at(i)
		if en.flags&fListed == 0 {
			continue
		}
		s.tagBuf = s.tags(en, s.tagBuf)
		if !yield(en.k.prefix(s.v6bits), s.tagBuf) {
			return
		}
	}
}
