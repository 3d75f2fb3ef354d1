package zmqpull

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/zmtp"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// str packs a msgpack fixstr or str8.
func str(s string) []byte {
	if len(s) < 32 {
		return append([]byte{0xa0 | byte(len(s))}, s...)
	}
	return append([]byte{0xd9, byte(len(s))}, s...)
}

// Hostile strings in topics and payloads are refused, counted under their
// reason, and never reach the log; so is a message over the size limit,
// which closes its connection.
func TestHostileInputIsCountedNotLogged(t *testing.T) {
	const evil = "EVIL<\x1b[31m\n"
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := &collector{}
	in, err := New(Config{Listen: []string{"tcp://127.0.0.1:0"}, Probes: &events.Probes{}, Logger: log, MaxMessageSize: 64 << 10}, c.handle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { in.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	ep := "tcp://" + in.Addrs()[0].String()
	push, err := zmtp.NewSocket(zmtp.PUSH, zmtp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer push.Close()
	push.Dial(ep)
	entry := func(kv ...string) []byte {
		b := []byte{0x80 | byte(len(kv)/2)}
		for _, s := range kv {
			b = append(b, str(s)...)
		}
		return b
	}
	for _, m := range []zmtp.Message{
		{[]byte(evil)}, // welcome
		{[]byte("sentinel/collect/" + evil), []byte{0x80}},               // unknown topic
		{[]byte(evil + "/x"), []byte{0x80}},                              // bad topic
		{[]byte("sentinel/collect/minipot"), []byte(evil), []byte(evil)}, // bad frames
		{[]byte("sentinel/collect/minipot"), []byte("\xc1" + evil)},      // malformed
		{[]byte("sentinel/collect/minipot"), entry("type", "telnet", "action", "login", "ip", evil)},
		{[]byte("sentinel/collect/minipot"), entry("type", evil, "action", evil, "ip", "1.2.3.4")},
		{[]byte("sentinel/collect/faillogs"), entry("service", evil, "ip", "1.2.3.4")},
		{[]byte("sentinel/collect/haas"), entry("ts", evil, "ip", "1.2.3.4", "action", "logged")},
		{[]byte("sentinel/collect/minipot"), entry("type", "ftp", "action", "connect", "ip", "1.2.3.4")},
	} {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		push.Send(sctx, m)
		scancel()
	}
	c.wait(t, 1)
	// Over the size limit: that connection is closed.
	big, _ := zmtp.NewSocket(zmtp.PUSH, zmtp.Options{})
	defer big.Close()
	big.Dial(ep)
	big.Send(context.Background(), zmtp.Message{[]byte("sentinel/collect/" + evil), bytes.Repeat([]byte(evil), 100<<10)})
	deadline := time.Now().Add(10 * time.Second)
	for in.SocketStats().DisconnectReasons[zmtp.ReasonMessageTooLarge] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("oversized message not counted: %+v", in.SocketStats())
		}
		time.Sleep(10 * time.Millisecond)
	}

	rej := in.Stats().Rejected()
	for r, n := range map[string]uint64{"unknown_topic": 1, "bad_topic": 1, "bad_frames": 1, "malformed": 1, "bad_address": 1, "bad_type": 2, "bad_value": 1} {
		if rej[r] != n {
			t.Errorf("rejected[%s] = %d, want %d (%v)", r, rej[r], n, rej)
		}
	}
	out := logs.String()
	for _, s := range []string{"EVIL", "\x1b"} {
		if strings.Contains(out, s) {
			t.Errorf("the log holds %q:\n%s", s, out)
		}
	}
	for _, r := range []string{"bad_topic", "bad_frames", "malformed", "bad_address", "bad_type", "message_too_large"} {
		if !strings.Contains(out, "reason="+r) {
			t.Errorf("no log line for %s:\n%s", r, out)
		}
	}
}
