// Package stats computes the resources of Sentinel View — graphs, top
// lists and maps of incidents, attackers, passwords and ports over a period
// — from the statistics store as typed rows (Result; the view's API writes
// them in the JSON shapes of the reference view), and keeps them fresh in a cache so that pages never wait on a query.
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
//
// Every window ends with the bucket in progress, so a resource changes
// with every event: TTL is short for every period (an event shows within
// TTL plus a refresh pass, well under a minute), and so is MaxAge.
var Periods = []Period{
	{"1h", "Hour", time.Hour, time.Minute, store.Raw, 10 * time.Second, 10 * time.Second},
	{"6h", "6 Hours", 6 * time.Hour, 15 * time.Minute, store.Quarter, 20 * time.Second, 20 * time.Second},
	{"1d", "Day", 24 * time.Hour, 30 * time.Minute, store.Quarter, 20 * time.Second, 20 * time.Second},
	{"1w", "Week", 7 * 24 * time.Hour, 3 * time.Hour, store.Hour, 20 * time.Second, 20 * time.Second},
	{"1m", "Month", 30 * 24 * time.Hour, 24 * time.Hour, store.Day, 20 * time.Second, 20 * time.Second},
	{"3m", "3 Months", 90 * 24 * time.Hour, 48 * time.Hour, store.Day, 20 * time.Second, 20 * time.Second},
	{"1y", "Year", 364 * 24 * time.Hour, 14 * 24 * time.Hour, store.Day, 20 * time.Second, 20 * time.Second},
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
// end − span. The end is the next boundary after now of the period's
// bucket width (of a day for wider buckets): the last graph bucket is the
// one in progress, and the window moves when it is over. The store answers
// the finished buckets from its rollups and the newest minutes from finer
// rollups and raw rows, so an event counts at once on every period.
// settle is no longer needed (the rollups' lag is covered by the store)
// and is ignored; callers still pass it.
func (p Period) Window(now time.Time, settle time.Duration) (start, end time.Time) {
	_ = settle
	align := min(p.Bucket, 24*time.Hour)
	end = now.UTC().Truncate(align).Add(align)
	return end.Add(-p.Span), end
}

// InProgress reports whether the graph bucket starting at start is not
// over yet at now (its counts are partial).
func (p Period) InProgress(start, now time.Time) bool {
	return now.Before(start.Add(p.Bucket))
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
