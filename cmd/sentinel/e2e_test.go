package main

// End-to-end tests of the sentinel binary, as an operator runs it: probes
// push through ZMQ, a libzmq CURVE subscriber and dynfw-client follow the
// publisher, and the server is stopped gracefully or killed with SIGKILL.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/testenv"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sentinel-e2e")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for _, pkg := range []string{".", "../dynfw-client"} {
		out, err := exec.Command("go", "build", "-o", dir+"/", pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// sentinelProc is a running `sentinel run`.
type sentinelProc struct {
	cmd                  *exec.Cmd
	log                  *lockedBuf
	dynfw, ingest, httpA string
	data                 string
}

func startSentinel(t *testing.T, data string, ports [3]int) *sentinelProc {
	t.Helper()
	p := &sentinelProc{log: &lockedBuf{}, data: data,
		dynfw: fmt.Sprintf("127.0.0.1:%d", ports[0]), ingest: fmt.Sprintf("127.0.0.1:%d", ports[1]), httpA: fmt.Sprintf("127.0.0.1:%d", ports[2])}
	p.cmd = exec.Command(filepath.Join(binDir, "sentinel"), "run", "--data", data,
		"--dynfw-listen", "tcp://"+p.dynfw, "--ingest-listen", "tcp://"+p.ingest, "--http-listen", p.httpA,
		"--list-interval", "300ms", "--admin-token", "e2e-admin-token-0123456789", "--config", "/dev/null")
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("sentinel log:\n%s", p.log.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := http.Get("http://" + p.httpA + "/healthz"); err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel did not start:\n%s", p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *sentinelProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if sig == syscall.SIGTERM && err != nil {
			t.Fatalf("sentinel exited with %v after SIGTERM:\n%s", err, p.log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sentinel did not stop")
	}
}

// probe pushes minipot events as sentinel-minipot 2.3.0 does (batches),
// using libzmq through python.
func probePush(t *testing.T, endpoint string, events []map[string]any) {
	t.Helper()
	py := testenv.Python(t)
	b, _ := json.Marshal(events)
	script := `
import json, sys, time, zmq, msgpack
evs = json.loads(sys.argv[2])
for e in evs:
    e.setdefault("ts", int(time.time()))
c = zmq.Context(); s = c.socket(zmq.PUSH); s.connect(sys.argv[1])
for i in range(0, len(evs), 10):
    s.send_multipart([b"sentinel/collect/minipot", msgpack.packb(evs[i:i+10])])
s.close(linger=5000); c.term()
`
	if out, err := exec.Command(py, "-c", script, "tcp://"+endpoint, string(b)).CombinedOutput(); err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
}

func logins(ip string, n int) []map[string]any {
	var out []map[string]any
	for i := 0; i < n; i++ {
		out = append(out, map[string]any{"type": "telnet", "ip": ip, "action": "login", "data": map[string]string{"username": "root", "password": fmt.Sprint("pw", i)}})
	}
	return out
}

type explanation struct {
	Listed bool           `json:"listed"`
	Counts map[string]int `json:"counts"`
}

func explain(t *testing.T, p *sentinelProc, ip string) explanation {
	t.Helper()
	var ex explanation
	resp, err := http.Get("http://" + p.httpA + "/api/v1/addresses/" + ip)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&ex)
	return ex
}

type listState struct {
	Version uint64   `json:"version"`
	Serial  uint64   `json:"serial"`
	List    []string `json:"list"`
}

func currentList(t *testing.T, p *sentinelProc) listState {
	t.Helper()
	var l listState
	resp, err := http.Get("http://" + p.httpA + "/api/v1/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&l)
	return l
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServerToSubscribersAndClient: probes push events; a libzmq CURVE
// subscriber sees events, deltas and lists; dynfw-client keeps a file equal
// to the list.
func TestServerToSubscribersAndClient(t *testing.T) {
	py := testenv.Python(t)
	ports := [3]int{freePort(t), freePort(t), freePort(t)}
	p := startSentinel(t, t.TempDir(), ports)

	sub := exec.Command(py, "testdata/subscriber.py", "tcp://"+p.dynfw, filepath.Join(p.data, "dynfw.key"))
	out, _ := sub.StdoutPipe()
	sub.Stderr = os.Stderr
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sub.Process.Kill(); sub.Wait() }()
	lines := make(chan map[string]any, 1000)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var m map[string]any
			json.Unmarshal(sc.Bytes(), &m)
			lines <- m
		}
	}()
	file := filepath.Join(t.TempDir(), "blocked.txt")
	client := exec.Command(filepath.Join(binDir, "dynfw-client"), "-s", "127.0.0.1", "-p", fmt.Sprint(ports[0]),
		"--cert-url", "http://"+p.httpA+"/dynfw.pub", "--key-dir", t.TempDir(), "--backend", "file", "--output", file, "--batch-interval", "20ms")
	var clog lockedBuf
	client.Stderr = &clog
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { client.Process.Signal(os.Interrupt); client.Wait() }()
	// Wait until the python subscriber gets a list: it is connected.
	waitMsg := func(want func(map[string]any) bool) map[string]any {
		deadline := time.After(15 * time.Second)
		for {
			select {
			case m := <-lines:
				if want(m) {
					return m
				}
			case <-deadline:
				t.Fatal("the libzmq subscriber did not get the expected message")
			}
		}
	}
	waitMsg(func(m map[string]any) bool { return m["topic"] == "dynfw/list" })
	probePush(t, p.ingest, logins("45.155.205.10", 6))
	ev := waitMsg(func(m map[string]any) bool { return m["topic"] == "dynfw/event" })
	if pl := ev["payload"].(map[string]any); pl["event"] != "telnet_login" || pl["ip"] != "45.155.205.10" {
		t.Fatalf("event %v", ev)
	}
	d := waitMsg(func(m map[string]any) bool { return m["topic"] == "dynfw/delta" })
	if pl := d["payload"].(map[string]any); pl["delta"] != "positive" || pl["ip"] != "45.155.205.10" || pl["serial"].(float64) != 1 {
		t.Fatalf("delta %v", d)
	}
	l := waitMsg(func(m map[string]any) bool {
		return m["topic"] == "dynfw/list" && len(m["payload"].(map[string]any)["list"].([]any)) == 1
	})
	if pl := l["payload"].(map[string]any); pl["serial"].(float64) != 1 {
		t.Fatalf("list %v", l)
	}
	waitFor(t, 10*time.Second, "dynfw-client's file", func() bool {
		b, _ := os.ReadFile(file)
		return string(b) == "45.155.205.10\n"
	})
	if strings.Contains(clog.String(), "level=ERROR") {
		t.Fatalf("client errors:\n%s", clog.String())
	}
}

