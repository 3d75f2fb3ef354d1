package main

// End-to-end tests: the dynfw-client binary and a libzmq publisher that
// behaves like the Turris server (testdata/turris_server.py) run in a private
// network namespace; the real kernel's nftables and ipset sets are checked.
// They need root; CI runs them as root and fails instead of skipping.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/firewall/fwtest"
	"github.com/dynfw/sentinel/internal/testenv"
)

// turris is the python publisher.
type turris struct {
	t     *testing.T
	stdin io.WriteCloser
	out   *bufio.Scanner
	port  int
	cert  string
}

func startTurris(t *testing.T, ns *fwtest.Netns, args ...string) *turris {
	t.Helper()
	py := testenv.Python(t)
	cmdArgs := append([]string{py, "testdata/turris_server.py", t.TempDir()}, args...)
	var cmd *exec.Cmd
	if ns != nil {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns.Name}, cmdArgs...)...)
	} else {
		cmd = exec.Command(cmdArgs[0], cmdArgs[1:]...)
	}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 64<<20)
	tr := &turris{t: t, stdin: stdin, out: sc}
	var ready struct {
		Port int    `json:"port"`
		Cert string `json:"cert"`
	}
	tr.read(&ready)
	tr.port, tr.cert = ready.Port, ready.Cert
	return tr
}

func (tr *turris) read(v any) {
	tr.t.Helper()
	if !tr.out.Scan() {
		tr.t.Fatal("publisher exited")
	}
	if err := json.Unmarshal(tr.out.Bytes(), v); err != nil {
		tr.t.Fatalf("publisher said %q: %v", tr.out.Text(), err)
	}
}

// do sends a command and waits for its answer.
func (tr *turris) do(cmd map[string]any) {
	tr.t.Helper()
	b, _ := json.Marshal(cmd)
	tr.stdin.Write(append(b, '\n'))
	var ans map[string]any
	tr.read(&ans)
}

// state returns the publisher's current addresses, in the client's
// element form (single addresses with /32 or /128).
func (tr *turris) state() []string {
	tr.t.Helper()
	tr.stdin.Write([]byte(`{"op":"state"}` + "\n"))
	var st struct {
		Addrs []string `json:"addrs"`
	}
	tr.read(&st)
	return normalize(st.Addrs)
}

