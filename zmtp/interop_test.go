package zmtp

// Interop tests against libzmq 4.x through Debian's python3-zmq. They skip
// on a machine without it and fail in CI (SENTINEL_STRICT_TESTS).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/testenv"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

type pyFrame struct {
	Hex    string `json:"hex"`
	Len    int    `json:"len"`
	Sha256 string `json:"sha256"`
}

type pyEvent struct {
	Ev       string    `json:"ev"`
	Endpoint string    `json:"endpoint"`
	Key      string    `json:"key"`
	Event    string    `json:"event"`
	Value    any       `json:"value"`
	Frames   []pyFrame `json:"frames"`
}

// pyPeer is a libzmq socket in a python3 process (testdata/zmqpeer.py).
type pyPeer struct {
	t        *testing.T
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	events   chan pyEvent
	mu       sync.Mutex
	monitor  []string
	endpoint string
	key      string // CURVE client public key, Z85
}

func startPy(t *testing.T, args ...string) *pyPeer {
	t.Helper()
	py := testenv.Python(t)
	cmd := exec.Command(py, append([]string{"testdata/zmqpeer.py"}, args...)...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &pyPeer{t: t, cmd: cmd, stdin: stdin, events: make(chan pyEvent, 10000)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e pyEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				continue
			}
			if e.Ev == "monitor" {
				p.mu.Lock()
				p.monitor = append(p.monitor, e.Event)
				p.mu.Unlock()
				continue
			}
			p.events <- e
		}
		close(p.events)
	}()
	t.Cleanup(func() {
		p.op(map[string]any{"op": "quit"})
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
			// libzmq did not shut down: the peer's context still
			// waited for a socket.
			t.Errorf("python peer still running 5 s after quit; killed")
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("python stderr:\n%s", stderr.String())
		}
	})
	for {
		e := p.next(t, 10*time.Second)
		switch e.Ev {
		case "client-key":
			p.key = e.Key
			continue
		case "ready":
			p.endpoint = e.Endpoint
			return p
		}
		t.Fatalf("unexpected %+v before ready", e)
	}
}

func (p *pyPeer) op(m map[string]any) {
	b, _ := json.Marshal(m)
	p.stdin.Write(append(b, '\n'))
}

func (p *pyPeer) next(t *testing.T, d time.Duration) pyEvent {
	t.Helper()
	select {
	case e, ok := <-p.events:
		if !ok {
			t.Fatal("python peer exited")
		}
		return e
	case <-time.After(d):
		t.Fatalf("python peer silent for %v", d)
	}
	return pyEvent{}
}

// recv asks the python peer for one message.
func (p *pyPeer) recv(t *testing.T, timeout time.Duration) (pyEvent, bool) {
	t.Helper()
	p.op(map[string]any{"op": "recv", "timeout": timeout.Milliseconds()})
	e := p.next(t, timeout+10*time.Second)
	return e, e.Ev == "msg"
}

func (p *pyPeer) send(t *testing.T, frames ...string) {
	t.Helper()
	hx := make([]string, len(frames))
	for i, f := range frames {
		hx[i] = hex.EncodeToString([]byte(f))
	}
	p.op(map[string]any{"op": "send", "frames": hx})
	if e := p.next(t, 10*time.Second); e.Ev != "sent" {
		t.Fatalf("send: %+v", e)
	}
}

func (p *pyPeer) monitorEvents() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.monitor...)
}

