// Package ratelimit limits requests per client with a token bucket for each
// client address (an IPv4 address or an IPv6 /64). Sentinel View's pages and
// APIs and the server's list API use it, so that one definition decides who
// a client is (ClientKey) and how budgets refill.
//
// Data enters as a client key per request (Limiter.Allow) and leaves as a
// yes, or a no with the time until the next token (for Retry-After).
package ratelimit

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limiter is a token bucket per client. The map is bounded: when it is
// full, clients whose bucket has refilled (idle ones) are forgotten, and if
// that frees nothing, an eighth of the clients at random, so that a flood
// of new addresses costs one sweep per many insertions rather than one per
// request. Forgetting a client only gives it a full bucket again. Its
// methods are safe for concurrent use.
type Limiter struct {
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

// New returns a limiter that grants perMinute requests a minute to each
// client after an initial burst, remembering at most maxClients clients.
// now is the clock (nil: time.Now).
func New(perMinute float64, burst, maxClients int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{rate: perMinute / 60, burst: float64(burst), max: max(maxClients, 1), now: now,
		clients: make(map[netip.Prefix]*bucket)}
}

// Allow takes a token for key; when there is none it returns how long
// until there will be.
func (l *Limiter) Allow(key netip.Prefix) (bool, time.Duration) { return l.AllowN(key, 1) }

// AllowN takes n tokens for key at once, for a request whose cost is n
// units of work (a page that computes n resources); when the bucket holds
// fewer it takes none and returns how long until it will hold n. A cost
// above the burst is capped at the burst, so that it can ever pass.
func (l *Limiter) AllowN(key netip.Prefix, n int) (bool, time.Duration) {
	if n <= 0 {
		return true, 0
	}
	need := min(float64(n), l.burst)
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
	if b.tokens >= need {
		b.tokens -= need
		return true, 0
	}
	return false, time.Duration((need - b.tokens) / l.rate * float64(time.Second))
}

// Clients returns how many clients the limiter remembers.
func (l *Limiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

func (l *Limiter) evict(now time.Time) {
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

// RetryAfter is the value of a Retry-After header for a wait that Allow
// returned: whole seconds, at least 1.
func RetryAfter(wait time.Duration) string {
	secs := int((wait + time.Second - 1) / time.Second)
	return strconv.Itoa(max(secs, 1))
}

// ClientKey is the client's address, IPv6 reduced to its /64 (one
// subscriber usually holds a whole /64, so a per-address limit would be no
// limit at all). With trustProxy it is the last X-Forwarded-For entry, the
// one our proxy wrote (the earlier ones are whatever the client sent); set
// it only behind such a proxy, otherwise any client could pick its own key.
func ClientKey(r *http.Request, trustProxy bool) netip.Prefix {
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
