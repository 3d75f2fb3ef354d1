package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/ingest/mqtt"
	"github.com/dynfw/sentinel/internal/msgpack"
	"github.com/dynfw/sentinel/internal/testenv"
	"github.com/dynfw/sentinel/zmtp"
)

// evil is what an attacker types into topics, addresses, types and
// services; none of it may reach the log.
const evil = "EVIL<script>\x1b[31m\n"

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

func capturingLogger(buf io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func metricsText(t *testing.T, ts *testServer) string {
	t.Helper()
	resp, err := http.Get(ts.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitMetrics polls /metrics until every series of want is there with at
// least the value given ("name{labels} value").
func waitMetrics(t *testing.T, ts *testServer, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := metricsText(t, ts)
		missing := ""
		for _, w := range want {
			series, min, _ := strings.Cut(w, " ")
			if v, ok := metricValue(m, series); !ok || v < atof(min) {
				missing = w
				break
			}
		}
		if missing == "" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue returns the value of one series in the text format.
func metricValue(m, series string) (float64, bool) {
	for _, l := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return atof(v), true
		}
	}
	return 0, false
}

func atof(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

func assertNotLogged(t *testing.T, logs string) {
	t.Helper()
	for _, s := range []string{"EVIL", "script", "\x1b"} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds %q:\n%s", s, logs)
		}
	}
}

// Every reject on the ZMQ ingest and every subscriber the publisher cuts
// off or refuses is counted in /metrics under its reason (at least once:
// refused subscribers retry), and the log holds nothing the peers typed.
func TestZMQRejectsAndPublisherCutOffsInMetrics(t *testing.T) {
	logs := &syncBuffer{}
	ts := startServer(t, t.TempDir(), func(c *Config) {
		c.Logger = capturingLogger(logs)
		c.DynfwWriteTimeout = 300 * time.Millisecond
		c.DynfwMaxSubscribers = 2
	})
	push := ts.pusher()
	entry := func(kv ...string) []byte {
		b := msgpack.AppendMapHeader(nil, len(kv)/2)
		for _, s := range kv {
			b = msgpack.AppendString(b, s)
		}
		return b
	}
	for _, m := range []zmtp.Message{
		{[]byte("sentinel/collect/" + evil), []byte{0x80}},
		{[]byte(evil), []byte{0x80}},
		{[]byte("sentinel/collect/minipot"), []byte(evil), []byte(evil)},
		{[]byte("sentinel/collect/minipot"), []byte("\xc1" + evil)},
		{[]byte("sentinel/collect/minipot"), entry("type", "telnet", "action", "login")},
		{[]byte("sentinel/collect/minipot"), entry("type", "telnet", "action", "login", "ip", evil)},
		{[]byte("sentinel/collect/minipot"), entry("type", evil, "action", evil, "ip", "45.1.1.1")},
		{[]byte("sentinel/collect/haas"), entry("ts", evil, "ip", "45.1.1.1", "action", "logged")},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := push.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	// Framing faults close the connection: oversized, too many frames, a
	// handshake that is not ZMTP.
	big := ts.pusher()
	big.Send(context.Background(), zmtp.Message{[]byte("sentinel/collect/" + evil), bytes.Repeat([]byte(evil), 1<<20)})
	many := ts.pusher()
	frames := make(zmtp.Message, 300)
	for i := range frames {
		frames[i] = []byte(evil)
	}
	many.Send(context.Background(), frames)
	for _, ep := range []string{ts.ingest, ts.dynfw} {
		nc, err := net.Dial("tcp", strings.TrimPrefix(ep, "tcp://"))
		if err != nil {
			t.Fatal(err)
		}
		nc.Write([]byte("GET /" + evil + " HTTP/1.1\r\n\r\n" + strings.Repeat(evil, 8)))
		defer nc.Close()
	}

	// A subscriber behind a stalled link (it keeps sending PINGs), a
	// normal one, and one beyond the limit of two.
	px := testenv.NewStallProxy(t, strings.TrimPrefix(ts.dynfw, "tcp://"))
	stalled, err := zmtp.NewSocket(zmtp.SUB, zmtp.Options{Curve: &zmtp.CurveOptions{ServerKey: ts.key},
		HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.Subscribe("dynfw/")
	stalled.Dial(px.Addr())
	next(t, stalled, "dynfw/list")
	ts.subscribe("dynfw/")
	extra := ts.subscribe2()
	defer extra.Close()
	px.Pause()
	// Events until the stalled subscriber's socket buffers are full and
	// the write timeout cuts it off.
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ts.srv.Core().Publisher().Socket().Stats().DisconnectReasons[zmtp.ReasonWriteTimeout] == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled subscriber was not cut off: %+v", ts.srv.Core().Publisher().Socket().Stats())
		}
		var batch []byte
		batch = msgpack.AppendArrayHeader(batch, 10)
		for j := 0; j < 10; j++ {
			a := netip.AddrFrom4([4]byte{45, 2, byte(i >> 8), byte(i)})
			batch = append(batch, minipot("telnet", a.String(), "connect", nil)...)
		}
		send(t, push, "sentinel/collect/minipot", batch)
	}

	m := waitMetrics(t, ts,
		`sentinel_ingest_zmq_rejected_total{reason="unknown_topic"} 1`,
		`sentinel_ingest_zmq_rejected_total{reason="bad_topic"} 1`,
		`sentinel_ingest_zmq_rejected_total{reason="bad_frames"} 1`,
		`sentinel_ingest_zmq_rejected_total{reason="malformed"} 1`,
		`sentinel_ingest_zmq_rejected_total{reason="missing_field"} 1`,
		`sentinel_ingest_zmq_rejected_total{reason="bad_address"} 1`,
		`sentinel_ingest_zmq_rejected_total{reason="bad_type"} 1`,
		`sentinel_ingest_zmq_rejected_total{reason="bad_value"} 1`,
		`sentinel_ingest_zmq_rejected_total{reason="too_many_entries"} 0`,
		`sentinel_ingest_zmq_disconnects_total{reason="message_too_large"} 1`,
		`sentinel_ingest_zmq_disconnects_total{reason="too_many_frames"} 1`,
		`sentinel_ingest_zmq_handshake_failures_total{reason="protocol_error"} 1`,
		`sentinel_dynfw_handshake_failures_total{reason="protocol_error"} 1`,
		`sentinel_dynfw_disconnects_total{reason="write_timeout"} 1`,
		`sentinel_dynfw_refused_total{reason="peer_limit"} 1`,
		`sentinel_dynfw_refused_total{reason="handshake_limit"} 0`,
	)
	for _, family := range []string{"sentinel_dynfw_lagged_total", "sentinel_dynfw_send_skipped_total", "sentinel_dynfw_send_replaced_total", "sentinel_dynfw_handshakes"} {
		if !strings.Contains(m, "\n"+family+" ") {
			t.Errorf("/metrics lacks %s", family)
		}
	}
	assertNotLogged(t, logs.String())
	for _, r := range []string{"unknown_topic", "bad_frames", "bad_address", "message_too_large", "write_timeout", "peer_limit"} {
		if !strings.Contains(logs.String(), "reason="+r) {
			t.Errorf("no log line with reason %s", r)
		}
	}
}

// subscribe2 connects a subscriber without waiting for it (it may be
// refused).
func (ts *testServer) subscribe2() *zmtp.Socket {
	sub, err := zmtp.NewSocket(zmtp.SUB, zmtp.Options{Curve: &zmtp.CurveOptions{ServerKey: ts.key}})
	if err != nil {
		ts.t.Fatal(err)
	}
	sub.Subscribe("dynfw/")
	sub.Dial(ts.dynfw)
	return sub
}

// Every drop of the MQTT subscriber and every refusal of the parser on the
// MQTT path is counted in /metrics under its reason; serials, tokens,
// suffixes and payloads stay out of the log.
func TestMQTTRejectsInMetrics(t *testing.T) {
	broker := "tcp://127.0.0.1:1883"
	cli := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("evil-%d", time.Now().UnixNano())))
	if tok := cli.Connect(); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		testenv.Skip(t, fmt.Sprintf("needs an MQTT broker on %s (apt-get install mosquitto): %v", broker, tok.Error()))
	}
	defer cli.Disconnect(100)
	logs := &syncBuffer{}
	root := fmt.Sprintf("sentinel/collect-test-%d", time.Now().UnixNano())
	ts := startServer(t, t.TempDir(), func(c *Config) {
		c.Logger = capturingLogger(logs)
		c.MQTT = mqtt.Config{URL: broker, Root: root}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !ts.srv.mqtt.Stats().Connected {
		if time.Now().After(deadline) {
			t.Fatal("the server did not subscribe")
		}
		time.Sleep(10 * time.Millisecond)
	}
	const serial = "0000000D300012AB"
	token, _ := devicetoken.Generate()
	evilTopic := "EVIL<script>"
	entry := func(kv ...string) []byte {
		b := msgpack.AppendMapHeader(nil, len(kv)/2)
		for _, s := range kv {
			b = msgpack.AppendString(b, s)
		}
		return b
	}
	for _, m := range []struct {
		topic   string
		payload []byte
	}{
		{root + "/" + evilTopic + "/" + token + "/minipot", []byte{0x80}},                                        // bad_serial
		{mqtt.DataTopic(root, serial, token[:63]+evilTopic, "minipot"), []byte{0x80}},                            // bad_token
		{mqtt.DataTopic(root, serial, token, "minipot"), []byte{0x78, 0xda, 'E', 'V', 'I', 'L'}},                 // bad_zlib
		{mqtt.DataTopic(root, serial, token, "minipot"), nil},                                                    // empty_payload
		{mqtt.StatusTopic(root, serial, token), entry("action", evil)},                                           // bad_status
		{mqtt.DataTopic(root, serial, token, evilTopic), []byte{0x80}},                                           // unknown_topic
		{mqtt.DataTopic(root, serial, token, "minipot"), []byte("\xc1" + evil)},                                  // malformed
		{mqtt.DataTopic(root, serial, token, "minipot"), entry("type", "telnet", "action", "login", "ip", evil)}, // bad_address
		{mqtt.DataTopic(root, serial, token, "faillogs"), entry("service", evil, "ip", "45.1.1.1")},              // bad_type
	} {
		tok := cli.Publish(m.topic, 0, false, m.payload)
		tok.Wait()
		if tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	waitMetrics(t, ts,
		`sentinel_ingest_mqtt_dropped_total{reason="bad_serial"} 1`,
		`sentinel_ingest_mqtt_dropped_total{reason="bad_token"} 1`,
		`sentinel_ingest_mqtt_dropped_total{reason="bad_zlib"} 1`,
		`sentinel_ingest_mqtt_dropped_total{reason="empty_payload"} 1`,
		`sentinel_ingest_mqtt_dropped_total{reason="bad_status"} 1`,
		`sentinel_ingest_mqtt_dropped_total{reason="queue_full"} 0`,
		`sentinel_ingest_mqtt_rejected_total{reason="unknown_topic"} 1`,
		`sentinel_ingest_mqtt_rejected_total{reason="malformed"} 1`,
		`sentinel_ingest_mqtt_rejected_total{reason="bad_address"} 1`,
		`sentinel_ingest_mqtt_rejected_total{reason="bad_type"} 1`,
		`sentinel_ingest_mqtt_received_total 9`,
	)
	out := logs.String()
	assertNotLogged(t, out)
	for _, s := range []string{serial, token, token[:16], "faillogs"} {
		if strings.Contains(out, s) {
			t.Errorf("the log holds %q:\n%s", s, out)
		}
	}
	for _, r := range []string{"bad_serial", "bad_token", "bad_zlib", "unknown_topic", "bad_address"} {
		if !strings.Contains(out, "reason="+r) {
			t.Errorf("no log line with reason %s:\n%s", r, out)
		}
	}
}
