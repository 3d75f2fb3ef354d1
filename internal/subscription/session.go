package subscription

import (
	"context"
	"errors"
	"net/netip"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/zmtp"
)

// Handler is what a Session feeds. Its methods are called from Run's
// goroutine, one at a time, so a handler needs no locking of its own for
// them.
type Handler interface {
	// List makes the user's state equal to a dynfw/list the serial rules
	// accepted (the first, or a resynchronisation). An error leaves the
	// session resynchronising: the next list is tried again.
	List(l *List) error
	// Delta applies a dynfw/delta, in serial order. ok is false for a
	// delta whose address was unusable: it only advances the serial.
	Delta(d dynfw.Delta, ok bool)
	// Event hands over a dynfw/event (with Options.Events). An event
	// whose address was unusable comes with the zero Addr.
	Event(e dynfw.Event)
	// Note reports what is worth a log line or a metric.
	Note(n Note)
	// Tick is called every Options.Tick, after the serial rules' timers.
	Tick(now time.Time)
	// State is called after every input (message, connection event, tick,
	// posted function) with the state then; it is often unchanged.
	State(s State)
}

// Kind says what a Note is about.
type Kind int

// Kinds of Note.
const (
	// Connected: a connection is up (the first, or again). Deltas may have
	// been missed: the state is verified against the next list.
	Connected Kind = iota
	// Disconnected: the connection went down (Err); the transport
	// reconnects by itself.
	Disconnected
	// Message: a message arrived (before it is handled).
	Message
	// Malformed: a message that could not be decoded was dropped (Topic,
	// Err; a *FramesError for a message of other than two frames).
	Malformed
	// BadAddress: a delta (Serial) or event whose address is unusable
	// (Topic, Err); a delta still advances the serial.
	BadAddress
	// Resync: the state is being resynchronised from a list (Detail: why).
	Resync
	// Duplicate: a delta already applied was ignored.
	Duplicate
	// OutOfOrder: a delta ahead of the next serial is held back until the
	// gap fills.
	OutOfOrder
	// StaleList: a list older than the applied deltas was ignored.
	StaleList
	// NoList: no list came in time (Detail: what happens now).
	NoList
	// Verified: a list confirmed the state after a reconnection or
	// periodically.
	Verified
)

var kindNames = [...]string{"connected", "disconnected", "message", "malformed", "bad-address",
	"resync", "duplicate", "out-of-order", "stale-list", "no-list", "verified"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind " + strconv.Itoa(int(k))
}

// machineNotes maps the Machine's notes to kinds.
var machineNotes = map[string]Kind{"resync": Resync, "duplicate": Duplicate, "out-of-order": OutOfOrder,
	"stale-list": StaleList, "no-list": NoList, "verified": Verified}

// Note is something that happened, for logs and metrics.
type Note struct {
	Kind   Kind
	Topic  string // Malformed, BadAddress: the message's topic
	Detail string // Resync: the reason; NoList: what happens now
	Serial uint64 // BadAddress of a delta: its serial
	Err    error  // Malformed, BadAddress, Disconnected
}

// FramesError is the Err of a Malformed note for a message that does not
// have the two frames (topic, payload) of every DynFW message.
type FramesError struct{ Frames int }

func (e *FramesError) Error() string {
	return strconv.Itoa(e.Frames) + " frames: DynFW messages have two frames"
}

// State is where a session stands.
type State struct {
	// Connected: a connection is up.
	Connected bool
	// Phase of the serial rules.
	Phase Phase
	// Listed: a list has been applied; Version and Serial are those of
	// the state applied.
	Listed          bool
	Version, Serial uint64
}

// List is a dynfw/list the serial rules accepted: its header (Addrs is nil)
// and its payload, validated, whose entries Each decodes again. A list is
// valid only during Handler.List.
type List struct {
	dynfw.List
	// Count4 and Count6 count its entries: single IPv4 addresses, and the
	// others (IPv6, prefixes); for sizing the user's maps.
	Count4, Count6 int
	// Received is when the message arrived.
	Received time.Time
	payload  []byte
}

