package sqlbuild

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

// dimCol is the column of a dimension in raw and rollup tables; DimDevice
// is the serial of the joined devices row.
func dimCol(d store.Dim) string {
	switch d {
	case store.DimIP:
		return "t.ip"
	case store.DimCountry:
		return "t.country"
	case store.DimTrap:
		return "t.trap"
	case store.DimAction:
		return "t.action"
	case store.DimDevice:
		return "d.serial"
	case store.DimUsername:
		return "t.username"
	case store.DimPassword:
		return "t.password"
	case store.DimPort:
		return "t.port"
	case store.DimProtocol:
		return "t.protocol"
	}
	return ""
}

func isText(d store.Dim) bool { return d != store.DimIP && d != store.DimPort }

var tableDims = map[store.Table][]store.Dim{
	store.Incidents: {store.DimIP, store.DimCountry, store.DimTrap, store.DimAction, store.DimDevice},
	store.Passwords: {store.DimIP, store.DimCountry, store.DimTrap, store.DimUsername, store.DimPassword},
	store.Ports:     {store.DimIP, store.DimPort, store.DimProtocol},
}

// plan is a validated query: which table to read and how.
type plan struct {
	table    string
	timeCol  string
	from, to int64
	bucket   int64
	rollup   bool
	joinDev  bool
}

// check validates q and chooses the table it reads.
func check(q *store.Query) (plan, error) {
	var pl plan
	dims, ok := tableDims[q.Table]
	if !ok {
		return pl, badQuery("unknown table %d", q.Table)
	}
	for i, d := range q.GroupBy {
		if !slices.Contains(dims, d) {
			return pl, badQuery("table %v has no dimension %d", q.Table, d)
		}
		if slices.Contains(q.GroupBy[:i], d) {
			return pl, badQuery("dimension %d grouped twice", d)
		}
	}
	switch q.Measure {
	case store.Count:
	case store.DistinctIPs:
		if q.Table != store.Incidents {
			return pl, badQuery("distinct addresses need the incidents table")
		}
	default:
		return pl, badQuery("unknown measure %d", q.Measure)
	}
	if q.DeviceTokens != nil && q.Table != store.Incidents {
		return pl, badQuery("a device filter needs the incidents table")
	}
	if q.Password != nil && q.Table != store.Passwords {
		return pl, badQuery("a password filter needs the passwords table")
	}
	if q.Limit < 0 {
		return pl, badQuery("negative limit")
	}
	for _, k := range q.Only {
		if len(k) != len(q.GroupBy) {
			return pl, badQuery("an Only tuple has %d keys for %d dimensions", len(k), len(q.GroupBy))
		}
	}
	if q.From.IsZero() || q.To.IsZero() || q.To.Before(q.From) {
		return pl, badQuery("bad time range [%v, %v)", q.From, q.To)
	}
	pl.from, pl.to = q.From.Unix(), q.To.Unix()
	if q.Bucket < 0 {
		return pl, badQuery("negative bucket")
	}
	switch q.Precision {
	case store.Raw:
		pl.table, pl.timeCol = rawName(q.Table), "time"
		if q.Bucket%time.Second != 0 {
			return pl, badQuery("bucket %v is not whole seconds", q.Bucket)
		}
	case store.Quarter, store.Hour, store.Day:
		w := q.Precision.Width()
		if q.From.Nanosecond() != 0 || q.To.Nanosecond() != 0 || pl.from%width(q.Precision) != 0 || pl.to%width(q.Precision) != 0 {
			return pl, badQuery("range [%v, %v) not aligned to %v", q.From, q.To, w)
		}
		if q.Bucket%w != 0 {
			return pl, badQuery("bucket %v is not a multiple of %v", q.Bucket, w)
		}
		pl.rollup, pl.timeCol = true, "bucket"
		base := rawName(q.Table)
		needIP := q.Measure == store.DistinctIPs || q.IP.IsValid() || slices.Contains(q.GroupBy, store.DimIP)
		if q.Table == store.Incidents {
			needDev := q.DeviceTokens != nil || slices.Contains(q.GroupBy, store.DimDevice)
			needTA := slices.Contains(q.GroupBy, store.DimTrap) || slices.Contains(q.GroupBy, store.DimAction)
			needC := slices.Contains(q.GroupBy, store.DimCountry)
			switch {
			case needIP && (needDev || needTA && needC):
				return pl, badQuery("at precision %v attacker addresses are kept with the country, or with the trap and action, not with the device or both", q.Precision)
			case needIP && needTA:
				base = "incidents_ipt"
			case needIP:
				base = "incidents_ip"
			case needDev && !slices.Contains(q.GroupBy, store.DimCountry) && !slices.Contains(q.GroupBy, store.DimAction):
				base = "incidents_devt"
			case needDev && !needTA:
				base = "incidents_devc"
			case needDev:
				base = "incidents_dev"
			case !slices.Contains(q.GroupBy, store.DimCountry):
				base = "incidents_ta"
			case !needTA:
				base = "incidents_c"
			}
		}
		if q.Table == store.Ports && needIP {
			base = "ports_ip"
		} else if q.Table == store.Ports && !slices.Contains(q.GroupBy, store.DimPort) {
			base = "ports_p"
		}
		needIPC := needIP || slices.Contains(q.GroupBy, store.DimCountry)
		switch {
		case q.Table != store.Passwords:
		case needIPC && slices.Contains(q.GroupBy, store.DimTrap):
			return pl, badQuery("at precision %v the addresses of passwords are kept without the trap", q.Precision)
		case needIPC:
			base = "passwords_ip"
		case !slices.Contains(q.GroupBy, store.DimTrap):
			base = "passwords_pu"
			if !slices.Contains(q.GroupBy, store.DimUsername) {
				base = "passwords_pw"
			}
		}
		pl.table = base + suffix(q.Precision)
	default:
		return pl, badQuery("unknown precision %d", q.Precision)
	}
	pl.bucket = int64(q.Bucket / time.Second)
	pl.joinDev = slices.Contains(q.GroupBy, store.DimDevice)
	return pl, nil
}

