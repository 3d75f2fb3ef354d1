// Package view is Sentinel View: the server-rendered web site that shows
// the statistics of package stats (maps, graphs and top lists of
// incidents, attackers, passwords and ports over a period), an attacker's
// DynFW explanation, and the per-device "My Devices" page.
//
// Everything is rendered on the server with html/template and inline SVG,
// so the site works without JavaScript, without any CDN and offline; the
// one small script only adds a dark-mode toggle. It fixes the weak points
// of the reference view (sentinel-view.md §9): real HTTP statuses, no
// attacker-controlled text ever inserted unescaped, device tokens kept in
// an encrypted cookie and never taken from a URL, CSRF protection, base64url
// password links and IPv6 addresses.
package view

import (
	"context"
	"crypto/rand"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/internal/geoip"
	"github.com/dynfw/sentinel/internal/ratelimit"
	"github.com/dynfw/sentinel/internal/scoring"
	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
)

// Source computes resources (cached, single-flight, background-refreshed).
// The view calls it once per widget; it must honour ctx only for its own
// waiting: a computation started by a request that gave up should go on,
// so that the next request finds it done.
type Source interface {
	Resource(ctx context.Context, req stats.Request) (stats.Result, error)
}

// Link is an extra navigation entry, e.g. the greylist or the DynFW live
// page, which are served by other packages.
type Link struct {
	Label string
	Href  string
}

// RateLimit configures the per-client token buckets. A client is an IPv4
// address or an IPv6 /64 (one subscriber usually holds a whole /64, so a
// per-address limit would be no limit at all). Zero fields take the
// defaults below.
type RateLimit struct {
	// OnDemand limits the requests that compute a parameterised resource
	// (an attacker's or a password's graph, the session's devices), which
	// the scheduler does not pre-compute and which therefore cost a store
	// query each: default 60 per minute, burst 20.
	OnDemandPerMinute float64
	OnDemandBurst     int
	// General limits every other page and API request, whose resources
	// are pre-computed and cheap to serve: default 600 per minute, burst
	// 120. Static assets are not limited.
	PerMinute float64
	Burst     int
	// MaxClients bounds the memory of the limiter (default 10000); when
	// it is full, idle clients are forgotten first.
	MaxClients int
	// TrustProxy makes the limiter key on the last address of
	// X-Forwarded-For (the one the trusted reverse proxy appended) rather
	// than on the TCP peer. Set it only behind such a proxy: otherwise any
	// client could pick its own key.
	TrustProxy bool
	// Disabled turns the limits off (tests, private deployments).
	Disabled bool
}

// Options configure a View.
type Options struct {
	Source Source
	// Explain returns the DynFW scorer's explanation of an address; nil
	// hides that section; (nil, nil) means unknown address.
	Explain func(ctx context.Context, addr netip.Addr) (*scoring.Explanation, error)
	// Devices returns the known devices among these tokens
	// (store.Store.Devices). Nil shows the session's tokens without
	// serial numbers.
	Devices func(ctx context.Context, tokens []string) ([]store.Device, error)
	// SessionKey encrypts the session cookie (AES-256-GCM): 32 bytes. If
	// nil a random key is made, and sessions are lost on restart.
	SessionKey []byte
	Logger     *slog.Logger
	RateLimit  RateLimit
	// Links are extra navigation entries (Greylist, DynFW live, Password
	// check), after the statistics pages.
	Links []Link
	// GeoIPAttribution is shown in the footer, as text, when the country
	// data needs it (e.g. MaxMind's GeoLite2 notice).
	GeoIPAttribution string
	// PageWait is how long a page waits for a resource before showing
	// "Data is being computed" (default 2 s); APIWait the same for
	// /api/resource, which then answers 503 (default 10 s).
	PageWait, APIWait time.Duration
	// Now is the clock, for tests.
	Now func() time.Time

	// The detail pages. Countries and Networks give an address's
	// country (geoip.DB) and network owner (asn.Default()); nil hides
	// them. Resolver answers the reverse DNS lookups visitors ask for
	// (default net.DefaultResolver). The password checker is set with
	// SetPasswords.
	Countries geoip.DB
	Networks  NetworkDB
	Resolver  Resolver
}

// View serves Sentinel View. Create it with New and mount it with Register.
type View struct {
	o        Options
	log      *slog.Logger
	pages    map[string]*template.Template
	sessions *sessions
	general  *ratelimit.Limiter
	onDemand *ratelimit.Limiter
	cop      *http.CrossOriginProtection
	world    *worldMap
	rdns     *rdnsCache
	checker  atomic.Pointer[PasswordChecker]
}

