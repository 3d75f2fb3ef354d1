package zmtp

import (
	"context"
	"sync"
)

// Message is a multipart ZeroMQ message, one byte slice per frame. A
// Message passed to Send must not be modified afterwards: a publisher shares
// it between the send queues of all its subscribers.
type Message [][]byte

// Size is the total number of payload bytes of all frames.
func (m Message) Size() int {
	n := 0
	for _, f := range m {
		n += len(f)
	}
	return n
}

// entry is a queued message and, on receive queues, the peer it came from.
type entry struct {
	m    Message
	from *peer
}

// queue is a FIFO of messages bounded by count and by bytes. Pushers choose
// between dropping (publishers, subscribers) and waiting (PUSH/PULL).
type queue struct {
	mu       sync.Mutex
	items    []entry
	head     int
	bytes    int64
	maxLen   int
	maxBytes int64
	closed   bool
	// lagging is set on a peer's queue when it refused an update
	// (offerUpdate) and cleared by the next resync point (resync).
	lagging bool
	ready   chan struct{} // signalled when an item is added or the queue closes
	space   chan struct{} // signalled when an item is removed
}

func newQueue(maxLen int, maxBytes int64) *queue {
	return &queue{maxLen: maxLen, maxBytes: maxBytes, ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (q *queue) lenLocked() int { return len(q.items) - q.head }

// tryPush adds m unless the queue is full or closed. force ignores the
// limits (for subscriptions, which must never be lost).
func (q *queue) tryPush(m Message, size int, force bool) bool {
	return q.tryPushFrom(m, nil, size, force)
}

func (q *queue) tryPushFrom(m Message, from *peer, size int, force bool) bool {
	q.mu.Lock()
	if q.closed || !force && (q.lenLocked() >= q.maxLen || q.bytes+int64(size) > q.maxBytes && q.lenLocked() > 0) {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, entry{m, from})
	q.bytes += int64(size)
	q.mu.Unlock()
	signal(q.ready)
	return true
}

// offerResult is what became of a message offered to a peer's queue.
type offerResult int

const (
	offerQueued  offerResult = iota
	offerDropped             // the queue was full (or closed)
	offerSkipped             // the peer lags: updates wait for a resync point
)

// offerUpdate queues an update unless the peer lags or the queue is full;
// a full queue makes the peer lag. The check and the mark are one step under
// the lock, so no update after a refused one can enter the queue.
func (q *queue) offerUpdate(m Message, size int) offerResult {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return offerDropped
	case q.lagging:
		q.mu.Unlock()
		return offerSkipped
	case q.lenLocked() >= q.maxLen || q.bytes+int64(size) > q.maxBytes && q.lenLocked() > 0:
		q.lagging = true
		q.mu.Unlock()
		return offerDropped
	}
	q.items = append(q.items, entry{m, nil})
	q.bytes += int64(size)
	q.mu.Unlock()
	signal(q.ready)
	return offerQueued
}

// resync queues a resync point and ends the lag. When the peer lags, or the
// message does not fit, it replaces everything still queued (superseded by
// it) and returns how many messages it discarded. It reports false when the
// queue is closed.
func (q *queue) resync(m Message, size int) (int, bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, false
	}
	discarded := 0
	if q.lagging || q.lenLocked() >= q.maxLen || q.bytes+int64(size) > q.maxBytes && q.lenLocked() > 0 {
		discarded = q.lenLocked()
		clear(q.items)
		q.items, q.head, q.bytes = q.items[:0], 0, 0
	}
	q.lagging = false
	q.items = append(q.items, entry{m, nil})
	q.bytes += int64(size)
	q.mu.Unlock()
	signal(q.ready)
	return discarded, true
}

// endLag clears the lag without queueing anything: a resync point passed
// that the peer did not subscribe to.
func (q *queue) endLag() {
	q.mu.Lock()
	q.lagging = false
	q.mu.Unlock()
}

func (q *queue) isLagging() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lagging
}

// push waits for room, the context or done.
func (q *queue) push(ctx context.Context, done <-chan struct{}, m Message, from *peer, size int) error {
	for {
		if q.tryPushFrom(m, from, size, false) {
			return nil
		}
		q.mu.Lock()
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return ErrClosed
		}
		select {
		case <-q.space:
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return ErrClosed
		}
	}
}

// popAll moves every queued message to dst.
func (q *queue) popAll(dst []Message) []Message {
	q.mu.Lock()
	if q.lenLocked() == 0 {
		q.mu.Unlock()
		return dst
	}
	for _, e := range q.items[q.head:] {
		dst = append(dst, e.m)
	}
	clear(q.items[q.head:])
	q.items = q.items[:0]
	q.head = 0
	q.bytes = 0
	q.mu.Unlock()
	signal(q.space)
	return dst
}

// pop removes the oldest message.
func (q *queue) pop() (entry, bool) {
	q.mu.Lock()
	if q.lenLocked() == 0 {
		q.mu.Unlock()
		return entry{}, false
	}
	e := q.items[q.head]
	q.items[q.head] = entry{}
	q.head++
	q.bytes -= int64(e.m.Size())
	if q.head == len(q.items) {
		q.items = q.items[:0]
		q.head = 0
	} else if q.head > 1024 && q.head > len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	more := q.lenLocked() > 0
	q.mu.Unlock()
	if more {
		signal(q.ready) // wake another consumer
	}
	signal(q.space)
	return e, true
}

// popWait waits for a message, the context or the queue's closing.
func (q *queue) popWait(ctx context.Context) (entry, error) {
	for {
		if e, ok := q.pop(); ok {
			return e, nil
		}
		q.mu.Lock()
		closed := q.closed
		q.mu.Unlock()
		if closed {
			signal(q.ready) // let the next waiter see it too
			return entry{}, ErrClosed
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return entry{}, ctx.Err()
		}
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lenLocked()
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	signal(q.ready)
	signal(q.space)
}
