// Package scrape serves metrics to a Prometheus scraper over plain
// HTTP/1.1, without net/http's server: it is the router client's
// --metrics endpoint, and net/http's server would add 0.4 MiB to a binary
// that must stay within 8 MiB on mips.
//
// It answers GET and HEAD of any path with the document its body function
// returns, and every other method with 405. It keeps the budgets of
// internal/webserver, the server's HTTP stack: a request's header must
// arrive within ReadHeaderTimeout, a response must be written within
// WriteTimeout, an idle keep-alive connection is closed after
// IdleTimeout, and beyond MaxConns a new connection is closed at once (and
// counted). Requests with a body, malformed or oversized requests and
// HTTP/1.0 requests get their answer, and then the connection is closed.
package scrape

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// Defaults, as internal/webserver's for the server, with a cap fit for a
// router: a scraper or two, never thousands of clients.
const (
	DefaultMaxConns          = 64
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second

	// maxHeaderBytes bounds a request's line and header fields; a scrape
	// request is a few hundred bytes.
	maxHeaderBytes = 16 << 10
)

// Config sets the budgets; zero fields take the defaults.
type Config struct {
	MaxConns          int
	ReadHeaderTimeout time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// ContentType of the document; the Prometheus text format 0.0.4 if
	// empty.
	ContentType string
	Logger      *slog.Logger
}

// ErrClosed is what Serve returns after Close.
var ErrClosed = errors.New("scrape: server closed")

// Server serves one document.
type Server struct {
	cfg    Config
	body   func(context.Context) []byte
	ctx    context.Context // ends at Close
	cancel context.CancelFunc

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	closed  bool
	full    bool   // refusing; logged once per episode
	refused uint64 // connections closed at once because MaxConns were open
}

// New returns a server answering with body(ctx) for each GET or HEAD; ctx
// ends when the server is closed. body may be called concurrently.
func New(cfg Config, body func(ctx context.Context) []byte) *Server {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	for _, d := range []struct {
		p *time.Duration
		v time.Duration
	}{{&cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout}, {&cfg.WriteTimeout, DefaultWriteTimeout}, {&cfg.IdleTimeout, DefaultIdleTimeout}} {
		if *d.p <= 0 {
			*d.p = d.v
		}
	}
	if cfg.ContentType == "" {
		cfg.ContentType = "text/plain; version=0.0.4; charset=utf-8"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, body: body, conns: map[net.Conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Refused returns how many connections were closed at once because
// MaxConns were open.
func (s *Server) Refused() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Serve accepts connections on ln until Close, and returns ErrClosed then
// (or the listener's error if it fails otherwise).
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.ln = ln
	s.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return ErrClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors, say: wait and try again, as
			// net/http does, rather than stop serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.cfg.Logger.Warn("metrics: accept failed; retrying", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if s.admit(c) {
			go s.serveConn(c)
		}
	}
}

// admit registers a new connection, or closes it if MaxConns are open:
// a refused client learns it at once rather than waiting in the backlog.
func (s *Server) admit(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.conns) >= s.cfg.MaxConns {
		s.refused++
		c.Close()
		if !s.closed && !s.full {
			s.full = true
			s.cfg.Logger.Warn("metrics: connection limit reached; refusing new connections", "max_conns", s.cfg.MaxConns)
		}
		return false
	}
	s.conns[c] = struct{}{}
	if s.full && len(s.conns) < s.cfg.MaxConns*9/10 {
		s.full = false
		s.cfg.Logger.Info("metrics: below the connection limit again", "open", len(s.conns), "refused_total", s.refused)
	}
	return true
}

// Close stops accepting and closes every connection.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	return err
}

// request is what the server needs of a request.
type request struct {
	method string
	minor  byte // HTTP/1.minor
	close  bool // the connection ends after the answer
}

// errBadRequest is a request the server answers with 400.
var errBadRequest = errors.New("bad request")

