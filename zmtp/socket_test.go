package zmtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dynfw/sentinel/internal/testenv"
)

type secMode struct {
	name  string
	curve bool
}

var secModes = []secMode{{"NULL", false}, {"CURVE", true}}

// withCurve returns the publisher's and the subscriber's options with a
// CURVE server key pair when curve is set.
func withCurve(t *testing.T, curve bool, po, so Options) (Options, Options) {
	t.Helper()
	if curve {
		spub, ssec := keyPair(t)
		po.Curve = &CurveOptions{Server: true, SecretKey: ssec}
		so.Curve = &CurveOptions{ServerKey: spub}
	}
	return po, so
}

// pubSubPair returns a bound publisher and a connected subscriber.
func pubSubPair(t *testing.T, pubType SocketType, curve bool, po, so Options) (*Socket, *Socket) {
	t.Helper()
	po, so = withCurve(t, curve, po, so)
	pub := mustSocket(t, pubType, po)
	ep := listenLocal(t, pub)
	sub := mustSocket(t, SUB, so)
	if err := sub.Dial(ep); err != nil {
		t.Fatal(err)
	}
	return pub, sub
}

// pipePubSub is pubSubPair over an in-memory connection (pipePair).
func pipePubSub(t *testing.T, pubType SocketType, curve bool, po, so Options) (*Socket, *Socket) {
	t.Helper()
	po, so = withCurve(t, curve, po, so)
	pub := mustSocket(t, pubType, po)
	sub := mustSocket(t, SUB, so)
	pipePair(pub, sub)
	return pub, sub
}

// publishUntil sends m until the subscriber receives something or d passes;
// PUB/SUB drops messages until the subscription has arrived.
func publishUntil(t *testing.T, pub, sub *Socket, m Message, d time.Duration) Message {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := pub.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		got, err := recvTimeout(t, sub, 20*time.Millisecond)
		if err == nil {
			return got
		}
	}
	t.Fatalf("subscriber received nothing within %v", d)
	return nil
}

func TestPubSubTopicsAndUnsubscribe(t *testing.T) {
	t.Parallel()
	for _, mode := range secModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			pub, sub := pubSubPair(t, PUB, mode.curve, Options{}, Options{})
			sub.Subscribe("dynfw/delta")
			sub.Subscribe("dynfw/list")
			got := publishUntil(t, pub, sub, msg("dynfw/delta", "warmup"), 5*time.Second)
			if string(got[0]) != "dynfw/delta" {
				t.Fatalf("got topic %q", got[0])
			}
			// Drain warm-up copies.
			for {
				if _, err := recvTimeout(t, sub, 50*time.Millisecond); err != nil {
					break
				}
			}
			pub.Send(context.Background(), msg("dynfw/event", "e1"))
			pub.Send(context.Background(), msg("dynfw/delta", "d1"))
			pub.Send(context.Background(), msg("dynfw/list", "l1"))
			for _, want := range []string{"d1", "l1"} {
				m, err := recvTimeout(t, sub, 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if string(m[1]) != want {
					t.Fatalf("got %q, want %q (events must be filtered)", m[1], want)
				}
			}
			// The publisher filters: the event was never queued for this peer.
			if ps := pub.Peers(); len(ps) != 1 || len(ps[0].Subscriptions) != 2 {
				t.Fatalf("publisher sees peers %+v", ps)
			}
			sub.Unsubscribe("dynfw/delta")
			testenv.WaitFor(t, 2*time.Second, "unsubscribe at the publisher", func() bool {
				ps := pub.Peers()
				return len(ps) == 1 && len(ps[0].Subscriptions) == 1
			})
			pub.Send(context.Background(), msg("dynfw/delta", "d2"))
			pub.Send(context.Background(), msg("dynfw/list", "l2"))
			m, err := recvTimeout(t, sub, 2*time.Second)
			if err != nil || string(m[1]) != "l2" {
				t.Fatalf("after unsubscribe got %q, %v; want l2", m, err)
			}
		})
	}
}

func TestSubscriptionsCount(t *testing.T) {
	t.Parallel()
	pub, sub := pubSubPair(t, PUB, false, Options{}, Options{})
	sub.Subscribe("a")
	sub.Subscribe("a")
	publishUntil(t, pub, sub, msg("a", "x"), 5*time.Second)
	sub.Unsubscribe("a")
	time.Sleep(50 * time.Millisecond)
	if ps := pub.Peers(); len(ps) != 1 || len(ps[0].Subscriptions) != 1 {
		t.Fatalf("one of two subscriptions cancelled, publisher sees %+v", ps)
	}
	sub.Unsubscribe("a")
	testenv.WaitFor(t, 2*time.Second, "last unsubscribe", func() bool {
		ps := pub.Peers()
		return len(ps) == 1 && len(ps[0].Subscriptions) == 0
	})
}

