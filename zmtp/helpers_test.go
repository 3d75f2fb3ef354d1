package zmtp

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
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

func msg(frames ...string) Message {
	m := make(Message, len(frames))
	for i, f := range frames {
		m[i] = []byte(f)
	}
	return m
}

// pipePair connects cli to srv over an in-memory connection, as Dial and
// Listen would over TCP, for tests inside a testing/synctest bubble: there
// the clock advances only while every goroutine waits on the bubble itself,
// which a goroutine reading a loopback socket does not.
func pipePair(srv, cli *Socket) {
	a, b := net.Pipe()
	for _, end := range []struct {
		s  *Socket
		nc net.Conn
	}{{srv, newBufferedConn(a)}, {cli, newBufferedConn(b)}} {
		s := end.s
		s.wg.Add(1)
		s.handshaking.Add(1) // serveConn gives it back
		go func() { defer s.wg.Done(); s.serveConn(end.nc, "pipe") }()
	}
}

// bufferedConn is one end of a net.Pipe whose writes do not wait for the
// reader, as writes to a socket buffer do not: both ends of a ZMTP
// connection send their greeting before they read.
type bufferedConn struct {
	net.Conn
	out  chan []byte
	done chan struct{}
	once sync.Once
}

func newBufferedConn(nc net.Conn) *bufferedConn {
	c := &bufferedConn{Conn: nc, out: make(chan []byte, 1024), done: make(chan struct{})}
	go func() {
		for {
			select {
			case b := <-c.out:
				if _, err := c.Conn.Write(b); err != nil {
					return
				}
			case <-c.done:
				return
			}
		}
	}()
	return c
}

func (c *bufferedConn) Write(b []byte) (int, error) {
	select {
	case c.out <- bytes.Clone(b):
		return len(b), nil
	case <-c.done:
		return 0, net.ErrClosed
	}
}

func (c *bufferedConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}