// Each calls f for every valid entry, in order.
func (l *List) Each(f func(netip.Prefix)) error {
	if l.payload == nil {
		return errReleased
	}
	_, err := dynfw.DecodeListFunc(l.payload, decodeOptions, f)
	return err
}

// Addrs returns the valid entries.
func (l *List) Addrs() ([]netip.Prefix, error) {
	if l.payload == nil {
		return nil, errReleased
	}
	full, err := dynfw.DecodeList(l.payload, decodeOptions)
	return full.Addrs, err
}

// Payload returns the message's payload as received (nil after Release).
func (l *List) Payload() []byte { return l.payload }

// Size is the payload's length.
func (l *List) Size() int { return len(l.payload) }

// Release drops the list's reference to its payload, so that a large one
// can be collected while the handler still works (Each fails after it).
// The session keeps no other reference during Handler.List.
func (l *List) Release() { l.payload = nil }

var errReleased = errors.New("subscription: the list's payload was released")

// decodeOptions accepts prefixes: lists and deltas may hold them.
var decodeOptions = dynfw.DecodeOptions{AllowPrefix: true}

// Options tune a Session.
type Options struct {
	// Machine tunes the serial rules.
	Machine MachineConfig
	// Tick is how often the serial rules' timers are checked and
	// Handler.Tick is called. Default 50 ms.
	Tick time.Duration
	// Events subscribes to dynfw/event too and hands them to
	// Handler.Event.
	Events bool
	// Queue is how many received messages wait between the receiving
	// goroutine and the handler. Default 64.
	Queue int
	// TrimAfter, when positive, returns freed memory to the system after
	// a message at least this large (in payload bytes) has been handled: a
	// large list leaves tens of megabytes of garbage, which a router
	// should not keep at its peak until the scavenger gets to it.
	TrimAfter int
}

// Session drives a Handler from a Conn: it receives the messages, decodes
// them, applies the serial rules (Machine) and calls the handler. Create it
// with NewSession and call Run once.
type Session struct {
	conn   *Conn
	h      Handler
	opts   Options
	m      *Machine
	posted chan func()

	list      *List // the list being offered to the machine
	connected bool
	stop      bool
}

// NewSession returns a session feeding h from conn; nothing happens until
// Run.
func NewSession(conn *Conn, h Handler, opts Options) *Session {
	if opts.Tick <= 0 {
		opts.Tick = 50 * time.Millisecond
	}
	if opts.Queue <= 0 {
		opts.Queue = 64
	}
	s := &Session{conn: conn, h: h, opts: opts, posted: make(chan func(), 16)}
	s.m = NewMachine(opts.Machine, effects{s})
	return s
}

// Stop makes Run return after the input being handled; call it from a
// Handler method (for example after the first list, for a one-shot run).
func (s *Session) Stop() { s.stop = true }

// Post runs f on Run's goroutine between two inputs: for the result of work
// a handler started on another goroutine (a DNS lookup). It blocks while 16
// functions are waiting.
func (s *Session) Post(f func()) { s.posted <- f }

// State returns where the session stands; call it from a Handler method.
func (s *Session) State() State {
	v, n, have := s.m.State()
	return State{Connected: s.connected, Phase: s.m.Phase(), Listed: have, Version: v, Serial: n}
}

