// Package subscription is the subscriber side of the DynFW protocol, for
// every program that follows a DynFW publisher: it dials the publisher (with
// CURVE, or NULL for a publisher configured without it), keeps the
// connection alive with ZMTP heartbeats, and runs the serial state machine
// that turns dynfw/list and dynfw/delta messages into a consistent state:
// lists are loaded, deltas applied in serial order, and a gap, a reset, a
// new version or a silent publisher resynchronise from the next list.
//
// What the state is for is the user's: a Handler receives the accepted
// lists and deltas (and events, when asked), the notes worth a log line or a
// metric, and the connection state. The router client's firewall syncer and
// the live page are its users; it knows neither firewalls nor pages.
package subscription

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/zmtp"
)

// Config describes how to reach a DynFW publisher.
type Config struct {
	// Endpoint of the publisher, e.g. tcp://sentinel.turris.cz:7087.
	Endpoint string
	// ServerKey is the publisher's long-term CURVE public key. Nil
	// connects without encryption (NULL), for a publisher configured
	// that way.
	ServerKey *[32]byte
	// PublicKey and SecretKey are our long-term key pair; zero keys make
	// the transport generate a fresh pair.
	PublicKey, SecretKey [32]byte
	// Heartbeat is the interval of ZMTP PINGs that detect a dead
	// connection; the server must answer within HeartbeatTimeout. Defaults
	// 30 s and 15 s.
	Heartbeat, HeartbeatTimeout time.Duration
	// MaxMessageSize bounds a message (default 64 MiB, about 4 million
	// addresses in a dynfw/list).
	MaxMessageSize int64
	// RecvQueueLen bounds the messages the transport holds before Recv
	// (default the transport's, 1000); what does not fit is dropped.
	RecvQueueLen int
	// ReconnectIntervalMax is the longest pause between reconnection
	// attempts (they start at 250 ms and double). Default 60 s.
	ReconnectIntervalMax time.Duration
	// Logger receives connection events. Default: slog.Default().
	Logger *slog.Logger
}

// ErrRejected wraps handshake failures that retrying will not fix: the
// server's key is not the one we have, it refused our key, or it does not
// speak CURVE.
var ErrRejected = errors.New("the server rejected the handshake")

// Conn is a subscription to a DynFW publisher. The transport reconnects by
// itself and re-sends subscriptions after every reconnect.
type Conn struct {
	cfg       Config
	sock      *zmtp.Socket
	log       *slog.Logger
	events    chan zmtp.Event
	remote    atomic.Pointer[netip.Addr] // of the last handshake
	connected atomic.Bool
}

// Dial creates the subscriber socket and starts connecting. Use
// WaitConnected to learn whether the server can be reached.
func Dial(cfg Config) (*Conn, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 30 * time.Second
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = 15 * time.Second
	}
	if cfg.ReconnectIntervalMax == 0 {
		cfg.ReconnectIntervalMax = 60 * time.Second
	}
	c := &Conn{cfg: cfg, log: cfg.Logger, events: make(chan zmtp.Event, 64)}
	opts := zmtp.Options{
		MaxMessageSize:    cfg.MaxMessageSize,
		RecvQueueLen:      cfg.RecvQueueLen,
		HeartbeatInterval: cfg.Heartbeat,
		HeartbeatTimeout:  cfg.HeartbeatTimeout,
		// Tell the server it may drop us after three missed PINGs.
		HeartbeatTTL:         3 * cfg.Heartbeat,
		ReconnectInterval:    250 * time.Millisecond,
		ReconnectIntervalMax: cfg.ReconnectIntervalMax,
		OnEvent:              c.onEvent,
	}
	if cfg.ServerKey != nil {
		opts.Curve = &zmtp.CurveOptions{ServerKey: *cfg.ServerKey, PublicKey: cfg.PublicKey, SecretKey: cfg.SecretKey}
	}
	sock, err := zmtp.NewSocket(zmtp.SUB, opts)
	if err != nil {
		return nil, err
	}
	c.sock = sock
	if err := sock.Dial(cfg.Endpoint); err != nil {
		sock.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) onEvent(e zmtp.Event) {
	switch e.Type {
	case zmtp.EventConnected:
		if ap, err := netip.ParseAddrPort(e.Remote); err == nil {
			a := ap.Addr().Unmap().WithZone("")
			c.remote.Store(&a)
		}
		c.connected.Store(true)
		c.log.Info("connected", "server", c.cfg.Endpoint, "remote", e.Remote)
	case zmtp.EventDisconnected:
		c.connected.Store(false)
		c.log.Warn("disconnected", "server", c.cfg.Endpoint, "err", e.Err)
	case zmtp.EventConnectFailed:
		c.log.Debug("connect failed", "server", c.cfg.Endpoint, "err", e.Err, "retry_in", e.Retry.Round(time.Millisecond))
	case zmtp.EventHandshakeFailed:
		c.log.Warn("handshake failed", "server", c.cfg.Endpoint, "err", explain(e.Err))
	}
	select {
	case c.events <- e:
	default: // nobody is waiting; the log line is enough
	}
}

// explain turns a transport error into what a user can act on.
func explain(err error) error {
	var he *zmtp.HandshakeError
	switch {
	case errors.Is(err, zmtp.ErrAuthRefused):
		return fmt.Errorf("%w: it refused our client key (%v)", ErrRejected, err)
	case errors.As(err, &he) && he.Stage == "WELCOME":
		return fmt.Errorf("%w: the server certificate does not match this server, or it is not a DynFW server (%v)", ErrRejected, err)
	case errors.As(err, &he) && he.Stage == "greeting" && errors.Is(err, zmtp.ErrProtocol):
		return fmt.Errorf("%w: %v", ErrRejected, err)
	}
	return err
}

// WaitConnected waits for the first successful handshake. It fails early
// with an error wrapping ErrRejected when the handshake fails in a way that
// retrying cannot fix (unless keepTrying is set), and otherwise when ctx
// ends, with the last connection error.
func (c *Conn) WaitConnected(ctx context.Context, keepTrying bool) error {
	var last error
	for {
		select {
		case e := <-c.events:
			switch e.Type {
			case zmtp.EventConnected:
				return nil
			case zmtp.EventConnectFailed:
				last = e.Err
			case zmtp.EventHandshakeFailed:
				last = explain(e.Err)
				if errors.Is(last, ErrRejected) && !keepTrying {
					return last
				}
			}
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return fmt.Errorf("cannot connect to %s: %w", c.cfg.Endpoint, last)
		}
	}
}

// Endpoint returns the endpoint dialled.
func (c *Conn) Endpoint() string { return c.cfg.Endpoint }

// Connected reports whether a connection is up (its handshake done).
func (c *Conn) Connected() bool { return c.connected.Load() }

// Remote returns the server address of the last successful handshake (the
// zero Addr before the first): for the client, the address the firewall
// must never block.
func (c *Conn) Remote() netip.Addr {
	if a := c.remote.Load(); a != nil {
		return *a
	}
	return netip.Addr{}
}

// Socket returns the underlying subscriber socket.
func (c *Conn) Socket() *zmtp.Socket { return c.sock }

// Subscribe and Unsubscribe change the topics received.
func (c *Conn) Subscribe(prefix string) error   { return c.sock.Subscribe(prefix) }
func (c *Conn) Unsubscribe(prefix string) error { return c.sock.Unsubscribe(prefix) }

// Recv returns the next message: its topic and payload frames.
func (c *Conn) Recv(ctx context.Context) (zmtp.Message, error) { return c.sock.Recv(ctx) }

// Close disconnects.
func (c *Conn) Close() error { return c.sock.Close() }
