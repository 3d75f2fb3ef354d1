package zmtp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"

	"github.com/dynfw/sentinel/internal/testenv"
)

// benchPair connects a PUB and a SUB with unlimited queues, so that a
// throughput benchmark measures the transport and not drops. The PUB has a
// write timeout, as the DynFW publisher does.
func benchPair(b *testing.B, curve bool) (*Socket, *Socket) {
	po := Options{SendQueueLen: 1 << 30, SendQueueBytes: 1 << 40, WriteTimeout: time.Minute}
	so := Options{RecvQueueLen: 1 << 30, RecvQueueBytes: 1 << 40}
	if curve {
		spub, ssec := keyPair(b)
		po.Curve = &CurveOptions{Server: true, SecretKey: ssec}
		so.Curve = &CurveOptions{ServerKey: spub}
	}
	pub := mustSocket(b, PUB, po)
	ep := listenLocal(b, pub)
	sub := mustSocket(b, SUB, so)
	sub.Subscribe("dynfw/")
	sub.Dial(ep)
	warm(b, pub, sub)
	return pub, sub
}

// warm waits until a subscription has reached the publisher and drains the
// probes.
func warm(b testing.TB, pub *Socket, subs ...*Socket) {
	probe := Message{[]byte("dynfw/warm"), []byte("w")}
	for _, s := range subs {
		for {
			pub.Send(context.Background(), probe)
			if _, err := recvTimeout(b, s, 20*time.Millisecond); err == nil {
				break
			}
		}
	}
	time.Sleep(20 * time.Millisecond)
	for _, s := range subs {
		for {
			if _, err := recvTimeout(b, s, 5*time.Millisecond); err != nil {
				break
			}
		}
	}
}

func deltaMessage() Message {
	d := dynfw.Delta{Serial: 123456, Op: dynfw.Positive, Addr: netip.MustParsePrefix("203.0.113.77/32"), TS: 1763800000}
	return Message{[]byte(dynfw.TopicDelta), d.Marshal()}
}

func listMessage(n int) Message {
	l := dynfw.List{Version: 1763800000, Serial: 1, TS: 1763800000}
	l.Addrs = make([]netip.Prefix, n)
	for i := range l.Addrs {
		a := [4]byte{byte(1 + i>>24), byte(i >> 16), byte(i >> 8), byte(i)}
		l.Addrs[i] = netip.PrefixFrom(netip.AddrFrom4(a), 32)
	}
	return Message{[]byte(dynfw.TopicList), l.Marshal()}
}

