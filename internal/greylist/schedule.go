package greylist

import (
	"context"
	"fmt"
	"time"
)

// Clock is the time source of Run and of the handler, so that tests can
// move time by hand instead of sleeping.
type Clock interface {
	Now() time.Time
	// After is time.After: the channel receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// After relies on Go 1.23 timers, which are collected once unreferenced,
// so a wait abandoned on cancellation leaks nothing.
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// TimeOfDay is a time of the UTC day, in minutes after midnight. The zero
// value is 00:00, when the Turris greylist is taken.
type TimeOfDay int

// ParseTimeOfDay parses "HH:MM" (24-hour, UTC).
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("greylist: time of day %q: want HH:MM", s)
	}
	return TimeOfDay(t.Hour()*60 + t.Minute()), nil
}

// String returns "HH:MM".
func (t TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", int(t)/60, int(t)%60) }

// MarshalText writes "HH:MM", for configuration files.
func (t TimeOfDay) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads "HH:MM", for configuration files.
func (t *TimeOfDay) UnmarshalText(b []byte) error {
	v, err := ParseTimeOfDay(string(b))
	if err == nil {
		*t = v
	}
	return err
}

// prev returns the latest scheduled instant at or before now.
func (t TimeOfDay) prev(now time.Time) time.Time {
	now = now.UTC()
	at := time.Date(now.Year(), now.Month(), now.Day(), 0, int(t), 0, 0, time.UTC)
	if at.After(now) {
		at = at.AddDate(0, 0, -1)
	}
	return at
}

// next returns the first scheduled instant after now.
func (t TimeOfDay) next(now time.Time) time.Time { return t.prev(now).AddDate(0, 0, 1) }

const (
	// retryDelay is how soon a failed snapshot is tried again (a full disk
	// may be cleared); it never delays the next regular one.
	retryDelay = time.Minute
	// maxWait bounds each wait so that a wall clock that is stepped (NTP
	// after a boot without a real-time clock, an operator's correction) is
	// noticed within the hour: timers run on the monotonic clock and would
	// otherwise fire at the old idea of the time.
	maxWait = time.Hour
)

// Run takes a snapshot of source() every day at the given UTC time of day
// until ctx is done, and returns ctx's error. At start it takes one at once
// if the latest snapshot is older than the most recent scheduled time (for
// example, the server was down at midnight). A failed snapshot is logged and
// retried every minute until it succeeds or the next scheduled time comes.
// source runs on Run's goroutine. Since the catch-up calls it at once, start
// Run only when source can return the real list: an empty answer from a
// scorer that is still loading would be published as the day's greylist.
// On a read-only store Run returns ErrReadOnly at once.
func (s *Store) Run(ctx context.Context, at TimeOfDay, source func() []Entry) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	if at < 0 || at >= 24*60 {
		return fmt.Errorf("greylist: time of day %d minutes out of range", int(at))
	}
	now := s.clock.Now()
	latest, ok := s.Latest()
	pending := !ok || latest.Before(at.prev(now))
	next := at.next(now)
	s.log.Info("greylist scheduler started", "at", at.String()+" UTC", "next", next.UTC(), "catch_up", pending)
	for {
		now = s.clock.Now()
		// A clock stepped back by more than a day would otherwise leave
		// next too far away and skip days.
		if !now.Before(next) || next.Sub(now) > 24*time.Hour {
			pending = pending || !now.Before(next)
			next = at.next(now)
		}
		due := next.UTC()
		s.next.Store(&due)
		wake := next
		if pending {
			if err := s.Snapshot(now, source()); err != nil {
				s.log.Error("greylist snapshot failed", "err", err, "retry_in", retryDelay)
				if r := now.Add(retryDelay); r.Before(wake) {
					wake = r
				}
			} else {
				pending = false
			}
		}
		d := min(wake.Sub(now), maxWait)
		select {
		case <-ctx.Done():
			s.next.Store(nil)
			return ctx.Err()
		case <-s.clock.After(d):
		}
	}
}
