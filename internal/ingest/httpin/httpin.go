// Package httpin is the server's HTTP ingest for sensors that are not
// Sentinel probes: a fail2ban action, a script, another honeypot. They POST
// JSON events with a bearer token:
//
//	POST /api/v1/events
//	Authorization: Bearer <token>
//	Content-Type: application/json
//
//	{"event": "telnet_login", "ip": "192.0.2.7", "ts": 1700000000,
//	 "username": "root", "password": "1234"}
//
// or an array of such objects (at most MaxEvents). "event" is a name of the
// dynfw/event vocabulary or one registered in the configuration; "ts"
// (Unix seconds), "username", "password", "url", "user_agent" and "method"
// are optional. The answer is 202 with {"accepted": n, "rejected": m,
// "errors": [...]} (the first ten reasons), 400 for a body that is not JSON,
// 401 for a missing or unknown token, 413 for a body over MaxBody.
package httpin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/ingest/probe"
)

// Limits of one request.
const (
	MaxBody   = 1 << 20
	MaxEvents = 10_000
)

// Token authorises one sensor; its name identifies the sensor as a probe.
type Token struct {
	Name  string
	Token string
}

// Handler serves POST /api/v1/events.
type Handler struct {
	tokens  []Token
	probes  *events.Probes
	ids     []events.ProbeID
	deliver func([]events.Event)
	log     *slog.Logger

	Accepted, Rejected, Unauthorized atomic.Uint64
}

// New returns the handler. deliver receives the accepted events of each
// request; it may block (back-pressure on the client).
func New(tokens []Token, probes *events.Probes, deliver func([]events.Event), log *slog.Logger) (*Handler, error) {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{tokens: tokens, probes: probes, deliver: deliver, log: log}
	for _, t := range tokens {
		if len(t.Token) < 16 {
			return nil, fmt.Errorf("http ingest token %q: at least 16 characters", t.Name)
		}
		h.ids = append(h.ids, probes.ID(events.Probe{Name: "http:" + t.Name}))
	}
	return h, nil
}

type input struct {
	Event     string `json:"event"`
	IP        string `json:"ip"`
	TS        int64  `json:"ts"`
	Username  string `json:"username"`
	Password  string `json:"password"`
	URL       string `json:"url"`
	UserAgent string `json:"user_agent"`
	Method    string `json:"method"`
}

type result struct {
	Accepted int      `json:"accepted"`
	Rejected int      `json:"rejected"`
	Errors   []string `json:"errors,omitempty"`
}

func (h *Handler) auth(r *http.Request) (events.ProbeID, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return 0, false
	}
	found := -1
	for i, t := range h.tokens {
		// Compare against every token, in constant time each.
		if subtle.ConstantTimeCompare([]byte(tok), []byte(t.Token)) == 1 {
			found = i
		}
	}
	if found < 0 {
		return 0, false
	}
	return h.ids[found], true
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	id, ok := h.auth(r)
	if !ok {
		h.Unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="sentinel"`)
		httpError(w, http.StatusUnauthorized, "missing or unknown bearer token")
		return
	}
	body := http.MaxBytesReader(w, r.Body, MaxBody)
	dec := json.NewDecoder(body)
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", MaxBody))
			return
		}
		httpError(w, http.StatusBadRequest, "body is not JSON: "+err.Error())
		return
	}
	var items []input
	trimmed := strings.TrimSpace(string(raw))
	var err error
	if strings.HasPrefix(trimmed, "[") {
		err = json.Unmarshal(raw, &items)
	} else {
		var one input
		err = json.Unmarshal(raw, &one)
		items = []input{one}
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "want an event object or an array of them: "+err.Error())
		return
	}
	if len(items) > MaxEvents {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d events", MaxEvents))
		return
	}
	now := time.Now().UnixNano()
	res := result{}
	evs := make([]events.Event, 0, len(items))
	for i, it := range items {
		e, err := convert(it, now, id)
		if err != nil {
			res.Rejected++
			if len(res.Errors) < 10 {
				res.Errors = append(res.Errors, fmt.Sprintf("event %d: %v", i, err))
			}
			continue
		}
		evs = append(evs, e)
	}
	res.Accepted = len(evs)
	h.Accepted.Add(uint64(res.Accepted))
	h.Rejected.Add(uint64(res.Rejected))
	if res.Rejected > 0 {
		h.log.Warn("http ingest: events refused", "count", res.Rejected, "first", res.Errors[0])
	}
	if len(evs) > 0 {
		h.deliver(evs)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(res)
}

func convert(it input, now int64, id events.ProbeID) (events.Event, error) {
	t, ok := events.Lookup(it.Event)
	if !ok || !t.Published() {
		return events.Event{}, fmt.Errorf("unknown event %q", clip(it.Event))
	}
	p, err := dynfw.ParseAddr(it.IP, false)
	if err != nil {
		return events.Event{}, fmt.Errorf("ip: %v", err)
	}
	e := events.Event{Time: now, TS: it.TS, Type: t, Addr: p.Addr(), Probe: id, Source: events.FromHTTP}
	if it.Username != "" || it.Password != "" || it.URL != "" || it.UserAgent != "" || it.Method != "" {
		e.Details = &events.Details{Username: bound(it.Username), Password: bound(it.Password), URL: bound(it.URL), UserAgent: bound(it.UserAgent), Method: bound(it.Method)}
	}
	return e, nil
}

// bound makes an attacker-typed string storable, as the probe parser does.
func bound(s string) string { return events.Storable(s, probe.MaxDetail) }

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
