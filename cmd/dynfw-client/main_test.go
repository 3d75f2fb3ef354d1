package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/testenv"
	"github.com/dynfw/sentinel/zmtp"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dynfw-client-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "dynfw-client")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running dynfw-client with its output collected.
type proc struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, valid after done
}

type syncBuffer = testenv.Buffer

func startClient(t *testing.T, args ...string) *proc {
	t.Helper()
	return startProc(t, exec.Command(binary, append([]string{"--key-dir", t.TempDir()}, args...)...), 5*time.Second)
}

// startProc starts cmd (a dynfw-client) and collects its output. At the
// test's end it is interrupted, and killed if it has not exited after grace.
func startProc(t *testing.T, cmd *exec.Cmd, grace time.Duration) *proc {
	t.Helper()
	stdout, _ := cmd.StdoutPipe()
	p := &proc{cmd: cmd, lines: make(chan string, 1000), stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(grace):
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("dynfw-client stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *proc) line(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("dynfw-client exited; stderr:\n%s", p.stderr.String())
		}
		return l
	case <-time.After(d):
		t.Fatalf("no output within %v", d)
	}
	return ""
}

// goServer is a DynFW publisher built on this project's transport.
func goServer(t *testing.T) (*zmtp.Socket, string, string) {
	t.Helper()
	cert, err := zcert.New()
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(t.TempDir(), "server.pub")
	if err := cert.SavePublic(certFile); err != nil {
		t.Fatal(err)
	}
	pub, err := zmtp.NewSocket(zmtp.PUB, zmtp.Options{Curve: &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	addr, err := pub.Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr.String())
	return pub, port, certFile
}

func waitSubscribed(t *testing.T, pub *zmtp.Socket) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ps := pub.Peers(); len(ps) == 1 && len(ps[0].Subscriptions) == 1 {
			if ps[0].Subscriptions[0] != "dynfw/" {
				t.Fatalf("client subscribed to %q, want dynfw/", ps[0].Subscriptions)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("client did not subscribe")
}

func TestPrintAgainstGoServer(t *testing.T) {
	pub, port, certFile := goServer(t)
	p := startClient(t, "-s", "127.0.0.1", "-p", port, "-c", certFile, "--backend", "print")
	waitSubscribed(t, pub)
	ctx := context.Background()
	msgs := []dynfw.Message{
		&dynfw.List{Version: 1700000000, Serial: 7, Addrs: mustPrefixes("1.2.3.4", "2001:db8::1"), TS: 1700000001},
		&dynfw.Delta{Serial: 8, Op: dynfw.Positive, Addr: mustPrefixes("5.6.7.8")[0], TS: 1700000002},
		&dynfw.Event{Name: "telnet_login", Addr: mustPrefixes("9.9.9.9")[0].Addr(), TS: 1700000003},
	}
	for _, m := range msgs {
		pub.Send(ctx, zmtp.Message{[]byte(m.Topic()), m.AppendMsgpack(nil)})
	}
	// A malformed payload is skipped with a warning; the next one prints.
	pub.Send(ctx, zmtp.Message{[]byte("dynfw/delta"), {0xc1}})
	pub.Send(ctx, zmtp.Message{[]byte("dynfw/delta"), (&dynfw.Delta{Serial: 9, Op: dynfw.Negative, Addr: mustPrefixes("5.6.7.8")[0], TS: 1700000004}).Marshal()})
	want := []string{
		`{"topic":"dynfw/list","payload":{"version":1700000000,"serial":7,"list":["1.2.3.4","2001:db8::1"],"ts":1700000001}}`,
		`{"topic":"dynfw/delta","payload":{"serial":8,"delta":"positive","ip":"5.6.7.8","ts":1700000002}}`,
		`{"topic":"dynfw/event","payload":{"event":"telnet_login","ip":"9.9.9.9","ts":1700000003}}`,
		`{"topic":"dynfw/delta","payload":{"serial":9,"delta":"negative","ip":"5.6.7.8","ts":1700000004}}`,
	}
	for _, w := range want {
		if got := p.line(t, 5*time.Second); got != w {
			t.Fatalf("got  %s\nwant %s", got, w)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.stderr.String(), "ignoring message") {
		if time.Now().After(deadline) {
			t.Fatalf("malformed payload not reported: %s", p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		p, err := dynfw.ParseAddr(s, false)
		if err != nil {
			panic(err)
		}
		out[i] = p
	}
	return out
}

// TestPrintAgainstLibzmqServer runs the client against a libzmq CURVE
// publisher whose certificate was written by pyzmq, as the Turris server's
// is, and served over HTTP as --cert-url.
func TestPrintAgainstLibzmqServer(t *testing.T) {
	py := testenv.Python(t)
	cmd := exec.Command(py, "testdata/pypub.py", t.TempDir())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	next := func() map[string]string {
		if !sc.Scan() {
			t.Fatal("python publisher exited")
		}
		var m map[string]string
		json.Unmarshal(sc.Bytes(), &m)
		return m
	}
	ready := next()
	certPEM, err := os.ReadFile(ready["cert"])
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(certPEM) }))
	defer web.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ready["endpoint"], "tcp://"))
	p := startClient(t, "--server", "127.0.0.1", "--port", port, "--cert-url", web.URL, "--backend", "print")
	if sub := next(); sub["topic"] != "dynfw/" {
		t.Fatalf("subscription %v", sub)
	}
	send := func(jsonLine string) {
		stdin.Write([]byte(jsonLine + "\n"))
		next()
	}
	// Key order as written here is the order msgpack-python packs.
	send(`{"topic": "dynfw/delta", "payload": {"serial": 70000, "delta": "positive", "ip": "10.0.0.1", "ts": 1700000000, "extra": [1, "x"]}}`)
	// bin strings and a wide integer encoding, as other publishers may send
	send(`{"topic": "dynfw/event", "raw": "83a56576656e74c40b6674705f636f6e6e656374a26970c407312e322e332e34a27473cf0000000000000005"}`)
	for _, w := range []string{
		`{"topic":"dynfw/delta","payload":{"serial":70000,"delta":"positive","ip":"10.0.0.1","ts":1700000000,"extra":[1,"x"]}}`,
		`{"topic":"dynfw/event","payload":{"event":"ftp_connect","ip":"1.2.3.4","ts":5}}`,
	} {
		if got := p.line(t, 10*time.Second); got != w {
			t.Fatalf("got  %s\nwant %s", got, w)
		}
	}
}

