// Package publish is the DynFW publisher: a PUB socket (CURVE server by
// default) that sends dynfw/list on a timer, dynfw/delta the moment an
// address enters or leaves the list, and dynfw/event for every event the
// server ingests, byte-compatible with the Turris server.
//
// Deltas and lists pass through one goroutine, which owns the published set
// and the serial: every delta increments the serial, and a list always holds
// exactly the set after the delta whose serial it carries, so a client that
// loads a list and then applies the following deltas converges. Events do not
// need that ordering and are sent straight from the caller.
//
// Deltas are the socket's updates and lists its resync points
// (zmtp.Socket.SendUpdate and SendResync): a subscriber whose queue refused
// a delta gets no delta after the gap, which it would have to discard
// anyway, but the next list in place of whatever is still queued for it, and
// the deltas after that list. Events are not state: a lagging subscriber
// still gets them while its queue has room.
//
// Every subscriber has a budget (Config): a send queue, a write timeout that
// cuts off one that accepts no data, heartbeats, and limits on subscribers
// and on CURVE handshakes in progress. Refusals, failed handshakes and
// disconnections are counted by reason in the socket's Stats and logged once
// per interval and reason, with the remote address only.
package publish

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/lograte"
	"github.com/dynfw/sentinel/zmtp"
)

// Defaults of Config.
const (
	// DefaultWriteTimeout cuts off a subscriber that accepts no data for
	// a minute: twice the heartbeat interval, far beyond a congested
	// link's stalls (a list keeps flowing to a slow router as long as
	// it makes progress), and short enough that a stalled subscriber's
	// goroutines and queue are not held for long.
	DefaultWriteTimeout = time.Minute
	// DefaultMaxSubscribers bounds the connections: each ready subscriber
	// costs about 150 KiB (two 64 KiB buffers and three goroutines;
	// zmtp's BenchmarkPeerMemory), so the default bounds that memory near
	// 1.5 GiB.
	DefaultMaxSubscribers = 10_000
	// DefaultMaxHandshakes bounds the CURVE handshakes in progress: a
	// handshake takes two round trips and about half a millisecond of
	// CPU on the server (zmtp's BenchmarkCurveHandshake), so 256 at once
	// admit as many clients as the CPU can after a restart (the others
	// retry with backoff), while half-open connections can hold at most
	// 256 goroutines and their buffers (about 35 MiB).
	DefaultMaxHandshakes = 256
)

// Config configures a Publisher.
type Config struct {
	// Listen are the endpoints of the PUB socket (default tcp://*:7087).
	Listen []string
	// Curve is the server's key pair; nil publishes without encryption
	// (only for tests and local setups).
	Curve *zmtp.CurveOptions
	// ListInterval is how often the whole list is sent (default 10 s).
	ListInterval time.Duration
	// Heartbeat pings subscribers and drops silent ones (default 30 s).
	Heartbeat time.Duration
	// SendQueueLen bounds each subscriber's queue (default 10,000
	// messages): a slow subscriber misses deltas and gets the next list
	// instead.
	SendQueueLen int
	// WriteTimeout cuts off a subscriber that accepts no data for this
	// long (default DefaultWriteTimeout; negative disables it).
	WriteTimeout time.Duration
	// MaxSubscribers bounds the connections, ready or in their handshake
	// (default DefaultMaxSubscribers; negative: no limit).
	MaxSubscribers int
	// MaxHandshakes bounds the handshakes in progress (default
	// DefaultMaxHandshakes; negative: no limit).
	MaxHandshakes int
	Logger        *slog.Logger
}

// setDefaults fills in the zero fields of cfg.
func (cfg *Config) setDefaults() {
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{"tcp://*:7087"}
	}
	if cfg.ListInterval <= 0 {
		cfg.ListInterval = 10 * time.Second
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 30 * time.Second
	}
	if cfg.SendQueueLen <= 0 {
		cfg.SendQueueLen = 10_000
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxSubscribers == 0 {
		cfg.MaxSubscribers = DefaultMaxSubscribers
	}
	if cfg.MaxHandshakes == 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
}

// positive maps the "negative disables" of Config to zmtp's "0 disables".
func positive[T int | time.Duration](v T) T { return max(v, 0) }

// State is what survives a restart: the list with its version and serial.
type State struct {
	Version, Serial uint64
	List            []netip.Prefix
}

type op struct {
	add  bool
	key  netip.Prefix
	ts   int64
	sync chan struct{} // flush marker
}

