package client

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/firewall/fwtest"
	"github.com/dynfw/sentinel/internal/msgpack"
	"github.com/dynfw/sentinel/internal/policy"
	"github.com/dynfw/sentinel/zmtp"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

// fakeServer publishes like the Turris server: a list on a timer, a delta per
// change, with a serial shared by both.
type fakeServer struct {
	t       *testing.T
	pub     *zmtp.Socket
	key     zcert.Key
	port    int
	mu      sync.Mutex
	version uint64
	serial  uint64
	addrs   map[netip.Prefix]bool
	stop    chan struct{}
}

func newFakeServer(t *testing.T, listEvery time.Duration) *fakeServer {
	t.Helper()
	cert, err := zcert.New()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := zmtp.NewSocket(zmtp.PUB, zmtp.Options{Curve: &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := pub.Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr.String())
	p, _ := strconv.Atoi(port)
	f := &fakeServer{t: t, pub: pub, key: cert.Public, port: p, version: 1000, addrs: map[netip.Prefix]bool{}, stop: make(chan struct{})}
	go func() {
		tk := time.NewTicker(listEvery)
		defer tk.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-tk.C:
				f.sendList()
			}
		}
	}()
	t.Cleanup(func() { close(f.stop); pub.Close() })
	return f
}

func (f *fakeServer) sendList() {
	f.mu.Lock()
	l := dynfw.List{Version: f.version, Serial: f.serial, TS: uint64(time.Now().Unix())}
	for p := range f.addrs {
		l.Addrs = append(l.Addrs, p)
	}
	f.mu.Unlock()
	f.pub.Send(context.Background(), zmtp.Message{[]byte(dynfw.TopicList), l.Marshal()})
}

// change applies a delta to the server state; publish=false loses it on the
// way (a gap for the client).
func (f *fakeServer) change(add bool, addr string, publish bool) {
	p := mustPrefix(addr)
	f.mu.Lock()
	f.serial++
	d := dynfw.Delta{Serial: f.serial, Op: dynfw.Negative, Addr: p, TS: 1}
	if add {
		d.Op = dynfw.Positive
		f.addrs[p] = true
	} else {
		delete(f.addrs, p)
	}
	f.mu.Unlock()
	if publish {
		f.pub.Send(context.Background(), zmtp.Message{[]byte(dynfw.TopicDelta), d.Marshal()})
	}
}

// reset restarts the server's numbering with a new version.
func (f *fakeServer) reset() {
	f.mu.Lock()
	f.version++
	f.serial = 0
	f.mu.Unlock()
}

