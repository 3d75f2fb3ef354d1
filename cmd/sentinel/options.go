package main

import (
	"encoding"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dynfw/sentinel/internal/config"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/greylist"
	"github.com/dynfw/sentinel/internal/ingest/httpin"
	"github.com/dynfw/sentinel/internal/ingest/mqtt"
	"github.com/dynfw/sentinel/internal/ingest/zmqpull"
	"github.com/dynfw/sentinel/internal/portscan"
	"github.com/dynfw/sentinel/internal/publish"
	"github.com/dynfw/sentinel/internal/scoring"
	"github.com/dynfw/sentinel/internal/server"
	"github.com/dynfw/sentinel/internal/view"
	"github.com/dynfw/sentinel/internal/webserver"
)

const defaultConfigFile = "/etc/sentinel/sentinel.toml"

// duration reads "12h" in the config file.
type duration time.Duration

var _ encoding.TextUnmarshaler = (*duration)(nil)

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (like 30m or 12h)", b)
	}
	*d = duration(v)
	return nil
}

// scoringSection is [scoring] in the config file.
type scoringSection struct {
	HalfLife      duration           `toml:"half-life"`
	Entry         float64            `toml:"entry-threshold"`
	Exit          float64            `toml:"exit-threshold"`
	Weights       map[string]float64 `toml:"weights"`
	CustomWeight  float64            `toml:"custom-weight"`
	MinListing    duration           `toml:"min-listing"`
	MaxListing    duration           `toml:"max-listing"`
	MaxAge        duration           `toml:"max-age"`
	OffenceMemory duration           `toml:"offence-memory"`
	Forget        duration           `toml:"forget"`
	IPv6Prefix    int                `toml:"ipv6-prefix"`
	Allow         []string           `toml:"allow"`
	ListNonGlobal bool               `toml:"list-non-global"`
	ProbeCap      float64            `toml:"probe-cap"`
	History       int                `toml:"history"`
}

// portscanSection is [portscan].
type portscanSection struct {
	Window duration `toml:"window"`
	Small  int      `toml:"small"`
	Big    int      `toml:"big"`
}

// mqttSection is [mqtt]; the broker URL is the flag --mqtt-url.
type mqttSection struct {
	ClientID string `toml:"client-id"`
	Username string `toml:"username"`
	Password string `toml:"password"`
	Topic    string `toml:"topic"`
	Share    string `toml:"share"`
	CAFile   string `toml:"ca-file"`
	CertFile string `toml:"cert-file"`
	KeyFile  string `toml:"key-file"`
	Insecure bool   `toml:"insecure-skip-verify"`
}

// greylistSection is [greylist].
type greylistSection struct {
	LicenseURL    string `toml:"license-url"`
	Attribution   string `toml:"attribution"`
	RetentionDays int    `toml:"retention-days"`
}

// greylistOptions are the greylist's licence and attribution: those of
// [greylist] when set, else the web view's data licence and attribution
// (--data-license, --data-license-url, --data-attribution), so that one
// setting covers every page; neutral when neither is set. currentList is
// the URL of the list as it is now ("" when not served here).
func greylistOptions(g greylistSection, site view.Site, currentList string) greylist.Options {
	o := greylist.Options{LicenseURL: g.LicenseURL, Attribution: g.Attribution, RetentionDays: g.RetentionDays, CurrentListURL: currentList}
	if o.LicenseURL == "" {
		o.LicenseURL, o.License = site.LicenseURL, site.License
	}
	if o.Attribution == "" {
		o.Attribution = site.Attribution
	}
	return o
}

// tokenEntry is one [[http-tokens]] table.
type tokenEntry struct {
	Name  string `toml:"name"`
	Token string `toml:"token"`
}

// httpOptions are the budgets of the HTTP listener, the same options for
// `sentinel run` and `sentinel view` (internal/webserver).
type httpOptions struct {
	readTimeout, writeTimeout, idleTimeout time.Duration
	maxConns                               int
}