// Publisher publishes a DynFW list. Delta, Event and Sync are safe for
// concurrent use.
type Publisher struct {
	cfg  Config
	sock *zmtp.Socket
	log  *slog.Logger

	ops  chan op
	done chan struct{}

	// Owned by the run goroutine, read under mu by State.
	mu      sync.Mutex
	version uint64
	serial  uint64
	set     map[netip.Prefix]struct{}

	addrs        []net.Addr
	sorted       []netip.Prefix // the list as last sent, reused while the serial stays
	sortedSerial uint64
	sortedOK     bool
	touched      map[netip.Prefix]struct{} // keys changed since sorted (run goroutine)
	published    atomic.Pointer[Published]

	deltas, events, lists atomic.Uint64
	lastListBytes         atomic.Int64
	evbuf                 sync.Pool
	logs                  lograte.Limiter
}

// onEvent logs what happens to subscribers: the reason and the remote
// address, never an error's text (it may quote what the peer sent), and
// each reason at most once per interval, since a peer can repeat a fault
// at will. Every event is counted by the socket.
func (p *Publisher) onEvent(e zmtp.Event) {
	reason, remote := slog.String("reason", string(e.Reason)), slog.String("remote", e.Remote)
	switch e.Type {
	case zmtp.EventRefused:
		p.logs.Log(p.log, slog.LevelWarn, "refused:"+string(e.Reason), "dynfw subscriber refused at a limit", reason, remote,
			slog.Int("max_subscribers", p.cfg.MaxSubscribers), slog.Int("max_handshakes", p.cfg.MaxHandshakes))
	case zmtp.EventHandshakeFailed:
		p.logs.Log(p.log, slog.LevelInfo, "handshake:"+string(e.Reason), "dynfw subscriber handshake failed", reason, remote)
	case zmtp.EventDisconnected:
		switch e.Reason {
		case zmtp.ReasonClosedByPeer, zmtp.ReasonSocketClosed:
			p.log.Debug("dynfw subscriber disconnected", "reason", string(e.Reason), "remote", e.Remote)
		default:
			p.logs.Log(p.log, slog.LevelWarn, "disconnect:"+string(e.Reason), "dynfw subscriber cut off", reason, remote)
		}
	}
}

// New creates the socket, binds it and restores state. It does not publish
// until Run.
func New(cfg Config, st State) (*Publisher, error) {
	cfg.setDefaults()
	p := &Publisher{cfg: cfg, log: cfg.Logger, ops: make(chan op, 65536), done: make(chan struct{}),
		version: st.Version, serial: st.Serial, set: make(map[netip.Prefix]struct{}, len(st.List))}
	p.evbuf.New = func() any { b := make([]byte, 0, 64); return &b }
	for _, k := range st.List {
		p.set[k] = struct{}{}
	}
	p.touched = make(map[netip.Prefix]struct{})
	p.published.Store(&Published{Version: p.version, Serial: p.serial, List: p.sortedList(), At: time.Now()})
	sock, err := zmtp.NewSocket(zmtp.PUB, zmtp.Options{
		Curve:             cfg.Curve,
		HeartbeatInterval: cfg.Heartbeat,
		HeartbeatTimeout:  cfg.Heartbeat / 2,
		SendQueueLen:      cfg.SendQueueLen,
		// Subscribers send subscriptions only, to a few short topics.
		MaxMessageSize:   4 << 10,
		MaxSubscriptions: 64,
		WriteTimeout:     positive(cfg.WriteTimeout),
		MaxPeers:         positive(cfg.MaxSubscribers),
		MaxHandshakes:    positive(cfg.MaxHandshakes),
		OnEvent:          p.onEvent,
	})
	if err != nil {
		return nil, err
	}
	for _, ep := range cfg.Listen {
		addr, err := sock.Listen(ep)
		if err != nil {
			sock.Close()
			return nil, err
		}
		cfg.Logger.Info("dynfw publisher listening", "endpoint", ep, "addr", addr.String())
		p.addrs = append(p.addrs, addr)
	}
	p.sock = sock
	return p, nil
}

// Addrs returns the bound addresses (useful with port 0).
func (p *Publisher) Addrs() []net.Addr { return p.addrs }

// Socket returns the PUB socket, for statistics.
func (p *Publisher) Socket() *zmtp.Socket { return p.sock }

// Delta queues a change of the list: add or remove key. It is published
// with the next serial, in the order of the calls.
func (p *Publisher) Delta(add bool, key netip.Prefix, ts time.Time) {
	p.ops <- op{add: add, key: key, ts: ts.Unix()}
}