func TestLargeMessage(t *testing.T) {
	t.Parallel()
	for _, mode := range secModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			pub, sub := pubSubPair(t, PUB, mode.curve, Options{}, Options{})
			sub.Subscribe("")
			publishUntil(t, pub, sub, msg("warm", "x"), 5*time.Second)
			for {
				if _, err := recvTimeout(t, sub, 50*time.Millisecond); err != nil {
					break
				}
			}
			for _, size := range []int{255, 256, streamSealCutoff - 2, streamSealCutoff, 15 << 20} {
				big := make([]byte, size)
				for i := range big {
					big[i] = byte(i * 7)
				}
				pub.Send(context.Background(), Message{[]byte("dynfw/list"), big})
				m, err := recvTimeout(t, sub, 10*time.Second)
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				if len(m) != 2 || !bytes.Equal(m[1], big) {
					t.Fatalf("size %d: payload differs (len %d)", size, len(m[1]))
				}
			}
		})
	}
}

func TestOversizedMessageClosesOnlyThatConnection(t *testing.T) {
	t.Parallel()
	for _, mode := range secModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ev := newEventLog()
			pub, sub := pubSubPair(t, PUB, mode.curve, Options{}, Options{MaxMessageSize: 1000, OnEvent: ev.handler})
			sub.Subscribe("")
			publishUntil(t, pub, sub, msg("t", "small"), 5*time.Second)
			pub.Send(context.Background(), Message{[]byte("t"), make([]byte, 5000)})
			e := ev.wait(t, EventDisconnected, 5*time.Second)
			if !errors.Is(e.Err, ErrFrameTooLarge) {
				t.Fatalf("disconnected with %v, want ErrFrameTooLarge", e.Err)
			}
			// The subscriber reconnects and works again.
			ev.wait(t, EventConnected, 5*time.Second)
			got := publishUntil(t, pub, sub, msg("t", "again"), 5*time.Second)
			if len(got) != 2 || len(got[1]) > 1000 {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestPushPull(t *testing.T) {
	t.Parallel()
	for _, mode := range secModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			po, so := withCurve(t, mode.curve, Options{}, Options{})
			pull := mustSocket(t, PULL, po)
			ep := listenLocal(t, pull)
			var pushes []*Socket
			for i := 0; i < 3; i++ {
				p := mustSocket(t, PUSH, so)
				p.Dial(ep)
				pushes = append(pushes, p)
			}
			const per = 500
			for i, p := range pushes {
				go func() {
					for j := 0; j < per; j++ {
						p.Send(context.Background(), msg("sentinel/collect/test", fmt.Sprintf("%d-%d", i, j)))
					}
				}()
			}
			seen := map[string]bool{}
			for len(seen) < 3*per {
				m, err := recvTimeout(t, pull, 10*time.Second)
				if err != nil {
					t.Fatalf("after %d messages: %v", len(seen), err)
				}
				if seen[string(m[1])] {
					t.Fatalf("duplicate %q", m[1])
				}
				seen[string(m[1])] = true
			}
		})
	}
}

