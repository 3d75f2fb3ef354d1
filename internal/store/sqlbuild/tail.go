package sqlbuild

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

// The tail: queries at a rollup precision that reach past its watermark.
//
// A rollup bucket exists only once the bucket is over (and the grace has
// passed), so a query of a period that ends now would miss its newest
// minutes, and with coarse precisions its newest day. The store answers
// such a query in segments of time: the rollup of the query's precision
// up to its watermark (the finished buckets), then each finer rollup up to
// its own watermark, then the raw rows up to the query's end. Segments are
// disjoint and each reads a table that is complete for its range, so the
// answer equals the raw rows' (the conformance suite checks it against its
// model). The segments are one UNION ALL statement, one snapshot.
//
// The fast paths keep working for the finished part: a sliding window that
// starts where the query starts answers for its range and the tail is added
// in one more statement (each key's window total joined in, so that a top
// list stays exact); first appearances count the distinct attackers of
// the finished part of every graph bucket, and the tail adds its addresses
// that the per-address rollup has not seen in the same graph bucket (an
// index lookup each), so the last graph bucket costs what the tail holds,
// not what its finished days hold.

// seg is one segment: rows of [from, to) at precision prec.
type seg struct {
	prec     store.Precision
	from, to int64
}

// segments splits [a, to) at precision p: p's rollup up to split, then the
// finer rollups up to their watermarks, then raw rows. a and split are
// aligned to p's width.
func segments(st map[[2]int]state, t store.Table, p store.Precision, a, split, to int64) []seg {
	var out []seg
	if split > a {
		out = append(out, seg{p, a, split})
	}
	cur := max(a, split)
	for k := p - 1; k >= store.Quarter; k-- {
		e := min(floorTo(to, width(k)), st[[2]int{int(t), int(k)}].watermark)
		if e > cur {
			out = append(out, seg{k, cur, e})
			cur = e
		}
	}
	if to > cur {
		out = append(out, seg{store.Raw, cur, to})
	}
	return out
}

// unionQuery writes q over segs as one statement; origin is the start of
// the graph buckets. Columns as buildQuery's: [b,] k0..kn, v.
func unionQuery(d Dialect, p *ph, q store.Query, segs []seg, origin int64, ids []int64) (string, bool, error) {
	bucket := int64(q.Bucket.Seconds())
	distinct := q.Measure == store.DistinctIPs
	parts, empty, err := unionParts(p, q, segs, ids)
	if err != nil || empty {
		return "", empty, err
	}
	var sel, group, order []string
	if bucket > 0 {
		f, w := p.add(origin), p.add(bucket)
		sel = append(sel, fmt.Sprintf("%s + ((u.tm - %s) / %s) * %s AS b", f, f, w, w))
		group = append(group, "1")
		order = append(order, "b")
	}
	for i, dim := range q.GroupBy {
		col := "u.k" + strconv.Itoa(i)
		if isText(dim) {
			col += d.Collate
		}
		sel = append(sel, col+" AS k"+strconv.Itoa(i))
		group = append(group, strconv.Itoa(len(sel)))
	}
	if distinct {
		sel = append(sel, "COUNT(DISTINCT u.ip) AS v")
	} else {
		sel = append(sel, "COALESCE(CAST(SUM(u.n) AS BIGINT), 0) AS v")
	}
	var b strings.Builder
	b.WriteString("SELECT " + strings.Join(sel, ", ") + " FROM (" + parts + ") u")
	if len(group) > 0 {
		b.WriteString(" GROUP BY " + strings.Join(group, ", "))
	}
	if bucket <= 0 && len(q.GroupBy) > 0 {
		order = append(order, "v DESC")
	}
	for i := range q.GroupBy {
		order = append(order, "k"+strconv.Itoa(i))
	}
	if len(order) > 0 {
		b.WriteString(" ORDER BY " + strings.Join(order, ", "))
	}
	if bucket <= 0 && q.Limit > 0 {
		b.WriteString(" LIMIT " + p.add(int64(q.Limit)))
	}
	return b.String(), false, nil
}

