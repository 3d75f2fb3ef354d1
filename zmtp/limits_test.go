package zmtp

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/testenv"
)

// rawSubscriber completes the handshake on a raw connection (CURVE when
// serverKey is set) and subscribes to everything; the test then decides
// what the peer does. With rcvbuf set its receive buffer is that small, so
// that it stalls the publisher's writes as soon as it stops reading (and
// reads slowly afterwards: on loopback a window this small stays below two
// segments, and the sender falls back on zero-window probes).
func rawSubscriber(t testing.TB, ep string, serverKey *[32]byte, rcvbuf int) *conn {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(ep, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if tc, ok := nc.(*net.TCPConn); ok && rcvbuf > 0 {
		tc.SetReadBuffer(rcvbuf)
	}
	cfg := handshakeConfig{typ: SUB, maxSize: 1 << 20, timeout: 5 * time.Second}
	if serverKey != nil {
		pub, sec := keyPair(t)
		cfg.curve = &CurveOptions{ServerKey: *serverKey, PublicKey: pub, SecretKey: sec}
	}
	c := newConn(nc)
	if err := c.handshake(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := c.codec.writePart(c.bw, false, false, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := c.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

// pingUntil sends a PING every few milliseconds until stop is closed or a
// write fails: a peer that looks alive to heartbeats.
func pingUntil(c *conn, stop <-chan struct{}) {
	ping := appendCommand(nil, cmdPing, []byte{0, 0})
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		if c.codec.writePart(c.bw, false, true, ping) != nil || c.bw.Flush() != nil {
			return
		}
	}
}

func waitSubscribed(t testing.TB, s *Socket, n int) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, "subscribed peers", func() bool {
		k := 0
		for _, p := range s.Peers() {
			if len(p.Subscriptions) > 0 {
				k++
			}
		}
		return k == n
	})
}

// A subscriber with a zero TCP window that keeps sending PINGs passes every
// heartbeat check; only the write timeout cuts it off, and then its
// goroutines and queue go with it.
func TestZeroWindowSubscriberIsCutOff(t *testing.T) {
	// Not parallel: it counts the goroutines of the whole process.
	ev := newEventLog()
	spub, ssec := keyPair(t)
	pub := mustSocket(t, PUB, Options{
		Curve:        &CurveOptions{Server: true, SecretKey: ssec},
		WriteTimeout: 300 * time.Millisecond, HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 200 * time.Millisecond,
		OnEvent: ev.handler,
	})
	ep := listenLocal(t, pub)
	base := runtime.NumGoroutine()
	c := rawSubscriber(t, ep, &spub, 4096)
	stop := make(chan struct{})
	var pinger sync.WaitGroup
	pinger.Add(1)
	go func() { defer pinger.Done(); pingUntil(c, stop) }()
	waitSubscribed(t, pub, 1)
	payload := make([]byte, 1<<20)
	for i := 0; i < 32; i++ { // far beyond the socket buffers
		pub.Send(context.Background(), Message{[]byte("t"), payload})
	}
	e := ev.wait(t, EventDisconnected, 20*time.Second)
	close(stop)
	pinger.Wait()
	if e.Reason != ReasonWriteTimeout || !errors.Is(e.Err, ErrWriteTimeout) {
		t.Fatalf("disconnected for %s (%v), want %s", e.Reason, e.Err, ReasonWriteTimeout)
	}
	st := pub.Stats()
	if st.Peers != 0 || st.DisconnectReasons[ReasonWriteTimeout] != 1 || st.DisconnectReasons[ReasonHeartbeatTimeout] != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Reader, writer and monitor are gone.
	testenv.WaitFor(t, 10*time.Second, "the peer's goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

// The write timeout bounds the time without progress, not the time of a
// write: a subscriber that keeps reading a message far larger than what it
// can read within the timeout receives all of it.
func TestWriteTimeoutAllowsSlowProgress(t *testing.T) {
	// Not parallel: its reader must keep pace with a write timeout on the
	// real clock, which other tests' work on two cores could starve.
	ev := newEventLog()
	const timeout = 400 * time.Millisecond
	pub := mustSocket(t, PUB, Options{WriteTimeout: timeout, OnEvent: ev.handler})
	ep := listenLocal(t, pub)
	c := rawSubscriber(t, ep, nil, 256<<10)
	waitSubscribed(t, pub, 1)
	big := make([]byte, 8<<20)
	pub.Send(context.Background(), Message{[]byte("t"), big})
	// About 6 MB/s: well over a second for the whole message, 64 KiB
	// every 10 ms.
	want := len(big) + 1 + 2 + 9 // frames "t" and big with their headers
	got := 0
	buf := make([]byte, 64<<10)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for got < want {
		<-tick.C
		c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.nc.Read(buf)
		got += n
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v (events: %d disconnects)", got, want, err, ev.count(EventDisconnected))
		}
	}
	if elapsed := time.Since(start); elapsed < timeout {
		t.Logf("the message took only %v, less than the write timeout: the test proves nothing on this machine", elapsed)
	}
	if n := ev.count(EventDisconnected); n != 0 {
		t.Fatalf("%d disconnects while the subscriber kept reading", n)
	}
}

// Connections beyond MaxPeers are closed at once and counted; a slot that
// frees up is available again.
func TestPeerLimit(t *testing.T) {
	t.Parallel()
	ev := newEventLog()
	pub := mustSocket(t, PUB, Options{MaxPeers: 2, OnEvent: ev.handler})
	ep := listenLocal(t, pub)
	subs := make([]*Socket, 2)
	for i := range subs {
		subs[i] = mustSocket(t, SUB, Options{})
		subs[i].Subscribe("")
		subs[i].Dial(ep)
	}
	waitSubscribed(t, pub, 2)
	nc, err := net.Dial("tcp", strings.TrimPrefix(ep, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := nc.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("a connection beyond the limit read %d bytes, %v; want EOF at once", n, err)
	}
	if e := ev.wait(t, EventRefused, 5*time.Second); e.Reason != ReasonPeerLimit || !errors.Is(e.Err, ErrPeerLimit) {
		t.Fatalf("refused for %s %v", e.Reason, e.Err)
	}
	if st := pub.Stats(); st.RefuseReasons[ReasonPeerLimit] == 0 || st.Refused == 0 {
		t.Fatalf("stats %+v", st)
	}
	subs[0].Close()
	testenv.WaitFor(t, 5*time.Second, "the first subscriber to leave", func() bool { return pub.Stats().Peers == 1 })
	late := mustSocket(t, SUB, Options{})
	late.Subscribe("")
	late.Dial(ep)
	waitSubscribed(t, pub, 2)
}

// Half-open connections hold at most MaxHandshakes slots: those beyond are
// refused at once, real clients get through below the limit, and a full
// house of half-open connections gives its slots back when their handshake
// times out.
func TestHandshakeLimit(t *testing.T) {
	t.Parallel()
	ev := newEventLog()
	spub, ssec := keyPair(t)
	pub := mustSocket(t, PUB, Options{
		Curve:         &CurveOptions{Server: true, SecretKey: ssec},
		MaxHandshakes: 4, HandshakeTimeout: 2 * time.Second, OnEvent: ev.handler,
	})
	ep := listenLocal(t, pub)
	halfOpen := func(n int) {
		for i := 0; i < n; i++ {
			nc, err := net.Dial("tcp", strings.TrimPrefix(ep, "tcp://"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { nc.Close() })
		}
	}
	client := func() *Socket {
		s := mustSocket(t, SUB, Options{Curve: &CurveOptions{ServerKey: spub}, ReconnectInterval: 20 * time.Millisecond, ReconnectIntervalMax: 100 * time.Millisecond})
		s.Subscribe("")
		s.Dial(ep)
		return s
	}
	halfOpen(3)
	testenv.WaitFor(t, 5*time.Second, "three handshakes in progress", func() bool { return pub.Stats().Handshakes == 3 })
	client()
	waitSubscribed(t, pub, 1) // below the limit: not held up
	halfOpen(20)
	testenv.WaitFor(t, 5*time.Second, "refusals at the limit", func() bool {
		st := pub.Stats()
		return st.RefuseReasons[ReasonHandshakeLimit] >= 19
	})
	if st := pub.Stats(); st.Handshakes > 4 {
		t.Fatalf("%d handshakes in progress, limit 4", st.Handshakes)
	}
	client()
	waitSubscribed(t, pub, 2) // after the half-open ones timed out
	st := pub.Stats()
	if st.HandshakeFailureReasons[ReasonHandshakeTimeout] < 3 {
		t.Fatalf("stats %+v", st)
	}
}

// An update refused by a full queue makes the peer lag: it receives no
// update after the gap, then the resync point instead of its stale queue,
// then the updates after it.
func TestLaggingPeerSkipsToResync(t *testing.T) {
	t.Parallel()
	pub := mustSocket(t, PUB, Options{SendQueueLen: 4})
	ep := listenLocal(t, pub)
	c := rawSubscriber(t, ep, nil, 0)
	waitSubscribed(t, pub, 1)
	payload := make([]byte, 64<<10)
	update := func(i int) Message {
		return Message{[]byte("u"), binary.BigEndian.AppendUint32(nil, uint32(i)), payload}
	}
	seq := 0
	for ; seq < 3; seq++ {
		pub.SendUpdate(update(seq))
	}
	// The writer takes them: they go out before anything sent later.
	testenv.WaitFor(t, 5*time.Second, "the writer", func() bool { return pub.Peers()[0].Queued == 0 })
	// The peer reads nothing: plain messages fill the socket buffers and
	// then the queue, which refuses them without making the peer lag.
	for i := 0; pub.Stats().Dropped < 20; i++ {
		if i > 100_000 {
			t.Fatal("the stalled peer's queue never filled")
		}
		pub.Send(context.Background(), Message{[]byte("p"), payload})
	}
	if st := pub.Stats(); st.Lagged != 0 || st.Skipped != 0 {
		t.Fatalf("plain messages made the peer lag: %+v", st)
	}
	// Updates until one is refused (the gap), then more: all skipped,
	// whatever room the writer makes meanwhile.
	for pub.Stats().Lagged == 0 {
		if seq > 100_000 {
			t.Fatal("the stalled peer never lagged")
		}
		pub.SendUpdate(update(seq))
		seq++
	}
	gap := seq - 1
	for i := 0; i < 10; i++ {
		pub.SendUpdate(update(seq))
		seq++
	}
	if st := pub.Stats(); st.Lagged != 1 || st.Skipped != 10 || !pub.Peers()[0].Lagging {
		t.Fatalf("stats %+v", st)
	}
	pub.SendResync(Message{[]byte("r"), []byte("state")})
	after := seq
	for i := 0; i < 3; i++ {
		pub.SendUpdate(update(seq))
		seq++
	}
	if ps := pub.Peers(); ps[0].Lagging {
		t.Fatalf("lagging after the resync point: %+v", ps[0])
	}

	// Now the peer reads.
	var got []int
	resyncAt := -1
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	for len(got) == 0 || got[len(got)-1] != seq-1 {
		var m Message
		for {
			pt, err := c.codec.readPart(&c.fr)
			if err != nil {
				t.Fatalf("after %v: %v", got, err)
			}
			if pt.cmd {
				continue
			}
			m = append(m, pt.body)
			if !pt.more {
				break
			}
		}
		switch string(m[0]) {
		case "r":
			if resyncAt >= 0 {
				t.Fatal("two resync points")
			}
			resyncAt = len(got)
		case "u":
			got = append(got, int(binary.BigEndian.Uint32(m[1])))
		}
	}
	// Before the resync point: the updates before the gap, in order
	// (those still queued at the resync point were replaced by it).
	if resyncAt < 3 || resyncAt > gap {
		t.Fatalf("updates %v, resync point after %d of them; the gap is at %d", got, resyncAt, gap)
	}
	for i, v := range got[:resyncAt] {
		if v != i {
			t.Fatalf("before the resync point: update %d at %d", v, i)
		}
	}
	if tail := got[resyncAt:]; len(tail) != 3 || tail[0] != after || tail[2] != after+2 {
		t.Fatalf("after the resync point: %v, want %d..%d", tail, after, after+2)
	}
}

// The queue's side of lagging: a refused update makes the peer lag, updates
// are then skipped but plain messages are not, and a resync point replaces
// a full queue.
func TestQueueLagging(t *testing.T) {
	t.Parallel()
	q := newQueue(2, 1<<20)
	m := Message{[]byte("x")}
	for i := 0; i < 2; i++ {
		if q.offerUpdate(m, 1) != offerQueued {
			t.Fatal("room refused")
		}
	}
	if q.offerUpdate(m, 1) != offerDropped || !q.isLagging() || q.offerUpdate(m, 1) != offerSkipped {
		t.Fatal("a full queue must make the peer lag")
	}
	q.popAll(nil)
	if q.offerUpdate(m, 1) != offerSkipped || !q.tryPush(m, 1, false) {
		t.Fatal("lagging: updates skipped, plain messages queued")
	}
	q.endLag()
	if q.offerUpdate(m, 1) != offerQueued {
		t.Fatal("endLag")
	}
	if n, ok := q.resync(m, 1); n != 2 || !ok || q.len() != 1 {
		t.Fatalf("resync into a full queue discarded %d, queue %d", n, q.len())
	}
	if n, _ := q.resync(m, 1); n != 0 || q.len() != 2 {
		t.Fatalf("resync with room discarded %d", n)
	}
}

// Every way a connection ends is counted under its reason.
func TestCloseReasons(t *testing.T) {
	t.Parallel()
	t.Run("message_too_large", func(t *testing.T) {
		t.Parallel()
		ev := newEventLog()
		pull := mustSocket(t, PULL, Options{MaxMessageSize: 1024, OnEvent: ev.handler})
		push := mustSocket(t, PUSH, Options{})
		push.Dial(listenLocal(t, pull))
		push.Send(context.Background(), msg("t", strings.Repeat("x", 4096)))
		if e := ev.wait(t, EventDisconnected, 5*time.Second); e.Reason != ReasonMessageTooLarge {
			t.Fatalf("reason %s (%v)", e.Reason, e.Err)
		}
	})
	t.Run("too_many_frames", func(t *testing.T) {
		t.Parallel()
		ev := newEventLog()
		pull := mustSocket(t, PULL, Options{MaxFrames: 3, OnEvent: ev.handler})
		push := mustSocket(t, PUSH, Options{})
		push.Dial(listenLocal(t, pull))
		push.Send(context.Background(), msg("a", "b", "c", "d", "e"))
		e := ev.wait(t, EventDisconnected, 5*time.Second)
		if e.Reason != ReasonTooManyFrames || !errors.Is(e.Err, ErrProtocol) {
			t.Fatalf("reason %s (%v)", e.Reason, e.Err)
		}
		if pull.Stats().DisconnectReasons[ReasonTooManyFrames] != 1 {
			t.Fatalf("stats %+v", pull.Stats())
		}
	})
	t.Run("too_many_subscriptions", func(t *testing.T) {
		t.Parallel()
		ev := newEventLog()
		pub := mustSocket(t, PUB, Options{MaxSubscriptions: 2, OnEvent: ev.handler})
		sub := mustSocket(t, SUB, Options{})
		for _, topic := range []string{"a", "b", "a", "c"} {
			sub.Subscribe(topic)
		}
		sub.Dial(listenLocal(t, pub))
		if e := ev.wait(t, EventDisconnected, 5*time.Second); e.Reason != ReasonTooManySubscriptions {
			t.Fatalf("reason %s (%v)", e.Reason, e.Err)
		}
	})
	t.Run("protocol_error", func(t *testing.T) {
		t.Parallel()
		ev := newEventLog()
		pull := mustSocket(t, PULL, Options{OnEvent: ev.handler})
		nc, err := net.Dial("tcp", strings.TrimPrefix(listenLocal(t, pull), "tcp://"))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat(" ", 64)))
		if e := ev.wait(t, EventHandshakeFailed, 5*time.Second); e.Reason != ReasonProtocolError {
			t.Fatalf("reason %s (%v)", e.Reason, e.Err)
		}
		if pull.Stats().HandshakeFailureReasons[ReasonProtocolError] != 1 {
			t.Fatalf("stats %+v", pull.Stats())
		}
	})
	t.Run("auth_refused", func(t *testing.T) {
		t.Parallel()
		ev := newEventLog()
		spub, ssec := keyPair(t)
		pub := mustSocket(t, PUB, Options{OnEvent: ev.handler, Curve: &CurveOptions{Server: true, SecretKey: ssec,
			Authorize: func([32]byte, net.Addr) error { return errors.New("no") }}})
		sub := mustSocket(t, SUB, Options{Curve: &CurveOptions{ServerKey: spub}})
		sub.Dial(listenLocal(t, pub))
		if e := ev.wait(t, EventHandshakeFailed, 5*time.Second); e.Reason != ReasonAuthRefused {
			t.Fatalf("reason %s (%v)", e.Reason, e.Err)
		}
	})
	t.Run("closed_by_peer and socket_closed", func(t *testing.T) {
		t.Parallel()
		ev := newEventLog()
		pub := mustSocket(t, PUB, Options{OnEvent: ev.handler})
		ep := listenLocal(t, pub)
		for i := 0; i < 2; i++ {
			sub := mustSocket(t, SUB, Options{})
			sub.Subscribe("")
			sub.Dial(ep)
			waitSubscribed(t, pub, i+1)
			if i == 0 {
				defer sub.Close()
			} else {
				sub.Close()
			}
		}
		if e := ev.wait(t, EventDisconnected, 5*time.Second); e.Reason != ReasonClosedByPeer {
			t.Fatalf("reason %s (%v)", e.Reason, e.Err)
		}
		pub.Close()
		st := pub.Stats()
		if st.DisconnectReasons[ReasonClosedByPeer] != 1 || st.DisconnectReasons[ReasonSocketClosed] != 1 {
			t.Fatalf("stats %+v", st.DisconnectReasons)
		}
	})
}

// Nothing a peer typed reaches the socket's log or its error texts: command
// names, metadata names, socket types, mechanisms.
func TestHostilePeerStringsAreNotLogged(t *testing.T) {
	t.Parallel()
	var buf testenv.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ev := newEventLog()
	pull := mustSocket(t, PULL, Options{Logger: log, OnEvent: ev.handler})
	ep := strings.TrimPrefix(listenLocal(t, pull), "tcp://")
	const evil = "EVIL<script>"
	dial := func() *conn {
		nc, err := net.Dial("tcp", ep)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return newConn(nc)
	}
	// Greeting with a foreign mechanism name.
	g := greeting{major: 3, minor: 1, mechanism: "EVIL"}.marshal()
	c := dial()
	c.nc.Write(g[:])
	ev.wait(t, EventHandshakeFailed, 5*time.Second)
	// READY with a hostile metadata name, then with a hostile socket type.
	for _, md := range []metadata{{{name: evil, value: "x"}}, {{name: "Socket-Type", value: evil}}} {
		c := dial()
		g := greeting{major: 3, minor: 1, mechanism: "NULL"}.marshal()
		c.bw.Write(g[:])
		c.writeHandshakeCommand(appendCommand(nil, cmdReady, appendMetadata(nil, md)))
		ev.wait(t, EventHandshakeFailed, 5*time.Second)
	}
	// A command of a hostile name after the handshake, then an ERROR.
	c = dial()
	if err := c.handshake(&handshakeConfig{typ: PUSH, maxSize: 1 << 20, timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	c.codec.writePart(c.bw, false, true, appendCommand(nil, evil))
	c.codec.writePart(c.bw, false, true, appendCommand(nil, cmdError, []byte{byte(len(evil))}, []byte(evil)))
	c.bw.Flush()
	ev.wait(t, EventDisconnected, 5*time.Second)
	pull.Close()

	out := buf.String()
	for _, s := range []string{"EVIL", "script"} {
		if strings.Contains(out, s) {
			t.Errorf("the log holds %q:\n%s", s, out)
		}
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for _, e := range ev.events {
		if e.Type == EventHandshakeFailed && e.Err != nil && strings.Contains(e.Err.Error(), "EVIL") {
			t.Errorf("a handshake error quotes the peer: %v", e.Err)
		}
	}
}
