package feed

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/passwords"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
)

func insertPasswords(t *testing.T, st store.Store, pw string, at time.Time, n int) {
	t.Helper()
	var b store.Batch
	for range n {
		b.Passwords = append(b.Passwords, store.Password{Time: at, Trap: "minipot_telnet", Username: "root", Password: pw})
	}
	if err := st.Insert(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

// The tail counts every stored row exactly once: across passes, at the
// boundary second, for rows stored late within the settle margin, across
// a compaction and across restarts.
func TestCorpusTailExactlyOnce(t *testing.T) {
	ctx := context.Background()
	st, err := backend.Open(ctx, filepath.Join(t.TempDir(), "stats.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := t.TempDir()
	base := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	clock := base
	newTail := func() *corpusTail {
		tl := &corpusTail{store: st, log: slog.New(slog.DiscardHandler), poll: time.Hour, settle: 10 * time.Second,
			compact: time.Hour, now: func() time.Time { return clock }}
		if err := tl.open(ctx, data); err != nil {
			t.Fatal(err)
		}
		return tl
	}
	pass := func(tl *corpusTail) {
		t.Helper()
		if err := tl.pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check := func(tl *corpusTail, what string, want map[string]uint64) {
		t.Helper()
		for pw, n := range want {
			e, _, err := tl.corpus.Get(passwords.HashPassword(pw))
			if err != nil {
				t.Fatal(err)
			}
			if e.Count != n {
				t.Errorf("%s: %q counted %d times, want %d", what, pw, e.Count, n)
			}
		}
	}

	insertPasswords(t, st, "old", base.Add(-time.Hour), 2)
	insertPasswords(t, st, "recent", base.Add(-5*time.Second), 1)
	tl := newTail()
	if want := base.Add(-10 * time.Second); !tl.last.Equal(want) {
		t.Fatalf("tail starts at %v, want now − settle = %v", tl.last, want)
	}
	check(tl, "at start", map[string]uint64{"old": 2, "recent": 0})

	// The second of "recent" is read once it is settle old, not before.
	clock = base.Add(5*time.Second + 999*time.Millisecond)
	pass(tl)
	check(tl, "before its second settled", map[string]uint64{"recent": 0})
	clock = base.Add(6 * time.Second)
	pass(tl)
	check(tl, "after", map[string]uint64{"recent": 1})

	// Stored late (after its own time) but within the margin: counted.
	insertPasswords(t, st, "late", base.Add(-time.Second), 1)
	// Two rows of one second, stored on either side of the pass that
	// ends at that second.
	insertPasswords(t, st, "edge", base.Add(2*time.Second+500*time.Millisecond), 1)
	clock = base.Add(12 * time.Second) // reads up to base+2s, exclusive
	pass(tl)
	check(tl, "boundary", map[string]uint64{"late": 1, "edge": 0})
	insertPasswords(t, st, "edge", base.Add(2*time.Second), 1)
	for range 5 {
		clock = clock.Add(700 * time.Millisecond)
		pass(tl)
	}
	all := map[string]uint64{"old": 2, "recent": 1, "late": 1, "edge": 2}
	check(tl, "after several passes", all)

	// Stored later than the margin, behind the tail: missed...
	insertPasswords(t, st, "too-late", base.Add(-30*time.Second), 1)
	pass(tl)
	check(tl, "too late", map[string]uint64{"too-late": 0})
	// ... until a restart replays the rows stored after the watermark
	// (none yet: every row).
	tl.corpus.Close()
	clock = clock.Add(time.Minute)
	tl = newTail()
	all["too-late"] = 1
	check(tl, "restart without a file", all)

	// A compaction records the tail's position; the restart replays only
	// what follows, so nothing is counted twice.
	insertPasswords(t, st, "before-compaction", tl.last.Add(-time.Second), 1) // behind the tail: missed, then in no file
	insertPasswords(t, st, "next", tl.last, 3)
	clock = clock.Add(5 * time.Second)
	pass(tl)
	if err := tl.corpus.CompactAt(ctx, tl.last); err != nil {
		t.Fatal(err)
	}
	if wm := tl.corpus.Watermark(); !wm.Equal(tl.last) {
		t.Fatalf("watermark %v, want the tail's position %v", wm, tl.last)
	}
	insertPasswords(t, st, "after-compaction", tl.last, 1)
	tl.corpus.Close()
	clock = clock.Add(time.Minute)
	tl = newTail()
	defer tl.corpus.Close()
	all["next"], all["after-compaction"], all["before-compaction"] = 3, 1, 0
	check(tl, "restart after a compaction", all)
	for range 3 {
		clock = clock.Add(time.Second)
		pass(tl)
	}
	check(tl, "passes after the restart", all)
}