// BenchmarkPubSubThroughput sends b.N deltas (a 61-byte msgpack payload)
// from a PUB to a SUB over loopback TCP and reports messages per second.
func BenchmarkPubSubThroughput(b *testing.B) {
	for _, mode := range secModes {
		b.Run(mode.name, func(b *testing.B) {
			pub, sub := benchPair(b, mode.curve)
			m := deltaMessage()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			done := make(chan struct{})
			go func() {
				for i := 0; i < b.N; i++ {
					if _, err := sub.Recv(context.Background()); err != nil {
						b.Error(err)
						break
					}
				}
				close(done)
			}()
			for i := 0; i < b.N; i++ {
				pub.Send(context.Background(), m)
			}
			<-done
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkListLatency measures one dynfw/list of 1M IPv4 addresses (about
// 14 MB) from Send to a complete Recv.
func BenchmarkListLatency(b *testing.B) {
	m := listMessage(1_000_000)
	for _, mode := range secModes {
		b.Run(mode.name, func(b *testing.B) {
			pub, sub := benchPair(b, mode.curve)
			b.SetBytes(int64(m.Size()))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pub.Send(context.Background(), m)
				if _, err := sub.Recv(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFanout1000 publishes one delta to 1,000 CURVE subscribers and
// waits until every one has received it.
func BenchmarkFanout1000(b *testing.B) {
	const n = 1000
	spub, ssec := keyPair(b)
	pub := mustSocket(b, PUB, Options{Curve: &CurveOptions{Server: true, SecretKey: ssec}, WriteTimeout: time.Minute})
	ep := listenLocal(b, pub)
	subs := make([]*Socket, n)
	for i := range subs {
		subs[i] = mustSocket(b, SUB, Options{Curve: &CurveOptions{ServerKey: spub}})
		subs[i].Subscribe("dynfw/delta")
		subs[i].Dial(ep)
	}
	for pub.Stats().Peers < n {
		time.Sleep(10 * time.Millisecond)
	}
	for {
		ready := 0
		for _, p := range pub.Peers() {
			if len(p.Subscriptions) > 0 {
				ready++
			}
		}
		if ready == n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := deltaMessage()
	var wg sync.WaitGroup
	var round atomic.Int64
	start := make([]chan struct{}, n)
	for i, s := range subs {
		start[i] = make(chan struct{}, 1)
		go func() {
			for {
				if _, err := s.Recv(context.Background()); err != nil {
					return
				}
				round.Add(1)
				wg.Done()
			}
		}()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		wg.Add(n)
		pub.Send(context.Background(), m)
		wg.Wait()
	}
	b.StopTimer()
	if got := round.Load(); got != int64(b.N*n) {
		b.Fatalf("%d deliveries, want %d", got, b.N*n)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkStalledSubscriberMemory publishes 1 KB messages to one normal and
// one stalled subscriber and reports the peak heap: it must stay flat as the
// number of messages grows, bounded by the stalled peer's send queue.
func BenchmarkStalledSubscriberMemory(b *testing.B) {
	for _, total := range []int{10_000, 50_000, 200_000} {
		b.Run(fmt.Sprint(total), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				pub := mustSocket(b, PUB, Options{})
				ep := listenLocal(b, pub)
				stalled := stalledSubscriber(b, ep)
				sub := mustSocket(b, SUB, Options{})
				sub.Subscribe("")
				sub.Dial(ep)
				warm(b, pub, sub)
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				base := ms.HeapInuse
				peak := uint64(0)
				got := 0
				for j := 0; j < total; j++ {
					// A fresh message each time, as a publisher sends them.
					m := Message{[]byte("t"), make([]byte, 1024)}
					pub.Send(context.Background(), m)
					if _, err := recvTimeout(b, sub, time.Second); err == nil {
						got++
					}
					if j%5000 == 0 {
						runtime.ReadMemStats(&ms)
						peak = max(peak, ms.HeapInuse)
					}
				}
				stalled.Close()
				b.ReportMetric(float64(peak-min(peak, base))/(1<<20), "peak-heap-MB")
				b.ReportMetric(float64(pub.Stats().Dropped), "dropped")
				if got < total*99/100 {
					b.Fatalf("the normal subscriber received %d of %d", got, total)
				}
				pub.Close()
				sub.Close()
			}
		})
	}
}

// lightClient completes a CURVE handshake as a SUB with small buffers, so
// that what a benchmark measures is the server's side.
func lightClient(b *testing.B, ep string, serverKey [32]byte) net.Conn {
	nc, err := net.Dial("tcp", strings.TrimPrefix(ep, "tcp://"))
	if err != nil {
		b.Fatal(err)
	}
	c := &conn{nc: nc, br: bufio.NewReaderSize(nc, 512), bw: bufio.NewWriterSize(nc, 512)}
	c.fr = frameReader{r: c.br, max: handshakeMaxFrame}
	pub, sec := keyPair(b)
	cfg := handshakeConfig{typ: SUB, maxSize: 1 << 20, timeout: 10 * time.Second,
		curve: &CurveOptions{ServerKey: serverKey, PublicKey: pub, SecretKey: sec}}
	if err := c.handshake(&cfg); err != nil {
		b.Fatal(err)
	}
	return nc
}

// BenchmarkPeerMemory connects idle CURVE subscribers and reports what each
// costs the publisher in heap and goroutines: the basis of the publisher's
// default subscriber limit.
func BenchmarkPeerMemory(b *testing.B) {
	const n = 200
	for i := 0; i < b.N; i++ {
		spub, ssec := keyPair(b)
		pub := mustSocket(b, PUB, Options{Curve: &CurveOptions{Server: true, SecretKey: ssec}, WriteTimeout: time.Minute, HeartbeatInterval: 30 * time.Second})
		ep := listenLocal(b, pub)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap, g := ms.HeapInuse+ms.StackInuse, runtime.NumGoroutine()
		conns := make([]net.Conn, n)
		for j := range conns {
			conns[j] = lightClient(b, ep, spub)
		}
		testenv.WaitFor(b, 10*time.Second, "peers", func() bool { return pub.Stats().Peers == n })
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse+ms.StackInuse-heap)/n/1024, "KiB/peer")
		b.ReportMetric(float64(runtime.NumGoroutine()-g)/n, "goroutines/peer")
		for _, c := range conns {
			c.Close()
		}
		pub.Close()
	}
}

// BenchmarkCurveHandshake measures a CURVE handshake, both sides, over
// loopback TCP: the CPU that the publisher's handshake limit protects.
func BenchmarkCurveHandshake(b *testing.B) {
	spub, ssec := keyPair(b)
	pub := mustSocket(b, PUB, Options{Curve: &CurveOptions{Server: true, SecretKey: ssec}})
	ep := listenLocal(b, pub)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lightClient(b, ep, spub).Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}
