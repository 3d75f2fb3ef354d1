package scoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
)

// op is one line of a journal: an event, or an administrator's action.
type op struct {
	at     time.Duration
	action int // 0 event, 1 block, 2 unblock, 3 clear
	ev     events.Event
	key    netip.Prefix
	until  time.Duration
}

// journalConfig makes a lot happen in a short journal: fast decay, short
// listings, quick forgetting, aggregation, a cap and an allow-list.
func journalConfig() Config {
	cfg := DefaultConfig()
	cfg.HalfLife = 20 * time.Minute
	cfg.MinDuration = 10 * time.Minute
	cfg.MaxDuration = 2 * time.Hour
	cfg.MaxAge = 3 * time.Hour
	cfg.OffenceMemory = 6 * time.Hour
	cfg.Forget = time.Hour
	cfg.IPv6Prefix = 64
	cfg.ProbeCap = 0.6
	cfg.History = 3
	cfg.Allow = []netip.Prefix{netip.MustParsePrefix("185.0.0.0/24")}
	return cfg
}

// journal is a reproducible day of events over a few hundred addresses,
// with some blocks, unblocks and clears among them.
func journal(seed uint64, n int) ([]op, []netip.Addr) {
	r := rand.New(rand.NewPCG(seed, 7))
	custom, err := events.Register("scoring_journal", "journal")
	if err != nil {
		panic(err)
	}
	var addrs []netip.Addr
	for i := range 300 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{185, byte(i / 100), byte(i % 100), byte(r.IntN(3))}))
	}
	for i := range 40 {
		addrs = append(addrs, netip.MustParseAddr(fmt.Sprintf("2a01:4f8:%x:1::%x", i%8, r.IntN(1000))))
	}
	addrs = append(addrs, netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("::ffff:185.1.1.1"), netip.MustParseAddr("fd00::1"))
	types := append(events.Builtin(), custom, events.FwlogsPacket)
	var ops []op
	var at time.Duration
	for range n {
		at += time.Duration(r.ExpFloat64() * float64(time.Second))
		a := addrs[min(int(r.ExpFloat64()*40), len(addrs)-1)] // a few busy addresses, many quiet ones
		o := op{at: at, ev: events.Event{Time: base.Add(at).UnixNano(), Type: types[r.IntN(len(types))], Addr: a,
			Probe: events.ProbeID(r.IntN(12)), Source: events.FromMQTT}}
		if r.IntN(50) == 0 {
			o.ev.Time -= int64(r.IntN(int(time.Minute))) // a little out of order
		}
		if r.IntN(500) == 0 {
			o.action = 1 + r.IntN(3)
			o.key = netip.PrefixFrom(a, a.BitLen())
			o.until = at + time.Duration(r.IntN(int(3*time.Hour)))
		}
		ops = append(ops, o)
	}
	return ops, addrs
}

// play applies ops to s, ticking every second before each, from the tick
// time *ticked on, and returns what came out as text.
func play(s *Scorer, ops []op, ticked *time.Duration) []string {
	var out []string
	emit := func(c Change) { out = append(out, fmt.Sprintf("%d %v %v %s", c.Time, c.Key, c.Listed, c.Reason)) }
	for _, o := range ops {
		for next := *ticked + time.Second; next <= o.at; next += time.Second {
			s.Tick(base.Add(next), emit)
			*ticked = next
		}
		now := base.Add(o.at)
		var (
			c   Change
			ok  bool
			err error
		)
		switch o.action {
		case 0:
			c, ok = s.Observe(&o.ev)
		case 1:
			c, ok, err = s.Block(o.key, now, base.Add(o.until), "journal")
		case 2:
			c, ok, err = s.Unblock(o.key, now, base.Add(o.until), "journal")
		case 3:
			c, ok, err = s.Clear(o.key, now)
		}
		if err != nil {
			out = append(out, "error "+err.Error())
		}
		if ok {
			emit(c)
		}
	}
	return out
}

func explainAll(s *Scorer, addrs []netip.Addr, now time.Time) string {
	var b bytes.Buffer
	for _, a := range addrs {
		if x, ok := s.Explain(a, now); ok {
			j, _ := json.Marshal(x)
			b.Write(j)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// TestReplay checks that the scorer is a function of its inputs: the same
// journal gives the same changes and the same snapshot, and a scorer
// restored from a snapshot half-way goes on exactly as the original.
func TestReplay(t *testing.T) {
	n := 60000
	if testing.Short() {
		n = 10000
	}
	ops, addrs := journal(42, n)
	cfg := journalConfig()
	end := ops[len(ops)-1].at + time.Second

	var ticked1, ticked2 time.Duration
	s1, s2 := New(cfg), New(cfg)
	out1, out2 := play(s1, ops, &ticked1), play(s2, ops, &ticked2)
	if !slices.Equal(out1, out2) {
		t.Fatal("two runs of one journal differ")
	}
	snap1 := s1.AppendSnapshot(nil)
	if !bytes.Equal(snap1, s2.AppendSnapshot(nil)) {
		t.Fatal("two runs of one journal give different snapshots")
	}
	var listed, unlisted, errs int
	for _, l := range out1 {
		switch {
		case bytes.Contains([]byte(l), []byte(" true ")):
			listed++
		case bytes.HasPrefix([]byte(l), []byte("error ")):
			errs++
		default:
			unlisted++
		}
	}
	st := s1.Stats()
	t.Logf("%d ops over %v: %d listings, %d ends, %d admin errors; %+v", len(ops), end, listed, unlisted, errs, st)
	if listed < 20 || unlisted < 20 || st.Forgotten < 20 {
		t.Fatalf("the journal exercises too little: %d listings, %d ends, %+v", listed, unlisted, st)
	}

	for _, cut := range []int{len(ops) / 3, len(ops) / 2, len(ops) - 1} {
		var ticked time.Duration
		a := New(cfg)
		head := play(a, ops[:cut], &ticked)
		b, err := Restore(cfg, a.AppendSnapshot(nil))
		if err != nil {
			t.Fatal(err)
		}
		tail := play(b, ops[cut:], &ticked)
		if got := append(head, tail...); !slices.Equal(got, out1) {
			for i := range min(len(got), len(out1)) {
				if got[i] != out1[i] {
					t.Fatalf("cut at %d: output %d differs:\n%s\nwant\n%s", cut, i, got[i], out1[i])
				}
			}
			t.Fatalf("cut at %d: %d outputs, want %d", cut, len(got), len(out1))
		}
		if !bytes.Equal(b.AppendSnapshot(nil), snap1) {
			t.Fatalf("cut at %d: final snapshot differs", cut)
		}
		if explainAll(b, addrs, base.Add(end)) != explainAll(s1, addrs, base.Add(end)) {
			t.Fatalf("cut at %d: explanations differ", cut)
		}
	}
}
