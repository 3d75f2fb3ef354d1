package mqtt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/lograte"
)

// Defaults of Config.
const (
	DefaultURL          = "tcp://localhost:1883"
	DefaultMaxPayload   = 16 << 20
	DefaultQueueSize    = 4096
	DefaultQueueBytes   = 64 << 20
	DefaultKeepAlive    = 30 * time.Second
	DefaultReconnectMin = time.Second
	DefaultReconnectMax = time.Minute
)

const (
	// connectTimeout bounds the TCP and TLS handshakes and the wait for
	// CONNACK and SUBACK.
	connectTimeout = 10 * time.Second
	// disconnectQuiesce is how long a clean shutdown waits for the
	// DISCONNECT packet to be written.
	disconnectQuiesce = 250 // milliseconds, as paho wants it
	// dropLogEvery is the shortest interval between two log lines about
	// dropped messages of one DropReason; the others are counted and the
	// count is logged with the next line.
	dropLogEvery = 10 * time.Second
)

// ErrRunning is returned by Run when the Subscriber is already running.
var ErrRunning = errors.New("mqtt: subscriber is already running")

// Errors of the drop reasons that are not about the topic or the payload,
// wrapped in a *DropError.
var (
	ErrNoToken   = errors.New("legacy topic without a device token, and a token is required")
	ErrRetained  = errors.New("retained message (the proxy never retains)")
	ErrQueueFull = errors.New("handler queue full")
	ErrStopped   = errors.New("subscriber stopped")
)

// Config configures a Subscriber. The zero Config subscribes to
// sentinel/collect/# on a broker on localhost:1883.
type Config struct {
	// URL is the broker: tcp://host[:port] or mqtt://… for plain TCP
	// (port 1883 by default), ssl://, tls:// or mqtts:// for TLS (port
	// 8883 by default; Sentinel's own broker speaks TLS on 1883).
	// Default DefaultURL.
	URL string

	// CAFile is a PEM bundle of the CAs that sign the broker's
	// certificate; empty means the system's roots. TLS only.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key, for
	// brokers that require one. TLS only; both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify disables the verification of the broker's
	// certificate, as sentinel-proxy's hidden -d flag does. For tests only.
	InsecureSkipVerify bool

	// ClientID is the MQTT client ID. Default "sentinel-ingest-" and 12
	// random hex digits, unique per Subscriber. Two clients with the same
	// ID make the broker disconnect one of them at every connection, so
	// set it only when it is unique.
	ClientID string
	// Username and Password authenticate to the broker, if it asks.
	Username, Password string

	// Root is the prefix the routers publish under, without a trailing
	// "/". Default DefaultRoot ("sentinel/collect"); another value is
	// for a broker bridge that remaps topics, and for tests.
	Root string
	// Topic is the topic filter to subscribe to. Default Root + "/#".
	// Messages outside Root are dropped as DropBadTopic.
	Topic string
	// Share, when set, is the name of a shared-subscription group: the
	// Subscriber subscribes to $share/<Share>/<Topic> and the broker
	// splits the messages between all the group's members.
	Share string
	// QoS is the subscription's maximum QoS. Default 0, as the proxy
	// publishes with QoS 0 and a higher QoS would not make it reliable.
	QoS byte

	// MaxPayload bounds a payload, both as received and after inflation.
	// Default DefaultMaxPayload (16 MiB).
	MaxPayload int
	// QueueSize and QueueBytes bound the messages waiting for the
	// handler, in number and in payload bytes (see the package
	// documentation). Defaults DefaultQueueSize and DefaultQueueBytes;
	// QueueBytes must be at least MaxPayload.
	QueueSize  int
	QueueBytes int

	// RequireToken drops messages in the token-less layout of proxy ≤ 1.1
	// (as DropNoToken). Off by default, for compatibility; such routers
	// have been out of support for years, and without a token a message
	// cannot be tied to a Sentinel View page.
	RequireToken bool

	// KeepAlive is the MQTT keepalive. Default DefaultKeepAlive.
	KeepAlive time.Duration
	// ReconnectMin and ReconnectMax bound the wait between connection
	// attempts, which doubles after each failure (with jitter) and starts
	// again from ReconnectMin after a connection that lasted ReconnectMax.
	// Defaults DefaultReconnectMin and DefaultReconnectMax.
	ReconnectMin, ReconnectMax time.Duration

	// Logger receives connection events and dropped messages. Default
	// slog.Default().
	Logger *slog.Logger
}