func (h *httpOptions) register(s *config.Options) {
	s.Duration(&h.readTimeout, "http-read-timeout", nil, webserver.DefaultReadTimeout, "longest time a request, headers and body, may take to arrive; a slower upload is cut (0: no limit)")
	s.Duration(&h.writeTimeout, "http-write-timeout", nil, webserver.DefaultWriteTimeout, "longest time a response may make no progress: a client that stops reading is cut, a slow one that reads goes on (0: no limit; the live page's event stream has its own)")
	s.Duration(&h.idleTimeout, "http-idle-timeout", nil, webserver.DefaultIdleTimeout, "how long a keep-alive connection may wait for its next request (0: no limit)")
	s.Int(&h.maxConns, "http-max-conns", nil, webserver.DefaultMaxConns, "most open HTTP connections; further ones are closed at once")
}

// config turns the options into the listener's configuration; 0 on the
// command line means no limit, which webserver.Config spells negative.
func (h *httpOptions) config() webserver.Config {
	off := func(d time.Duration) time.Duration {
		if d <= 0 {
			return -1
		}
		return d
	}
	return webserver.Config{ReadTimeout: off(h.readTimeout), WriteTimeout: off(h.writeTimeout), IdleTimeout: off(h.idleTimeout), MaxConns: h.maxConns}
}

type runOptions struct {
	config           string
	data             string
	dynfwListen      []string
	ingestListen     []string
	ingestCurve      bool
	httpListen       string
	http             httpOptions
	listRateLimit    int
	mqttURL          string
	listInterval     time.Duration
	adminToken       string
	greylistAt       string
	snapshotInterval time.Duration
	syncInterval     time.Duration
	acceptEmpty      bool
	verbose          bool
	logFormat        string
	view             viewOptions
	noView           bool

	// The publisher's budgets; 0 disables each.
	dynfwWriteTimeout   time.Duration
	dynfwMaxSubscribers int
	ingestMaxProbes     int
	dynfwMaxHandshakes  int

	scoring  scoringSection
	portscan portscanSection
	mqtt     mqttSection
	greylist greylistSection
	tokens   struct {
		List []tokenEntry `toml:"tokens"`
	}
	events map[string]string // custom event name -> greylist tag

	set *config.Options
}

func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/sentinel"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "sentinel")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "sentinel")
	}
	return "sentinel-data"
}

// defaultViewDataDir is the data directory of `sentinel view`: its own,
// under the server's default, so that a view on the server's machine
// never shares the password index with `sentinel run` (each process
// rewrites its index when it compacts).
func defaultViewDataDir() string { return filepath.Join(defaultDataDir(), "view") }

