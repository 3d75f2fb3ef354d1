package sqlbuild

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

// The rollup algorithm.
//
// rollup_state holds, per table and precision, the watermark (every bucket
// before it is final in that rollup; 0 = nothing rolled up yet) and
// kept_from (rows before it were deleted by retention). rollup_dirty lists
// buckets before a watermark that received rows after they were rolled up.
//
// Computing buckets [a, b) of a rollup is always "delete the rollup rows
// of [a, b), insert the source rows of [a, b) grouped by bucket" in one
// transaction, so computing a bucket twice gives the same rows: that is
// what makes Rollup idempotent, and Rebuild and late rows safe. A
// precision reads only the next finer one (15m from raw, 1h from 15m, 1d
// from 1h), and only up to that one's watermark, so a coarse bucket is
// never built from a partial source.
//
// Rollup, per table and precision from the finest: (1) re-roll the dirty
// buckets, marking the enclosing coarser bucket dirty when it is already
// behind its own watermark (the cascade); (2) advance the watermark to the
// limit (now − Grace for 15m, the finer watermark for the others) in
// bounded transactions, jumping over stretches without source rows, which
// is the catch-up after downtime.

// batchSpan bounds the buckets one advancing transaction computes.
func batchSpan(p store.Precision) int64 {
	switch p {
	case store.Quarter:
		return 24 * 3600 // 96 buckets: a day of raw rows
	case store.Hour:
		return 7 * 24 * 3600
	}
	return 64 * 24 * 3600
}

// source is where a precision's rollup reads from.
func source(f family, p store.Precision) (table, timeCol, count string) {
	if p == store.Quarter {
		return rawName(f.table), "time", "COUNT(*)"
	}
	return f.base + suffix(p-1), "bucket", "CAST(SUM(n) AS BIGINT)"
}

// roll recomputes buckets [a, b) of precision p of table t inside tx and
// returns the rollup rows written. It keeps what derives from those
// buckets consistent in the same transaction: the sliding windows that
// hold any of them, and the first appearances of [a, b) and of the
// horizon after b, up to the bucket `upto` (the watermark: later buckets
// do not exist yet).
func (e *Engine) roll(ctx context.Context, tx Conn, t store.Table, p store.Precision, a, b, upto int64) (int64, error) {
	var total int64
	w := width(p)
	wins, err := e.rollWindows(ctx, tx, t, p, a, b)
	if err != nil {
		return 0, fmt.Errorf("windows: %w", err)
	}
	for _, win := range wins {
		if err := e.winApply(ctx, tx, win.id, t, p, -1, max(a, win.wstart), min(b, win.wend)); err != nil {
			return 0, err
		}
	}
	for _, f := range familiesOf(t) {
		dst := f.base + suffix(p)
		if _, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE bucket >= %s AND bucket < %s", dst, e.D.Placeholder(1), e.D.Placeholder(2)), a, b); err != nil {
			return 0, fmt.Errorf("clear %s: %w", dst, err)
		}
		src, tc, cnt := source(f, p)
		cols := strings.Join(f.cols, ", ")
		group := make([]string, len(f.cols)+1)
		for i := range group {
			group[i] = fmt.Sprint(i + 1)
		}
		q := fmt.Sprintf("INSERT INTO %s (bucket, %s, n) SELECT (%s / %d) * %d, %s, %s FROM %s WHERE %s >= %s AND %s < %s GROUP BY %s",
			dst, cols, tc, w, w, cols, cnt, src, tc, e.D.Placeholder(1), tc, e.D.Placeholder(2), strings.Join(group, ", "))
		n, err := tx.Exec(ctx, q, a, b)
		if err != nil {
			return 0, fmt.Errorf("roll up %s: %w", dst, err)
		}
		total += n
	}
	for _, win := range wins {
		if err := e.winApply(ctx, tx, win.id, t, p, 1, max(a, win.wstart), min(b, win.wend)); err != nil {
			return 0, err
		}
	}
	if t == store.Incidents {
		if err := e.firsts(ctx, tx, p, a, max(b, min(b+horizon(p)*w, upto))); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// begin starts a rollup transaction: the cross-process lock, then the
// table's 15-minute state row locked against Inserts.
func (e *Engine) begin(ctx context.Context, tx Conn, t store.Table) (map[[2]int]state, error) {
	if e.D.RollupLock != "" {
		if _, err := tx.Exec(ctx, e.D.RollupLock); err != nil {
			return nil, fmt.Errorf("rollup lock: %w", err)
		}
	}
	return e.readStates(ctx, tx, "tbl = "+e.D.Placeholder(1), e.D.UpdateLock, int64(t))
}

func (e *Engine) setWatermark(ctx context.Context, tx Conn, t store.Table, p store.Precision, wm int64) error {
	_, err := tx.Exec(ctx, fmt.Sprintf("UPDATE rollup_state SET watermark = %s WHERE tbl = %s AND prec = %s",
		e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3)), wm, int64(t), int64(p))
	return err
}