// Stats is a snapshot of a Subscriber's counters. Every message received is,
// eventually, either delivered or dropped: Received = Delivered + the sum of
// Dropped + Queued (+1 while the handler runs).
type Stats struct {
	// Connected is set while the Subscriber is connected and subscribed.
	Connected bool
	// Connects counts the connections that got as far as a subscription.
	Connects uint64
	// Received counts the messages received from the broker.
	Received uint64
	// Delivered counts the messages handed to the handler; Inflated,
	// Legacy and Status count those among them that were zlib payloads,
	// legacy messages and status messages.
	Delivered, Inflated, Legacy, Status uint64
	// Dropped counts the messages dropped, by reason; every DropReason is
	// present.
	Dropped map[DropReason]uint64
	// Queued and QueuedBytes are the messages (and their payload bytes)
	// waiting for the handler.
	Queued      int
	QueuedBytes int64
}

// DroppedTotal returns the sum of Dropped.
func (s Stats) DroppedTotal() uint64 {
	var n uint64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// Subscriber receives sentinel-proxy messages from an MQTT broker and passes
// them to a handler. Create it with New and start it with Run; Stats may be
// called at any time from any goroutine.
type Subscriber struct {
	cfg      Config
	handler  func(Message)
	log      *slog.Logger
	addr     string      // host:port to dial
	tls      *tls.Config // nil for plain TCP
	filter   string      // the subscription's topic filter
	clientID string

	running   atomic.Bool
	connected atomic.Bool
	queue     atomic.Pointer[queue]

	connects, received, delivered, inflated, legacy, status atomic.Uint64
	dropped                                                 [len(dropReasons)]atomic.Uint64
	dropLog                                                 [len(dropReasons)]lograte.Gate
}

// New checks cfg, fills in its defaults and returns a Subscriber that will
// call handler for every accepted message. It reads the TLS files but does
// not connect; Run does.
func New(cfg Config, handler func(Message)) (*Subscriber, error) {
	if handler == nil {
		return nil, errors.New("mqtt: nil handler")
	}
	if err := setDefaults(&cfg); err != nil {
		return nil, err
	}
	s := &Subscriber{cfg: cfg, handler: handler, clientID: cfg.ClientID}
	var useTLS bool
	var host string
	var err error
	if s.addr, host, useTLS, err = parseURL(cfg.URL); err != nil {
		return nil, err
	}
	if useTLS {
		if s.tls, err = tlsConfig(cfg, host); err != nil {
			return nil, err
		}
	} else if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.InsecureSkipVerify {
		return nil, fmt.Errorf("mqtt: TLS settings given for the plain-TCP URL %q; use ssl:// or mqtts://", cfg.URL)
	}
	s.filter = cfg.Topic
	if cfg.Share != "" {
		s.filter = "$share/" + cfg.Share + "/" + cfg.Topic
	}
	s.log = cfg.Logger.With("component", "ingest/mqtt", "client_id", s.clientID)
	return s, nil
}

// setDefaults fills in the zero fields of cfg and checks the others.
func setDefaults(cfg *Config) error {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if cfg.ClientID == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("mqtt: client ID: %w", err)
		}
		cfg.ClientID = "sentinel-ingest-" + hex.EncodeToString(b[:])
	}
	if cfg.Root == "" {
		cfg.Root = DefaultRoot
	}
	if strings.HasSuffix(cfg.Root, "/") || strings.ContainsAny(cfg.Root, "+#\x00") {
		return fmt.Errorf("mqtt: Root %q must not end with / nor contain wildcards", cfg.Root)
	}
	if cfg.Topic == "" {
		cfg.Topic = cfg.Root + "/#"
	}
	if err := checkFilter(cfg.Topic); err != nil {
		return err
	}
	if cfg.Share != "" && strings.ContainsAny(cfg.Share, "/+#\x00") {
		return fmt.Errorf("mqtt: Share %q must not contain /, + or #", cfg.Share)
	}
	if cfg.QoS > 2 {
		return fmt.Errorf("mqtt: QoS %d is not 0, 1 or 2", cfg.QoS)
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxPayload", &cfg.MaxPayload, DefaultMaxPayload},
		{"QueueSize", &cfg.QueueSize, DefaultQueueSize},
		{"QueueBytes", &cfg.QueueBytes, DefaultQueueBytes},
	} {
		switch {
		case *f.v == 0:
			*f.v = f.def
		case *f.v < 0:
			return fmt.Errorf("mqtt: negative %s", f.name)
		}
	}
	if cfg.QueueBytes < cfg.MaxPayload {
		return fmt.Errorf("mqtt: QueueBytes (%d) is smaller than MaxPayload (%d)", cfg.QueueBytes, cfg.MaxPayload)
	}
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&cfg.KeepAlive, DefaultKeepAlive},
		{&cfg.ReconnectMin, DefaultReconnectMin},
		{&cfg.ReconnectMax, DefaultReconnectMax},
	} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = cfg.ReconnectMin
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return nil
}