func newRunOptions() *runOptions {
	o := &runOptions{}
	s := config.New("sentinel run", "SENTINEL_")
	o.set = s
	s.String(&o.config, "config", nil, "", "config file (TOML; default "+defaultConfigFile+" if it exists)")
	s.String(&o.data, "data", nil, defaultDataDir(), "data directory (state, journal, certificate, greylist), created if missing")
	s.Strings(&o.dynfwListen, "dynfw-listen", nil, []string{"tcp://*:7087"}, "DynFW publisher endpoint (repeatable)")
	s.Strings(&o.ingestListen, "ingest-listen", nil, []string{"tcp://127.0.0.1:7088"}, "ZMQ PULL endpoint for probes and sentinel-proxy (repeatable; ipc:// works)")
	s.Bool(&o.ingestCurve, "ingest-curve", nil, false, "require CURVE on the probe ingest (probes on other hosts use the server certificate)")
	s.Int(&o.ingestMaxProbes, "ingest-max-probes", nil, zmqpull.DefaultMaxProbes, "most probe connections to the ZMQ ingest at once, handshakes included; more are closed at once (0: no limit)")
	s.String(&o.httpListen, "http-listen", nil, ":8080", "HTTP listener: greylist, /dynfw.pub, API, metrics (empty: none)")
	o.http.register(s)
	s.Int(&o.listRateLimit, "list-rate-limit", nil, server.DefaultListRateLimit, "requests per minute one client address (IPv6: /64) may make to /api/v1/list, after a burst of 10 (0: no limit)")
	s.String(&o.mqttURL, "mqtt-url", nil, "", "MQTT broker with sentinel-proxy uplinks, e.g. tcp://127.0.0.1:1883 (more in [mqtt])")
	s.Duration(&o.listInterval, "list-interval", nil, 10*time.Second, "how often the whole dynfw/list is published")
	s.Duration(&o.dynfwWriteTimeout, "dynfw-write-timeout", nil, publish.DefaultWriteTimeout, "cut off a DynFW subscriber that accepts no data for this long (0: never)")
	s.Int(&o.dynfwMaxSubscribers, "dynfw-max-subscribers", nil, publish.DefaultMaxSubscribers, "most DynFW subscriber connections at once, handshakes included; more are closed at once (0: no limit)")
	s.Int(&o.dynfwMaxHandshakes, "dynfw-max-handshakes", nil, publish.DefaultMaxHandshakes, "most CURVE handshakes of DynFW subscribers in progress at once (0: no limit)")
	s.String(&o.adminToken, "admin-token", nil, "", "bearer token of the admin API (block, unblock); empty disables it")
	s.String(&o.greylistAt, "greylist-at", nil, "00:00", "UTC time of the daily greylist snapshot")
	s.Duration(&o.snapshotInterval, "snapshot-interval", nil, 10*time.Minute, "how often the whole state is written (the journal covers the time between)")
	s.Duration(&o.syncInterval, "sync-interval", nil, time.Second, "how often the journal is synced to disk: the most a crash can lose")
	s.Bool(&o.acceptEmpty, "accept-empty-state", nil, false, "start with an empty list when the saved state exists but none of it verifies (without it, sentinel run refuses to start)")
	s.Bool(&o.verbose, "verbose", []string{"v"}, false, "debug logging")
	s.String(&o.logFormat, "log-format", nil, "text", "log format: text or json")
	o.view.register(s, "", "statistics database of Sentinel View: postgres://user@host/db, or an SQLite file (default <data>/stats.db)")
	s.Bool(&o.noView, "no-view", nil, false, "neither record statistics nor serve Sentinel View")
	s.Section("scoring", &o.scoring)
	s.Section("portscan", &o.portscan)
	s.Section("mqtt", &o.mqtt)
	s.Section("greylist", &o.greylist)
	s.Section("http", &o.tokens)
	s.Section("events", &o.events)
	return o
}

func (o *runOptions) usage(w io.Writer) {
	fmt.Fprint(w, `Usage: sentinel run [options]

Runs the Sentinel server on an embedded data directory: probe ingest (ZMQ
PULL, MQTT, HTTP), scoring, the DynFW publisher, the daily greylist, the HTTP
API and metrics. Stops gracefully on SIGTERM or SIGINT.

Options:
`)
	o.set.Usage(w)
	fmt.Fprint(w, `
Structured settings live in the config file: [scoring] (thresholds, weights
per event, durations, allow-list), [portscan], [mqtt], [greylist],
[[http.tokens]] (sensors allowed to POST events) and [events] (extra event
names and their greylist tags). See contrib/sentinel.toml.
`)
}

func (o *runOptions) parse(args []string) error {
	if err := o.set.Parse(args, "config", defaultConfigFile); err != nil {
		return err
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return fmt.Errorf("invalid --log-format %q (text or json)", o.logFormat)
	}
	if _, err := greylist.ParseTimeOfDay(o.greylistAt); err != nil {
		return err
	}
	for name, tag := range o.events {
		if _, err := events.Register(name, tag); err != nil {
			return fmt.Errorf("[events]: %w", err)
		}
	}
	return nil
}