func normalize(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if !strings.Contains(a, "/") {
			if strings.Contains(a, ":") {
				a += "/128"
			} else {
				a += "/32"
			}
		}
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// nftContents reads our table's sets (small sets only: never on a hot path).
func nftContents(t *testing.T, ns *fwtest.Netns, table string) []string {
	t.Helper()
	var all []string
	for _, set := range []string{"addr4", "addr6", "net4", "net6"} {
		out, err := ns.Try("nft", "-j", "list", "set", "inet", table, set)
		if err != nil {
			return nil // not created yet
		}
		var doc struct {
			Nftables []map[string]json.RawMessage `json:"nftables"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("nft json: %v", err)
		}
		for _, item := range doc.Nftables {
			raw, ok := item["set"]
			if !ok {
				continue
			}
			var s struct {
				Elem []json.RawMessage `json:"elem"`
			}
			json.Unmarshal(raw, &s)
			for _, e := range s.Elem {
				all = append(all, nftElem(t, e)...)
			}
		}
	}
	slices.Sort(all)
	return all
}

// nftElem turns one element of nft's JSON into prefixes.
func nftElem(t *testing.T, e json.RawMessage) []string {
	var s string
	if json.Unmarshal(e, &s) == nil {
		return normalize([]string{s})
	}
	var p struct {
		Prefix *struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
		Range []string `json:"range"`
	}
	json.Unmarshal(e, &p)
	switch {
	case p.Prefix != nil:
		return []string{fmt.Sprintf("%s/%d", p.Prefix.Addr, p.Prefix.Len)}
	case p.Range != nil:
		return []string{"range " + strings.Join(p.Range, "-")}
	}
	t.Fatalf("unknown nft element %s", e)
	return nil
}

func ipsetContents(t *testing.T, ns *fwtest.Netns, base string) []string {
	t.Helper()
	var all []string
	for _, set := range []string{base, base + "-v6", base + "-net4", base + "-net6"} {
		out, err := ns.Try("ipset", "list", set)
		if err != nil {
			continue
		}
		_, members, _ := strings.Cut(out, "Members:\n")
		for _, l := range strings.Split(members, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				all = append(all, l)
			}
		}
	}
	return normalize(all)
}

// client runs the dynfw-client binary inside the namespace.
func startClientIn(t *testing.T, ns *fwtest.Netns, args ...string) *proc {
	t.Helper()
	full := append([]string{"netns", "exec", ns.Name, binary, "--key-dir", t.TempDir(), "--batch-interval", "20ms"}, args...)
	return startProc(t, exec.Command("ip", full...), 10*time.Second)
}

func waitEqual(t *testing.T, what string, d time.Duration, got func() []string, want []string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		g := got()
		if slices.Equal(g, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: kernel holds %d elements, want %d\nmissing %v\nextra %v", what, len(g), len(want), diff(want, g), diff(g, want))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
			if len(out) == 10 {
				break
			}
		}
	}
	return out
}

// freePort reserves a loopback port for the client's metrics listener.
var freePort = testenv.FreePort

// scenario drives the publisher through the situations the client must
// survive and checks the kernel after each.
func scenario(t *testing.T, tr *turris, contents func() []string) {
	waitEqual(t, "first list", 20*time.Second, contents, tr.state())
	tr.do(map[string]any{"op": "add", "ips": []string{"203.0.113.1", "203.0.113.2", "2001:db8::7", "198.18.0.0/15"}})
	tr.do(map[string]any{"op": "del", "ips": []string{"11.0.0.5"}})
	waitEqual(t, "deltas", 10*time.Second, contents, tr.state())
	tr.do(map[string]any{"op": "dup"})
	// Lost deltas: the next delta shows the gap, a list repairs it.
	tr.do(map[string]any{"op": "lose", "n": 3})
	tr.do(map[string]any{"op": "add", "ips": []string{"203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.13"}})
	waitEqual(t, "forced resync", 20*time.Second, contents, tr.state())
	// The server resets its serial and version.
	tr.do(map[string]any{"op": "reset"})
	tr.do(map[string]any{"op": "add", "ips": []string{"203.0.113.20"}})
	tr.do(map[string]any{"op": "del", "ips": []string{"203.0.113.1", "198.18.0.0/15"}})
	waitEqual(t, "serial reset", 20*time.Second, contents, tr.state())
	tr.do(map[string]any{"op": "events", "n": 100}) // events are not the client's business
}

func TestEndToEndNftables(t *testing.T) {
	ns := fwtest.NewNetns(t, "nft")
	tr := startTurris(t, ns, "--initial", "2000", "--list-interval", "0.5")
	mport := freePort(t)
	c := startClientIn(t, ns, "-s", "127.0.0.1", "-p", fmt.Sprint(tr.port), "-c", tr.cert, "--backend", "nftables",
		"--metrics", fmt.Sprintf("127.0.0.1:%d", mport))
	scenario(t, tr, func() []string { return nftContents(t, ns, "dynfw") })
	// Metrics are served inside the namespace.
	out := ns.Run(t, "python3", "-c", fmt.Sprintf("import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:%d/metrics').read().decode())", mport))
	for _, want := range []string{"dynfw_client_set_elements{family=\"ipv4\",kind=\"address\"}", "dynfw_client_resyncs_total{reason=\"gap not filled in time\"} 1", "dynfw_client_resyncs_total{reason=\"serial went back\"} 1", "dynfw_client_connected 1", "dynfw_client_apply_duration_seconds_count"} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	// SIGTERM without --keep-rules removes the table.
	c.cmd.Process.Signal(os.Interrupt)
	if err := waitExit(t, c, 10*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, c.stderr.String())
	}
	if out, err := ns.Try("nft", "list", "table", "inet", "dynfw"); err == nil {
		t.Fatalf("table left behind:\n%s", out)
	}
}

func TestEndToEndIpset(t *testing.T) {
	ns := fwtest.NewNetns(t, "ipset", "iptables")
	tr := startTurris(t, ns, "--initial", "2000", "--list-interval", "0.5")
	startClientIn(t, ns, "-s", "127.0.0.1", "-p", fmt.Sprint(tr.port), "-c", tr.cert, "--ipset", "dynfwtest", "--ipset-rules")
	scenario(t, tr, func() []string { return ipsetContents(t, ns, "dynfwtest") })
	if out := ns.Run(t, "iptables", "-S"); !strings.Contains(out, "match-set dynfwtest src") {
		t.Fatalf("no iptables rule:\n%s", out)
	}
}

func TestEndToEndFile(t *testing.T) {
	tr := startTurris(t, nil, "--initial", "500", "--list-interval", "0.5")
	out := filepath.Join(t.TempDir(), "blocked.txt")
	startClient(t, "-s", "127.0.0.1", "-p", fmt.Sprint(tr.port), "-c", tr.cert, "--backend", "file", "--output", out, "--batch-interval", "20ms")
	scenario(t, tr, func() []string {
		b, _ := os.ReadFile(out)
		return normalize(strings.Fields(string(b)))
	})
}

// TestServerOutageKeepsSet: the server disappears for a while and comes back
// with a new version and other contents; the set stays enforced throughout
// and converges afterwards.
func TestServerOutageKeepsSet(t *testing.T) {
	ns := fwtest.NewNetns(t, "nft")
	tr := startTurris(t, ns, "--initial", "3000", "--list-interval", "0.5")
	startClientIn(t, ns, "-s", "127.0.0.1", "-p", fmt.Sprint(tr.port), "-c", tr.cert, "--backend", "nftables", "--keep-rules", "--heartbeat", "1s")
	contents := func() []string { return nftContents(t, ns, "dynfw") }
	before := tr.state()
	waitEqual(t, "first list", 20*time.Second, contents, before)
	tr.do(map[string]any{"op": "stop"})
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		if got := contents(); !slices.Equal(got, before) {
			t.Fatalf("set changed while the server was away: %d elements, want %d", len(got), len(before))
		}
		time.Sleep(200 * time.Millisecond)
	}
	tr.do(map[string]any{"op": "reset"})
	tr.do(map[string]any{"op": "lose", "n": 2})
	tr.do(map[string]any{"op": "add", "ips": []string{"192.0.2.55"}})
	tr.do(map[string]any{"op": "del", "ips": []string{"11.0.0.9"}})
	tr.do(map[string]any{"op": "start"})
	waitEqual(t, "after the outage", 30*time.Second, contents, tr.state())
}
