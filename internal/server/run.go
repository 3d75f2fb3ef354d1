package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/greylist"
	"github.com/dynfw/sentinel/internal/ingest/httpin"
	"github.com/dynfw/sentinel/internal/ingest/local"
	"github.com/dynfw/sentinel/internal/ingest/mqtt"
	"github.com/dynfw/sentinel/internal/ingest/zmqpull"
	"github.com/dynfw/sentinel/internal/metrics"
	"github.com/dynfw/sentinel/internal/portscan"
	"github.com/dynfw/sentinel/internal/publish"
	"github.com/dynfw/sentinel/internal/scoring"
	"github.com/dynfw/sentinel/internal/server/core"
	"github.com/dynfw/sentinel/internal/webserver"
	"github.com/dynfw/sentinel/zmtp"
)

// Config is everything `sentinel run` needs.
type Config struct {
	DataDir string

	DynfwListen  []string // PUB endpoints, default tcp://*:7087
	ListInterval time.Duration
	// DynfwWriteTimeout, DynfwMaxSubscribers and DynfwMaxHandshakes are
	// the publisher's budgets (publish.Config: zero for the defaults,
	// negative for none).
	DynfwWriteTimeout   time.Duration
	DynfwMaxSubscribers int
	DynfwMaxHandshakes  int

	IngestListen []string // ZMQ PULL endpoints for probes
	// IngestCurve requires CURVE on the probe ingest (with the same server
	// key as the publisher); probes are then identified by their key.
	IngestCurve bool
	// IngestMaxProbes bounds the probe connections at once
	// (zmqpull.Config.MaxProbes: zero for the default, negative for none).
	IngestMaxProbes int
	HTTPListen      string
	// HTTP are the timeouts and the connection cap of the HTTP listener
	// (zero fields: the webserver defaults).
	HTTP webserver.Config
	// ListRateLimit is the requests per minute one client may make to
	// GET /api/v1/list (0: DefaultListRateLimit; negative: no limit).
	ListRateLimit float64
	// TrustProxy takes the client address of the rate limit from the
	// last X-Forwarded-For entry (behind a reverse proxy only).
	TrustProxy bool
	// MQTT, when its URL is set, subscribes to sentinel-proxy's uplink.
	MQTT mqtt.Config

	Scoring  scoring.Config
	Portscan portscan.Config

	HTTPTokens []httpin.Token
	AdminToken string

	// GreylistAt is the UTC time of day of the daily snapshot ("00:00").
	GreylistAt       string
	GreylistOptions  greylist.Options
	SnapshotInterval time.Duration // state snapshots, default 10 min
	SyncInterval     time.Duration // journal sync, default 1 s
	// AcceptEmptyState starts (and publishes an empty list) even when the
	// state existed and none of it verifies; see core.Config.
	AcceptEmptyState bool

	Logger *slog.Logger
}

// Server is a running Sentinel server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	core     *core.Core
	mux      *http.ServeMux
	registry *metrics.Registry
	zmq      *zmqpull.Ingest
	mqtt     *mqtt.Subscriber
	mqttIn   *mqtt.Events
	local    *local.Ingest
	httpIn   *httpin.Handler
	grey     *greylist.Store
	httpLn   net.Listener
	httpSrv  *webserver.Server
	// lock keeps other servers off the data directory; ctlLn and ctlSrv
	// serve the operator's commands on its control socket.
	lock   *control.DirLock
	ctlLn  *control.Listener
	ctlSrv *http.Server
	ready  chan struct{}
	// onShutdown runs when the HTTP server starts shutting down, to end
	// long-lived responses (event streams).
	onShutdown []func()
}

