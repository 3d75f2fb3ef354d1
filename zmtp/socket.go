package zmtp

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
)

// Socket is a ZeroMQ socket of one type: it can listen on and dial several
// endpoints at once, and all its connections share its queues and
// subscriptions. All methods are safe for concurrent use.
type Socket struct {
	typ  SocketType
	opts Options

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.RWMutex
	closed    bool
	peers     []*peer
	listeners []net.Listener
	rr        int            // PUSH round robin position
	localSubs map[string]int // SUB: our subscriptions (a multiset, as libzmq)
	topicSubs map[string]int // XPUB: number of peers subscribed to each topic
	subList   atomic.Pointer[[]string]

	in    *queue        // SUB, PULL: received messages; XPUB: subscriptions
	space chan struct{} // PUSH: a peer queue has room again

	// conns counts accepted connections (handshaking or ready),
	// handshaking the handshakes in progress: the limits of Options.
	conns, handshaking atomic.Int64

	stats struct {
		sent, dropped, received, recvDropped atomic.Uint64
		skipped, replaced, lagged            atomic.Uint64
		connects, disconnects, failures      atomic.Uint64
		refused                              atomic.Uint64
		disconnectBy, failureBy, refusedBy   reasonCounters
	}
}

// NewSocket creates a socket of type typ. A CURVE server needs its secret
// key (the public key is derived when left zero); a CURVE client needs the
// server's public key and gets a fresh key pair when its own is zero.
func NewSocket(typ SocketType, opts Options) (*Socket, error) {
	switch typ {
	case PUB, XPUB, SUB, PUSH, PULL:
	default:
		return nil, fmt.Errorf("zmtp: unsupported socket type %v", typ)
	}
	opts.setDefaults()
	if c := opts.Curve; c != nil {
		cc := *c
		var zero [32]byte
		if cc.Server {
			if cc.SecretKey == zero {
				return nil, errors.New("zmtp: a CURVE server needs its secret key")
			}
		} else {
			if cc.ServerKey == zero {
				return nil, errors.New("zmtp: a CURVE client needs the server's public key")
			}
			if cc.SecretKey == zero {
				pub, sec, err := box.GenerateKey(crand.Reader)
				if err != nil {
					return nil, err
				}
				cc.PublicKey, cc.SecretKey = *pub, *sec
			}
		}
		if cc.PublicKey == zero {
			pub, err := curve25519.X25519(cc.SecretKey[:], curve25519.Basepoint)
			if err != nil {
				return nil, fmt.Errorf("zmtp: CURVE secret key: %w", err)
			}
			copy(cc.PublicKey[:], pub)
		}
		opts.Curve = &cc
	}
	s := &Socket{typ: typ, opts: opts, space: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.in = newQueue(opts.RecvQueueLen, opts.RecvQueueBytes)
	s.localSubs = make(map[string]int)
	s.topicSubs = make(map[string]int)
	empty := []string{}
	s.subList.Store(&empty)
	return s, nil
}

// Type returns the socket's type.
func (s *Socket) Type() SocketType { return s.typ }

// PublicKey returns the socket's long-term CURVE public key, or false
// without CURVE.
func (s *Socket) PublicKey() ([32]byte, bool) {
	if s.opts.Curve == nil {
		return [32]byte{}, false
	}
	return s.opts.Curve.PublicKey, true
}

func (s *Socket) emit(e Event) {
	// The reason, not the error: an error's text may quote the peer.
	s.opts.Logger.Debug("zmtp: "+e.Type.String(), "endpoint", e.Endpoint, "remote", e.Remote, "reason", string(e.Reason))
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(e)
	}
}

