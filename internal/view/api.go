package view

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dynfw/sentinel/internal/stats"
)

// APIDefaultPeriod is the period of /api/resource when the request names
// none: "1y", as in the reference API (§1.2), so that its clients get the
// same answer; the pages, which always send a period, default to 1w.
const APIDefaultPeriod = "1y"

// apiResource serves GET /api/resource?name=&period=[&ip=][&password=]
// [&format=csv]. Unlike the reference, which always answered 200, errors
// carry their status: 400 for a missing name or a bad period or parameter,
// 404 for an unknown resource, 429 when rate-limited, 503 (with
// Retry-After) while the resource is still being computed.
func (v *View) apiResource(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("name")
	if name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "No resource name provided."})
		return
	}
	res := stats.Catalog[name]
	if res == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Unknown resource '" + cut(name, 64) + "'"})
		return
	}
	lim := v.general
	if res.Param != stats.NoParam {
		lim = v.onDemand
	}
	if !v.allow(w, r, lim) {
		return
	}
	req := stats.Request{Name: name, Period: q.Get("period")}
	if req.Period == "" {
		req.Period = APIDefaultPeriod
	}
	period, ok := stats.LookupPeriod(req.Period)
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Not a valid period"})
		return
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "format must be json or csv"})
		return
	}
	private, noDevices := false, false
	switch res.Param {
	case stats.NeedsIP:
		if req.IP, ok = parseAddr(q.Get("ip")); !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Not a valid IP address"})
			return
		}
	case stats.NeedsPassword:
		pw, has := q["password"]
		if !has || pw[0] == "" || len(pw[0]) > maxPassword {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Missing or too long password"})
			return
		}
		req.Password = pw[0]
	case stats.NeedsDevices:
		// From the session only; a "token" parameter is ignored.
		private = true
		if sess, ok := v.sessions.load(r); ok {
			req.DeviceTokens = sess.Tokens
		}
		noDevices = len(req.DeviceTokens) == 0
	}
	result := stats.Result{Name: name, Resource: res, Period: period, NoDevices: true}
	if !noDevices {
		f, err := res.Fetch(req, period)
		if err != nil {
			v.apiError(w, r, name, err, false)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), v.o.APIWait)
		result, err = v.o.Source.Fetch(ctx, f)
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		if err != nil {
			v.apiError(w, r, name, err, timedOut)
			return
		}
	}
	cc := "public, max-age=" + strconv.Itoa(int(period.MaxAge.Seconds()))
	if private {
		cc = "private, max-age=" + strconv.Itoa(int(period.MaxAge.Seconds()))
		w.Header().Add("Vary", "Cookie")
	}
	w.Header().Set("Cache-Control", cc)
	if format == "csv" {
		writeCSV(w, &result)
		return
	}
	// {"resource_name": name, "data": data}, as encoding/json wrote it.
	b := make([]byte, 0, 4096)
	b = append(b, `{"resource_name":`...)
	b = appendJSONString(b, name)
	b = append(b, `,"data":`...)
	b = AppendDataJSON(b, &result)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

func (v *View) apiError(w http.ResponseWriter, r *http.Request, name string, err error, timedOut bool) {
	switch {
	case errors.Is(err, stats.ErrUnknownResource):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Unknown resource '" + name + "'"})
	case errors.Is(err, stats.ErrBadPeriod):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Not a valid period"})
	case errors.Is(err, stats.ErrBadParam):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Bad parameter"})
	case timedOut || errors.Is(err, context.DeadlineExceeded):
		if r.Context().Err() != nil {
			return // the client left
		}
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "Data is being computed; retry in a moment."})
	default:
		v.log.Warn("view: resource failed", slog.String("resource", name), slog.Any("err", err))
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "Internal error"})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	if code != http.StatusOK {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// csvSafe defuses CSV injection: a spreadsheet evaluates a cell that
// starts with = + - @ (or tab or CR) as a formula, and attackers choose
// passwords and usernames. Such a start is prefixed with a quote (OWASP),
// at the beginning of the cell and after every separator a spreadsheet
// might split on (comma, semicolon, tab, CR, LF), so that `x;=1+1` stays
// text where ";" separates cells too.
func csvSafe(s string) string {
	if !strings.ContainsAny(s, "=+-@\t\r") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	for i := 0; i < len(s); i++ {
		if (i == 0 || strings.IndexByte(",;\t\r\n", s[i-1]) >= 0) && strings.IndexByte("=+-@\t\r", s[i]) >= 0 {
			b.WriteByte('\'')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// csvWriter writes RFC 4180 rows of csvSafe cells. Unlike encoding/csv,
// it also quotes a cell that holds a semicolon or a tab, which
// spreadsheets in many locales take for the separator.
type csvWriter struct{ w *bufio.Writer }

func newCSVWriter(w io.Writer) *csvWriter { return &csvWriter{w: bufio.NewWriter(w)} }

func (c *csvWriter) row(cells ...string) {
	for i, s := range cells {
		if i > 0 {
			c.w.WriteByte(',')
		}
		s = csvSafe(s)
		if s == "" || !strings.ContainsAny(s, ",;\t\r\n\"") && s[0] != ' ' {
			c.w.WriteString(s)
			continue
		}
		c.w.WriteByte('"')
		c.w.WriteString(strings.ReplaceAll(s, `"`, `""`))
		c.w.WriteByte('"')
	}
	c.w.WriteByte('\n')
}

func (c *csvWriter) flush() error { return c.w.Flush() }

// writeCSV writes any shape as CSV: Graph "bucket,count"; MultiGraph
// "bucket" and one column per label (in the resource's label order);
// List its fields and "count"; Map "country,count" by count descending;
// Seen "first,last" (RFC 3339, no row when never seen).
func writeCSV(w http.ResponseWriter, r *stats.Result) {
	res := r.Resource
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+res.Name+"_"+r.Period.Name+`.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := newCSVWriter(w)
	row := cw.row
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	switch res.Shape {
	case stats.Graph:
		row("bucket", "count")
		for _, p := range r.Graph {
			row(p.Bucket, i64(p.Count))
		}
	case stats.MultiGraph:
		g := &r.Multi
		row(append([]string{"bucket"}, g.Labels...)...)
		for i, b := range g.Buckets {
			cells := []string{b}
			for _, n := range g.Counts[i] {
				cells = append(cells, i64(n))
			}
			row(cells...)
		}
	case stats.List:
		row(append(append([]string{}, res.Fields...), "count")...)
		for _, it := range r.List {
			row(append(append(make([]string, 0, len(it.Fields)+1), it.Fields...), i64(it.Count))...)
		}
	case stats.Map:
		row("country", "count")
		for _, m := range mapRows(r.Countries) {
			row(m.Code, i64(m.Count))
		}
	case stats.Seen:
		row("first", "last")
		if sd := r.Seen; sd != nil && !sd.First.IsZero() {
			row(sd.First.UTC().Format(time.RFC3339), sd.Last.UTC().Format(time.RFC3339))
		}
	}
	cw.flush()
}
