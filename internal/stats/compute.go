package stats

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

// Compute runs the queries of one resource against st as of now, with no
// cache. settle is the delay granted to the rollups (see Period.Window).
func Compute(ctx context.Context, st Querier, req Request, now time.Time, settle time.Duration) (Result, error) {
	return compute(ctx, st, req, now, settle, -1)
}

// compute is Compute reading from precision prec instead of the period's
// (prec < 0), which the tests use to check rollups against raw rows.
func compute(ctx context.Context, st Querier, req Request, now time.Time, settle time.Duration, prec store.Precision) (Result, error) {
	f, err := Resolve(req)
	if err != nil {
		return Result{}, err
	}
	return computeFetch(ctx, st, f, now, settle, prec)
}

// computeFetch computes a resolved request (from precision prec when
// prec ≥ 0).
func computeFetch(ctx context.Context, st Querier, f Fetch, now time.Time, settle time.Duration, prec store.Precision) (Result, error) {
	res, p, req := f.Resource, f.Period, f.Request
	if prec < 0 {
		prec = p.Precision
	}
	start, end := p.Window(now, settle)
	out := Result{Name: res.Name, Resource: res, Period: p, Computed: now}
	if res.Param == NeedsDevices && len(req.DeviceTokens) == 0 {
		out.NoDevices = true
		return out, nil
	}
	q := store.Query{
		Table: res.Table, Precision: prec, From: start, To: end,
		Measure: res.Measure, GroupBy: res.GroupBy,
		NonEmpty: res.Table == store.Passwords,
	}
	switch res.Param {
	case NeedsIP:
		q.IP = req.IP
	case NeedsPassword:
		pw := req.Password
		q.Password = &pw
	case NeedsDevices:
		q.DeviceTokens = req.DeviceTokens
	}
	var err error
	switch res.Shape {
	case Graph:
		out.Graph, err = graph(ctx, st, q, p, start, end)
	case MultiGraph:
		out.Multi, err = multiGraph(ctx, st, q, res, p, start, end)
	case List:
		out.List, err = list(ctx, st, q, res)
	case Map:
		out.Countries, err = countryMap(ctx, st, q)
	case Seen:
		out.Seen, err = seen(ctx, st, q, p)
	default:
		err = fmt.Errorf("stats: resource %s has no shape", res.Name)
	}
	if err != nil {
		return Result{}, fmt.Errorf("%s/%s: %w", res.Name, p.Name, err)
	}
	return out, nil
}

// MaxPasswordLen bounds the password a request may name; probes never
// report longer ones usefully, and it bounds what a visitor can make the
// server hash and query.
const MaxPasswordLen = 1024

func graph(ctx context.Context, st Querier, q store.Query, p Period, start, end time.Time) ([]GraphPoint, error) {
	q.Bucket = p.Bucket
	q.GroupBy = nil
	rows, err := st.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	byBucket := make(map[int64]int64, len(rows))
	for _, r := range rows {
		byBucket[r.Bucket.Unix()] += r.Value
	}
	buckets := p.Buckets(start, end)
	out := make([]GraphPoint, len(buckets))
	for i, b := range buckets {
		out[i] = GraphPoint{Bucket: p.BucketLabel(b), Count: byBucket[b.Unix()]}
	}
	return out, nil
}

