// Package view is Sentinel View: the server-rendered web site that shows
// the statistics of package stats (maps, graphs and top lists of
// incidents, attackers, passwords and ports over a period), an attacker's
// DynFW explanation, and the per-device "My Devices" page.
//
// Everything is rendered on the server with html/template and inline SVG,
// so the site works without JavaScript, without any CDN and offline; the
// one small script only enhances it (a dark-mode toggle, sortable tables,
// times in the visitor's zone). It fixes the weak points
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
	"github.com/dynfw/sentinel/internal/scorecard"
	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
)

// Source computes resources (cached, single-flight, background-refreshed).
// The view calls it once per widget; it must honour ctx only for its own
// waiting: a computation started by a request that gave up should go on,
// so that the next request finds it done.
type Source interface {
	Fetch(ctx context.Context, f stats.Fetch) (stats.Result, error)
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
//
// The two budgets count different things. Every page and API request
// takes one token of the general budget. The on-demand budget counts
// computations: a resource with a parameter (one attacker's events, one
// password's usernames, a visitor's devices) is not pre-computed, so each
// costs a store query, and a page takes one token per such resource it
// shows, all or none (an attacker's page that shows four costs four). The
// defaults are sized so that a person never meets them: opening the 30
// addresses of a top list in tabs at once, then reading 60 detail pages in
// a minute, fits in the burst; a scraper that fetches ten pages a second
// spends it within a minute or less and then gets 4 computations a second.
type RateLimit struct {
	// OnDemandPerMinute and OnDemandBurst: computations of resources
	// with a parameter; default 240 a minute after a burst of 480.
	OnDemandPerMinute float64
	OnDemandBurst     int
	// PerMinute and Burst: requests of pages and the API, whose
	// resources are pre-computed and cheap to serve: default 600 per
	// minute, burst 120. Static assets are not limited.
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

// Default rate limits (RateLimit).
const (
	DefaultOnDemandPerMinute = 240
	DefaultOnDemandBurst     = 480
	DefaultPerMinute         = 600
	DefaultBurst             = 120
)

// Site is what the operator says about their instance: its name, the
// overview's introduction, and the licence and source of the statistics,
// shown in the footer. The defaults claim nothing: "Sentinel", a neutral
// introduction, and no licence or attribution unless configured.
type Site struct {
	// Name is the site's name in the header and the page titles
	// (default "Sentinel").
	Name string
	// Intro is the overview's introduction (default DefaultIntro).
	Intro string
	// Attribution says where the statistics come from, e.g. "the Turris
	// Sentinel network"; shown as "The statistics come from …".
	Attribution string
	// License names the statistics' licence, e.g. "CC BY-NC-SA 4.0", and
	// LicenseURL links it (http or https).
	License, LicenseURL string
}

// Site defaults.
const (
	DefaultSiteName = "Sentinel"
	DefaultIntro    = "Attacks on the traps that report to this server: where they come from, what they try and how often."
)

// Options configure a View.
type Options struct {
	Source Source
	// Explain returns the DynFW scorer's explanation of an address; nil
	// hides that section; (nil, nil) means unknown address.
	Explain func(ctx context.Context, addr netip.Addr) (*scorecard.Explanation, error)
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
	// Site names the instance and the statistics' licence (footer).
	Site Site
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
	if err := o.Site.check(); err != nil {
		return nil, err
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
		general:  ratelimit.New(def(rl.PerMinute, DefaultPerMinute), defInt(rl.Burst, DefaultBurst), defInt(rl.MaxClients, 10000), o.Now),
		onDemand: ratelimit.New(def(rl.OnDemandPerMinute, DefaultOnDemandPerMinute), defInt(rl.OnDemandBurst, DefaultOnDemandBurst), defInt(rl.MaxClients, 10000), o.Now),
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
	// Every page takes a token of the general budget; the resources it
	// computes on demand are charged to the on-demand budget (fetchAll).
	mux.Handle("GET /{$}", v.page(v.overview))
	mux.Handle("GET /attackers/{$}", v.page(v.attackers))
	mux.Handle("GET /attackers/details/ip/{addr}", v.page(v.attackerDetails))
	mux.Handle("GET /passwords/{$}", v.page(v.passwords))
	// {b64...}: old links in standard base64 may contain "/".
	mux.Handle("GET /passwords/details/{b64...}", v.page(v.passwordDetails))
	mux.Handle("GET /incidents/{$}", v.page(v.incidents))
	mux.Handle("GET /ports/{$}", v.page(v.ports))
	mux.Handle("GET /devices/{$}", v.page(v.devices))
	mux.Handle("GET /search", v.wrap(http.HandlerFunc(v.search), v.general))
	mux.Handle("GET /api/resource", v.wrap(http.HandlerFunc(v.apiResource), nil))
	mux.Handle("GET /api/device/add", v.wrap(http.HandlerFunc(v.deviceAddGet), v.onDemand))
	mux.Handle("POST /api/device/add", v.wrap(http.HandlerFunc(v.devicePost(true)), v.onDemand))
	mux.Handle("POST /api/device/delete", v.wrap(http.HandlerFunc(v.devicePost(false)), v.onDemand))
	mux.Handle("GET /static/", securityHeaders(http.HandlerFunc(serveStatic)))
}

// wrap adds the security headers, the rate limit lim (nil: the handler
// picks its limiter itself) and a minimal access log. The request's
// context carries the client's key, for the on-demand budget (charge).
func (v *View) wrap(h http.Handler, lim *ratelimit.Limiter) http.Handler {
	return securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := v.o.Now()
		r = r.WithContext(context.WithValue(r.Context(), clientKey{}, ratelimit.ClientKey(r, v.o.RateLimit.TrustProxy)))
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
	v.tooMany(w, r, wait)
	return false
}

// tooMany answers 429 with Retry-After.
func (v *View) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
	if isAPI(r) {
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "Too many requests in row"})
	} else {
		v.errorPage(w, r, http.StatusTooManyRequests, "Too many requests; please wait a moment.")
	}
}

// clientKey is the context key of the client's rate-limit key.
type clientKey struct{}

// charge takes n tokens of the on-demand budget for the client of ctx's
// request (n resources computed on demand).
func (v *View) charge(ctx context.Context, n int) (bool, time.Duration) {
	if v.o.RateLimit.Disabled || n == 0 {
		return true, 0
	}
	key, ok := ctx.Value(clientKey{}).(netip.Prefix)
	if !ok {
		return true, 0
	}
	return v.onDemand.AllowN(key, n)
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
