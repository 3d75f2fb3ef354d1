// Package scorecard holds the explanation of a key: what the scorer knows
// of it and why it is or is not listed. It is plain data, shared by the
// scorer that fills it in (package scoring), the admin API and the command
// line that carry it (packages server and control) and Sentinel View that
// shows it, so that none of them links another's code.
package scorecard

import (
	"net/netip"
	"time"
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
