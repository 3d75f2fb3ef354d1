package view

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// limiter is a token bucket per client. The map is bounded: when it is
// full, clients whose bucket has refilled (idle ones) are forgotten, and if
// that frees nothing, an eighth of the clients at random, so that a flood
// of new addresses costs one sweep per many insertions rather than one per
// request. Forgetting a client only gives it a full bucket again.
type limiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	max     int
	now     func() time.Time
	clients map[netip.Prefix]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(perMinute float64, burst, maxClients int, now func() time.Time) *limiter {
	return &limiter{rate: perMinute / 60, burst: float64(burst), max: maxClients, now: now,
		clients: make(map[netip.Prefix]*bucket)}
}

// allow takes a token for key; when there is none it returns how long
// until there will be.
func (l *limiter) allow(key netip.Prefix) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.clients[key]
	if b == nil {
		if len(l.clients) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.clients[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

func (l *limiter) evict(now time.Time) {
	for k, b := range l.clients {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.clients, k)
		}
	}
	if len(l.clients) < l.max {
		return
	}
	n := max(1, l.max/8)
	for k := range l.clients { // map order is random enough here
		delete(l.clients, k)
		if n--; n == 0 {
			break
		}
	}
}

// clientKey is the client's address, IPv6 reduced to its /64. With
// trustProxy it is the last X-Forwarded-For entry, the one our proxy wrote
// (the earlier ones are whatever the client sent).
func clientKey(r *http.Request, trustProxy bool) netip.Prefix {
	var addr netip.Addr
	if trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			addr, _ = netip.ParseAddr(strings.TrimSpace(last))
		}
	}
	if !addr.IsValid() {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		addr, _ = netip.ParseAddr(host)
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p
	}
	if addr.Is4() {
		return netip.PrefixFrom(addr, 32)
	}
	return netip.Prefix{} // unknown peer: one shared bucket
}

// ClientAddr returns how the view tells clients apart (see clientKey), as
// a string, for other handlers on the same site that limit per client
// (the live page).
func ClientAddr(trustProxy bool) func(*http.Request) string {
	return func(r *http.Request) string { return clientKey(r, trustProxy).String() }
}

func itoa(n int) string { return strconv.Itoa(n) }

// isAPI: /api/resource answers JSON; the device endpoints are form
// targets and answer pages.
func isAPI(r *http.Request) bool { return r.URL.Path == "/api/resource" }
