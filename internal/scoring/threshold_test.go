package scoring

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
)

// Events whose weights add up to exactly the entry threshold list the same
// whether they arrive in one batch or spread over a short burst: decay over
// the seconds between them must not leave 9.9997 below 10.
func TestThresholdReachedByABurst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typ   events.Type
		n     int
		every time.Duration
		want  bool
	}{
		{"four logins at once", events.TelnetLogin, 4, 0, true},
		{"four logins a microsecond apart", events.TelnetLogin, 4, time.Microsecond, true},
		{"four logins three seconds apart", events.TelnetLogin, 4, 3 * time.Second, true},
		{"four logins twenty seconds apart", events.TelnetLogin, 4, 20 * time.Second, true},
		{"two HaaS sessions a few seconds apart", events.HaasLogged, 2, 5 * time.Second, true},
		// The tolerance is a burst, not a discount: the same events over
		// hours decay well below the threshold.
		{"four logins an hour apart", events.TelnetLogin, 4, time.Hour, false},
		{"three logins at once", events.TelnetLogin, 3, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newSim(t, DefaultConfig())
			for i := range tc.n {
				m.observe(time.Duration(i)*tc.every, tc.typ, attacker, 1)
			}
			if got := m.s.Len() == 1; got != tc.want {
				x := m.explain(attacker, time.Duration(tc.n-1)*tc.every)
				t.Errorf("listed %v, want %v (score %.6f)", got, tc.want, x.Score)
			}
		})
	}
}

// A manual block that expires ends the listing for that reason, not for a
// score the block never needed.
func TestExpiredBlockReason(t *testing.T) {
	m := newSim(t, DefaultConfig())
	key := netip.MustParsePrefix(attacker + "/32")
	if _, ok, err := m.s.Block(key, base, base.Add(time.Hour), "seen in our SSH logs"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	m.to(time.Hour)
	if len(m.changes) != 1 || m.changes[0].Listed {
		t.Fatalf("changes %+v", m.changes)
	}
	if r := m.changes[0].Reason; !strings.Contains(r, "manual block ended") {
		t.Errorf("reason %q, want the block's end", r)
	}
	x := m.explain(attacker, time.Hour)
	if len(x.History) != 1 || !strings.Contains(x.History[0].EndReason, "manual block ended") {
		t.Errorf("history %+v", x.History)
	}

	// A key that kept attacking under the block stays listed by its score
	// when the block ends, and leaves later for the usual reason.
	m = newSim(t, DefaultConfig())
	if _, _, err := m.s.Block(key, base, base.Add(time.Hour), "x"); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		m.observe(59*time.Minute+time.Duration(i)*time.Second, events.TelnetLogin, attacker, 1)
	}
	m.to(time.Hour)
	if m.s.Len() != 1 {
		t.Fatalf("an attacker above the threshold left with its block: %+v", m.changes)
	}
}