func TestWrongServerKeyExits(t *testing.T) {
	_, port, _ := goServer(t)
	wrong := filepath.Join("..", "..", "zmtp", "zcert", "testdata", "dynfw.pub") // the Turris key, not this server's
	start := time.Now()
	p := startClient(t, "-s", "127.0.0.1", "-p", port, "-c", wrong, "--backend", "print")
	err := waitExit(t, p, 10*time.Second)
	if err == nil {
		t.Fatal("exit status 0 with a wrong server key")
	}
	if msg := p.stderr.String(); !strings.Contains(msg, "does not match") {
		t.Fatalf("unclear message: %s", msg)
	}
	t.Logf("exited after %v", time.Since(start).Round(time.Millisecond))
}

func TestUnreachableServerExits(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	p := startClient(t, "-s", "127.0.0.1", "-p", port, "-c", filepath.Join("..", "..", "zmtp", "zcert", "testdata", "dynfw.pub"), "--start-timeout", "2s", "--backend", "print")
	if err := waitExit(t, p, 10*time.Second); err == nil {
		t.Fatal("exit status 0 without a server")
	}
	if msg := p.stderr.String(); !strings.Contains(msg, "cannot connect") || !strings.Contains(msg, "refused") {
		t.Fatalf("unclear message: %s", msg)
	}
}

func TestUnreachableCertURLExits(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	url := "http://" + ln.Addr().String() + "/dynfw.pub"
	ln.Close()
	p := startClient(t, "-s", "127.0.0.1", "--cert-url", url, "--start-timeout", "2s", "--backend", "print")
	if err := waitExit(t, p, 10*time.Second); err == nil {
		t.Fatal("exit status 0 without a certificate")
	}
	if msg := p.stderr.String(); !strings.Contains(msg, "server certificate") {
		t.Fatalf("unclear message: %s", msg)
	}
}

func TestRetryKeepsTryingUntilServerAppears(t *testing.T) {
	cert, _ := zcert.New()
	certFile := filepath.Join(t.TempDir(), "server.pub")
	cert.SavePublic(certFile)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	p := startClient(t, "-s", "127.0.0.1", "-p", port, "-c", certFile, "--retry", "--start-timeout", "1s", "--backend", "print")
	time.Sleep(2 * time.Second) // past the start timeout: --retry keeps it alive
	select {
	case <-p.done:
		t.Fatalf("exited with --retry: %v", p.err)
	default:
	}
	pub, err := zmtp.NewSocket(zmtp.PUB, zmtp.Options{Curve: &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if _, err := pub.Listen("tcp://" + addr); err != nil {
		t.Fatal(err)
	}
	waitSubscribed(t, pub)
	pub.Send(context.Background(), zmtp.Message{[]byte("dynfw/event"), (&dynfw.Event{Name: "x", Addr: mustPrefixes("1.1.1.1")[0].Addr(), TS: 1}).Marshal()})
	if got := p.line(t, 5*time.Second); !strings.Contains(got, `"ip":"1.1.1.1"`) {
		t.Fatalf("got %s", got)
	}
}

func TestUsageErrors(t *testing.T) {
	var stderr bytes.Buffer
	for _, args := range [][]string{{"--backend", "nope"}, {"-p", "70000"}, {"extra"}} {
		stderr.Reset()
		if code := run(context.Background(), args, io.Discard, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

func waitExit(t *testing.T, p *proc, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("still running after %v", d)
	}
	return nil
}
