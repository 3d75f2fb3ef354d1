// Package client is the router side of DynFW: it keeps a firewall in sync
// with what a DynFW server publishes. The subscription itself (connection,
// heartbeats, serial rules) is internal/subscription's; this package adds
// the address policy, the safety floor and the firewall backends.
package client

import (
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/dynfw/sentinel/internal/subscription"
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

// ErrRejected wraps handshake failures that retrying will not fix.
var ErrRejected = subscription.ErrRejected

// Conn is a subscription to a DynFW server (see subscription.Conn).
type Conn = subscription.Conn

// MachineConfig tunes the serial rules (see subscription.MachineConfig).
type MachineConfig = subscription.MachineConfig

// Dial creates the subscriber socket (always with CURVE) and starts
// connecting. Use WaitConnected to learn whether the server can be reached.
func Dial(cfg Config) (*Conn, error) {
	key := cfg.ServerKey
	return subscription.Dial(subscription.Config{
		Endpoint:         cfg.Endpoint(),
		ServerKey:        &key,
		PublicKey:        cfg.PublicKey,
		SecretKey:        cfg.SecretKey,
		Heartbeat:        cfg.Heartbeat,
		HeartbeatTimeout: cfg.HeartbeatTimeout,
		MaxMessageSize:   cfg.MaxMessageSize,
		Logger:           cfg.Logger,
	})
}