// unionParts is the UNION ALL of q's rows over segs, with the columns tm
// (time or bucket start), k0..kn, ip (for distinct counts) and n.
func unionParts(p *ph, q store.Query, segs []seg, ids []int64) (string, bool, error) {
	distinct := q.Measure == store.DistinctIPs
	var parts []string
	for _, s := range segs {
		sq := q
		sq.Precision, sq.From, sq.To = s.prec, unix(s.from), unix(s.to)
		sq.Bucket, sq.Limit = 0, 0
		pl, err := check(&sq)
		if err != nil {
			return "", false, err
		}
		cols := []string{"t." + pl.timeCol + " AS tm"}
		for i, dim := range q.GroupBy {
			cols = append(cols, dimCol(dim)+" AS k"+strconv.Itoa(i))
		}
		if distinct {
			cols = append(cols, "t.ip AS ip")
		}
		if pl.rollup {
			cols = append(cols, "t.n AS n")
		} else {
			cols = append(cols, "1 AS n")
		}
		where := []string{fmt.Sprintf("t.%s >= %s", pl.timeCol, p.add(s.from)), fmt.Sprintf("t.%s < %s", pl.timeCol, p.add(s.to))}
		more, empty, err := filters(p, q, ids)
		if err != nil || empty {
			return "", empty, err
		}
		where = append(where, more...)
		part := "SELECT " + strings.Join(cols, ", ") + " FROM " + pl.table + " t"
		if pl.joinDev {
			part += " JOIN devices d ON d.id = t.device_id"
		}
		parts = append(parts, part+" WHERE "+strings.Join(where, " AND "))
	}
	return strings.Join(parts, " UNION ALL "), false, nil
}

// freshQuery answers a query at a rollup precision whose range ends after
// the precision's watermark (see the top of this file).
func (e *Engine) freshQuery(ctx context.Context, q store.Query, pl plan, st map[[2]int]state, ids []int64) ([]store.Row, error) {
	w := width(q.Precision)
	split := min(max(floorTo(st[[2]int{int(q.Table), int(q.Precision)}].watermark, w), pl.from), pl.to)

	// A sliding window for the finished part, and the tail joined in.
	if wt, ok := winSpecOf(q); ok && pl.bucket <= 0 && split > pl.from {
		wend, found, err := scalar(ctx, e.B, fmt.Sprintf("SELECT MAX(wend) FROM window_state WHERE tbl = %s AND prec = %s AND wstart = %s AND wend > wstart AND wend <= %s",
			e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3), e.D.Placeholder(4)), int64(q.Table), int64(q.Precision), pl.from, split)
		if err != nil {
			return nil, fmt.Errorf("store query: %w", err)
		}
		if found {
			wpl := pl
			wpl.to = wend
			head, ok, err := e.windowQuery(ctx, q, wpl)
			if err != nil {
				return nil, fmt.Errorf("store query: %w", err)
			}
			if ok {
				tail, err := e.windowTail(ctx, q, wt, pl.from, segments(st, q.Table, q.Precision, wend, split, pl.to))
				if err != nil {
					return nil, err
				}
				// The window still holds that range: head and tail agree.
				if id, ok, err := scalar(ctx, e.B, fmt.Sprintf("SELECT MIN(id) FROM window_state WHERE tbl = %s AND prec = %s AND wstart = %s AND wend = %s",
					e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3), e.D.Placeholder(4)), int64(q.Table), int64(q.Precision), pl.from, wend); err != nil {
					return nil, fmt.Errorf("store query: %w", err)
				} else if ok && id > 0 {
					return mergeTop(q, head, tail), nil
				}
			}
		}
	}

	p := &ph{d: e.D}
	// First appearances for the finished part, and the tail's addresses
	// that the rollup has not seen in their graph bucket.
	if pl.bucket > 0 && split > pl.from {
		fpl := pl
		fpl.to = split
		if sql, args, ok := firstQuery(e.D, q, fpl); ok {
			head, err := scanRows(ctx, e.B, sql, args, q.GroupBy, true)
			if err != nil {
				return nil, err
			}
			tail, err := e.newInTail(ctx, q, pl, segments(st, q.Table, q.Precision, split, split, pl.to), split)
			if err != nil {
				return nil, err
			}
			return mergeBuckets(q, head, tail), nil
		}
	}
	sql, empty, err := unionQuery(e.D, p, q, segments(st, q.Table, q.Precision, pl.from, split, pl.to), pl.from, ids)
	if err != nil || empty {
		return nil, err
	}
	return scanRows(ctx, e.B, sql, p.args, q.GroupBy, q.Bucket > 0)
}

