package sqlbuild

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

// Sliding windows: running totals for the long periods.
//
// The view's top lists over a month or a year (top attackers, passwords,
// usernames, combinations; distinct attackers per country) would read
// every (key, day) row of the window. A sliding window keeps those totals
// in small tables (win_*) for one range [wstart, wend) of one precision,
// and moves it as the rollup advances: each step adds the rollup rows of
// the new buckets and subtracts those of the buckets that left, so its
// cost is a step's rows, not the window's. Distinct attackers per country
// are counted as (address, country) pairs enter (a pair new to win_ipc)
// and leave (its total falls to 0).
//
// Consistency: every change of rollup rows inside a window's range goes
// through roll, which subtracts the old rows from the window before
// deleting them and adds the new ones after, in the same transaction;
// retention never cuts into a window. A query is answered from a window
// only when its range equals the window's current range, and otherwise
// from the rollups, so the answer is the same either way (the conformance
// suite checks it).

// winStep bounds how many buckets one transaction adds or subtracts, so
// that building a year's window never holds the writer for long.
func winStep(p store.Precision) int64 {
	if p == store.Day {
		return 14 * 86400
	}
	return 2 * 86400
}

// windowTables are the tables whose windows are kept.
var windowTables = []store.Table{store.Incidents, store.Passwords, store.Ports}

// winState is a window_state row.
type winState struct {
	id           int64
	table        store.Table
	prec         store.Precision
	span, step   int64
	wstart, wend int64
}

