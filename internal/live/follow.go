package live

import (
	"context"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/subscription"
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
	// Machine tunes the serial rules (subscription.MachineConfig defaults).
	Machine subscription.MachineConfig
	// Tick is how often the state machine checks its timers (default
	// 100 ms).
	Tick time.Duration
}

// Follow subscribes to a DynFW publisher and applies what it sends to the
// hub until ctx ends (it then returns nil) or the socket fails. A
// subscription.Session applies the router client's serial rules: the list
// is loaded, deltas are applied in serial order, and a gap, a reset or a new
// version resynchronises from the next list. Events are applied as they
// come. The transport reconnects by itself; the page shows the hub as
// disconnected meanwhile. Run one Follow per hub.
func (h *Hub) Follow(ctx context.Context, cfg FollowConfig) error {
	if cfg.Tick <= 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	conn, err := subscription.Dial(subscription.Config{
		Endpoint:  cfg.Endpoint,
		ServerKey: cfg.ServerKey,
		PublicKey: cfg.PublicKey, SecretKey: cfg.SecretKey,
		Heartbeat: cfg.Heartbeat, HeartbeatTimeout: cfg.HeartbeatTimeout,
		MaxMessageSize: cfg.MaxMessageSize,
		// Events come by the thousand per second at peaks; the default
		// 1000 would drop them during a list decode.
		RecvQueueLen:         16384,
		ReconnectIntervalMax: 30 * time.Second,
		Logger:               h.log,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	f := &follower{h: h}
	defer func() { h.SetState(StateDisconnected, f.resyncs) }()
	h.log.Info("live: following DynFW", "endpoint", cfg.Endpoint, "curve", cfg.ServerKey != nil)
	return subscription.NewSession(conn, f, subscription.Options{
		Machine: cfg.Machine, Tick: cfg.Tick, Events: true, Queue: 256,
	}).Run(ctx)
}

// follower applies a subscription to a hub; it implements
// subscription.Handler.
type follower struct {
	h       *Hub
	resyncs uint64
	// untouched: a message arrived that has not yet reached the hub (a
	// list the serial rules did not need, a buffered delta, a malformed
	// message); the hub records its arrival in State.
	untouched bool
}

// State implements subscription.Handler: the state the page shows.
func (f *follower) State(s subscription.State) {
	if f.untouched {
		f.untouched = false
		f.h.touch()
	}
	state := StateConnected
	switch {
	case !s.Connected:
		state = StateDisconnected
	case !s.Listed || s.Phase == subscription.Resyncing:
		state = StateSyncing
	}
	f.h.SetState(state, f.resyncs)
}

// List implements subscription.Handler.
func (f *follower) List(l *subscription.List) error {
	addrs, err := l.Addrs()
	if err != nil {
		return err
	}
	f.untouched = false
	f.h.ApplyList(l.Version, l.Serial, addrs)
	return nil
}

// Delta implements subscription.Handler.
func (f *follower) Delta(d dynfw.Delta, ok bool) {
	f.untouched = false
	if ok {
		f.h.ApplyDelta(d)
	} else {
		f.h.advanceSerial(d.Serial)
	}
}

// Event implements subscription.Handler.
func (f *follower) Event(e dynfw.Event) {
	f.untouched = false
	f.h.ApplyEvent(e)
}

// Tick implements subscription.Handler; the hub has its own timers.
func (f *follower) Tick(time.Time) {}

// Note implements subscription.Handler.
func (f *follower) Note(n subscription.Note) {
	switch n.Kind {
	case subscription.Message:
		f.untouched = true
	case subscription.Malformed:
		switch n.Topic {
		case dynfw.TopicList, dynfw.TopicDelta:
			f.h.log.Warn("live: ignoring malformed "+n.Topic[len("dynfw/"):], "err", n.Err)
		case dynfw.TopicEvent:
			f.h.log.Debug("live: ignoring malformed event", "err", n.Err)
		}
	case subscription.Resync:
		f.resyncs++
		f.h.log.Info("live: resynchronising", "reason", n.Detail)
	case subscription.Duplicate, subscription.OutOfOrder, subscription.Verified:
		f.h.log.Debug("live: "+n.Kind.String(), "detail", n.Detail)
	case subscription.StaleList, subscription.NoList:
		f.h.log.Info("live: "+n.Kind.String(), "detail", n.Detail)
	}
}
