package server

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/ingest/probe"
	"github.com/dynfw/sentinel/internal/publish"
	"github.com/dynfw/sentinel/internal/scoring"
	"github.com/dynfw/sentinel/internal/server/core"
	"github.com/dynfw/sentinel/zmtp"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

// payloads returns n single-event minipot payloads over distinct addresses,
// a mix of connects, invalid interactions and logins.
func payloads(n, addrs int) [][]byte {
	out := make([][]byte, n)
	actions := []string{"connect", "connect", "invalid", "login"}
	for i := range out {
		a := netip.AddrFrom4([4]byte{45, byte(i % addrs >> 16), byte(i % addrs >> 8), byte(i % addrs)})
		var data map[string]string
		if actions[i%4] == "login" {
			data = map[string]string{"username": "root", "password": "123456"}
		}
		out[i] = minipot("telnet", a.String(), actions[i%4], data)
	}
	return out
}

// BenchmarkNormaliseAndScore: parsing a probe payload into an event and
// scoring it, on one core.
func BenchmarkNormaliseAndScore(b *testing.B) {
	ps := payloads(1<<16, 100_000)
	sc := scoring.New(scoring.DefaultConfig())
	buf := make([]events.Event, 0, 16)
	meta := probe.Meta{Received: time.Now().UnixNano(), Probe: 1, Source: events.FromZMQ}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		meta.Received += 1000
		buf, _ = probe.Parse(buf[:0], "minipot", ps[i&(1<<16-1)], meta)
		for j := range buf {
			sc.Observe(&buf[j])
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func benchCore(b *testing.B) *core.Core {
	cert, _ := zcert.New()
	c, err := OpenCore(CoreConfig{
		Config:    core.Config{DataDir: b.TempDir(), Scoring: scoring.DefaultConfig(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		Publisher: publish.Config{Listen: []string{"tcp://127.0.0.1:0"}, Curve: &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go c.Publisher().Run(ctx)
	b.Cleanup(func() { cancel(); c.Close() })
	return c
}

// BenchmarkCoreProcess: the whole core path for events already parsed —
// journal append, scoring, dynfw/event publication — in batches of ten.
func BenchmarkCoreProcess(b *testing.B) {
	c := benchCore(b)
	ps := payloads(1<<16, 100_000)
	var evs []events.Event
	for _, p := range ps {
		evs, _ = probe.Parse(evs, "minipot", p, probe.Meta{Received: time.Now().UnixNano(), Probe: 1})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 10 {
		off := i & (1<<16 - 1) &^ 15
		c.Process(evs[off : off+10])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestZMQ: end to end through the ZMQ PULL ingest of a running
// server, from a PUSH socket on the same machine, one event per message.
func BenchmarkIngestZMQ(b *testing.B) {
	t := &testing.T{}
	_ = t
	dir := b.TempDir()
	srv, err := New(Config{DataDir: dir, DynfwListen: []string{"tcp://127.0.0.1:0"}, IngestListen: []string{"tcp://127.0.0.1:0"},
		Scoring: scoring.DefaultConfig(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-srv.Ready()
	push, _ := zmtp.NewSocket(zmtp.PUSH, zmtp.Options{SendQueueLen: 100_000})
	defer push.Close()
	push.Dial("tcp://" + srv.IngestAddrs()[0].String())
	ps := payloads(1<<16, 100_000)
	topic := []byte("sentinel/collect/minipot")
	start := srv.Core().Counters().Processed
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		push.Send(context.Background(), zmtp.Message{topic, ps[i&(1<<16-1)]})
	}
	for srv.Core().Counters().Processed-start < uint64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEventToDelta: from the probe message that crosses the threshold
// to the delta at a CURVE subscriber. Reports the median and p99.
func BenchmarkEventToDelta(b *testing.B) {
	dir := b.TempDir()
	srv, err := New(Config{DataDir: dir, DynfwListen: []string{"tcp://127.0.0.1:0"}, IngestListen: []string{"tcp://127.0.0.1:0"},
		Scoring: scoring.DefaultConfig(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-srv.Ready()
	cert, _, _ := ServerCert(dir)
	sub, _ := zmtp.NewSocket(zmtp.SUB, zmtp.Options{Curve: &zmtp.CurveOptions{ServerKey: cert.Public}})
	defer sub.Close()
	sub.Subscribe(dynfw.TopicDelta)
	sub.Dial("tcp://" + srv.Core().Publisher().Addrs()[0].String())
	for len(srv.Core().Publisher().Socket().Peers()) == 0 || len(srv.Core().Publisher().Socket().Peers()[0].Subscriptions) == 0 {
		time.Sleep(time.Millisecond)
	}
	push, _ := zmtp.NewSocket(zmtp.PUSH, zmtp.Options{})
	defer push.Close()
	push.Dial("tcp://" + srv.IngestAddrs()[0].String())
	topic := []byte("sentinel/collect/minipot")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ip := netip.AddrFrom4([4]byte{46, byte(i >> 16), byte(i >> 8), byte(i)}).String()
		login := minipot("telnet", ip, "login", nil)
		for j := 0; j < 3; j++ {
			push.Send(context.Background(), zmtp.Message{topic, login})
		}
		for srv.Core().Counters().Processed < uint64(5*i+3) {
			time.Sleep(20 * time.Microsecond)
		}
		t0 := time.Now()
		push.Send(context.Background(), zmtp.Message{topic, login})
		// The fourth login lists with the default weights; the fifth
		// changes nothing.
		push.Send(context.Background(), zmtp.Message{topic, login})
		m, err := sub.Recv(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		_ = m
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkFanout1000: one delta to 1,000 CURVE subscribers, and a list of
// 10,000 addresses to 1,000 subscribers that (re)subscribe to lists.
func BenchmarkFanout1000(b *testing.B) {
	const n = 1000
	for _, tc := range []struct {
		name  string
		topic string
		list  int
	}{{"delta", dynfw.TopicDelta, 0}, {"list-10k", dynfw.TopicList, 10_000}} {
		b.Run(tc.name, func(b *testing.B) {
			cert, _ := zcert.New()
			var st publish.State
			for i := 0; i < tc.list; i++ {
				st.List = append(st.List, netip.PrefixFrom(netip.AddrFrom4([4]byte{47, 0, byte(i >> 8), byte(i)}), 32))
			}
			p, err := publish.New(publish.Config{Listen: []string{"tcp://127.0.0.1:0"}, Curve: &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret},
				ListInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, st)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			go p.Run(ctx)
			defer func() { cancel(); p.Close() }()
			subs := make([]*zmtp.Socket, n)
			for i := range subs {
				subs[i], _ = zmtp.NewSocket(zmtp.SUB, zmtp.Options{Curve: &zmtp.CurveOptions{ServerKey: cert.Public}})
				subs[i].Subscribe(tc.topic)
				subs[i].Dial("tcp://" + p.Addrs()[0].String())
				defer subs[i].Close()
			}
			for {
				ready := 0
				for _, pi := range p.Socket().Peers() {
					if len(pi.Subscriptions) > 0 {
						ready++
					}
				}
				if ready == n {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			var wg sync.WaitGroup
			var got atomic.Int64
			for _, s := range subs {
				go func() {
					for {
						if _, err := s.Recv(context.Background()); err != nil {
							return
						}
						got.Add(1)
						wg.Done()
					}
				}()
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				wg.Add(n)
				if tc.list > 0 {
					p.SendListNow()
				} else {
					p.Delta(i%2 == 0, netip.PrefixFrom(netip.AddrFrom4([4]byte{48, 0, byte(i / 2 >> 8), byte(i / 2)}), 32), time.Now())
				}
				wg.Wait()
			}
		})
	}
}