// checkFilter checks an MQTT topic filter: "#" only as the last level, "+"
// only as a whole level.
func checkFilter(f string) error {
	if f == "" || strings.IndexByte(f, 0) >= 0 {
		return fmt.Errorf("mqtt: invalid topic filter %q", f)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if (strings.Contains(l, "#") && (l != "#" || i != len(levels)-1)) ||
			(strings.Contains(l, "+") && l != "+") {
			return fmt.Errorf("mqtt: invalid topic filter %q", f)
		}
	}
	return nil
}

// parseURL returns the address to dial, the host name (for TLS) and whether
// the scheme asks for TLS.
func parseURL(raw string) (addr, host string, useTLS bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", false, fmt.Errorf("mqtt: broker URL: %w", err)
	}
	port := "1883"
	switch u.Scheme {
	case "tcp", "mqtt":
	case "ssl", "tls", "mqtts":
		useTLS, port = true, "8883"
	default:
		return "", "", false, fmt.Errorf("mqtt: broker URL %q: scheme must be tcp, mqtt, ssl, tls or mqtts", raw)
	}
	if u.User != nil {
		return "", "", false, fmt.Errorf("mqtt: broker URL %q: put credentials into Username and Password", u.Redacted())
	}
	host = u.Hostname()
	if host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", "", false, fmt.Errorf("mqtt: broker URL %q: want scheme://host[:port]", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", "", false, fmt.Errorf("mqtt: broker URL %q: bad port", raw)
		}
		port = p
	}
	return net.JoinHostPort(host, port), host, useTLS, nil
}

// tlsConfig builds the client TLS configuration from the files of cfg.
func tlsConfig(cfg Config, host string) (*tls.Config, error) {
	tc := &tls.Config{
		ServerName:         host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: cfg.InsecureSkipVerify,
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt: CA file %s: no PEM certificate in it", cfg.CAFile)
		}
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("mqtt: CertFile and KeyFile go together")
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// ClientID returns the MQTT client ID, generated by New unless configured.
func (s *Subscriber) ClientID() string { return s.clientID }

// Subscription returns the topic filter Run subscribes to, $share prefix
// included.
func (s *Subscriber) Subscription() string { return s.filter }

// Run connects to the broker, subscribes and passes messages to the handler
// until ctx ends. When the connection fails or is lost (broker restart,
// network, the broker dropping the client) it connects again, after a wait
// that grows from ReconnectMin to ReconnectMax, and subscribes again: the
// session is clean, since the proxy's QoS 0 messages would not be kept for us
// anyway. It never gives up on its own.
//
// Run returns nil once ctx has ended, the connection is closed and the
// handler has returned for the last time; messages still queued then are
// dropped as DropShutdown. It returns ErrRunning if the Subscriber is already
// running. A Subscriber can be run again after Run returned.
func (s *Subscriber) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)

	q := &queue{ch: make(chan item, s.cfg.QueueSize), maxBytes: int64(s.cfg.QueueBytes)}
	s.queue.Store(q)
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		s.dispatch(ctx, q)
	}()

	delay := s.cfg.ReconnectMin
	for {
		up, err := s.session(ctx, q)
		if ctx.Err() != nil {
			break
		}
		if up >= s.cfg.ReconnectMax {
			delay = s.cfg.ReconnectMin
		}
		// Jitter keeps a fleet of ingest workers from reconnecting in
		// step after a broker restart.
		wait := delay/2 + mrand.N(delay/2+1)
		s.log.Warn("mqtt connection ended", "err", err, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
		delay = min(2*delay, s.cfg.ReconnectMax)
	}
	<-dispatched
	if n := q.close(); n > 0 {
		s.dropped[DropShutdown.index()].Add(uint64(n))
		s.log.Info("mqtt messages dropped at shutdown", "reason", DropShutdown, "count", n)
	}
	return nil
}

