package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/testenv"
)

// dynfwRecorder keeps every list and delta a libzmq subscriber received
// across server restarts, and every contradiction among them: a (version,
// serial) pair that arrived twice with different content, or a list that
// disagrees with the delta of its serial.
type dynfwRecorder struct {
	mu         sync.Mutex
	changed    chan struct{}
	cur        uint64 // version of the last list on this connection, 0 before one
	deltas     map[[2]uint64]string
	lists      map[[2]uint64][]string
	maxVersion uint64
	positive   map[string]bool // addresses seen in positive deltas
	conflicts  []string
	nLists     int
	nDeltas    int
}

func newDynfwRecorder() *dynfwRecorder {
	return &dynfwRecorder{changed: make(chan struct{}), deltas: map[[2]uint64]string{}, lists: map[[2]uint64][]string{}, positive: map[string]bool{}}
}

type recorderLine struct {
	Conn    string `json:"conn"`
	Topic   string `json:"topic"`
	Payload struct {
		Version uint64   `json:"version"`
		Serial  uint64   `json:"serial"`
		List    []string `json:"list"`
		Delta   string   `json:"delta"`
		IP      string   `json:"ip"`
	} `json:"payload"`
}

func (r *dynfwRecorder) add(line []byte) {
	var m recorderLine
	if err := json.Unmarshal(line, &m); err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() { close(r.changed); r.changed = make(chan struct{}) }()
	p := &m.Payload
	switch {
	case m.Conn != "":
		r.cur = 0 // deltas until the next list belong to no known version
	case m.Topic == "dynfw/list":
		r.nLists++
		r.cur = p.Version
		r.maxVersion = max(r.maxVersion, p.Version)
		k := [2]uint64{p.Version, p.Serial}
		l := slices.Clone(p.List)
		slices.Sort(l)
		if old, ok := r.lists[k]; ok && !slices.Equal(old, l) {
			r.conflicts = append(r.conflicts, fmt.Sprintf("list %v: %v, then %v", k, old, l))
		}
		r.lists[k] = l
		if d, ok := r.deltas[k]; ok {
			r.checkPair(k, d, l)
		}
	case m.Topic == "dynfw/delta":
		r.nDeltas++
		if p.Delta == "positive" {
			r.positive[p.IP] = true
		}
		if r.cur == 0 {
			return
		}
		k := [2]uint64{r.cur, p.Serial}
		d := p.Delta + " " + p.IP
		if old, ok := r.deltas[k]; ok && old != d {
			r.conflicts = append(r.conflicts, fmt.Sprintf("delta %v: %s, then %s", k, old, d))
		}
		r.deltas[k] = d
		if l, ok := r.lists[k]; ok {
			r.checkPair(k, d, l)
		}
	}
}

// checkPair: the list of a serial holds the state after that serial's delta.
func (r *dynfwRecorder) checkPair(k [2]uint64, delta string, list []string) {
	op, ip, _ := strings.Cut(delta, " ")
	if _, in := slices.BinarySearch(list, ip); in != (op == "positive") {
		r.conflicts = append(r.conflicts, fmt.Sprintf("%v: delta %s but the list of that serial is %v", k, delta, list))
	}
}

// wait blocks until cond holds (under the recorder's lock) or d passes.
func (r *dynfwRecorder) wait(d time.Duration, cond func() bool) bool {
	deadline := time.After(d)
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

func (r *dynfwRecorder) maxSeen() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxVersion
}

// crashProc is one `sentinel run` of the crash loop.
type crashProc struct {
	cmd  *exec.Cmd
	log  *lockedBuf
	done chan struct{}
	err  error
}

func startCrashProc(t *testing.T, data string, ports [3]int, sync string, extra ...string) *crashProc {
	t.Helper()
	p := &crashProc{log: &lockedBuf{}, done: make(chan struct{})}
	args := []string{"run", "--data", data, "--config", "/dev/null", "--no-view",
		"--dynfw-listen", fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), "--ingest-listen", fmt.Sprintf("tcp://127.0.0.1:%d", ports[1]),
		"--http-listen", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--list-interval", "150ms", "--sync-interval", sync,
		"--admin-token", "crash-loop-admin-token-0123456789"}
	p.cmd = exec.Command(filepath.Join(binDir, "sentinel"), append(args, extra...)...)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	return p
}

