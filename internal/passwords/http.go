package passwords

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Register adds both APIs to mux: GET /range/{prefix} and GET or POST
// /passcheck/apiv1/. The API documentation page (/passcheck/apiv1/doc) and
// the checker page belong to the view.
func (c *Corpus) Register(mux *http.ServeMux) {
	rh, ah := c.RangeHandler(), c.APIHandler()
	mux.Handle("GET /range/{prefix}", rh)
	mux.Handle("GET /passcheck/apiv1/{$}", ah)
	mux.Handle("POST /passcheck/apiv1/{$}", ah)
}

// ---- Legacy API: POST /passcheck/apiv1/ ----

// MaxAPIBody bounds the body of a legacy API request; a valid one is
// about 45 bytes.
const MaxAPIBody = 4096

// The fixed answers of the legacy API, byte for byte as Flask's jsonify
// writes them (compact, sorted keys, trailing newline).
var (
	apiNotJSON = []byte(`{"API error":"Invalid HTTP method for URL Please use the POST method."}` + "\n")
	apiNoQuery = []byte(`{"msg_type":"response","status":"NO_QUERY"}` + "\n")
)

type apiValidationError struct {
	Error   string `json:"error"`
	MsgType string `json:"msg_type"`
	Status  string `json:"status"`
}

type apiEntry struct {
	Count   uint64   `json:"count"`
	Hash    string   `json:"hash"`
	Sources []string `json:"sources"`
}

type apiSuccess struct {
	Data    []apiEntry `json:"data"`
	MsgType string     `json:"msg_type"`
	Status  string     `json:"status"`
}

// APIHandler serves the reference checker API (Sentinel View's
// /passcheck/apiv1/), compatible in statuses and fields:
//
//   - a request whose Content-Type is not JSON (application/json or
//     application/*+json), or whose body is not valid JSON: 400
//     {"API error": "Invalid HTTP method for URL Please use the POST method."}
//     (the reference's text, whatever the method; GET with a JSON body is
//     accepted as there);
//   - JSON that fails the schema (an object with exactly "msg_type":
//     "request" and "hash": 6 lowercase hex digits): 400 VALIDATION_ERROR
//     with a jsonschema-style message. Stricter than the reference, which
//     admits any [a-z0-9]; a JSON value that is not an object is a
//     validation error too, where the reference fails with a 500;
//   - a body over MaxAPIBody bytes: 413 VALIDATION_ERROR;
//   - no entry: 200 NO_QUERY; otherwise 200 SUCCESS with data sorted by
//     hash, each {"count", "hash", "sources"}.
//
// Only honeypot observations are reported: count is the honeypot count and
// hashes known only from an HIBP import are left out, since the page says
// "the attackers are already guessing it" and shows the sources. Their
// prevalence is served by the range API.
func (c *Corpus) APIHandler() http.Handler { return http.HandlerFunc(c.serveAPI) }

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func marshalLine(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed types are marshalled
	}
	return append(b, '\n')
}

func writeValidationError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, marshalLine(apiValidationError{Error: msg, MsgType: "response", Status: "VALIDATION_ERROR"}))
}

func (c *Corpus) serveAPI(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !isJSONType(r.Header.Get("Content-Type")) {
		writeJSON(w, http.StatusBadRequest, apiNotJSON)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAPIBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeValidationError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxAPIBody))
			return
		}
		writeJSON(w, http.StatusBadRequest, apiNotJSON)
		return
	}
	p24, msg := parseAPIRequest(body)
	if msg == errNotJSON {
		writeJSON(w, http.StatusBadRequest, apiNotJSON)
		return
	}
	if msg != "" {
		writeValidationError(w, http.StatusBadRequest, msg)
		return
	}
	entries, err := c.Lookup(p24 >> 4)
	if err != nil {
		http.Error(w, "password index unavailable", http.StatusInternalServerError)
		return
	}
	var data []apiEntry
	for _, e := range entries {
		if uint32(e.Hash[2]&0xf) != p24&0xf || e.Count == 0 || e.Sources&SourceAll == 0 {
			continue
		}
		data = append(data, apiEntry{Count: e.Count, Hash: e.Hash.String(), Sources: e.Sources.Names()})
	}
	if len(data) == 0 {
		writeJSON(w, http.StatusOK, apiNoQuery)
		return
	}
	writeJSON(w, http.StatusOK, marshalLine(apiSuccess{Data: data, MsgType: "response", Status: "SUCCESS"}))
}

const errNotJSON = "\x00not json"

// apiHashPattern is the stricter hash pattern, as quoted in messages.
const apiHashPattern = "^[0-9a-f]{6}$"

