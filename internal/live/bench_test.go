package live

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/zmtp"
)

// benchChunk is how many messages are published before waiting for them:
// well under the transport's queues, so none is dropped.
const benchChunk = 250

// BenchmarkFollowDeltas: deltas from a publisher (NULL security) through
// Follow into the hub, per delta; no browser is connected.
func BenchmarkFollowDeltas(b *testing.B) {
	pub, ep := benchPub(b)
	h := New(Options{Logger: quiet, Countries: testCC})
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Follow(ctx, FollowConfig{Endpoint: ep}) }()
	defer func() { cancel(); <-done }()
	serial := func() uint64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.status.Serial
	}
	send := func(m dynfw.Message) {
		pub.Send(context.Background(), zmtp.Message{[]byte(m.Topic()), m.AppendMsgpack(nil)})
	}
	list := &dynfw.List{Version: 1, Serial: 1, Addrs: []netip.Prefix{pfx("11.0.0.1")}}
	for serial() != 1 {
		send(list)
		time.Sleep(10 * time.Millisecond)
	}
	b.ResetTimer()
	next := uint64(1)
	for sent := 0; sent < b.N; {
		n := min(benchChunk, b.N-sent)
		for range n {
			next++
			op := dynfw.Positive
			if next%2 == 0 {
				op = dynfw.Negative
			}
			a := netip.AddrFrom4([4]byte{45, byte(next >> 16), byte(next >> 8), byte(next)})
			send(&dynfw.Delta{Serial: next, Op: op, Addr: netip.PrefixFrom(a, 32), TS: 1})
		}
		sent += n
		benchWait(b, func() bool { return serial() >= next })
	}
}

// BenchmarkFollowEvents: dynfw/event messages through Follow into the hub,
// per event.
func BenchmarkFollowEvents(b *testing.B) {
	pub, ep := benchPub(b)
	h := New(Options{Logger: quiet, Countries: testCC})
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Follow(ctx, FollowConfig{Endpoint: ep}) }()
	defer func() { cancel(); <-done }()
	total := func() int64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.counts.Total
	}
	ev := (&dynfw.Event{Name: "telnet_login", Addr: netip.MustParseAddr("8.8.8.8"), TS: 1}).AppendMsgpack(nil)
	send := func() { pub.Send(context.Background(), zmtp.Message{[]byte(dynfw.TopicEvent), ev}) }
	for total() == 0 {
		send()
		time.Sleep(10 * time.Millisecond)
	}
	have := total()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		n := min(benchChunk, b.N-sent)
		for range n {
			send()
		}
		sent += n
		want := have + int64(sent)
		benchWait(b, func() bool { return total() >= want })
	}
}

func benchPub(b *testing.B) (*zmtp.Socket, string) {
	sock, err := zmtp.NewSocket(zmtp.PUB, zmtp.Options{})
	if err != nil {
		b.Fatal(err)
	}
	addr, err := sock.Listen("tcp://127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sock.Close() })
	return sock, "tcp://" + addr.String()
}

func benchWait(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(50 * time.Microsecond)
	}
}