// session runs one connection: connect, subscribe, and wait until the
// connection is lost or ctx ends. It returns how long the subscription was
// up and why the session ended (nil when ctx ended).
func (s *Subscriber) session(ctx context.Context, q *queue) (time.Duration, error) {
	lost := make(chan error, 1)
	var dialing dialState
	opts := paho.NewClientOptions().
		// paho wants a broker URL; the connection itself comes from dial.
		AddBroker("tcp://" + s.addr).
		SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) {
			return dialing.dial(ctx, s.addr, s.tls)
		}).
		SetClientID(s.clientID).
		SetUsername(s.cfg.Username).
		SetPassword(s.cfg.Password).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetKeepAlive(s.cfg.KeepAlive).
		SetPingTimeout(connectTimeout).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(connectTimeout).
		SetOrderMatters(true).
		SetDefaultPublishHandler(s.onMessage(q)).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	c := paho.NewClient(opts)

	ct := c.Connect()
	<-ct.Done()
	dialing.connected()
	if err := ct.Error(); err != nil {
		return 0, fmt.Errorf("connect to %s: %w", s.addr, err)
	}
	defer c.Disconnect(disconnectQuiesce)

	st := c.Subscribe(s.filter, s.cfg.QoS, nil)
	select {
	case <-st.Done():
	case err := <-lost:
		return 0, fmt.Errorf("connection lost before SUBACK: %w", err)
	case <-ctx.Done():
		return 0, nil
	case <-time.After(connectTimeout):
		return 0, fmt.Errorf("subscribe to %s: no SUBACK within %v", s.filter, connectTimeout)
	}
	if err := st.Error(); err != nil {
		return 0, fmt.Errorf("subscribe to %s: %w", s.filter, err)
	}
	for _, code := range st.(*paho.SubscribeToken).Result() {
		if code > 2 {
			// 0x80: the broker refused, typically its ACL.
			return 0, fmt.Errorf("subscribe to %s: refused by the broker (code %#x)", s.filter, code)
		}
	}

	start := time.Now()
	s.connects.Add(1)
	s.connected.Store(true)
	defer s.connected.Store(false)
	s.log.Info("mqtt subscribed", "broker", s.addr, "topic", s.filter, "qos", s.cfg.QoS)
	select {
	case err := <-lost:
		return time.Since(start), fmt.Errorf("connection lost: %w", err)
	case <-ctx.Done():
		return time.Since(start), nil
	}
}

// dialState lets ctx abort a connection attempt: paho waits for its
// handshakes with its own timeouts, so the connection is closed under it if
// ctx ends first. Once connected, shutdown goes through Disconnect instead,
// which tells the broker.
type dialState struct {
	mu   sync.Mutex
	stop func() bool
}

func (d *dialState) dial(ctx context.Context, addr string, tc *tls.Config) (net.Conn, error) {
	nd := net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		tconn := tls.Client(conn, tc)
		hctx, cancel := context.WithTimeout(ctx, connectTimeout)
		err := tconn.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, err
		}
		conn = tconn
	}
	d.mu.Lock()
	d.stop = context.AfterFunc(ctx, func() { conn.Close() })
	d.mu.Unlock()
	return conn, nil
}

// connected ends the window in which ctx closes the connection.
func (d *dialState) connected() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stop != nil {
		d.stop()
	}
}

// item is a message waiting for the handler, its topic already checked.
type item struct {
	topic    Topic
	payload  []byte
	received time.Time
}

// queue is the bounded hand-over from the MQTT library's goroutine to the
// handler's.
type queue struct {
	ch       chan item
	bytes    atomic.Int64
	maxBytes int64

	mu     sync.Mutex // orders push against close
	closed bool
}

// The errors of push, preallocated: a full queue is when the drop path
// must be cheapest.
var (
	errQueueFull = &DropError{Reason: DropQueueFull, Err: ErrQueueFull}
	errStopped   = &DropError{Reason: DropShutdown, Err: ErrStopped}
)

// push queues it unless the queue is full or closed; it never blocks.
func (q *queue) push(it item) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errStopped
	}
	n := int64(len(it.payload))
	if q.bytes.Load()+n > q.maxBytes {
		return errQueueFull
	}
	select {
	case q.ch <- it:
		q.bytes.Add(n)
		return nil
	default:
		return errQueueFull
	}
}

// pop records that it left the queue.
func (q *queue) pop(it item) { q.bytes.Add(-int64(len(it.payload))) }

// close refuses further messages and empties the queue, returning how many
// messages were still in it.
func (q *queue) close() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	n := 0
	for {
		select {
		case it := <-q.ch:
			q.pop(it)
			n++
		default:
			return n
		}
	}
}

