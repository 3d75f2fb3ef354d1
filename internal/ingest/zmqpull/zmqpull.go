// Package zmqpull is the server's ZeroMQ ingest: a PULL socket that takes
// exactly what Sentinel probes and sentinel-proxy push — a one-frame
// welcome, or two frames [topic, msgpack payload] under sentinel/collect/ —
// optionally behind CURVE for probes on other hosts. Messages are parsed by
// package probe; the events go to a handler.
//
// Every refusal is counted under a reason (Stats.Rejected: the framing
// reasons of this package and the parser's reasons of package probe), and
// every connection the socket closes under the transport's reason
// (SocketStats). Logs carry the reason, the probe's address and lengths,
// never the topic or the payload, and each reason at most once per interval.
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
	"github.com/dynfw/sentinel/internal/ingest"
	"github.com/dynfw/sentinel/internal/ingest/probe"
	"github.com/dynfw/sentinel/internal/lograte"
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
	// MaxProbes bounds the connections accepted at once, handshakes
	// included (default DefaultMaxProbes; negative: no limit), and
	// MaxHandshakes the handshakes in progress (default
	// DefaultMaxHandshakes; negative: no limit). More are closed at once
	// and counted: a flood of connections costs the server a bounded
	// amount of memory, and the probes already connected keep sending.
	MaxProbes, MaxHandshakes int
	// Probes interns probe identities; required.
	Probes *events.Probes
	Logger *slog.Logger
}

// Defaults of Config's budgets. A probe or a sentinel-proxy holds one
// connection; a large sensor network has a few thousand.
const (
	DefaultMaxProbes     = 4096
	DefaultMaxHandshakes = 256
)

// Reasons of this package, besides those of probe.Reasons.
const (
	ReasonBadFrames = "bad_frames" // a message of neither one nor two frames
	ReasonBadTopic  = "bad_topic"  // a topic not of the form sentinel/collect/<name>, or too long
)

// Stats counts what the socket received.
type Stats struct {
	// Messages counts the messages received, Welcomes the one-frame
	// welcomes among them, Events the events handed on.
	Messages, Welcomes, Events atomic.Uint64
	badFrames, badTopic        atomic.Uint64
	parse                      probe.Counts
}

// Rejected returns the refused messages and entries by reason: the framing
// reasons (ReasonBadFrames, ReasonBadTopic) count messages, the parser's
// (probe.Reasons) count payloads or entries. Every reason is present.
func (s *Stats) Rejected() map[string]uint64 {
	m := s.parse.Refused()
	m[ReasonBadFrames] = s.badFrames.Load()
	m[ReasonBadTopic] = s.badTopic.Load()
	return m
}

// Ignored counts the messages of topics without attack events (survey).
func (s *Stats) Ignored() uint64 { return s.parse.Ignored() }

// Ingest is the PULL socket and its loop.
type Ingest struct {
	cfg     Config
	sock    *zmtp.Socket
	handler ingest.Handler
	log     *slog.Logger
	logs    lograte.Limiter
	stats   Stats
	addrs   []net.Addr
}

// New binds the socket; h receives the events of each message. It may
// block: the socket then stops reading, and probes wait (PUSH
// back-pressure).
func New(cfg Config, h ingest.Handler) (*Ingest, error) {
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	budget := func(v, def int) int {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0 // zmtp: no limit
		}
		return v
	}
	if cfg.Probes == nil {
		return nil, errors.New("zmqpull: Probes is required")
	}
	in := &Ingest{cfg: cfg, handler: h, log: cfg.Logger}
	sock, err := zmtp.NewSocket(zmtp.PULL, zmtp.Options{Curve: cfg.Curve, MaxMessageSize: cfg.MaxMessageSize, RecvQueueLen: 10_000,
		MaxPeers: budget(cfg.MaxProbes, DefaultMaxProbes), MaxHandshakes: budget(cfg.MaxHandshakes, DefaultMaxHandshakes),
		OnEvent: in.onEvent})
	if err != nil {
		return nil, err
	}
	in.sock = sock
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

// SocketStats returns the counters of the PULL socket: the connections it
// closed (framing errors, oversized messages, failed handshakes) by reason.
func (in *Ingest) SocketStats() zmtp.Stats { return in.sock.Stats() }

// onEvent logs the connections of probes. A disconnection other than by
// the probe itself or at shutdown is a refusal of what it sent (a framing
// error, an oversized message) and is logged like the other refusals; the
// error's text is never logged, since it may quote the peer.
func (in *Ingest) onEvent(e zmtp.Event) {
	reason, remote := slog.String("reason", string(e.Reason)), slog.String("remote", e.Remote)
	switch e.Type {
	case zmtp.EventConnected:
		in.log.Debug("ingest: probe connected", "remote", e.Remote)
	case zmtp.EventRefused:
		in.logs.Log(in.log, slog.LevelWarn, "refused:"+string(e.Reason), "ingest: probe connection refused at a limit", reason, remote)
	case zmtp.EventHandshakeFailed:
		in.logs.Log(in.log, slog.LevelWarn, "handshake:"+string(e.Reason), "ingest: probe handshake failed", reason, remote)
	case zmtp.EventDisconnected:
		switch e.Reason {
		case zmtp.ReasonClosedByPeer, zmtp.ReasonSocketClosed:
			in.log.Debug("ingest: probe disconnected", "reason", string(e.Reason), "remote", e.Remote)
		default:
			in.logs.Log(in.log, slog.LevelWarn, "disconnect:"+string(e.Reason), "ingest: probe disconnected", reason, remote)
		}
	}
}

// refuse logs a refused message: its reason (the first of attrs) and safe
// metadata only, once per interval and reason.
func (in *Ingest) refuse(r string, from zmtp.From, attrs ...slog.Attr) {
	in.logs.Log(in.log, slog.LevelWarn, r, "ingest: refused", append(attrs, slog.String("remote", from.Remote))...)
}

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
			in.log.Debug("ingest: welcome", "topic_len", len(m[0]), "remote", from.Remote)
			continue
		case 2:
		default:
			in.stats.badFrames.Add(1)
			in.refuse(ReasonBadFrames, from, slog.String("reason", ReasonBadFrames), slog.Int("frames", len(m)))
			continue
		}
		topic := string(m[0])
		if !strings.HasPrefix(topic, TopicPrefix) || len(topic) == len(TopicPrefix) || len(topic) > MaxTopic {
			in.stats.badTopic.Add(1)
			in.refuse(ReasonBadTopic, from, slog.String("reason", ReasonBadTopic), slog.Int("topic_len", len(topic)))
			continue
		}
		name := probeName(from)
		id, ok := ids[name]
		if !ok {
			id = in.cfg.Probes.ID(events.Probe{Name: name})
			ids[name] = id
		}
		buf, errs := probe.Parse(buf[:0], topic[len(TopicPrefix):], m[1], probe.Meta{Received: time.Now().UnixNano(), Probe: id, Source: events.FromZMQ})
		in.count(errs, from, len(m[1]))
		if len(buf) > 0 {
			in.stats.Events.Add(uint64(len(buf)))
			out := make([]events.Event, len(buf))
			copy(out, buf)
			in.handler(out)
		}
	}
}

// count counts the parser's refusals and logs them without their text,
// which may quote the payload (probe.EntryError.LogAttrs).
func (in *Ingest) count(errs []*probe.EntryError, from zmtp.From, size int) {
	for _, e := range errs {
		r := in.stats.parse.Add(e)
		if r == probe.ReasonIgnored {
			continue
		}
		in.refuse(r, from, append(e.LogAttrs(), slog.Int("payload_len", size))...)
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