// TestCrashLosesAtMostTheLastSecond: events accepted more than a second
// before a SIGKILL survive; the server comes back with a new version and
// serial 0 so that clients reload, and the list is recomputed.
func TestCrashLosesAtMostTheLastSecond(t *testing.T) {
	testenv.Python(t)
	ports := [3]int{freePort(t), freePort(t), freePort(t)}
	data := t.TempDir()
	p := startSentinel(t, data, ports)
	probePush(t, p.ingest, logins("45.155.205.20", 7))
	probePush(t, p.ingest, []map[string]any{{"type": "ftp", "ip": "45.155.205.21", "action": "connect"}})
	waitFor(t, 10*time.Second, "the listing", func() bool { return explain(t, p, "45.155.205.20").Listed })
	// The list API shows the list as last published (every 300 ms here).
	var before listState
	waitFor(t, 10*time.Second, "the list API to show the listing", func() bool {
		before = currentList(t, p)
		return slices.Contains(before.List, "45.155.205.20")
	})
	time.Sleep(1500 * time.Millisecond) // past the journal's 1 s sync
	p.stop(t, syscall.SIGKILL)

	p2 := startSentinel(t, data, ports)
	ex := explain(t, p2, "45.155.205.20")
	if !ex.Listed || ex.Counts["telnet_login"] != 7 {
		t.Fatalf("after SIGKILL: %+v", ex)
	}
	if ex := explain(t, p2, "45.155.205.21"); ex.Counts["ftp_connect"] != 1 {
		t.Fatalf("after SIGKILL the connect is lost: %+v", ex)
	}
	after := currentList(t, p2)
	if after.Version == before.Version || after.Serial != 0 || fmt.Sprint(after.List) != fmt.Sprint(before.List) {
		t.Fatalf("before %+v, after %+v: want the same list with a new version and serial 0", before, after)
	}
	if !strings.Contains(p2.log.String(), "unclean stop") {
		t.Fatal("the restart did not report the unclean stop")
	}
	// A graceful stop now keeps version and serial.
	p2.stop(t, syscall.SIGTERM)
	p3 := startSentinel(t, data, ports)
	if again := currentList(t, p3); again.Version != after.Version || again.Serial != after.Serial || fmt.Sprint(again.List) != fmt.Sprint(after.List) {
		t.Fatalf("after a graceful restart %+v, want %+v", again, after)
	}
}

// TestQuickstart follows the README: run, watch with dynfw-client, emit
// a brute force, see it listed.
func TestQuickstart(t *testing.T) {
	ports := [3]int{freePort(t), freePort(t), freePort(t)}
	p := startSentinel(t, t.TempDir(), ports)
	// The greylist's index is one of the site's pages.
	resp, page := testenv.Get(t, "http://"+p.httpA+"/greylist-data/")
	if resp.StatusCode != 200 || !strings.Contains(page, `<nav class="nav"`) || !strings.Contains(page, `<a href="/greylist-data/" aria-current="page">Greylist</a>`) ||
		!strings.Contains(page, "<h1>Greylist data</h1>") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("/greylist-data/: %d %v\n%s", resp.StatusCode, resp.Header, page)
	}
	watch := exec.Command(filepath.Join(binDir, "dynfw-client"), "--backend", "print", "-s", "127.0.0.1", "-p", fmt.Sprint(ports[0]),
		"--cert-url", "http://"+p.httpA+"/dynfw.pub", "--key-dir", t.TempDir())
	out, _ := watch.StdoutPipe()
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { watch.Process.Signal(os.Interrupt); watch.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	<-lines // the first list: connected
	emit := exec.Command(filepath.Join(binDir, "sentinel"), "emit", "--ingest", "tcp://"+p.ingest, "--ip", "45.155.205.30", "--count", "5")
	if b, err := emit.CombinedOutput(); err != nil || !strings.Contains(string(b), "sent 5 telnet_login") {
		t.Fatalf("emit: %v\n%s", err, b)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, `"topic":"dynfw/delta"`) && strings.Contains(l, `"ip":"45.155.205.30"`) && strings.Contains(l, `"positive"`) {
				return
			}
		case <-deadline:
			t.Fatal("no positive delta printed")
		}
	}
}
