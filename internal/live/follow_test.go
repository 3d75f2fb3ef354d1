package live

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/publish"
	"github.com/dynfw/sentinel/zmtp"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startPublisher runs the real DynFW publisher with CURVE on a loopback
// port and returns it with its public key.
func startPublisher(t testing.TB, st publish.State, interval time.Duration) (*publish.Publisher, [32]byte) {
	t.Helper()
	cert, err := zcert.New()
	if err != nil {
		t.Fatal(err)
	}
	p, err := publish.New(publish.Config{Listen: []string{"tcp://127.0.0.1:0"}, Curve: &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret},
		ListInterval: interval, Logger: quiet}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; p.Close() })
	return p, [32]byte(cert.Public)
}

func follow(t testing.TB, h *Hub, cfg FollowConfig) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Follow(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Follow: %v", err)
		}
	})
}

// TestFollowPublisher: a hub follows the real publisher over CURVE; a
// browser's stream gets the snapshot, then each event and delta within a
// second of publication.
func TestFollowPublisher(t *testing.T) {
	p, key := startPublisher(t, publish.State{Version: 7, Serial: 41, List: []netip.Prefix{pfx("1.1.1.1"), pfx("10.0.0.0/8")}}, 50*time.Millisecond)
	h, srv := newTestHub(t, Options{Logger: quiet, CountryInterval: 20 * time.Millisecond})
	follow(t, h, FollowConfig{Endpoint: "tcp://" + p.Addrs()[0].String(), ServerKey: &key})

	waitFor(t, 5*time.Second, "the list", func() bool {
		s := h.Snapshot().Status
		return s.State == StateConnected && s.Version == 7 && s.Serial == 41 && s.Size == 2
	})
	if got := string(h.ListText()); got != "1.1.1.1\n10.0.0.0/8\n" {
		t.Fatalf("list.txt %q", got)
	}

	stream, _ := openSSE(t, srv.URL+"/dynfw/events", nil)
	var snap Snapshot
	next(t, stream, time.Second, "snapshot").decode(t, &snap)
	if snap.Status.Serial != 41 || snap.Status.Size != 2 || snap.Status.State != StateConnected || len(snap.Events) != 0 {
		t.Fatalf("snapshot %+v", snap)
	}

	now := time.Now()
	p.Event(events.TelnetLogin, netip.MustParseAddr("8.8.8.8"), now)
	var ev Event
	e := next(t, stream, time.Second, "event")
	e.decode(t, &ev)
	if ev.Name != "telnet_login" || ev.IP != "8.8.8.8" || ev.CC != "US" {
		t.Fatalf("event %+v", ev)
	}
	if lat := e.At.Sub(now); lat > time.Second {
		t.Fatalf("event took %v", lat)
	}

	// The counters follow, batched.
	var c Counts
	next(t, stream, time.Second, "countries").decode(t, &c)
	if c.Total != 1 || c.Countries["US"] != 1 || c.Types["telnet_login"] != 1 || c.Names["US"] != "United States" {
		t.Fatalf("countries %+v", c)
	}

	now = time.Now()
	p.Delta(true, pfx("2.2.2.2"), now)
	var d Delta
	e = next(t, stream, time.Second, "delta")
	e.decode(t, &d)
	if d.Op != "+" || d.IP != "2.2.2.2" || d.Serial != 42 || d.CC != "CZ" || d.Size != 3 {
		t.Fatalf("delta %+v", d)
	}
	if lat := e.At.Sub(now); lat > time.Second {
		t.Fatalf("delta took %v", lat)
	}
	p.Delta(false, pfx("1.1.1.1"), time.Now())
	next(t, stream, time.Second, "delta").decode(t, &d)
	if d.Op != "-" || d.IP != "1.1.1.1" || d.Serial != 43 || d.Size != 2 {
		t.Fatalf("delta %+v", d)
	}

	s := h.Snapshot()
	if s.Status.Serial != 43 || s.Status.Size != 2 || len(s.Events) != 1 || len(s.Deltas) != 2 || s.Deltas[0].IP != "1.1.1.1" {
		t.Fatalf("state %+v", s)
	}
	if got := string(h.ListText()); got != "2.2.2.2\n10.0.0.0/8\n" {
		t.Fatalf("list.txt %q", got)
	}
	if pst := p.State(); pst.Serial != s.Status.Serial {
		t.Fatalf("publisher serial %d, hub %d", pst.Serial, s.Status.Serial)
	}
}

// rawPub is a hand-driven PUB socket (NULL security) that can send what the
// real publisher never would: serial gaps.
type rawPub struct {
	t    *testing.T
	sock *zmtp.Socket
	ep   string
}