func (p *pyPeer) sawMonitor(prefix string) bool {
	for _, e := range p.monitorEvents() {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

func frameText(f pyFrame) string {
	b, _ := hex.DecodeString(f.Hex)
	return string(b)
}

func hexs(s string) string { return hex.EncodeToString([]byte(s)) }

// curveServerArgs returns Go CURVE server options and the matching python
// client arguments.
func curveServer(t *testing.T) (srv *CurveOptions, pyClientArgs []string) {
	pub, sec := keyPair(t)
	return &CurveOptions{Server: true, SecretKey: sec}, []string{"--curve-server-key=" + zcert.Key(pub).String()}
}

// pyCurveServer returns python server arguments and Go client options.
func pyCurveServer(t *testing.T) (pyArgs []string, cli *CurveOptions) {
	pub, sec := keyPair(t)
	return []string{"--curve-server-secret=" + zcert.Key(sec).String()}, &CurveOptions{ServerKey: pub}
}

func TestInteropGoPubPySub(t *testing.T) {
	t.Parallel()
	for _, mode := range secModes {
		for _, typ := range []SocketType{PUB, XPUB} {
			t.Run(mode.name+"/"+typ.String(), func(t *testing.T) {
				t.Parallel()
				var o Options
				var pyArgs []string
				if mode.curve {
					o.Curve, pyArgs = curveServer(t)
				}
				pub := mustSocket(t, typ, o)
				ep := listenLocal(t, pub)
				py := startPy(t, append([]string{"--type", "SUB", "--connect", ep}, pyArgs...)...)
				py.op(map[string]any{"op": "sub", "topic": hexs("dynfw/delta")})
				py.op(map[string]any{"op": "sub", "topic": hexs("dynfw/list")})
				testenv.WaitFor(t, 5*time.Second, "two subscriptions", func() bool {
					ps := pub.Peers()
					return len(ps) == 1 && len(ps[0].Subscriptions) == 2
				})
				if mode.curve {
					if k := pub.Peers()[0].Key; zcert.Key(k).String() != py.key {
						t.Fatalf("publisher saw client key %s, python uses %s", zcert.Key(k), py.key)
					}
				}
				if typ == XPUB {
					for _, want := range []string{"\x01dynfw/delta", "\x01dynfw/list"} {
						m, err := recvTimeout(t, pub, 2*time.Second)
						if err != nil || string(m[0]) != want {
							t.Fatalf("XPUB got %q %v, want %q", m, err, want)
						}
					}
				}
				ctx := context.Background()
				pub.Send(ctx, msg("dynfw/event", "ev"))
				pub.Send(ctx, msg("dynfw/delta", "d1"))
				pub.Send(ctx, msg("dynfw/list", "l1"))
				for _, want := range []string{"d1", "l1"} {
					e, ok := py.recv(t, 5*time.Second)
					if !ok || len(e.Frames) != 2 || frameText(e.Frames[1]) != want {
						t.Fatalf("python got %+v, want %s", e, want)
					}
				}
				py.op(map[string]any{"op": "unsub", "topic": hexs("dynfw/delta")})
				testenv.WaitFor(t, 5*time.Second, "unsubscribe", func() bool { return len(pub.Peers()[0].Subscriptions) == 1 })
				if typ == XPUB {
					m, err := recvTimeout(t, pub, 2*time.Second)
					if err != nil || string(m[0]) != "\x00dynfw/delta" {
						t.Fatalf("XPUB got %q %v, want the unsubscription", m, err)
					}
				}
				pub.Send(ctx, msg("dynfw/delta", "d2"))
				pub.Send(ctx, msg("dynfw/list", "l2"))
				e, ok := py.recv(t, 5*time.Second)
				if !ok || frameText(e.Frames[1]) != "l2" {
					t.Fatalf("after unsubscribe python got %+v, want l2", e)
				}
				if py.sawMonitor("HANDSHAKE_FAILED") || py.sawMonitor("DISCONNECTED") {
					t.Fatalf("libzmq saw %v", py.monitorEvents())
				}
			})
		}
	}
}

func TestInteropPyPubGoSub(t *testing.T) {
	t.Parallel()
	for _, mode := range secModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var o Options
			var pyArgs []string
			if mode.curve {
				pyArgs, o.Curve = pyCurveServer(t)
			}
			py := startPy(t, append([]string{"--type", "PUB", "--bind", "tcp://127.0.0.1:*"}, pyArgs...)...)
			sub := mustSocket(t, SUB, o)
			sub.Subscribe("dynfw/delta")
			sub.Dial(py.endpoint)
			// libzmq drops until the subscription arrives: probe first.
			deadline := time.Now().Add(10 * time.Second)
			for {
				py.send(t, "dynfw/delta", "probe")
				if _, err := recvTimeout(t, sub, 50*time.Millisecond); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no message from libzmq PUB")
				}
			}
			for {
				if _, err := recvTimeout(t, sub, 100*time.Millisecond); err != nil {
					break
				}
			}
			py.send(t, "dynfw/event", "filtered")
			py.send(t, "dynfw/delta", "d1")
			m, err := recvTimeout(t, sub, 5*time.Second)
			if err != nil || string(m[1]) != "d1" {
				t.Fatalf("got %q %v, want d1", m, err)
			}
			sub.Subscribe("dynfw/list")
			sub.Unsubscribe("dynfw/delta")
			deadline = time.Now().Add(10 * time.Second)
			for {
				py.send(t, "dynfw/list", "probe")
				if _, err := recvTimeout(t, sub, 50*time.Millisecond); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("new subscription not honoured by libzmq")
				}
			}
			time.Sleep(100 * time.Millisecond)
			for {
				if _, err := recvTimeout(t, sub, 100*time.Millisecond); err != nil {
					break
				}
			}
			py.send(t, "dynfw/delta", "d2")
			py.send(t, "dynfw/list", "l2")
			m, err = recvTimeout(t, sub, 5*time.Second)
			if err != nil || string(m[1]) != "l2" {
				t.Fatalf("got %q %v, want l2 (d2 was unsubscribed)", m, err)
			}
		})
	}
}

func bigPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestInteropLargeMessage(t *testing.T) {
	t.Parallel()
	const size = 15 << 20
	want := sha256.Sum256(bigPayload(size))
	for _, mode := range secModes {
		t.Run(mode.name+"/go-to-libzmq", func(t *testing.T) {
			t.Parallel()
			var o Options
			var pyArgs []string
			if mode.curve {
				o.Curve, pyArgs = curveServer(t)
			}
			pub := mustSocket(t, PUB, o)
			ep := listenLocal(t, pub)
			py := startPy(t, append([]string{"--type", "SUB", "--connect", ep}, pyArgs...)...)
			py.op(map[string]any{"op": "sub", "topic": hexs("dynfw/list")})
			testenv.WaitFor(t, 5*time.Second, "subscription", func() bool { ps := pub.Peers(); return len(ps) == 1 && len(ps[0].Subscriptions) == 1 })
			pub.Send(context.Background(), Message{[]byte("dynfw/list"), bigPayload(size)})
			e, ok := py.recv(t, 20*time.Second)
			if !ok || len(e.Frames) != 2 || e.Frames[1].Len != size || e.Frames[1].Sha256 != hex.EncodeToString(want[:]) {
				t.Fatalf("libzmq got %+v", e)
			}
		})
		t.Run(mode.name+"/libzmq-to-go", func(t *testing.T) {
			t.Parallel()
			var o Options
			var pyArgs []string
			if mode.curve {
				pyArgs, o.Curve = pyCurveServer(t)
			}
			py := startPy(t, append([]string{"--type", "PUB", "--bind", "tcp://127.0.0.1:*"}, pyArgs...)...)
			sub := mustSocket(t, SUB, o)
			sub.Subscribe("")
			sub.Dial(py.endpoint)
			deadline := time.Now().Add(10 * time.Second)
			for {
				py.send(t, "probe")
				if _, err := recvTimeout(t, sub, 50*time.Millisecond); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no message from libzmq PUB")
				}
			}
			py.op(map[string]any{"op": "send_big", "topic": hexs("dynfw/list"), "size": size})
			py.next(t, 20*time.Second)
			for {
				m, err := recvTimeout(t, sub, 20*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if string(m[0]) == "probe" {
					continue
				}
				if got := sha256.Sum256(m[1]); got != want || len(m[1]) != size {
					t.Fatalf("payload of %d bytes differs", len(m[1]))
				}
				break
			}
		})
	}
}