// parseAPIRequest validates a legacy API request body and returns its
// 24-bit prefix, or a jsonschema-style error message (errNotJSON if the
// body is not JSON at all).
func parseAPIRequest(body []byte) (uint32, string) {
	if !json.Valid(body) {
		return 0, errNotJSON
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return 0, errNotJSON
	}
	m, ok := v.(map[string]any)
	if !ok {
		return 0, pyRepr(v) + " is not of type 'object'"
	}
	for _, k := range []string{"msg_type", "hash"} {
		if _, ok := m[k]; !ok {
			return 0, pyRepr(k) + " is a required property"
		}
	}
	if len(m) > 2 {
		var extra []string
		for k := range m {
			if k != "msg_type" && k != "hash" {
				extra = append(extra, pyRepr(k))
			}
		}
		sort.Strings(extra)
		verb := "were"
		if len(extra) == 1 {
			verb = "was"
		}
		return 0, fmt.Sprintf("Additional properties are not allowed (%s %s unexpected)", strings.Join(extra, ", "), verb)
	}
	if mt, ok := m["msg_type"].(string); !ok || mt != "request" {
		return 0, pyRepr(m["msg_type"]) + " is not one of ['request']"
	}
	hs, ok := m["hash"].(string)
	if !ok {
		return 0, pyRepr(m["hash"]) + " is not of type 'string'"
	}
	var p uint32
	valid := len(hs) == 6
	for i := 0; valid && i < 6; i++ {
		c := hs[i]
		switch {
		case '0' <= c && c <= '9':
			p = p<<4 | uint32(c-'0')
		case 'a' <= c && c <= 'f':
			p = p<<4 | uint32(c-'a'+10)
		default:
			valid = false
		}
	}
	if !valid {
		return 0, pyRepr(hs) + " does not match '" + apiHashPattern + "'"
	}
	return p, ""
}

