// Package stats computes the resources of Sentinel View — graphs, top
// lists and maps of incidents, attackers, passwords and ports over a period
// — from the statistics store, in the JSON shapes of the reference view,
// and keeps them fresh in a cache so that pages never wait on a query.
package stats

import (
	"fmt"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

// Period is a time span the view shows, with its graph bucket and the
// store precision it reads from.
type Period struct {
	Name      string // "1h"
	Label     string // "Hour"
	Span      time.Duration
	Bucket    time.Duration
	Precision store.Precision
	// TTL is how long a computed resource stays fresh; MaxAge is the
	// Cache-Control max-age of API answers.
	TTL, MaxAge time.Duration
}

// Periods in display order. Spans and buckets follow the reference view
// (sentinel-view.md §4.1) with two fixes: the 6h period has its 24 points
// of 15 minutes, and the year is 26 buckets of 14 days (364 days), aligned
// to the window's start rather than to TimescaleDB's bucket origin.
var Periods = []Period{
	{"1h", "Hour", time.Hour, time.Minute, store.Raw, 10 * time.Second, 10 * time.Second},
	{"6h", "6 Hours", 6 * time.Hour, 15 * time.Minute, store.Quarter, 5 * time.Minute, 2 * time.Minute},
	{"1d", "Day", 24 * time.Hour, 30 * time.Minute, store.Quarter, 10 * time.Minute, 5 * time.Minute},
	{"1w", "Week", 7 * 24 * time.Hour, 3 * time.Hour, store.Hour, 30 * time.Minute, 5 * time.Minute},
	{"1m", "Month", 30 * 24 * time.Hour, 24 * time.Hour, store.Day, 2 * time.Hour, 5 * time.Minute},
	{"3m", "3 Months", 90 * 24 * time.Hour, 48 * time.Hour, store.Day, 2 * time.Hour, 5 * time.Minute},
	{"1y", "Year", 364 * 24 * time.Hour, 14 * 24 * time.Hour, store.Day, 6 * time.Hour, 5 * time.Minute},
}

// DefaultPeriod is shown when a page names none.
const DefaultPeriod = "1w"

// LookupPeriod returns the period with this name.
func LookupPeriod(name string) (Period, bool) {
	for _, p := range Periods {
		if p.Name == name {
			return p, true
		}
	}
	return Period{}, false
}

// Window returns the period's window as of now: [start, end), start =
// end − span. The end is the last boundary, before now − settle, of the
// period's bucket width (of a day for wider buckets, so that the month and
// year views reach yesterday): buckets are whole and stable while it
// lasts. settle leaves the rollups time to cover the last bucket. The 1h
// period reads raw rows, ignores settle and ends with the current minute.
func (p Period) Window(now time.Time, settle time.Duration) (start, end time.Time) {
	if p.Precision == store.Raw {
		// Raw rows are there at once: the window takes in the current,
		// partial bucket, so that an event shows within seconds.
		end = now.UTC().Truncate(p.Bucket).Add(p.Bucket)
		return end.Add(-p.Span), end
	}
	align := min(p.Bucket, 24*time.Hour)
	end = now.UTC().Add(-settle).Truncate(align)
	return end.Add(-p.Span), end
}

// Buckets returns the starts of the graph buckets of a window.
func (p Period) Buckets(start, end time.Time) []time.Time {
	var out []time.Time
	for t := start; t.Before(end); t = t.Add(p.Bucket) {
		out = append(out, t)
	}
	return out
}

// BucketLabel formats a bucket as the reference does: its END, UTC,
// "YYYY-MM-DD HH:MM".
func (p Period) BucketLabel(start time.Time) string {
	return start.Add(p.Bucket).UTC().Format("2006-01-02 15:04")
}

func (p Period) String() string {
	return fmt.Sprintf("%s (%v in buckets of %v)", p.Name, p.Span, p.Bucket)
}