func (p *crashProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

type health struct {
	Version uint64 `json:"version"`
	Serial  uint64 `json:"serial"`
	Listed  int    `json:"listed"`
}

// ready polls /healthz until the server answers (or exits).
func (p *crashProc) ready(t *testing.T, httpAddr string) (health, bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return health{}, false
		default:
		}
		if resp, err := http.Get("http://" + httpAddr + "/healthz"); err == nil {
			var h health
			json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			return h, true
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("sentinel did not answer /healthz")
	return health{}, false
}

// ingestCounters returns the lines of the server's /metrics that say what
// its ingest and scorer did, for a failure's message.
func ingestCounters(httpAddr string) string {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "#") && (strings.Contains(l, "ingest") || strings.Contains(l, "events") || strings.Contains(l, "listed")) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestCrashLoopSerialsNeverLie runs `sentinel run` in a loop and stops it
// in every way: SIGKILL while it starts, SIGKILL right after it published a
// delta (before or after the journal's sync), SIGTERM. A libzmq subscriber
// records every list and delta. No (version, serial) may ever name two
// different contents, and a start after a SIGKILL must publish a version
// above every one published before. SENTINEL_CRASHLOOP_CYCLES sets the
// number of cycles (a soak), SENTINEL_CRASHLOOP_SEED replays a run.
func TestCrashLoopSerialsNeverLie(t *testing.T) {
	py := testenv.Python(t)
	cycles := 24
	if v, err := strconv.Atoi(os.Getenv("SENTINEL_CRASHLOOP_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("SENTINEL_CRASHLOOP_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("SENTINEL_CRASHLOOP_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	data := t.TempDir()
	ports := [3]int{freePort(t), freePort(t), freePort(t)}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", ports[2])
	rec := newDynfwRecorder()
	var lastLog string
	defer func() {
		if t.Failed() {
			t.Logf("last sentinel log:\n%s", lastLog)
		}
	}()

	type stop int
	const (
		none stop = iota
		clean
		unclean
		unknown // killed while starting: it may or may not have published
	)
	prev, prevVersion := none, uint64(0)
	var subscriber *exec.Cmd
	listed := []string{}
	stats := map[string]int{}
	for i := range cycles {
		// The first cycles are the sequence of fault 2; the rest is chance.
		mode := []string{"clean", "delta-kill", "delta-kill"}[min(i, 2)]
		if i >= 3 {
			mode = []string{"start-kill", "delta-kill", "delta-kill", "clean"}[rng.IntN(4)]
		}
		syncEvery := []string{"1s", "20ms"}[rng.IntN(2)]
		stats[mode]++
		before := max(rec.maxSeen(), prevVersion)
		p := startCrashProc(t, data, ports, syncEvery)
		if mode == "start-kill" {
			time.Sleep(time.Duration(rng.IntN(80)) * time.Millisecond)
			p.kill()
			lastLog = p.log.String()
			if prev != none {
				prev = unknown
			}
			continue
		}
		h, ok := p.ready(t, httpAddr)
		if !ok {
			t.Fatalf("cycle %d: sentinel exited: %v\n%s", i, p.err, p.log.String())
		}
		switch prev {
		case clean:
			if h.Version != prevVersion {
				t.Errorf("cycle %d: version %d after a clean stop of version %d", i, h.Version, prevVersion)
			}
		case unclean:
			if h.Version <= before {
				t.Errorf("cycle %d: version %d after a SIGKILL, but %d was published before", i, h.Version, before)
			}
		case unknown:
			if h.Version < prevVersion {
				t.Errorf("cycle %d: version %d went back from %d", i, h.Version, prevVersion)
			}
		}
		if subscriber == nil {
			subscriber = exec.Command(py, "testdata/recorder.py", fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), filepath.Join(data, "dynfw.key"))
			out, _ := subscriber.StdoutPipe()
			subscriber.Stderr = os.Stderr
			if err := subscriber.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { subscriber.Process.Kill(); subscriber.Wait() })
			go func() {
				sc := bufio.NewScanner(out)
				sc.Buffer(nil, 16<<20)
				for sc.Scan() {
					rec.add(sc.Bytes())
				}
			}()
		}
		// Deltas count only after a list of this run, so wait for one.
		if !rec.wait(20*time.Second, func() bool { return rec.cur == h.Version }) {
			t.Fatalf("cycle %d: the subscriber got no list of version %d", i, h.Version)
		}
		ip := fmt.Sprintf("45.155.%d.%d", 100+i/250, i%250+1)
		emit := exec.Command(filepath.Join(binDir, "sentinel"), "emit", "--ingest", fmt.Sprintf("tcp://127.0.0.1:%d", ports[1]), "--ip", ip, "--count", "6")
		emitOut, err := emit.CombinedOutput()
		if err != nil {
			t.Fatalf("emit: %v\n%s", err, emitOut)
		}
		if len(listed) > 0 && rng.IntN(3) == 0 {
			// A negative delta now and then: lift an earlier listing.
			old := listed[rng.IntN(len(listed))]
			req, _ := http.NewRequest("POST", "http://"+httpAddr+"/api/v1/admin/unblock", strings.NewReader(`{"ip":"`+old+`","duration":"1h"}`))
			req.Header.Set("Authorization", "Bearer crash-loop-admin-token-0123456789")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		if !rec.wait(20*time.Second, func() bool { return rec.positive[ip] }) {
			t.Fatalf("cycle %d: no positive delta for %s\nemit: %s\nthe server's counters:\n%s\n%s", i, ip, emitOut, ingestCounters(httpAddr), p.log.String())
		}
		listed = append(listed, ip)
		prevVersion = h.Version
		if mode == "clean" {
			p.cmd.Process.Signal(syscall.SIGTERM)
			<-p.done
			if p.err != nil {
				t.Fatalf("cycle %d: sentinel exited with %v after SIGTERM\n%s", i, p.err, p.log.String())
			}
			prev = clean
		} else {
			// Mostly at once (before a 1 s sync, after a 20 ms one),
			// now and then across a 1 s sync.
			wait := rng.IntN(100)
			if rng.IntN(6) == 0 {
				wait = rng.IntN(1200)
			}
			time.Sleep(time.Duration(wait) * time.Millisecond)
			p.kill()
			prev = unclean
		}
		lastLog = p.log.String()
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	t.Logf("%d cycles %v: %d lists and %d deltas received, %d distinct (version, serial) deltas", cycles, stats, rec.nLists, rec.nDeltas, len(rec.deltas))
	for _, c := range rec.conflicts {
		t.Errorf("a (version, serial) pair named two contents: %s", c)
	}
}

// TestRunRefusesToStartEmpty: the journal of a server that ran is gone;
// `sentinel run` exits non-zero without publishing, and says how to go on.
// With --accept-empty-state it starts, empty, under a new version.
func TestRunRefusesToStartEmpty(t *testing.T) {
	data := t.TempDir()
	ports := [3]int{freePort(t), freePort(t), freePort(t)}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", ports[2])
	p := startCrashProc(t, data, ports, "1s")
	h, ok := p.ready(t, httpAddr)
	if !ok {
		t.Fatalf("sentinel exited: %v\n%s", p.err, p.log.String())
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	if err := os.RemoveAll(filepath.Join(data, "journal")); err != nil {
		t.Fatal(err)
	}

	p = startCrashProc(t, data, ports, "1s")
	<-p.done
	out := p.log.String()
	if code := p.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(out, "refusing to publish an empty list") ||
		!strings.Contains(out, "--accept-empty-state") || strings.Contains(out, "sentinel running") {
		t.Fatalf("exit %d:\n%s", code, out)
	}

	p = startCrashProc(t, data, ports, "1s", "--accept-empty-state")
	h2, ok := p.ready(t, httpAddr)
	if !ok {
		t.Fatalf("sentinel exited: %v\n%s", p.err, p.log.String())
	}
	if h2.Version <= h.Version || h2.Listed != 0 || !strings.Contains(p.log.String(), "STARTING EMPTY") {
		t.Fatalf("accepted empty start: %+v after %+v\n%s", h2, h, p.log.String())
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
}