// New opens the state and binds every listener; Run starts the work.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SnapshotInterval <= 0 {
		cfg.SnapshotInterval = 10 * time.Minute
	}
	if cfg.GreylistAt == "" {
		cfg.GreylistAt = "00:00"
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), registry: metrics.NewRegistry(), ready: make(chan struct{})}
	// One server per data directory, before anything in it is read.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	lock, err := control.Lock(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	// Every earlier run created greylist/ (even before the run mark
	// existed): its presence means state existed.
	_, gerr := os.Stat(filepath.Join(cfg.DataDir, "greylist"))
	c, err := OpenCore(CoreConfig{
		Config: core.Config{DataDir: cfg.DataDir, Scoring: cfg.Scoring, Portscan: cfg.Portscan, SyncInterval: cfg.SyncInterval, Logger: cfg.Logger,
			StateExpected: gerr == nil, AcceptEmptyState: cfg.AcceptEmptyState},
		Publisher: publish.Config{Listen: cfg.DynfwListen, ListInterval: cfg.ListInterval, Logger: cfg.Logger,
			WriteTimeout: cfg.DynfwWriteTimeout, MaxSubscribers: cfg.DynfwMaxSubscribers, MaxHandshakes: cfg.DynfwMaxHandshakes},
	})
	if err != nil {
		lock.Release()
		return nil, err
	}
	s.core = c
	fail := func(err error) (*Server, error) {
		s.close()
		return nil, err
	}
	if len(cfg.IngestListen) > 0 {
		zc := zmqpull.Config{Listen: cfg.IngestListen, Probes: c.Probes(), Logger: cfg.Logger, MaxProbes: cfg.IngestMaxProbes}
		if cfg.IngestCurve {
			cert, _, err := ServerCert(cfg.DataDir)
			if err != nil {
				return fail(err)
			}
			zc.Curve = &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret, PublicKey: cert.Public}
		}
		if s.zmq, err = zmqpull.New(zc, c.Process); err != nil {
			return fail(err)
		}
	}
	if cfg.MQTT.URL != "" {
		cfg.MQTT.Logger = cfg.Logger
		s.mqttIn = mqtt.NewEvents(c.Probes(), c.Process, cfg.Logger)
		if s.mqtt, err = mqtt.New(cfg.MQTT, s.mqttIn.Message); err != nil {
			return fail(err)
		}
	}
	if s.httpIn, err = httpin.New(cfg.HTTPTokens, c.Probes(), c.Process, cfg.Logger); err != nil {
		return fail(err)
	}
	gopts := cfg.GreylistOptions
	gopts.Logger = cfg.Logger
	if s.grey, err = greylist.Open(filepath.Join(cfg.DataDir, "greylist"), gopts); err != nil {
		return fail(err)
	}
	if _, err := greylist.ParseTimeOfDay(cfg.GreylistAt); err != nil {
		return fail(err)
	}
	listInterval := cfg.ListInterval
	if listInterval <= 0 {
		listInterval = 10 * time.Second // the publisher's default
	}
	s.local = local.New(c.Probes(), c.Process, cfg.Logger)
	api := &APIHandlers{Core: c, Local: s.local, DataDir: cfg.DataDir, AdminToken: cfg.AdminToken,
		List: newListAPI(c.Publisher(), listInterval, cfg.ListRateLimit, cfg.TrustProxy, s.registry)}
	api.Register(s.mux)
	s.mux.Handle("POST /api/v1/events", s.httpIn)
	s.mux.Handle(greylist.URLPrefix, s.grey.Handler())
	s.mux.HandleFunc("GET /healthz", s.health)
	hc := cfg.HTTP
	hc.Logger = cfg.Logger
	s.httpSrv = webserver.New(hc, s.mux)
	s.registerMetrics()
	s.mux.Handle("GET /metrics", s.registry)
	if cfg.HTTPListen != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.HTTPListen); err != nil {
			return fail(err)
		}
		s.log.Info("http listening", "addr", s.httpLn.Addr().String())
	}
	ctlMux := http.NewServeMux()
	api.RegisterLocal(ctlMux)
	ctlMux.HandleFunc("GET "+control.PathHealth, s.health)
	if s.ctlLn, err = lock.Listen(); err != nil {
		return fail(err)
	}
	s.ctlSrv = &http.Server{Handler: ctlMux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)}
	s.log.Info("control socket listening", "path", s.ctlLn.Path())
	return s, nil
}

// ControlPath is the path of the control socket.
func (s *Server) ControlPath() string { return s.ctlLn.Path() }

// Core returns the core, for other components and tests.
func (s *Server) Core() *core.Core { return s.core }

// Greylist returns the greylist store, so that the web view can render
// its index pages in the site's layout (Store.SetLayout).
func (s *Server) Greylist() *greylist.Store { return s.grey }

// Mux returns the HTTP mux, so that the web view can add its pages.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// Metrics returns the Prometheus registry.
func (s *Server) Metrics() *metrics.Registry { return s.registry }

// HTTPAddr returns the bound HTTP address, if any.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// IngestAddrs returns the bound probe ingest addresses.
func (s *Server) IngestAddrs() []net.Addr {
	if s.zmq == nil {
		return nil
	}
	return s.zmq.Addrs()
}