// multiGraph picks the top groups over the whole window, then counts them
// per bucket, as the reference does; labels keep the order of the top list
// (by value, then key), so they are deterministic.
func multiGraph(ctx context.Context, st Querier, q store.Query, res *Resource, p Period, start, end time.Time) (TopSeries, error) {
	top := q
	top.Limit = res.Limit + 1 // room for a dropped unknown country
	rows, err := st.Query(ctx, top)
	if err != nil {
		return TopSeries{}, err
	}
	rows = dropUnknown(res, rows, res.Limit)
	out := TopSeries{Labels: make([]string, 0, len(rows))}
	index := make(map[string]int, len(rows))
	for i, r := range rows {
		out.Labels = append(out.Labels, label(res, r.Keys))
		index[strings.Join(r.Keys, "\x00")] = i
		q.Only = append(q.Only, r.Keys)
	}
	buckets := p.Buckets(start, end)
	out.Buckets = make([]string, len(buckets))
	out.Counts = make([][]int64, len(buckets))
	cells := make([]int64, len(buckets)*len(rows))
	for i, b := range buckets {
		out.Buckets[i] = p.BucketLabel(b)
		out.Counts[i] = cells[i*len(rows) : (i+1)*len(rows) : (i+1)*len(rows)]
	}
	if len(rows) > 0 {
		q.Bucket = p.Bucket
		series, err := st.Query(ctx, q)
		if err != nil {
			return TopSeries{}, err
		}
		for _, r := range series {
			i := int(r.Bucket.Sub(start) / p.Bucket)
			j, ok := index[strings.Join(r.Keys, "\x00")]
			if ok && i >= 0 && i < len(buckets) {
				out.Counts[i][j] += r.Value
			}
		}
	}
	return out, nil
}

func list(ctx context.Context, st Querier, q store.Query, res *Resource) ([]ListRow, error) {
	q.Limit = res.Limit + 1
	rows, err := st.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	rows = dropUnknown(res, rows, res.Limit)
	out := make([]ListRow, 0, len(rows))
	for _, r := range rows {
		fields := r.Keys[:len(res.Fields):len(res.Fields)]
		if len(res.Fields) == 1 {
			fields = []string{label(res, r.Keys)}
		}
		out = append(out, ListRow{Fields: fields, Count: r.Value})
	}
	return out, nil
}

func countryMap(ctx context.Context, st Querier, q store.Query) (map[string]int64, error) {
	rows, err := st.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		if r.Keys[0] != "" {
			out[r.Keys[0]] += r.Value
		}
	}
	return out, nil
}

// dropUnknown removes the unknown country from country rankings (the
// reference's NULL country broke its pages) and the unknown address "::"
// (password and port rows stored before they carried one) from address
// rankings, and keeps at most limit rows.
func dropUnknown(res *Resource, rows []store.Row, limit int) []store.Row {
	if len(res.GroupBy) == 1 && res.GroupBy[0] == store.DimCountry {
		kept := rows[:0]
		for _, r := range rows {
			if r.Keys[0] != "" {
				kept = append(kept, r)
			}
		}
		rows = kept
	}
	if i := slices.Index(res.GroupBy, store.DimIP); i >= 0 {
		kept := rows[:0]
		for _, r := range rows {
			if r.Keys[i] != "::" {
				kept = append(kept, r)
			}
		}
		rows = kept
	}
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit]
	}
	return rows
}

// seen finds the first and last bucket of the window with rows, at the
// resolution of the period's precision (a minute for raw rows): a period
// has at most a few hundred such buckets.
func seen(ctx context.Context, st Querier, q store.Query, p Period) (*SeenData, error) {
	q.Bucket = p.Precision.Width()
	if q.Bucket == 0 {
		q.Bucket = time.Minute
	}
	q.GroupBy = nil
	rows, err := st.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	var out *SeenData
	for _, r := range rows {
		if r.Value <= 0 {
			continue
		}
		if out == nil {
			out = &SeenData{First: r.Bucket, Last: r.Bucket.Add(q.Bucket)}
		}
		out.First = minTime(out.First, r.Bucket)
		if end := r.Bucket.Add(q.Bucket); end.After(out.Last) {
			out.Last = end
		}
	}
	if out == nil {
		return nil, nil
	}
	// The last bucket may still be running (raw rows): never in the future.
	out.Last = minTime(out.Last, q.To)
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// label is the display form of a group: ports as "TCP/22", others their
// keys joined by " / ".
func label(res *Resource, keys []string) string {
	if len(res.GroupBy) == 2 && res.GroupBy[0] == store.DimProtocol && res.GroupBy[1] == store.DimPort {
		return keys[0] + "/" + keys[1]
	}
	return strings.Join(keys, " / ")
}
