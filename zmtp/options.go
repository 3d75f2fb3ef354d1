package zmtp

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// Options configures a Socket. The zero value is usable: NULL security and
// the defaults documented on each field.
type Options struct {
	// Curve enables the CURVE mechanism; nil means NULL (no security).
	Curve *CurveOptions

	// MaxMessageSize bounds the payload bytes of one incoming message
	// (all frames together). A peer that announces more is disconnected.
	// Default 64 MiB, enough for a dynfw/list of 4 million addresses.
	MaxMessageSize int64
	// MaxFrames bounds the number of frames of one incoming message.
	// Default 256.
	MaxFrames int

	// SendQueueLen and SendQueueBytes bound each peer's send queue
	// (libzmq's SNDHWM, per connection). A PUB drops what does not fit,
	// counting it; a PUSH waits. Defaults 1000 messages and 128 MiB; a
	// single message larger than SendQueueBytes is still accepted into an
	// empty queue.
	SendQueueLen   int
	SendQueueBytes int64
	// RecvQueueLen and RecvQueueBytes bound the socket's receive queue. A
	// SUB drops what does not fit (counted, as libzmq's RCVHWM); a PULL
	// stops reading from its peers until Recv makes room. Defaults 1000
	// messages and 256 MiB.
	RecvQueueLen   int
	RecvQueueBytes int64

	// HeartbeatInterval enables ZMTP 3.1 PINGs to every peer at this
	// interval; 0 disables them. PINGs from peers are always answered.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout is how long after a PING the peer may stay silent
	// before it is disconnected. Default: HeartbeatInterval.
	HeartbeatTimeout time.Duration
	// HeartbeatTTL is announced in our PINGs: the peer may drop us after
	// this long without traffic. 0 announces none.
	HeartbeatTTL time.Duration

	// ReconnectInterval is the first delay before a dialer reconnects;
	// it doubles after every failed attempt up to ReconnectIntervalMax,
	// with random jitter. Defaults 100 ms and 30 s.
	ReconnectInterval    time.Duration
	ReconnectIntervalMax time.Duration
	// DialTimeout bounds a TCP connect, HandshakeTimeout the greeting and
	// security handshake. Defaults 10 s each.
	DialTimeout      time.Duration
	HandshakeTimeout time.Duration
	// WriteTimeout, when set, disconnects a peer whose socket accepts no
	// data for this long (a stalled subscriber, such as one with a zero
	// TCP window that still answers PINGs). It bounds the time without
	// progress, not the time of a whole write: a large message to a slow
	// peer that keeps reading is written as long as it takes. 0 disables
	// it.
	WriteTimeout time.Duration
	// TCPKeepAlive is the keep-alive period of TCP connections. Default
	// 30 s; negative disables keep-alives.
	TCPKeepAlive time.Duration
	// Linger is how long Close waits for queued messages to be written.
	// Default 1 s; negative means do not wait.
	Linger time.Duration

	// MaxPeers bounds the connections accepted by the socket's
	// listeners, whether still in their handshake or ready; MaxHandshakes
	// bounds those in their handshake. A connection accepted beyond
	// either limit is closed at once, counted in Stats.Refused and
	// reported as EventRefused. Connections the socket dials do not count.
	// 0 means no limit.
	MaxPeers      int
	MaxHandshakes int
	// MaxSubscriptions bounds the distinct subscriptions of one peer of a
	// PUB or XPUB socket; a peer that asks for more is disconnected
	// (ReasonTooManySubscriptions). Every message sent is matched against
	// every subscription of every peer, so a publisher whose subscribers
	// need few should say so. 0 means no limit.
	MaxSubscriptions int

	// XPUBVerbose makes an XPUB socket report every subscription it
	// receives; by default it reports a topic when its first subscriber
	// arrives and when its last one leaves, as libzmq does.
	XPUBVerbose bool

	// Logger receives debug logs of connection life cycles (with the
	// Reason, never the error text). Default: none.
	Logger *slog.Logger
	// OnEvent, if set, is called for every connection event. It runs on
	// connection goroutines and must not block.
	OnEvent func(Event)
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 64 << 20
	}
	if o.MaxFrames <= 0 {
		o.MaxFrames = 256
	}
	if o.SendQueueLen <= 0 {
		o.SendQueueLen = 1000
	}
	if o.SendQueueBytes <= 0 {
		o.SendQueueBytes = 128 << 20
	}
	if o.RecvQueueLen <= 0 {
		o.RecvQueueLen = 1000
	}
	if o.RecvQueueBytes <= 0 {
		o.RecvQueueBytes = 256 << 20
	}
	def(&o.HeartbeatTimeout, o.HeartbeatInterval)
	def(&o.ReconnectInterval, 100*time.Millisecond)
	def(&o.ReconnectIntervalMax, 30*time.Second)
	if o.ReconnectIntervalMax < o.ReconnectInterval {
		o.ReconnectIntervalMax = o.ReconnectInterval
	}
	def(&o.DialTimeout, 10*time.Second)
	def(&o.HandshakeTimeout, 10*time.Second)
	def(&o.TCPKeepAlive, 30*time.Second)
	def(&o.Linger, time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// EventType says what happened to a connection.
type EventType int

// Connection events, in the order a connection passes through them.
const (
	// EventListening: Listen bound its address.
	EventListening EventType = iota + 1
	// EventAccepted: a listener accepted a TCP connection; the handshake
	// starts.
	EventAccepted
	// EventConnectFailed: a dialer could not open a TCP connection; it
	// retries after Event.Retry.
	EventConnectFailed
	// EventHandshakeFailed: the greeting or security handshake failed;
	// Err says why (a *HandshakeError).
	EventHandshakeFailed
	// EventConnected: the handshake completed and the peer is ready.
	EventConnected
	// EventDisconnected: a ready peer went away; Err and Reason say why.
	EventDisconnected
	// EventRefused: a listener accepted a connection beyond
	// Options.MaxPeers or Options.MaxHandshakes and closed it at once.
	EventRefused
)

func (t EventType) String() string {
	switch t {
	case EventListening:
		return "listening"
	case EventAccepted:
		return "accepted"
	case EventConnectFailed:
		return "connect-failed"
	case EventHandshakeFailed:
		return "handshake-failed"
	case EventConnected:
		return "connected"
	case EventDisconnected:
		return "disconnected"
	case EventRefused:
		return "refused"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event reports a change in a connection's life.
type Event struct {
	Type EventType
	// Endpoint is the endpoint given to Listen or Dial.
	Endpoint string
	// Remote is the peer's address, when known.
	Remote string
	// PeerType is the peer's Socket-Type (after the handshake).
	PeerType string
	// PeerKey is the peer's long-term CURVE public key (after a CURVE
	// handshake).
	PeerKey *[32]byte
	// Err is the reason of a failure or disconnection. Its text may quote
	// what the peer sent (an ERROR command's reason): log Reason instead
	// on the side that faces untrusted peers.
	Err error
	// Reason classifies Err for EventHandshakeFailed, EventDisconnected
	// and EventRefused.
	Reason Reason
	// Retry is the delay before a dialer's next attempt.
	Retry time.Duration
}

func (e Event) String() string {
	s := e.Type.String() + " " + e.Endpoint
	if e.Remote != "" {
		s += " remote=" + e.Remote
	}
	if e.Reason != "" {
		s += " reason=" + string(e.Reason)
	}
	if e.Err != nil {
		s += " err=" + e.Err.Error()
	}
	return s
}

func remoteOf(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}