func (f *fakeServer) want() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for p := range f.addrs {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

func mustPrefix(s string) netip.Prefix {
	p, err := dynfw.ParseAddr(s, true)
	if err != nil {
		panic(err)
	}
	return p
}

func waitContents(t *testing.T, mem *fwtest.Memory, want []string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := mem.Contents()
		if slices.Equal(got, want) || (len(got) == 0 && len(want) == 0) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("firewall holds %v, want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startSyncer(t *testing.T, f *fakeServer, cfg SyncConfig, pol policy.Config) (*Syncer, *fwtest.Memory, context.CancelFunc) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	conn, err := Dial(Config{Server: "127.0.0.1", Port: f.port, ServerKey: f.key, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.WaitConnected(ctx, false); err != nil {
		t.Fatal(err)
	}
	mem := fwtest.NewMemory()
	cfg.Logger = logger
	if cfg.BatchInterval == 0 {
		cfg.BatchInterval = 5 * time.Millisecond
	}
	s := NewSyncer(cfg, conn, policy.New(pol), mem)
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	t.Cleanup(func() {
		rcancel()
		<-done
	})
	return s, mem, rcancel
}

func TestSyncerFollowsServer(t *testing.T) {
	f := newFakeServer(t, 50*time.Millisecond)
	f.change(true, "1.1.1.1", true)
	f.change(true, "2001:db8::1", true)
	f.change(true, "11.0.0.0/8", true)
	s, mem, _ := startSyncer(t, f, SyncConfig{}, policy.Config{})
	waitContents(t, mem, f.want(), 5*time.Second)
	if r, _ := mem.Calls(); r != 1 {
		t.Fatalf("%d replaces for the first list", r)
	}
	// Deltas in order.
	for i := 0; i < 50; i++ {
		f.change(true, "5.5.5."+strconv.Itoa(i), true)
	}
	f.change(false, "1.1.1.1", true)
	waitContents(t, mem, f.want(), 5*time.Second)
	// A lost delta: the next one reveals the gap and a list repairs it.
	f.change(true, "6.6.6.6", false)
	f.change(true, "7.7.7.7", true)
	waitContents(t, mem, f.want(), 5*time.Second)
	if n := s.Stats().Resyncs["serial gap"].Load() + s.Stats().Resyncs["gap not filled in time"].Load(); n == 0 {
		t.Fatal("a lost delta did not cause a resync")
	}
	// The server restarts with a new version and serials from 0.
	f.reset()
	f.change(true, "8.8.8.8", true)
	f.change(false, "7.7.7.7", true)
	waitContents(t, mem, f.want(), 5*time.Second)
	if v := s.Stats().Version.Load(); v != 1001 {
		t.Fatalf("version %d after the reset", v)
	}
	if r, _ := mem.Calls(); r != 1 {
		t.Fatalf("resyncs used %d full replaces; they must apply differences", r)
	}
}

func TestSyncerKeepsLastGoodSetWhenBackendFails(t *testing.T) {
	f := newFakeServer(t, 30*time.Millisecond)
	f.change(true, "1.1.1.1", true)
	_, mem, _ := startSyncer(t, f, SyncConfig{}, policy.Config{})
	waitContents(t, mem, f.want(), 5*time.Second)
	mem.SetFail(errors.New("netlink: operation not permitted"))
	f.change(true, "2.2.2.2", true)
	time.Sleep(100 * time.Millisecond)
	if got := mem.Contents(); !slices.Equal(got, []string{"1.1.1.1/32"}) {
		t.Fatalf("contents changed while failing: %v", got)
	}
	mem.SetFail(nil)
	// The syncer retries with a full replace after its backoff (1 s).
	waitContents(t, mem, f.want(), 5*time.Second)
	if r, _ := mem.Calls(); r < 2 {
		t.Fatalf("no full replace after the failure (%d)", r)
	}
}

func TestSyncerOnce(t *testing.T) {
	f := newFakeServer(t, 30*time.Millisecond)
	f.change(true, "9.9.9.9", true)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	conn, err := Dial(Config{Server: "127.0.0.1", Port: f.port, ServerKey: f.key, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mem := fwtest.NewMemory()
	s := NewSyncer(SyncConfig{Once: true, Logger: logger}, conn, policy.New(policy.Config{}), mem)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Run(ctx); err != nil || ctx.Err() != nil {
		t.Fatalf("Run: %v (ctx %v)", err, ctx.Err())
	}
	if got := mem.Contents(); !slices.Equal(got, []string{"9.9.9.9/32"}) {
		t.Fatalf("contents %v", got)
	}
}

func TestSyncerIPv6Expansion(t *testing.T) {
	f := newFakeServer(t, 30*time.Millisecond)
	f.change(true, "2001:db8::1", true)
	f.change(true, "2001:db8::2", true)
	_, mem, _ := startSyncer(t, f, SyncConfig{}, policy.Config{IPv6Prefix: 64, Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	waitContents(t, mem, []string{"2001:db8::/64"}, 5*time.Second)
	f.change(true, "192.0.2.7", true) // allow-listed: never blocked
	f.change(false, "2001:db8::1", true)
	f.change(true, "3.3.3.3", true)
	waitContents(t, mem, []string{"2001:db8::/64", "3.3.3.3/32"}, 5*time.Second)
}

// TestSyncerSurvivesBadInput: malformed payloads are counted and dropped,
// a delta with an unusable address still advances the serial, and a message
// over the size limit only costs a reconnection; the firewall converges and
// nothing accepted before is lost.
func TestSyncerSurvivesBadInput(t *testing.T) {
	f := newFakeServer(t, 50*time.Millisecond)
	f.change(true, "1.1.1.1", true)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	conn, err := Dial(Config{Server: "127.0.0.1", Port: f.port, ServerKey: f.key, Logger: logger, MaxMessageSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.WaitConnected(ctx, false); err != nil {
		t.Fatal(err)
	}
	mem := fwtest.NewMemory()
	s := NewSyncer(SyncConfig{BatchInterval: 5 * time.Millisecond, Logger: logger}, conn, policy.New(policy.Config{}), mem)
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	defer func() { rcancel(); <-done }()
	waitContents(t, mem, f.want(), 5*time.Second)

	send := func(frames ...[]byte) { f.pub.Send(context.Background(), zmtp.Message(frames)) }
	send([]byte(dynfw.TopicDelta), []byte{0xc1})                       // not msgpack
	send([]byte(dynfw.TopicDelta), []byte{0x81, 0xa1, 'x', 0x01})      // a map without the fields
	send([]byte(dynfw.TopicList), []byte("\x84garbage"))               // truncated list
	send([]byte(dynfw.TopicDelta), []byte("x"), []byte("third frame")) // three frames
	// A delta whose address is unusable: skipped, but its serial counts.
	f.mu.Lock()
	f.serial++
	bad := dynfw.Delta{Serial: f.serial, Op: dynfw.Positive, TS: 1}
	f.mu.Unlock()
	send([]byte(dynfw.TopicDelta), withIP(t, bad, "999.1.1.1"))
	f.change(true, "2.2.2.2", true)
	waitContents(t, mem, f.want(), 5*time.Second)
	st := s.Stats()
	if st.Malformed.Load() != 3 || st.SkippedBadAddress.Load() != 1 {
		t.Fatalf("malformed %d, bad addresses %d", st.Malformed.Load(), st.SkippedBadAddress.Load())
	}
	if n := st.Resyncs["serial gap"].Load() + st.Resyncs["gap not filled in time"].Load(); n != 0 {
		t.Fatalf("a delta with a bad address broke the serial chain (%d resyncs)", n)
	}
	// Oversized: the transport drops the connection, the client comes back
	// and verifies its state; the firewall keeps its set meanwhile.
	send([]byte(dynfw.TopicDelta), make([]byte, 100<<10))
	f.change(true, "3.3.3.3", true)
	waitContents(t, mem, f.want(), 10*time.Second)
	if st.Reconnects.Load() == 0 {
		t.Fatal("no reconnection after an oversized message")
	}
}

// withIP encodes d with a raw address string, valid or not.
func withIP(t *testing.T, d dynfw.Delta, ip string) []byte {
	t.Helper()
	b := msgpack.AppendMapHeader(nil, 4)
	b = msgpack.AppendString(b, "serial")
	b = msgpack.AppendUint(b, d.Serial)
	b = msgpack.AppendString(b, "delta")
	b = msgpack.AppendString(b, "positive")
	b = msgpack.AppendString(b, "ip")
	b = msgpack.AppendString(b, ip)
	b = msgpack.AppendString(b, "ts")
	return msgpack.AppendUint(b, d.TS)
}
