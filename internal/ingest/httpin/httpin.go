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
// "errors": [...]} (the first ten reasons), 400 for a body that is not one
// JSON value (anything but white space after it included), 401 for a
// missing or unknown token, 408 for a body that stops arriving, 413 for a
// body over MaxBody or more than MaxEvents events. A refused request is
// counted by RequestReason and logged without its content.
package httpin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/ingest"
	"github.com/dynfw/sentinel/internal/ingest/probe"
	"github.com/dynfw/sentinel/internal/lograte"
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

// RequestReason is why a whole request was refused.
type RequestReason int

// The reasons, in the order of RequestReasons.
const (
	ReasonMethod        RequestReason = iota // not a POST (405)
	ReasonUnauthorized                       // no or unknown bearer token (401)
	ReasonTooLarge                           // body over MaxBody (413)
	ReasonTooManyEvents                      // more than MaxEvents events (413)
	ReasonBadJSON                            // the body is not JSON (400)
	ReasonTrailingData                       // something follows the JSON value (400)
	ReasonBadShape                           // JSON, but not an event object or an array of them (400)
	ReasonTimeout                            // the body stopped arriving (408)
	numReasons
)

var reasonNames = [numReasons]string{"method", "unauthorized", "too_large", "too_many_events", "bad_json", "trailing_data", "bad_shape", "timeout"}

// String is the reason's metric label.
func (r RequestReason) String() string { return reasonNames[r] }

// Handler serves POST /api/v1/events.
type Handler struct {
	tokens  []Token
	probes  *events.Probes
	ids     []events.ProbeID
	deliver ingest.Handler
	log     *slog.Logger

	// Accepted counts events; Unauthorized counts requests refused for
	// their token (also in RequestsRejected).
	Accepted, Unauthorized atomic.Uint64
	refused                atomic.Uint64 // events refused, by reason: see eventRejects
	eventRefused           [len(eventReasons)]atomic.Uint64
	requestRefused         [numReasons]atomic.Uint64
	logs                   lograte.Limiter
}

// eventReasons are why one event of an accepted request is refused, in the
// probe parser's words.
var eventReasons = [...]string{probe.ReasonBadType, probe.ReasonBadAddress}

// RequestsRejected returns how many whole requests were refused for reason.
func (h *Handler) RequestsRejected(reason RequestReason) uint64 {
	return h.requestRefused[reason].Load()
}

// Rejected returns how many events of accepted requests were refused.
func (h *Handler) Rejected() uint64 { return h.refused.Load() }

// RequestsRefused returns the whole requests refused by reason, every
// reason present, for metrics.
func (h *Handler) RequestsRefused() map[string]uint64 {
	m := make(map[string]uint64, numReasons)
	for i, name := range reasonNames {
		m[name] = h.requestRefused[i].Load()
	}
	return m
}

// EventsRefused returns the events of accepted requests refused by reason
// (bad_type: an unknown event name; bad_address), every reason present,
// for metrics.
func (h *Handler) EventsRefused() map[string]uint64 {
	m := make(map[string]uint64, len(eventReasons))
	for i, name := range eventReasons {
		m[name] = h.eventRefused[i].Load()
	}
	return m
}