// Sync waits until every Delta queued before it has been published.
func (p *Publisher) Sync(ctx context.Context) error {
	c := make(chan struct{})
	select {
	case p.ops <- op{sync: c}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		return errors.New("publish: stopped")
	}
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		return errors.New("publish: stopped")
	}
}

// Event publishes a dynfw/event now.
func (p *Publisher) Event(t events.Type, addr netip.Addr, ts time.Time) {
	bp := p.evbuf.Get().(*[]byte)
	ev := dynfw.Event{Name: t.String(), Addr: addr, TS: uint64(ts.Unix())}
	payload := ev.AppendMsgpack((*bp)[:0])
	// The socket keeps the message until every subscriber's writer has
	// sent it, so it gets its own copy; the buffer goes back to the pool.
	msg := zmtp.Message{topicEvent, append([]byte(nil), payload...)}
	*bp = payload
	p.evbuf.Put(bp)
	p.sock.Send(context.Background(), msg)
	p.events.Add(1)
}

var (
	topicEvent = []byte(dynfw.TopicEvent)
	topicDelta = []byte(dynfw.TopicDelta)
	topicList  = []byte(dynfw.TopicList)
)

// State returns the current version, serial and list (with the deltas
// published since the last list), sorted. It copies the set under the lock
// that the delta path takes, and sorts outside it; the list API reads
// Published instead.
func (p *Publisher) State() State {
	p.mu.Lock()
	st := State{Version: p.version, Serial: p.serial, List: make([]netip.Prefix, 0, len(p.set))}
	for k := range p.set {
		st.List = append(st.List, k)
	}
	p.mu.Unlock()
	slices.SortFunc(st.List, ComparePrefix)
	return st
}

// Stats are the publisher's counters.
type Stats struct {
	Version, Serial       uint64
	Listed                int
	Deltas, Events, Lists uint64
	LastListBytes         int64
	Subscribers           int
	SendDropped           uint64
}

// Stats returns counters for metrics.
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	v, s, n := p.version, p.serial, len(p.set)
	p.mu.Unlock()
	ss := p.sock.Stats()
	return Stats{Version: v, Serial: s, Listed: n, Deltas: p.deltas.Load(), Events: p.events.Load(), Lists: p.lists.Load(),
		LastListBytes: p.lastListBytes.Load(), Subscribers: ss.Peers, SendDropped: ss.Dropped}
}

// Run publishes until ctx ends: a list at once and every ListInterval,
// and queued deltas as they come. When ctx ends it publishes what is still
// queued and returns.
func (p *Publisher) Run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.cfg.ListInterval)
	defer t.Stop()
	p.sendList()
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case o := <-p.ops:
					p.apply(o)
				default:
					return
				}
			}
		case o := <-p.ops:
			p.apply(o)
		case <-t.C:
			p.sendList()
		}
	}
}

func (p *Publisher) apply(o op) {
	if o.sync != nil {
		close(o.sync)
		return
	}
	p.mu.Lock()
	_, present := p.set[o.key]
	if present == o.add {
		p.mu.Unlock() // nothing changes: no serial is spent
		return
	}
	if o.add {
		p.set[o.key] = struct{}{}
	} else {
		delete(p.set, o.key)
	}
	p.touched[o.key] = struct{}{}
	p.serial++
	d := dynfw.Delta{Serial: p.serial, Op: dynfw.Negative, Addr: o.key, TS: uint64(o.ts)}
	p.mu.Unlock()
	if o.add {
		d.Op = dynfw.Positive
	}
	p.sock.SendUpdate(zmtp.Message{topicDelta, d.Marshal()})
	p.deltas.Add(1)
}

func (p *Publisher) sendList() {
	// The run goroutine is the only writer of the set, the version and
	// the serial: it reads them without the lock.
	version, serial := p.version, p.serial
	sorted := p.sortedList()
	now := time.Now()
	l := dynfw.List{Version: version, Serial: serial, Addrs: sorted, TS: uint64(now.Unix())}
	payload := l.Marshal()
	p.sock.SendResync(zmtp.Message{topicList, payload})
	p.lists.Add(1)
	p.lastListBytes.Store(int64(len(payload)))
	p.published.Store(&Published{Version: version, Serial: serial, List: sorted, At: now})
}

// SendListNow publishes the list immediately, outside the timer (for
// benchmarks and tools). It must not run concurrently with Run's own
// list.
func (p *Publisher) SendListNow() { p.sendList() }

// Close stops the socket (after Run has returned), letting queued messages
// go out for a moment.
func (p *Publisher) Close() error { return p.sock.Close() }
