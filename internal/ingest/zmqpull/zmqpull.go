// Package zmqpull is the server's ZeroMQ ingest: a PULL socket that takes
// exactly what Sentinel probes and sentinel-proxy push — a one-frame
// welcome, or two frames [topic, msgpack payload] under sentinel/collect/ —
// optionally behind CURVE for probes on other hosts. Messages are parsed by
// package probe; the events go to a handler.
package zmqpull

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/ingest/probe"
	"github.com/dynfw/sentinel/zmtp"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

// TopicPrefix is what every probe topic starts with.
const TopicPrefix = "sentinel/collect/"

// MaxTopic is the longest topic sentinel-proxy accepts.
const MaxTopic = 256

// Config configures the ingest socket.
type Config struct {
	// Listen are the endpoints, e.g. tcp://127.0.0.1:7088 or
	// ipc:///tmp/sentinel_pull.sock.
	Listen []string
	// Curve, when set, requires CURVE (server side): probes on other hosts
	// connect with the server's public key; their keys identify them.
	Curve *zmtp.CurveOptions
	// MaxMessageSize bounds one message (default 4 MiB).
	MaxMessageSize int64
	// Probes interns probe identities; required.
	Probes *events.Probes
	Logger *slog.Logger
}

// Handler receives the events of one message. It may block: the socket
// then stops reading, and probes wait (PUSH back-pressure).
type Handler func([]events.Event)

// Stats counts what the socket received.
type Stats struct {
	Messages, Welcomes, Events        atomic.Uint64
	BadFrames, BadTopic, UnknownTopic atomic.Uint64
	Malformed, BadEntries, Ignored    atomic.Uint64
}

// Ingest is the PULL socket and its loop.
type Ingest struct {
	cfg     Config
	sock    *zmtp.Socket
	handler Handler
	log     *slog.Logger
	stats   Stats
	addrs   []net.Addr
}

// New binds the socket.
func New(cfg Config, h Handler) (*Ingest, error) {
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Probes == nil {
		return nil, errors.New("zmqpull: Probes is required")
	}
	sock, err := zmtp.NewSocket(zmtp.PULL, zmtp.Options{Curve: cfg.Curve, MaxMessageSize: cfg.MaxMessageSize, RecvQueueLen: 10_000,
		OnEvent: func(e zmtp.Event) {
			switch e.Type {
			case zmtp.EventConnected:
				cfg.Logger.Debug("ingest: probe connected", "remote", e.Remote)
			case zmtp.EventHandshakeFailed, zmtp.EventDisconnected:
				cfg.Logger.Debug("ingest: probe "+e.Type.String(), "remote", e.Remote, "err", e.Err)
			}
		}})
	if err != nil {
		return nil, err
	}
	in := &Ingest{cfg: cfg, sock: sock, handler: h, log: cfg.Logger}
	for _, ep := range cfg.Listen {
		a, err := sock.Listen(ep)
		if err != nil {
			sock.Close()
			return nil, err
		}
		in.addrs = append(in.addrs, a)
		cfg.Logger.Info("probe ingest listening", "endpoint", ep, "addr", a.String(), "curve", cfg.Curve != nil)
	}
	return in, nil
}

// Addrs returns the bound addresses.
func (in *Ingest) Addrs() []net.Addr { return in.addrs }

// Stats returns the counters.
func (in *Ingest) Stats() *Stats { return &in.stats }

// Run receives until ctx ends, then closes the socket.
func (in *Ingest) Run(ctx context.Context) error {
	defer in.sock.Close()
	var buf []events.Event
	ids := map[string]events.ProbeID{}
	for {
		m, from, err := in.sock.RecvFrom(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		in.stats.Messages.Add(1)
		switch len(m) {
		case 1:
			// A welcome, as fwlogs ≥ 0.3.0 and newer minipots send at
			// start: the frame is the topic.
			in.stats.Welcomes.Add(1)
			in.log.Debug("ingest: welcome", "topic", clip(string(m[0])), "remote", from.Remote)
			continue
		case 2:
		default:
			in.stats.BadFrames.Add(1)
			in.log.Warn("ingest: dropping message", "reason", "not 1 or 2 frames", "frames", len(m), "remote", from.Remote)
			continue
		}
		topic := string(m[0])
		if !strings.HasPrefix(topic, TopicPrefix) || len(topic) == len(TopicPrefix) || len(topic) > MaxTopic {
			in.stats.BadTopic.Add(1)
			in.log.Warn("ingest: dropping message", "reason", "topic must be sentinel/collect/<name>, at most 256 bytes", "topic", clip(topic), "remote", from.Remote)
			continue
		}
		name := probeName(from)
		id, ok := ids[name]
		if !ok {
			id = in.cfg.Probes.ID(events.Probe{Name: name})
			ids[name] = id
		}
		buf, errs := probe.Parse(buf[:0], topic[len(TopicPrefix):], m[1], probe.Meta{Received: time.Now().UnixNano(), Probe: id, Source: events.FromZMQ})
		in.count(errs, topic, from)
		if len(buf) > 0 {
			in.stats.Events.Add(uint64(len(buf)))
			out := make([]events.Event, len(buf))
			copy(out, buf)
			in.handler(out)
		}
	}
}

func (in *Ingest) count(errs []*probe.EntryError, topic string, from zmtp.From) {
	for _, e := range errs {
		switch {
		case errors.Is(e, probe.ErrIgnored):
			in.stats.Ignored.Add(1)
			continue
		case errors.Is(e, probe.ErrUnknownTopic):
			in.stats.UnknownTopic.Add(1)
		case e.Index < 0:
			in.stats.Malformed.Add(1)
		default:
			in.stats.BadEntries.Add(1)
		}
		in.log.Warn("ingest: refused", "topic", clip(topic), "remote", from.Remote, "reason", e.Error())
	}
}

// probeName identifies the sender: its CURVE key when it has one, else its
// host.
func probeName(f zmtp.From) string {
	if f.Key != ([32]byte{}) {
		return "zmq:" + zcert.Key(f.Key).String()
	}
	host, _, err := net.SplitHostPort(f.Remote)
	if err != nil || host == "" {
		return "zmq:local"
	}
	return "zmq:" + host
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
