package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/ingest/httpin"
	"github.com/dynfw/sentinel/internal/ingest/mqtt"
	"github.com/dynfw/sentinel/internal/msgpack"
	"github.com/dynfw/sentinel/internal/scorecard"
	"github.com/dynfw/sentinel/internal/scoring"
	"github.com/dynfw/sentinel/internal/testenv"
	"github.com/dynfw/sentinel/zmtp"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

const adminToken = "admin-token-0123456789"
const sensorToken = "sensor-token-0123456789"

// testServer runs a Server on random local ports in a temporary data
// directory.
type testServer struct {
	t      *testing.T
	srv    *Server
	dir    string
	cancel context.CancelFunc
	done   chan error
	http   string
	dynfw  string
	ingest string
	key    zcert.Key
}

func startServer(t *testing.T, dir string, mod func(*Config)) *testServer {
	t.Helper()
	cfg := Config{
		DataDir:      dir,
		DynfwListen:  []string{"tcp://127.0.0.1:0"},
		IngestListen: []string{"tcp://127.0.0.1:0"},
		HTTPListen:   "127.0.0.1:0",
		ListInterval: 200 * time.Millisecond,
		Scoring:      scoring.DefaultConfig(),
		HTTPTokens:   []httpin.Token{{Name: "tester", Token: sensorToken}},
		AdminToken:   adminToken,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{t: t, srv: srv, dir: dir, cancel: cancel, done: make(chan error, 1),
		http: "http://" + srv.HTTPAddr().String(), ingest: "tcp://" + srv.IngestAddrs()[0].String(),
		dynfw: "tcp://" + srv.Core().Publisher().Addrs()[0].String()}
	cert, _, _ := ServerCert(dir)
	ts.key = cert.Public
	go func() { ts.done <- srv.Run(ctx) }()
	<-srv.Ready()
	t.Cleanup(func() { ts.stop() })
	return ts
}

func (ts *testServer) stop() {
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	if err := <-ts.done; err != nil {
		ts.t.Errorf("server stopped with %v", err)
	}
	ts.cancel = nil
}

// subscribe connects a CURVE subscriber to the publisher.
func (ts *testServer) subscribe(topics ...string) *zmtp.Socket {
	ts.t.Helper()
	sub, err := zmtp.NewSocket(zmtp.SUB, zmtp.Options{Curve: &zmtp.CurveOptions{ServerKey: ts.key}})
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { sub.Close() })
	for _, tp := range topics {
		sub.Subscribe(tp)
	}
	sub.Dial(ts.dynfw)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		for _, p := range ts.srv.Core().Publisher().Socket().Peers() {
			if len(p.Subscriptions) == len(topics) {
				n++
			}
		}
		if n > 0 {
			return sub
		}
		if time.Now().After(deadline) {
			ts.t.Fatal("subscriber not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pusher connects a probe.
func (ts *testServer) pusher() *zmtp.Socket {
	ts.t.Helper()
	push, err := zmtp.NewSocket(zmtp.PUSH, zmtp.Options{})
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { push.Close() })
	push.Dial(ts.ingest)
	return push
}

func minipot(typ, ip, action string, data map[string]string) []byte {
	n := 4
	if data != nil {
		n = 5
	}
	b := msgpack.AppendMapHeader(nil, n)
	b = msgpack.AppendString(b, "ts")
	b = msgpack.AppendUint(b, uint64(time.Now().Unix()))
	b = msgpack.AppendString(b, "type")
	b = msgpack.AppendString(b, typ)
	b = msgpack.AppendString(b, "ip")
	b = msgpack.AppendString(b, ip)
	b = msgpack.AppendString(b, "action")
	b = msgpack.AppendString(b, action)
	if data != nil {
		b = msgpack.AppendString(b, "data")
		b = msgpack.AppendMapHeader(b, len(data))
		for k, v := range data {
			b = msgpack.AppendString(b, k)
			b = msgpack.AppendString(b, v)
		}
	}
	return b
}

func send(t *testing.T, push *zmtp.Socket, topic string, payload []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := push.Send(ctx, zmtp.Message{[]byte(topic), payload}); err != nil {
		t.Fatal(err)
	}
}

// next returns the next message of a topic.
func next(t *testing.T, sub *zmtp.Socket, topic string) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		m, err := sub.Recv(ctx)
		cancel()
		if err != nil {
			t.Fatalf("waiting for %s: %v", topic, err)
		}
		if string(m[0]) == topic {
			return m[1]
		}
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode
}

func post(t *testing.T, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestBruteForceIsListedAndPublished(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	sub := ts.subscribe("dynfw/")
	push := ts.pusher()
	// One connection attempt: an event, never a listing.
	send(t, push, "sentinel/collect/minipot", minipot("telnet", "45.155.205.1", "connect", nil))
	ev, err := dynfw.DecodeEvent(next(t, sub, dynfw.TopicEvent), dynfw.DecodeOptions{})
	if err != nil || ev.Name != "telnet_connect" || ev.Addr.String() != "45.155.205.1" {
		t.Fatalf("event %+v %v", ev, err)
	}
	// A brute-force burst: listed within seconds, with a delta.
	start := time.Now()
	for i := 0; i < 6; i++ {
		send(t, push, "sentinel/collect/minipot", minipot("telnet", "45.155.205.2", "login", map[string]string{"username": "root", "password": fmt.Sprint(i)}))
	}
	d, err := dynfw.DecodeDelta(next(t, sub, dynfw.TopicDelta), dynfw.DecodeOptions{})
	if err != nil || d.Op != dynfw.Positive || dynfw.FormatAddr(d.Addr) != "45.155.205.2" || d.Serial != 1 {
		t.Fatalf("delta %+v %v", d, err)
	}
	t.Logf("listed %v after the first login", time.Since(start))
	l, _ := dynfw.DecodeList(next(t, sub, dynfw.TopicList), dynfw.DecodeOptions{})
	if l.Serial != 1 || len(l.Addrs) != 1 {
		t.Fatalf("list %+v", l)
	}
	var ex scorecard.Explanation
	if code := getJSON(t, ts.http+"/api/v1/addresses/45.155.205.2", &ex); code != 200 || !ex.Listed {
		t.Fatalf("explanation %d %+v", code, ex)
	}
	if code := getJSON(t, ts.http+"/api/v1/addresses/45.155.205.1", &ex); code != 200 || ex.Listed {
		t.Fatalf("one connect listed: %+v", ex)
	}
	if code := getJSON(t, ts.http+"/api/v1/addresses/not-an-ip", nil); code != 400 {
		t.Fatalf("bad address: %d", code)
	}
	if code := getJSON(t, ts.http+"/api/v1/addresses/9.9.9.9", nil); code != 404 {
		t.Fatalf("unknown address: %d", code)
	}
}

func TestPortScanFromFirewallLogs(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	sub := ts.subscribe("dynfw/event")
	push := ts.pusher()
	for port := 20; port < 26; port++ {
		b := msgpack.AppendMapHeader(nil, 6)
		for _, kv := range []struct {
			k string
			v any
		}{{"ts", uint64(1)}, {"protocol", "TCP"}, {"ip", "45.155.205.3"}, {"port", uint64(40000)}, {"local_ip", "192.0.2.1"}, {"local_port", uint64(port)}} {
			b = msgpack.AppendString(b, kv.k)
			switch v := kv.v.(type) {
			case string:
				b = msgpack.AppendString(b, v)
			case uint64:
				b = msgpack.AppendUint(b, v)
			}
		}
		send(t, push, "sentinel/collect/fwlogs", b)
	}
	ev, _ := dynfw.DecodeEvent(next(t, sub, dynfw.TopicEvent), dynfw.DecodeOptions{})
	if ev.Name != "fwlogs_small_port_scan" || ev.Addr.String() != "45.155.205.3" {
		t.Fatalf("event %+v", ev)
	}
}

func TestHTTPIngestAndAdminAPI(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	sub := ts.subscribe("dynfw/delta")
	code, res := post(t, ts.http+"/api/v1/events", sensorToken, `[{"event":"haas_logged_active","ip":"45.155.205.4"},{"event":"haas_logged_active","ip":"45.155.205.4"}]`)
	if code != 202 || res["accepted"].(float64) != 2 {
		t.Fatalf("ingest %d %v", code, res)
	}
	d, _ := dynfw.DecodeDelta(next(t, sub, dynfw.TopicDelta), dynfw.DecodeOptions{})
	if d.Op != dynfw.Positive || dynfw.FormatAddr(d.Addr) != "45.155.205.4" {
		t.Fatalf("delta %+v", d)
	}
	// Admin: no token, wrong token.
	if code, _ := post(t, ts.http+"/api/v1/admin/unblock", "nope", `{"ip":"45.155.205.4","duration":"1h"}`); code != 401 {
		t.Fatalf("admin without token: %d", code)
	}
	// A false positive: unblock for an hour.
	if code, res := post(t, ts.http+"/api/v1/admin/unblock", adminToken, `{"ip":"45.155.205.4","duration":"1h","reason":"our partner"}`); code != 200 {
		t.Fatalf("unblock %d %v", code, res)
	}
	d, _ = dynfw.DecodeDelta(next(t, sub, dynfw.TopicDelta), dynfw.DecodeOptions{})
	if d.Op != dynfw.Negative || dynfw.FormatAddr(d.Addr) != "45.155.205.4" {
		t.Fatalf("unblock delta %+v", d)
	}
	// A manual block.
	if code, res := post(t, ts.http+"/api/v1/admin/block", adminToken, `{"ip":"45.155.205.99","duration":"2h","reason":"abuse report"}`); code != 200 {
		t.Fatalf("block %d %v", code, res)
	}
	d, _ = dynfw.DecodeDelta(next(t, sub, dynfw.TopicDelta), dynfw.DecodeOptions{})
	if d.Op != dynfw.Positive || dynfw.FormatAddr(d.Addr) != "45.155.205.99" {
		t.Fatalf("block delta %+v", d)
	}
	if code, _ := post(t, ts.http+"/api/v1/admin/block", adminToken, `{"ip":"45.1.1.1"}`); code != 400 {
		t.Fatalf("block without duration: %d", code)
	}
	// The greylist and the certificate are served.
	resp, err := http.Get(ts.http + "/dynfw.pub")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("dynfw.pub: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if c, err := zcert.Parse(body); err != nil || c.Public != ts.key {
		t.Fatalf("served certificate: %v", err)
	}
	var health map[string]any
	if code := getJSON(t, ts.http+"/healthz", &health); code != 200 || health["status"] != "ok" {
		t.Fatalf("health %d %v", code, health)
	}
	resp, _ = http.Get(ts.http + "/metrics")
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"sentinel_events_processed_total 2", "sentinel_listed 1", "sentinel_dynfw_deltas_total 3"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestMQTTIngestWithMosquitto(t *testing.T) {
	broker := "tcp://127.0.0.1:1883"
	probe := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("probe-%d", time.Now().UnixNano())))
	if tok := probe.Connect(); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		testenv.Skip(t, fmt.Sprintf("needs an MQTT broker on %s (apt-get install mosquitto): %v", broker, tok.Error()))
	}
	defer probe.Disconnect(100)
	root := fmt.Sprintf("sentinel/collect-test-%d", time.Now().UnixNano())
	ts := startServer(t, t.TempDir(), func(c *Config) {
		c.MQTT = mqtt.Config{URL: broker, Root: root}
	})
	sub := ts.subscribe("dynfw/event")
	token, _ := devicetoken.Generate()
	time.Sleep(300 * time.Millisecond) // the server's subscription
	for i := 0; i < 3; i++ {
		topic := mqtt.DataTopic(root, "0000000D300012AB", token, "minipot")
		tok := probe.Publish(topic, 0, false, minipot("ftp", "45.155.205.5", "login", map[string]string{"username": "a", "password": "b"}))
		tok.Wait()
		ev, _ := dynfw.DecodeEvent(next(t, sub, dynfw.TopicEvent), dynfw.DecodeOptions{})
		if ev.Name == "ftp_login" && ev.Addr.String() == "45.155.205.5" {
			var ex scorecard.Explanation
			getJSON(t, ts.http+"/api/v1/addresses/45.155.205.5", &ex)
			if ex.Probes != 1 {
				t.Fatalf("probes %d", ex.Probes)
			}
			return
		}
	}
	t.Fatal("no event from MQTT")
}