// Listen binds endpoint ("tcp://*:7087", "tcp://127.0.0.1:0",
// "tcp://[::1]:7087", "ipc:///path") and accepts connections in the
// background. It returns the bound address (useful with port 0).
func (s *Socket) Listen(endpoint string) (net.Addr, error) {
	ep, err := parseEndpoint(endpoint, true)
	if err != nil {
		return nil, err
	}
	if ep.network == "unix" {
		if fi, err := os.Lstat(ep.address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(ep.address) // a stale socket of an earlier run, as libzmq does
		}
	}
	lc := net.ListenConfig{KeepAlive: s.opts.TCPKeepAlive}
	ln, err := lc.Listen(s.ctx, ep.network, ep.address)
	if err != nil {
		return nil, fmt.Errorf("zmtp: listen %s: %w", endpoint, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil, ErrClosed
	}
	s.listeners = append(s.listeners, ln)
	s.wg.Add(1)
	s.mu.Unlock()
	s.emit(Event{Type: EventListening, Endpoint: endpoint, Remote: ln.Addr().String()})
	go s.acceptLoop(ln, endpoint)
	return ln.Addr(), nil
}

func (s *Socket) acceptLoop(ln net.Listener, endpoint string) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.opts.Logger.Warn("zmtp: accept failed", "endpoint", endpoint, "err", err, "retry", delay)
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if err := s.admit(); err != nil {
			// Closed at once, before any byte is read or a buffer
			// allocated: a flood of connections costs a file descriptor
			// for a moment each.
			nc.Close()
			r := ReasonOf(err)
			s.stats.refused.Add(1)
			s.stats.refusedBy.add(r)
			s.emit(Event{Type: EventRefused, Endpoint: endpoint, Remote: remoteOf(nc), Err: err, Reason: r})
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.conns.Add(-1)
			s.emit(Event{Type: EventAccepted, Endpoint: endpoint, Remote: remoteOf(nc)})
			s.serveConn(nc, endpoint)
		}()
	}
}

// admit takes a connection slot and a handshake slot for an accepted
// connection, or says which limit refuses it. The handshake slot is given
// back by serveConn, the connection slot when the connection ends.
func (s *Socket) admit() error {
	if n := s.conns.Add(1); s.opts.MaxPeers > 0 && n > int64(s.opts.MaxPeers) {
		s.conns.Add(-1)
		return ErrPeerLimit
	}
	if n := s.handshaking.Add(1); s.opts.MaxHandshakes > 0 && n > int64(s.opts.MaxHandshakes) {
		s.handshaking.Add(-1)
		s.conns.Add(-1)
		return ErrHandshakeLimit
	}
	return nil
}

// Dial connects to endpoint in the background and keeps reconnecting, with
// exponential backoff and jitter, until the socket is closed. A SUB socket
// re-sends its subscriptions on every new connection. Dial returns an error
// only for a malformed endpoint or a closed socket; connection progress is
// reported through Options.OnEvent.
func (s *Socket) Dial(endpoint string) error {
	ep, err := parseEndpoint(endpoint, false)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.wg.Add(1)
	go s.dialLoop(ep)
	return nil
}

func (s *Socket) dialLoop(ep endpoint) {
	defer s.wg.Done()
	backoff := s.opts.ReconnectInterval
	d := net.Dialer{Timeout: s.opts.DialTimeout, KeepAlive: s.opts.TCPKeepAlive}
	for {
		nc, err := d.DialContext(s.ctx, ep.network, ep.address)
		var wait time.Duration
		if err == nil {
			s.handshaking.Add(1) // serveConn gives it back
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			wait = jitter(backoff)
			s.emit(Event{Type: EventConnectFailed, Endpoint: ep.raw, Err: err, Retry: wait})
			backoff = min(2*backoff, s.opts.ReconnectIntervalMax)
		} else if s.serveConn(nc, ep.raw) {
			backoff = s.opts.ReconnectInterval
			wait = jitter(backoff)
		} else {
			wait = jitter(backoff)
			backoff = min(2*backoff, s.opts.ReconnectIntervalMax)
		}
		select {
		case <-time.After(wait):
		case <-s.ctx.Done():
			return
		}
	}
}

