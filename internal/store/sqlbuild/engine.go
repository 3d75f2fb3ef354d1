package sqlbuild

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

// Engine implements the store.Store methods on top of a Backend. A backend
// embeds it and adds Status's size and Close.
type Engine struct {
	D         Dialect
	B         Backend
	Grace     time.Duration
	Retention store.Retention
	Windows   []store.Window

	windowHits atomic.Int64

	// rollMu serialises Rollup, Rebuild and Retain within the process
	// (Dialect.RollupLock does it across processes).
	rollMu sync.Mutex

	// devices caches the ids of known devices and the seen range last
	// written, so that a batch touches the devices table only when a
	// device is new or its last_seen moves by more than devSlack.
	devMu   sync.Mutex
	devices map[devKey]devEntry
}

type devKey struct{ serial, token string }

type devEntry struct {
	id          int64
	first, last int64
}

// devSlack bounds how stale devices.last_seen may be: a minute of
// precision saves an UPDATE per device per batch.
const devSlack = 60

// NewEngine fills the defaults of o.
func NewEngine(d Dialect, b Backend, o store.Options) *Engine {
	if o.Grace <= 0 {
		o.Grace = 2 * time.Minute
	}
	if o.Retention == (store.Retention{}) {
		o.Retention = store.DefaultRetention
	}
	if o.Windows == nil {
		o.Windows = store.DefaultWindows
	}
	return &Engine{D: d, B: b, Grace: o.Grace, Retention: o.Retention, Windows: o.Windows, devices: map[devKey]devEntry{}}
}

// state is one rollup_state row.
type state struct{ watermark, keptFrom int64 }

