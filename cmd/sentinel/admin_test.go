package main

// Tests of the operator's commands and of emit against a `sentinel run`
// in this process.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/scorecard"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
)

const cliAdminToken = "cli-admin-token-0123456789"

// runProc is a `sentinel run` in this process.
type runProc struct {
	data, http, ingest string
	log                *lockedBuf
	stop               func() int
}

func startRunCmd(t *testing.T, extra ...string) *runProc {
	t.Helper()
	p := &runProc{data: t.TempDir(), log: &lockedBuf{},
		http: fmt.Sprintf("127.0.0.1:%d", freePort(t)), ingest: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))}
	args := append([]string{"run", "--config", "/dev/null", "--data", p.data, "--http-listen", p.http,
		"--dynfw-listen", fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)), "--ingest-listen", p.ingest}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() { code <- run(ctx, args, io.Discard, p.log) }()
	stopped := false
	p.stop = func() int {
		stopped = true
		cancel()
		select {
		case c := <-code:
			return c
		case <-time.After(30 * time.Second):
			t.Fatal("sentinel run did not stop")
			return -1
		}
	}
	t.Cleanup(func() {
		if !stopped {
			p.stop()
		}
		if t.Failed() {
			t.Logf("sentinel run log:\n%s", p.log.String())
		}
	})
	waitFor(t, 15*time.Second, "sentinel run to start", func() bool {
		select {
		case c := <-code:
			t.Fatalf("sentinel run exited with %d:\n%s", c, p.log.String())
		default:
		}
		resp, err := http.Get("http://" + p.http + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return strings.Contains(p.log.String(), "sentinel running")
	})
	return p
}

// cli runs a command of the binary in this process and fails the test
// unless it exits with want.
func cli(t *testing.T, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	code, out, errs := runCLI(t, args...)
	if code != want {
		t.Fatalf("sentinel %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errs)
	}
	return out, errs
}

// explainJSON asks the server (over its socket) about ip.
func explainJSON(t *testing.T, data, ip string) *scorecard.Explanation {
	t.Helper()
	out, _ := cli(t, 0, "explain", ip, "--data", data, "--json")
	var ex *scorecard.Explanation
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("explain --json: %v\n%s", err, out)
	}
	return ex
}