// serverConfig turns the options into the server's configuration.
func (o *runOptions) serverConfig() (server.Config, error) {
	sc := scoring.DefaultConfig()
	sec := o.scoring
	setDur := func(dst *time.Duration, v duration) {
		if v != 0 {
			*dst = time.Duration(v)
		}
	}
	setDur(&sc.HalfLife, sec.HalfLife)
	setDur(&sc.MinDuration, sec.MinListing)
	setDur(&sc.MaxDuration, sec.MaxListing)
	setDur(&sc.MaxAge, sec.MaxAge)
	setDur(&sc.OffenceMemory, sec.OffenceMemory)
	setDur(&sc.Forget, sec.Forget)
	if sec.Entry != 0 {
		sc.Entry = sec.Entry
	}
	if sec.Exit != 0 {
		sc.Exit = sec.Exit
	}
	if sec.CustomWeight != 0 {
		sc.CustomWeight = sec.CustomWeight
	}
	for name, w := range sec.Weights {
		if _, ok := events.Lookup(name); !ok {
			return server.Config{}, fmt.Errorf("[scoring.weights]: unknown event %q (register it in [events])", name)
		}
		sc.Weights[name] = w
	}
	sc.IPv6Prefix = sec.IPv6Prefix
	sc.ListNonGlobal = sec.ListNonGlobal
	if sec.ProbeCap != 0 {
		sc.ProbeCap = sec.ProbeCap
	}
	if sec.History != 0 {
		sc.History = sec.History
	}
	for _, a := range sec.Allow {
		p, err := parsePrefix(a)
		if err != nil {
			return server.Config{}, fmt.Errorf("[scoring] allow: %w", err)
		}
		sc.Allow = append(sc.Allow, p)
	}
	if err := sc.Check(); err != nil {
		return server.Config{}, fmt.Errorf("[scoring]: %w", err)
	}
	pc := portscan.Config{Window: time.Duration(o.portscan.Window), Small: o.portscan.Small, Big: o.portscan.Big}
	var tokens []httpin.Token
	for _, t := range o.tokens.List {
		if t.Name == "" || t.Token == "" {
			return server.Config{}, fmt.Errorf("[[http.tokens]]: name and token are required")
		}
		tokens = append(tokens, httpin.Token{Name: t.Name, Token: t.Token})
	}
	mc := mqtt.Config{URL: o.mqttURL, ClientID: o.mqtt.ClientID, Username: o.mqtt.Username, Password: o.mqtt.Password,
		Topic: o.mqtt.Topic, Share: o.mqtt.Share, CAFile: o.mqtt.CAFile, CertFile: o.mqtt.CertFile, KeyFile: o.mqtt.KeyFile,
		InsecureSkipVerify: o.mqtt.Insecure}
	if o.dynfwWriteTimeout < 0 || o.dynfwMaxSubscribers < 0 || o.dynfwMaxHandshakes < 0 || o.ingestMaxProbes < 0 {
		return server.Config{}, fmt.Errorf("dynfw-write-timeout, dynfw-max-subscribers, dynfw-max-handshakes and ingest-max-probes must not be negative (0 disables them)")
	}
	// 0 disables a budget here; the publisher reads 0 as its default and
	// a negative value as none.
	none := func(v int) int {
		if v == 0 {
			return -1
		}
		return v
	}
	listRate := float64(o.listRateLimit)
	if o.listRateLimit <= 0 {
		listRate = -1 // no limit
	}
	return server.Config{
		DataDir: o.data, DynfwListen: o.dynfwListen, ListInterval: o.listInterval,
		DynfwWriteTimeout: time.Duration(none(int(o.dynfwWriteTimeout))), DynfwMaxSubscribers: none(o.dynfwMaxSubscribers), DynfwMaxHandshakes: none(o.dynfwMaxHandshakes),
		IngestListen: o.ingestListen, IngestCurve: o.ingestCurve, IngestMaxProbes: none(o.ingestMaxProbes), HTTPListen: o.httpListen, MQTT: mc,
		HTTP: o.http.config(), ListRateLimit: listRate, TrustProxy: o.view.trustProxy,
		Scoring: sc, Portscan: pc, HTTPTokens: tokens, AdminToken: o.adminToken,
		GreylistAt:       o.greylistAt,
		GreylistOptions:  greylistOptions(o.greylist, o.view.site, "/api/v1/list"),
		SnapshotInterval: o.snapshotInterval, SyncInterval: o.syncInterval, AcceptEmptyState: o.acceptEmpty,
	}, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
