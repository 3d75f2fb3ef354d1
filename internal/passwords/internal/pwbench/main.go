// Command pwbench measures the password index: it builds an index of
// random hashes, times range lookups in process, serves the range API, and
// loads a server over HTTP/1.1 with a lean raw-socket client. It is run by
// scripts/bench-passwords.sh.
//
//	pwbench build -n 100000000 -out /tmp/pw.idx
//	pwbench lookup -index /tmp/pw.idx -d 10s -mode index|handler|padded
//	pwbench serve -index /tmp/pw.idx -addr 127.0.0.1:8089
//	pwbench load -addr 127.0.0.1:8089 -c 8 -d 10s [-pad] [-server-pid PID]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dynfw/sentinel/internal/passwords"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pwbench build|lookup|serve|load [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var err error
	switch os.Args[1] {
	case "build":
		err = build(fs, os.Args[2:])
	case "lookup":
		err = lookup(fs, os.Args[2:])
	case "serve":
		err = serve(fs, os.Args[2:])
	case "load":
		err = load(fs, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pwbench:", err)
		os.Exit(1)
	}
}

func maxRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Maxrss * 1024
}

func build(fs *flag.FlagSet, args []string) error {
	n := fs.Int("n", 100_000_000, "random hashes")
	out := fs.String("out", "", "index file")
	mem := fs.Int("mem", 256, "sort buffer, MiB")
	tmp := fs.String("tmp", "", "directory for sorted runs")
	fs.Parse(args)
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	start := time.Now()
	rng := rand.New(rand.NewChaCha8([32]byte{42}))
	b := passwords.NewBuilder(passwords.BuilderOptions{TempDir: *tmp, MemoryLimit: *mem << 20})
	defer b.Close()
	for i := 0; i < *n; i++ {
		var h passwords.Hash
		a, c, d := rng.Uint64(), rng.Uint64(), rng.Uint32()
		for k := 0; k < 8; k++ {
			h[k], h[8+k] = byte(a>>(8*k)), byte(c>>(8*k))
		}
		h[16], h[17], h[18], h[19] = byte(d), byte(d>>8), byte(d>>16), byte(d>>24)
		e := passwords.Entry{Hash: h, HIBP: 1 + rng.Uint64N(1000)}
		if i%4 == 0 {
			e.Count, e.Sources = 1+rng.Uint64N(50), passwords.Source(1<<rng.IntN(5))
		}
		if err := b.Add(e); err != nil {
			return err
		}
		if i > 0 && i%10_000_000 == 0 {
			fmt.Fprintf(os.Stderr, "  added %dM in %s\n", i/1_000_000, time.Since(start).Round(time.Second))
		}
	}
	added := time.Since(start)
	hashes, err := b.Finish(context.Background(), *out)
	if err != nil {
		return err
	}
	total := time.Since(start)
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	ix, err := passwords.Open(*out)
	if err != nil {
		return err
	}
	ix.Close()
	fmt.Printf("build_hashes=%d\nbuild_seconds=%.1f\nbuild_add_sort_spill_seconds=%.1f\nbuild_merge_write_seconds=%.1f\nfile_bytes=%d\nbytes_per_hash=%.2f\nmax_rss_bytes=%d\n",
		hashes, total.Seconds(), added.Seconds(), (total - added).Seconds(), st.Size(), float64(st.Size())/float64(hashes), maxRSS())
	return nil
}

// hist records latencies exactly to the nanosecond up to 1 ms, and beyond
// in a list.
type hist struct {
	ns   []uint32
	slow []time.Duration
	n    int
}

const histMax = 1_000_000

func newHist() *hist { return &hist{ns: make([]uint32, histMax)} }

func (h *hist) add(d time.Duration) {
	h.n++
	if d < histMax {
		h.ns[d]++
	} else {
		h.slow = append(h.slow, d)
	}
}

func (h *hist) merge(o *hist) {
	for i, v := range o.ns {
		h.ns[i] += v
	}
	h.slow = append(h.slow, o.slow...)
	h.n += o.n
}

