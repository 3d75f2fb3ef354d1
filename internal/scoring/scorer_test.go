package scoring

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/scorecard"
)

var base = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

const attacker = "185.100.87.41"

// sim drives a scorer through simulated time, ticking every second as the
// server does.
type sim struct {
	t       *testing.T
	s       *Scorer
	ticked  time.Duration
	changes []Change
}

func newSim(t *testing.T, cfg Config) *sim {
	return &sim{t: t, s: New(cfg)}
}

func (m *sim) emit(c Change) { m.changes = append(m.changes, c) }

// to ticks every whole second up to d, as the server does. Seconds before
// the first deadline in the heap are skipped, since ticks do nothing then,
// so that timelines of weeks run fast.
func (m *sim) to(d time.Duration) {
	last := d.Truncate(time.Second)
	for m.ticked < last {
		next := m.ticked + time.Second
		if len(m.s.heap) == 0 {
			m.ticked = last
			return
		}
		if due := time.Duration(m.s.heap[0].at - base.UnixNano()); due > next {
			due = (due + time.Second - 1).Truncate(time.Second)
			if due > last {
				m.ticked = last
				return
			}
			next = due
		}
		m.s.Tick(base.Add(next), m.emit)
		m.ticked = next
	}
}

func (m *sim) observe(d time.Duration, typ events.Type, addr string, probe events.ProbeID) {
	m.to(d)
	e := events.Event{Time: base.Add(d).UnixNano(), Type: typ, Addr: netip.MustParseAddr(addr), Probe: probe, Source: events.FromZMQ}
	if c, ok := m.s.Observe(&e); ok {
		m.emit(c)
	}
}

func (m *sim) explain(addr string, d time.Duration) scorecard.Explanation {
	x, _ := m.s.Explain(netip.MustParseAddr(addr), base.Add(d))
	return x
}

// step is one line of a scoring timeline: n events of a type from addr,
// every apart, or a check that addr is (or is not) listed.
type step struct {
	at     time.Duration
	typ    events.Type
	n      int
	every  time.Duration
	addr   string
	probe  events.ProbeID
	check  int    // 0 none, 1 listed, 2 not listed
	reason string // with check: the latest change of addr says this
}

func ev(at time.Duration, typ events.Type) step { return step{at: at, typ: typ, n: 1} }

func burst(at time.Duration, typ events.Type, n int, every time.Duration) step {
	return step{at: at, typ: typ, n: n, every: every}
}

func listed(at time.Duration) step   { return step{at: at, check: 1} }
func unlisted(at time.Duration) step { return step{at: at, check: 2} }

func (s step) from(addr string) step      { s.addr = addr; return s }
func (s step) by(p events.ProbeID) step   { s.probe = p; return s }
func (s step) because(reason string) step { s.reason = reason; return s }

func (m *sim) run(steps []step) {
	m.t.Helper()
	for i, st := range steps {
		addr := st.addr
		if addr == "" {
			addr = attacker
		}
		if st.check == 0 {
			for j := range st.n {
				m.observe(st.at+time.Duration(j)*st.every, st.typ, addr, st.probe)
			}
			continue
		}
		m.to(st.at)
		x := m.explain(addr, st.at)
		if want := st.check == 1; x.Listed != want {
			m.t.Errorf("step %d: %s at %v: listed %v, want %v (score %.2f, history %+v)", i, addr, st.at, x.Listed, want, x.Score, x.History)
		}
		if st.reason != "" {
			var last *Change
			key := m.s.Key(netip.MustParseAddr(addr))
			for j := range m.changes {
				if m.changes[j].Key == key {
					last = &m.changes[j]
				}
			}
			if last == nil || !strings.Contains(last.Reason, st.reason) {
				m.t.Errorf("step %d: %s: latest change %+v, want a reason with %q", i, addr, last, st.reason)
			}
		}
	}
}

