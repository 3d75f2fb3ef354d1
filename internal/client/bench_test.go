package client

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/firewall/fwtest"
	"github.com/dynfw/sentinel/internal/policy"
	"github.com/dynfw/sentinel/zmtp"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

// benchChunk is how many deltas are published before waiting for them: well
// under the transport's queues (1000 messages), so none is dropped.
const benchChunk = 250

// BenchmarkSyncerDeltas: deltas from a CURVE publisher through the whole
// subscriber (receive, decode, serial rules, policy, a memory backend), per
// delta. The time is until the last delta of each chunk has been taken in.
func BenchmarkSyncerDeltas(b *testing.B) {
	cert, err := zcert.New()
	if err != nil {
		b.Fatal(err)
	}
	pub, err := zmtp.NewSocket(zmtp.PUB, zmtp.Options{Curve: &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret}})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	addr, err := pub.Listen("tcp://127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr.String())
	p, _ := strconv.Atoi(port)
	logger := slog.New(slog.DiscardHandler)
	conn, err := Dial(Config{Server: "127.0.0.1", Port: p, ServerKey: cert.Public, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.WaitConnected(ctx, false); err != nil {
		b.Fatal(err)
	}
	s := NewSyncer(SyncConfig{BatchInterval: 5 * time.Millisecond, Logger: logger}, conn, policy.New(policy.Config{}), fwtest.NewMemory())
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	defer func() { rcancel(); <-done }()
	st := s.Stats()
	send := func(m dynfw.Message) {
		pub.Send(context.Background(), zmtp.Message{[]byte(m.Topic()), m.AppendMsgpack(nil)})
	}
	wait := func(cond func() bool) {
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				b.Fatalf("timed out (serial %d)", st.Serial.Load())
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	list := &dynfw.List{Version: 1, Serial: 0, Addrs: []netip.Prefix{netip.MustParsePrefix("11.0.0.1/32")}}
	for st.ListsApplied.Load() == 0 {
		send(list)
		time.Sleep(10 * time.Millisecond)
	}
	b.ResetTimer()
	var serial uint64
	for sent := 0; sent < b.N; {
		n := min(benchChunk, b.N-sent)
		for range n {
			serial++
			op := dynfw.Positive
			if serial%2 == 0 {
				op = dynfw.Negative
			}
			a := netip.AddrFrom4([4]byte{45, byte(serial >> 16), byte(serial >> 8), byte(serial)})
			send(&dynfw.Delta{Serial: serial, Op: op, Addr: netip.PrefixFrom(a, 32), TS: 1})
		}
		sent += n
		target := serial
		wait(func() bool { return st.Serial.Load() >= target })
	}
	b.StopTimer()
	if n := st.Resyncs["serial gap"].Load(); n != 0 {
		b.Fatalf("%d resyncs: deltas were lost", n)
	}
}