// BuildQuery returns the SQL text and arguments of q, or an error wrapping
// store.ErrBadQuery. empty reports a query that matches nothing (an empty
// DeviceTokens slice) and needs no SQL.
func BuildQuery(d Dialect, q store.Query) (sql string, args []any, empty bool, err error) {
	pl, err := check(&q)
	if err != nil {
		return "", nil, false, err
	}
	if q.DeviceTokens != nil && len(q.DeviceTokens) == 0 {
		return "", nil, true, nil
	}
	return buildQuery(d, q, pl, nil)
}

// buildQuery writes the SQL of a checked query. ids, when not nil, are the
// devices of q.DeviceTokens, resolved beforehand: given as constants they
// let the planner use the (device_id, bucket) index, which PostgreSQL does
// not do for an IN (subquery) on a small table.
func buildQuery(d Dialect, q store.Query, pl plan, ids []int64) (string, []any, bool, error) {
	p := &ph{d: d}
	var sel, where, group, order []string
	if pl.bucket > 0 {
		f := p.add(pl.from)
		w := p.add(pl.bucket)
		sel = append(sel, fmt.Sprintf("%s + ((t.%s - %s) / %s) * %s AS b", f, pl.timeCol, f, w, w))
		group = append(group, "1")
		order = append(order, "b")
	}
	for i, dim := range q.GroupBy {
		col := dimCol(dim)
		if isText(dim) {
			col += d.Collate
		}
		alias := "k" + strconv.Itoa(i)
		sel = append(sel, col+" AS "+alias)
		group = append(group, strconv.Itoa(len(sel)))
	}
	val := "COUNT(*)"
	if pl.rollup {
		val = "COALESCE(CAST(SUM(t.n) AS BIGINT), 0)"
	}
	if q.Measure == store.DistinctIPs {
		val = "COUNT(DISTINCT t.ip)"
	}
	sel = append(sel, val+" AS v")

	where = append(where, fmt.Sprintf("t.%s >= %s", pl.timeCol, p.add(pl.from)), fmt.Sprintf("t.%s < %s", pl.timeCol, p.add(pl.to)))
	more, empty, err := filters(p, q, ids)
	if err != nil || empty {
		return "", nil, empty, err
	}
	where = append(where, more...)

	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(strings.Join(sel, ", "))
	b.WriteString(" FROM " + pl.table + " t")
	if pl.joinDev {
		b.WriteString(" JOIN devices d ON d.id = t.device_id")
	}
	b.WriteString(" WHERE " + strings.Join(where, " AND "))
	if len(group) > 0 {
		b.WriteString(" GROUP BY " + strings.Join(group, ", "))
	}
	if pl.bucket <= 0 && len(q.GroupBy) > 0 {
		order = append(order, "v DESC")
	}
	for i := range q.GroupBy {
		order = append(order, "k"+strconv.Itoa(i))
	}
	if len(order) > 0 {
		b.WriteString(" ORDER BY " + strings.Join(order, ", "))
	}
	if pl.bucket <= 0 && q.Limit > 0 {
		b.WriteString(" LIMIT " + p.add(int64(q.Limit)))
	}
	return b.String(), p.args, false, nil
}

