package greylist

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when the test says so. Each After
// call is announced on armed, so that a test knows Run is waiting before it
// moves the time.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	armed   chan time.Duration
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, armed: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
	} else {
		c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	}
	c.mu.Unlock()
	c.armed <- d
	return ch
}

// Set moves the clock to t and fires the waits that are due.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// waitArmed waits until the code under test waits on the clock, and
// returns how long it asked to wait.
func (c *fakeClock) waitArmed(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.armed:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("Run never waited on the clock")
		return 0
	}
}

// runner starts Run with a fake clock and counts the source's calls.
type runner struct {
	t      *testing.T
	dir    string
	store  *Store
	clock  *fakeClock
	calls  atomic.Int64
	cancel context.CancelFunc
	done   chan error
}

func startRun(t *testing.T, dir string, start time.Time, at TimeOfDay) *runner {
	t.Helper()
	r := &runner{t: t, dir: dir, clock: newFakeClock(start), done: make(chan error, 1)}
	r.store, _ = newStore(t, dir, Options{Clock: r.clock})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- r.store.Run(ctx, at, func() []Entry {
			r.calls.Add(1)
			return ipv4Entries(3)
		})
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *runner) stop() {
	r.cancel()
	if err := <-r.done; !errors.Is(err, context.Canceled) {
		r.t.Errorf("Run returned %v, want context.Canceled", err)
	}
	r.done <- context.Canceled // a second stop returns at once
}

// advance moves the clock to t and waits until Run waits again.
func (r *runner) advance(t time.Time) time.Duration {
	r.clock.Set(t)
	return r.clock.waitArmed(r.t)
}

