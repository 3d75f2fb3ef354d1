package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/scoring"
	"github.com/dynfw/sentinel/zmtp"
)

// BenchmarkEventToDeltaWithListReaders: event-to-delta latency (the probe
// message that crosses the threshold in, the delta out at a CURVE
// subscriber) on a server publishing a list of 500,000 scattered IPv4
// addresses every second, while 8 clients download GET /api/v1/list in a
// loop over loopback. Reports p50, p99 and the maximum of the latency (the
// maximum includes the publication of a list, which delays the deltas
// queued behind it) and the full downloads per second. The readers:
//
//	none         no reader: the floor
//	plain        no rate limit, identity encoding, unconditional: the worst case
//	gzip         no rate limit, Accept-Encoding: gzip
//	conditional  no rate limit, If-None-Match with the last ETag
//	limited      the default rate limit, each reader from its own loopback
//	             address, identity encoding, unconditional
func BenchmarkEventToDeltaWithListReaders(b *testing.B) {
	for _, mode := range []string{"none", "plain", "gzip", "conditional", "limited"} {
		b.Run(mode, func(b *testing.B) { benchListReaders(b, mode) })
	}
}

func benchListReaders(b *testing.B, mode string) {
	const listed = 500_000
	readers := 8
	if mode == "none" {
		readers = 0
	}
	rate := -1.0 // no limit
	if mode == "limited" {
		rate = 0 // the default
	}
	dir := b.TempDir()
	srv, err := New(Config{DataDir: dir, DynfwListen: []string{"tcp://127.0.0.1:0"}, IngestListen: []string{"tcp://127.0.0.1:0"},
		HTTPListen: "127.0.0.1:0", ListInterval: time.Second, ListRateLimit: rate,
		Scoring: scoring.DefaultConfig(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-srv.Ready()
	pub := srv.Core().Publisher()
	// The listed addresses go straight to the publisher (scoring half a
	// million addresses would take minutes), scattered over the IPv4 space
	// (a multiplicative permutation) as real attackers are, away from
	// 46.0.0.0/16 where the measured events are.
	for i := range listed {
		a := uint32(i+1) * 2654435761
		if a>>16 == 46<<8 {
			a ^= 1 << 31
		}
		pub.Delta(true, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 32), time.Now())
	}
	if err := pub.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	for serial := pub.Stats().Serial; pub.Published().Serial < serial; {
		time.Sleep(10 * time.Millisecond) // the next list carries them
	}
	cert, _, _ := ServerCert(dir)
	sub, _ := zmtp.NewSocket(zmtp.SUB, zmtp.Options{Curve: &zmtp.CurveOptions{ServerKey: cert.Public}})
	defer sub.Close()
	sub.Subscribe(dynfw.TopicDelta)
	sub.Dial("tcp://" + pub.Addrs()[0].String())
	for len(pub.Socket().Peers()) == 0 || len(pub.Socket().Peers()[0].Subscriptions) == 0 {
		time.Sleep(time.Millisecond)
	}
	push, _ := zmtp.NewSocket(zmtp.PUSH, zmtp.Options{})
	defer push.Close()
	push.Dial("tcp://" + srv.IngestAddrs()[0].String())
	topic := []byte("sentinel/collect/minipot")

	url := "http://" + srv.HTTPAddr().String() + "/api/v1/list"
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var requests, reads atomic.Int64
	for i := range readers {
		tr := &http.Transport{DisableCompression: true}
		if mode == "limited" {
			// Each reader is a client of its own: 127.0.0.2, .3, …
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}}
			tr.DialContext = d.DialContext
		}
		client := &http.Client{Transport: tr}
		wg.Go(func() {
			etag := ""
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", url, nil)
				switch mode {
				case "gzip":
					req.Header.Set("Accept-Encoding", "gzip")
				case "conditional":
					if etag != "" {
						req.Header.Set("If-None-Match", etag)
					}
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				etag = resp.Header.Get("ETag")
				requests.Add(1)
				switch {
				case resp.StatusCode == http.StatusOK && n > 1<<20:
					reads.Add(1)
				case resp.StatusCode == http.StatusNotModified || resp.StatusCode == http.StatusTooManyRequests:
				default:
					b.Errorf("%s, %d bytes", resp.Status, n)
					return
				}
			}
		})
	}
	// Wait until every reader is running.
	for requests.Load() < int64(readers) {
		time.Sleep(time.Millisecond)
	}
	processed := srv.Core().Counters().Processed
	lat := make([]time.Duration, 0, b.N)
	reads.Store(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ip := netip.AddrFrom4([4]byte{46, 0, byte(i >> 8), byte(i)}).String()
		login := minipot("telnet", ip, "login", nil)
		for range 3 {
			push.Send(context.Background(), zmtp.Message{topic, login})
		}
		processed += 3
		for srv.Core().Counters().Processed < processed {
			time.Sleep(20 * time.Microsecond)
		}
		t0 := time.Now()
		// Five logins list with the default weights: a fourth and a fifth.
		push.Send(context.Background(), zmtp.Message{topic, login})
		push.Send(context.Background(), zmtp.Message{topic, login})
		processed += 2
		if _, err := sub.Recv(context.Background()); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(reads.Load())/b.Elapsed().Seconds(), "list-reads/s")
}