func (e *Engine) readWindows(ctx context.Context, c Conn, where string, args ...any) ([]winState, error) {
	rows, err := c.Query(ctx, "SELECT id, tbl, prec, span, step, wstart, wend FROM window_state"+where+" ORDER BY id", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []winState
	for rows.Next() {
		var w winState
		var t, p int64
		if err := rows.Scan(&w.id, &t, &p, &w.span, &w.step, &w.wstart, &w.wend); err != nil {
			return nil, err
		}
		w.table, w.prec = store.Table(t), store.Precision(p)
		out = append(out, w)
	}
	return out, rows.Err()
}

// winApply adds (sign 1) or subtracts (sign -1) the rollup rows of
// buckets [a, b) to window id of table t at precision p.
func (e *Engine) winApply(ctx context.Context, tx Conn, id int64, t store.Table, p store.Precision, sign int, a, b int64) error {
	if a >= b {
		return nil
	}
	src := rawName(t) + suffix(p)
	ph1, ph2, ph3 := e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3)
	rng := fmt.Sprintf("bucket >= %s AND bucket < %s", ph2, ph3)
	sum := "SUM(n)"
	if sign < 0 {
		sum = "-SUM(n)"
	}
	exec := func(what, q string) error {
		if _, err := tx.Exec(ctx, q, id, a, b); err != nil {
			return fmt.Errorf("window %d %s: %w", id, what, err)
		}
		return nil
	}
	// prune drops the totals that fell to 0 (after a subtraction).
	prune := func(table string) error {
		if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE win = "+ph1+" AND n <= 0", id); err != nil {
			return fmt.Errorf("window %d: %w", id, err)
		}
		return nil
	}
	upsert := func(table, keys string) error {
		return exec("totals "+table, fmt.Sprintf("INSERT INTO %[1]s (win, %[2]s, n) SELECT %[3]s, %[2]s, %[4]s FROM %[5]s WHERE %[6]s GROUP BY %[2]s ON CONFLICT (win, %[2]s) DO UPDATE SET n = %[1]s.n + excluded.n",
			table, keys, ph1, sum, src, rng))
	}
	switch t {
	case store.Incidents:
		src = "incidents_ip" + suffix(p)
		if sign > 0 {
			// Pairs new to the window count as attackers of their country.
			if err := exec("new attackers", fmt.Sprintf(`INSERT INTO win_country (win, country, attackers)
SELECT %[1]s, s.country, COUNT(*) FROM (SELECT DISTINCT country, ip FROM %[2]s WHERE %[3]s) s
WHERE NOT EXISTS (SELECT 1 FROM win_ipc w WHERE w.win = %[1]s AND w.country = s.country AND w.ip = s.ip)
GROUP BY s.country ON CONFLICT (win, country) DO UPDATE SET attackers = win_country.attackers + excluded.attackers`, ph1, src, rng)); err != nil {
				return err
			}
		}
		if err := upsert("win_ipc", "country, ip"); err != nil {
			return err
		}
		if err := upsert("win_ip", "ip"); err != nil {
			return err
		}
		if sign < 0 {
			// Pairs whose total fell to 0 leave.
			if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO win_country (win, country, attackers)
SELECT win, country, -COUNT(*) FROM win_ipc WHERE win = %[1]s AND n <= 0 GROUP BY win, country
ON CONFLICT (win, country) DO UPDATE SET attackers = win_country.attackers + excluded.attackers`, ph1), id); err != nil {
				return fmt.Errorf("window %d attackers that left: %w", id, err)
			}
			for _, tb := range []string{"win_ipc", "win_ip"} {
				if err := prune(tb); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, "DELETE FROM win_country WHERE win = "+ph1+" AND attackers <= 0", id); err != nil {
				return fmt.Errorf("window %d: %w", id, err)
			}
		}
	case store.Ports:
		if err := upsert("win_port", "protocol, port"); err != nil {
			return err
		}
		if sign < 0 {
			return prune("win_port")
		}
	case store.Passwords:
		src = "passwords_pu" + suffix(p)
		for _, s := range [][2]string{{"win_password", "password"}, {"win_username", "username"}, {"win_combo", "username, password"}} {
			if err := upsert(s[0], s[1]); err != nil {
				return err
			}
			if sign < 0 {
				if err := prune(s[0]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// winTables are the totals of one window, for clearing.
var winTables = map[store.Table][]string{
	store.Incidents: {"win_ip", "win_ipc", "win_country"},
	store.Passwords: {"win_password", "win_username", "win_combo"},
	store.Ports:     {"win_port"},
}

func (e *Engine) winClear(ctx context.Context, tx Conn, id int64, t store.Table) error {
	for _, tb := range winTables[t] {
		if _, err := tx.Exec(ctx, "DELETE FROM "+tb+" WHERE win = "+e.D.Placeholder(1), id); err != nil {
			return fmt.Errorf("clear window %d: %w", id, err)
		}
	}
	return nil
}

func (e *Engine) winSet(ctx context.Context, tx Conn, id, wstart, wend int64) error {
	_, err := tx.Exec(ctx, fmt.Sprintf("UPDATE window_state SET wstart = %s, wend = %s WHERE id = %s",
		e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3)), wstart, wend, id)
	return err
}

// rollWindows returns the windows of (t, p) overlapping [a, b), which
// roll keeps consistent around its rewrite of those buckets.
func (e *Engine) rollWindows(ctx context.Context, tx Conn, t store.Table, p store.Precision, a, b int64) ([]winState, error) {
	if !slices.Contains(windowTables, t) {
		return nil, nil
	}
	return e.readWindows(ctx, tx, fmt.Sprintf(" WHERE tbl = %s AND prec = %s AND wstart < wend AND wend > %s AND wstart < %s",
		e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3), e.D.Placeholder(4)), int64(t), int64(p), a, b)
}

// slide moves every configured window to its target: the watermark of its
// table and precision rounded down to its step. Unconfigured windows are
// dropped. Each step of work is its own transaction.
func (e *Engine) slide(ctx context.Context) error {
	for _, t := range windowTables {
		for _, cw := range e.Windows {
			if cw.Precision < store.Quarter || cw.Precision > store.Day {
				continue
			}
			if err := e.slideOne(ctx, t, cw); err != nil {
				return fmt.Errorf("store window %v %v/%v: %w", t, cw.Precision, cw.Span, err)
			}
		}
	}
	// Windows no longer configured.
	all, err := e.readWindows(ctx, e.B, "")
	if err != nil {
		return err
	}
	for _, w := range all {
		if slices.ContainsFunc(e.Windows, func(cw store.Window) bool {
			return int64(cw.Precision) == int64(w.prec) && secs(cw.Span) == w.span && secs(cw.Step) == w.step
		}) {
			continue
		}
		err := e.B.Tx(ctx, func(tx Conn) error {
			if _, err := e.begin(ctx, tx, w.table); err != nil {
				return err
			}
			if err := e.winClear(ctx, tx, w.id, w.table); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "DELETE FROM window_state WHERE id = "+e.D.Placeholder(1), w.id)
			return err
		})
		if err != nil {
			return fmt.Errorf("store window %d: drop: %w", w.id, err)
		}
	}
	return nil
}

func secs(d time.Duration) int64 { return int64(d / time.Second) }

// winTarget is where a window should be, given its table's watermarks.
func winTarget(st map[[2]int]state, t store.Table, p store.Precision, span, step int64) (int64, int64) {
	wm := st[[2]int{int(t), int(p)}].watermark
	if wm == 0 {
		return 0, 0
	}
	end := floorTo(wm, step)
	return end - span, end
}

func (e *Engine) slideOne(ctx context.Context, t store.Table, cw store.Window) error {
	span, step := secs(cw.Span), secs(cw.Step)
	w := width(cw.Precision)
	if span <= 0 || step <= 0 || span%w != 0 || step%w != 0 {
		return fmt.Errorf("window span %v and step %v must be multiples of %v", cw.Span, cw.Step, cw.Precision.Width())
	}
	for {
		done := false
		err := e.B.Tx(ctx, func(tx Conn) error {
			st, err := e.begin(ctx, tx, t)
			if err != nil {
				return err
			}
			ws, err := e.readWindows(ctx, tx, fmt.Sprintf(" WHERE tbl = %s AND prec = %s AND span = %s AND step = %s",
				e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3), e.D.Placeholder(4)), int64(t), int64(cw.Precision), span, step)
			if err != nil {
				return err
			}
			var cur winState
			if len(ws) == 0 {
				id, _, err := scalar(ctx, tx, "SELECT COALESCE(MAX(id), 0) + 1 FROM window_state")
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO window_state (id, tbl, prec, span, step) VALUES (%s, %s, %s, %s, %s)",
					e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3), e.D.Placeholder(4), e.D.Placeholder(5)),
					id, int64(t), int64(cw.Precision), span, step); err != nil {
					return err
				}
				cur = winState{id: id, table: t, prec: cw.Precision}
			} else {
				cur = ws[0]
			}
			ts, te := winTarget(st, t, cw.Precision, span, step)
			if te == 0 || (cur.wstart == ts && cur.wend == te) {
				done = true
				return nil
			}
			// Rows before the source's retention are gone: never build a
			// window over them.
			ts = max(ts, ceilTo(st[[2]int{int(t), int(cw.Precision)}].keptFrom, w))
			if cur.wend <= ts || cur.wstart > ts || cur.wend > te || cur.wstart >= cur.wend {
				// No overlap with the target (first build, downtime
				// longer than the span), or moved backwards: start over.
				if err := e.winClear(ctx, tx, cur.id, t); err != nil {
					return err
				}
				cur.wstart, cur.wend = ts, ts
			}
			switch {
			case cur.wstart < ts:
				b := min(ts, cur.wstart+winStep(cw.Precision))
				if err := e.winApply(ctx, tx, cur.id, t, cw.Precision, -1, cur.wstart, b); err != nil {
					return err
				}
				cur.wstart = b
			case cur.wend < te:
				b := min(te, cur.wend+winStep(cw.Precision))
				if err := e.winApply(ctx, tx, cur.id, t, cw.Precision, 1, cur.wend, b); err != nil {
					return err
				}
				cur.wend = b
			}
			done = cur.wstart >= ts && cur.wend >= te
			return e.winSet(ctx, tx, cur.id, cur.wstart, cur.wend)
		})
		if err != nil || done {
			return err
		}
	}
}

// windowStates reports the windows for Status.
func (e *Engine) windowStates(ctx context.Context) ([]store.WindowState, error) {
	ws, err := e.readWindows(ctx, e.B, "")
	if err != nil {
		return nil, err
	}
	st, err := e.readStates(ctx, e.B, "prec > 0", "")
	if err != nil {
		return nil, err
	}
	var out []store.WindowState
	for _, w := range ws {
		s := store.WindowState{Table: w.table, Window: store.Window{Precision: w.prec,
			Span: time.Duration(w.span) * time.Second, Step: time.Duration(w.step) * time.Second}}
		if w.wstart < w.wend {
			s.From, s.To = time.Unix(w.wstart, 0).UTC(), time.Unix(w.wend, 0).UTC()
			ts, te := winTarget(st, w.table, w.prec, w.span, w.step)
			s.Current = w.wstart == ts && w.wend == te
		}
		out = append(out, s)
	}
	return out, nil
}

// windowQuery answers q from a window when one holds exactly q's range and
// keeps the totals q asks for; ok false otherwise.
func (e *Engine) windowQuery(ctx context.Context, q store.Query, pl plan) ([]store.Row, bool, error) {
	if !pl.rollup || pl.bucket > 0 || q.IP.IsValid() || q.DeviceTokens != nil || q.Password != nil || q.Only != nil {
		return nil, false, nil
	}
	var sel, table string
	switch {
	case q.Table == store.Incidents && q.Measure == store.Count && slices.Equal(q.GroupBy, []store.Dim{store.DimIP}):
		table, sel = "win_ip", "ip AS k0, n AS v"
	case q.Table == store.Incidents && q.Measure == store.DistinctIPs && slices.Equal(q.GroupBy, []store.Dim{store.DimCountry}):
		table, sel = "win_country", "country"+e.D.Collate+" AS k0, attackers AS v"
	case q.Table == store.Ports && q.Measure == store.Count && slices.Equal(q.GroupBy, []store.Dim{store.DimProtocol, store.DimPort}):
		table, sel = "win_port", "protocol"+e.D.Collate+" AS k0, port AS k1, n AS v"
	case q.Table == store.Ports && q.Measure == store.Count && slices.Equal(q.GroupBy, []store.Dim{store.DimPort, store.DimProtocol}):
		table, sel = "win_port", "port AS k0, protocol"+e.D.Collate+" AS k1, n AS v"
	case q.Table == store.Passwords && q.Measure == store.Count && len(q.GroupBy) > 0:
		switch {
		case slices.Equal(q.GroupBy, []store.Dim{store.DimPassword}):
			table, sel = "win_password", "password"+e.D.Collate+" AS k0, n AS v"
		case slices.Equal(q.GroupBy, []store.Dim{store.DimUsername}):
			table, sel = "win_username", "username"+e.D.Collate+" AS k0, n AS v"
		case slices.Equal(q.GroupBy, []store.Dim{store.DimUsername, store.DimPassword}):
			table, sel = "win_combo", "username"+e.D.Collate+" AS k0, password"+e.D.Collate+" AS k1, n AS v"
		case slices.Equal(q.GroupBy, []store.Dim{store.DimPassword, store.DimUsername}):
			table, sel = "win_combo", "password"+e.D.Collate+" AS k0, username"+e.D.Collate+" AS k1, n AS v"
		default:
			return nil, false, nil
		}
	default:
		return nil, false, nil
	}
	// Which window holds exactly this range? Checked before and after
	// reading: windows only move forward, so if the same one matches both
	// times it matched when the rows were read (one statement, one
	// snapshot).
	match := func() (int64, bool, error) {
		return scalar(ctx, e.B, fmt.Sprintf("SELECT MIN(id) FROM window_state WHERE tbl = %s AND prec = %s AND wstart = %s AND wend = %s",
			e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3), e.D.Placeholder(4)), int64(q.Table), int64(q.Precision), pl.from, pl.to)
	}
	id, ok, err := match()
	if err != nil || !ok {
		return nil, false, err
	}
	p := &ph{d: e.D}
	where := "win = " + p.add(id)
	if q.NonEmpty {
		for _, d := range q.GroupBy {
			if d == store.DimUsername || d == store.DimPassword {
				c := dimCol(d)
				where += fmt.Sprintf(" AND %s <> %s AND %s <> %s", c, p.add(""), c, p.add("\n"))
			}
		}
	}
	order := "v DESC, k0"
	if len(q.GroupBy) == 2 {
		order += ", k1"
	}
	sql := fmt.Sprintf("SELECT %s FROM %s t WHERE %s ORDER BY %s", sel, table, where, order)
	if q.Limit > 0 {
		sql += " LIMIT " + p.add(int64(q.Limit))
	}
	rows, err := scanRows(ctx, e.B, sql, p.args, q.GroupBy, false)
	if err != nil {
		return nil, false, err
	}
	if id2, ok, err := match(); err != nil || !ok || id2 != id {
		return nil, false, err
	}
	e.windowHits.Add(1)
	return rows, true, nil
}

// WindowHits counts queries answered from sliding windows (for tests and
// metrics).
func (e *Engine) WindowHits() int64 { return e.windowHits.Load() }
