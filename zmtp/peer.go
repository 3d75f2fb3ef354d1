package zmtp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// peer is one ready connection of a Socket.
type peer struct {
	s        *Socket
	c        *conn
	endpoint string
	remote   string
	out      *queue
	ctrl     chan []byte // command bodies (PING, PONG) sent ahead of messages
	done     chan struct{}
	once     sync.Once
	err      error

	// Subscriptions of a SUB peer, on PUB and XPUB sockets. subs is a
	// copy-on-write snapshot read by Send without locks.
	subMu  sync.Mutex
	subSet map[string]struct{}
	subs   atomic.Pointer[[]string]

	lastRecv  atomic.Int64 // unix nanoseconds
	remoteTTL atomic.Int64 // nanoseconds, from the peer's PINGs
	writing   atomic.Bool  // the writer holds unflushed or in-flight data
	dropped   atomic.Uint64
	sent      atomic.Uint64
	skipped   atomic.Uint64
	replaced  atomic.Uint64
}

func newPeer(s *Socket, c *conn, endpoint string) *peer {
	p := &peer{
		s: s, c: c, endpoint: endpoint, remote: remoteOf(c.nc),
		out:  newQueue(s.opts.SendQueueLen, s.opts.SendQueueBytes),
		ctrl: make(chan []byte, 16),
		done: make(chan struct{}),
	}
	p.lastRecv.Store(time.Now().UnixNano())
	if wt := s.opts.WriteTimeout; wt > 0 {
		// The handshake flushed everything it wrote, so nothing buffered
		// is lost by switching the writer.
		c.bw.Reset(&progressWriter{nc: c.nc, timeout: wt})
	}
	empty := []string{}
	p.subs.Store(&empty)
	return p
}

// close shuts the connection down once, remembering the first reason.
func (p *peer) close(err error) {
	p.once.Do(func() {
		p.err = err
		close(p.done)
		p.out.close()
		_ = p.c.nc.Close()
	})
}

// run serves the connection until it fails or the socket closes.
func (p *peer) run() error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.writeLoop() }()
	go func() { defer wg.Done(); p.monitor() }()
	p.readLoop()
	wg.Wait()
	return p.err
}

func (p *peer) readLoop() {
	var msg Message
	size := 0
	maxSize := int(p.s.opts.MaxMessageSize)
	for {
		pt, err := p.c.codec.readPart(&p.c.fr)
		if err != nil {
			p.close(err)
			return
		}
		p.lastRecv.Store(time.Now().UnixNano())
		if pt.cmd {
			if msg != nil {
				p.close(protoErr("command inside a multipart message"))
				return
			}
			if err := p.command(pt.body); err != nil {
				p.close(err)
				return
			}
			continue
		}
		size += len(pt.body)
		if size > maxSize {
			p.close(&sizeError{size: uint64(size), max: uint64(maxSize)})
			return
		}
		if len(msg) >= p.s.opts.MaxFrames {
			p.close(fmt.Errorf("%w: %w: a message of more than %d", ErrProtocol, ErrTooManyFrames, p.s.opts.MaxFrames))
			return
		}
		if msg == nil {
			msg = make(Message, 0, 2) // DynFW and Sentinel messages have two frames
		}
		msg = append(msg, pt.body)
		if pt.more {
			continue
		}
		if err := p.s.deliver(p, msg); err != nil {
			p.close(err)
			return
		}
		msg, size = nil, 0
	}
}

// command handles ZMTP commands that arrive after the handshake.
func (p *peer) command(body []byte) error {
	cmd, err := parseCommand(body)
	if err != nil {
		return err
	}
	switch cmd.name {
	case cmdPing:
		if len(cmd.data) < 2 || len(cmd.data) > 2+16 {
			return protoErr("PING of %d bytes", len(cmd.data))
		}
		ttl := time.Duration(binary.BigEndian.Uint16(cmd.data)) * 100 * time.Millisecond
		p.remoteTTL.Store(int64(ttl))
		pong := appendCommand(make([]byte, 0, 5+16), cmdPong, cmd.data[2:])
		select {
		case p.ctrl <- pong:
		default: // the writer is stuck; a missing PONG is the right signal
		}
	case cmdPong:
	case cmdSubscribe, cmdCancel:
		if p.s.typ == PUB || p.s.typ == XPUB {
			return p.s.subscription(p, cmd.name == cmdSubscribe, cmd.data)
		}
	case cmdError:
		return errorCommand(cmd.data)
	default:
		// The name is the peer's: its length only.
		p.s.opts.Logger.Debug("zmtp: ignoring unknown command", "name_len", len(cmd.name), "remote", p.remote)
	}
	return nil
}

