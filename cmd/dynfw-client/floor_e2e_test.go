package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/firewall/fwtest"
	"github.com/dynfw/sentinel/internal/testenv"
)

// TestEndToEndFloor: a malicious publisher (valid CURVE key, libzmq) lists
// and sends as deltas everything that would cut a router off: the whole
// address space, loopback, link-local, multicast, private space, the 6to4
// form of loopback, its own address and the router's gateway. The real
// dynfw-client with the nftables backend runs in a network namespace whose
// only way out is a veth pair to the publisher's namespace, through its
// default gateway. Afterwards loopback, the server and the gateway still
// answer, none of the refused entries is in the kernel's sets, the
// legitimate entries of the same list and deltas are, and /metrics counts
// every reason; each refused entry is logged once though lists repeat.
func TestEndToEndFloor(t *testing.T) {
	cns := fwtest.NewNetns(t, "nft")
	pns := fwtest.NewNetns(t)
	py := testenv.Python(t)
	cns.Run(t, "ip", "link", "add", "vc", "type", "veth", "peer", "name", "vp", "netns", pns.Name)
	for _, c := range [][]string{
		{"addr", "add", "198.51.100.2/24", "dev", "vc"},
		{"addr", "add", "2001:db8:1::2/64", "dev", "vc", "nodad"},
		{"link", "set", "vc", "up"},
	} {
		cns.Run(t, "ip", c...)
	}
	for _, c := range [][]string{
		{"addr", "add", "198.51.100.1/24", "dev", "vp"},   // the server
		{"addr", "add", "198.51.100.254/24", "dev", "vp"}, // the client's gateway
		{"addr", "add", "2001:db8:1::1/64", "dev", "vp", "nodad"},
		{"addr", "add", "2001:db8:1::fe/64", "dev", "vp", "nodad"},
		{"link", "set", "vp", "up"},
	} {
		pns.Run(t, "ip", c...)
	}
	cns.Run(t, "ip", "route", "add", "default", "via", "198.51.100.254")
	cns.Run(t, "ip", "-6", "route", "add", "default", "via", "2001:db8:1::fe")

	// What the publisher lists first, and sends as deltas afterwards.
	badList := []string{"0.0.0.0/0", "::/0", "127.0.0.0/8", "::1", "fe80::/10", "ff00::/8", "224.0.0.0/4", "10.0.0.0/8", "198.51.100.1"}
	goodList := []string{"45.1.2.3", "198.51.100.77", "11.0.0.0/16", "2a00:1450::/32", "2001:db8:2::5"}
	badDeltas := []string{"2002:7f00:1::1", "198.51.100.254", "2001:db8:1::fe", "198.51.100.0/24", "2.0.0.0/7",
		"100.64.0.0/10", "fd00::/16", "169.254.0.0/16", "64:ff9b::7f00:1"}
	goodDeltas := []string{"46.1.1.1", "2a01:4f8::1", "12.0.0.0/8"}
	file := filepath.Join(t.TempDir(), "initial")
	os.WriteFile(file, []byte(strings.Join(append(badList, goodList...), "\n")+"\n"), 0o644)

	tr := startTurris(t, pns, "--initial-file", file, "--list-interval", "0.2", "--bind", "198.51.100.1")
	mport := freePort(t)
	c := startClientIn(t, cns, "-s", "198.51.100.1", "-p", fmt.Sprint(tr.port), "-c", tr.cert, "--backend", "nftables",
		"--metrics", fmt.Sprintf("127.0.0.1:%d", mport), "--nft-forward")
	contents := func() []string { return nftContents(t, cns, "dynfw") }
	waitEqual(t, "first list", 20*time.Second, contents, normalize(goodList))

	tr.do(map[string]any{"op": "add", "ips": append(badDeltas, goodDeltas...)})
	good := normalize(append(goodList, goodDeltas...))
	waitEqual(t, "deltas", 10*time.Second, contents, good)
	// Lost deltas make the client fetch the list again: the refusals
	// repeat, their log lines must not.
	metrics := func() string {
		return cns.Run(t, py, "-c", fmt.Sprintf("import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:%d/metrics').read().decode())", mport))
	}
	lists := func() int {
		m := regexp.MustCompile(`(?m)^dynfw_client_lists_applied_total (\d+)`).FindStringSubmatch(metrics())
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	before := lists()
	tr.do(map[string]any{"op": "lose", "n": 1})
	tr.do(map[string]any{"op": "add", "ips": []string{"47.0.0.1", "47.0.0.2"}})
	good = normalize(append(append(goodList, goodDeltas...), "47.0.0.1", "47.0.0.2"))
	waitEqual(t, "after a resync", 20*time.Second, contents, good)
	deadline := time.Now().Add(10 * time.Second)
	for lists() <= before {
		if time.Now().After(deadline) {
			t.Fatal("no list applied after the lost delta")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Loopback, the server and the gateway still answer (a TCP reset
	// answers too: what matters is that the reply is not dropped).
	out := cns.Run(t, py, "-c", `
import json, socket, sys
res = {}
for host, port in [("127.0.0.1", 1), ("::1", 1), ("198.51.100.1", int(sys.argv[1])), ("198.51.100.254", 1), ("2001:db8:1::fe", 1), ("2001:db8:1::1", 1)]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        res[host] = "open"
    except ConnectionRefusedError:
        res[host] = "refused"
    except OSError as e:
        res[host] = "unreachable: %s" % e
print(json.dumps(res))
`, fmt.Sprint(tr.port))
	var reach map[string]string
	if err := json.Unmarshal([]byte(out), &reach); err != nil {
		t.Fatalf("reachability: %v: %s", err, out)
	}
	for host, how := range reach {
		if how != "open" && how != "refused" {
			t.Errorf("%s is cut off: %s", host, how)
		}
	}
	if reach["198.51.100.1"] != "open" {
		t.Errorf("the server's port does not answer: %s", reach["198.51.100.1"])
	}

	m := metrics()
	for _, reason := range []string{"unspecified", "loopback", "link-local", "multicast", "private", "server", "gateway", "min-prefix", "cgnat", "unique-local"} {
		re := regexp.MustCompile(`(?m)^dynfw_client_refused_entries_total\{reason="` + reason + `"\} ([1-9]\d*)$`)
		if !re.MatchString(m) {
			t.Errorf("no refusal counted for %q", reason)
		}
	}
	for _, want := range []string{`dynfw_client_protected_addresses{kind="gateway"} 2`, `dynfw_client_protected_addresses{kind="server"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", m)
	}
	logs := c.stderr.String()
	for _, b := range append(badList, badDeltas...) {
		p := normalize([]string{b})[0]
		if n := strings.Count(logs, "entry="+p+" "); n != 1 {
			t.Errorf("%s logged %d times, want once", p, n)
		}
	}
}