func unix(s int64) time.Time { return time.Unix(s, 0).UTC() }

// newInTail counts, per graph bucket (and country), the distinct
// addresses of the tail segments that have no row in the per-address
// rollup of q's precision between the graph bucket's start and split:
// added to the first appearances of [from, split), the exact distinct
// count. One index lookup per tail address.
func (e *Engine) newInTail(ctx context.Context, q store.Query, pl plan, segs []seg, split int64) ([]store.Row, error) {
	if len(segs) == 0 {
		return nil, nil
	}
	p := &ph{d: e.D}
	parts, empty, err := unionParts(p, q, segs, nil)
	if err != nil || empty {
		return nil, err
	}
	f, w := p.add(pl.from), p.add(pl.bucket)
	start := fmt.Sprintf("(%s + ((u.tm - %s) / %s) * %s)", f, f, w, w)
	sel, group, order := start+" AS b", "1", "b"
	match := "r.ip = u.ip"
	if len(q.GroupBy) == 1 {
		sel += ", u.k0" + e.D.Collate + " AS k0"
		group, order = "1, 2", "b, k0"
		match += " AND r.country = u.k0"
	}
	sql := fmt.Sprintf("SELECT %s, COUNT(DISTINCT u.ip) AS v FROM (%s) u WHERE NOT EXISTS (SELECT 1 FROM incidents_ip%s r WHERE %s AND r.bucket >= %s AND r.bucket < %s) GROUP BY %s ORDER BY %s",
		sel, parts, suffix(q.Precision), match, start, p.add(split), group, order)
	return scanRows(ctx, e.B, sql, p.args, q.GroupBy, true)
}