func (s *Server) serveConn(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	br := bufio.NewReaderSize(c, 4096)
	for first := true; ; first = false {
		if !first {
			// Keep-alive: wait for the next request at most IdleTimeout.
			c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
			if _, err := br.Peek(1); err != nil {
				return
			}
		}
		c.SetReadDeadline(time.Now().Add(s.cfg.ReadHeaderTimeout))
		req, err := readRequest(br)
		if err != nil {
			if errors.Is(err, errBadRequest) {
				s.write(c, status(1, 400, "Bad Request", true, "text/plain; charset=utf-8", nil, []byte("400 Bad Request\n")))
			}
			return
		}
		var answer []byte
		switch req.method {
		case "GET", "HEAD":
			body := s.body(s.ctx)
			answer = status(req.minor, 200, "OK", req.close, s.cfg.ContentType, nil, body)
			if req.method == "HEAD" {
				answer = answer[:len(answer)-len(body)]
			}
		default:
			answer = status(req.minor, 405, "Method Not Allowed", req.close, "text/plain; charset=utf-8",
				[]string{"Allow: GET, HEAD", "X-Content-Type-Options: nosniff"}, []byte("method not allowed\n"))
		}
		if !s.write(c, answer) || req.close {
			return
		}
	}
}

// write sends an answer within WriteTimeout.
func (s *Server) write(c net.Conn, b []byte) bool {
	c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, err := c.Write(b)
	return err == nil
}

// status encodes an answer: status line, header fields, body.
func status(minor byte, code int, reason string, close bool, contentType string, extra []string, body []byte) []byte {
	b := make([]byte, 0, 256+len(body))
	b = append(b, "HTTP/1."...)
	b = append(b, '0'+minor, ' ')
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, reason...)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, contentType...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nDate: "...)
	b = time.Now().UTC().AppendFormat(b, "Mon, 02 Jan 2006 15:04:05 GMT")
	for _, h := range extra {
		b = append(b, "\r\n"...)
		b = append(b, h...)
	}
	if close {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// readRequest reads a request line and header fields. It returns
// errBadRequest for a request to answer with 400, another error when the
// connection failed or timed out.
func readRequest(br *bufio.Reader) (request, error) {
	var req request
	n := 0
	line := func() ([]byte, error) {
		l, err := br.ReadSlice('\n')
		n += len(l)
		switch {
		case errors.Is(err, bufio.ErrBufferFull) || n > maxHeaderBytes:
			return nil, errBadRequest
		case err != nil:
			return nil, err
		}
		return bytes.TrimSuffix(bytes.TrimSuffix(l, []byte("\n")), []byte("\r")), nil
	}
	l, err := line()
	if err != nil {
		return req, err
	}
	method, rest, ok1 := bytes.Cut(l, []byte(" "))
	target, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || !token(method) || !requestTarget(target) ||
		len(proto) != 8 || string(proto[:7]) != "HTTP/1." || (proto[7] != '0' && proto[7] != '1') {
		return req, errBadRequest
	}
	req.method, req.minor = string(method), proto[7]-'0'
	req.close = req.minor == 0 // no keep-alive for HTTP/1.0
	for {
		l, err := line()
		if err != nil {
			return req, err
		}
		if len(l) == 0 {
			return req, nil
		}
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok || !token(name) {
			return req, errBadRequest
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Connection")):
			for _, opt := range bytes.Split(value, []byte(",")) {
				if bytes.EqualFold(bytes.TrimSpace(opt), []byte("close")) {
					req.close = true
				}
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")),
			bytes.EqualFold(name, []byte("Content-Length")) && string(value) != "0":
			// A body the server does not read: answer, then close
			// rather than misread the body as the next request.
			req.close = true
		}
	}
}

// requestTarget reports whether b is a target in origin form ("/path",
// RFC 9112, 3.2.1) or absolute form ("http://host/path"), without spaces
// or control characters: the server answers every path alike, but what is
// not a request is not answered as one.
func requestTarget(b []byte) bool {
	if len(b) == 0 || b[0] != '/' && !bytes.Contains(b, []byte("://")) {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// token reports whether b is a non-empty HTTP token (RFC 9110, 5.6.2).
func token(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return len(b) > 0
}
