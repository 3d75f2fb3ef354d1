// Package webserver builds the HTTP server that faces the internet, the
// same for `sentinel run` (API, ingest, greylist, metrics, the view) and
// `sentinel view`: every connection has a budget of time and the number of
// connections has a cap, so that slow or idle clients cannot pile up.
//
//   - ReadHeaderTimeout and ReadTimeout bound how long a request (headers,
//     then headers and body) may take to arrive; a slow-body POST is cut.
//   - WriteTimeout bounds how long a response may go without progress: the
//     deadline moves forward with every 32 KiB written, so a 10 MB download
//     to a slow client that keeps reading completes, and one that stops
//     reading is cut WriteTimeout later. A handler that sets its own write
//     deadlines through http.ResponseController (the live page's event
//     stream) takes over from then on.
//   - IdleTimeout closes keep-alive connections that carry no request.
//   - MaxConns caps the open connections: beyond it a new connection is
//     closed at once (and counted), which costs nothing to hold.
//
// Requests enter through Serve's listener and leave through the handler
// given to New; Stats reports the open and refused connections.
package webserver

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults, with the reasons for them.
const (
	// DefaultReadHeaderTimeout: request headers are a few hundred bytes.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout: the largest body the server takes is the HTTP
	// ingest's 1 MiB, which needs 35 kB/s to arrive in time; sensors on
	// servers send it in milliseconds.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout: how long a response may make no progress. It
	// is also the most a handler may take before its first write, which
	// is above the view's longest wait for a resource (10 s).
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout: a browser reuses its connection for the next
	// click within a minute; after that a new handshake costs little.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxConns: above the live page's 5,000 event streams, so that
	// the other pages still answer when the streams are full. An idle
	// connection costs about 20 kB, so the cap also bounds memory to about
	// 160 MB; the open-file limit must be above it (the systemd unit sets
	// 65,536).
	DefaultMaxConns = 8192
)

// Config sets the budgets. Zero fields take the defaults above; a negative
// timeout disables it (tests, or a server behind a proxy that enforces its
// own).
type Config struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxConns          int
	Logger            *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		switch {
		case *d == 0:
			*d = v
		case *d < 0:
			*d = 0 // http.Server: no timeout
		}
	}
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	if c.IdleTimeout == 0 {
		// http.Server would fall back to ReadTimeout; a disabled idle
		// timeout means none.
		c.IdleTimeout = -1
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server is an http.Server with the budgets of its Config.
type Server struct {
	cfg     Config
	srv     *http.Server
	open    atomic.Int64
	refused atomic.Uint64
	full    atomic.Bool // refusing; logged once per episode
}

// New returns a server for h; start it with Serve.
func New(cfg Config, h http.Handler) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg}
	s.srv = &http.Server{
		Handler:           s.progress(h),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		// net/http's own complaints (accept errors, handler panics).
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Config returns the configuration in force, defaults applied.
func (s *Server) Config() Config { return s.cfg }

// Serve accepts connections on ln, at most MaxConns at a time, until
// Shutdown; it returns http.ErrServerClosed then.
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(&limitListener{Listener: ln, s: s})
}

// Shutdown stops accepting, runs the OnShutdown functions, and waits for
// the active requests until ctx ends (see http.Server.Shutdown).
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Close closes every connection at once.
func (s *Server) Close() error { return s.srv.Close() }

// RegisterOnShutdown registers f to run when Shutdown begins, to end
// long-lived responses (event streams) that would otherwise hold it up.
func (s *Server) RegisterOnShutdown(f func()) { s.srv.RegisterOnShutdown(f) }

// Stats are the connection counters.
type Stats struct {
	Open    int64  // connections open now
	Refused uint64 // connections closed at once because MaxConns were open
}

// Stats returns the counters.
func (s *Server) Stats() Stats { return Stats{Open: s.open.Load(), Refused: s.refused.Load()} }

// limitListener closes the connections beyond MaxConns as soon as they are
// accepted: a refused client learns it at once (and may retry), rather than
// waiting in the kernel's backlog behind connections that hold their slot
// until a timeout frees it.
type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	s := l.s
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if s.open.Add(1) > int64(s.cfg.MaxConns) {
			s.open.Add(-1)
			s.refused.Add(1)
			c.Close()
			if !s.full.Swap(true) {
				s.cfg.Logger.Warn("http: connection limit reached; refusing new connections", "max_conns", s.cfg.MaxConns)
			}
			continue
		}
		if s.open.Load() < int64(s.cfg.MaxConns)*9/10 && s.full.Swap(false) {
			s.cfg.Logger.Info("http: below the connection limit again", "open", s.open.Load(), "refused_total", s.refused.Load())
		}
		return &countedConn{Conn: c, s: s}, nil
	}
}

// countedConn gives its slot back when the server closes it.
type countedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.s.open.Add(-1) })
	return err
}