// Run subscribes (deltas and lists, and events with Options.Events) and
// feeds the handler until ctx ends (it then returns nil), Stop is called
// (nil), or the connection's socket is closed (its error). The transport
// reconnects by itself meanwhile: the handler's state stays as it was, and
// is verified against the next list once connected again.
func (s *Session) Run(ctx context.Context) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan zmtp.Message, s.opts.Queue)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := s.conn.Recv(rctx)
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
	tick := time.NewTicker(s.opts.Tick)
	defer tick.Stop()
	s.connected = s.conn.Connected()
	if s.opts.Events {
		effects{s}.Subscribe(dynfw.TopicEvent)
	}
	s.m.Start(time.Now())
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-recvErr:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case e := <-s.conn.events:
			switch e.Type {
			case zmtp.EventConnected:
				s.connected = true
				s.h.Note(Note{Kind: Connected})
				s.m.Reconnected(time.Now())
			case zmtp.EventDisconnected:
				s.connected = false
				s.h.Note(Note{Kind: Disconnected, Err: e.Err})
			}
		case m := <-msgs:
			big := s.opts.TrimAfter > 0 && len(m) == 2 && len(m[1]) >= s.opts.TrimAfter
			s.handle(time.Now(), m)
			if big {
				m = nil
				debug.FreeOSMemory()
			}
		case f := <-s.posted:
			f()
		case now := <-tick.C:
			s.m.Tick(now)
			s.h.Tick(now)
		}
		if s.stop {
			return nil
		}
		s.h.State(s.State())
	}
}

// handle decodes a message and hands it to the serial rules (lists and
// deltas) or the handler (events). It must not use m after offering a list:
// the handler may release the payload to have it collected.
func (s *Session) handle(now time.Time, m zmtp.Message) {
	s.h.Note(Note{Kind: Message})
	if len(m) != 2 {
		s.h.Note(Note{Kind: Malformed, Err: &FramesError{len(m)}})
		return
	}
	var ae *dynfw.AddrError
	switch topic := string(m[0]); topic {
	case dynfw.TopicList:
		// A first pass validates the whole list before anything changes,
		// and counts it so the handler can size its maps.
		l := &List{Received: now}
		head, err := dynfw.DecodeListFunc(m[1], decodeOptions, func(p netip.Prefix) {
			if p.Bits() == 32 && p.Addr().Is4() {
				l.Count4++
			} else {
				l.Count6++
			}
		})
		if err != nil {
			s.h.Note(Note{Kind: Malformed, Topic: topic, Err: err})
			return
		}
		l.List, l.payload = head, m[1]
		s.list = l
		s.m.OnList(now, &l.List)
		s.list = nil
	case dynfw.TopicDelta:
		d, err := dynfw.DecodeDelta(m[1], decodeOptions)
		switch {
		case err == nil:
			s.m.OnDelta(now, d, true)
		case errors.As(err, &ae):
			s.h.Note(Note{Kind: BadAddress, Topic: topic, Serial: d.Serial, Err: err})
			s.m.OnDelta(now, d, false)
		default:
			s.h.Note(Note{Kind: Malformed, Topic: topic, Err: err})
		}
	case dynfw.TopicEvent:
		if !s.opts.Events {
			return
		}
		e, err := dynfw.DecodeEvent(m[1], decodeOptions)
		switch {
		case err == nil:
		case errors.As(err, &ae):
			s.h.Note(Note{Kind: BadAddress, Topic: topic, Err: err})
			e.Addr = netip.Addr{}
		default:
			s.h.Note(Note{Kind: Malformed, Topic: topic, Err: err})
			return
		}
		s.h.Event(e)
	}
}

// effects carries the Machine's requests to the connection and the handler.
type effects struct{ s *Session }

func (fx effects) Subscribe(topic string) {
	if err := fx.s.conn.Subscribe(topic); err != nil {
		fx.s.conn.log.Error("subscribe", "topic", topic, "err", err)
	}
}

func (fx effects) Unsubscribe(topic string) {
	if err := fx.s.conn.Unsubscribe(topic); err != nil {
		fx.s.conn.log.Error("unsubscribe", "topic", topic, "err", err)
	}
}

func (fx effects) ApplyList(l *dynfw.List) error {
	cur := fx.s.list
	if cur == nil || &cur.List != l {
		return errors.New("subscription: no list payload")
	}
	return fx.s.h.List(cur)
}

func (fx effects) ApplyDelta(d dynfw.Delta, ok bool) { fx.s.h.Delta(d, ok) }

func (fx effects) Note(what, detail string) {
	k, ok := machineNotes[what]
	if !ok { // the Machine makes no other notes
		fx.s.conn.log.Warn(what, "detail", detail)
		return
	}
	fx.s.h.Note(Note{Kind: k, Detail: detail})
}