func TestTimelines(t *testing.T) {
	const (
		sec    = time.Second
		minute = time.Minute
		hour   = time.Hour
		day    = 24 * time.Hour
	)
	tests := []struct {
		name  string
		cfg   func(*Config)
		steps []step
	}{
		{"a single connect never lists", nil, []step{
			ev(0, events.TelnetConnect), unlisted(sec), unlisted(2 * day),
		}},
		{"a few connects in a row do not list", nil, []step{
			burst(0, events.TelnetConnect, 10, sec), unlisted(15 * sec),
		}},
		{"connects every minute for an hour do not list", nil, []step{
			burst(0, events.TelnetConnect, 30, 2*minute), burst(minute, events.HTTPConnect, 30, 2*minute), unlisted(hour + minute),
		}},
		{"a brute-force burst lists within seconds", nil, []step{
			ev(0, events.TelnetConnect), burst(sec, events.TelnetLogin, 3, sec), unlisted(3 * sec),
			ev(4*sec, events.TelnetLogin), listed(4 * sec).because("telnet_login"),
		}},
		{"five logins without a connect list", nil, []step{
			burst(0, events.FTPLogin, 5, sec), listed(4 * sec).because("entry threshold 10 with ftp_login"),
		}},
		{"a single HaaS session does not list, two do", nil, []step{
			ev(0, events.HaasLoggedActive), unlisted(10 * sec), ev(minute, events.HaasLogged), listed(minute + sec),
		}},
		{"one scan window does not list, a sustained scan does", nil, []step{
			ev(0, events.FwlogsSmallPortScan), ev(2*minute, events.FwlogsBigPortScan), unlisted(9 * minute),
			ev(10*minute, events.FwlogsSmallPortScan), unlisted(11 * minute),
			ev(12*minute, events.FwlogsBigPortScan), listed(12 * minute).because("fwlogs_big_port_scan"),
		}},
		{"hysteresis keeps a listing between exit and entry", nil, []step{
			// 12.5 points: below the entry 10 after 3.9 h, below the exit 5
			// after 15.9 h.
			burst(0, events.TelnetLogin, 5, sec), listed(5 * sec),
			listed(5 * hour), listed(15 * hour), unlisted(16*hour + 30*minute).because("below the exit threshold 5"),
		}},
		{"the minimum duration outlasts the decay", func(c *Config) { c.MinDuration = 24 * hour }, []step{
			burst(0, events.TelnetLogin, 5, sec), listed(20 * hour), listed(24 * hour), unlisted(24*hour + 5*sec),
		}},
		{"a repeat offender's listings double, up to the cap", func(c *Config) {
			c.HalfLife, c.MinDuration, c.MaxDuration = hour, 6*hour, 20*hour
		}, []step{
			burst(0, events.TelnetLogin, 5, sec), listed(6 * hour), unlisted(6*hour + 10*sec),
			burst(10*hour, events.TelnetLogin, 5, sec), listed(22 * hour), unlisted(22*hour + 10*sec),
			burst(30*hour, events.TelnetLogin, 5, sec), listed(50 * hour), unlisted(50*hour + 10*sec),
			burst(60*hour, events.TelnetLogin, 5, sec), listed(80 * hour), unlisted(80*hour + 10*sec),
		}},
		{"offences are forgotten after a quiet month", func(c *Config) {
			c.HalfLife, c.MinDuration, c.OffenceMemory = hour, 6*hour, 10*day
		}, []step{
			burst(0, events.TelnetLogin, 5, sec), unlisted(6*hour + 10*sec),
			burst(11*day, events.TelnetLogin, 5, sec), listed(11*day + 6*hour), unlisted(11*day + 6*hour + 10*sec),
		}},
		{"max age ends a listing without events", func(c *Config) { c.MaxAge, c.MinDuration = 2*hour, hour }, []step{
			burst(0, events.TelnetLogin, 100, 10*time.Millisecond), listed(sec), listed(2*hour - sec),
			unlisted(2*hour + 2*sec).because("no event for 2h0m0s"),
		}},
		{"max age counts from the last event", func(c *Config) { c.MaxAge, c.MinDuration = 2*hour, hour }, []step{
			burst(0, events.TelnetLogin, 100, 10*time.Millisecond), ev(90*minute, events.TelnetConnect),
			listed(3 * hour), unlisted(3*hour + 31*minute),
		}},
		{"the allow-list is never listed", func(c *Config) { c.Allow = []netip.Prefix{netip.MustParsePrefix("185.100.87.0/24")} }, []step{
			burst(0, events.TelnetLogin, 20, sec), unlisted(30 * sec),
			burst(0, events.TelnetLogin, 20, sec).from("185.100.88.1"), listed(30 * sec).from("185.100.88.1"),
		}},
		{"non-global addresses are never listed", nil, []step{
			burst(0, events.TelnetLogin, 20, 0).from("10.1.2.3"), unlisted(sec).from("10.1.2.3"),
			burst(0, events.TelnetLogin, 20, 0).from("192.168.1.1"), unlisted(sec).from("192.168.1.1"),
			burst(0, events.TelnetLogin, 20, 0).from("100.64.1.1"), unlisted(sec).from("100.64.1.1"),
			burst(0, events.TelnetLogin, 20, 0).from("127.0.0.1"), unlisted(sec).from("127.0.0.1"),
			burst(0, events.TelnetLogin, 20, 0).from("169.254.1.1"), unlisted(sec).from("169.254.1.1"),
			burst(0, events.TelnetLogin, 20, 0).from("224.0.0.1"), unlisted(sec).from("224.0.0.1"),
			burst(0, events.TelnetLogin, 20, 0).from("255.255.255.255"), unlisted(sec).from("255.255.255.255"),
			burst(0, events.TelnetLogin, 20, 0).from("0.0.0.0"), unlisted(sec).from("0.0.0.0"),
			burst(0, events.TelnetLogin, 20, 0).from("::ffff:10.9.9.9"), unlisted(sec).from("10.9.9.9"),
			burst(0, events.TelnetLogin, 20, 0).from("fd00::1"), unlisted(sec).from("fd00::1"),
			burst(0, events.TelnetLogin, 20, 0).from("fe80::1%eth0"), unlisted(sec).from("fe80::1"),
			burst(0, events.TelnetLogin, 20, 0).from("::1"), unlisted(sec).from("::1"),
			burst(0, events.TelnetLogin, 20, 0).from("2001:db8::1"), unlisted(sec).from("2001:db8::1"),
			burst(0, events.TelnetLogin, 20, 0).from("ff02::1"), unlisted(sec).from("ff02::1"),
			burst(0, events.TelnetLogin, 20, 0).from("2a01:4f8::1"), listed(sec).from("2a01:4f8::1"),
			burst(0, events.TelnetLogin, 20, 0).from("::ffff:185.1.1.1"), listed(sec).from("185.1.1.1"),
		}},
		{"non-global addresses are listed when allowed", func(c *Config) { c.ListNonGlobal = true }, []step{
			burst(0, events.TelnetLogin, 20, 0).from("10.1.2.3"), listed(sec).from("10.1.2.3"),
			burst(0, events.TelnetLogin, 20, 0).from("2001:db8::1"), listed(sec).from("2001:db8::1"),
		}},
		{"the floor is never listed, even when non-global addresses are", func(c *Config) { c.ListNonGlobal = true }, []step{
			burst(0, events.TelnetLogin, 20, 0).from("127.0.0.1"), unlisted(sec).from("127.0.0.1"),
			burst(0, events.TelnetLogin, 20, 0).from("::1"), unlisted(sec).from("::1"),
			burst(0, events.TelnetLogin, 20, 0).from("0.0.0.0"), unlisted(sec).from("0.0.0.0"),
			burst(0, events.TelnetLogin, 20, 0).from("169.254.1.1"), unlisted(sec).from("169.254.1.1"),
			burst(0, events.TelnetLogin, 20, 0).from("fe80::1"), unlisted(sec).from("fe80::1"),
			burst(0, events.TelnetLogin, 20, 0).from("224.0.0.1"), unlisted(sec).from("224.0.0.1"),
			burst(0, events.TelnetLogin, 20, 0).from("2002:7f00:1::1"), unlisted(sec).from("2002:7f00:1::1"),
			burst(0, events.TelnetLogin, 20, 0).from("64:ff9b::7f00:1"), unlisted(sec).from("64:ff9b::7f00:1"),
		}},
		{"6to4, NAT64 and Teredo forms of non-global addresses are never listed", nil, []step{
			burst(0, events.TelnetLogin, 20, 0).from("2002:7f00:1::1"), unlisted(sec).from("2002:7f00:1::1"),
			burst(0, events.TelnetLogin, 20, 0).from("2002:c0a8:101::5"), unlisted(sec).from("2002:c0a8:101::5"),
			burst(0, events.TelnetLogin, 20, 0).from("64:ff9b::a00:1"), unlisted(sec).from("64:ff9b::a00:1"),
			burst(0, events.TelnetLogin, 20, 0).from("2001:0:4136:e378:8000:63bf:80ff:fffe"), unlisted(sec).from("2001:0:4136:e378:8000:63bf:80ff:fffe"),
			burst(0, events.TelnetLogin, 20, 0).from("2002:b901:101::1"), listed(sec).from("2002:b901:101::1"), // 185.1.1.1
		}},
		{"a Teredo /64 holds the Teredo form of every IPv4 address", func(c *Config) { c.IPv6Prefix = 64 }, []step{
			burst(0, events.TelnetLogin, 20, 0).from("2001:0:4136:e378:8000:63bf:f7f7:f7f7"), unlisted(sec).from("2001:0:4136:e378::1"),
			burst(0, events.TelnetLogin, 20, 0).from("2002:b901:101:1::1"), listed(sec).from("2002:b901:101:1::2"),
		}},
		{"one probe alone is capped", func(c *Config) { c.ProbeCap = 0.6 }, []step{
			burst(0, events.TelnetLogin, 30, sec).by(1), unlisted(40 * sec),
			burst(time.Minute, events.TelnetLogin, 1, 0).by(2), unlisted(time.Minute + sec),
			burst(time.Minute+2*sec, events.TelnetLogin, 1, 0).by(2), listed(time.Minute + 3*sec).because("telnet_login"),
		}},
		{"without a cap one probe is enough", nil, []step{
			burst(0, events.TelnetLogin, 5, sec).by(1), listed(5 * sec),
		}},
		{"a capped probe may add again as its part decays", func(c *Config) { c.ProbeCap = 0.6; c.HalfLife = hour }, []step{
			burst(0, events.TelnetLogin, 3, sec).by(1), burst(2*hour, events.TelnetLogin, 3, sec).by(1), unlisted(2*hour + 5*sec),
			burst(2*hour+10*sec, events.TelnetLogin, 2, sec).by(2), listed(2*hour + 12*sec),
		}},
		{"IPv6 addresses of one /64 add up", func(c *Config) { c.IPv6Prefix = 64 }, []step{
			ev(0, events.TelnetLogin).from("2a01:4f8:1:2::1"), ev(sec, events.TelnetLogin).from("2a01:4f8:1:2::2"),
			ev(2*sec, events.TelnetLogin).from("2a01:4f8:1:2:aaaa::3"), ev(3*sec, events.TelnetLogin).from("2a01:4f8:1:2:ffff:ffff:ffff:ffff"),
			ev(4*sec, events.TelnetLogin).from("2a01:4f8:1:2::5"), listed(5 * sec).from("2a01:4f8:1:2::77"),
			unlisted(5 * sec).from("2a01:4f8:1:3::1"),
		}},
		{"IPv6 addresses stay apart without aggregation", nil, []step{
			ev(0, events.TelnetLogin).from("2a01:4f8:1:2::1"), ev(sec, events.TelnetLogin).from("2a01:4f8:1:2::2"),
			ev(2*sec, events.TelnetLogin).from("2a01:4f8:1:2::3"), ev(3*sec, events.TelnetLogin).from("2a01:4f8:1:2::4"),
			ev(4*sec, events.TelnetLogin).from("2a01:4f8:1:2::5"), unlisted(5 * sec).from("2a01:4f8:1:2::5"),
		}},
		{"a disabled type is ignored", func(c *Config) { c.Weights = map[string]float64{"telnet_login": 0} }, []step{
			burst(0, events.TelnetLogin, 20, sec), unlisted(30 * sec),
			burst(0, events.FTPLogin, 5, sec), listed(30 * sec),
		}},
		{"packets are never scored", nil, []step{
			burst(0, events.FwlogsPacket, 1000, time.Millisecond), unlisted(2 * sec),
		}},
		{"late events count decayed", func(c *Config) { c.HalfLife = hour }, []step{
			ev(2*hour, events.TelnetConnect), burst(0, events.TelnetLogin, 4, 0), unlisted(2*hour + sec),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if err := cfg.Check(); err != nil {
				t.Fatal(err)
			}
			newSim(t, cfg).run(tc.steps)
		})
	}
}