func TestPushWaitsForPeerAndRoundRobins(t *testing.T) {
	t.Parallel()
	push := mustSocket(t, PUSH, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := push.Send(ctx, msg("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send without peers: %v, want deadline exceeded", err)
	}
	a, b := mustSocket(t, PULL, Options{}), mustSocket(t, PULL, Options{})
	push.Dial(listenLocal(t, a))
	push.Dial(listenLocal(t, b))
	testenv.WaitFor(t, 5*time.Second, "two peers", func() bool { return push.Stats().Peers == 2 })
	for i := 0; i < 10; i++ {
		push.Send(context.Background(), msg(fmt.Sprint(i)))
	}
	na, nb := 0, 0
	for na+nb < 10 {
		if _, err := recvTimeout(t, a, 20*time.Millisecond); err == nil {
			na++
		}
		if _, err := recvTimeout(t, b, 20*time.Millisecond); err == nil {
			nb++
		}
	}
	if na != 5 || nb != 5 {
		t.Fatalf("round robin gave %d and %d", na, nb)
	}
}

func TestXPUBSeesSubscriptions(t *testing.T) {
	t.Parallel()
	xpub := mustSocket(t, XPUB, Options{})
	ep := listenLocal(t, xpub)
	s1 := mustSocket(t, SUB, Options{})
	s2 := mustSocket(t, SUB, Options{})
	s1.Subscribe("dynfw/")
	s1.Dial(ep)
	m, err := recvTimeout(t, xpub, 5*time.Second)
	if err != nil || !bytes.Equal(m[0], []byte("\x01dynfw/")) {
		t.Fatalf("first subscription: %q %v", m, err)
	}
	s2.Subscribe("dynfw/")
	s2.Dial(ep)
	testenv.WaitFor(t, 5*time.Second, "second peer", func() bool { return len(xpub.Peers()) == 2 && len(xpub.Peers()[1].Subscriptions) == 1 })
	if m, err := recvTimeout(t, xpub, 100*time.Millisecond); err == nil {
		t.Fatalf("second subscriber to the same topic reported: %q", m)
	}
	s1.Close()
	if m, err := recvTimeout(t, xpub, 200*time.Millisecond); err == nil {
		t.Fatalf("topic still has a subscriber, got %q", m)
	}
	s2.Unsubscribe("dynfw/")
	m, err = recvTimeout(t, xpub, 5*time.Second)
	if err != nil || !bytes.Equal(m[0], []byte("\x00dynfw/")) {
		t.Fatalf("last unsubscribe: %q %v", m, err)
	}
}

func TestWrongServerKeyFailsHandshake(t *testing.T) {
	t.Parallel()
	_, ssec := keyPair(t)
	otherPub, _ := keyPair(t)
	srvEv, cliEv := newEventLog(), newEventLog()
	pub := mustSocket(t, PUB, Options{Curve: &CurveOptions{Server: true, SecretKey: ssec}, OnEvent: srvEv.handler})
	ep := listenLocal(t, pub)
	sub := mustSocket(t, SUB, Options{Curve: &CurveOptions{ServerKey: otherPub}, OnEvent: cliEv.handler})
	sub.Dial(ep)
	e := cliEv.wait(t, EventHandshakeFailed, 5*time.Second)
	var he *HandshakeError
	if !errors.As(e.Err, &he) || he.Stage != "WELCOME" {
		t.Fatalf("client error %v, want a HandshakeError at WELCOME", e.Err)
	}
	se := srvEv.wait(t, EventHandshakeFailed, 5*time.Second)
	if !errors.As(se.Err, &he) || he.Stage != "HELLO" {
		t.Fatalf("server error %v, want a HandshakeError at HELLO", se.Err)
	}
	if cliEv.count(EventConnected) != 0 {
		t.Fatal("client connected with a wrong server key")
	}
}

func TestAuthorizeRefusesClient(t *testing.T) {
	t.Parallel()
	spub, ssec := keyPair(t)
	allowed, allowedSec := keyPair(t)
	cliEv := newEventLog()
	pub := mustSocket(t, PUB, Options{Curve: &CurveOptions{Server: true, SecretKey: ssec, Authorize: AllowKeys(allowed)}})
	ep := listenLocal(t, pub)
	bad := mustSocket(t, SUB, Options{Curve: &CurveOptions{ServerKey: spub}, OnEvent: cliEv.handler})
	bad.Dial(ep)
	e := cliEv.wait(t, EventHandshakeFailed, 5*time.Second)
	if !errors.Is(e.Err, ErrAuthRefused) {
		t.Fatalf("refused client got %v, want ErrAuthRefused", e.Err)
	}
	good := mustSocket(t, SUB, Options{Curve: &CurveOptions{ServerKey: spub, PublicKey: allowed, SecretKey: allowedSec}})
	good.Subscribe("")
	good.Dial(ep)
	publishUntil(t, pub, good, msg("x", "y"), 5*time.Second)
	if ps := pub.Peers(); len(ps) != 1 || ps[0].Key != allowed {
		t.Fatalf("publisher peers %+v", ps)
	}
}

func TestMechanismMismatch(t *testing.T) {
	t.Parallel()
	spub, ssec := keyPair(t)
	ev := newEventLog()
	pub := mustSocket(t, PUB, Options{Curve: &CurveOptions{Server: true, SecretKey: ssec}})
	_ = spub
	sub := mustSocket(t, SUB, Options{OnEvent: ev.handler})
	sub.Dial(listenLocal(t, pub))
	e := ev.wait(t, EventHandshakeFailed, 5*time.Second)
	if !errors.Is(e.Err, ErrProtocol) {
		t.Fatalf("got %v", e.Err)
	}
}

func TestSocketTypeMismatch(t *testing.T) {
	t.Parallel()
	ev := newEventLog()
	pull := mustSocket(t, PULL, Options{})
	sub := mustSocket(t, SUB, Options{OnEvent: ev.handler})
	sub.Dial(listenLocal(t, pull))
	e := ev.wait(t, EventHandshakeFailed, 5*time.Second)
	var he *HandshakeError
	if !errors.As(e.Err, &he) || he.Stage != "metadata" {
		t.Fatalf("got %v, want a metadata handshake error", e.Err)
	}
}

func TestReconnectResubscribes(t *testing.T) {
	t.Parallel()
	spub, ssec := keyPair(t)
	ev := newEventLog()
	curveSrv := &CurveOptions{Server: true, SecretKey: ssec}
	pub := mustSocket(t, PUB, Options{Curve: curveSrv})
	addr, err := pub.Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "tcp://" + addr.String()
	sub := mustSocket(t, SUB, Options{Curve: &CurveOptions{ServerKey: spub}, OnEvent: ev.handler, ReconnectInterval: 20 * time.Millisecond})
	sub.Subscribe("dynfw/")
	sub.Dial(ep)
	publishUntil(t, pub, sub, msg("dynfw/delta", "1"), 5*time.Second)
	pub.Close()
	ev.wait(t, EventDisconnected, 5*time.Second)
	// The same server comes back on the same port.
	pub2 := mustSocket(t, PUB, Options{Curve: curveSrv})
	if _, err := pub2.Listen(ep); err != nil {
		t.Fatal(err)
	}
	got := publishUntil(t, pub2, sub, msg("dynfw/delta", "2"), 10*time.Second)
	if string(got[1]) != "2" {
		t.Fatalf("got %q", got)
	}
	if n := ev.count(EventConnected); n < 2 {
		t.Fatalf("%d connected events, want 2", n)
	}
}

func TestConnectFailedEventsBackOff(t *testing.T) {
	t.Parallel()
	ep := "tcp://" + testenv.RefusedAddr(t) // nothing listens there
	ev := newEventLog()
	sub := mustSocket(t, SUB, Options{OnEvent: ev.handler, ReconnectInterval: 10 * time.Millisecond, ReconnectIntervalMax: 80 * time.Millisecond})
	sub.Dial(ep)
	var retries []time.Duration
	for len(retries) < 6 {
		e := ev.wait(t, EventConnectFailed, 5*time.Second)
		retries = append(retries, e.Retry)
	}
	for i, r := range retries {
		base := 10 * time.Millisecond << min(i, 3)
		if r < base/2 || r > base {
			t.Fatalf("retry %d waited %v, want within [%v, %v]", i, r, base/2, base)
		}
	}
}

func TestSlowSubscriberDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	pub := mustSocket(t, PUB, Options{SendQueueLen: 100})
	ep := listenLocal(t, pub)
	// A raw subscriber that completes the handshake, subscribes, and
	// then never reads again.
	stalled := stalledSubscriber(t, ep)
	defer stalled.Close()
	fast := mustSocket(t, SUB, Options{})
	fast.Subscribe("")
	fast.Dial(ep)
	testenv.WaitFor(t, 5*time.Second, "two subscribed peers", func() bool {
		ps := pub.Peers()
		return len(ps) == 2 && len(ps[0].Subscriptions) == 1 && len(ps[1].Subscriptions) == 1
	})
	payload := make([]byte, 64<<10)
	const n = 2000 // 128 MB in total: far beyond the socket buffers
	// Lock step: every message must reach the fast subscriber while the
	// stalled one's connection is full.
	for i := 0; i < n; i++ {
		pub.Send(context.Background(), Message{[]byte("t"), payload})
		if _, err := recvTimeout(t, fast, 5*time.Second); err != nil {
			t.Fatalf("fast subscriber stuck at message %d: %v; publisher %+v", i, err, pub.Stats())
		}
	}
	st := pub.Stats()
	if st.Dropped == 0 {
		t.Fatalf("stalled subscriber dropped nothing: %+v", st)
	}
	for _, p := range pub.Peers() {
		if p.Queued > 100 {
			t.Fatalf("queue of %d exceeds the limit", p.Queued)
		}
	}
}