// Rollup implements store.Store.
func (e *Engine) Rollup(ctx context.Context, now time.Time) (store.RollupReport, error) {
	start := time.Now()
	e.rollMu.Lock()
	defer e.rollMu.Unlock()
	var rep store.RollupReport
	if err := e.backfillFirsts(ctx); err != nil {
		return rep, err
	}
	for _, t := range Tables {
		for _, p := range Rollups {
			if err := e.rerollDirty(ctx, t, p, &rep); err != nil {
				return rep, fmt.Errorf("store rollup %v %v: %w", t, p, err)
			}
			if err := e.advance(ctx, t, p, now, &rep); err != nil {
				return rep, fmt.Errorf("store rollup %v %v: %w", t, p, err)
			}
		}
	}
	if err := e.slide(ctx); err != nil {
		return rep, err
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// rerollDirty recomputes the dirty buckets of (t, p), contiguous runs in
// one statement, and cascades to p+1.
func (e *Engine) rerollDirty(ctx context.Context, t store.Table, p store.Precision, rep *store.RollupReport) error {
	w := width(p)
	for {
		done := true
		err := e.B.Tx(ctx, func(tx Conn) error {
			st, err := e.begin(ctx, tx, t)
			if err != nil {
				return err
			}
			rows, err := tx.Query(ctx, fmt.Sprintf("SELECT bucket FROM rollup_dirty WHERE tbl = %s AND prec = %s ORDER BY bucket LIMIT 500",
				e.D.Placeholder(1), e.D.Placeholder(2)), int64(t), int64(p))
			if err != nil {
				return err
			}
			var buckets []int64
			for rows.Next() {
				var b int64
				if err := rows.Scan(&b); err != nil {
					rows.Close()
					return err
				}
				buckets = append(buckets, b)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(buckets) == 0 {
				return nil
			}
			done = len(buckets) < 500
			kept := st[[2]int{int(t), int(p - 1)}].keptFrom
			next := st[[2]int{int(t), int(p + 1)}].watermark
			for i := 0; i < len(buckets); {
				j := i + 1
				for j < len(buckets) && buckets[j] == buckets[j-1]+w {
					j++
				}
				a, b := buckets[i], buckets[j-1]+w
				a = max(a, ceilTo(kept, w)) // never rebuild from a retained-away source
				if a < b {
					n, err := e.roll(ctx, tx, t, p, a, b, st[[2]int{int(t), int(p)}].watermark)
					if err != nil {
						return err
					}
					rep.Buckets += int((b - a) / w)
					rep.Rows += n
					if p < store.Day {
						pw := width(p + 1)
						for c := floorTo(a, pw); c < b; c += pw {
							if c < next {
								if err := e.markDirty(ctx, tx, t, p+1, c); err != nil {
									return err
								}
							}
						}
					}
				}
				i = j
			}
			_, err = tx.Exec(ctx, fmt.Sprintf("DELETE FROM rollup_dirty WHERE tbl = %s AND prec = %s AND bucket >= %s AND bucket <= %s",
				e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3), e.D.Placeholder(4)), int64(t), int64(p), buckets[0], buckets[len(buckets)-1])
			return err
		})
		if err != nil || done {
			return err
		}
	}
}

func (e *Engine) markDirty(ctx context.Context, tx Conn, t store.Table, p store.Precision, b int64) error {
	_, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO rollup_dirty (tbl, prec, bucket) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
		e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3)), int64(t), int64(p), b)
	return err
}

