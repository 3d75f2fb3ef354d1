package live

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/client"
	"github.com/dynfw/sentinel/zmtp"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

// LoadServerKey reads a publisher's public certificate (a zcert file such as
// the Turris dynfw.pub) for FollowConfig.ServerKey.
func LoadServerKey(path string) (*[32]byte, error) {
	c, err := zcert.Load(path)
	if err != nil {
		return nil, err
	}
	k := [32]byte(c.Public)
	return &k, nil
}

// FollowConfig says which DynFW publisher a Hub follows.
type FollowConfig struct {
	// Endpoint of the publisher, e.g. tcp://127.0.0.1:7087 for the local
	// server or tcp://sentinel.turris.cz:7087.
	Endpoint string
	// ServerKey is the publisher's CURVE public key (for the Turris server,
	// the key in dynfw.pub: zcert.Load(path) then .Public). Nil connects
	// without encryption (NULL), for a publisher configured that way.
	ServerKey *[32]byte
	// PublicKey and SecretKey are our key pair; zero makes a fresh one.
	PublicKey, SecretKey [32]byte
	// Heartbeat and HeartbeatTimeout detect a dead connection (defaults
	// 30 s and 15 s, as the router client).
	Heartbeat, HeartbeatTimeout time.Duration
	// MaxMessageSize bounds a message (default 64 MiB).
	MaxMessageSize int64
	// Machine tunes the serial rules (client.MachineConfig defaults).
	Machine client.MachineConfig
	// Tick is how often the state machine checks its timers (default
	// 100 ms).
	Tick time.Duration
}

// decodeOptions accepts prefixes: the list may hold them, and the page shows
// them as they are.
var decodeOptions = dynfw.DecodeOptions{AllowPrefix: true}

// Follow subscribes to a DynFW publisher and applies what it sends to the
// hub until ctx ends (it then returns nil) or the socket fails. The list and
// deltas go through client.Machine, the router client's serial rules: the
// list is loaded, deltas are applied in serial order, and a gap, a reset or
// a new version resynchronises from the next list. Events are applied as
// they come. The transport reconnects by itself; the page shows the hub as
// disconnected meanwhile. Run one Follow per hub.
func (h *Hub) Follow(ctx context.Context, cfg FollowConfig) error {
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 30 * time.Second
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = 15 * time.Second
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	events := make(chan zmtp.Event, 16)
	opts := zmtp.Options{
		MaxMessageSize:    cfg.MaxMessageSize,
		HeartbeatInterval: cfg.Heartbeat,
		HeartbeatTimeout:  cfg.HeartbeatTimeout,
		HeartbeatTTL:      3 * cfg.Heartbeat,
		// Events come by the thousand per second at peaks; the default
		// 1000 would drop them during a list decode.
		RecvQueueLen:         16384,
		ReconnectInterval:    250 * time.Millisecond,
		ReconnectIntervalMax: 30 * time.Second,
		OnEvent: func(e zmtp.Event) {
			select {
			case events <- e:
			default: // the next connection event tells the same story
			}
		},
	}
	if cfg.ServerKey != nil {
		opts.Curve = &zmtp.CurveOptions{ServerKey: *cfg.ServerKey, PublicKey: cfg.PublicKey, SecretKey: cfg.SecretKey}
	}
	sock, err := zmtp.NewSocket(zmtp.SUB, opts)
	if err != nil {
		return err
	}
	defer sock.Close()
	f := &follower{h: h, sock: sock}
	f.m = client.NewMachine(cfg.Machine, f)
	if err := sock.Subscribe(dynfw.TopicEvent); err != nil {
		return err
	}
	f.m.Start(time.Now())
	if err := sock.Dial(cfg.Endpoint); err != nil {
		return err
	}
	defer h.SetState(StateDisconnected, f.resyncs)

	msgs := make(chan zmtp.Message, 256)
	recvErr := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			m, err := sock.Recv(rctx)
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-rctx.Done():
				return
			}
		}
	}()
	tick := time.NewTicker(cfg.Tick)
	defer tick.Stop()
	h.log.Info("live: following DynFW", "endpoint", cfg.Endpoint, "curve", cfg.ServerKey != nil)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-recvErr:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case e := <-events:
			switch e.Type {
			case zmtp.EventConnected:
				f.connected = true
				f.m.Reconnected(time.Now())
			case zmtp.EventDisconnected:
				f.connected = false
				h.log.Warn("live: DynFW connection lost", "endpoint", cfg.Endpoint, "err", e.Err)
			case zmtp.EventHandshakeFailed:
				h.log.Warn("live: DynFW handshake failed", "endpoint", cfg.Endpoint, "err", e.Err)
			}
		case m := <-msgs:
			f.handle(time.Now(), m)
		case now := <-tick.C:
			f.m.Tick(now)
		}
		f.updateState()
	}
}

