package subscription

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
)

// recorder is an Effects that writes every call as a short line.
type recorder struct {
	log     []string
	failApp bool
}

func (r *recorder) Subscribe(t string)   { r.log = append(r.log, "sub "+t) }
func (r *recorder) Unsubscribe(t string) { r.log = append(r.log, "unsub "+t) }
func (r *recorder) ApplyList(l *dynfw.List) error {
	if r.failApp {
		r.log = append(r.log, fmt.Sprintf("list v%d s%d failed", l.Version, l.Serial))
		return errors.New("backend failed")
	}
	r.log = append(r.log, fmt.Sprintf("list v%d s%d", l.Version, l.Serial))
	return nil
}
func (r *recorder) ApplyDelta(d dynfw.Delta, ok bool) {
	s := fmt.Sprintf("delta %d", d.Serial)
	if !ok {
		s += " (bad address)"
	}
	r.log = append(r.log, s)
}
func (r *recorder) Note(what, detail string) {
	if detail != "" {
		what += ": " + detail
	}
	r.log = append(r.log, "note "+what)
}

func (r *recorder) take() string {
	s := strings.Join(r.log, "; ")
	r.log = nil
	return s
}

var t0 = time.Unix(1700000000, 0)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func delta(serial uint64) dynfw.Delta {
	return dynfw.Delta{Serial: serial, Op: dynfw.Positive, Addr: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(serial >> 8), byte(serial)}), 32)}
}

func list(version, serial uint64) *dynfw.List { return &dynfw.List{Version: version, Serial: serial} }

// step is one input of a scripted sequence and the effects it must cause.
type step struct {
	ms    int
	do    string // "start", "list V S", "delta S", "bad S", "dup-other S", "tick", "reconnect", "fail", "ok"
	v, s  uint64
	want  string
	phase Phase
}

func run(t *testing.T, cfg MachineConfig, steps []step) {
	t.Helper()
	r := &recorder{}
	m := NewMachine(cfg, r)
	for i, st := range steps {
		now := at(st.ms)
		switch st.do {
		case "start":
			m.Start(now)
		case "list":
			m.OnList(now, list(st.v, st.s))
		case "delta":
			m.OnDelta(now, delta(st.s), true)
		case "bad":
			m.OnDelta(now, delta(st.s), false)
		case "other": // same serial, other address
			d := delta(st.s)
			d.Op = dynfw.Negative
			m.OnDelta(now, d, true)
		case "tick":
			m.Tick(now)
		case "reconnect":
			m.Reconnected(now)
		case "fail":
			r.failApp = true
		case "ok":
			r.failApp = false
		}
		if got := r.take(); got != st.want {
			t.Fatalf("step %d (%s %d at %dms): got  %q\nwant %q", i, st.do, st.s, st.ms, got, st.want)
		}
		if m.Phase() != st.phase {
			t.Fatalf("step %d: phase %v, want %v", i, m.Phase(), st.phase)
		}
	}
}

func TestMachineStartBuffersDeltasUntilList(t *testing.T) {
	run(t, MachineConfig{}, []step{
		{do: "start", want: "sub dynfw/delta; sub dynfw/list", phase: Resyncing},
		{do: "delta", s: 9, phase: Resyncing},
		{do: "delta", s: 11, phase: Resyncing},
		{do: "delta", s: 10, phase: Resyncing},
		{do: "delta", s: 12, phase: Resyncing},
		// The list already contains 9 and 10; 11 and 12 follow, in order.
		{do: "list", v: 1, s: 10, want: "list v1 s10; unsub dynfw/list; delta 11; delta 12", phase: Synced},
		{do: "delta", s: 13, want: "delta 13", phase: Synced},
	})
}

func TestMachineSerialRules(t *testing.T) {
	run(t, MachineConfig{Window: 5, HoldTimeout: time.Second}, []step{
		{do: "start", want: "sub dynfw/delta; sub dynfw/list", phase: Resyncing},
		{do: "list", v: 1, s: 100, want: "list v1 s100; unsub dynfw/list", phase: Synced},
		{do: "delta", s: 101, want: "delta 101", phase: Synced},
		{do: "delta", s: 101, want: "note duplicate", phase: Synced},
		{do: "delta", s: 103, want: "note out-of-order", phase: Synced},
		{do: "delta", s: 104, want: "note out-of-order", phase: Synced},
		{do: "delta", s: 103, want: "note duplicate", phase: Synced},
		{do: "delta", s: 102, want: "delta 102; delta 103; delta 104", phase: Synced},
		{do: "bad", s: 105, want: "delta 105 (bad address)", phase: Synced},
		{do: "delta", s: 106, want: "delta 106", phase: Synced},
		// Held, and the gap does not fill in time.
		{ms: 100, do: "delta", s: 108, want: "note out-of-order", phase: Synced},
		{ms: 900, do: "tick", phase: Synced},
		{ms: 1200, do: "tick", want: "note resync: gap not filled in time; sub dynfw/list", phase: Resyncing},
		{ms: 1300, do: "delta", s: 109, phase: Resyncing},
		{ms: 1400, do: "list", v: 1, s: 108, want: "list v1 s108; unsub dynfw/list; delta 109", phase: Synced},
		// A gap beyond the window.
		{ms: 1500, do: "delta", s: 200, want: "note resync: serial gap; sub dynfw/list", phase: Resyncing},
		{ms: 1600, do: "list", v: 1, s: 200, want: "list v1 s200; unsub dynfw/list", phase: Synced},
		// Two different deltas claim one serial.
		{ms: 1700, do: "delta", s: 202, want: "note out-of-order", phase: Synced},
		{ms: 1800, do: "other", s: 202, want: "note resync: two different deltas with one serial; sub dynfw/list", phase: Resyncing},
	})
}

