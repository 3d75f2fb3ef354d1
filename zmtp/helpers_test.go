package zmtp

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"
)

func keyPair(t testing.TB) (pub, sec [32]byte) {
	t.Helper()
	p, s, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return *p, *s
}

// eventLog collects socket events for assertions.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	ch     chan Event
}

func newEventLog() *eventLog { return &eventLog{ch: make(chan Event, 1024)} }

func (l *eventLog) handler(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	select {
	case l.ch <- e:
	default:
	}
}

// wait returns the first event of type typ, or fails after d.
func (l *eventLog) wait(t testing.TB, typ EventType, d time.Duration) Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e := <-l.ch:
			if e.Type == typ {
				return e
			}
		case <-timer.C:
			t.Fatalf("no %v event within %v", typ, d)
			return Event{}
		}
	}
}

func (l *eventLog) count(typ EventType) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func mustSocket(t testing.TB, typ SocketType, o Options) *Socket {
	t.Helper()
	s, err := NewSocket(typ, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func listenLocal(t testing.TB, s *Socket) string {
	t.Helper()
	a, err := s.Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return "tcp://" + a.String()
}

func recvTimeout(t testing.TB, s *Socket, d time.Duration) (Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Recv(ctx)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func msg(frames ...string) Message {
	m := make(Message, len(frames))
	for i, f := range frames {
		m[i] = []byte(f)
	}
	return m
}
