//go:build linux

package live

// The load test behind scripts/bench-live.sh. It runs the real chain in two
// processes so that the server's memory is measured alone:
//
//	parent: DynFW publisher (CURVE) --ZMTP--> child: Hub.Follow + HTTP server
//	parent: N SSE clients <--HTTP-- child
//
// The parent publishes events at a fixed rate, each with an address that
// encodes its sequence number, and records when it sent each; the clients
// compute the delay from publication to receipt. The child reports its heap,
// RSS and CPU time every second.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/bits"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/publish"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// seqMul spreads sequence numbers over the IPv4 space (an odd multiplier is
// invertible modulo 2^32), so that the events hit many countries.
const seqMul = 2654435761

var seqInv = func() uint32 { // Newton's iteration for the inverse mod 2^32
	x := uint32(seqMul)
	for range 5 {
		x *= 2 - seqMul*x
	}
	return x
}()

func seqAddr(i uint32) netip.Addr {
	v := i * seqMul
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// parseIPv4 reads a dotted quad; ok is false for anything else.
func parseIPv4(b []byte) (uint32, bool) {
	var v, part uint32
	dots, digits := 0, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			part = part*10 + uint32(c-'0')
			digits++
		case c == '.':
			v, part, digits = v<<8|part, 0, 0
			dots++
		default:
			return 0, false
		}
	}
	if dots != 3 || digits == 0 {
		return 0, false
	}
	return v<<8 | part, true
}

// hist is a log-linear histogram of microseconds (16 sub-buckets per
// power of two, about 6% resolution).
type hist [1024]int64

func bucketOf(us int64) int {
	if us < 16 {
		return int(max(us, 0))
	}
	shift := bits.Len64(uint64(us)) - 5
	return 16*(shift+1) + int(us>>shift) - 16
}

func bucketValue(i int) int64 {
	if i < 16 {
		return int64(i)
	}
	shift := i/16 - 1
	return int64(i%16+16) << shift
}

func (h *hist) add(o *hist) {
	for i := range h {
		h[i] += o[i]
	}
}

func (h *hist) quantile(q float64) time.Duration {
	var n int64
	for _, c := range h {
		n += c
	}
	want := min(int64(q*float64(n)), n-1)
	var acc int64
	for i, c := range h {
		acc += c
		if acc > want {
			return time.Duration(bucketValue(i)) * time.Microsecond
		}
	}
	return 0
}

func TestBucketOf(t *testing.T) {
	for _, us := range []int64{0, 5, 15, 16, 17, 31, 32, 100, 1000, 123456, 1 << 30} {
		b := bucketOf(us)
		if v := bucketValue(b); v > us || float64(us-v) > 0.07*float64(us) {
			t.Errorf("%d -> bucket %d value %d", us, b, v)
		}
	}
	for i := uint32(0); i < 1000; i++ {
		a := seqAddr(i).As4()
		v, ok := parseIPv4([]byte(seqAddr(i).String()))
		if !ok || v*seqInv != i || uint32(a[0])<<24|uint32(a[1])<<16|uint32(a[2])<<8|uint32(a[3]) != v {
			t.Fatalf("seq %d", i)
		}
	}
}

type memSample struct {
	heapInuse, heapAlloc, sys, rss int64
	goroutines, clients            int
	slow, cpu                      int64 // slow drops; CPU µs
}

