package subscription

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/zmtp"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

// handlerLog is a Handler that writes every call as a short line.
type handlerLog struct {
	mu        sync.Mutex
	lines     []string
	state     State
	sess      *Session
	stopAfter bool // Stop after the first list
}

func (h *handlerLog) add(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, s)
}

func (h *handlerLog) List(l *List) error {
	addrs, err := l.Addrs()
	if err != nil {
		return err
	}
	var n int
	if err := l.Each(func(netip.Prefix) { n++ }); err != nil || n != len(addrs) || n != l.Count4+l.Count6 {
		return fmt.Errorf("each: %v, %d entries, %d addrs, counts %d+%d", err, n, len(addrs), l.Count4, l.Count6)
	}
	l.Release()
	if err := l.Each(func(netip.Prefix) {}); err == nil {
		return errors.New("Each worked after Release")
	}
	h.add(fmt.Sprintf("list v%d s%d %v", l.Version, l.Serial, addrs))
	if h.stopAfter {
		h.sess.Stop()
	}
	return nil
}

func (h *handlerLog) Delta(d dynfw.Delta, ok bool) {
	h.add(fmt.Sprintf("delta %d %s %v %v", d.Serial, d.Op, dynfw.FormatAddr(d.Addr), ok))
}

func (h *handlerLog) Event(e dynfw.Event) { h.add(fmt.Sprintf("event %s %v", e.Name, e.Addr)) }

func (h *handlerLog) Note(n Note) {
	switch n.Kind {
	case Message, Duplicate, OutOfOrder:
		return
	case Malformed:
		var fe *FramesError
		if errors.As(n.Err, &fe) {
			h.add(fmt.Sprintf("malformed %d frames", fe.Frames))
			return
		}
		h.add("malformed " + n.Topic)
	case BadAddress:
		h.add(fmt.Sprintf("bad-address %s %d", n.Topic, n.Serial))
	default:
		h.add(strings.TrimSpace(n.Kind.String() + " " + n.Detail))
	}
}

func (h *handlerLog) Tick(time.Time) {}

func (h *handlerLog) State(s State) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.state = s
}

func (h *handlerLog) has(line string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.lines, line)
}

func (h *handlerLog) current() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state
}

// since returns the lines from the first one equal to from.
func (h *handlerLog) since(from string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := slices.Index(h.lines, from)
	if i < 0 {
		return nil
	}
	return slices.Clone(h.lines[i:])
}

// publisher is a hand-driven PUB socket that can send what a real
// publisher never would.
type publisher struct {
	t    *testing.T
	sock *zmtp.Socket
	ep   string
}

func newPublisher(t *testing.T, curve *zmtp.CurveOptions) *publisher {
	t.Helper()
	sock, err := zmtp.NewSocket(zmtp.PUB, zmtp.Options{Curve: curve})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := sock.Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	return &publisher{t: t, sock: sock, ep: "tcp://" + addr.String()}
}

func (p *publisher) send(m dynfw.Message) {
	p.sock.Send(context.Background(), zmtp.Message{[]byte(m.Topic()), m.AppendMsgpack(nil)})
}

// subscribed reports whether the subscriber asked for topic.
func (p *publisher) subscribed(topic string) bool {
	peers := p.sock.Peers()
	return len(peers) == 1 && slices.Contains(peers[0].Subscriptions, topic)
}

func (p *publisher) raw(frames ...[]byte) { p.sock.Send(context.Background(), zmtp.Message(frames)) }