// TestOperatorCommands: emit of each kind reaches a running server and
// shows where it should; list, block, unblock, clear, explain and probes
// work on the control socket without a token and over HTTP with one.
func TestOperatorCommands(t *testing.T) {
	p := startRunCmd(t, "--admin-token", cliAdminToken)
	d := p.data

	// The startup log says where to go, with a usable address.
	if want := "url=http://" + p.http + "/"; !strings.Contains(p.log.String(), want) {
		t.Errorf("startup log without %s:\n%s", want, p.log.String())
	}
	fi, err := os.Stat(filepath.Join(d, control.SocketName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", fi, err)
	}

	// A second server on the same data directory refuses.
	code, _, errs := runCLI(t, "run", "--config", "/dev/null", "--data", d, "--http-listen", "127.0.0.1:0",
		"--dynfw-listen", "tcp://127.0.0.1:0", "--ingest-listen", "tcp://127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, "another sentinel server runs on this data directory") {
		t.Fatalf("second server: exit %d, %s", code, errs)
	}

	// Logins through the probe ingest list the address.
	out, _ := cli(t, 0, "emit", "--ip", "45.155.205.40", "--count", "5", "--ingest", p.ingest)
	if !strings.Contains(out, "sent 5 telnet_login event(s) for 45.155.205.40") {
		t.Fatalf("emit: %s", out)
	}
	waitFor(t, 10*time.Second, "the logins to list the address", func() bool {
		ex := explainJSON(t, d, "45.155.205.40")
		return ex != nil && ex.Listed && ex.Counts["telnet_login"] == 5
	})

	// Port scans as fwlogs packets: the detector reports a small and a
	// big one (each once per window), which score 6 together.
	out, _ = cli(t, 0, "emit", "--ip", "45.155.205.41", "--scan", "big", "--count", "2", "--ingest", p.ingest)
	if !strings.Contains(out, "2 scan(s) of 25 ports, 50 fwlogs packets") {
		t.Fatalf("emit --scan: %s", out)
	}
	waitFor(t, 10*time.Second, "the scan", func() bool {
		ex := explainJSON(t, d, "45.155.205.41")
		return ex != nil && ex.Counts["fwlogs_big_port_scan"] == 1 && ex.Counts["fwlogs_small_port_scan"] == 1 && ex.Score > 5.99 && ex.Score <= 6
	})
	var l control.List
	out, _ = cli(t, 0, "list", "--data", d, "--json")
	json.Unmarshal([]byte(out), &l)
	if l.Listed != 1 || len(l.Decisions) != 1 || l.Decisions[0].Key.String() != "45.155.205.40/32" {
		t.Fatalf("list: %s", out)
	}

	// The other probes' events.
	for _, ev := range []string{"haas_logged_active", "ssh_login_failed", "http_message", "smtp_invalid", "fwlogs_packet"} {
		cli(t, 0, "emit", "--ip", "45.155.205.42", "--event", ev, "--ingest", p.ingest)
	}
	waitFor(t, 10*time.Second, "every event", func() bool {
		ex := explainJSON(t, d, "45.155.205.42")
		return ex != nil && len(ex.Counts) == 4 // the packet is no event
	})

	// Manual decisions on the socket.
	out, _ = cli(t, 0, "block", "45.155.205.50", "--for", "2h", "--reason", "abuse report", "--data", d)
	if !strings.HasPrefix(out, "blocked 45.155.205.50/32 until ") {
		t.Fatalf("block: %s", out)
	}
	cli(t, 0, "unblock", "--data", d, "45.155.205.40", "--reason", "a partner")
	out, _ = cli(t, 0, "list", "--data", d)
	for _, want := range []string{"45.155.205.50/32  blocked", "abuse report", "45.155.205.40/32  unblocked", "a partner", "2 listed", "2 manual overrides"} {
		if !strings.Contains(out, want) {
			t.Errorf("list without %q:\n%s", want, out)
		}
	}
	out, _ = cli(t, 0, "explain", "45.155.205.50", "--data", d)
	if !strings.Contains(out, "listed since") || !strings.Contains(out, "override      block until") {
		t.Errorf("explain:\n%s", out)
	}
	out, _ = cli(t, 0, "clear", "45.155.205.50", "--data", d)
	if !strings.Contains(out, "cleared the override of 45.155.205.50/32") {
		t.Errorf("clear: %s", out)
	}
	_, errs = cli(t, 1, "clear", "45.155.205.50", "--data", d)
	if !strings.Contains(errs, "no override") {
		t.Errorf("clear twice: %s", errs)
	}
	cli(t, 2, "block", "not-an-address", "--data", d)
	out, _ = cli(t, 0, "explain", "192.0.2.200", "--data", d)
	if !strings.Contains(out, "knows nothing") {
		t.Errorf("explain of a stranger: %s", out)
	}
	out, _ = cli(t, 0, "probes", "--data", d)
	if !strings.Contains(out, "zmq:127.0.0.1") {
		t.Errorf("probes:\n%s", out)
	}

	// Over HTTP with the token, from the flag or the environment.
	base := "http://" + p.http
	cli(t, 0, "block", "45.155.205.51", "--server", base, "--admin-token", cliAdminToken)
	t.Setenv("SENTINEL_ADMIN_TOKEN", cliAdminToken)
	out, _ = cli(t, 0, "list", "--server", base)
	if !strings.Contains(out, "45.155.205.51/32  blocked") {
		t.Errorf("list over HTTP:\n%s", out)
	}
	_, errs = cli(t, 1, "list", "--server", base, "--admin-token", "wrong")
	if !strings.Contains(errs, "wrong admin token") {
		t.Errorf("wrong token: %s", errs)
	}

	// A router's events for My Devices, through the control socket.
	token := devicetoken.FromBytes([28]byte{4, 2})
	out, _ = cli(t, 0, "emit", "--ip", "45.155.205.43", "--device-token", token, "--serial", "0000000D30001234", "--data", d)
	if !strings.Contains(out, "from the router 0000000D30001234") {
		t.Fatalf("emit --device-token: %s", out)
	}
	// Events placed five hours back.
	out, _ = cli(t, 0, "emit", "--ip", "45.155.205.44", "--event", "haas_logged", "--at", "5h", "--count", "3", "--spread", "1h", "--data", d)
	if !strings.Contains(out, "placed from") {
		t.Fatalf("emit --at: %s", out)
	}
	st, err := backend.Open(context.Background(), filepath.Join(d, "stats.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waitFor(t, 10*time.Second, "the device and the placed incidents in the store", func() bool {
		devs, err := st.Devices(context.Background(), []string{token})
		if err != nil || len(devs) != 1 || devs[0].Serial != "0000000D30001234" {
			return false
		}
		now := time.Now()
		rows, err := st.Query(context.Background(), store.Query{Table: store.Incidents, Precision: store.Raw,
			From: now.Add(-6*time.Hour - time.Minute), To: now.Add(-4*time.Hour + time.Minute), IP: netip.MustParseAddr("45.155.205.44"),
			GroupBy: []store.Dim{store.DimTrap}})
		return err == nil && len(rows) == 1 && rows[0].Value == 3
	})

	// Commands that must know the server runs.
	hibp := filepath.Join(t.TempDir(), "hibp.txt")
	os.WriteFile(hibp, []byte("7C4A8D09CA3762AF61E59520943DC26494F8941B:5\n"), 0o644)
	_, errs = cli(t, 0, "passwords", "import", "--data", d, hibp)
	if !strings.Contains(errs, "a sentinel server runs on "+d) {
		t.Errorf("passwords import into a running server's directory: %s", errs)
	}
	out, _ = cli(t, 0, "stats", "status", "--config", "/dev/null", "--data", d)
	if !strings.Contains(out, "backend") {
		t.Errorf("stats status: %s", out)
	}

	if code := p.stop(); code != 0 {
		t.Fatalf("sentinel run exited with %d", code)
	}
	if _, err := os.Stat(filepath.Join(d, control.SocketName)); !os.IsNotExist(err) {
		t.Errorf("control socket after the stop: %v", err)
	}
	_, errs = cli(t, 1, "list", "--data", d)
	if !strings.Contains(errs, "not running") {
		t.Errorf("list without a server: %s", errs)
	}
}

// TestEmitRefusals: emit refuses, with exit 2 and a reason, what the
// server would drop.
func TestEmitRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ip", "45.155.205.9", "--type", "ssh", "--action", "login"}, `unknown event "ssh_login"`},
		{[]string{"--ip", "45.155.205.9", "--action", "flood", "--type", "telnet"}, `unknown event "telnet_flood"`},
		{[]string{"--ip", "45.155.205.9", "--event", "fwlogs_big_port_scan"}, "derived by the server"},
		{[]string{"--ip", "45.155.205.9", "--count", "-3"}, "count -3"},
		{[]string{"--ip", "45.155.205.9", "--count", "0"}, "count 0"},
		{[]string{}, "--ip is required"},
		{[]string{"--ip", "nope"}, "not an IP address"},
		{[]string{"--ip", "45.155.205.9", "--device-token", "abc"}, "device_token must be 64 characters long"},
		{[]string{"--ip", "45.155.205.9", "--device-token", devicetoken.FromBytes([28]byte{1})[:63] + "0"}, "device_token crc check failed"},
		{[]string{"--ip", "45.155.205.9", "--scan", "huge"}, "small or big"},
		{[]string{"--ip", "45.155.205.9", "--at", "100h"}, "places events from 71h0m0s ago"},
		{[]string{"--ip", "45.155.205.9", "--at", "1h", "--ingest", "tcp://127.0.0.1:7088"}, "--ingest goes without --at"},
		{[]string{"--ip", "45.155.205.9", "--mqtt", "tcp://127.0.0.1:1883"}, "--mqtt needs --device-token"},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"emit"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "Usage: sentinel emit") || strings.Contains(stdout, "sent") {
			t.Errorf("emit %s: exit %d, stdout %q, stderr %q; want 2 and %q", strings.Join(tc.args, " "), code, stdout, stderr, tc.want)
		}
	}
}

// TestEmitUnreachable: against no server, emit says so and exits 1 at
// once, or within its timeout (2 s) when something listens but does not
// answer; the bound here is loose.
func TestEmitUnreachable(t *testing.T) {
	t.Parallel()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	refused := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	for _, args := range [][]string{
		{"--ingest", refused},
		{"--ingest", "tcp://" + silent.Addr().String()},
		{"--at", "1h", "--data", t.TempDir()},
		{"--at", "1h", "--server", "http://" + silent.Addr().String()},
	} {
		start := time.Now()
		code, stdout, stderr := runCLI(t, append([]string{"emit", "--ip", "45.155.205.9"}, args...)...)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("emit %v took %v", args, took)
		}
		if code != 1 || stdout != "" || !(strings.Contains(stderr, "cannot reach") || strings.Contains(stderr, "not running")) {
			t.Errorf("emit %v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}
