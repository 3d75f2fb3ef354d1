package mqtt

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/msgpack"
)

func TestNewConfig(t *testing.T) {
	s, err := New(Config{}, func(Message) {})
	if err != nil {
		t.Fatal(err)
	}
	if s.addr != "localhost:1883" || s.tls != nil || s.filter != "sentinel/collect/#" {
		t.Errorf("defaults: addr %s, tls %v, filter %s", s.addr, s.tls != nil, s.filter)
	}
	if !strings.HasPrefix(s.ClientID(), "sentinel-ingest-") || len(s.ClientID()) != 28 {
		t.Errorf("client ID %q", s.ClientID())
	}
	if other, _ := New(Config{}, func(Message) {}); other.ClientID() == s.ClientID() {
		t.Error("two Subscribers share a generated client ID")
	}
	if s.cfg.QoS != 0 || s.cfg.MaxPayload != DefaultMaxPayload {
		t.Errorf("defaults: %+v", s.cfg)
	}

	for _, c := range []struct {
		cfg    Config
		addr   string
		tls    bool
		filter string
	}{
		{Config{URL: "tcp://broker"}, "broker:1883", false, "sentinel/collect/#"},
		{Config{URL: "mqtt://broker:1884"}, "broker:1884", false, "sentinel/collect/#"},
		{Config{URL: "ssl://sentinel.turris.cz:1883"}, "sentinel.turris.cz:1883", true, "sentinel/collect/#"},
		{Config{URL: "mqtts://[::1]"}, "[::1]:8883", true, "sentinel/collect/#"},
		{Config{URL: "tls://broker/", InsecureSkipVerify: true}, "broker:8883", true, "sentinel/collect/#"},
		{Config{Share: "ingest"}, "localhost:1883", false, "$share/ingest/sentinel/collect/#"},
		{Config{Root: "a/b"}, "localhost:1883", false, "a/b/#"},
		{Config{Topic: "sentinel/collect/+/+/minipot", Share: "g"}, "localhost:1883", false, "$share/g/sentinel/collect/+/+/minipot"},
	} {
		s, err := New(c.cfg, func(Message) {})
		if err != nil {
			t.Errorf("%+v: %v", c.cfg, err)
			continue
		}
		if s.addr != c.addr || (s.tls != nil) != c.tls || s.Subscription() != c.filter {
			t.Errorf("%+v: addr %s, tls %v, filter %s", c.cfg, s.addr, s.tls != nil, s.Subscription())
		}
	}

	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"ws scheme", Config{URL: "ws://broker"}},
		{"no scheme", Config{URL: "broker:1883"}},
		{"credentials in URL", Config{URL: "tcp://u:p@broker"}},
		{"path", Config{URL: "tcp://broker/x"}},
		{"bad port", Config{URL: "tcp://broker:99999"}},
		{"TLS files on tcp", Config{URL: "tcp://broker", CAFile: "/x"}},
		{"insecure on tcp", Config{InsecureSkipVerify: true}},
		{"missing CA file", Config{URL: "ssl://broker", CAFile: "/nonexistent/ca.pem"}},
		{"cert without key", Config{URL: "ssl://broker", CertFile: "/x"}},
		{"QoS 3", Config{QoS: 3}},
		{"share with slash", Config{Share: "a/b"}},
		{"share with wildcard", Config{Share: "a+"}},
		{"hash not last", Config{Topic: "a/#/b"}},
		{"partial plus", Config{Topic: "a/b+/c"}},
		{"root with slash", Config{Root: "sentinel/collect/"}},
		{"root with wildcard", Config{Root: "sentinel/+"}},
		{"negative MaxPayload", Config{MaxPayload: -1}},
		{"queue smaller than a payload", Config{MaxPayload: 1 << 20, QueueBytes: 1 << 19}},
	} {
		if _, err := New(c.cfg, func(Message) {}); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if _, err := New(Config{Logger: testLogger(t)}, nil); err == nil {
		t.Error("nil handler accepted")
	}
}

func TestTLSConfigFiles(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	ca.writeCA(t, filepath.Join(dir, "ca.pem"))
	ca.issue(t, "0000000D300012AB", false, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	s, err := New(Config{
		URL:      "ssl://broker.example:1883",
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile:  filepath.Join(dir, "key.pem"),
	}, func(Message) {})
	if err != nil {
		t.Fatal(err)
	}
	if s.tls.ServerName != "broker.example" || s.tls.RootCAs == nil || len(s.tls.Certificates) != 1 || s.tls.InsecureSkipVerify {
		t.Errorf("TLS config %+v", s.tls)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{URL: "ssl://b", CAFile: filepath.Join(dir, "junk.pem")}, func(Message) {}); err == nil {
		t.Error("CA file without certificates accepted")
	}
	if _, err := New(Config{URL: "ssl://b", CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "junk.pem")}, func(Message) {}); err == nil {
		t.Error("bad key file accepted")
	}
}

