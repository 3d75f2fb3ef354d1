package mqtt

// Tests against a real Mosquitto: the shared development broker on
// 127.0.0.1:1883 (anonymous, as on every development and CI machine), and
// private instances started from the mosquitto binary for TLS and for broker
// restarts, which must not disturb the shared one. Every test uses its own
// random topic root and client IDs, so tests (and developers) sharing the
// broker do not see each other's messages.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dynfw/sentinel/internal/msgpack"
	"github.com/dynfw/sentinel/internal/testenv"
)

// sharedBroker is the development broker the tests expect.
const sharedBroker = "127.0.0.1:1883"

// needBroker skips the test (fails it in strict mode) unless addr accepts
// TCP connections.
func needBroker(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		testenv.Skip(t, fmt.Sprintf("needs an MQTT broker on %s (apt-get install mosquitto; mosquitto -d -c /etc/mosquitto/mosquitto.conf): %v", addr, err))
	}
	c.Close()
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// randomRoot returns a topic root of its own for one test.
func randomRoot(t testing.TB) string {
	return "test/" + randomHex(t, 8) + "/sentinel/collect"
}

// running is a Subscriber started by startSubscriber.
type running struct {
	*Subscriber
	msgs chan Message
}

// startSubscriber runs a Subscriber with cfg (fast reconnects and the test's
// logger unless set) until the test ends, and waits until it is subscribed.
func startSubscriber(t *testing.T, cfg Config) *running {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.ReconnectMin == 0 {
		cfg.ReconnectMin, cfg.ReconnectMax = 50*time.Millisecond, 200*time.Millisecond
	}
	r := &running{msgs: make(chan Message, 1000)}
	s, err := New(cfg, func(m Message) { r.msgs <- m })
	if err != nil {
		t.Fatal(err)
	}
	r.Subscriber = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5 s of cancellation")
		}
		if s.Stats().Connected {
			t.Error("still connected after Run returned")
		}
	})
	waitFor(t, 10*time.Second, "subscription", func() bool { return s.Stats().Connected })
	return r
}

// next returns the next message handed to the handler.
func (r *running) next(t *testing.T) Message {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("no message within 10 s; stats %+v", r.Stats())
		return Message{}
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publisher is an MQTT client that publishes as sentinel-proxy does.
type publisher struct {
	paho.Client
	mu   sync.Mutex
	conn net.Conn // the raw connection, to cut it without DISCONNECT
}

// newPublisher connects a client to broker ("host:port"). opts may add a last
// will or TLS; the connection is dialled here so that the test can cut it.
func newPublisher(t *testing.T, broker, clientID string, tc *tls.Config, opts func(*paho.ClientOptions)) *publisher {
	t.Helper()
	p := &publisher{}
	o := paho.NewClientOptions().
		AddBroker("tcp://" + broker).
		SetClientID(clientID).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetKeepAlive(60 * time.Second).
		SetConnectTimeout(5 * time.Second).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
			if err != nil {
				return nil, err
			}
			if tc != nil {
				tconn := tls.Client(c, tc)
				if err := tconn.Handshake(); err != nil {
					c.Close()
					return nil, err
				}
				c = tconn
			}
			p.mu.Lock()
			p.conn = c
			p.mu.Unlock()
			return c, nil
		})
	if opts != nil {
		opts(o)
	}
	p.Client = paho.NewClient(o)
	if tok := p.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher %s: connect: %v", clientID, tok.Error())
	}
	t.Cleanup(func() {
		if p.IsConnected() {
			p.Disconnect(100)
		}
	})
	return p
}

func (p *publisher) publish(t *testing.T, topic string, qos byte, payload []byte) {
	t.Helper()
	tok := p.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish to %s: %v", topic, tok.Error())
	}
}

// cut closes the TCP connection under the client, as a crash or a cable
// pulled out would: the broker then publishes the last will.
func (p *publisher) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conn.Close()
}

// statusPayload returns a status map as sentinel-proxy packs it; ts < 0
// leaves out "ts", as in the last will.
func statusPayload(action string, ts int64) []byte {
	n := 2
	if ts < 0 {
		n = 1
	}
	b := msgpack.AppendMapHeader(nil, n)
	b = msgpack.AppendString(b, "action")
	b = msgpack.AppendString(b, action)
	if ts >= 0 {
		b = msgpack.AppendString(b, "ts")
		b = msgpack.AppendInt(b, ts)
	}
	return b
}

