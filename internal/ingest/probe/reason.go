package probe

import (
	"errors"
	"log/slog"
	"sync/atomic"
)

// The reasons of Reason: short snake_case labels for the errors of Parse.
const (
	ReasonIgnored      = "ignored"          // a topic without attack events (survey): not a refusal
	ReasonUnknownTopic = "unknown_topic"    // no probe publishes this topic
	ReasonMalformed    = "malformed"        // not msgpack, not a map or an array of maps, trailing bytes
	ReasonTooMany      = "too_many_entries" // a batch above MaxBatch
	ReasonMissing      = "missing_field"    // an entry without ip, type or action
	ReasonBadAddress   = "bad_address"      // an address that does not parse
	ReasonBadType      = "bad_type"         // an unknown type, action or service
	ReasonBadValue     = "bad_value"        // a field of the wrong type (ts)
)

// refuseReasons lists every reason a payload or an entry is refused
// (ReasonIgnored is not a refusal and is not listed).
var refuseReasons = [...]string{
	ReasonUnknownTopic, ReasonMalformed, ReasonTooMany, ReasonMissing,
	ReasonBadAddress, ReasonBadType, ReasonBadValue,
}

// Reasons returns every reason a payload or an entry is refused
// (ReasonIgnored is not a refusal and is not listed).
func Reasons() []string { return refuseReasons[:] }

// Reason classifies an error of Parse. Unlike the error's text, which may
// quote the payload (an address, a type, the topic), the reason is safe for
// logs and as a metric label.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrIgnored):
		return ReasonIgnored
	case errors.Is(err, ErrUnknownTopic):
		return ReasonUnknownTopic
	case errors.Is(err, ErrTooMany):
		return ReasonTooMany
	case errors.Is(err, ErrMalformed):
		return ReasonMalformed
	case errors.Is(err, ErrMissing):
		return ReasonMissing
	case errors.Is(err, ErrBadAddress):
		return ReasonBadAddress
	case errors.Is(err, ErrBadType):
		return ReasonBadType
	}
	return ReasonBadValue
}

// Counts counts refused payloads and entries by reason, and ignored
// payloads, for an ingest path's metrics. The zero Counts is ready and safe
// for concurrent use.
type Counts struct {
	refused [len(refuseReasons)]atomic.Uint64
	ignored atomic.Uint64
}

// Add counts err under its reason and returns the reason.
func (c *Counts) Add(err error) string {
	r := Reason(err)
	if r == ReasonIgnored {
		c.ignored.Add(1)
		return r
	}
	for i, x := range refuseReasons {
		if x == r {
			c.refused[i].Add(1)
		}
	}
	return r
}

// Refused returns the refusals by reason; every reason of Reasons is
// present.
func (c *Counts) Refused() map[string]uint64 {
	m := make(map[string]uint64, len(refuseReasons))
	for i, r := range refuseReasons {
		m[r] = c.refused[i].Load()
	}
	return m
}

// Ignored returns the number of ignored payloads.
func (c *Counts) Ignored() uint64 { return c.ignored.Load() }

// LogAttrs returns what may be logged of e: its reason, and the index of
// the entry and the name of the field (the parser's own words) when it is
// about one entry. Never log e.Error(): it may quote the payload.
func (e *EntryError) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("reason", Reason(e))}
	if e.Index >= 0 {
		attrs = append(attrs, slog.Int("entry", e.Index))
	}
	if e.Field != "" {
		attrs = append(attrs, slog.String("field", e.Field))
	}
	return attrs
}