func TestMachineServerReset(t *testing.T) {
	run(t, MachineConfig{HoldTimeout: time.Second}, []step{
		{do: "start", want: "sub dynfw/delta; sub dynfw/list", phase: Resyncing},
		{do: "list", v: 1, s: 500, want: "list v1 s500; unsub dynfw/list", phase: Synced},
		{do: "delta", s: 501, want: "delta 501", phase: Synced},
		// The server restarted: serials begin again, with other content.
		{ms: 5000, do: "delta", s: 1, want: "note resync: serial went back; sub dynfw/list", phase: Resyncing},
		{ms: 5100, do: "delta", s: 2, phase: Resyncing},
		{ms: 6000, do: "list", v: 2, s: 1, want: "list v2 s1; unsub dynfw/list; delta 2", phase: Synced},
	})
}

func TestMachineLowerSerialAfterListIsAReset(t *testing.T) {
	// One connection delivers in order, so a delta older than the list just
	// applied is not a straggler: the server has restarted its numbering.
	run(t, MachineConfig{HoldTimeout: time.Second}, []step{
		{do: "start", want: "sub dynfw/delta; sub dynfw/list", phase: Resyncing},
		{do: "list", v: 1, s: 50, want: "list v1 s50; unsub dynfw/list", phase: Synced},
		{ms: 10, do: "delta", s: 1, want: "note resync: serial went back; sub dynfw/list", phase: Resyncing},
	})
}

func TestMachineVerifyAfterReconnect(t *testing.T) {
	run(t, MachineConfig{}, []step{
		{do: "start", want: "sub dynfw/delta; sub dynfw/list", phase: Resyncing},
		{do: "list", v: 7, s: 10, want: "list v7 s10; unsub dynfw/list", phase: Synced},
		{do: "reconnect", want: "sub dynfw/list", phase: Verifying},
		// Deltas keep flowing while verifying.
		{do: "delta", s: 11, want: "delta 11", phase: Verifying},
		{do: "delta", s: 12, want: "delta 12", phase: Verifying},
		// A list generated before delta 12: our state is newer.
		{do: "list", v: 7, s: 11, want: "note stale-list: list older than the applied deltas", phase: Verifying},
		{do: "list", v: 7, s: 12, want: "list v7 s12; note verified; unsub dynfw/list", phase: Synced},
		// Missed deltas while disconnected: the list catches up.
		{do: "reconnect", want: "sub dynfw/list", phase: Verifying},
		{do: "list", v: 7, s: 20, want: "list v7 s20; note resync: catching up; unsub dynfw/list", phase: Synced},
		{do: "delta", s: 21, want: "delta 21", phase: Synced},
		// A new version seen while verifying replaces the state.
		{do: "reconnect", want: "sub dynfw/list", phase: Verifying},
		{do: "list", v: 8, s: 3, want: "list v8 s3; note resync: new version; unsub dynfw/list", phase: Synced},
		{do: "delta", s: 4, want: "delta 4", phase: Synced},
	})
}

func TestMachineApplyFailureStaysResyncing(t *testing.T) {
	run(t, MachineConfig{}, []step{
		{do: "start", want: "sub dynfw/delta; sub dynfw/list", phase: Resyncing},
		{do: "fail", phase: Resyncing},
		{do: "delta", s: 5, phase: Resyncing},
		{do: "list", v: 1, s: 4, want: "list v1 s4 failed", phase: Resyncing},
		{do: "ok", phase: Resyncing},
		{do: "delta", s: 6, phase: Resyncing},
		{do: "list", v: 1, s: 5, want: "list v1 s5; unsub dynfw/list; delta 6", phase: Synced},
	})
}

func TestMachineTimeouts(t *testing.T) {
	run(t, MachineConfig{ListTimeout: 30 * time.Second, VerifyInterval: time.Hour}, []step{
		{do: "start", want: "sub dynfw/delta; sub dynfw/list", phase: Resyncing},
		{ms: 31_000, do: "tick", want: "note no-list: no dynfw/list received; subscribing again; unsub dynfw/list; sub dynfw/list", phase: Resyncing},
		{ms: 32_000, do: "list", v: 1, s: 1, want: "list v1 s1; unsub dynfw/list", phase: Synced},
		{ms: 3_000_000, do: "tick", phase: Synced},
		{ms: 3_700_000, do: "tick", want: "sub dynfw/list", phase: Verifying},
		{ms: 3_740_000, do: "tick", want: "note no-list: no dynfw/list to verify against; unsub dynfw/list", phase: Synced},
	})
}

func TestMachineBufferIsBounded(t *testing.T) {
	r := &recorder{}
	m := NewMachine(MachineConfig{MaxBuffer: 10}, r)
	m.Start(t0)
	for s := uint64(1); s <= 100; s++ {
		m.OnDelta(t0, delta(s), true)
	}
	if len(m.buffer) != 10 {
		t.Fatalf("buffer holds %d", len(m.buffer))
	}
	r.take()
	m.OnList(t0, list(1, 90))
	if got := r.take(); got != "list v1 s90; unsub dynfw/list; delta 91; delta 92; delta 93; delta 94; delta 95; delta 96; delta 97; delta 98; delta 99; delta 100" {
		t.Fatalf("got %q", got)
	}
}