// surveyPayload is an array with one map, as sentinel-turris-survey sends.
func surveyPayload() []byte {
	b := msgpack.AppendArrayHeader(nil, 1)
	b = msgpack.AppendMapHeader(b, 1)
	b = msgpack.AppendString(b, "os_version")
	return msgpack.AppendString(b, "7.0.0")
}

func checkMessage(t *testing.T, got Message, want Message) {
	t.Helper()
	if got.Serial != want.Serial || got.Token != want.Token || got.Suffix != want.Suffix ||
		string(got.Payload) != string(want.Payload) || got.Legacy != want.Legacy || got.Zlib != want.Zlib ||
		(got.Status == nil) != (want.Status == nil) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if d := time.Since(got.Received); d < 0 || d > time.Minute {
		t.Errorf("Received %v is not recent", got.Received)
	}
}

// TestBrokerData publishes what the proxies of every version send and checks
// what reaches the handler.
func TestBrokerData(t *testing.T) {
	t.Parallel()
	needBroker(t, sharedBroker)
	root := randomRoot(t)
	sub := startSubscriber(t, Config{URL: "tcp://" + sharedBroker, Root: root})
	cn := "0000000D3000" + strings.ToUpper(randomHex(t, 2))
	token := testToken(1)
	proxy := newPublisher(t, sharedBroker, cn, nil, nil)

	event := minipotEvent("198.51.100.23")
	for _, c := range []struct {
		name  string
		topic string
		in    []byte
		want  Message
	}{
		{"proxy 2.x minipot", DataTopic(root, cn, token, "minipot"), event,
			Message{Serial: cn, Token: token, Suffix: "minipot", Payload: event}},
		{"proxy 2.x fwlogs", DataTopic(root, cn, token, "fwlogs"), event,
			Message{Serial: cn, Token: token, Suffix: "fwlogs", Payload: event}},
		{"survey, an array", DataTopic(root, cn, token, "survey"), surveyPayload(),
			Message{Serial: cn, Token: token, Suffix: "survey", Payload: surveyPayload()}},
		{"suffix with segments", DataTopic(root, cn, token, "minipot/http"), event,
			Message{Serial: cn, Token: token, Suffix: "minipot/http", Payload: event}},
		{"proxy 1.3 zlib", DataTopic(root, cn, token, "minipot"), zlibLevel9(t, event),
			Message{Serial: cn, Token: token, Suffix: "minipot", Payload: event, Legacy: true, Zlib: true}},
		{"proxy 1.1 without token", LegacyTopic(root, cn, "minipot"), zlibLevel9(t, event),
			Message{Serial: cn, Suffix: "minipot", Payload: event, Legacy: true, Zlib: true}},
		{"legacy suffix with segments", LegacyTopic(root, cn, "nikola/fw"), event,
			Message{Serial: cn, Suffix: "nikola/fw", Payload: event, Legacy: true}},
	} {
		proxy.publish(t, c.topic, 0, c.in)
		got := sub.next(t)
		t.Logf("%s: %s %q legacy=%v zlib=%v %d bytes", c.name, got.Serial, got.Suffix, got.Legacy, got.Zlib, len(got.Payload))
		checkMessage(t, got, c.want)
	}
	st := sub.Stats()
	if st.Received != 7 || st.Delivered != 7 || st.Inflated != 2 || st.Legacy != 3 || st.DroppedTotal() != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestBrokerStatus runs two proxies: one that shuts down cleanly (heartbeat,
// disconnect, DISCONNECT, so no last will) and one whose connection dies
// (heartbeat, then the broker publishes its last will).
func TestBrokerStatus(t *testing.T) {
	t.Parallel()
	needBroker(t, sharedBroker)
	root := randomRoot(t)
	sub := startSubscriber(t, Config{URL: "tcp://" + sharedBroker, Root: root})
	will := statusPayload("last_will_disconnect", -1)
	proxy := func(cn, token string) *publisher {
		return newPublisher(t, sharedBroker, cn, nil, func(o *paho.ClientOptions) {
			o.SetBinaryWill(StatusTopic(root, cn, token), will, 0, false)
		})
	}
	ts := time.Now().Unix()

	cnA, tokA := "AAAA"+randomHex(t, 6), testToken(10)
	a := proxy(cnA, tokA)
	a.publish(t, StatusTopic(root, cnA, tokA), 0, statusPayload("heartbeat", ts))
	a.publish(t, StatusTopic(root, cnA, tokA), 0, statusPayload("disconnect", ts+1))
	a.Disconnect(250)

	cnB, tokB := "BBBB"+randomHex(t, 6), testToken(11)
	b := proxy(cnB, tokB)
	b.publish(t, StatusTopic(root, cnB, tokB), 0, statusPayload("heartbeat", ts+2))
	beforeCut := time.Now()
	b.cut()

	for _, want := range []struct {
		serial, token string
		action        StatusAction
		ts            int64 // -1: added by the receiver
	}{
		{cnA, tokA, StatusHeartbeat, ts},
		{cnA, tokA, StatusDisconnect, ts + 1},
		{cnB, tokB, StatusHeartbeat, ts + 2},
		{cnB, tokB, StatusLastWill, -1},
	} {
		m := sub.next(t)
		t.Logf("%s %s %+v", m.Serial, m.Suffix, m.Status)
		if m.Serial != want.serial || m.Token != want.token || m.Suffix != "status" || m.Status == nil || m.Status.Action != want.action || m.Legacy {
			t.Fatalf("got %+v (status %+v), want %s from %s", m, m.Status, want.action, want.serial)
		}
		if want.ts >= 0 {
			if m.Status.TimeAdded || m.Status.Time.Unix() != want.ts {
				t.Errorf("%s: time %v (added %v), want %d", want.action, m.Status.Time, m.Status.TimeAdded, want.ts)
			}
			continue
		}
		if !m.Status.TimeAdded || m.Status.Time.Before(beforeCut.Truncate(time.Second)) || m.Status.Time.After(time.Now()) ||
			!m.Status.Time.Equal(m.Received.Truncate(time.Second)) {
			t.Errorf("last will: time %v (added %v), received %v, cut at %v", m.Status.Time, m.Status.TimeAdded, m.Received, beforeCut)
		}
	}
	select {
	case m := <-sub.msgs:
		t.Errorf("unexpected message %+v (status %+v)", m, m.Status)
	case <-time.After(200 * time.Millisecond):
	}
	if st := sub.Stats(); st.Status != 4 || st.DroppedTotal() != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestBrokerDrops publishes every kind of bad message, then a good one, and
// checks that only the good one arrives and the others are counted.
func TestBrokerDrops(t *testing.T) {
	t.Parallel()
	needBroker(t, sharedBroker)
	root := randomRoot(t)
	const max = 64 << 10
	sub := startSubscriber(t, Config{URL: "tcp://" + sharedBroker, Root: root, MaxPayload: max})
	cn := "0000000D3000" + strings.ToUpper(randomHex(t, 2))
	token := testToken(2)
	proxy := newPublisher(t, sharedBroker, cn+"-"+randomHex(t, 4), nil, nil)
	event := minipotEvent("203.0.113.5")
	zl := zlibLevel9(t, event)

	for _, c := range []struct {
		topic   string
		payload []byte
	}{
		{DataTopic(root, cn, token[:63]+"0", "minipot"), event},             // bad CRC
		{DataTopic(root, cn, strings.ToUpper(token), "minipot"), event},     // upper case
		{DataTopic(root, cn, zeroToken[:56]+"807077E9", "x"), event},        // upper-case CRC part
		{DataTopic(root, cn, token[:63], "minipot"), event},                 // 63 characters
		{DataTopic(root, cn, token+"0", "minipot"), event},                  // 65 characters
		{DataTopic(root, strings.Repeat("C", 65), token, "minipot"), event}, // CN too long
		{DataTopic(root, "bad!cn", token, "minipot"), event},                // CN characters
		{root, event},            // the root itself matches root/#
		{root + "/" + cn, event}, // no suffix
		{DataTopic(root, cn, token, "minipot"), make([]byte, max+1)}, // oversized
		{DataTopic(root, cn, token, "minipot"), []byte{}},            // empty
		{DataTopic(root, cn, token, "minipot"), zeroBomb(t, 1<<20)},  // zip bomb
		{DataTopic(root, cn, token, "minipot"), zl[:len(zl)-1]},      // broken zlib
		{StatusTopic(root, cn, token), event},                        // not a status
	} {
		proxy.publish(t, c.topic, 0, c.payload)
	}
	proxy.publish(t, DataTopic(root, cn, token, "minipot"), 0, event)
	checkMessage(t, sub.next(t), Message{Serial: cn, Token: token, Suffix: "minipot", Payload: event})

	st := sub.Stats()
	t.Logf("dropped: %v", st.Dropped)
	want := map[DropReason]uint64{
		DropBadToken: 5, DropBadSerial: 2, DropBadTopic: 2, DropTooLarge: 1,
		DropEmpty: 1, DropInflateLimit: 1, DropBadZlib: 1, DropBadStatus: 1,
	}
	for _, r := range dropReasons {
		if st.Dropped[r] != want[r] {
			t.Errorf("dropped %s: %d, want %d", r, st.Dropped[r], want[r])
		}
	}
	if st.Received != 15 || st.Delivered != 1 {
		t.Errorf("received %d, delivered %d", st.Received, st.Delivered)
	}
}

// TestBrokerRetained checks that a retained message, which the broker replays
// at every subscription, is dropped rather than counted again at each
// reconnection.
func TestBrokerRetained(t *testing.T) {
	t.Parallel()
	needBroker(t, sharedBroker)
	root := randomRoot(t)
	cn := "RETAINED" + randomHex(t, 4)
	topic := DataTopic(root, cn, testToken(3), "minipot")
	pub := newPublisher(t, sharedBroker, cn, nil, nil)
	if tok := pub.Publish(topic, 1, true, minipotEvent("192.0.2.77")); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() {
		// An empty retained message clears the broker's copy, which
		// would otherwise outlive the test in the broker's database.
		if tok := pub.Publish(topic, 1, true, []byte{}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Errorf("clearing the retained message: %v", tok.Error())
		}
	})
	sub := startSubscriber(t, Config{URL: "tcp://" + sharedBroker, Root: root})
	waitFor(t, 5*time.Second, "the retained message", func() bool { return sub.Stats().Dropped[DropRetained] == 1 })
	// A live message with the retain flag reaches current subscribers
	// without it (MQTT 3.1.1 §3.3.1.3) and is accepted.
	if tok := pub.Publish(topic, 1, true, minipotEvent("192.0.2.78")); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if m := sub.next(t); m.Serial != cn {
		t.Fatalf("got %+v", m)
	}
}

// TestBrokerSharedSubscription runs two Subscribers in one share group and
// checks that the broker splits 200 messages between them, each exactly once.
func TestBrokerSharedSubscription(t *testing.T) {
	t.Parallel()
	needBroker(t, sharedBroker)
	root := randomRoot(t)
	cfg := Config{URL: "tcp://" + sharedBroker, Root: root, Share: "ingest-" + randomHex(t, 4), QoS: 1}
	a := startSubscriber(t, cfg)
	b := startSubscriber(t, cfg)
	if !strings.HasPrefix(a.Subscription(), "$share/"+cfg.Share+"/") {
		t.Fatalf("subscription %s", a.Subscription())
	}
	cn := "SHARE" + randomHex(t, 4)
	token := testToken(4)
	pub := newPublisher(t, sharedBroker, cn, nil, nil)
	const n = 200
	for i := range n {
		p := msgpack.AppendMapHeader(nil, 1)
		p = msgpack.AppendString(p, "i")
		p = msgpack.AppendInt(p, int64(i))
		pub.publish(t, DataTopic(root, cn, token, "minipot"), 1, p)
	}
	waitFor(t, 20*time.Second, "all messages", func() bool {
		return a.Stats().Delivered+b.Stats().Delivered >= n
	})
	time.Sleep(200 * time.Millisecond) // let duplicates, if any, arrive
	seen := make(map[string]string)
	count := func(r *running, name string) int {
		k := 0
		for {
			select {
			case m := <-r.msgs:
				if other, dup := seen[string(m.Payload)]; dup {
					t.Errorf("message % x delivered to %s and %s", m.Payload, other, name)
				}
				seen[string(m.Payload)] = name
				k++
			default:
				return k
			}
		}
	}
	na, nb := count(a, "a"), count(b, "b")
	t.Logf("subscriber a got %d, b got %d", na, nb)
	if na == 0 || nb == 0 || na+nb != n || len(seen) != n {
		t.Errorf("a %d + b %d messages, %d distinct; want %d, split", na, nb, len(seen), n)
	}
}

// TestBrokerReconnectAfterKick makes the broker drop the Subscriber, by
// connecting another client with its client ID, and checks that it
// reconnects, subscribes again and keeps receiving.
func TestBrokerReconnectAfterKick(t *testing.T) {
	t.Parallel()
	needBroker(t, sharedBroker)
	root := randomRoot(t)
	id := "ingest-kick-" + randomHex(t, 4)
	var logs logBuffer
	sub := startSubscriber(t, Config{URL: "tcp://" + sharedBroker, Root: root, ClientID: id,
		Logger: slogTee(t, &logs)})
	cn := "KICK" + randomHex(t, 4)
	token := testToken(5)
	pub := newPublisher(t, sharedBroker, cn, nil, nil)
	event := minipotEvent("192.0.2.200")

	pub.publish(t, DataTopic(root, cn, token, "before"), 0, event)
	if m := sub.next(t); m.Suffix != "before" {
		t.Fatalf("got %+v", m)
	}

	kicker := newPublisher(t, sharedBroker, id, nil, nil)
	waitFor(t, 10*time.Second, "reconnection", func() bool {
		st := sub.Stats()
		return st.Connects >= 2 && st.Connected
	})
	// Our reconnection in turn kicked the kicker out.
	waitFor(t, 5*time.Second, "the kicker to be dropped", func() bool { return !kicker.IsConnectionOpen() })

	pub.publish(t, DataTopic(root, cn, token, "after"), 0, event)
	if m := sub.next(t); m.Suffix != "after" {
		t.Fatalf("got %+v", m)
	}
	if out := logs.String(); !strings.Contains(out, "mqtt connection ended") || strings.Count(out, "mqtt subscribed") < 2 {
		t.Errorf("log does not show the reconnection:\n%s", out)
	}
}

// slogTee returns a logger that writes to the test's output and to buf.
func slogTee(t *testing.T, buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), buf), nil))
}