// jitter spreads reconnects of many clients: a delay in [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// serveConn runs the handshake and then the peer until it ends. It reports
// whether the handshake succeeded. The caller has taken a handshake slot
// (s.handshaking), which serveConn gives back when the handshake ends.
func (s *Socket) serveConn(nc net.Conn, endpoint string) bool {
	c := newConn(nc)
	cfg := handshakeConfig{typ: s.typ, curve: s.opts.Curve, maxSize: s.opts.MaxMessageSize, timeout: s.opts.HandshakeTimeout}
	stop := context.AfterFunc(s.ctx, func() { nc.Close() })
	err := c.handshake(&cfg)
	stop()
	s.handshaking.Add(-1)
	if err != nil {
		nc.Close()
		if s.ctx.Err() == nil {
			r := ReasonOf(err)
			s.stats.failures.Add(1)
			s.stats.failureBy.add(r)
			s.emit(Event{Type: EventHandshakeFailed, Endpoint: endpoint, Remote: remoteOf(nc), Err: err, Reason: r})
		}
		return false
	}
	p := newPeer(s, c, endpoint)
	if !s.attach(p) {
		nc.Close()
		return true
	}
	ev := Event{Type: EventConnected, Endpoint: endpoint, Remote: p.remote, PeerType: c.peerType}
	if s.opts.Curve != nil {
		k := c.peerKey
		ev.PeerKey = &k
	}
	s.stats.connects.Add(1)
	s.emit(ev)
	err = p.run()
	s.detach(p)
	r := ReasonOf(err)
	s.stats.disconnects.Add(1)
	s.stats.disconnectBy.add(r)
	ev.Type, ev.Err, ev.Reason = EventDisconnected, err, r
	s.emit(ev)
	return true
}

func (s *Socket) attach(p *peer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.typ == SUB {
		for t := range s.localSubs {
			p.out.tryPush(Message{subscribeFrame(true, t)}, 0, true)
		}
	}
	s.peers = append(s.peers, p)
	if s.typ == PUSH {
		signal(s.space)
	}
	return true
}

func (s *Socket) detach(p *peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.peers, p); i >= 0 {
		s.peers = slices.Delete(s.peers, i, i+1)
	}
	if s.typ == XPUB {
		for _, t := range p.subscriptions() {
			s.topicSubs[t]--
			if s.topicSubs[t] <= 0 {
				delete(s.topicSubs, t)
				if !s.closed {
					s.notifyXPUB(false, t)
				}
			}
		}
	}
}

func subscribeFrame(subscribe bool, topic string) []byte {
	b := make([]byte, 1+len(topic))
	if subscribe {
		b[0] = 1
	}
	copy(b[1:], topic)
	return b
}

// deliver hands a complete incoming message to the socket role.
func (s *Socket) deliver(p *peer, m Message) error {
	switch s.typ {
	case PUB, XPUB:
		// libzmq SUB sockets send subscriptions as one-frame data
		// messages: 0x01 or 0x00 followed by the topic prefix.
		if len(m) == 1 && len(m[0]) > 0 && m[0][0] <= 1 {
			return s.subscription(p, m[0][0] == 1, m[0][1:])
		}
		return nil
	case SUB:
		if len(m) == 0 || !s.subscribed(m[0]) {
			return nil
		}
		s.stats.received.Add(1)
		if !s.in.tryPushFrom(m, p, m.Size(), false) {
			s.stats.recvDropped.Add(1)
		}
		return nil
	case PULL:
		s.stats.received.Add(1)
		err := s.in.push(s.ctx, p.done, m, p, m.Size())
		if err != nil && s.ctx.Err() != nil {
			return ErrClosed
		}
		return err
	}
	return nil
}

func (s *Socket) subscribed(topic []byte) bool {
	for _, t := range *s.subList.Load() {
		if len(t) <= len(topic) && string(topic[:len(t)]) == t {
			return true
		}
	}
	return false
}

