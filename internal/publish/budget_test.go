package publish

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/testenv"
	"github.com/dynfw/sentinel/zmtp"
)

// bigState is a list large enough that a few of them fill socket buffers.
func bigState(n int) State {
	st := State{Version: 1}
	for i := 0; i < n; i++ {
		st.List = append(st.List, netip.PrefixFrom(netip.AddrFrom4([4]byte{20, byte(i >> 16), byte(i >> 8), byte(i)}), 32))
	}
	return st
}

func TestDefaultBudgets(t *testing.T) {
	var cfg Config
	cfg.setDefaults()
	if cfg.WriteTimeout != DefaultWriteTimeout || cfg.MaxSubscribers != DefaultMaxSubscribers || cfg.MaxHandshakes != DefaultMaxHandshakes {
		t.Fatalf("defaults %+v", cfg)
	}
	cfg = Config{WriteTimeout: -1, MaxSubscribers: -1, MaxHandshakes: -1}
	cfg.setDefaults()
	if positive(cfg.WriteTimeout) != 0 || positive(cfg.MaxSubscribers) != 0 || positive(cfg.MaxHandshakes) != 0 {
		t.Fatalf("negative must disable: %+v", cfg)
	}
}

// A subscriber that stops reading but keeps sending PINGs (a zero TCP
// window) is cut off after the write timeout, counted and logged with its
// reason.
func TestStalledSubscriberIsCutOff(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(b)
	}), nil))
	p := newTestPublisherWith(t, Config{ListInterval: 10 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, Logger: log}, bigState(20_000))
	px := testenv.NewStallProxy(t, p.Addrs()[0].String())
	sub, err := zmtp.NewSocket(zmtp.SUB, zmtp.Options{Curve: &zmtp.CurveOptions{ServerKey: serverKeys[p]},
		HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sub.Subscribe("dynfw/")
	sub.Dial(px.Addr())
	recv(t, sub) // connected and subscribed
	px.Pause()
	deadline := time.Now().Add(30 * time.Second)
	for p.Socket().Stats().DisconnectReasons[zmtp.ReasonWriteTimeout] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled subscriber is still connected: %+v", p.Socket().Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := p.Socket().Stats()
	if st.Peers != 0 || st.DisconnectReasons[zmtp.ReasonHeartbeatTimeout] != 0 {
		t.Fatalf("stats %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "reason=write_timeout") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// A subscriber that lost deltas gets no delta after the gap before the next
// list, and converges on it: every delta it receives follows the serial of
// the delta or list before it.
func TestLaggingSubscriberSkipsToNextList(t *testing.T) {
	p := newTestPublisherWith(t, Config{ListInterval: 20 * time.Millisecond, SendQueueLen: 8}, bigState(20_000))
	px := testenv.NewStallProxy(t, p.Addrs()[0].String())
	sub, err := zmtp.NewSocket(zmtp.SUB, zmtp.Options{Curve: &zmtp.CurveOptions{ServerKey: serverKeys[p]}, RecvQueueLen: 1 << 20, RecvQueueBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sub.Subscribe("dynfw/list")
	sub.Subscribe("dynfw/delta")
	sub.Dial(px.Addr())

	state := map[netip.Prefix]bool{}
	var serial uint64
	haveBase := false
	deltas, lists := 0, 0
	// apply checks and applies one message; it reports the serial of a
	// list.
	apply := func(topic string, payload []byte) (uint64, bool) {
		switch topic {
		case dynfw.TopicDelta:
			d, err := dynfw.DecodeDelta(payload, dynfw.DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !haveBase {
				return 0, false
			}
			if d.Serial != serial+1 {
				t.Fatalf("delta %d after serial %d: a stale delta after a gap (%d deltas, %d lists so far)", d.Serial, serial, deltas, lists)
			}
			serial = d.Serial
			deltas++
			if d.Op == dynfw.Positive {
				state[d.Addr] = true
			} else {
				delete(state, d.Addr)
			}
		case dynfw.TopicList:
			l, err := dynfw.DecodeList(payload, dynfw.DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if haveBase && l.Serial < serial {
				t.Fatalf("list at serial %d after serial %d", l.Serial, serial)
			}
			haveBase, serial = true, l.Serial
			lists++
			clear(state)
			for _, a := range l.Addrs {
				state[a] = true
			}
			return l.Serial, true
		}
		return 0, false
	}
	for !haveBase {
		apply(recv(t, sub))
	}

	px.Pause()
	i := 0
	delta := func() {
		a := netip.AddrFrom4([4]byte{30, 0, byte(i >> 8), byte(i)})
		p.Delta(i%3 != 0, netip.PrefixFrom(a, 32), time.Now())
		i++
	}
	for p.Socket().Stats().Skipped < 1000 {
		if i > 1_000_000 {
			t.Fatalf("the paused subscriber never lagged: %+v", p.Socket().Stats())
		}
		delta()
		if i%1000 == 0 {
			p.Sync(context.Background())
		}
	}
	px.Resume()
	for j := 0; j < 500; j++ {
		delta()
	}
	p.Sync(context.Background())
	final := p.State()
	for {
		topic, payload := recv(t, sub)
		if s, isList := apply(topic, payload); (isList && s >= final.Serial) || (!isList && serial == final.Serial) {
			break
		}
	}
	if len(state) != len(final.List) {
		t.Fatalf("converged on %d addresses, the publisher has %d", len(state), len(final.List))
	}
	for _, a := range final.List {
		if !state[a] {
			t.Fatalf("%v missing after converging", a)
		}
	}
	st := p.Socket().Stats()
	if st.Lagged == 0 || st.Skipped == 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("%d deltas and %d lists received; publisher %d lagged, %d skipped, %d replaced", deltas, lists, st.Lagged, st.Skipped, st.Replaced)
}