// fakeMessage is a PUBLISH as paho hands it over.
type fakeMessage struct {
	topic    string
	payload  []byte
	retained bool
}

func (m fakeMessage) Duplicate() bool   { return false }
func (m fakeMessage) Qos() byte         { return 0 }
func (m fakeMessage) Retained() bool    { return m.retained }
func (m fakeMessage) Topic() string     { return m.topic }
func (m fakeMessage) MessageID() uint16 { return 0 }
func (m fakeMessage) Payload() []byte   { return m.payload }
func (m fakeMessage) Ack()              {}

// pipeline runs messages through the Subscriber's two stages, as Run would
// but without a broker, and returns what reached the handler.
func pipeline(t *testing.T, cfg Config, msgs ...fakeMessage) ([]Message, *Subscriber) {
	t.Helper()
	var got []Message
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(cfg, func(m Message) { got = append(got, m) })
	if err != nil {
		t.Fatal(err)
	}
	q := &queue{ch: make(chan item, s.cfg.QueueSize), maxBytes: int64(s.cfg.QueueBytes)}
	s.queue.Store(q)
	on := s.onMessage(q)
	for _, m := range msgs {
		on(nil, m)
	}
	for len(q.ch) > 0 {
		it := <-q.ch
		q.pop(it)
		s.deliver(it)
	}
	return got, s
}

func TestPipeline(t *testing.T) {
	event := minipotEvent("198.51.100.7")
	heartbeat := msgpack.AppendMapHeader(nil, 2)
	heartbeat = msgpack.AppendString(heartbeat, "action")
	heartbeat = msgpack.AppendString(heartbeat, "heartbeat")
	heartbeat = msgpack.AppendString(heartbeat, "ts")
	heartbeat = msgpack.AppendInt(heartbeat, 1714564800)
	before := time.Now()

	for _, c := range []struct {
		name   string
		cfg    Config
		msg    fakeMessage
		want   Message // Received is checked separately
		reason DropReason
	}{
		{name: "data", msg: fakeMessage{topic: DataTopic("", serial, seqToken, "minipot"), payload: event},
			want: Message{Serial: serial, Token: seqToken, Suffix: "minipot", Payload: event}},
		{name: "zlib data of proxy 1.3", msg: fakeMessage{topic: DataTopic("", serial, seqToken, "minipot"), payload: compress(t, event, 9)},
			want: Message{Serial: serial, Token: seqToken, Suffix: "minipot", Payload: event, Legacy: true, Zlib: true}},
		{name: "legacy of proxy 1.1", msg: fakeMessage{topic: LegacyTopic("", serial, "fwlogs"), payload: compress(t, event, 9)},
			want: Message{Serial: serial, Suffix: "fwlogs", Payload: event, Legacy: true, Zlib: true}},
		{name: "legacy uncompressed", msg: fakeMessage{topic: LegacyTopic("", serial, "fwlogs"), payload: event},
			want: Message{Serial: serial, Suffix: "fwlogs", Payload: event, Legacy: true}},
		{name: "status", msg: fakeMessage{topic: StatusTopic("", serial, seqToken), payload: heartbeat},
			want: Message{Serial: serial, Token: seqToken, Suffix: "status", Payload: heartbeat,
				Status: &Status{Action: StatusHeartbeat, Time: time.Unix(1714564800, 0)}}},
		{name: "custom root", cfg: Config{Root: "t/r"}, msg: fakeMessage{topic: DataTopic("t/r", serial, seqToken, "survey"), payload: event},
			want: Message{Serial: serial, Token: seqToken, Suffix: "survey", Payload: event}},

		{name: "outside the root", cfg: Config{Root: "t/r"}, msg: fakeMessage{topic: DataTopic("", serial, seqToken, "x"), payload: event}, reason: DropBadTopic},
		{name: "bad token", msg: fakeMessage{topic: DataTopic("", serial, seqToken[:63]+"0", "x"), payload: event}, reason: DropBadToken},
		{name: "bad serial", msg: fakeMessage{topic: DataTopic("", "a*b", seqToken, "x"), payload: event}, reason: DropBadSerial},
		{name: "token required", cfg: Config{RequireToken: true}, msg: fakeMessage{topic: LegacyTopic("", serial, "fwlogs"), payload: event}, reason: DropNoToken},
		{name: "retained", msg: fakeMessage{topic: DataTopic("", serial, seqToken, "x"), payload: event, retained: true}, reason: DropRetained},
		{name: "empty", msg: fakeMessage{topic: DataTopic("", serial, seqToken, "x")}, reason: DropEmpty},
		{name: "too large", cfg: Config{MaxPayload: 10}, msg: fakeMessage{topic: DataTopic("", serial, seqToken, "x"), payload: event}, reason: DropTooLarge},
		{name: "zip bomb", cfg: Config{MaxPayload: 16 << 10}, msg: fakeMessage{topic: DataTopic("", serial, seqToken, "x"), payload: zeroBomb(t, 1<<20)}, reason: DropInflateLimit},
		{name: "broken zlib", msg: fakeMessage{topic: DataTopic("", serial, seqToken, "x"), payload: []byte{0x78, 0xda, 1, 2, 3}}, reason: DropBadZlib},
		{name: "bad status", msg: fakeMessage{topic: StatusTopic("", serial, seqToken), payload: event}, reason: DropBadStatus},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, s := pipeline(t, c.cfg, c.msg)
			st := s.Stats()
			if st.Received != 1 {
				t.Errorf("Received = %d", st.Received)
			}
			if c.reason != "" {
				if len(got) != 0 || st.Dropped[c.reason] != 1 || st.DroppedTotal() != 1 {
					t.Fatalf("delivered %d, dropped %v; want one %s", len(got), st.Dropped, c.reason)
				}
				return
			}
			if len(got) != 1 || st.Delivered != 1 || st.DroppedTotal() != 0 {
				t.Fatalf("delivered %d (stats %+v)", len(got), st)
			}
			m := got[0]
			if m.Received.Before(before) || time.Since(m.Received) > time.Minute {
				t.Errorf("Received = %v", m.Received)
			}
			if m.Serial != c.want.Serial || m.Token != c.want.Token || m.Suffix != c.want.Suffix ||
				!bytes.Equal(m.Payload, c.want.Payload) || m.Legacy != c.want.Legacy || m.Zlib != c.want.Zlib ||
				(m.Status == nil) != (c.want.Status == nil) {
				t.Fatalf("got %+v\nwant %+v", m, c.want)
			}
			if m.Status != nil && (m.Status.Action != c.want.Status.Action || !m.Status.Time.Equal(c.want.Status.Time)) {
				t.Errorf("status %+v, want %+v", m.Status, c.want.Status)
			}
			if (st.Inflated == 1) != m.Zlib || (st.Legacy == 1) != m.Legacy || (st.Status == 1) != (m.Status != nil) {
				t.Errorf("stats %+v for %+v", st, m)
			}
		})
	}
}