func TestInteropHeartbeats(t *testing.T) {
	// Not parallel with other tests, whose work on two cores could delay a
	// heartbeat past its real-clock timeout; its idle subtests run
	// alongside each other.
	// libzmq peers with heartbeats (100 ms interval, 500 ms timeout) must
	// stay connected to an idle Go socket, and a Go socket with heartbeats
	// must stay connected to libzmq.
	for _, mode := range secModes {
		t.Run(mode.name+"/libzmq-pings-go", func(t *testing.T) {
			t.Parallel()
			var o Options
			var pyArgs []string
			if mode.curve {
				o.Curve, pyArgs = curveServer(t)
			}
			ev := newEventLog()
			o.OnEvent = ev.handler
			pub := mustSocket(t, PUB, o)
			ep := listenLocal(t, pub)
			py := startPy(t, append([]string{"--type", "SUB", "--connect", ep, "--heartbeat-ivl", "100", "--heartbeat-timeout", "500", "--heartbeat-ttl", "1000"}, pyArgs...)...)
			py.op(map[string]any{"op": "sub", "topic": ""})
			testenv.WaitFor(t, 5*time.Second, "subscription", func() bool { ps := pub.Peers(); return len(ps) == 1 && len(ps[0].Subscriptions) == 1 })
			py.op(map[string]any{"op": "sleep", "ms": 2000})
			py.next(t, 10*time.Second)
			if py.sawMonitor("DISCONNECTED") || ev.count(EventDisconnected) > 0 {
				t.Fatalf("disconnect while idle: libzmq %v, go %d", py.monitorEvents(), ev.count(EventDisconnected))
			}
			pub.Send(context.Background(), msg("x", "after-idle"))
			if e, ok := py.recv(t, 5*time.Second); !ok || frameText(e.Frames[1]) != "after-idle" {
				t.Fatalf("got %+v", e)
			}
		})
		t.Run(mode.name+"/go-pings-libzmq", func(t *testing.T) {
			t.Parallel()
			var o Options
			var pyArgs []string
			if mode.curve {
				pyArgs, o.Curve = pyCurveServer(t)
			}
			ev := newEventLog()
			o.OnEvent = ev.handler
			o.HeartbeatInterval = 50 * time.Millisecond
			o.HeartbeatTimeout = 300 * time.Millisecond
			o.HeartbeatTTL = 1 * time.Second
			py := startPy(t, append([]string{"--type", "PUB", "--bind", "tcp://127.0.0.1:*", "--heartbeat-ivl", "100", "--heartbeat-timeout", "500"}, pyArgs...)...)
			sub := mustSocket(t, SUB, o)
			sub.Subscribe("")
			sub.Dial(py.endpoint)
			ev.wait(t, EventConnected, 5*time.Second)
			time.Sleep(2 * time.Second)
			if n := ev.count(EventDisconnected); n > 0 || py.sawMonitor("DISCONNECTED") {
				t.Fatalf("disconnects while idle: go %d, libzmq %v", n, py.monitorEvents())
			}
			py.send(t, "x", "after-idle")
			if m, err := recvTimeout(t, sub, 5*time.Second); err != nil || string(m[1]) != "after-idle" {
				t.Fatalf("got %q %v", m, err)
			}
		})
	}
}

