package server

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/metrics"
	"github.com/dynfw/sentinel/internal/publish"
	"github.com/dynfw/sentinel/internal/ratelimit"
	"github.com/dynfw/sentinel/internal/webserver"
)

// listAPI serves GET /api/v1/list: the list as the last dynfw/list carried
// it (publish.Published), so it is at most one list interval behind the
// deltas, and always a list that subscribers were sent. The JSON body is
// encoded once per published (version, serial), by the first request that
// needs it, and its gzip form once by the first client that accepts gzip;
// neither takes a lock of the publisher, so readers never hold up a delta.
// Clients revalidate with the ETag ("<version>-<serial>") and get 304;
// each client (address or IPv6 /64) is rate-limited.
type listAPI struct {
	pub        *publish.Publisher
	maxAge     string // Cache-Control max-age, seconds
	limit      *ratelimit.Limiter
	trustProxy bool
	requests   *metrics.CounterVec // by result

	mu  sync.Mutex // serialises encodings
	cur atomic.Pointer[listBody]
}

// listBody is the encoded answer for one published list.
type listBody struct {
	version, serial uint64
	etag, etagGzip  string
	json            []byte
	gzipOnce        sync.Once
	gzip            []byte
}

// List API defaults.
const (
	// DefaultListRateLimit is the requests per minute one client may make
	// to the list API: enough to poll every two seconds, while a full
	// answer is megabytes; routers follow the publisher, not this API.
	DefaultListRateLimit = 30
	listRateBurst        = 10
)

func newListAPI(pub *publish.Publisher, listInterval time.Duration, perMinute float64, trustProxy bool, reg *metrics.Registry) *listAPI {
	a := &listAPI{pub: pub, trustProxy: trustProxy,
		maxAge: strconv.Itoa(max(1, int(listInterval/time.Second)))}
	if perMinute >= 0 {
		if perMinute == 0 {
			perMinute = DefaultListRateLimit
		}
		a.limit = ratelimit.New(perMinute, listRateBurst, 10_000, nil)
	}
	a.requests = reg.CounterVec("sentinel_http_list_requests_total",
		"Requests to GET /api/v1/list by result: full (JSON), gzip, not_modified (304), rate_limited (429).", "result")
	for _, r := range []string{"full", "gzip", "not_modified", "rate_limited"} {
		a.requests.With(r)
	}
	return a
}

func (a *listAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.limit != nil {
		if ok, wait := a.limit.Allow(ratelimit.ClientKey(r, a.trustProxy)); !ok {
			a.requests.With("rate_limited").Inc()
			w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
			w.Header().Set("Cache-Control", "no-store")
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many requests; retry later"})
			return
		}
	}
	b := a.body()
	gz := webserver.AcceptsGzip(r)
	etag := b.etag
	if gz {
		etag = b.etagGzip
	}
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age="+a.maxAge)
	h.Set("Vary", "Accept-Encoding")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, b) {
		a.requests.With("not_modified").Inc()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := b.json
	if gz {
		body = b.gzipped()
		h.Set("Content-Encoding", "gzip")
		a.requests.With("gzip").Inc()
	} else {
		a.requests.With("full").Inc()
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// body returns the encoded answer for the last published list, encoding
// it if the list changed.
func (a *listAPI) body() *listBody {
	p := a.pub.Published()
	if b := a.cur.Load(); b != nil && b.version == p.Version && b.serial == p.Serial {
		return b
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	p = a.pub.Published()
	if b := a.cur.Load(); b != nil && b.version == p.Version && b.serial == p.Serial {
		return b
	}
	tag := strconv.FormatUint(p.Version, 10) + "-" + strconv.FormatUint(p.Serial, 10)
	b := &listBody{version: p.Version, serial: p.Serial, etag: `"` + tag + `"`, etagGzip: `"` + tag + `-gzip"`, json: encodeList(p)}
	a.cur.Store(b)
	return b
}

// encodeList writes the list API's JSON: version, serial, count and the
// list in the order of dynfw/list, one address per line. The addresses
// need no escaping (digits, hex, dots, colons and a slash).
func encodeList(p *publish.Published) []byte {
	b := make([]byte, 0, 80+20*len(p.List))
	b = append(b, `{"version":`...)
	b = strconv.AppendUint(b, p.Version, 10)
	b = append(b, `,"serial":`...)
	b = strconv.AppendUint(b, p.Serial, 10)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(len(p.List)), 10)
	b = append(b, `,"list":[`...)
	for i, k := range p.List {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n\""...)
		if k.Bits() == 32 && k.Addr().Is4() {
			b = k.Addr().AppendTo(b) // nearly every entry, without a string each
		} else {
			b = append(b, dynfw.FormatAddr(k)...)
		}
		b = append(b, '"')
	}
	return append(b, "]}\n"...)
}

// gzipped compresses the body once, for every client that accepts gzip.
func (b *listBody) gzipped() []byte {
	b.gzipOnce.Do(func() {
		var buf bytes.Buffer
		buf.Grow(len(b.json) / 4)
		zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
		zw.Write(b.json)
		zw.Close()
		b.gzip = buf.Bytes()
	})
	return b.gzip
}

// etagMatch is the weak comparison of If-None-Match: either encoding's tag
// names the same list.
func etagMatch(header string, b *listBody) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == b.etag || t == b.etagGzip {
			return true
		}
	}
	return false
}