// TestLateEvents checks that an event older than the key's latest one
// counts with its decayed weight and moves first seen back.
func TestLateEvents(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HalfLife = time.Hour
	s := New(cfg)
	a := netip.MustParseAddr(attacker)
	s.Observe(&events.Event{Time: base.Add(2 * time.Hour).UnixNano(), Type: events.TelnetLogin, Addr: a})
	s.Observe(&events.Event{Time: base.Add(time.Hour).UnixNano(), Type: events.TelnetLogin, Addr: a})
	x, _ := s.Explain(a, base.Add(2*time.Hour))
	if want := 2.5 + 1.25; x.Score < want-1e-9 || x.Score > want+1e-9 {
		t.Errorf("score %v, want %v", x.Score, want)
	}
	if !x.FirstSeen.Equal(base.Add(time.Hour)) || !x.LastSeen.Equal(base.Add(2*time.Hour)) {
		t.Errorf("seen %v to %v", x.FirstSeen, x.LastSeen)
	}
}

func TestChangeOfBurst(t *testing.T) {
	m := newSim(t, DefaultConfig())
	for i := range 10 {
		m.observe(time.Duration(i)*300*time.Millisecond, events.SMTPLogin, attacker, 3)
	}
	if len(m.changes) != 1 {
		t.Fatalf("changes %+v", m.changes)
	}
	c := m.changes[0]
	// The fourth login brings the score to 9.9999: within the burst
	// tolerance of the threshold, as four logins at once would be.
	want := Change{Key: netip.MustParsePrefix(attacker + "/32"), Listed: true, Time: base.Add(900 * time.Millisecond).UnixNano(),
		Reason: "score 10.0 reached the entry threshold 10 with smtp_login"}
	if c != want {
		t.Errorf("change\n%+v, want\n%+v", c, want)
	}
	if m.s.Len() != 1 {
		t.Errorf("Len %d", m.s.Len())
	}
}

func TestRepeatOffenderExplained(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HalfLife = time.Hour
	m := newSim(t, cfg)
	for _, at := range []time.Duration{0, 10 * time.Hour, 30 * time.Hour} {
		for i := range 5 {
			m.observe(at+time.Duration(i)*time.Second, events.TelnetLogin, attacker, 1)
		}
	}
	x := m.explain(attacker, 30*time.Hour+5*time.Second)
	if !x.Listed || x.Offences != 3 || len(x.History) != 3 {
		t.Fatalf("%+v", x)
	}
	// Listed at the fourth login of the burst (3 s).
	if got, want := x.EarliestEnd, base.Add(30*time.Hour+3*time.Second+24*time.Hour); !got.Equal(want) {
		t.Errorf("earliest end %v, want %v (6 h doubled twice)", got, want)
	}
	if d := x.History[1].End.Sub(x.History[1].Start); d != 12*time.Hour {
		t.Errorf("second listing lasted %v, want 12h", d)
	}
}

func TestBlockUnblock(t *testing.T) {
	m := newSim(t, DefaultConfig())
	s := m.s
	key := netip.MustParsePrefix(attacker + "/32")
	at := func(d time.Duration) time.Time { return base.Add(d) }

	// A block lists at once, whatever the score, and ends by itself.
	c, ok, err := s.Block(key, at(0), at(time.Hour), "seen in our SSH logs")
	if err != nil || !ok || !c.Listed || c.Reason != "manual block: seen in our SSH logs" {
		t.Fatalf("block: %+v %v %v", c, ok, err)
	}
	x := m.explain(attacker, 10*time.Minute)
	if !x.Listed || x.Override == nil || x.Override.Kind != "block" || x.Override.Reason != "seen in our SSH logs" ||
		!x.EarliestEnd.Equal(at(time.Hour)) || x.Offences != 1 {
		t.Errorf("explanation under a block: %+v %+v", x, x.Override)
	}
	m.to(time.Hour - time.Second)
	if s.Len() != 1 {
		t.Fatal("block ended early")
	}
	m.to(time.Hour)
	if s.Len() != 0 || len(m.changes) != 1 || m.changes[0].Listed {
		t.Fatalf("block did not end: %+v", m.changes)
	}
	if x := m.explain(attacker, time.Hour); x.Override != nil || len(x.History) != 1 || x.History[0].End.IsZero() {
		t.Errorf("after the block: %+v", x)
	}

	// An unblock takes a listed key off the list and keeps it off while
	// it attacks; when it ends the key is listed again.
	m.changes = nil
	for i := range 5 {
		m.observe(2*time.Hour+time.Duration(i)*time.Second, events.TelnetLogin, attacker, 1)
	}
	if s.Len() != 1 {
		t.Fatal("burst not listed")
	}
	c, ok, err = s.Unblock(key, at(2*time.Hour+time.Minute), at(3*time.Hour), "our scanner")
	if err != nil || !ok || c.Listed || c.Reason != "manual unblock: our scanner" {
		t.Fatalf("unblock: %+v %v %v", c, ok, err)
	}
	x = m.explain(attacker, 2*time.Hour+time.Minute)
	if x.Listed || x.Override == nil || x.Override.Kind != "unblock" || x.Offences != 1 {
		t.Errorf("unblocked: %+v", x)
	}
	for i := range 10 {
		m.observe(2*time.Hour+2*time.Minute+time.Duration(i)*time.Second, events.TelnetLogin, attacker, 1)
	}
	m.to(3*time.Hour - time.Second)
	if s.Len() != 0 {
		t.Fatal("listed while unblocked")
	}
	m.to(3 * time.Hour)
	if s.Len() != 1 || !strings.Contains(m.changes[len(m.changes)-1].Reason, "when the unblock ended") {
		t.Fatalf("not listed again after the unblock: %+v", m.changes)
	}

	// Clear ends an override early.
	if _, _, err := s.Clear(key, at(3*time.Hour)); !errors.Is(err, ErrNoOverride) {
		t.Errorf("clear without override: %v", err)
	}
	other := netip.MustParsePrefix("185.1.2.3/32")
	if _, ok, _ := s.Block(other, at(3*time.Hour), at(100*time.Hour), "x"); !ok {
		t.Fatal("second block")
	}
	c, ok, err = s.Clear(other, at(3*time.Hour+time.Second))
	if err != nil || !ok || c.Listed {
		t.Errorf("clear of a block: %+v %v %v", c, ok, err)
	}
	if _, _, err := s.Unblock(other, at(4*time.Hour), at(5*time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	if c, ok, err := s.Clear(other, at(4*time.Hour)); err != nil || ok {
		t.Errorf("clear of an unblock on a quiet key: %+v %v %v", c, ok, err)
	}

	// Refusals.
	for _, tc := range []struct {
		p    string
		want error
	}{
		{"10.0.0.1/32", ErrNeverListed},
		{"2002:7f00:1::1/128", ErrNeverListed},                       // 6to4 of 127.0.0.1
		{"64:ff9b::a00:1/128", ErrNeverListed},                       // NAT64 of 10.0.0.1
		{"2001:0:4136:e378:8000:63bf:80ff:fffe/128", ErrNeverListed}, // Teredo of 127.0.0.1
		{"185.1.0.0/16", ErrKey},
		{"2a01::/64", ErrKey},
	} {
		if _, _, err := s.Block(netip.MustParsePrefix(tc.p), at(0), at(time.Hour), ""); !errors.Is(err, tc.want) {
			t.Errorf("block %s: %v, want %v", tc.p, err, tc.want)
		}
	}
	if _, _, err := s.Block(netip.MustParsePrefix("2002:7f00:1::1/128"), at(0), at(time.Hour), ""); err == nil || !strings.Contains(err.Error(), "(non-global address: loopback, 6to4 form)") {
		t.Errorf("the refusal does not say why: %v", err)
	}
	if _, _, err := s.Block(key, at(time.Hour), at(time.Hour), ""); !errors.Is(err, ErrUntil) {
		t.Errorf("block ending now: %v", err)
	}
	if _, _, err := s.Block(netip.MustParsePrefix("::ffff:185.1.2.4/128"), at(5*time.Hour), at(6*time.Hour), ""); err != nil {
		t.Errorf("mapped key: %v", err)
	}
}

func TestBlockIPv6Aggregate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IPv6Prefix = 64
	s := New(cfg)
	for _, p := range []string{"2a01:4f8:1:2::/64", "2a01:4f8:1:2::99/128"} {
		c, _, err := s.Block(netip.MustParsePrefix(p), base, base.Add(time.Hour), "")
		if err != nil || (c.Key.IsValid() && c.Key != netip.MustParsePrefix("2a01:4f8:1:2::/64")) {
			t.Errorf("%s: %+v %v", p, c, err)
		}
	}
	if s.Len() != 1 {
		t.Errorf("Len %d", s.Len())
	}
	if _, _, err := s.Block(netip.MustParsePrefix("2a01:4f8:1:2::/48"), base, base.Add(time.Hour), ""); !errors.Is(err, ErrKey) {
		t.Errorf("/48: %v", err)
	}
}

func TestAllowListOverlap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IPv6Prefix = 64
	cfg.Allow = []netip.Prefix{netip.MustParsePrefix("2a01:4f8:1:2::53/128"), netip.MustParsePrefix("::ffff:193.0.0.0/104")}
	s := New(cfg)
	for _, a := range []string{"2a01:4f8:1:2::1", "193.1.2.3"} {
		for i := range 10 {
			s.Observe(&events.Event{Time: base.Add(time.Duration(i)).UnixNano(), Type: events.HaasLoggedActive, Addr: netip.MustParseAddr(a)})
		}
		if x, _ := s.Explain(netip.MustParseAddr(a), base); x.Listed || x.NeverListed != "allow-list" || x.Counts["haas_logged_active"] != 10 {
			t.Errorf("%s: %+v", a, x)
		}
	}
	if _, _, err := s.Block(netip.MustParsePrefix("193.0.0.1/32"), base, base.Add(time.Hour), ""); !errors.Is(err, ErrNeverListed) {
		t.Errorf("block of an allowed key: %v", err)
	}
}