// stalledSubscriber speaks just enough ZMTP to subscribe to everything and
// then stops reading.
func stalledSubscriber(t testing.TB, ep string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", ep[len("tcp://"):])
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(nc)
	if err := c.handshake(&handshakeConfig{typ: SUB, maxSize: 1 << 20, timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	c.codec.writePart(c.bw, false, false, []byte{1})
	c.bw.Flush()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	return nc
}

func TestHeartbeatDropsSilentPeer(t *testing.T) {
	t.Parallel()
	ev := newEventLog()
	pub := mustSocket(t, PUB, Options{HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 100 * time.Millisecond, OnEvent: ev.handler})
	ep := listenLocal(t, pub)
	// A raw peer that completes the handshake and then never answers.
	nc, err := net.Dial("tcp", ep[len("tcp://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := newConn(nc)
	if err := c.handshake(&handshakeConfig{typ: SUB, maxSize: 1 << 20, timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	e := ev.wait(t, EventDisconnected, 5*time.Second)
	if !errors.Is(e.Err, ErrHeartbeatTimeout) {
		t.Fatalf("disconnected with %v, want heartbeat timeout", e.Err)
	}
}

// In a synctest bubble, over an in-memory connection: the idle time passes
// on the bubble's clock, at once and whatever the machine's load.
func TestHeartbeatKeepsAnsweringPeerConnected(t *testing.T) {
	t.Parallel()
	for _, mode := range secModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ev := newEventLog()
				o := Options{HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 400 * time.Millisecond, HeartbeatTTL: time.Second, OnEvent: ev.handler}
				pub, sub := pipePubSub(t, PUB, mode.curve, o, o)
				sub.Subscribe("")
				publishUntil(t, pub, sub, msg("a", "b"), 5*time.Second)
				time.Sleep(1500 * time.Millisecond) // idle: only PINGs and PONGs flow
				if n := ev.count(EventDisconnected); n != 0 {
					t.Fatalf("%d disconnects while idle with heartbeats", n)
				}
				pub.Send(context.Background(), msg("a", "c"))
				if m, err := recvTimeout(t, sub, time.Second); err != nil || string(m[1]) != "c" {
					t.Fatalf("after idle: %q %v", m, err)
				}
			})
		})
	}
}

func TestCloseUnblocksRecvAndLingers(t *testing.T) {
	t.Parallel()
	pull := mustSocket(t, PULL, Options{})
	ep := listenLocal(t, pull)
	push := mustSocket(t, PUSH, Options{})
	push.Dial(ep)
	for i := 0; i < 100; i++ {
		if err := push.Send(context.Background(), msg("m", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	push.Close() // lingers until the queue is written
	for i := 0; i < 100; i++ {
		if _, err := recvTimeout(t, pull, 2*time.Second); err != nil {
			t.Fatalf("message %d lost on close: %v", i, err)
		}
	}
	done := make(chan error)
	go func() { _, err := pull.Recv(context.Background()); done <- err }()
	time.Sleep(20 * time.Millisecond)
	pull.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Recv after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Recv not woken by Close")
	}
}

func TestIPCAndIPv6(t *testing.T) {
	t.Parallel()
	eps := []string{"ipc://" + t.TempDir() + "/s.sock"}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln.Close() // the machine has IPv6 loopback
		eps = append(eps, "tcp://[::1]:0")
	}
	for _, ep := range eps {
		t.Run(ep[:3], func(t *testing.T) {
			t.Parallel()
			pub := mustSocket(t, PUB, Options{})
			addr, err := pub.Listen(ep)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(ep, "tcp://") {
				ep = "tcp://" + addr.String()
			}
			sub := mustSocket(t, SUB, Options{})
			sub.Subscribe("")
			sub.Dial(ep)
			publishUntil(t, pub, sub, msg("x"), 5*time.Second)
		})
	}
}

func TestEndpointErrors(t *testing.T) {
	t.Parallel()
	s := mustSocket(t, SUB, Options{})
	for _, ep := range []string{"127.0.0.1:5", "tcp://*:5", "tcp://host", "udp://x:1", "ipc://", "tcp://:5"} {
		if err := s.Dial(ep); err == nil {
			t.Errorf("Dial(%q) accepted", ep)
		}
	}
}

func TestRecvFromIdentifiesPeers(t *testing.T) {
	t.Parallel()
	spub, ssec := keyPair(t)
	pull := mustSocket(t, PULL, Options{Curve: &CurveOptions{Server: true, SecretKey: ssec}})
	ep := listenLocal(t, pull)
	keys := map[[32]byte]string{}
	for _, name := range []string{"a", "b"} {
		pub, sec := keyPair(t)
		keys[pub] = name
		push := mustSocket(t, PUSH, Options{Curve: &CurveOptions{ServerKey: spub, PublicKey: pub, SecretKey: sec}})
		push.Dial(ep)
		push.Send(context.Background(), msg("sentinel/collect/test", name))
	}
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m, from, err := pull.RecvFrom(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if keys[from.Key] != string(m[1]) || from.Remote == "" {
			t.Fatalf("message %q came from key %x (%s)", m[1], from.Key[:4], keys[from.Key])
		}
	}
}