// follower drives the client state machine for a hub; it implements
// client.Effects.
type follower struct {
	h         *Hub
	sock      *zmtp.Socket
	m         *client.Machine
	list      *dynfw.List // the decoded list being offered to the machine
	connected bool
	resyncs   uint64
}

func (f *follower) updateState() {
	_, _, have := f.m.State()
	state := StateConnected
	switch {
	case !f.connected:
		state = StateDisconnected
	case !have || f.m.Phase() == client.Resyncing:
		state = StateSyncing
	}
	f.h.SetState(state, f.resyncs)
}

func (f *follower) handle(now time.Time, m zmtp.Message) {
	if len(m) != 2 {
		f.h.touch()
		return
	}
	switch string(m[0]) {
	case dynfw.TopicList:
		l, err := dynfw.DecodeList(m[1], decodeOptions)
		if err != nil {
			f.h.log.Warn("live: ignoring malformed list", "err", err)
			f.h.touch()
			return
		}
		f.list = &l
		f.m.OnList(now, &l)
		f.list = nil
		f.h.touch()
	case dynfw.TopicDelta:
		d, err := dynfw.DecodeDelta(m[1], decodeOptions)
		var ae *dynfw.AddrError
		switch {
		case err == nil:
			f.m.OnDelta(now, d, true)
		case errors.As(err, &ae):
			f.m.OnDelta(now, d, false)
		default:
			f.h.log.Warn("live: ignoring malformed delta", "err", err)
		}
		f.h.touch()
	case dynfw.TopicEvent:
		e, err := dynfw.DecodeEvent(m[1], decodeOptions)
		var ae *dynfw.AddrError
		if err != nil && !errors.As(err, &ae) {
			f.h.log.Debug("live: ignoring malformed event", "err", err)
			f.h.touch()
			return
		}
		if err != nil {
			e.Addr = netip.Addr{} // shown without an address
		}
		f.h.ApplyEvent(e)
	default:
		f.h.touch()
	}
}

// Subscribe implements client.Effects.
func (f *follower) Subscribe(topic string) {
	if err := f.sock.Subscribe(topic); err != nil {
		f.h.log.Error("live: subscribe", "topic", topic, "err", err)
	}
}

// Unsubscribe implements client.Effects.
func (f *follower) Unsubscribe(topic string) {
	if err := f.sock.Unsubscribe(topic); err != nil {
		f.h.log.Error("live: unsubscribe", "topic", topic, "err", err)
	}
}

// ApplyList implements client.Effects: the machine accepted the list that
// handle is offering.
func (f *follower) ApplyList(l *dynfw.List) error {
	if f.list == nil {
		return errors.New("live: no list payload")
	}
	f.h.ApplyList(l.Version, l.Serial, f.list.Addrs)
	return nil
}

// ApplyDelta implements client.Effects.
func (f *follower) ApplyDelta(d dynfw.Delta, ok bool) {
	if ok {
		f.h.ApplyDelta(d)
	} else {
		f.h.advanceSerial(d.Serial)
	}
}

// Note implements client.Effects.
func (f *follower) Note(what, detail string) {
	switch what {
	case "resync":
		f.resyncs++
		f.h.log.Info("live: resynchronising", "reason", detail)
	case "duplicate", "out-of-order", "verified":
		f.h.log.Debug("live: "+what, "detail", detail)
	default:
		f.h.log.Info("live: "+what, "detail", detail)
	}
}
