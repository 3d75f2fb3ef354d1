package zmqpull

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/testenv"
	"github.com/dynfw/sentinel/zmtp"
)

type collector struct {
	mu  sync.Mutex
	evs []events.Event
}

func (c *collector) handle(evs []events.Event) {
	c.mu.Lock()
	c.evs = append(c.evs, evs...)
	c.mu.Unlock()
}

func (c *collector) wait(t *testing.T, n int) []events.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := append([]events.Event(nil), c.evs...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(t *testing.T, curve *zmtp.CurveOptions) (*Ingest, *collector, *events.Probes) {
	t.Helper()
	c := &collector{}
	probes := &events.Probes{}
	in, err := New(Config{Listen: []string{"tcp://127.0.0.1:0"}, Curve: curve, Probes: probes}, c.handle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { in.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return in, c, probes
}

// The exact traffic of a router's probes, pushed by libzmq with payloads
// packed by msgpack-python: a welcome, a minipot batch (v2.3.0), single
// fwlogs packets, garbage and bad topics.
const probeScript = `
import sys, time, zmq, msgpack
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.connect(sys.argv[1])
s.send(b"sentinel/collect/fwlogs")
batch = [
    {"ts": 1700000000, "type": "telnet", "ip": "1.2.3.4", "action": "connect"},
    {"ts": 1700000001, "type": "telnet", "ip": "1.2.3.4", "action": "login", "data": {"username": "root", "password": "admin"}},
    {"ts": 1700000002, "type": "http", "ip": "2001:db8::5", "action": "message", "data": {"method": "GET", "url": "/", "user_agent": "x"}},
]
s.send_multipart([b"sentinel/collect/minipot", msgpack.packb(batch)])
s.send_multipart([b"sentinel/collect/fwlogs", msgpack.packb({"ts": 1700000003, "protocol": "TCP", "ip": "5.6.7.8", "port": 40000, "local_ip": "192.0.2.1", "local_port": 23})])
s.send_multipart([b"sentinel/collect/minipot", b"\xc1garbage"])
s.send_multipart([b"other/topic", msgpack.packb({})])
s.send_multipart([b"sentinel/collect/minipot", b"a", b"b"])
s.send_multipart([b"sentinel/collect/survey", msgpack.packb([{"os_version": "7.0"}])])
s.send_multipart([b"sentinel/collect/minipot", msgpack.packb({"ts": 5, "type": "ftp", "ip": "9.9.9.9", "action": "invalid"})])
s.close(linger=5000)
ctx.term()
`

func TestProbeTrafficFromLibzmq(t *testing.T) {
	py := testenv.Python(t)
	in, c, _ := start(t, nil)
	out, err := exec.Command(py, "-c", probeScript, "tcp://"+in.Addrs()[0].String()).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	evs := c.wait(t, 5)
	want := []events.Type{events.TelnetConnect, events.TelnetLogin, events.HTTPMessage, events.FwlogsPacket, events.FTPInvalid}
	for i, w := range want {
		if evs[i].Type != w || evs[i].Source != events.FromZMQ || evs[i].Probe == 0 {
			t.Fatalf("event %d: %+v, want %v", i, evs[i], w)
		}
	}
	st := in.Stats()
	rej := st.Rejected()
	if st.Welcomes.Load() != 1 || rej["malformed"] != 1 || rej["bad_topic"] != 1 || rej["bad_frames"] != 1 || st.Ignored() != 1 {
		t.Fatalf("welcomes %d ignored %d rejected %v", st.Welcomes.Load(), st.Ignored(), rej)
	}
}

func TestCurveProbesAreIdentifiedByKey(t *testing.T) {
	spub, ssec := keyPair(t)
	in, c, probes := start(t, &zmtp.CurveOptions{Server: true, SecretKey: ssec})
	push, err := zmtp.NewSocket(zmtp.PUSH, zmtp.Options{Curve: &zmtp.CurveOptions{ServerKey: spub}})
	if err != nil {
		t.Fatal(err)
	}
	defer push.Close()
	push.Dial("tcp://" + in.Addrs()[0].String())
	payload := []byte("\x84\xa2ts\x01\xa4type\xa3ftp\xa2ip\xa71.2.3.4\xa6action\xa7connect")
	push.Send(context.Background(), zmtp.Message{[]byte("sentinel/collect/minipot"), payload})
	evs := c.wait(t, 1)
	p, ok := probes.Get(evs[0].Probe)
	if !ok || !strings.HasPrefix(p.Name, "zmq:") || len(p.Name) != 4+40 {
		t.Fatalf("probe %+v", p)
	}
}