// Ready is closed once every component runs.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run serves until ctx ends, then stops gracefully: ingest first, then the
// last events are processed and published, the state is snapshotted, and
// the publisher and journal close. A graceful stop loses nothing.
func (s *Server) Run(ctx context.Context) error {
	ingestCtx, stopIngest := context.WithCancel(context.Background())
	pubCtx, stopPub := context.WithCancel(context.Background())
	loopCtx, stopLoops := context.WithCancel(context.Background())
	var ingest, pubDone, loops sync.WaitGroup

	pubDone.Add(1)
	go func() { defer pubDone.Done(); s.core.Publisher().Run(pubCtx) }()
	if s.zmq != nil {
		ingest.Add(1)
		go func() {
			defer ingest.Done()
			if err := s.zmq.Run(ingestCtx); err != nil {
				s.log.Error("probe ingest stopped", "err", err)
			}
		}()
	}
	if s.mqtt != nil {
		ingest.Add(1)
		go func() {
			defer ingest.Done()
			if err := s.mqtt.Run(ingestCtx); err != nil && ingestCtx.Err() == nil {
				s.log.Error("mqtt ingest stopped", "err", err)
			}
		}()
	}
	var httpSrv *webserver.Server
	if s.httpLn != nil {
		httpSrv = s.httpSrv
		for _, f := range s.onShutdown {
			httpSrv.RegisterOnShutdown(f)
		}
		ingest.Add(1)
		go func() {
			defer ingest.Done()
			if err := httpSrv.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http server stopped", "err", err)
			}
		}()
	}
	ingest.Add(1)
	go func() {
		defer ingest.Done()
		if err := s.ctlSrv.Serve(s.ctlLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("control socket stopped", "err", err)
		}
	}()
	loops.Add(3)
	go func() {
		defer loops.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-loopCtx.Done():
				return
			case now := <-t.C:
				s.core.Tick(now)
			}
		}
	}()
	go func() {
		defer loops.Done()
		t := time.NewTicker(s.cfg.SnapshotInterval)
		defer t.Stop()
		for {
			select {
			case <-loopCtx.Done():
				return
			case <-t.C:
				if err := s.core.Snapshot(loopCtx, false); err != nil && loopCtx.Err() == nil {
					s.log.Error("state snapshot failed", "err", err)
				}
			}
		}
	}()
	go func() {
		defer loops.Done()
		at, _ := greylist.ParseTimeOfDay(s.cfg.GreylistAt)
		if err := s.grey.Run(loopCtx, at, s.greylistEntries); err != nil && loopCtx.Err() == nil {
			s.log.Error("greylist snapshots stopped", "err", err)
		}
	}()
	close(s.ready)
	s.log.Info("sentinel running")

	<-ctx.Done()
	s.log.Info("stopping: no more ingest")
	stopIngest()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if httpSrv != nil {
		httpSrv.Shutdown(sctx)
	}
	s.ctlSrv.Shutdown(sctx)
	cancel()
	ingest.Wait()
	stopLoops()
	loops.Wait()
	sctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	err := s.core.Snapshot(sctx, true)
	cancel()
	if err != nil {
		s.log.Error("final snapshot failed; the next start replays the journal", "err", err)
	}
	stopPub()
	pubDone.Wait()
	s.close()
	s.log.Info("stopped")
	return err
}

func (s *Server) close() {
	if s.httpLn != nil {
		s.httpLn.Close()
	}
	if s.ctlLn != nil {
		s.ctlLn.Close()
	}
	if s.grey != nil {
		s.grey.Close()
	}
	if s.core != nil {
		s.core.Close()
	}
	if s.lock != nil {
		s.lock.Release()
	}
}

func (s *Server) greylistEntries() []greylist.Entry {
	var out []greylist.Entry
	s.core.Listed(func(k netip.Prefix, tags []string) {
		out = append(out, greylist.Entry{Addr: k, Tags: append([]string(nil), tags...)})
	})
	return out
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ps := s.core.Publisher().Stats()
	cs := s.core.Stats()
	status := http.StatusOK
	state := "ok"
	if cs.JournalErrors > 0 {
		status, state = http.StatusServiceUnavailable, "journal errors"
	}
	writeJSON(w, status, map[string]any{
		"status": state, "version": ps.Version, "serial": ps.Serial, "listed": ps.Listed,
		"subscribers": ps.Subscribers, "events_processed": cs.Processed, "uptime_seconds": int64(cs.Uptime.Seconds()),
	})
}

// Close releases what New opened, for a caller that gives up before Run.
func (s *Server) Close() { s.close() }

// OnShutdown registers f to run when the HTTP server begins its graceful
// shutdown (to end event streams, which would otherwise hold it up); call
// before Run.
func (s *Server) OnShutdown(f func()) { s.onShutdown = append(s.onShutdown, f) }