func (h *hist) quantile(q float64) time.Duration {
	rank := int(q * float64(h.n))
	seen := 0
	for i, v := range h.ns {
		seen += int(v)
		if seen > rank {
			return time.Duration(i)
		}
	}
	slices.Sort(h.slow)
	if i := rank - seen; i < len(h.slow) {
		return h.slow[i]
	}
	return h.slow[len(h.slow)-1]
}

func us(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e3) }

type discard struct{ h http.Header }

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) Write(p []byte) (int, error) { return len(p), nil }
func (w *discard) WriteHeader(int)             {}

func lookup(fs *flag.FlagSet, args []string) error {
	index := fs.String("index", "", "index file")
	d := fs.Duration("d", 10*time.Second, "duration")
	mode := fs.String("mode", "index", "index (Corpus lookup) | handler (lookup + render) | padded")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "goroutines")
	cold := fs.Bool("cold", false, "do not pre-fault the mapping")
	fs.Parse(args)
	c, err := passwords.OpenCorpus(*index, passwords.CorpusOptions{})
	if err != nil {
		return err
	}
	defer c.Close()
	if !*cold {
		t := time.Now()
		n := c.Warm()
		fmt.Fprintf(os.Stderr, "  warmed %d MiB in %s\n", n>>20, time.Since(t).Round(time.Millisecond))
	}
	h := c.RangeHandler()
	deadline := time.Now().Add(*d)
	hs := make([]*hist, *workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range hs {
		hs[w] = newHist()
		wg.Add(1)
		go func(hg *hist, seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			var buf []passwords.Entry
			dw := &discard{h: http.Header{}}
			req, _ := http.NewRequest("GET", "http://x/range/00000", nil)
			if *mode == "padded" {
				req.Header.Set("Add-Padding", "true")
			}
			for i := 0; ; i++ {
				if i&255 == 0 && time.Now().After(deadline) {
					return
				}
				p := rng.Uint32N(passwords.NumBuckets)
				t0 := time.Now()
				switch *mode {
				case "index":
					buf, _ = c.AppendRange(buf[:0], p)
				default:
					req.URL.Path = fmt.Sprintf("/range/%05X", p)
					h.ServeHTTP(dw, req)
				}
				hg.add(time.Since(t0))
			}
		}(hs[w], uint64(w))
	}
	wg.Wait()
	el := time.Since(start)
	all := newHist()
	for _, x := range hs {
		all.merge(x)
	}
	cpus := min(*workers, runtime.GOMAXPROCS(0))
	fmt.Printf("lookup_mode=%s\nlookup_workers=%d\nlookup_ops=%d\nlookup_ops_per_sec=%.0f\nlookup_ops_per_sec_per_core=%.0f\nlookup_p50_us=%s\nlookup_p99_us=%s\nlookup_p999_us=%s\nlookup_max_us=%s\n",
		*mode, *workers, all.n, float64(all.n)/el.Seconds(), float64(all.n)/el.Seconds()/float64(cpus),
		us(all.quantile(0.5)), us(all.quantile(0.99)), us(all.quantile(0.999)), us(all.quantile(1-1e-12)))
	return nil
}