// writeLoop writes queued messages and commands. With a WriteTimeout the
// writer underneath the buffer is a progressWriter, which renews the
// deadline whenever the peer accepts data.
func (p *peer) writeLoop() {
	w := p.c.bw
	codec := p.c.codec
	wt := p.s.opts.WriteTimeout
	batch := make([]Message, 0, 64)
	fail := func(err error) {
		if wt > 0 && isTimeout(err) {
			err = fmt.Errorf("%w: the peer accepted no data for %v (stalled): %w", ErrWriteTimeout, wt, err)
		}
		p.close(err)
	}
	for {
		select {
		case cmd := <-p.ctrl:
			if err := codec.writePart(w, false, true, cmd); err != nil {
				fail(err)
				return
			}
			continue
		default:
		}
		batch = p.out.popAll(batch[:0])
		if len(batch) == 0 {
			if w.Buffered() > 0 {
				if err := w.Flush(); err != nil {
					fail(err)
					return
				}
			}
			p.writing.Store(false)
			select {
			case <-p.out.ready:
			case cmd := <-p.ctrl:
				if err := codec.writePart(w, false, true, cmd); err != nil {
					fail(err)
					return
				}
			case <-p.done:
				return
			}
			continue
		}
		p.writing.Store(true)
		if p.s.typ == PUSH {
			signal(p.s.space)
		}
		for i, m := range batch {
			for j, f := range m {
				if err := codec.writePart(w, j < len(m)-1, false, f); err != nil {
					fail(err)
					return
				}
			}
			batch[i] = nil
		}
	}
}

// monitor sends PINGs and disconnects peers that stay silent.
func (p *peer) monitor() {
	ivl := p.s.opts.HeartbeatInterval
	timeout := p.s.opts.HeartbeatTimeout
	canPing := ivl > 0 && p.c.peerG.minor >= 1
	check := time.Second
	if canPing {
		check = max(min(ivl, timeout)/4, 5*time.Millisecond)
	}
	t := time.NewTicker(check)
	defer t.Stop()
	var ping []byte
	if canPing {
		ttl := min(p.s.opts.HeartbeatTTL/(100*time.Millisecond), 0xffff)
		ping = appendCommand(nil, cmdPing, binary.BigEndian.AppendUint16(nil, uint16(ttl)))
	}
	var pingAt, nextPing time.Time
	awaiting := false
	nextPing = time.Now().Add(ivl)
	for {
		select {
		case <-p.done:
			return
		case now := <-t.C:
			last := time.Unix(0, p.lastRecv.Load())
			if canPing {
				if awaiting && !last.Before(pingAt) {
					awaiting = false
				}
				if awaiting && now.Sub(pingAt) > timeout {
					p.close(fmt.Errorf("%w: no answer %v after PING", ErrHeartbeatTimeout, timeout))
					return
				}
				if !now.Before(nextPing) {
					select {
					case p.ctrl <- ping:
					default:
					}
					if !awaiting {
						awaiting, pingAt = true, now
					}
					nextPing = now.Add(ivl)
				}
			}
			if ttl := time.Duration(p.remoteTTL.Load()); ttl > 0 && now.Sub(last) > ttl {
				p.close(fmt.Errorf("%w: silent longer than the TTL of %v the peer announced", ErrHeartbeatTimeout, ttl))
				return
			}
		}
	}
}

// setSubscription updates this peer's subscription set. It reports whether
// the set changed, or an error when a new subscription would exceed max
// (0: no limit).
func (p *peer) setSubscription(subscribe bool, topic string, max int) (bool, error) {
	p.subMu.Lock()
	defer p.subMu.Unlock()
	if p.subSet == nil {
		p.subSet = make(map[string]struct{})
	}
	_, had := p.subSet[topic]
	if subscribe == had {
		return false, nil
	}
	if subscribe && max > 0 && len(p.subSet) >= max {
		return false, fmt.Errorf("%w: more than %d", ErrTooManySubscriptions, max)
	}
	if subscribe {
		p.subSet[topic] = struct{}{}
	} else {
		delete(p.subSet, topic)
	}
	list := make([]string, 0, len(p.subSet))
	for t := range p.subSet {
		list = append(list, t)
	}
	slices.Sort(list)
	p.subs.Store(&list)
	return true, nil
}

// matches reports whether the peer subscribed to a prefix of topic.
func (p *peer) matches(topic []byte) bool {
	for _, s := range *p.subs.Load() {
		if len(s) <= len(topic) && string(topic[:len(s)]) == s {
			return true
		}
	}
	return false
}

func (p *peer) subscriptions() []string {
	return slices.Clone(*p.subs.Load())
}

// progressWriter writes to a connection with a deadline that is renewed
// whenever the peer accepts data: a write fails only after timeout without
// any progress. A single deadline for a whole write would cut off a slow
// subscriber that is still reading a large list; none at all would let a
// subscriber with a zero TCP window hold its writer, its queue and its
// goroutines for ever.
type progressWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (w *progressWriter) Write(b []byte) (int, error) {
	done := 0
	for {
		_ = w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
		n, err := w.nc.Write(b[done:])
		done += n
		if err == nil || done == len(b) {
			return done, nil
		}
		if n == 0 || !isTimeout(err) {
			return done, err
		}
		// The deadline passed, but the peer took some data: go on.
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
