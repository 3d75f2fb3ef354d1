package sqlbuild

import (
	"context"
	"fmt"
	"slices"

	"github.com/dynfw/sentinel/internal/store"
)

// First appearances: exact distinct attackers per graph bucket without
// reading every address.
//
// A graph wider than its precision (the year's 14-day buckets of daily
// rollups, the week's 3-hour buckets of hourly ones) needs, per graph
// bucket, the number of distinct addresses over several rollup buckets.
// Reading the per-address rollup for that touches every (address, bucket)
// row of the window. Instead, each rollup bucket records, for the
// addresses it holds, how many buckets back each was last seen (its lag;
// 0 when not within the horizon): incidents_first_<p> (bucket, lag, n).
// An address is counted in the graph bucket starting at g exactly once, in
// the first rollup bucket b >= g where it appears, which is the one whose
// lag reaches back before g: lag = 0 or lag*w > b - g. So the distinct
// count of a graph bucket is a sum over at most (horizon+1) rows per
// rollup bucket. incidents_firstc_<p> does the same per (address, country)
// for distinct attackers per country.
//
// The tables are derived from the per-address rollup whenever it is
// written (roll recomputes the first appearances of the buckets it wrote
// and of the horizon after them), so they are exactly as current as the
// rollup itself.

// horizon is how many buckets back a lag reaches at precision p: graph
// buckets of up to horizon+1 rollup buckets are served from the first
// appearances (6h and 1d: 30 minutes of 15; 1w: 3 hours of 1; 3m and 1y:
// 2 and 14 days of 1).
func horizon(p store.Precision) int64 {
	switch p {
	case store.Quarter:
		return 4
	case store.Hour:
		return 6
	}
	return 16
}

// firstTables are the first-appearance tables of p: per address, and per
// (address, country).
func firstTables(p store.Precision) (plain, byCountry string) {
	return "incidents_first" + suffix(p), "incidents_firstc" + suffix(p)
}

// firsts recomputes the first appearances of buckets [a, b) of precision p
// from the per-address rollup, inside tx.
func (e *Engine) firsts(ctx context.Context, tx Conn, p store.Precision, a, b int64) error {
	if a >= b {
		return nil
	}
	w, k := width(p), horizon(p)
	src := "incidents_ip" + suffix(p)
	plain, byCountry := firstTables(p)
	lag := fmt.Sprintf("CASE WHEN prev IS NULL OR bucket - prev > %d THEN 0 ELSE (bucket - prev) / %d END", k*w, w)
	ph1, ph2, ph3 := e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3)
	for _, s := range []struct{ table, keys, part, pairs string }{
		// An address may have rows under two countries in a bucket (its
		// GeoIP answer changed): it is one address.
		{plain, "", "ip", "SELECT DISTINCT bucket, ip FROM " + src},
		{byCountry, "country, ", "ip, country", "SELECT bucket, ip, country FROM " + src},
	} {
		if _, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE bucket >= %s AND bucket < %s", s.table, ph1, ph2), a, b); err != nil {
			return fmt.Errorf("clear %s: %w", s.table, err)
		}
		q := fmt.Sprintf(`INSERT INTO %[1]s (bucket, %[2]slag, n)
SELECT bucket, %[2]slag, COUNT(*) FROM (
  SELECT bucket, %[2]s%[3]s AS lag FROM (
    SELECT bucket, %[2]sLAG(bucket) OVER (PARTITION BY %[4]s ORDER BY bucket) AS prev
    FROM (%[5]s WHERE bucket >= %[6]s AND bucket < %[7]s) pairs
  ) withprev WHERE bucket >= %[8]s
) lags GROUP BY bucket, %[2]slag`, s.table, s.keys, lag, s.part, s.pairs, ph1, ph2, ph3)
		if _, err := tx.Exec(ctx, q, a-k*w, b, a); err != nil {
			return fmt.Errorf("first appearances %s: %w", s.table, err)
		}
	}
	return nil
}

// backfillFirsts fills the first appearances of a database whose
// per-address rollups predate them (migration 2), in bounded transactions.
func (e *Engine) backfillFirsts(ctx context.Context) error {
	for _, p := range Rollups {
		plain, _ := firstTables(p)
		src := "incidents_ip" + suffix(p)
		_, has, err := scalar(ctx, e.B, "SELECT MIN(bucket) FROM "+plain)
		if err != nil {
			return err
		}
		if has {
			continue
		}
		lo, ok, err := scalar(ctx, e.B, "SELECT MIN(bucket) FROM "+src)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		hi, _, err := scalar(ctx, e.B, "SELECT MAX(bucket) FROM "+src)
		if err != nil {
			return err
		}
		for a := lo; a <= hi; a += batchSpan(p) {
			err := e.B.Tx(ctx, func(tx Conn) error {
				if _, err := e.begin(ctx, tx, store.Incidents); err != nil {
					return err
				}
				return e.firsts(ctx, tx, p, a, min(a+batchSpan(p), hi+width(p)))
			})
			if err != nil {
				return fmt.Errorf("store: first appearances at %v: %w", p, err)
			}
		}
	}
	return nil
}

// firstQuery returns the SQL of q answered from the first appearances, or
// ok false when they cannot answer it: a distinct count of incidents per
// graph bucket (optionally per country), at a rollup precision, with a
// graph bucket within the horizon and no filter but Only.
func firstQuery(d Dialect, q store.Query, pl plan) (sql string, args []any, ok bool) {
	if q.Table != store.Incidents || q.Measure != store.DistinctIPs || !pl.rollup || pl.bucket <= 0 ||
		q.IP.IsValid() || q.DeviceTokens != nil || q.Password != nil {
		return "", nil, false
	}
	w := width(q.Precision)
	if pl.bucket%w != 0 || pl.bucket/w-1 > horizon(q.Precision) {
		return "", nil, false
	}
	byCountry := false
	switch {
	case len(q.GroupBy) == 0:
	case slices.Equal(q.GroupBy, []store.Dim{store.DimCountry}):
		byCountry = true
	default:
		return "", nil, false
	}
	plain, perCountry := firstTables(q.Precision)
	table := plain
	if byCountry {
		table = perCountry
	}
	p := &ph{d: d}
	f, gw := p.add(pl.from), p.add(pl.bucket)
	start := fmt.Sprintf("(%s + ((t.bucket - %s) / %s) * %s)", f, f, gw, gw)
	sel := start + " AS b"
	group, order := "1", "b"
	if byCountry {
		sel += ", t.country" + d.Collate + " AS k0"
		group, order = "1, 2", "b, k0"
	}
	where := fmt.Sprintf("t.bucket >= %s AND t.bucket < %s AND (t.lag = 0 OR t.lag * %s > t.bucket - %s)",
		p.add(pl.from), p.add(pl.to), p.add(w), start)
	if q.Only != nil {
		if len(q.Only) == 0 || !byCountry {
			return "", nil, false
		}
		vals := make([]any, len(q.Only))
		for i, k := range q.Only {
			vals[i] = k[0]
		}
		where += " AND t.country IN (" + placeholders(p, vals) + ")"
	}
	sql = fmt.Sprintf("SELECT %s, CAST(SUM(t.n) AS BIGINT) AS v FROM %s t WHERE %s GROUP BY %s ORDER BY %s", sel, table, where, group, order)
	return sql, p.args, true
}