// mergeBuckets adds two bucketed results, in the order of a query:
// bucket, then keys.
func mergeBuckets(q store.Query, a, b []store.Row) []store.Row {
	byKey := make(map[string]int, len(a)+len(b))
	out := make([]store.Row, 0, len(a)+len(b))
	for _, rs := range [][]store.Row{a, b} {
		for _, r := range rs {
			k := strconv.FormatInt(r.Bucket.Unix(), 10) + "\x00" + strings.Join(r.Keys, "\x00")
			if i, ok := byKey[k]; ok {
				out[i].Value += r.Value
				continue
			}
			byKey[k] = len(out)
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(x, y store.Row) int {
		if c := x.Bucket.Compare(y.Bucket); c != 0 {
			return c
		}
		for i, d := range q.GroupBy {
			if c := compareKey(d, x.Keys[i], y.Keys[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	return out
}

// winSpec is the window table of a query shape: its key columns in the
// order of the query's GroupBy and its total.
type winSpec struct {
	table string
	keys  []string
	total string
	// distinct: totals are attackers per country, and the tail adds the
	// (address, country) pairs new to win_ipc.
	distinct bool
}

// winSpecOf returns the window table that answers q's shape (the shapes
// of windowQuery).
func winSpecOf(q store.Query) (winSpec, bool) {
	if q.IP.IsValid() || q.DeviceTokens != nil || q.Password != nil || q.Only != nil || q.Bucket > 0 {
		return winSpec{}, false
	}
	g := q.GroupBy
	D := func(d ...store.Dim) []store.Dim { return d }
	switch {
	case q.Table == store.Incidents && q.Measure == store.Count && slices.Equal(g, D(store.DimIP)):
		return winSpec{"win_ip", []string{"ip"}, "n", false}, true
	case q.Table == store.Incidents && q.Measure == store.DistinctIPs && slices.Equal(g, D(store.DimCountry)):
		return winSpec{"win_country", []string{"country"}, "attackers", true}, true
	case q.Table == store.Ports && q.Measure == store.Count && slices.Equal(g, D(store.DimProtocol, store.DimPort)):
		return winSpec{"win_port", []string{"protocol", "port"}, "n", false}, true
	case q.Table == store.Ports && q.Measure == store.Count && slices.Equal(g, D(store.DimPort, store.DimProtocol)):
		return winSpec{"win_port", []string{"port", "protocol"}, "n", false}, true
	case q.Table == store.Passwords && q.Measure == store.Count && slices.Equal(g, D(store.DimPassword)):
		return winSpec{"win_password", []string{"password"}, "n", false}, true
	case q.Table == store.Passwords && q.Measure == store.Count && slices.Equal(g, D(store.DimUsername)):
		return winSpec{"win_username", []string{"username"}, "n", false}, true
	case q.Table == store.Passwords && q.Measure == store.Count && slices.Equal(g, D(store.DimUsername, store.DimPassword)):
		return winSpec{"win_combo", []string{"username", "password"}, "n", false}, true
	case q.Table == store.Passwords && q.Measure == store.Count && slices.Equal(g, D(store.DimPassword, store.DimUsername)):
		return winSpec{"win_combo", []string{"password", "username"}, "n", false}, true
	}
	return winSpec{}, false
}

// windowTail returns, for every key with rows in the tail segments, its
// total over window + tail. The window is the one whose range ends where
// the segments start (found again by its range, so a window that moved
// meanwhile answers nothing here and the caller's merge stays exact: its
// head was read under the same check).
func (e *Engine) windowTail(ctx context.Context, q store.Query, wt winSpec, from int64, segs []seg) ([]store.Row, error) {
	if len(segs) == 0 {
		return nil, nil
	}
	p := &ph{d: e.D}
	inner := q
	inner.Limit = 0
	if wt.distinct {
		inner.GroupBy, inner.Measure = []store.Dim{store.DimCountry, store.DimIP}, store.Count
	}
	sql, empty, err := unionQuery(e.D, p, inner, segs, 0, nil)
	if err != nil || empty {
		return nil, err
	}
	win := fmt.Sprintf("(SELECT MIN(id) FROM window_state WHERE tbl = %s AND prec = %s AND wstart = %s AND wend = %s)",
		p.add(int64(q.Table)), p.add(int64(q.Precision)), p.add(from), p.add(segs[0].from))
	var keys, match []string
	for i, c := range wt.keys {
		k := "x.k" + strconv.Itoa(i)
		keys = append(keys, k)
		match = append(match, "w."+c+" = "+k)
	}
	total := fmt.Sprintf("COALESCE((SELECT w.%s FROM %s w WHERE w.win = %s AND %s), 0)", wt.total, wt.table, win, strings.Join(match, " AND "))
	var full string
	if wt.distinct {
		full = fmt.Sprintf("SELECT x.k0, COUNT(*) + %s AS v FROM (%s) x WHERE NOT EXISTS (SELECT 1 FROM win_ipc w WHERE w.win = %s AND w.country = x.k0 AND w.ip = x.k1) GROUP BY x.k0",
			total, sql, win)
	} else {
		full = fmt.Sprintf("SELECT %s, x.v + %s AS v FROM (%s) x", strings.Join(keys, ", "), total, sql)
	}
	return scanRows(ctx, e.B, full, p.args, q.GroupBy, false)
}

// mergeTop merges a window's top rows with the totals of the keys the
// tail touched, then orders and cuts as a query would. Exact: a key in
// neither has its window total, at most the head's last value, and the
// head's keys of that value sort before it.
func mergeTop(q store.Query, head, tail []store.Row) []store.Row {
	byKey := make(map[string]int, len(head)+len(tail))
	out := make([]store.Row, 0, len(head)+len(tail))
	for _, rs := range [][]store.Row{head, tail} {
		for _, r := range rs {
			k := strings.Join(r.Keys, "\x00")
			if i, ok := byKey[k]; ok {
				out[i] = r
				continue
			}
			byKey[k] = len(out)
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b store.Row) int {
		if c := cmp.Compare(b.Value, a.Value); c != 0 {
			return c
		}
		for i, d := range q.GroupBy {
			if c := compareKey(d, a.Keys[i], b.Keys[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

// compareKey orders keys as the databases do: addresses by their stored
// bytes, ports as numbers, text bytewise.
func compareKey(d store.Dim, a, b string) int {
	switch d {
	case store.DimPort:
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return cmp.Compare(x, y)
	case store.DimIP:
		x, errx := netip.ParseAddr(a)
		y, erry := netip.ParseAddr(b)
		if errx != nil || erry != nil {
			return strings.Compare(a, b)
		}
		return bytes.Compare(IPBytes(x), IPBytes(y))
	}
	return strings.Compare(a, b)
}