// pyRepr renders a decoded JSON value roughly as Python's repr, which is
// how jsonschema quotes instances in its messages.
func pyRepr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case json.Number:
		return v.String()
	case string:
		q := "'"
		if strings.Contains(v, "'") && !strings.Contains(v, `"`) {
			q = `"`
		}
		var sb strings.Builder
		sb.WriteString(q)
		for _, r := range v {
			switch {
			case r == '\\':
				sb.WriteString(`\\`)
			case string(r) == q:
				sb.WriteString(`\` + q)
			case r == '\n':
				sb.WriteString(`\n`)
			case r == '\r':
				sb.WriteString(`\r`)
			case r == '\t':
				sb.WriteString(`\t`)
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&sb, `\x%02x`, r)
			default:
				sb.WriteRune(r)
			}
		}
		sb.WriteString(q)
		return sb.String()
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = pyRepr(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyRepr(k) + ": " + pyRepr(v[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// ---- HIBP-compatible range API: GET /range/{prefix} ----

// Padding bounds: with Add-Padding, an answer is padded with fake
// suffixes of count 0 to a random size in [PadMin, PadMax] lines, as HIBP
// does, so that its length does not reveal the bucket. A bucket larger
// than PadMin still gets a random number of fakes.
const (
	PadMin = 800
	PadMax = 1000
)

const errBadPrefix = "The hash prefix was not in a valid format"

type rangeBuf struct {
	entries []Entry
	fakes   []uint64
	tmp     []uint64
	body    []byte
}

var rangePool = sync.Pool{New: func() any { return &rangeBuf{body: make([]byte, 0, 8<<10)} }}

// RangeHandler serves GET /range/{prefix}, compatible with the Pwned
// Passwords range API: the prefix is 5 hex digits of either case; the
// answer is text/plain, one "SUFFIX:COUNT" line per hash of the bucket
// (the other 35 hex digits of the SHA-1, upper case, and the honeypot and
// imported counts together), sorted, separated by CRLF. With the request
// header "Add-Padding: true" fake suffixes with count 0 pad it to 800–1000
// lines. A malformed prefix is a 400, and so is ?mode=ntlm: the corpus
// holds SHA-1 hashes only. Outside a mux pattern with {prefix}, the prefix
// is the last path segment.
func (c *Corpus) RangeHandler() http.Handler {
	cacheControl := "no-store"
	if c.opts.CacheMaxAge > 0 {
		cacheControl = "public, max-age=" + strconv.FormatInt(int64(c.opts.CacheMaxAge.Seconds()), 10)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.serveRange(w, r, cacheControl)
	})
}

func textError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

func (c *Corpus) serveRange(w http.ResponseWriter, r *http.Request, cacheControl string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		textError(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	s := r.PathValue("prefix")
	if s == "" {
		s = r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	}
	prefix, ok := ParsePrefix(s)
	if !ok {
		textError(w, http.StatusBadRequest, errBadPrefix)
		return
	}
	if r.URL.RawQuery != "" {
		switch mode := r.URL.Query().Get("mode"); strings.ToLower(mode) {
		case "", "sha1":
		case "ntlm":
			textError(w, http.StatusBadRequest, "NTLM mode is not supported: this corpus holds SHA-1 hashes only")
			return
		default:
			textError(w, http.StatusBadRequest, "Unknown mode "+strconv.Quote(mode))
			return
		}
	}
	buf := rangePool.Get().(*rangeBuf)
	defer rangePool.Put(buf)
	var err error
	buf.entries, err = c.AppendRange(buf.entries[:0], prefix)
	if err != nil {
		textError(w, http.StatusInternalServerError, "password index unavailable")
		return
	}
	buf.fakes = buf.fakes[:0]
	if strings.EqualFold(r.Header.Get("Add-Padding"), "true") {
		buf.fakes, buf.tmp = appendPadding(buf.fakes, buf.tmp, prefix, len(buf.entries))
	}
	buf.body = appendRange(buf.body[:0], buf.entries, buf.fakes)
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Cache-Control", cacheControl)
	h.Set("Vary", "Add-Padding")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Content-Length", strconv.Itoa(len(buf.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(buf.body)
	}
}

// appendPadding appends the sorted keys of fake lines, enough to bring an
// answer of real lines to a random size in [PadMin, PadMax] (or a random
// 0–20% more for a bigger bucket). A key is bytes 2..9 of a fake hash of
// the bucket, big-endian: it orders the fake among the real hashes, and
// appendRange draws the remaining digits at random. tmp is scratch space.
func appendPadding(fakes, tmp []uint64, prefix uint32, real int) ([]uint64, []uint64) {
	target := PadMin + rand.IntN(PadMax-PadMin+1)
	if real >= target {
		target = real + rand.IntN(real/5+1)
	}
	n := target - real
	top := uint64(prefix&0xf) << 60
	tmp = tmp[:0]
	for i := 0; i < n; i++ {
		tmp = append(tmp, top|rand.Uint64()>>4)
	}
	// The keys are uniform: a counting sort on their top bits, then an
	// insertion sort over the nearly sorted result, is linear.
	bits := 1
	for 1<<bits < n && bits < 11 {
		bits++
	}
	shift := uint(60 - bits)
	var counts [1<<11 + 1]int
	cnt := counts[:1<<bits+1]
	for _, k := range tmp {
		cnt[(k<<4>>4)>>shift+1]++
	}
	for i := 1; i < len(cnt); i++ {
		cnt[i] += cnt[i-1]
	}
	start := len(fakes)
	fakes = slices.Grow(fakes, n)[:start+n]
	out := fakes[start:]
	for _, k := range tmp {
		b := (k << 4 >> 4) >> shift
		out[cnt[b]] = k
		cnt[b]++
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return fakes, tmp
}

// hexPairs holds the two upper-case hex digits of every byte.
var hexPairs = func() (t [512]byte) {
	const digits = "0123456789ABCDEF"
	for i := 0; i < 256; i++ {
		t[2*i], t[2*i+1] = digits[i>>4], digits[i&0xf]
	}
	return t
}()

// appendRange renders the lines of the sorted entries and fake keys.
func appendRange(b []byte, entries []Entry, fakes []uint64) []byte {
	i, j := 0, 0
	for i < len(entries) || j < len(fakes) {
		if len(b) > 0 {
			b = append(b, '\r', '\n')
		}
		if j >= len(fakes) || i < len(entries) && binary.BigEndian.Uint64(entries[i].Hash[2:]) <= fakes[j] {
			h := &entries[i].Hash
			b = append(b, hexPairs[2*int(h[2]&0xf)+1])
			for _, x := range h[3:] {
				b = append(b, hexPairs[2*int(x):2*int(x)+2]...)
			}
			b = append(b, ':')
			b = strconv.AppendUint(b, entries[i].Total(), 10)
			i++
			continue
		}
		// 15 digits from the key, 20 random ones, count 0.
		var raw [18]byte
		binary.BigEndian.PutUint64(raw[0:], fakes[j])
		binary.BigEndian.PutUint64(raw[8:], rand.Uint64())
		binary.BigEndian.PutUint16(raw[16:], uint16(rand.Uint32()))
		j++
		b = append(b, hexPairs[2*int(raw[0]&0xf)+1])
		for _, x := range raw[1:] {
			b = append(b, hexPairs[2*int(x):2*int(x)+2]...)
		}
		b = append(b, ':', '0')
	}
	return b
}