// onMessage returns the callback that paho calls on its goroutine for every
// PUBLISH. It does only what is cheap (topic and size checks) and queues.
func (s *Subscriber) onMessage(q *queue) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		received := time.Now()
		s.received.Add(1)
		t, err := ParseTopic(s.cfg.Root, m.Topic())
		payload := m.Payload()
		switch {
		case err != nil:
		case m.Retained():
			// The proxy never retains. A retained message would come back
			// at every subscription, and be counted again each time.
			err = &DropError{Reason: DropRetained, Err: ErrRetained}
		case t.Legacy() && s.cfg.RequireToken:
			err = &DropError{Reason: DropNoToken, Err: ErrNoToken}
		case len(payload) > s.cfg.MaxPayload:
			// Checked here too so that big payloads do not fill the queue.
			err = &DropError{Reason: DropTooLarge, Err: fmt.Errorf("%w: %d > %d bytes", ErrTooLarge, len(payload), s.cfg.MaxPayload)}
		default:
			err = q.push(item{topic: t, payload: payload, received: received})
		}
		switch {
		case err == errStopped:
			// paho may deliver a last message after Run has returned;
			// count it, but leave the caller's logger alone.
			s.dropped[DropShutdown.index()].Add(1)
		case err != nil:
			s.drop(t, len(payload), err)
		}
	}
}

// dispatch feeds queued messages to the handler until ctx ends.
func (s *Subscriber) dispatch(ctx context.Context, q *queue) {
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-q.ch:
			q.pop(it)
			s.deliver(it)
		}
	}
}

// deliver decodes a queued message and calls the handler.
func (s *Subscriber) deliver(it item) {
	msg, err := s.decode(it)
	if err != nil {
		s.drop(it.topic, len(it.payload), err)
		return
	}
	if msg.Zlib {
		s.inflated.Add(1)
	}
	if msg.Legacy {
		s.legacy.Add(1)
	}
	if msg.Status != nil {
		s.status.Add(1)
	}
	s.delivered.Add(1)
	s.handler(msg)
}

// decode turns a queued message into a Message: payload inflated when it is
// zlib, status decoded on the status topic.
func (s *Subscriber) decode(it item) (Message, error) {
	payload, zl, err := decodePayload(it.payload, s.cfg.MaxPayload)
	if err != nil {
		return Message{}, err
	}
	msg := Message{
		Serial:   it.topic.Serial,
		Token:    it.topic.Token,
		Suffix:   it.topic.Suffix,
		Payload:  payload,
		Legacy:   it.topic.Legacy() || zl,
		Zlib:     zl,
		Received: it.received,
	}
	if it.topic.Status {
		if msg.Status, err = parseStatus(payload, it.received); err != nil {
			return Message{}, err
		}
	}
	return msg, nil
}

// drop counts a dropped message and logs it, at most once per dropLogEvery
// and reason. t holds what is known of the topic. Everything in a topic and
// a payload is typed by whoever publishes, so the line carries the reason,
// fingerprints of the serial and the token, and lengths; never the error's
// text, which may quote the payload.
func (s *Subscriber) drop(t Topic, size int, err error) {
	reason := DropBadTopic
	var de *DropError
	if errors.As(err, &de) {
		reason = de.Reason
	}
	i := reason.index()
	s.dropped[i].Add(1)
	ok, suppressed := s.dropLog[i].Allow(time.Now(), dropLogEvery)
	if !ok {
		return
	}
	attrs := []slog.Attr{slog.String("reason", string(reason))}
	if t.Serial != "" {
		attrs = append(attrs, slog.String("serial", SerialFingerprint(t.Serial)))
	}
	if t.Token != "" {
		attrs = append(attrs, slog.String("token", devicetoken.Fingerprint(t.Token)))
	}
	if t.Suffix != "" {
		attrs = append(attrs, slog.Int("suffix_len", len(t.Suffix)))
	}
	attrs = append(attrs, slog.Int("payload_len", size))
	if suppressed > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", suppressed))
	}
	s.log.LogAttrs(context.Background(), slog.LevelWarn, "mqtt message dropped", attrs...)
}

// Stats returns a snapshot of the counters.
func (s *Subscriber) Stats() Stats {
	st := Stats{
		Connected: s.connected.Load(),
		Connects:  s.connects.Load(),
		Received:  s.received.Load(),
		Delivered: s.delivered.Load(),
		Inflated:  s.inflated.Load(),
		Legacy:    s.legacy.Load(),
		Status:    s.status.Load(),
		Dropped:   make(map[DropReason]uint64, len(dropReasons)),
	}
	for i, r := range dropReasons {
		st.Dropped[r] = s.dropped[i].Load()
	}
	if q := s.queue.Load(); q != nil {
		st.Queued = len(q.ch)
		st.QueuedBytes = q.bytes.Load()
	}
	return st
}