// subscription applies a SUBSCRIBE or CANCEL from a peer of a PUB or XPUB.
// An error (too many subscriptions) ends the peer.
func (s *Socket) subscription(p *peer, subscribe bool, topicb []byte) error {
	topic := string(topicb)
	changed, err := p.setSubscription(subscribe, topic, s.opts.MaxSubscriptions)
	if err != nil || s.typ != XPUB {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !changed {
		if subscribe && s.opts.XPUBVerbose {
			s.notifyXPUB(true, topic)
		}
		return nil
	}
	if subscribe {
		s.topicSubs[topic]++
		if s.topicSubs[topic] == 1 || s.opts.XPUBVerbose {
			s.notifyXPUB(true, topic)
		}
	} else {
		s.topicSubs[topic]--
		if s.topicSubs[topic] <= 0 {
			delete(s.topicSubs, topic)
			s.notifyXPUB(false, topic)
		}
	}
	return nil
}

func (s *Socket) notifyXPUB(subscribe bool, topic string) {
	if !s.in.tryPush(Message{subscribeFrame(subscribe, topic)}, 1+len(topic), false) {
		s.stats.recvDropped.Add(1)
	}
}

// Send sends a message. On PUB and XPUB sockets it never blocks: the message
// goes to every connected peer subscribed to a prefix of its first frame, and
// a peer whose send queue is full misses it (counted in Stats). On a PUSH
// socket it goes to one peer, round robin, waiting for room or a peer until
// ctx ends. The message must not be modified after Send.
//
// A message sent with Send stands alone: it is not part of the stream of
// SendUpdate and SendResync, and a lagging peer still gets it while its
// queue has room.
func (s *Socket) Send(ctx context.Context, m Message) error {
	if len(m) == 0 {
		return errors.New("zmtp: empty message")
	}
	switch s.typ {
	case PUB, XPUB:
		return s.publish(m, sendPlain)
	case PUSH:
		return s.sendPush(ctx, m)
	}
	return ErrNotSupported
}

// SendUpdate sends, on a PUB or XPUB socket, a message that changes a state
// which SendResync messages carry whole: a delta to the full list that
// SendResync sends. Updates must be applied in order, so a gap makes the
// ones after it useless until the next resync point. Once a peer's send
// queue has refused an update (counted in Stats.Dropped), the peer lags:
// later updates are skipped for it (Stats.Skipped) until the next
// SendResync, which it gets in place of whatever was still queued. A lagging
// peer thus never receives an update after its gap, and converges at the
// next resync point. Like Send, it never blocks.
func (s *Socket) SendUpdate(m Message) error { return s.publish(m, sendUpdate) }

// SendResync sends, on a PUB or XPUB socket, a resync point: a message that
// carries the whole state and supersedes every update and message sent
// before it. A subscribed peer that lags, or whose queue has no room for it,
// gets it in place of everything still queued for it (Stats.Replaced
// counts the messages so discarded); every peer stops lagging, subscribed
// or not. A resync point is never refused by a full queue.
func (s *Socket) SendResync(m Message) error { return s.publish(m, sendResync) }

type sendKind int

const (
	sendPlain sendKind = iota
	sendUpdate
	sendResync
)

// publish is Send, SendUpdate and SendResync of PUB and XPUB sockets.
func (s *Socket) publish(m Message, kind sendKind) error {
	if len(m) == 0 {
		return errors.New("zmtp: empty message")
	}
	if s.typ != PUB && s.typ != XPUB {
		return ErrNotSupported
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	size := m.Size()
	for _, p := range s.peers {
		if !p.matches(m[0]) {
			if kind == sendResync {
				p.out.endLag()
			}
			continue
		}
		res := offerQueued
		switch kind {
		case sendPlain:
			if !p.out.tryPush(m, size, false) {
				res = offerDropped
			}
		case sendUpdate:
			if res = p.out.offerUpdate(m, size); res == offerDropped {
				s.stats.lagged.Add(1)
			}
		case sendResync:
			n, ok := p.out.resync(m, size)
			if !ok {
				res = offerDropped
			}
			if n > 0 {
				p.replaced.Add(uint64(n))
				s.stats.replaced.Add(uint64(n))
			}
		}
		switch res {
		case offerQueued:
			p.sent.Add(1)
			s.stats.sent.Add(1)
		case offerDropped:
			p.dropped.Add(1)
			s.stats.dropped.Add(1)
		case offerSkipped:
			p.skipped.Add(1)
			s.stats.skipped.Add(1)
		}
	}
	return nil
}

func (s *Socket) sendPush(ctx context.Context, m Message) error {
	size := m.Size()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		n := len(s.peers)
		for i := 0; i < n; i++ {
			p := s.peers[(s.rr+i)%n]
			if p.out.tryPush(m, size, false) {
				s.rr = (s.rr + i + 1) % n
				s.mu.Unlock()
				p.sent.Add(1)
				s.stats.sent.Add(1)
				return nil
			}
		}
		s.mu.Unlock()
		select {
		case <-s.space:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return ErrClosed
		}
	}
}

// Recv returns the next message. SUB sockets return messages matching their
// subscriptions, PULL sockets every message, XPUB sockets the subscription
// changes of their peers as one frame: 0x01 (subscribe) or 0x00
// (unsubscribe) followed by the topic. Recv returns ErrClosed once the socket
// is closed and its queue is empty.
func (s *Socket) Recv(ctx context.Context) (Message, error) {
	m, _, err := s.RecvFrom(ctx)
	return m, err
}

// From identifies the connection a received message came from.
type From struct {
	// Remote is the peer's network address.
	Remote string
	// Key is the peer's long-term CURVE public key (zero without CURVE):
	// a stable identity for an authenticated probe.
	Key [32]byte
}

// RecvFrom is Recv that also tells which peer sent the message (zero From
// for XPUB subscription notices).
func (s *Socket) RecvFrom(ctx context.Context) (Message, From, error) {
	switch s.typ {
	case SUB, PULL, XPUB:
		e, err := s.in.popWait(ctx)
		if err != nil {
			return nil, From{}, err
		}
		var f From
		if e.from != nil {
			f = From{Remote: e.from.remote, Key: e.from.c.peerKey}
		}
		return e.m, f, nil
	}
	return nil, From{}, ErrNotSupported
}

// Subscribe makes a SUB socket receive messages whose first frame starts
// with prefix ("" receives everything). Subscriptions count: two Subscribe
// calls need two Unsubscribe calls. They are sent to every connected peer
// and again after every reconnect.
func (s *Socket) Subscribe(prefix string) error { return s.subscribe(true, prefix) }

// Unsubscribe cancels one Subscribe of prefix.
func (s *Socket) Unsubscribe(prefix string) error { return s.subscribe(false, prefix) }

func (s *Socket) subscribe(sub bool, prefix string) error {
	if s.typ != SUB {
		return ErrNotSupported
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if sub {
		s.localSubs[prefix]++
	} else {
		if s.localSubs[prefix] == 0 {
			return nil
		}
		s.localSubs[prefix]--
		if s.localSubs[prefix] > 0 {
			return nil
		}
		delete(s.localSubs, prefix)
	}
	list := make([]string, 0, len(s.localSubs))
	for t := range s.localSubs {
		list = append(list, t)
	}
	s.subList.Store(&list)
	for _, p := range s.peers {
		p.out.tryPush(Message{subscribeFrame(sub, prefix)}, 0, true)
	}
	return nil
}

// Stats are counters of a Socket since it was created.
type Stats struct {
	// Peers is the number of ready connections now, Handshakes the
	// number of handshakes in progress.
	Peers, Handshakes int
	// Sent counts messages queued to a peer (a PUB counts once per
	// subscriber), Dropped those a full peer queue refused.
	Sent, Dropped uint64
	// Lagged counts the times a peer started to lag (its queue refused an
	// update), Skipped the updates not queued to lagging peers, Replaced
	// the queued messages that resync points superseded.
	Lagged, Skipped, Replaced uint64
	// Received counts messages accepted from peers (after a SUB's
	// filter), RecvDropped those the full receive queue refused.
	Received, RecvDropped uint64
	// Connects, Disconnects and HandshakeFailures count connection
	// events, Refused the connections closed at once by MaxPeers or
	// MaxHandshakes.
	Connects, Disconnects, HandshakeFailures, Refused uint64
	// DisconnectReasons, HandshakeFailureReasons and RefuseReasons count
	// Disconnects, HandshakeFailures and Refused by reason; every reason
	// that can end that stage is present.
	DisconnectReasons, HandshakeFailureReasons, RefuseReasons map[Reason]uint64
}

// Stats returns the socket's counters.
func (s *Socket) Stats() Stats {
	s.mu.RLock()
	n := len(s.peers)
	s.mu.RUnlock()
	return Stats{
		Peers: n, Handshakes: int(max(s.handshaking.Load(), 0)),
		Sent: s.stats.sent.Load(), Dropped: s.stats.dropped.Load(),
		Lagged: s.stats.lagged.Load(), Skipped: s.stats.skipped.Load(), Replaced: s.stats.replaced.Load(),
		Received: s.stats.received.Load(), RecvDropped: s.stats.recvDropped.Load(),
		Connects: s.stats.connects.Load(), Disconnects: s.stats.disconnects.Load(),
		HandshakeFailures: s.stats.failures.Load(), Refused: s.stats.refused.Load(),
		DisconnectReasons:       s.stats.disconnectBy.snapshot(disconnectReasons),
		HandshakeFailureReasons: s.stats.failureBy.snapshot(handshakeReasons),
		RefuseReasons:           s.stats.refusedBy.snapshot(refuseReasons),
	}
}

// PeerInfo describes one ready connection.
type PeerInfo struct {
	Endpoint, Remote, Type string
	// Key is the peer's long-term CURVE public key (zero without CURVE).
	Key [32]byte
	// Queued is the length of its send queue; Sent and Dropped count
	// messages queued for it and refused because its queue was full.
	Queued        int
	Sent, Dropped uint64
	// Lagging is set while the peer waits for a resync point; Skipped
	// counts the updates it missed so, Replaced its queued messages that
	// resync points superseded.
	Lagging           bool
	Skipped, Replaced uint64
	// Subscriptions of a SUB peer (on PUB and XPUB sockets).
	Subscriptions []string
}

// Peers describes the ready connections.
func (s *Socket) Peers() []PeerInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]PeerInfo, 0, len(s.peers))
	for _, p := range s.peers {
		out = append(out, PeerInfo{
			Endpoint: p.endpoint, Remote: p.remote, Type: p.c.peerType, Key: p.c.peerKey,
			Queued: p.out.len(), Sent: p.sent.Load(), Dropped: p.dropped.Load(),
			Lagging: p.out.isLagging(), Skipped: p.skipped.Load(), Replaced: p.replaced.Load(),
			Subscriptions: p.subscriptions(),
		})
	}
	return out
}

// Close stops listening and dialing, waits up to Options.Linger for queued
// messages to be written, closes every connection and wakes Recv callers.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, ln := range s.listeners {
		ln.Close()
	}
	peers := slices.Clone(s.peers)
	s.mu.Unlock()

	if s.opts.Linger > 0 {
		deadline := time.Now().Add(s.opts.Linger)
		for time.Now().Before(deadline) {
			busy := false
			for _, p := range peers {
				select {
				case <-p.done:
					continue
				default:
				}
				if p.out.len() > 0 || p.writing.Load() {
					busy = true
					break
				}
			}
			if !busy {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	s.cancel()
	for _, p := range peers {
		p.close(ErrClosed)
	}
	s.wg.Wait()
	s.in.close()
	return nil
}