func parseMem(line string) (m memSample, ok bool) {
	f := strings.Fields(line)
	if len(f) != 9 || f[0] != "MEM" {
		return m, false
	}
	n := make([]int64, 8)
	for i := range n {
		n[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	return memSample{n[0], n[1], n[2], n[3], int(n[4]), int(n[5]), n[6], n[7]}, true
}

// TestBenchLiveServer is the child: a hub following the parent's publisher,
// served over HTTP. It exits when its stdin closes.
func TestBenchLiveServer(t *testing.T) {
	if os.Getenv("LIVE_BENCH_CHILD") != "1" {
		t.Skip("child of TestBenchLive")
	}
	keyb, _ := hex.DecodeString(os.Getenv("LIVE_BENCH_KEY"))
	key := [32]byte(keyb)
	h := New(Options{Logger: quiet, MaxClients: 100000, MaxPerAddr: 100000})
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Follow(ctx, FollowConfig{Endpoint: os.Getenv("LIVE_BENCH_PUB"), ServerKey: &key})
	mux := http.NewServeMux()
	h.Register(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	srv.RegisterOnShutdown(h.Close)
	go srv.Serve(ln)
	fmt.Println("ADDR", ln.Addr().String())
	go func() {
		var ms runtime.MemStats
		for range time.Tick(time.Second) {
			runtime.ReadMemStats(&ms)
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			cpu := ru.Utime.Sec*1e6 + ru.Utime.Usec + ru.Stime.Sec*1e6 + ru.Stime.Usec
			slow, _ := h.Dropped()
			fmt.Println("MEM", ms.HeapInuse, ms.HeapAlloc, ms.Sys, rssBytes(), runtime.NumGoroutine(), h.Clients(), slow, cpu)
		}
	}()
	buf := make([]byte, 1)
	os.Stdin.Read(buf) // the parent closes stdin to stop us
}

func rssBytes() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestBenchLive: LIVE_BENCH=1 (scripts/bench-live.sh). LIVE_BENCH_CLIENTS
// (1000), LIVE_BENCH_RATE events/s (1000), LIVE_BENCH_SECONDS (30).
func TestBenchLive(t *testing.T) {
	if os.Getenv("LIVE_BENCH") != "1" {
		t.Skip("set LIVE_BENCH=1 (scripts/bench-live.sh)")
	}
	nClients := envInt("LIVE_BENCH_CLIENTS", 1000)
	rate := envInt("LIVE_BENCH_RATE", 1000)
	seconds := envInt("LIVE_BENCH_SECONDS", 30)

	p, key := startPublisher(t, publish.State{Version: 1}, 10*time.Second)
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^TestBenchLiveServer$", "-test.v=false")
	cmd.Env = append(os.Environ(), "LIVE_BENCH_CHILD=1", "LIVE_BENCH=", "LIVE_BENCH_KEY="+hex.EncodeToString(key[:]),
		"LIVE_BENCH_PUB=tcp://"+p.Addrs()[0].String())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	var addr string
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "ADDR "); ok {
			addr = a
			break
		}
	}
	var memMu sync.Mutex
	var last memSample
	var samples []memSample
	go func() {
		for lines.Scan() {
			if m, ok := parseMem(lines.Text()); ok {
				memMu.Lock()
				last = m
				samples = append(samples, m)
				memMu.Unlock()
			}
		}
	}()
	mem := func() memSample { memMu.Lock(); defer memMu.Unlock(); return last }
	waitFor(t, 10*time.Second, "child subscribed", func() bool {
		ps := p.Socket().Peers()
		return len(ps) == 1 && len(ps[0].Subscriptions) >= 1
	})
	time.Sleep(1500 * time.Millisecond)
	idle := mem()

	// Publication times by sequence number, Unix ns.
	total := rate * seconds
	pubAt := make([]atomic.Int64, total+1)
	tr := &http.Transport{MaxIdleConnsPerHost: nClients, DisableCompression: true}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		h                    hist
		received, reconnects int64
	}
	results := make([]result, nClients)
	var connected atomic.Int64
	var wg sync.WaitGroup
	for c := range nClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[c]
			first := true
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/dynfw/events", nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					if ctx.Err() == nil {
						res.reconnects++
						time.Sleep(100 * time.Millisecond)
					}
					continue
				}
				if first {
					connected.Add(1)
					first = false
				} else {
					res.reconnects++
				}
				br := bufio.NewReaderSize(resp.Body, 64<<10)
				isEvent := false
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						break
					}
					if bytes.HasPrefix(line, []byte("event: ")) {
						isEvent = bytes.Equal(line, []byte("event: event\n"))
						continue
					}
					if !isEvent || !bytes.HasPrefix(line, []byte("data: ")) {
						continue
					}
					now := time.Now().UnixNano()
					i := bytes.Index(line, []byte(`"ip":"`))
					if i < 0 {
						continue
					}
					rest := line[i+6:]
					j := bytes.IndexByte(rest, '"')
					v, ok := parseIPv4(rest[:j])
					if !ok {
						continue
					}
					seq := v * seqInv
					if int(seq) >= len(pubAt) {
						continue
					}
					if at := pubAt[seq].Load(); at > 0 {
						res.h[bucketOf((now-at)/1000)]++
						res.received++
					}
				}
				resp.Body.Close()
			}
		}()
	}
	waitFor(t, 60*time.Second, "clients connected", func() bool {
		return connected.Load() == int64(nClients) && mem().clients == nClients
	})
	time.Sleep(1500 * time.Millisecond)
	withClients := mem()

	t.Logf("publishing %d events/s for %d s to %d clients", rate, seconds, nClients)
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	sent := 0
	for sent < total {
		<-tick.C
		due := min(int(time.Since(start).Seconds()*float64(rate)), total)
		for ; sent < due; sent++ {
			pubAt[sent].Store(time.Now().UnixNano())
			p.Event(events.TelnetLogin, seqAddr(uint32(sent)), time.Now())
		}
		if sent%(rate/10) == 0 { // and ten deltas per second
			p.Delta(sent%(rate/5) == 0, netip.PrefixFrom(seqAddr(uint32(sent)), 32), time.Now())
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	time.Sleep(2 * time.Second) // let the last events arrive
	end := mem()
	cancel()
	wg.Wait()

	var all hist
	var minR, maxR, sumR, reconn int64 = 1 << 62, 0, 0, 0
	for i := range results {
		all.add(&results[i].h)
		minR = min(minR, results[i].received)
		maxR = max(maxR, results[i].received)
		sumR += results[i].received
		reconn += results[i].reconnects
	}
	var peak memSample
	memMu.Lock()
	for _, s := range samples {
		peak.heapInuse = max(peak.heapInuse, s.heapInuse)
		peak.rss = max(peak.rss, s.rss)
		peak.goroutines = max(peak.goroutines, s.goroutines)
	}
	memMu.Unlock()
	mb := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	cpu := float64(end.cpu-withClients.cpu) / 1e6
	fmt.Printf("\nlive SSE load: %d clients, %d events/s for %v (%d events published)\n", nClients, rate, elapsed.Round(time.Millisecond), total)
	fmt.Printf("  latency publication -> receipt: p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n",
		all.quantile(.5), all.quantile(.9), all.quantile(.99), all.quantile(.999), all.quantile(1))
	fmt.Printf("  events received per client: min %d  avg %.0f  max %d  (of %d); reconnects %d; server slow drops %d\n",
		minR, float64(sumR)/float64(nClients), maxR, total, reconn, end.slow)
	fmt.Printf("  server heap in use: idle %s, %d clients connected %s, peak under load %s\n", mb(idle.heapInuse), nClients, mb(withClients.heapInuse), mb(peak.heapInuse))
	fmt.Printf("  server RSS: idle %s, clients connected %s, peak %s; goroutines peak %d\n", mb(idle.rss), mb(withClients.rss), mb(peak.rss), peak.goroutines)
	fmt.Printf("  server CPU during the run: %.1f s for %.1f s (%.0f%% of one core); host has %d CPUs shared with the clients\n",
		cpu, elapsed.Seconds()+2, 100*cpu/(elapsed.Seconds()+2), runtime.NumCPU())
	if minR < int64(total)*99/100 {
		t.Errorf("a client received only %d of %d events", minR, total)
	}
}