func TestInteropWrongServerKey(t *testing.T) {
	t.Parallel()
	t.Run("go-client", func(t *testing.T) {
		t.Parallel()
		pyArgs, _ := pyCurveServer(t)
		wrong, _ := keyPair(t)
		py := startPy(t, append([]string{"--type", "PUB", "--bind", "tcp://127.0.0.1:*"}, pyArgs...)...)
		ev := newEventLog()
		sub := mustSocket(t, SUB, Options{Curve: &CurveOptions{ServerKey: wrong}, OnEvent: ev.handler})
		sub.Dial(py.endpoint)
		e := ev.wait(t, EventHandshakeFailed, 5*time.Second)
		var he *HandshakeError
		if !errors.As(e.Err, &he) || he.Stage != "WELCOME" {
			t.Fatalf("got %v", e.Err)
		}
		testenv.WaitFor(t, 5*time.Second, "libzmq handshake failure", func() bool { return py.sawMonitor("HANDSHAKE_FAILED") })
		if ev.count(EventConnected) > 0 || py.sawMonitor("HANDSHAKE_SUCCEEDED") {
			t.Fatal("a handshake with the wrong server key succeeded")
		}
	})
	t.Run("libzmq-client", func(t *testing.T) {
		t.Parallel()
		srv, _ := curveServer(t)
		wrong, _ := keyPair(t)
		ev := newEventLog()
		pub := mustSocket(t, PUB, Options{Curve: srv, OnEvent: ev.handler})
		ep := listenLocal(t, pub)
		py := startPy(t, "--type", "SUB", "--connect", ep, "--curve-server-key="+zcert.Key(wrong).String())
		e := ev.wait(t, EventHandshakeFailed, 5*time.Second)
		var he *HandshakeError
		if !errors.As(e.Err, &he) || he.Stage != "HELLO" {
			t.Fatalf("got %v", e.Err)
		}
		time.Sleep(300 * time.Millisecond)
		if ev.count(EventConnected) > 0 || py.sawMonitor("HANDSHAKE_SUCCEEDED") {
			t.Fatal("a handshake with the wrong server key succeeded")
		}
	})
	t.Run("go-refuses-libzmq-key", func(t *testing.T) {
		t.Parallel()
		srv, pyArgs := curveServer(t)
		someone, _ := keyPair(t)
		srv.Authorize = AllowKeys(someone)
		pub := mustSocket(t, PUB, Options{Curve: srv})
		ep := listenLocal(t, pub)
		py := startPy(t, append([]string{"--type", "SUB", "--connect", ep}, pyArgs...)...)
		// libzmq reads our ERROR "400" as a ZAP authentication failure.
		testenv.WaitFor(t, 5*time.Second, "HANDSHAKE_FAILED_AUTH at libzmq", func() bool { return py.sawMonitor("HANDSHAKE_FAILED_AUTH") })
	})
}

func TestInteropPyPushGoPull(t *testing.T) {
	t.Parallel()
	for _, mode := range secModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var o Options
			var pyArgs []string
			if mode.curve {
				o.Curve, pyArgs = curveServer(t)
			}
			pull := mustSocket(t, PULL, o)
			ep := listenLocal(t, pull)
			py := startPy(t, append([]string{"--type", "PUSH", "--connect", ep}, pyArgs...)...)
			// A one-frame welcome, as Sentinel probes send at start.
			py.send(t, "sentinel/collect/fwlogs")
			const n = 1000
			for i := 0; i < n; i++ {
				py.op(map[string]any{"op": "send", "frames": []string{hexs("sentinel/collect/minipot"), hexs(fmt.Sprint(i))}})
			}
			m, err := recvTimeout(t, pull, 5*time.Second)
			if err != nil || len(m) != 1 || string(m[0]) != "sentinel/collect/fwlogs" {
				t.Fatalf("welcome: %q %v", m, err)
			}
			for i := 0; i < n; i++ {
				m, err := recvTimeout(t, pull, 5*time.Second)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if len(m) != 2 || string(m[1]) != fmt.Sprint(i) {
					t.Fatalf("message %d: %q (order must be kept)", i, m)
				}
			}
		})
	}
}

func TestInteropGoPushPyPull(t *testing.T) {
	t.Parallel()
	py := startPy(t, "--type", "PULL", "--bind", "tcp://127.0.0.1:*")
	push := mustSocket(t, PUSH, Options{})
	push.Dial(py.endpoint)
	for i := 0; i < 100; i++ {
		if err := push.Send(context.Background(), msg("t", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		e, ok := py.recv(t, 5*time.Second)
		if !ok || frameText(e.Frames[1]) != fmt.Sprint(i) {
			t.Fatalf("message %d: %+v", i, e)
		}
	}
}