// filters are the conditions of q besides its time range, on a table
// aliased t (and devices d); empty reports a filter that matches nothing
// and needs no SQL.
func filters(p *ph, q store.Query, ids []int64) (where []string, empty bool, err error) {
	if q.IP.IsValid() {
		where = append(where, "t.ip = "+p.add(IPBytes(q.IP)))
	}
	if q.Password != nil {
		where = append(where, "t.password = "+p.add(*q.Password))
	}
	if ids != nil && len(ids) == 0 {
		// Unknown tokens: no rows, but a total is still a row of 0, as
		// with any filter that matches nothing.
		where = append(where, "1 = 0")
	} else if ids != nil {
		vals := make([]any, len(ids))
		for i, id := range ids {
			vals[i] = id
		}
		where = append(where, "t.device_id IN ("+placeholders(p, vals)+")")
	} else if q.DeviceTokens != nil {
		toks := make([]any, len(q.DeviceTokens))
		for i, t := range q.DeviceTokens {
			toks[i] = t
		}
		where = append(where, "t.device_id IN (SELECT id FROM devices WHERE token IN ("+placeholders(p, toks)+"))")
	}
	if q.NonEmpty {
		for _, dim := range q.GroupBy {
			if dim == store.DimUsername || dim == store.DimPassword {
				c := dimCol(dim)
				where = append(where, fmt.Sprintf("%s <> %s AND %s <> %s", c, p.add(""), c, p.add("\n")))
			}
		}
	}
	if q.Only != nil {
		if len(q.Only) == 0 {
			return nil, true, nil
		}
		var ors []string
		for _, tuple := range q.Only {
			var ands []string
			for i, dim := range q.GroupBy {
				v, err := keyArg(dim, tuple[i])
				if err != nil {
					return nil, false, err
				}
				ands = append(ands, dimCol(dim)+" = "+p.add(v))
			}
			if len(ands) == 0 {
				ands = append(ands, "1 = 1")
			}
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	return where, false, nil
}

// keyArg converts an Only key to the stored value of its column.
func keyArg(d store.Dim, k string) (any, error) {
	switch d {
	case store.DimIP:
		a, err := netip.ParseAddr(k)
		if err != nil {
			return nil, badQuery("Only key %q is not an address", k)
		}
		return IPBytes(a), nil
	case store.DimPort:
		n, err := strconv.ParseUint(k, 10, 16)
		if err != nil {
			return nil, badQuery("Only key %q is not a port", k)
		}
		return int64(n), nil
	}
	return k, nil
}

// Query implements store.Store: from a sliding window when one holds
// exactly the range, from the first appearances for distinct attackers per
// graph bucket, else from the table check chose.
func (e *Engine) Query(ctx context.Context, q store.Query) ([]store.Row, error) {
	pl, err := check(&q)
	if err != nil {
		return nil, err
	}
	if pl.rollup {
		// Past the watermark, the finer rollups and raw rows answer.
		st, err := e.readStates(ctx, e.B, "tbl = "+e.D.Placeholder(1), "", int64(q.Table))
		if err != nil {
			return nil, fmt.Errorf("store query: %w", err)
		}
		if st[[2]int{int(q.Table), int(q.Precision)}].watermark < pl.to {
			var ids []int64
			if q.DeviceTokens != nil {
				if len(q.DeviceTokens) == 0 {
					return nil, nil
				}
				if ids, err = deviceIDs(ctx, e.D, e.B, q.DeviceTokens); err != nil {
					return nil, fmt.Errorf("store query: %w", err)
				}
			}
			return e.freshQuery(ctx, q, pl, st, ids)
		}
	}
	if rows, ok, err := e.windowQuery(ctx, q, pl); err != nil {
		return nil, fmt.Errorf("store query: %w", err)
	} else if ok {
		return rows, nil
	}
	if sql, args, ok := firstQuery(e.D, q, pl); ok {
		return scanRows(ctx, e.B, sql, args, q.GroupBy, true)
	}
	var ids []int64
	if q.DeviceTokens != nil {
		if len(q.DeviceTokens) == 0 {
			return nil, nil
		}
		if ids, err = deviceIDs(ctx, e.D, e.B, q.DeviceTokens); err != nil {
			return nil, fmt.Errorf("store query: %w", err)
		}
	}
	sql, args, empty, err := buildQuery(e.D, q, pl, ids)
	if err != nil || empty {
		return nil, err
	}
	return scanRows(ctx, e.B, sql, args, q.GroupBy, q.Bucket > 0)
}

// scanRows runs a query whose columns are [b,] k0..kn, v and reads its
// rows; the key types follow groupBy.
func scanRows(ctx context.Context, c Conn, sql string, args []any, groupBy []store.Dim, bucketed bool) ([]store.Row, error) {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("store query: %w", err)
	}
	defer rows.Close()
	var out []store.Row
	nk := len(groupBy)
	dest := make([]any, 0, nk+2)
	var bucket, value int64
	keys := make([]any, nk)
	for i, dim := range groupBy {
		switch dim {
		case store.DimIP:
			keys[i] = new([]byte)
		case store.DimPort:
			keys[i] = new(int64)
		default:
			keys[i] = new(string)
		}
	}
	if bucketed {
		dest = append(dest, &bucket)
	}
	dest = append(dest, keys...)
	dest = append(dest, &value)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("store query: %w", err)
		}
		r := store.Row{Value: value}
		if bucketed {
			r.Bucket = time.Unix(bucket, 0).UTC()
		}
		if nk > 0 {
			r.Keys = make([]string, nk)
			for i, k := range keys {
				switch k := k.(type) {
				case *[]byte:
					r.Keys[i] = IPString(*k)
				case *int64:
					r.Keys[i] = strconv.FormatInt(*k, 10)
				case *string:
					r.Keys[i] = *k
				}
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store query: %w", err)
	}
	return out, nil
}

// deviceIDs returns the ids of the devices with these tokens.
func deviceIDs(ctx context.Context, d Dialect, c Conn, tokens []string) ([]int64, error) {
	p := &ph{d: d}
	vals := make([]any, len(tokens))
	for i, t := range tokens {
		vals[i] = t
	}
	rows, err := c.Query(ctx, "SELECT id FROM devices WHERE token IN ("+placeholders(p, vals)+") ORDER BY id", p.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