func TestQueueLimits(t *testing.T) {
	event := minipotEvent("198.51.100.7")
	topic := DataTopic("", serial, seqToken, "minipot")
	msgs := make([]fakeMessage, 10)
	for i := range msgs {
		msgs[i] = fakeMessage{topic: topic, payload: event}
	}

	got, s := pipeline(t, Config{QueueSize: 4}, msgs...)
	if st := s.Stats(); len(got) != 4 || st.Dropped[DropQueueFull] != 6 {
		t.Errorf("QueueSize 4: delivered %d, dropped %v", len(got), st.Dropped)
	}

	// Room for three payloads by bytes.
	got, s = pipeline(t, Config{MaxPayload: len(event), QueueBytes: 3*len(event) + 1}, msgs...)
	if st := s.Stats(); len(got) != 3 || st.Dropped[DropQueueFull] != 7 {
		t.Errorf("QueueBytes: delivered %d, dropped %v", len(got), st.Dropped)
	}
	if st := s.Stats(); st.Queued != 0 || st.QueuedBytes != 0 {
		t.Errorf("queue not empty after draining: %+v", st)
	}
}

func TestQueueClose(t *testing.T) {
	q := &queue{ch: make(chan item, 4), maxBytes: 100}
	for range 3 {
		if err := q.push(item{payload: []byte("abc")}); err != nil {
			t.Fatal(err)
		}
	}
	if n := q.close(); n != 3 || q.bytes.Load() != 0 {
		t.Errorf("close: %d messages, %d bytes left", n, q.bytes.Load())
	}
	if err := q.push(item{payload: []byte("abc")}); !errors.Is(err, ErrStopped) {
		t.Errorf("push after close: %v", err)
	}
}