// New checks the options and prepares the templates and the map.
func New(o Options) (*View, error) {
	if o.Source == nil {
		return nil, errors.New("view: Options.Source is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PageWait <= 0 {
		o.PageWait = 2 * time.Second
	}
	if o.APIWait <= 0 {
		o.APIWait = 10 * time.Second
	}
	key := o.SessionKey
	if key == nil {
		key = make([]byte, 32)
		rand.Read(key)
	}
	sess, err := newSessions(key, o.Now)
	if err != nil {
		return nil, err
	}
	for _, l := range o.Links {
		if l.Label == "" || l.Href == "" {
			return nil, errors.New("view: a Link needs a Label and an Href")
		}
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	world, err := loadWorld()
	if err != nil {
		return nil, err
	}
	rl := o.RateLimit
	v := &View{
		o:        o,
		log:      o.Logger,
		pages:    pages,
		sessions: sess,
		general:  ratelimit.New(def(rl.PerMinute, 600), defInt(rl.Burst, 120), defInt(rl.MaxClients, 10000), o.Now),
		onDemand: ratelimit.New(def(rl.OnDemandPerMinute, 60), defInt(rl.OnDemandBurst, 20), defInt(rl.MaxClients, 10000), o.Now),
		cop:      http.NewCrossOriginProtection(),
		world:    world,
	}
	res := o.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	v.rdns = newRDNS(res, o.Now)
	return v, nil
}

func def(v, d float64) float64 {
	if v > 0 {
		return v
	}
	return d
}

func defInt(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

// Register mounts every route of the view on mux. Paths end in {$} where
// the reference has a trailing slash, so that the view does not swallow
// the paths other packages register (/api/v1/..., /greylist-data/, ...).
func (v *View) Register(mux *http.ServeMux) {
	mux.Handle("GET /{$}", v.page(v.overview, false))
	mux.Handle("GET /attackers/{$}", v.page(v.attackers, false))
	mux.Handle("GET /attackers/details/ip/{addr}", v.page(v.attackerDetails, true))
	mux.Handle("GET /passwords/{$}", v.page(v.passwords, false))
	// {b64...}: old links in standard base64 may contain "/".
	mux.Handle("GET /passwords/details/{b64...}", v.page(v.passwordDetails, true))
	mux.Handle("GET /incidents/{$}", v.page(v.incidents, false))
	mux.Handle("GET /ports/{$}", v.page(v.ports, false))
	mux.Handle("GET /devices/{$}", v.page(v.devices, true))
	mux.Handle("GET /api/resource", v.wrap(http.HandlerFunc(v.apiResource), nil))
	mux.Handle("GET /api/device/add", v.wrap(http.HandlerFunc(v.deviceAddGet), v.onDemand))
	mux.Handle("POST /api/device/add", v.wrap(http.HandlerFunc(v.devicePost(true)), v.onDemand))
	mux.Handle("POST /api/device/delete", v.wrap(http.HandlerFunc(v.devicePost(false)), v.onDemand))
	mux.Handle("GET /static/", securityHeaders(http.HandlerFunc(serveStatic)))
}

// wrap adds the security headers, the rate limit lim (nil: the handler
// picks its limiter itself) and a minimal access log.
func (v *View) wrap(h http.Handler, lim *ratelimit.Limiter) http.Handler {
	return securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := v.o.Now()
		if lim != nil && !v.allow(w, r, lim) {
			v.logRequest(r, http.StatusTooManyRequests, start)
			return
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		v.logRequest(r, sw.code, start)
	}))
}

// logRequest logs the method, the path pattern (never the URL: query
// strings and paths carry passwords and tokens) and the status.
func (v *View) logRequest(r *http.Request, code int, start time.Time) {
	v.log.LogAttrs(r.Context(), slog.LevelDebug, "view request",
		slog.String("method", r.Method), slog.String("route", r.Pattern),
		slog.Int("status", code), slog.Duration("took", v.o.Now().Sub(start)))
}

// allow applies lim to the request's client, answering 429 with
// Retry-After when it is over its budget.
func (v *View) allow(w http.ResponseWriter, r *http.Request, lim *ratelimit.Limiter) bool {
	if v.o.RateLimit.Disabled {
		return true
	}
	ok, wait := lim.Allow(ratelimit.ClientKey(r, v.o.RateLimit.TrustProxy))
	if ok {
		return true
	}
	w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
	if isAPI(r) {
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "Too many requests in row"})
	} else {
		v.errorPage(w, r, http.StatusTooManyRequests, "Too many requests; please wait a moment.")
	}
	return false
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.code, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// csp forbids inline scripts and styles and any other origin: all the
// site's script is /static/view.js, and the SVG uses presentation
// attributes, not style attributes.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}
