package zmqpull

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/msgpack"
	"github.com/dynfw/sentinel/zmtp"
)

// A flood of connections that never finish their handshake is bounded:
// beyond MaxHandshakes (and MaxProbes) they are closed at once and counted,
// and the probe already connected keeps delivering.
func TestConnectionFloodIsBounded(t *testing.T) {
	c := &collector{}
	in, err := New(Config{Listen: []string{"tcp://127.0.0.1:0"}, Probes: &events.Probes{}, MaxProbes: 8, MaxHandshakes: 4}, c.handle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { in.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	addr := in.Addrs()[0].String()

	push, err := zmtp.NewSocket(zmtp.PUSH, zmtp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer push.Close()
	push.Dial("tcp://" + addr)
	entry := func(ip string) []byte {
		b := msgpack.AppendMapHeader(nil, 3)
		for _, s := range []string{"type", "telnet", "action", "login", "ip", ip} {
			b = msgpack.AppendString(b, s)
		}
		return b
	}
	send := func(ip string) {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := push.Send(sctx, zmtp.Message{[]byte("sentinel/collect/minipot"), entry(ip)}); err != nil {
			t.Fatal(err)
		}
	}
	send("45.1.1.1")
	c.wait(t, 1)

	// Half-open connections: TCP only, no greeting.
	var flood []net.Conn
	defer func() {
		for _, nc := range flood {
			nc.Close()
		}
	}()
	for range 32 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, nc)
	}
	deadline := time.Now().Add(10 * time.Second)
	for in.SocketStats().Refused < 32-4 {
		if time.Now().After(deadline) {
			t.Fatalf("refused %d of the flood, want at least %d: %+v", in.SocketStats().Refused, 32-4, in.SocketStats().RefuseReasons)
		}
		time.Sleep(10 * time.Millisecond)
	}
	send("45.1.1.2")
	c.wait(t, 2)
}
