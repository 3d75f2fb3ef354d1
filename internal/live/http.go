package live

import (
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// Register mounts the page and its endpoints on mux:
//
//	GET /dynfw/              the page (server-rendered; the script is optional)
//	GET /dynfw/events        the Server-Sent Events stream
//	GET /dynfw/state.json    the snapshot as JSON
//	GET /dynfw/list.txt      the current list, one address per line
//	GET /dynfw/static/{file} live.js and live.css
func (h *Hub) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /dynfw/{$}", h.servePage)
	mux.HandleFunc("GET /dynfw", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dynfw/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /dynfw/events", h.serveEvents)
	mux.HandleFunc("GET /dynfw/state.json", h.serveState)
	mux.HandleFunc("GET /dynfw/list.txt", h.serveList)
	mux.HandleFunc("GET /dynfw/static/{file}", h.serveStatic)
}

// peerKey is the default ClientAddr: the TCP peer, IPv6 reduced to its /64.
func peerKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// admit counts a new stream against the limits.
func (h *Hub) admit(key string) (ok bool, why int) {
	if h.clients.Add(1) > int64(h.o.MaxClients) {
		h.clients.Add(-1)
		return false, http.StatusServiceUnavailable
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perAddr[key] >= h.o.MaxPerAddr {
		h.clients.Add(-1)
		return false, http.StatusTooManyRequests
	}
	h.perAddr[key]++
	return true, 0
}

func (h *Hub) leave(key string) {
	h.mu.Lock()
	if h.perAddr[key]--; h.perAddr[key] <= 0 {
		delete(h.perAddr, key)
	}
	h.mu.Unlock()
	h.clients.Add(-1)
}

// Clients returns the number of connected event streams.
func (h *Hub) Clients() int { return int(h.clients.Load()) }

// Dropped returns how many streams were cut off for falling behind or
// stalling, and how many were refused by the limits.
func (h *Hub) Dropped() (slow, refused uint64) { return h.dropsSlow.Load(), h.rejected.Load() }

// serveEvents streams the snapshot and then every frame of the ring. A
// Last-Event-ID from a reconnecting browser needs no replay: the snapshot
// holds everything the page shows.
func (h *Hub) serveEvents(w http.ResponseWriter, r *http.Request) {
	key := h.o.ClientAddr(r)
	if ok, code := h.admit(key); !ok {
		h.rejected.Add(1)
		w.Header().Set("Retry-After", "10")
		http.Error(w, http.StatusText(code), code)
		return
	}
	defer h.leave(key)
	select {
	case <-h.closed:
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	default:
	}
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	snap, cursor := h.snapshotFrame()
	retry := h.o.Retry + rand.N(h.o.Retry+1)
	rc.SetWriteDeadline(time.Now().Add(h.o.WriteTimeout))
	w.Write([]byte("retry: " + strconv.FormatInt(retry.Milliseconds(), 10) + "\n\n"))
	if _, err := w.Write(snap); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	n := uint64(len(h.ring.slots))
	ctx := r.Context()
	var pause *time.Timer
	if h.o.FlushInterval > 0 {
		pause = time.NewTimer(0)
		defer pause.Stop()
		<-pause.C
	}
	for {
		wake := h.ring.notify.Load() // before head: a push in between closes it
		head := h.ring.head.Load()
		if cursor == head {
			select {
			case <-*wake:
			case <-ctx.Done():
				return
			case <-h.closed:
				return
			}
			if pause != nil {
				// Let a burst accumulate: whatever arrives meanwhile
				// goes out in the same write.
				pause.Reset(h.o.FlushInterval)
				select {
				case <-pause.C:
				case <-ctx.Done():
					return
				case <-h.closed:
					return
				}
			}
			continue
		}
		if head-cursor > n {
			h.dropsSlow.Add(1)
			return
		}
		// Deadline for the whole batch: a browser that stops reading
		// blocks here until it expires, holding up nobody else.
		rc.SetWriteDeadline(time.Now().Add(h.o.WriteTimeout))
		for ; cursor < head; cursor++ {
			b, ok := h.ring.get(cursor)
			if !ok {
				h.dropsSlow.Add(1)
				return
			}
			if _, err := w.Write(b); err != nil {
				h.dropsSlow.Add(1)
				return
			}
		}
		if err := rc.Flush(); err != nil {
			h.dropsSlow.Add(1)
			return
		}
	}
}

func (h *Hub) serveState(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(h.Snapshot())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}

func (h *Hub) serveList(w http.ResponseWriter, r *http.Request) {
	b := h.ListText()
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}
