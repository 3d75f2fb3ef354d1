package scoring

import (
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/scorecard"
)

func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// Explain returns the explanation of the key of addr as of now, or false
// when the scorer holds nothing about it.
func (s *Scorer) Explain(addr netip.Addr, now time.Time) (scorecard.Explanation, bool) {
	k, ok := keyOf(addr, s.v6bits)
	if !ok {
		return scorecard.Explanation{}, false
	}
	i, ok := s.index.get(k, &s.ents)
	if !ok {
		return scorecard.Explanation{}, false
	}
	en := s.ents.at(i)
	t := now.UnixNano()
	x := scorecard.Explanation{
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
		h := scorecard.Listing{Start: unixTime(l.start), Reason: l.reason, EndReason: l.endReason}
		if !l.open {
			h.End = unixTime(l.end)
		}
		x.History = append(x.History, h)
	}
	var block int64
	if en.flags&fOverride != 0 {
		o := s.ovr[k]
		x.Override = &scorecard.Override{Kind: "block", Set: unixTime(o.set), Until: unixTime(o.until), Reason: o.reason}
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