// readStates returns rollup_state for table t (all precisions), with the
// given lock suffix.
func (e *Engine) readStates(ctx context.Context, c Conn, where string, lock string, args ...any) (map[[2]int]state, error) {
	rows, err := c.Query(ctx, "SELECT tbl, prec, watermark, kept_from FROM rollup_state WHERE "+where+" ORDER BY tbl, prec"+lock, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[[2]int]state{}
	for rows.Next() {
		var t, p int
		var s state
		if err := rows.Scan(&t, &p, &s.watermark, &s.keptFrom); err != nil {
			return nil, err
		}
		out[[2]int{t, p}] = s
	}
	return out, rows.Err()
}

// Insert implements store.Store: raw rows, devices and dirty marks in one
// transaction.
func (e *Engine) Insert(ctx context.Context, b *store.Batch) error {
	if b == nil || b.Len() == 0 {
		return nil
	}
	for i := range b.Incidents {
		if !b.Incidents[i].IP.IsValid() {
			return &store.RejectedError{Reason: store.RejectInvalid, Code: "no_address", Err: fmt.Errorf("store insert: incident %d has no address", i)}
		}
	}
	// Devices of the batch with the time range they were seen in, sorted
	// so that concurrent inserts lock device rows in one order.
	seen := map[devKey]devEntry{}
	for _, in := range b.Incidents {
		k := devKey{in.Serial, in.Token}
		ts := in.Time.Unix()
		if d, ok := seen[k]; ok {
			seen[k] = devEntry{first: min(d.first, ts), last: max(d.last, ts)}
		} else {
			seen[k] = devEntry{first: ts, last: ts}
		}
	}
	keys := make([]devKey, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b devKey) int {
		if c := strings.Compare(a.serial, b.serial); c != 0 {
			return c
		}
		return strings.Compare(a.token, b.token)
	})
	updated := map[devKey]devEntry{}
	err := e.B.Tx(ctx, func(tx Conn) error {
		// Watermarks of the 15-minute rollups (and where raw rows are
		// kept from), locked against a concurrent Rollup.
		st, err := e.readStates(ctx, tx, "prec IN (0, 1)", e.D.ShareLock)
		if err != nil {
			return err
		}
		ids := map[devKey]int64{}
		for _, k := range keys {
			s := seen[k]
			e.devMu.Lock()
			c, ok := e.devices[k]
			e.devMu.Unlock()
			if ok && s.first >= c.first && s.last <= c.last+devSlack {
				ids[k] = c.id
				continue
			}
			p := &ph{d: e.D}
			q := fmt.Sprintf("INSERT INTO devices (serial, token, first_seen, last_seen) VALUES (%s, %s, %s, %s) "+
				"ON CONFLICT (serial, token) DO UPDATE SET first_seen = %s(devices.first_seen, excluded.first_seen), last_seen = %s(devices.last_seen, excluded.last_seen) "+
				"RETURNING id, first_seen, last_seen", p.add(k.serial), p.add(k.token), p.add(s.first), p.add(s.last), e.D.Least, e.D.Greatest)
			rows, err := tx.Query(ctx, q, p.args...)
			if err != nil {
				return fmt.Errorf("register device: %w", err)
			}
			var d devEntry
			for rows.Next() {
				if err := rows.Scan(&d.id, &d.first, &d.last); err != nil {
					rows.Close()
					return err
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			ids[k] = d.id
			updated[k] = d
		}

		dirty := map[[2]int64]bool{}
		mark := func(t store.Table, ts int64) {
			s := st[[2]int{int(t), int(store.Quarter)}]
			if ts < s.watermark && ts >= st[[2]int{int(t), int(store.Raw)}].keptFrom {
				dirty[[2]int64{int64(t), floorTo(ts, width(store.Quarter))}] = true
			}
		}
		if len(b.Incidents) > 0 {
			rows := make([][]any, len(b.Incidents))
			for i, in := range b.Incidents {
				ts := in.Time.Unix()
				rows[i] = []any{ts, ids[devKey{in.Serial, in.Token}], in.Trap, in.Action, IPBytes(in.IP), in.Country}
				mark(store.Incidents, ts)
			}
			if err := e.B.BulkInsert(ctx, tx, "incidents", []string{"time", "device_id", "trap", "action", "ip", "country"}, rows); err != nil {
				return fmt.Errorf("insert incidents: %w", err)
			}
		}
		if len(b.Passwords) > 0 {
			rows := make([][]any, len(b.Passwords))
			for i, pw := range b.Passwords {
				ts := pw.Time.Unix()
				rows[i] = []any{ts, pw.Trap, pw.Username, pw.Password, IPBytes(pw.IP), pw.Country}
				mark(store.Passwords, ts)
			}
			if err := e.B.BulkInsert(ctx, tx, "passwords", []string{"time", "trap", "username", "password", "ip", "country"}, rows); err != nil {
				return fmt.Errorf("insert passwords: %w", err)
			}
		}
		if len(b.Ports) > 0 {
			rows := make([][]any, len(b.Ports))
			for i, pt := range b.Ports {
				ts := pt.Time.Unix()
				rows[i] = []any{ts, int64(pt.Port), NormProtocol(pt.Protocol), IPBytes(pt.IP)}
				mark(store.Ports, ts)
			}
			if err := e.B.BulkInsert(ctx, tx, "ports", []string{"time", "port", "protocol", "ip"}, rows); err != nil {
				return fmt.Errorf("insert ports: %w", err)
			}
		}
		for k := range dirty {
			if _, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO rollup_dirty (tbl, prec, bucket) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
				e.D.Placeholder(1), e.D.Placeholder(2), e.D.Placeholder(3)), k[0], int64(store.Quarter), k[1]); err != nil {
				return fmt.Errorf("mark late rows: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("store insert: %w", err)
		if reason, code, ok := e.B.Refused(err); ok {
			return &store.RejectedError{Reason: reason, Code: code, Err: err}
		}
		return err
	}
	e.devMu.Lock()
	for k, d := range updated {
		e.devices[k] = d
	}
	e.devMu.Unlock()
	return nil
}

// NormProtocol maps a protocol to TCP, UDP or other.
func NormProtocol(p string) string {
	switch strings.ToUpper(p) {
	case "TCP":
		return "TCP"
	case "UDP":
		return "UDP"
	}
	return "other"
}

// Devices implements store.Store.
func (e *Engine) Devices(ctx context.Context, tokens []string) ([]store.Device, error) {
	if len(tokens) == 0 {
		return nil, nil
	}
	p := &ph{d: e.D}
	args := make([]any, len(tokens))
	for i, t := range tokens {
		args[i] = t
	}
	rows, err := e.B.Query(ctx, "SELECT serial, token, first_seen, last_seen FROM devices WHERE token IN ("+placeholders(p, args)+") ORDER BY token, serial", p.args...)
	if err != nil {
		return nil, fmt.Errorf("store devices: %w", err)
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		var d store.Device
		var f, l int64
		if err := rows.Scan(&d.Serial, &d.Token, &f, &l); err != nil {
			return nil, err
		}
		d.FirstSeen, d.LastSeen = time.Unix(f, 0).UTC(), time.Unix(l, 0).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// scalar reads one nullable integer.
func scalar(ctx context.Context, c Conn, sql string, args ...any) (int64, bool, error) {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	var v *int64
	for rows.Next() {
		if err := rows.Scan(&v); err != nil {
			return 0, false, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, false, err
	}
	if v == nil {
		return 0, false, nil
	}
	return *v, true, nil
}

// Status fills everything but Backend and Bytes.
func (e *Engine) Status(ctx context.Context) (store.Status, error) {
	s := store.Status{Tables: map[store.Table]int64{}}
	for _, t := range Tables {
		n, _, err := scalar(ctx, e.B, "SELECT COUNT(*) FROM "+rawName(t))
		if err != nil {
			return s, fmt.Errorf("store status: %w", err)
		}
		s.Tables[t] = n
	}
	st, err := e.readStates(ctx, e.B, "prec > 0", "")
	if err != nil {
		return s, fmt.Errorf("store status: %w", err)
	}
	for _, t := range Tables {
		for _, p := range Rollups {
			rs := store.RollupState{Table: t, Precision: p}
			if wm := st[[2]int{int(t), int(p)}].watermark; wm != 0 {
				rs.Watermark = time.Unix(wm, 0).UTC()
			}
			n, _, err := scalar(ctx, e.B, fmt.Sprintf("SELECT COUNT(*) FROM rollup_dirty WHERE tbl = %s AND prec = %s", e.D.Placeholder(1), e.D.Placeholder(2)), int64(t), int64(p))
			if err != nil {
				return s, fmt.Errorf("store status: %w", err)
			}
			rs.Dirty = int(n)
			for _, f := range familiesOf(t) {
				n, _, err := scalar(ctx, e.B, "SELECT COUNT(*) FROM "+f.base+suffix(p))
				if err != nil {
					return s, fmt.Errorf("store status: %w", err)
				}
				rs.Rows += n
			}
			s.Rollups = append(s.Rollups, rs)
		}
	}
	n, _, err := scalar(ctx, e.B, "SELECT COUNT(*) FROM devices")
	if err != nil {
		return s, fmt.Errorf("store status: %w", err)
	}
	s.Devices = int(n)
	if s.Windows, err = e.windowStates(ctx); err != nil {
		return s, fmt.Errorf("store status: %w", err)
	}
	return s, nil
}