func TestForget(t *testing.T) {
	m := newSim(t, DefaultConfig())
	m.observe(0, events.TelnetConnect, attacker, 1)
	m.observe(0, events.TelnetConnect, "185.1.1.1", 1)
	for i := range 5 {
		m.observe(time.Duration(i)*time.Second, events.TelnetLogin, "185.2.2.2", 1)
	}
	if k := m.s.Stats().Keys; k != 3 {
		t.Fatalf("%d keys", k)
	}
	m.to(47 * time.Hour)
	if k := m.s.Stats().Keys; k != 3 {
		t.Fatalf("%d keys before Forget", k)
	}
	m.to(48*time.Hour + time.Second)
	// The listed one is remembered for its offence.
	if st := m.s.Stats(); st.Keys != 1 || st.Forgotten != 2 || st.Listed != 0 {
		t.Fatalf("%+v", st)
	}
	if _, ok := m.s.Explain(netip.MustParseAddr(attacker), base.Add(48*time.Hour)); ok {
		t.Error("quiet key still explained")
	}
	if x, ok := m.s.Explain(netip.MustParseAddr("185.2.2.2"), base.Add(48*time.Hour)); !ok || x.Offences != 1 {
		t.Errorf("offender forgotten early: %+v", x)
	}
	// 30 days after its listing ended.
	m.to(32 * 24 * time.Hour)
	if st := m.s.Stats(); st.Keys != 0 {
		t.Errorf("%+v", st)
	}
}