// New returns the handler. deliver receives the accepted events of each
// request; it may block (back-pressure on the client).
func New(tokens []Token, probes *events.Probes, deliver ingest.Handler, log *slog.Logger) (*Handler, error) {
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
		h.refuse(w, r, "", ReasonMethod, http.StatusMethodNotAllowed, "use POST")
		return
	}
	id, ok := h.auth(r)
	if !ok {
		h.Unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="sentinel"`)
		h.refuse(w, r, "", ReasonUnauthorized, http.StatusUnauthorized, "missing or unknown bearer token")
		return
	}
	sensor, _ := h.probes.Get(id)
	body := http.MaxBytesReader(w, r.Body, MaxBody)
	dec := json.NewDecoder(body)
	var raw json.RawMessage
	err := dec.Decode(&raw)
	if err == nil {
		// One value and nothing but white space after it: a second
		// value or garbage would otherwise be ignored in silence.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailing
			if terr != nil && !isSyntax(terr) {
				err = terr
			}
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			h.refuse(w, r, sensor.Name, ReasonTooLarge, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", MaxBody))
		case errors.As(err, &ne) && ne.Timeout():
			h.refuse(w, r, sensor.Name, ReasonTimeout, http.StatusRequestTimeout, "the body did not arrive in time")
		case err == errTrailing:
			h.refuse(w, r, sensor.Name, ReasonTrailingData, http.StatusBadRequest, "data after the JSON value")
		default:
			h.refuse(w, r, sensor.Name, ReasonBadJSON, http.StatusBadRequest, "body is not JSON: "+err.Error())
		}
		return
	}
	var items []input
	trimmed := strings.TrimSpace(string(raw))
	if strings.HasPrefix(trimmed, "[") {
		err = json.Unmarshal(raw, &items)
	} else {
		var one input
		err = json.Unmarshal(raw, &one)
		items = []input{one}
	}
	if err != nil {
		h.refuse(w, r, sensor.Name, ReasonBadShape, http.StatusBadRequest, "want an event object or an array of them: "+err.Error())
		return
	}
	if len(items) > MaxEvents {
		h.refuse(w, r, sensor.Name, ReasonTooManyEvents, http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d events", MaxEvents))
		return
	}
	now := time.Now().UnixNano()
	res := result{}
	evs := make([]events.Event, 0, len(items))
	first := -1
	for i, it := range items {
		e, reason, err := convert(it, now, id)
		if err != nil {
			res.Rejected++
			h.eventRefused[reason].Add(1)
			if first < 0 {
				first = reason
			}
			// The answer may quote the sender's input back to it; the
			// log never does.
			if len(res.Errors) < 10 {
				res.Errors = append(res.Errors, fmt.Sprintf("event %d: %v", i, err))
			}
			continue
		}
		evs = append(evs, e)
	}
	res.Accepted = len(evs)
	h.Accepted.Add(uint64(res.Accepted))
	h.refused.Add(uint64(res.Rejected))
	if res.Rejected > 0 {
		h.logs.Log(h.log, slog.LevelWarn, "event:"+eventReasons[first], "http ingest: events refused",
			slog.String("reason", eventReasons[first]), slog.Int("count", res.Rejected), slog.Int("of", len(items)),
			slog.String("sensor", strings.TrimPrefix(sensor.Name, "http:")), slog.String("remote", r.RemoteAddr))
	}
	if len(evs) > 0 {
		h.deliver(evs)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(res)
}

// convert checks one event; a refusal comes with the index of its reason
// in eventReasons.
func convert(it input, now int64, id events.ProbeID) (events.Event, int, error) {
	t, ok := events.Lookup(it.Event)
	if !ok || !t.Published() {
		return events.Event{}, 0, fmt.Errorf("unknown event %q", clip(it.Event))
	}
	p, err := dynfw.ParseAddr(it.IP, false)
	if err != nil {
		return events.Event{}, 1, fmt.Errorf("ip: %v", err)
	}
	e := events.Event{Time: now, TS: it.TS, Type: t, Addr: p.Addr(), Probe: id, Source: events.FromHTTP}
	if it.Username != "" || it.Password != "" || it.URL != "" || it.UserAgent != "" || it.Method != "" {
		e.Details = &events.Details{Username: bound(it.Username), Password: bound(it.Password), URL: bound(it.URL), UserAgent: bound(it.UserAgent), Method: bound(it.Method)}
	}
	return e, 0, nil
}

// bound makes an attacker-typed string storable, as the probe parser does.
func bound(s string) string { return events.Storable(s, probe.MaxDetail) }

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

var errTrailing = errors.New("data after the JSON value")

func isSyntax(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF)
}

// refuse answers a refused request with code and msg (which may quote the
// client's own input back to it), counts it under reason and logs it,
// without its content: the reason, the sensor's configured name (empty
// before authentication) and the peer address. Anonymous refusals (method,
// token) are logged at debug level only, as anyone can send them.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, sensor string, reason RequestReason, code int, msg string) {
	h.requestRefused[reason].Add(1)
	level := slog.LevelWarn
	if sensor == "" {
		level = slog.LevelDebug
	}
	h.logs.Log(h.log, level, "request:"+reason.String(), "http ingest: request refused", slog.String("reason", reason.String()),
		slog.Int("status", code), slog.String("sensor", strings.TrimPrefix(sensor, "http:")), slog.String("remote", r.RemoteAddr))
	httpError(w, code, msg)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