// advance moves the watermark of (t, p) to its limit.
func (e *Engine) advance(ctx context.Context, t store.Table, p store.Precision, now time.Time, rep *store.RollupReport) error {
	w := width(p)
	for {
		done := false
		err := e.B.Tx(ctx, func(tx Conn) error {
			st, err := e.begin(ctx, tx, t)
			if err != nil {
				return err
			}
			var limit int64
			if p == store.Quarter {
				limit = floorTo(now.Add(-e.Grace).Unix(), w)
			} else {
				limit = floorTo(st[[2]int{int(t), int(p - 1)}].watermark, w)
			}
			f := familiesOf(t)[0]
			src, tc, _ := source(f, p)
			wm := st[[2]int{int(t), int(p)}].watermark
			if wm == 0 {
				first, ok, err := scalar(ctx, tx, "SELECT MIN("+tc+") FROM "+src)
				if err != nil {
					return err
				}
				if !ok || floorTo(first, w) >= limit {
					done = true
					return nil
				}
				wm = floorTo(first, w)
			}
			if wm >= limit {
				done = true
				return nil
			}
			next, ok, err := scalar(ctx, tx, fmt.Sprintf("SELECT MIN(%s) FROM %s WHERE %s >= %s AND %s < %s", tc, src, tc, e.D.Placeholder(1), tc, e.D.Placeholder(2)), wm, limit)
			if err != nil {
				return err
			}
			b := limit
			if ok {
				a := floorTo(next, w)
				b = min(a+batchSpan(p), limit)
				// [wm, a) has no source rows: roll it with the batch so
				// that stale rows there (none are expected) go too.
				n, err := e.roll(ctx, tx, t, p, wm, b, b)
				if err != nil {
					return err
				}
				rep.Buckets += int((b - a) / w)
				rep.Rows += n
			}
			done = b >= limit
			return e.setWatermark(ctx, tx, t, p, b)
		})
		if err != nil || done {
			return err
		}
	}
}