// privateBroker is a mosquitto of the test's own, on a free port, for what
// the shared broker must not be put through (TLS listeners, restarts).
type privateBroker struct {
	t    *testing.T
	dir  string
	conf string
	addr string
	cmd  *exec.Cmd
	log  logBuffer
}

// startPrivateBroker starts mosquitto with a listener on a free port of
// 127.0.0.1 configured by listenerConf (lines that follow "listener").
func startPrivateBroker(t *testing.T, dir, listenerConf string) *privateBroker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
		if _, err := os.Stat(bin); err != nil {
			testenv.Skip(t, "needs the mosquitto binary (apt-get install mosquitto) for a private broker")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	b := &privateBroker{t: t, dir: dir, conf: filepath.Join(dir, "mosquitto.conf"), addr: addr}
	conf := "persistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n" +
		"listener " + port + " 127.0.0.1\nallow_anonymous true\n" + listenerConf
	if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command(bin, "-c", b.conf)
	b.start()
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", b.log.String())
		}
	})
	return b
}

// brokerDir returns a directory the mosquitto user can read: a mosquitto
// started as root drops to that user before it reads its certificates.
func brokerDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ingest-mqtt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (b *privateBroker) start() {
	b.t.Helper()
	b.cmd = exec.Command(b.cmd.Path, b.cmd.Args[1:]...)
	b.cmd.Stdout, b.cmd.Stderr = &b.log, &b.log
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("private mosquitto on %s did not start: %v\n%s", b.addr, err, b.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the broker at once, as a crash would.
func (b *privateBroker) stop() {
	if b.cmd.Process == nil || b.cmd.ProcessState != nil {
		return
	}
	b.cmd.Process.Kill()
	b.cmd.Wait()
}

// TestBrokerRestart kills a private broker under a connected Subscriber,
// starts it again, and checks that the Subscriber reconnects, subscribes again
// and receives.
func TestBrokerRestart(t *testing.T) {
	t.Parallel()
	b := startPrivateBroker(t, brokerDir(t), "")
	root := randomRoot(t)
	sub := startSubscriber(t, Config{URL: "mqtt://" + b.addr, Root: root})
	cn, token := "RESTART"+randomHex(t, 2), testToken(6)
	event := minipotEvent("192.0.2.1")

	newPublisher(t, b.addr, cn+"-1", nil, nil).publish(t, DataTopic(root, cn, token, "one"), 0, event)
	if m := sub.next(t); m.Suffix != "one" {
		t.Fatalf("got %+v", m)
	}

	b.stop()
	waitFor(t, 10*time.Second, "the lost connection", func() bool { return !sub.Stats().Connected })
	time.Sleep(300 * time.Millisecond) // a few failed attempts
	b.start()
	waitFor(t, 10*time.Second, "reconnection", func() bool {
		st := sub.Stats()
		return st.Connected && st.Connects == 2
	})

	newPublisher(t, b.addr, cn+"-2", nil, nil).publish(t, DataTopic(root, cn, token, "two"), 0, event)
	if m := sub.next(t); m.Suffix != "two" {
		t.Fatalf("got %+v", m)
	}
}

// TestBrokerTLS runs a private broker that, like Sentinel's, speaks TLS and
// requires client certificates, and connects through each TLS URL scheme.
func TestBrokerTLS(t *testing.T) {
	t.Parallel()
	dir := brokerDir(t)
	ca := newTestCA(t)
	ca.writeCA(t, filepath.Join(dir, "ca.pem"))
	ca.issue(t, "localhost", true, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	ca.issue(t, "ingest", false, filepath.Join(dir, "ingest.pem"), filepath.Join(dir, "ingest.key"))
	const cn = "0000000D300012AB"
	ca.issue(t, cn, false, filepath.Join(dir, "router.pem"), filepath.Join(dir, "router.key"))
	b := startPrivateBroker(t, dir, fmt.Sprintf(
		"cafile %[1]s/ca.pem\ncertfile %[1]s/server.pem\nkeyfile %[1]s/server.key\nrequire_certificate true\nuse_identity_as_username true\n", dir))
	_, port, _ := net.SplitHostPort(b.addr)

	// The router side, as sentinel-proxy: its certificate, CN as client ID.
	routerCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "router.pem"), filepath.Join(dir, "router.key"))
	if err != nil {
		t.Fatal(err)
	}
	proxyTLS := &tls.Config{ServerName: "localhost", RootCAs: ca.pool(), Certificates: []tls.Certificate{routerCert}}
	proxy := newPublisher(t, b.addr, cn, proxyTLS, nil)

	for i, url := range []string{"ssl://127.0.0.1:" + port, "mqtts://localhost:" + port, "tls://localhost:" + port} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			root := randomRoot(t)
			sub := startSubscriber(t, Config{
				URL:      url,
				Root:     root,
				CAFile:   filepath.Join(dir, "ca.pem"),
				CertFile: filepath.Join(dir, "ingest.pem"),
				KeyFile:  filepath.Join(dir, "ingest.key"),
			})
			token := testToken(100 + i)
			proxy.publish(t, DataTopic(root, cn, token, "minipot"), 0, minipotEvent("192.0.2.5"))
			checkMessage(t, sub.next(t), Message{Serial: cn, Token: token, Suffix: "minipot", Payload: minipotEvent("192.0.2.5")})
		})
	}

	t.Run("unknown CA", func(t *testing.T) {
		other := newTestCA(t)
		other.writeCA(t, filepath.Join(dir, "other-ca.pem"))
		var logs logBuffer
		s, err := New(Config{
			URL:          "ssl://localhost:" + port,
			CAFile:       filepath.Join(dir, "other-ca.pem"),
			CertFile:     filepath.Join(dir, "ingest.pem"),
			KeyFile:      filepath.Join(dir, "ingest.key"),
			ReconnectMin: 20 * time.Millisecond,
			Logger:       slogTee(t, &logs),
		}, func(Message) {})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		waitFor(t, 10*time.Second, "a failed attempt", func() bool { return strings.Contains(logs.String(), "certificate signed by unknown authority") })
		cancel()
		<-done
		if st := s.Stats(); st.Connects != 0 {
			t.Errorf("connected to a broker with an unknown CA: %+v", st)
		}
	})

	t.Run("insecure", func(t *testing.T) {
		other := newTestCA(t)
		other.writeCA(t, filepath.Join(dir, "other-ca2.pem"))
		startSubscriber(t, Config{
			URL:                "ssl://localhost:" + port,
			CAFile:             filepath.Join(dir, "other-ca2.pem"),
			CertFile:           filepath.Join(dir, "ingest.pem"),
			KeyFile:            filepath.Join(dir, "ingest.key"),
			InsecureSkipVerify: true,
		})
	})

	t.Run("no client certificate", func(t *testing.T) {
		var logs logBuffer
		s, err := New(Config{
			URL:          "ssl://localhost:" + port,
			CAFile:       filepath.Join(dir, "ca.pem"),
			ReconnectMin: 20 * time.Millisecond,
			Logger:       slogTee(t, &logs),
		}, func(Message) {})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Connects != 0 || !strings.Contains(logs.String(), "mqtt connection ended") {
			t.Errorf("connected without a client certificate: %+v", st)
		}
	})
}