func newRawPub(t *testing.T) *rawPub {
	sock, err := zmtp.NewSocket(zmtp.PUB, zmtp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := sock.Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	return &rawPub{t: t, sock: sock, ep: "tcp://" + addr.String()}
}

func (r *rawPub) send(m dynfw.Message) {
	r.sock.Send(context.Background(), zmtp.Message{[]byte(m.Topic()), m.AppendMsgpack(nil)})
}

// until sends m every 10 ms until cond holds.
func (r *rawPub) until(m dynfw.Message, what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		r.send(m)
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFollowSerialGap: deltas in order are applied, a gap makes the hub
// resynchronise from the next list, and a new version replaces the list.
// The publisher here uses NULL security, the other FollowConfig branch.
func TestFollowSerialGap(t *testing.T) {
	pub := newRawPub(t)
	h, srv := newTestHub(t, Options{Logger: quiet})
	follow(t, h, FollowConfig{Endpoint: pub.ep})
	st := func() Status { return h.Snapshot().Status }

	pub.until(&dynfw.List{Version: 1, Serial: 10, Addrs: []netip.Prefix{pfx("1.1.1.1")}}, "first list", func() bool {
		return st().Serial == 10 && st().State == StateConnected
	})
	stream, _ := openSSE(t, srv.URL+"/dynfw/events", nil)
	next(t, stream, time.Second, "snapshot")

	pub.send(&dynfw.Delta{Serial: 11, Op: dynfw.Positive, Addr: pfx("2.2.2.2")})
	waitFor(t, 2*time.Second, "delta 11", func() bool { return st().Serial == 11 && st().Size == 2 })

	// Serial 50 after 11: the list is stale; the hub waits for a list and
	// shows itself syncing.
	pub.send(&dynfw.Delta{Serial: 50, Op: dynfw.Positive, Addr: pfx("3.3.3.3")})
	waitFor(t, 2*time.Second, "resync", func() bool { return st().State == StateSyncing && st().Resyncs == 1 })
	if st().Serial != 11 || st().Size != 2 {
		t.Fatalf("gap delta applied: %+v", st())
	}
	var s Status
	next(t, stream, time.Second, "status").decode(t, &s)
	if s.State != StateSyncing {
		t.Fatalf("status %+v", s)
	}
	pub.until(&dynfw.List{Version: 1, Serial: 60, Addrs: []netip.Prefix{pfx("3.3.3.3"), pfx("4.4.4.4"), pfx("5.5.5.5")}}, "resync list", func() bool {
		return st().Serial == 60 && st().State == StateConnected
	})
	if st().Size != 3 || string(h.ListText()) != "3.3.3.3\n4.4.4.4\n5.5.5.5\n" {
		t.Fatalf("after resync: %+v %q", st(), h.ListText())
	}
	next(t, stream, time.Second, "status").decode(t, &s)
	for s.Serial != 60 {
		next(t, stream, time.Second, "status").decode(t, &s)
	}
	if s.Size != 3 {
		t.Fatalf("status %+v", s)
	}
	pub.send(&dynfw.Delta{Serial: 61, Op: dynfw.Negative, Addr: pfx("4.4.4.4")})
	var d Delta
	next(t, stream, time.Second, "delta").decode(t, &d)
	if d.Serial != 61 || d.Op != "-" || d.Size != 2 {
		t.Fatalf("delta %+v", d)
	}

	// Events with a bad address still count, without an address.
	pub.send(&dynfw.Event{Name: "smtp_invalid", Addr: netip.MustParseAddr("45.155.205.30")})
	var ev Event
	next(t, stream, time.Second, "event").decode(t, &ev)
	if ev.IP != "45.155.205.30" || ev.CC != "NL" {
		t.Fatalf("event %+v", ev)
	}
}

// TestFollowDisconnected: the page says so when the publisher goes away.
func TestFollowDisconnected(t *testing.T) {
	pub := newRawPub(t)
	h, _ := newTestHub(t, Options{Logger: quiet})
	follow(t, h, FollowConfig{Endpoint: pub.ep})
	pub.until(&dynfw.List{Version: 1, Serial: 1}, "list", func() bool { return h.Snapshot().Status.State == StateConnected })
	pub.sock.Close()
	waitFor(t, 5*time.Second, "disconnected", func() bool { return h.Snapshot().Status.State == StateDisconnected })
}

func TestLoadServerKey(t *testing.T) {
	k, err := LoadServerKey("../../zmtp/zcert/testdata/dynfw.pub")
	if err != nil {
		t.Fatal(err)
	}
	if got := zcert.Key(*k).String(); got != turrisKey {
		t.Fatalf("key %s", got)
	}
	if _, err := LoadServerKey("testdata/missing.pub"); err == nil {
		t.Fatal("no error for a missing file")
	}
}

// turrisKey is the public DynFW server key of sentinel.turris.cz.
const turrisKey = `D=rkicUyn5AcL)>9$2Db0HIELd2F*WaS-zDTikU*`

// TestFollowEndKeepsResyncs: when Follow returns, the page shows the hub
// disconnected with the resynchronisations counted so far (not zero).
func TestFollowEndKeepsResyncs(t *testing.T) {
	pub := newRawPub(t)
	h, _ := newTestHub(t, Options{Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Follow(ctx, FollowConfig{Endpoint: pub.ep}) }()
	st := func() Status { return h.Snapshot().Status }
	pub.until(&dynfw.List{Version: 1, Serial: 1}, "the list", func() bool { return st().State == StateConnected })
	pub.send(&dynfw.Delta{Serial: 40, Op: dynfw.Positive, Addr: pfx("2.2.2.2")})
	waitFor(t, 2*time.Second, "the resync", func() bool { return st().Resyncs == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow: %v", err)
	}
	if s := st(); s.State != StateDisconnected || s.Resyncs != 1 {
		t.Fatalf("after Follow: %+v", s)
	}
}
