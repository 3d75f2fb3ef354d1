// Package lograte limits repeated log lines: a fault that a peer can repeat
// at will (a malformed message, a refused connection) is logged once per
// interval and reason, with the number of lines suppressed since the last
// one, while every occurrence is still counted in the metrics.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEvery is the interval of a Limiter whose Every is zero.
const DefaultEvery = 10 * time.Second

// Gate lets one line through per interval and counts the others. The zero
// Gate is ready; it is safe for concurrent use and takes no lock.
type Gate struct {
	next       atomic.Int64 // UnixNano before which lines are suppressed
	suppressed atomic.Uint64
}

// Allow reports whether a line may be logged at now and, if so, how many
// were suppressed since the last one.
func (g *Gate) Allow(now time.Time, every time.Duration) (bool, uint64) {
	next := g.next.Load()
	if now.UnixNano() < next || !g.next.CompareAndSwap(next, now.Add(every).UnixNano()) {
		g.suppressed.Add(1)
		return false, 0
	}
	return true, g.suppressed.Swap(0)
}

// Limiter is a Gate per key. Keys must come from a small fixed set (reason
// labels), never from the input. The zero Limiter is ready, with
// DefaultEvery.
type Limiter struct {
	// Every is the shortest interval between two lines of one key.
	Every time.Duration
	gates sync.Map // string -> *Gate
}

// Allow is Gate.Allow for key, now.
func (l *Limiter) Allow(key string) (bool, uint64) {
	g, ok := l.gates.Load(key)
	if !ok {
		g, _ = l.gates.LoadOrStore(key, new(Gate))
	}
	every := l.Every
	if every <= 0 {
		every = DefaultEvery
	}
	return g.(*Gate).Allow(time.Now(), every)
}

// Log writes msg with attrs and, when lines were suppressed, their number,
// unless a line of key was logged less than Every ago. The key is typically
// the reason, which the caller puts into attrs too.
func (l *Limiter) Log(log *slog.Logger, level slog.Level, key, msg string, attrs ...slog.Attr) {
	if !log.Enabled(context.Background(), level) {
		return
	}
	ok, suppressed := l.Allow(key)
	if !ok {
		return
	}
	if suppressed > 0 {
		attrs = append(attrs[:len(attrs):len(attrs)], slog.Uint64("suppressed", suppressed))
	}
	log.LogAttrs(context.Background(), level, msg, attrs...)
}