func (r *runner) expect(calls int64, latest time.Time) {
	r.t.Helper()
	if got := r.calls.Load(); got != calls {
		r.t.Errorf("%d snapshots, want %d", got, calls)
	}
	if got, ok := r.store.Latest(); !ok || !got.Equal(latest) {
		r.t.Errorf("latest snapshot %v (%v), want %v", got, ok, latest)
	}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestRunCatchUpThenDaily(t *testing.T) {
	dir := t.TempDir()
	r := startRun(t, dir, at("2024-03-10T12:34:56Z"), 0)
	// Nothing yet: a snapshot at once.
	if d := r.clock.waitArmed(t); d <= 0 || d > maxWait {
		t.Errorf("waits %v", d)
	}
	r.expect(1, at("2024-03-10T12:34:56Z"))
	// Waking before midnight (the hourly re-check) takes nothing.
	r.advance(at("2024-03-10T13:34:56Z"))
	r.advance(at("2024-03-10T23:59:59Z"))
	r.expect(1, at("2024-03-10T12:34:56Z"))
	if d := r.advance(at("2024-03-11T00:00:00Z")); d != maxWait {
		t.Errorf("after the snapshot, waits %v, want the %v cap", d, maxWait)
	}
	r.expect(2, at("2024-03-11T00:00:00Z"))
	r.advance(at("2024-03-12T00:00:00Z"))
	r.expect(3, at("2024-03-12T00:00:00Z"))
	for _, day := range []string{"2024-03-10", "2024-03-11", "2024-03-12"} {
		if !exists(dir, "archive/2024/greylist-"+day+".csv") {
			t.Errorf("no archive for %s", day)
		}
	}
	// A clock that jumps two days ahead gives one snapshot, not a burst.
	r.advance(at("2024-03-14T05:00:00Z"))
	r.expect(4, at("2024-03-14T05:00:00Z"))
	r.advance(at("2024-03-14T06:00:00Z"))
	r.expect(4, at("2024-03-14T05:00:00Z"))
}

func TestRunNoCatchUpWhenCurrent(t *testing.T) {
	dir := t.TempDir()
	s, _ := newStore(t, dir, Options{})
	if err := s.Snapshot(at("2024-03-10T00:00:05Z"), ipv4Entries(1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	r := startRun(t, dir, at("2024-03-10T08:00:00Z"), 0)
	r.clock.waitArmed(t)
	r.expect(0, at("2024-03-10T00:00:05Z"))
	r.advance(at("2024-03-11T00:00:00Z"))
	r.expect(1, at("2024-03-11T00:00:00Z"))
}

func TestRunAtTimeOfDay(t *testing.T) {
	at0630, err := ParseTimeOfDay("06:30")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		latest  string
		catchUp bool
	}{
		{"yesterday's run happened", "2024-03-09T06:30:00Z", false},
		{"yesterday's run was missed", "2024-03-08T06:30:00Z", true},
		{"last run before yesterday's time", "2024-03-09T06:29:59Z", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := newStore(t, dir, Options{})
			if err := s.Snapshot(at(tc.latest), ipv4Entries(1)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			// 03:00 on the 10th: the latest scheduled time is the 9th at 06:30.
			r := startRun(t, dir, at("2024-03-10T03:00:00Z"), at0630)
			r.clock.waitArmed(t)
			calls, latest := int64(0), at(tc.latest)
			if tc.catchUp {
				calls, latest = 1, at("2024-03-10T03:00:00Z")
			}
			r.expect(calls, latest)
			r.advance(at("2024-03-10T06:29:00Z"))
			r.expect(calls, latest)
			r.advance(at("2024-03-10T06:30:00Z"))
			r.expect(calls+1, at("2024-03-10T06:30:00Z"))
		})
	}
}

func TestRunRetriesFailedSnapshot(t *testing.T) {
	dir := t.TempDir()
	// A file where the year directory must go makes the snapshot fail.
	os.MkdirAll(filepath.Join(dir, "archive"), 0o755)
	block := filepath.Join(dir, "archive", "2024")
	os.WriteFile(block, nil, 0o644)
	r := startRun(t, dir, at("2024-03-10T12:00:00Z"), 0)
	if d := r.clock.waitArmed(t); d != retryDelay {
		t.Errorf("after a failure, waits %v, want %v", d, retryDelay)
	}
	if _, ok := r.store.Latest(); ok {
		t.Fatal("a failed snapshot wrote greylist-latest")
	}
	r.advance(at("2024-03-10T12:01:00Z")) // fails again
	os.Remove(block)
	r.advance(at("2024-03-10T12:02:00Z"))
	r.expect(3, at("2024-03-10T12:02:00Z"))
	r.advance(at("2024-03-10T13:02:00Z"))
	r.expect(3, at("2024-03-10T12:02:00Z"))
}

func TestRunRejectsBadTime(t *testing.T) {
	s, _ := newStore(t, t.TempDir(), Options{})
	for _, tod := range []TimeOfDay{-1, 24 * 60} {
		if err := s.Run(context.Background(), tod, nil); err == nil {
			t.Errorf("Run accepted %d", tod)
		}
	}
}

func TestTimeOfDay(t *testing.T) {
	for in, want := range map[string]int{"00:00": 0, "23:59": 23*60 + 59, "06:30": 390, "6:30": 390} {
		got, err := ParseTimeOfDay(in)
		if err != nil || int(got) != want {
			t.Errorf("ParseTimeOfDay(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "24:00", "12:60", "1230", "12:30:00", "noon", "-1:00"} {
		if _, err := ParseTimeOfDay(in); err == nil {
			t.Errorf("ParseTimeOfDay(%q) accepted", in)
		}
	}
	var tod TimeOfDay
	if err := tod.UnmarshalText([]byte("07:05")); err != nil || tod.String() != "07:05" {
		t.Errorf("UnmarshalText: %v, %v", tod, err)
	}
	if b, _ := TimeOfDay(0).MarshalText(); string(b) != "00:00" {
		t.Errorf("MarshalText(0) = %s", b)
	}
	for _, tc := range []struct {
		tod        TimeOfDay
		now        string
		prev, next string
	}{
		{0, "2024-03-10T12:00:00Z", "2024-03-10T00:00:00Z", "2024-03-11T00:00:00Z"},
		{0, "2024-03-10T00:00:00Z", "2024-03-10T00:00:00Z", "2024-03-11T00:00:00Z"},
		{390, "2024-03-10T06:29:59Z", "2024-03-09T06:30:00Z", "2024-03-10T06:30:00Z"},
		{390, "2024-12-31T23:00:00Z", "2024-12-31T06:30:00Z", "2025-01-01T06:30:00Z"},
		{0, "2024-03-10T01:00:00+02:00", "2024-03-09T00:00:00Z", "2024-03-10T00:00:00Z"},
	} {
		now := at(tc.now)
		if p, n := tc.tod.prev(now), tc.tod.next(now); !p.Equal(at(tc.prev)) || !n.Equal(at(tc.next)) {
			t.Errorf("%v at %s: prev %v next %v, want %s %s", tc.tod, tc.now, p, n, tc.prev, tc.next)
		}
	}
}