func TestExplain(t *testing.T) {
	cfg := DefaultConfig()
	typ, err := events.Register("scoring_test_probe", "ssh")
	if err != nil {
		t.Fatal(err)
	}
	m := newSim(t, cfg)
	seq := []events.Type{events.TelnetConnect, events.FTPConnect, events.HTTPMessage, events.SMTPInvalid,
		events.FwlogsSmallPortScan, events.HaasNotLogged, typ, events.TelnetConnect, events.HTTPLogin, events.HTTPLogin, events.HTTPLogin}
	for i, e := range seq {
		m.observe(time.Duration(i)*time.Second, e, attacker, events.ProbeID(i%3+1))
	}
	for i := range 12 {
		m.observe(20*time.Second, events.TelnetConnect, attacker, events.ProbeID(10+i))
	}
	x := m.explain(attacker, time.Minute)
	if !x.Listed || !x.Since.Equal(base.Add(9*time.Second)) || !strings.Contains(x.Reason, "http_login") {
		t.Errorf("listing: %v since %v: %q", x.Listed, x.Since, x.Reason)
	}
	if want := []string{"ftp", "haas", "http", "port_scan", "smtp", "ssh", "telnet"}; !slices.Equal(x.Tags, want) {
		t.Errorf("tags %q", x.Tags)
	}
	wantCounts := map[string]uint64{"telnet_connect": 14, "ftp_connect": 1, "http_message": 1, "smtp_invalid": 1,
		"fwlogs_small_port_scan": 1, "haas_not_logged": 1, "scoring_test_probe": 1, "http_login": 3}
	if len(x.Counts) != len(wantCounts) {
		t.Errorf("counts %v", x.Counts)
	}
	for n, c := range wantCounts {
		if x.Counts[n] != c {
			t.Errorf("count of %s %d, want %d", n, x.Counts[n], c)
		}
	}
	if x.Probes != 8 || !x.ProbesAtLeast {
		t.Errorf("probes %d (at least %v)", x.Probes, x.ProbesAtLeast)
	}
	if !x.FirstSeen.Equal(base) || !x.LastSeen.Equal(base.Add(20*time.Second)) || x.Offences != 1 || len(x.History) != 1 {
		t.Errorf("%+v", x)
	}
	if x.EarliestEnd.Before(base.Add(6*time.Hour)) || x.Score < cfg.Entry {
		t.Errorf("earliest end %v, score %v", x.EarliestEnd, x.Score)
	}
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"key":"185.100.87.41/32"`, `"listed":true`, `"tags":["ftp",`, `"history":[{"start":"2025-03-01T00:00:09Z"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}

	var got []string
	for k, tags := range m.s.Listed {
		got = append(got, k.String()+" "+strings.Join(tags, ","))
	}
	if want := []string{"185.100.87.41/32 ftp,haas,http,port_scan,smtp,ssh,telnet"}; !slices.Equal(got, want) {
		t.Errorf("Listed: %q", got)
	}
	if _, ok := m.s.Explain(netip.MustParseAddr("8.8.8.8"), base); ok {
		t.Error("unknown key explained")
	}
}

func TestCheck(t *testing.T) {
	if err := DefaultConfig().Check(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Check(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	bad := Config{HalfLife: -1, Entry: 5, Exit: 6, Weights: map[string]float64{"x": -1}, IPv6Prefix: 129, ProbeCap: 2, History: -1,
		MinDuration: 2 * time.Hour, MaxDuration: time.Hour}
	err := bad.Check()
	for _, want := range []string{"half-life", "exit threshold 6 above", "weight of x", "ipv6 prefix", "probe cap", "history", "max-duration"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check: %v, want %q", err, want)
		}
	}
	s := New(bad)
	if c := s.Config(); c.HalfLife != 12*time.Hour || c.Exit != 2.5 || c.IPv6Prefix != 0 || c.ProbeCap != 1 || c.MaxDuration != 2*time.Hour {
		t.Errorf("normalised %+v", c)
	}
}

func TestNonGlobal(t *testing.T) {
	for a, want := range map[string]bool{
		"1.1.1.1": false, "100.63.255.255": false, "100.64.0.0": true, "100.127.255.255": true, "100.128.0.0": false,
		"172.15.255.255": false, "172.16.0.1": true, "172.31.255.255": true, "172.32.0.0": false, "198.18.0.1": true,
		"192.0.2.200": true, "223.255.255.255": false, "240.0.0.1": true, "2000::1": false, "2a00:1450::1": false,
		"3fff::1": true, "3ffe::1": false, "2001:db8:ffff::1": true, "2001:db9::1": false, "64:ff9b::1.2.3.4": true,
		"fc00::1": true, "fec0::1": true, "2001:2::1": true, "2001:3::1": false, "::ffff:0:1.2.3.4": true,
		// 6to4 and Teredo forms of non-global IPv4 addresses.
		"2002:7f00:1::1": true, "2002:a00:1::1": true, "2002:c000:201::1": true, "2002:808:808::1": false,
		"2001:0:4136:e378:8000:63bf:80ff:fffe": true, "2001:0:4136:e378:8000:63bf:f7f7:f7f7": false,
	} {
		k, _ := keyOf(netip.MustParseAddr(a), 128)
		if got := isNonGlobal(k, 128); got != want || nonGlobal.meets(k, 128) != want {
			t.Errorf("%s non-global %v, want %v", a, got, want)
		}
	}
	k, _ := keyOf(netip.MustParseAddr("2001::"), 16)
	if !isNonGlobal(k, 16) || !isNonGlobal(k, 8) {
		t.Error("2001::/16 holds documentation space")
	}
}