// until sends m every 10 ms until cond holds: the first messages may go
// out before the subscriptions have arrived.
func (p *publisher) until(m dynfw.Message, what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s", what)
		}
		p.send(m)
		time.Sleep(10 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var quiet = slog.New(slog.DiscardHandler)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestSessionFollowsPublisher: over CURVE, the handler receives the list,
// the deltas in serial order, the events, and a note for each message that
// cannot be used; a gap resynchronises from the next list; the state follows
// the connection.
func TestSessionFollowsPublisher(t *testing.T) {
	cert, err := zcert.New()
	if err != nil {
		t.Fatal(err)
	}
	pub := newPublisher(t, &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret})
	key := [32]byte(cert.Public)
	conn, err := Dial(Config{Endpoint: pub.ep, ServerKey: &key, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := &handlerLog{}
	sess := NewSession(conn, h, Options{Events: true, Tick: 5 * time.Millisecond, Machine: MachineConfig{HoldTimeout: time.Minute}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sess.Run(ctx) }()

	first := "list v1 s10 [1.1.1.1/32 10.0.0.0/8 2001:db8::/32]"
	pub.until(&dynfw.List{Version: 1, Serial: 10, Addrs: []netip.Prefix{pfx("1.1.1.1/32"), pfx("10.0.0.0/8"), pfx("2001:db8::/32")}},
		"the first list", func() bool { return h.has(first) })
	if s := h.current(); !s.Connected || !s.Listed || s.Phase != Synced || s.Version != 1 || s.Serial != 10 {
		t.Fatalf("state %+v", s)
	}
	pub.send(&dynfw.Delta{Serial: 12, Op: dynfw.Positive, Addr: pfx("3.3.3.3/32")}) // held back
	pub.send(&dynfw.Delta{Serial: 11, Op: dynfw.Negative, Addr: pfx("1.1.1.1/32")})
	pub.send(&dynfw.Event{Name: "telnet_login", Addr: netip.MustParseAddr("8.8.8.8")})
	pub.raw([]byte(dynfw.TopicDelta), []byte{0xc1})                   // not msgpack
	pub.raw([]byte(dynfw.TopicEvent), []byte{0x80})                   // no fields
	pub.raw([]byte(dynfw.TopicDelta), []byte("x"), []byte("a third")) // three frames
	pub.raw([]byte(dynfw.TopicDelta), badAddress(13))
	pub.send(&dynfw.Delta{Serial: 14, Op: dynfw.Positive, Addr: pfx("4.0.0.0/8")})
	pub.send(&dynfw.Delta{Serial: 50, Op: dynfw.Positive, Addr: pfx("5.5.5.5/32")}) // a gap
	waitFor(t, "the resync", func() bool { return h.has("resync serial gap") })
	if s := h.current(); s.Phase != Resyncing || s.Serial != 14 {
		t.Fatalf("state after the gap %+v", s)
	}
	// Lists are subscribed again: a truncated one is dropped.
	waitFor(t, "the list subscription", func() bool { return pub.subscribed(dynfw.TopicList) })
	pub.raw([]byte(dynfw.TopicList), []byte("\x84garbage"))
	pub.until(&dynfw.List{Version: 1, Serial: 60, Addrs: []netip.Prefix{pfx("6.6.6.6/32")}}, "the second list",
		func() bool { return h.has("list v1 s60 [6.6.6.6/32]") })
	want := []string{first,
		"delta 11 negative 1.1.1.1 true", "delta 12 positive 3.3.3.3 true",
		"event telnet_login 8.8.8.8",
		"malformed dynfw/delta", "malformed dynfw/event", "malformed 3 frames",
		"bad-address dynfw/delta 13", "delta 13 positive  false",
		"delta 14 positive 4.0.0.0/8 true",
		"resync serial gap", "malformed dynfw/list",
		"list v1 s60 [6.6.6.6/32]"}
	if got := h.since(first); !slices.Equal(got, want) {
		t.Fatalf("handler calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	pub.sock.Close()
	waitFor(t, "the disconnection", func() bool { return !h.current().Connected })
	if !h.has("disconnected") {
		t.Fatal("no note of the disconnection")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// badAddress is a delta whose address does not parse.
func badAddress(serial uint64) []byte {
	d := &dynfw.Delta{Serial: serial, Op: dynfw.Positive, Addr: pfx("192.0.2.1/32")}
	return []byte(strings.Replace(string(d.AppendMsgpack(nil)), "192.0.2.1", "999.0.2.1", 1))
}

// TestSessionStopAndPost: a handler can end Run after a list (a one-shot
// client), and work posted from another goroutine runs on Run's.
func TestSessionStopAndPost(t *testing.T) {
	pub := newPublisher(t, nil)
	conn, err := Dial(Config{Endpoint: pub.ep, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := &handlerLog{stopAfter: true}
	h.sess = NewSession(conn, h, Options{})
	done := make(chan error, 1)
	go func() { done <- h.sess.Run(context.Background()) }()
	posted := make(chan struct{})
	go h.sess.Post(func() { h.add("posted"); close(posted) })
	<-posted
	stopped := false
	pub.until(&dynfw.List{Version: 3, Serial: 1}, "Run to stop", func() bool {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			stopped = true
		default:
		}
		return stopped
	})
	if !h.has("posted") || !h.has("list v3 s1 []") {
		t.Fatalf("calls %v", h.since("posted"))
	}
}