// testLogger returns a logger whose lines show with the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// logBuffer collects log output for inspection.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDropLogging checks that drops are logged with a reason, fingerprints
// of the serial and the token and lengths, never the token, the serial, the
// suffix or the payload, and rate-limited per reason.
func TestDropLogging(t *testing.T) {
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	bad := seqToken[:63] + "0" // CRC fails
	zl := compress(t, minipotEvent("192.0.2.9"), 9)
	const evil = "EVIL\x1b[31m"
	var msgs []fakeMessage
	for range 100 {
		msgs = append(msgs, fakeMessage{topic: DataTopic("", serial, bad, "minipot"), payload: []byte{0x80}})
	}
	msgs = append(msgs,
		fakeMessage{topic: DataTopic("", serial, seqToken, "minipot"), payload: zl[:len(zl)-1]},
		fakeMessage{topic: DataTopic("", serial, seqToken, "minipot"), payload: zl[:len(zl)-2]},
		fakeMessage{topic: "sentinel/collect/" + serial + "/" + seqToken, payload: []byte{0x80}},
		fakeMessage{topic: "sentinel/collect/" + evil + "/" + seqToken + "/minipot", payload: []byte(evil)},
		fakeMessage{topic: StatusTopic("", serial, seqToken), payload: append([]byte{0x81, 0xa6}, "action"+"\xac"+evil+"x"...)},
	)
	_, s := pipeline(t, Config{Logger: logger}, msgs...)
	out := logs.String()
	t.Log(out)
	if strings.Contains(out, bad) || strings.Contains(out, seqToken) || strings.Contains(out, seqToken[:16]) {
		t.Fatal("a device token is in the log")
	}
	for _, s := range []string{serial, "EVIL", "\x1b", "minipot"} {
		if strings.Contains(out, s) {
			t.Errorf("the log holds %q", s)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d log lines, want one per reason (bad_token, bad_zlib, bad_topic, bad_serial, bad_status)", len(lines))
	}
	fp := SerialFingerprint(serial)
	for _, want := range []string{
		"reason=bad_token serial=" + fp + " token=" + devicetoken.Fingerprint(bad) + " suffix_len=7 payload_len=1",
		"reason=bad_zlib serial=" + fp + " token=" + devicetoken.Fingerprint(seqToken),
		"reason=bad_topic serial=" + fp + " token=" + devicetoken.Fingerprint(seqToken),
		"reason=bad_serial serial=" + SerialFingerprint(evil) + " payload_len=9",
		"reason=bad_status serial=" + fp,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if st := s.Stats(); st.Dropped[DropBadToken] != 100 || st.Dropped[DropBadZlib] != 2 || st.Dropped[DropBadStatus] != 1 {
		t.Errorf("dropped %v", st.Dropped)
	}
}

// TestRunStopsWithoutBroker checks that Run keeps retrying an unreachable
// broker and returns promptly when its context ends.
func TestRunStopsWithoutBroker(t *testing.T) {
	var logs logBuffer
	s, err := New(Config{
		URL:          "tcp://127.0.0.1:1", // nothing listens on port 1
		ReconnectMin: 10 * time.Millisecond,
		ReconnectMax: 20 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
	}, func(Message) {})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(logs.String(), "mqtt connection ended") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no retries; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Run(ctx); err != ErrRunning {
		t.Errorf("second Run: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return")
	}
	if s.Stats().Connected {
		t.Error("connected without a broker")
	}
}

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkixName("sentinel test CA"),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, der: der}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func (ca *testCA) writeCA(t *testing.T, path string) {
	t.Helper()
	writePEM(t, path, "CERTIFICATE", ca.der)
}

// issue writes a certificate with CN cn (a server certificate for 127.0.0.1
// and localhost when server is set, a client one otherwise) and its key.
func (ca *testCA) issue(t *testing.T, cn string, server bool, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t),
		Subject:      pkixName(cn),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certPath, "CERTIFICATE", der)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyPath, "EC PRIVATE KEY", kder)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	// Readable by all: a mosquitto started as root reads its files as the
	// mosquitto user.
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomSerial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }

// zlibLevel9 compresses as sentinel-proxy 1.2–1.3.1 did (compress2, level 9).
func zlibLevel9(t testing.TB, b []byte) []byte { return compress(t, b, zlib.BestCompression) }

// BenchmarkPipeline measures the per-message cost of both stages (topic and
// token checks, queueing, payload decision, handler call) without a broker.
func BenchmarkPipeline(b *testing.B) {
	s, err := New(Config{Logger: slog.New(slog.DiscardHandler)}, func(Message) {})
	if err != nil {
		b.Fatal(err)
	}
	q := &queue{ch: make(chan item, 1), maxBytes: int64(s.cfg.QueueBytes)}
	on := s.onMessage(q)
	m := fakeMessage{topic: DataTopic("", serial, seqToken, "minipot"), payload: minipotEvent("192.0.2.1")}
	b.ReportAllocs()
	for b.Loop() {
		on(nil, m)
		it := <-q.ch
		q.pop(it)
		s.deliver(it)
	}
	if st := s.Stats(); st.DroppedTotal() != 0 {
		b.Fatalf("dropped %v", st.Dropped)
	}
}