// Rebuild implements store.Store.
func (e *Engine) Rebuild(ctx context.Context, p store.Precision, from, to time.Time) (store.RollupReport, error) {
	start := time.Now()
	var rep store.RollupReport
	if p < store.Quarter || p > store.Day {
		return rep, fmt.Errorf("%w: rebuild needs a rollup precision, not %v", store.ErrBadQuery, p)
	}
	if to.Before(from) {
		return rep, fmt.Errorf("%w: rebuild range [%v, %v)", store.ErrBadQuery, from, to)
	}
	e.rollMu.Lock()
	defer e.rollMu.Unlock()
	a0, b0 := from.Unix(), to.Unix()
	for ; p <= store.Day; p++ {
		w := width(p)
		a0, b0 = floorTo(a0, w), ceilTo(b0, w)
		for _, t := range Tables {
			for a := a0; a < b0; {
				var b int64
				err := e.B.Tx(ctx, func(tx Conn) error {
					st, err := e.begin(ctx, tx, t)
					if err != nil {
						return err
					}
					kept := ceilTo(st[[2]int{int(t), int(p - 1)}].keptFrom, w)
					wm := st[[2]int{int(t), int(p)}].watermark
					a = max(a, kept)
					b = min(a+batchSpan(p), b0, wm)
					if a >= b {
						b = b0 // nothing (more) to do
						return nil
					}
					n, err := e.roll(ctx, tx, t, p, a, b, wm)
					if err != nil {
						return err
					}
					rep.Buckets += int((b - a) / w)
					rep.Rows += n
					_, err = tx.Exec(ctx, fmt.Sprintf("DELETE FROM rollup_dirty WHERE tbl = %s AND prec = %s AND bucket >= %s AND bucket < %s",
						e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3), e.D.Placeholder(4)), int64(t), int64(p), a, b)
					return err
				})
				if err != nil {
					return rep, fmt.Errorf("store rebuild %v %v: %w", t, p, err)
				}
				a = b
			}
		}
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// retention returns how long precision p keeps its rows.
func (e *Engine) retention(p store.Precision) time.Duration {
	switch p {
	case store.Raw:
		return e.Retention.Raw
	case store.Quarter:
		return e.Retention.Quarter
	case store.Hour:
		return e.Retention.Hour
	}
	return e.Retention.Day
}

// Retain implements store.Store. A precision's rows are deleted only once
// the next coarser rollup has consumed them (its watermark), so a Rollup
// that fell behind never loses data to retention; cuts are aligned to the
// coarser width so that a coarser bucket is never left half-sourced.
func (e *Engine) Retain(ctx context.Context, now time.Time) error {
	e.rollMu.Lock()
	defer e.rollMu.Unlock()
	for _, t := range Tables {
		for p := store.Raw; p <= store.Day; p++ {
			keep := e.retention(p)
			if keep <= 0 {
				continue
			}
			err := e.B.Tx(ctx, func(tx Conn) error {
				st, err := e.begin(ctx, tx, t)
				if err != nil {
					return err
				}
				cut := now.Add(-keep).Unix()
				align := width(store.Day)
				if p < store.Day {
					align = width(p + 1)
					cut = min(cut, st[[2]int{int(t), int(p + 1)}].watermark)
				}
				cut = floorTo(cut, align)
				if p > store.Raw {
					// Never under a sliding window: it subtracts these
					// rows when it moves past them.
					if ws, ok, err := scalar(ctx, tx, fmt.Sprintf("SELECT MIN(wstart) FROM window_state WHERE tbl = %s AND prec = %s AND wstart < wend",
						e.D.Placeholder(1), e.D.Placeholder(2)), int64(t), int64(p)); err != nil {
						return err
					} else if ok {
						cut = min(cut, floorTo(ws, align))
					}
				}
				if cut <= st[[2]int{int(t), int(p)}].keptFrom {
					return nil
				}
				if p == store.Raw {
					if _, err := tx.Exec(ctx, "DELETE FROM "+rawName(t)+" WHERE time < "+e.D.Placeholder(1), cut); err != nil {
						return err
					}
				} else {
					tables := []string{}
					for _, f := range familiesOf(t) {
						tables = append(tables, f.base+suffix(p))
					}
					if t == store.Incidents {
						plain, byCountry := firstTables(p)
						tables = append(tables, plain, byCountry)
					}
					for _, tb := range tables {
						if _, err := tx.Exec(ctx, "DELETE FROM "+tb+" WHERE bucket < "+e.D.Placeholder(1), cut); err != nil {
							return err
						}
					}
				}
				if _, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM rollup_dirty WHERE tbl = %s AND prec = %s AND bucket < %s",
					e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3)), int64(t), int64(p), cut); err != nil {
					return err
				}
				_, err = tx.Exec(ctx, fmt.Sprintf("UPDATE rollup_state SET kept_from = %s WHERE tbl = %s AND prec = %s",
					e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3)), cut, int64(t), int64(p))
				return err
			})
			if err != nil {
				return fmt.Errorf("store retain %v %v: %w", t, p, err)
			}
		}
	}
	return nil
}
