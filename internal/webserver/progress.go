package webserver

import (
	"net/http"
	"time"
)

// progressChunk is the most written under one deadline: a client must
// accept this much every WriteTimeout (about 1 kB/s at the defaults) for a
// download to go on.
const progressChunk = 32 << 10

// progress turns the server's write timeout into a progress timeout for
// requests without a body (downloads, pages, event streams). Requests with
// a body keep the whole-request deadline: their answers are small. (The
// read deadline needs nothing: net/http lifts it once the request has been
// read, so it never cancels a long response.)
func (s *Server) progress(h http.Handler) http.Handler {
	timeout := s.cfg.WriteTimeout
	if timeout <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout}, r)
	})
}

// progressWriter moves the write deadline forward before each chunk it
// writes, until the handler sets a deadline itself.
type progressWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	own     bool // the handler manages its deadlines
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if p.own {
		return p.ResponseWriter.Write(b)
	}
	n := 0
	for len(b) > 0 {
		c := b[:min(len(b), progressChunk)]
		p.rc.SetWriteDeadline(time.Now().Add(p.timeout))
		m, err := p.ResponseWriter.Write(c)
		n += m
		if err != nil {
			return n, err
		}
		b = b[m:]
	}
	return n, nil
}

// FlushError flushes under a fresh deadline (http.ResponseController
// prefers it to Flush, and returns its error).
func (p *progressWriter) FlushError() error {
	if !p.own {
		p.rc.SetWriteDeadline(time.Now().Add(p.timeout))
	}
	return p.rc.Flush()
}

// Flush makes the writer an http.Flusher for handlers that assert one.
func (p *progressWriter) Flush() { p.FlushError() }

// SetWriteDeadline is what http.ResponseController calls: from then on the
// handler's deadlines rule (an event stream sets one per batch).
func (p *progressWriter) SetWriteDeadline(t time.Time) error {
	p.own = true
	return p.rc.SetWriteDeadline(t)
}

// Unwrap gives http.ResponseController the underlying writer.
func (p *progressWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }
