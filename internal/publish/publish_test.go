package publish

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/zmtp"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

var serverKeys = map[*Publisher]zcert.Key{}

func newTestPublisher(t *testing.T, st State, interval time.Duration) *Publisher {
	t.Helper()
	return newTestPublisherWith(t, Config{ListInterval: interval}, st)
}

// newTestPublisherWith runs a CURVE publisher on a loopback port with cfg.
func newTestPublisherWith(t *testing.T, cfg Config, st State) *Publisher {
	t.Helper()
	cert, _ := zcert.New()
	cfg.Listen = []string{"tcp://127.0.0.1:0"}
	cfg.Curve = &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret}
	p, err := New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	serverKeys[p] = cert.Public
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; p.Close() })
	return p
}

func subscriberOf(t *testing.T, p *Publisher, topics ...string) *zmtp.Socket {
	t.Helper()
	sub, err := zmtp.NewSocket(zmtp.SUB, zmtp.Options{Curve: &zmtp.CurveOptions{ServerKey: serverKeys[p]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	for _, tp := range topics {
		sub.Subscribe(tp)
	}
	sub.Dial("tcp://" + p.Addrs()[0].String())
	deadline := time.Now().Add(5 * time.Second)
	for {
		ps := p.Socket().Peers()
		if len(ps) > 0 && len(ps[len(ps)-1].Subscriptions) == len(topics) {
			return sub
		}
		if time.Now().After(deadline) {
			t.Fatal("subscriber not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func recv(t *testing.T, s *zmtp.Socket) (string, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := s.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(m[0]), m[1]
}

func pfx(s string) netip.Prefix { p, _ := dynfw.ParseAddr(s, true); return p }

func TestListsDeltasAndEvents(t *testing.T) {
	p := newTestPublisher(t, State{Version: 7, Serial: 41, List: []netip.Prefix{pfx("1.1.1.1")}}, 50*time.Millisecond)
	sub := subscriberOf(t, p, "dynfw/")
	// The first list after subscribing holds the restored state.
	for {
		topic, payload := recv(t, sub)
		if topic != dynfw.TopicList {
			continue
		}
		l, err := dynfw.DecodeList(payload, dynfw.DecodeOptions{})
		if err != nil || l.Version != 7 || l.Serial != 41 || len(l.Addrs) != 1 {
			t.Fatalf("list %+v %v", l, err)
		}
		break
	}
	now := time.Unix(1700000000, 0)
	p.Delta(true, pfx("2.2.2.2"), now)
	p.Delta(true, pfx("2.2.2.2"), now) // already listed: no delta, no serial
	p.Delta(false, pfx("1.1.1.1"), now)
	p.Event(events.TelnetLogin, netip.MustParseAddr("3.3.3.3"), now)
	var got []string
	for len(got) < 3 {
		topic, payload := recv(t, sub)
		switch topic {
		case dynfw.TopicDelta:
			d, _ := dynfw.DecodeDelta(payload, dynfw.DecodeOptions{})
			got = append(got, d.Op.String()+" "+dynfw.FormatAddr(d.Addr)+" "+itoa(d.Serial))
		case dynfw.TopicEvent:
			e, _ := dynfw.DecodeEvent(payload, dynfw.DecodeOptions{})
			got = append(got, e.Name+" "+e.Addr.String())
		}
	}
	want := "positive 2.2.2.2 42|negative 1.1.1.1 43|telnet_login 3.3.3.3"
	if strings.Join(sortedFirstTwo(got), "|") != want {
		t.Fatalf("got %v", got)
	}
	if st := p.State(); st.Serial != 43 || len(st.List) != 1 || st.List[0] != pfx("2.2.2.2") {
		t.Fatalf("state %+v", st)
	}
}

// sortedFirstTwo keeps deltas in their order and puts the event last, since
// events do not go through the delta queue.
func sortedFirstTwo(got []string) []string {
	var deltas, evs []string
	for _, g := range got {
		if strings.HasPrefix(g, "positive") || strings.HasPrefix(g, "negative") {
			deltas = append(deltas, g)
		} else {
			evs = append(evs, g)
		}
	}
	return append(deltas, evs...)
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// TestListMatchesItsSerial: while deltas pour in, every list equals the
// state obtained by applying the deltas up to its serial.
func TestListMatchesItsSerial(t *testing.T) {
	p := newTestPublisher(t, State{Version: 1}, 5*time.Millisecond)
	sub := subscriberOf(t, p, "dynfw/")
	go func() {
		for i := 0; i < 3000; i++ {
			a := netip.AddrFrom4([4]byte{10, 0, byte(i % 50), 1})
			p.Delta(i%3 != 0, netip.PrefixFrom(a, 32), time.Now())
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	state := map[netip.Prefix]bool{}
	serial := uint64(0)
	haveBase := false
	checked, skips := 0, 0
	for checked < 20 {
		topic, payload := recv(t, sub)
		switch topic {
		case dynfw.TopicDelta:
			d, _ := dynfw.DecodeDelta(payload, dynfw.DecodeOptions{})
			if haveBase {
				if d.Serial != serial+1 {
					t.Fatalf("serial %d after %d", d.Serial, serial)
				}
				state[d.Addr] = d.Op == dynfw.Positive
				if !state[d.Addr] {
					delete(state, d.Addr)
				}
			}
			serial = d.Serial
		case dynfw.TopicList:
			l, _ := dynfw.DecodeList(payload, dynfw.DecodeOptions{})
			if !haveBase {
				haveBase, serial = true, l.Serial
				for _, a := range l.Addrs {
					state[a] = true
				}
				continue
			}
			if l.Serial > serial && skips < 100 {
				// This subscriber fell behind (a loaded machine) and lost
				// deltas: by design it gets no delta after the gap, but
				// the next list in their place. Start again from it.
				skips++
				clear(state)
				for _, a := range l.Addrs {
					state[a] = true
				}
				serial = l.Serial
				continue
			}
			if l.Serial != serial || len(l.Addrs) != len(state) {
				t.Fatalf("list at serial %d has %d addresses; deltas up to %d give %d", l.Serial, len(l.Addrs), serial, len(state))
			}
			for _, a := range l.Addrs {
				if !state[a] {
					t.Fatalf("list at serial %d holds %v, the deltas do not", l.Serial, a)
				}
			}
			checked++
		}
	}
}

// TestPublishedFollowsLists: Published is the list of the last dynfw/list,
// sorted, built by merging the changes into the previous one; a published
// list is never modified afterwards.
func TestPublishedFollowsLists(t *testing.T) {
	var st State
	for i := range 1000 {
		st.List = append(st.List, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32))
	}
	st.Version, st.Serial = 3, 9
	cert, _ := zcert.New()
	p, err := New(Config{Listen: []string{"tcp://127.0.0.1:0"}, Curve: &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret}}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	first := p.Published()
	if first.Version != 3 || first.Serial != 9 || len(first.List) != 1000 || !slices.IsSortedFunc(first.List, ComparePrefix) {
		t.Fatalf("restored: %d %d %d", first.Version, first.Serial, len(first.List))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	type kept struct {
		pub  *Published
		copy []netip.Prefix
	}
	var old []kept
	for round := range 50 {
		// A few changes per round, sometimes many (the full sort).
		n := 1 + rng.IntN(20)
		if round%10 == 9 {
			n = 600
		}
		for range n {
			k := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(8)), byte(rng.IntN(256))}), 32)
			if rng.IntN(5) == 0 {
				k = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.IntN(256))}), 128)
			}
			p.apply(op{add: rng.IntN(2) == 0, key: k, ts: 1})
		}
		p.sendList()
		pub := p.Published()
		want := p.State()
		if pub.Serial != want.Serial || !slices.Equal(pub.List, want.List) {
			t.Fatalf("round %d: published serial %d with %d entries, want serial %d with %d", round, pub.Serial, len(pub.List), want.Serial, len(want.List))
		}
		old = append(old, kept{pub, slices.Clone(pub.List)})
	}
	for i, o := range old {
		if !slices.Equal(o.pub.List, o.copy) {
			t.Fatalf("the list published in round %d changed afterwards", i)
		}
	}
}
