// Package client is the subscriber side of DynFW: it connects to a DynFW
// server with CURVE, keeps the connection alive, and hands received messages
// to the caller as typed values.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/zmtp"
)

// Config describes how to reach a DynFW server.
type Config struct {
	// Server and Port of the publisher (tcp://Server:Port).
	Server string
	Port   int
	// ServerKey is the server's long-term CURVE public key.
	ServerKey [32]byte
	// PublicKey and SecretKey are the client's long-term key pair; zero
	// keys make the transport generate a fresh pair.
	PublicKey, SecretKey [32]byte
	// Heartbeat is the interval of ZMTP PINGs that detect a dead
	// connection; the server must answer within HeartbeatTimeout. Defaults
	// 30 s and 15 s.
	Heartbeat, HeartbeatTimeout time.Duration
	// MaxMessageSize bounds a message (default 64 MiB, about 4 million
	// addresses in a dynfw/list).
	MaxMessageSize int64
	// Logger receives connection events. Default: slog.Default().
	Logger *slog.Logger
}

// Endpoint returns the ZeroMQ endpoint of the server.
func (c Config) Endpoint() string {
	return "tcp://" + net.JoinHostPort(c.Server, strconv.Itoa(c.Port))
}

// ErrRejected wraps handshake failures that retrying will not fix: the
// server's key is not the one we have, it refused our key, or it does not
// speak CURVE.
var ErrRejected = errors.New("the server rejected the handshake")

// Conn is a subscription to a DynFW server. The transport reconnects by
// itself and re-sends subscriptions after every reconnect.
type Conn struct {
	cfg    Config
	sock   *zmtp.Socket
	log    *slog.Logger
	events chan zmtp.Event
	remote atomic.Pointer[netip.Addr] // of the last handshake
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
	c := &Conn{cfg: cfg, log: cfg.Logger, events: make(chan zmtp.Event, 64)}
	sock, err := zmtp.NewSocket(zmtp.SUB, zmtp.Options{
		Curve:             &zmtp.CurveOptions{ServerKey: cfg.ServerKey, PublicKey: cfg.PublicKey, SecretKey: cfg.SecretKey},
		MaxMessageSize:    cfg.MaxMessageSize,
		HeartbeatInterval: cfg.Heartbeat,
		HeartbeatTimeout:  cfg.HeartbeatTimeout,
		// Tell the server it may drop us after three missed PINGs.
		HeartbeatTTL:         3 * cfg.Heartbeat,
		ReconnectInterval:    250 * time.Millisecond,
		ReconnectIntervalMax: 60 * time.Second,
		OnEvent:              c.onEvent,
	})
	if err != nil {
		return nil, err
	}
	c.sock = sock
	if err := sock.Dial(cfg.Endpoint()); err != nil {
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
		c.log.Info("connected", "server", c.cfg.Endpoint(), "remote", e.Remote)
	case zmtp.EventDisconnected:
		c.log.Warn("disconnected", "server", c.cfg.Endpoint(), "err", e.Err)
	case zmtp.EventConnectFailed:
		c.log.Debug("connect failed", "server", c.cfg.Endpoint(), "err", e.Err, "retry_in", e.Retry.Round(time.Millisecond))
	case zmtp.EventHandshakeFailed:
		c.log.Warn("handshake failed", "server", c.cfg.Endpoint(), "err", explain(e.Err))
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
			return fmt.Errorf("cannot connect to %s: %w", c.cfg.Endpoint(), last)
		}
	}
}

// Remote returns the server address of the last successful handshake (the
// zero Addr before the first): the address the firewall must never block.
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