func TestHostileInputKeepsServerRunning(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	sub := ts.subscribe("dynfw/event")
	push := ts.pusher()
	for _, m := range []zmtp.Message{
		{[]byte("sentinel/collect/minipot"), []byte{0xc1, 0xff}},
		{[]byte("sentinel/collect/minipot"), minipot("telnet", "1.2.3.4\xff", "login", nil)},
		{[]byte("sentinel/collect/minipot"), minipot("telnet\x00", "45.1.1.1", "login", nil)},
		{[]byte("sentinel/collect/nonsense"), minipot("telnet", "45.1.1.1", "login", nil)},
		{[]byte("elsewhere"), minipot("telnet", "45.1.1.1", "login", nil)},
		{[]byte("sentinel/collect/minipot"), []byte{0xdd, 0xff, 0xff, 0xff, 0xff}},
		{[]byte("sentinel/collect/" + strings.Repeat("x", 300)), []byte{0x80}},
		{[]byte("sentinel/collect/minipot"), []byte("a"), []byte("b")},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		push.Send(ctx, m)
		cancel()
	}
	// A frame over the ingest's size limit closes that connection only.
	big := ts.pusher()
	big.Send(context.Background(), zmtp.Message{[]byte("sentinel/collect/minipot"), make([]byte, 5<<20)})
	// The server still works.
	send(t, push, "sentinel/collect/minipot", minipot("smtp", "45.155.205.6", "invalid", nil))
	ev, _ := dynfw.DecodeEvent(next(t, sub, dynfw.TopicEvent), dynfw.DecodeOptions{})
	if ev.Name != "smtp_invalid" {
		t.Fatalf("event %+v", ev)
	}
	rej := ts.srv.zmq.Stats().Rejected()
	if rej["malformed"] < 2 || rej["bad_topic"] != 2 || rej["unknown_topic"] != 1 || rej["bad_address"]+rej["bad_type"] != 2 || rej["bad_frames"] != 1 {
		t.Fatalf("rejected %v", rej)
	}
}