func serve(fs *flag.FlagSet, args []string) error {
	index := fs.String("index", "", "index file")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	cold := fs.Bool("cold", false, "do not pre-fault the mapping")
	fs.Parse(args)
	c, err := passwords.OpenCorpus(*index, passwords.CorpusOptions{})
	if err != nil {
		return err
	}
	defer c.Close()
	if !*cold {
		c.Warm()
	}
	mux := http.NewServeMux()
	c.Register(mux)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Printf("addr=%s\n", ln.Addr())
	os.Stdout.Sync()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// cpuSeconds is the user+system CPU time of a process, from /proc.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

func load(fs *flag.FlagSet, args []string) error {
	addr := fs.String("addr", "", "server address")
	conns := fs.Int("c", 8, "connections")
	d := fs.Duration("d", 10*time.Second, "duration")
	pad := fs.Bool("pad", false, "send Add-Padding: true")
	pid := fs.Int("server-pid", 0, "server process, for its CPU time")
	rate := fs.Float64("rate", 0, "open loop: requests per second over all connections, each sent at its scheduled time and timed from it (0: closed loop, each connection sends its next request when the answer is in)")
	fs.Parse(args)
	var interval time.Duration
	if *rate > 0 {
		interval = time.Duration(float64(*conns) / *rate * float64(time.Second))
	}
	run := func(dur time.Duration) (*hist, time.Duration, int64, error) {
		deadline := time.Now().Add(dur)
		hs := make([]*hist, *conns)
		errs := make([]error, *conns)
		bytes := make([]int64, *conns)
		var wg sync.WaitGroup
		start := time.Now()
		for w := range hs {
			hs[w] = newHist()
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				errs[w] = loadConn(*addr, *pad, deadline, interval, hs[w], &bytes[w], uint64(w))
			}(w)
		}
		wg.Wait()
		el := time.Since(start)
		all := newHist()
		var nb int64
		for w, x := range hs {
			if errs[w] != nil {
				return nil, 0, 0, errs[w]
			}
			all.merge(x)
			nb += bytes[w]
		}
		return all, el, nb, nil
	}
	if _, _, _, err := run(time.Second); err != nil { // warm-up
		return err
	}
	var cpu0 float64
	if *pid != 0 {
		cpu0, _ = cpuSeconds(*pid)
	}
	all, el, nb, err := run(*d)
	if err != nil {
		return err
	}
	rps := float64(all.n) / el.Seconds()
	fmt.Printf("http_open_loop_rate=%.0f\n", *rate)
	fmt.Printf("http_conns=%d\nhttp_padding=%v\nhttp_requests=%d\nhttp_req_per_sec=%.0f\nhttp_p50_us=%s\nhttp_p99_us=%s\nhttp_p999_us=%s\nhttp_mean_body_bytes=%.0f\n",
		*conns, *pad, all.n, rps, us(all.quantile(0.5)), us(all.quantile(0.99)), us(all.quantile(0.999)), float64(nb)/float64(all.n))
	if *pid != 0 {
		cpu1, _ := cpuSeconds(*pid)
		if used := cpu1 - cpu0; used > 0 {
			fmt.Printf("http_server_cpu_cores=%.2f\nhttp_req_per_server_cpu_sec=%.0f\n", used/el.Seconds(), float64(all.n)/used)
		}
	}
	return nil
}

// loadConn sends range requests for random prefixes on one keep-alive
// connection until deadline, one at a time, and checks the answers. With
// an interval, request i is due at start + i×interval (connections
// staggered by their seed) and its latency counts from then, so a request
// delayed by a slow answer before it is charged for the wait (no
// coordinated omission).
func loadConn(addr string, pad bool, deadline time.Time, interval time.Duration, h *hist, nbytes *int64, seed uint64) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 64<<10)
	rng := rand.New(rand.NewPCG(seed, 99))
	extra := ""
	if pad {
		extra = "Add-Padding: true\r\n"
	}
	req := []byte("GET /range/00000 HTTP/1.1\r\nHost: bench\r\nUser-Agent: pwbench\r\n" + extra + "\r\n")
	const hexd = "0123456789ABCDEF"
	start := time.Now().Add(time.Duration(seed%64) * interval / 64)
	for i := 0; ; i++ {
		if (interval > 0 || i&63 == 0) && time.Now().After(deadline) {
			return nil
		}
		var due time.Time
		if interval > 0 {
			due = start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		p := rng.Uint32N(passwords.NumBuckets)
		for k := 0; k < 5; k++ {
			req[11+k] = hexd[p>>(16-4*k)&0xf]
		}
		t0 := time.Now()
		if interval > 0 {
			t0 = due
		}
		if _, err := conn.Write(req); err != nil {
			return err
		}
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(string(line), "HTTP/1.1 200 ") {
			return fmt.Errorf("status %q", line)
		}
		length := -1
		for {
			line, err = r.ReadSlice('\n')
			if err != nil {
				return err
			}
			if len(line) <= 2 {
				break
			}
			if k, v, ok := strings.Cut(string(line), ":"); ok && strings.EqualFold(k, "Content-Length") {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if length < 0 {
			return fmt.Errorf("no Content-Length")
		}
		if _, err := r.Discard(length); err != nil {
			return err
		}
		h.add(time.Since(t0))
		*nbytes += int64(length)
	}
}