// TestGracefulRestartKeepsTheList: the same version, serial and list after a
// clean stop.
func TestGracefulRestartKeepsTheList(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, nil)
	code, _ := post(t, ts.http+"/api/v1/admin/block", adminToken, `{"ip":"45.155.205.7","duration":"5h"}`)
	if code != 200 {
		t.Fatal(code)
	}
	push := ts.pusher()
	for i := 0; i < 5; i++ {
		send(t, push, "sentinel/collect/minipot", minipot("http", "2a03:b0c0::1", "login", nil))
	}
	waitListed(t, ts, 2)
	before := ts.srv.Core().Publisher().State()
	ts.stop()
	ts2 := startServer(t, dir, nil)
	after := ts2.srv.Core().Publisher().State()
	if before.Version != after.Version || before.Serial != after.Serial || fmt.Sprint(before.List) != fmt.Sprint(after.List) {
		t.Fatalf("before %+v\nafter  %+v", before, after)
	}
	var ex scorecard.Explanation
	getJSON(t, ts2.http+"/api/v1/addresses/2a03:b0c0::1", &ex)
	if ex.Counts["http_login"] != 5 {
		t.Fatalf("explanation after restart %+v", ex)
	}
	// One snapshot, the clean stop's: a clean start writes none.
	segs, _ := filepath.Glob(filepath.Join(dir, "journal", "snapshot-*.bin"))
	if len(segs) != 1 {
		t.Fatalf("snapshots %v", segs)
	}
}

func waitListed(t *testing.T, ts *testServer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(ts.srv.Core().Publisher().State().List) < n {
		if time.Now().After(deadline) {
			t.Fatalf("listed %v", ts.srv.Core().Publisher().State().List)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
