// Package sqlbuild is the part of the statistics store that both SQL
// backends share: the table layout, the SQL text of queries and rollups,
// and the rollup algorithm (watermarks, dirty buckets, catch-up,
// retention). The backends only supply a connection (Backend) and the few
// spellings in which SQLite and PostgreSQL differ (Dialect), so that the
// two stores answer every query identically: the conformance suite checks
// one against the other's expectations, and a fix here fixes both.
//
// Every value reaches the database through a placeholder. Identifiers in
// the SQL text come only from the fixed tables of this package, never from
// a Query or a Batch: passwords and usernames are attacker-typed data.
//
// Times are stored as integer Unix seconds in both backends, which makes
// time bucketing the same integer arithmetic everywhere
// (from + (t-from)/w*w). Attacker addresses are 16-byte blobs (IPv4 as
// IPv4-mapped IPv6), so IPv4 and IPv6 share one column and one index.
// Times are truncated to whole seconds.
//
// Known limits, by design:
//   - At a rollup precision, a query of incidents that needs the attacker
//     address (DistinctIPs, DimIP, an IP filter) cannot also group by
//     device or filter by device, nor group by the country together with
//     the trap or action: the per-address rollups keep the country, or the
//     trap and action, because adding the device would make them as large
//     as the raw table. Likewise a query of passwords that needs the
//     address cannot group by trap. Such queries fail with
//     store.ErrBadQuery; the view runs none of them. Raw precision answers
//     everything.
//   - Password and port rows stored before they carried the attacker's
//     address (migration 3) have the address "::" and country "".
//   - A late row older than the raw retention (3 days by default) stays
//     out of the rollups: its bucket can no longer be recomputed from raw
//     rows, and recomputing it would lose the rows already deleted.
//   - devices.last_seen may lag by up to a minute (devSlack), which saves
//     a write per device per batch.
//   - Queries at a rollup precision read its buckets up to its watermark
//     and the rest from the finer rollups and raw rows (tail.go): the
//     newest minutes count at once at every precision.
package sqlbuild

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

// Rows is the subset of database/sql.Rows and pgx.Rows the engine uses.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Conn runs statements: a pool for reads, a transaction for writes.
type Conn interface {
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
}

// Backend is what a database driver provides to the Engine.
type Backend interface {
	// Conn runs reads, concurrently with writes.
	Conn
	// Tx runs fn in one write transaction, committed when fn returns nil.
	Tx(ctx context.Context, fn func(tx Conn) error) error
	// BulkInsert appends rows to a raw table inside tx, the fastest way
	// the driver knows (multi-row INSERT, COPY).
	BulkInsert(ctx context.Context, tx Conn, table string, cols []string, rows [][]any) error
	// Refused tells an error where the database refused the data of the
	// rows (reason one of store.RejectReasons, code the database's code)
	// from any other, which Insert reports as it is.
	Refused(err error) (reason, code string, ok bool)
}

// Dialect holds the spellings that differ between SQLite and PostgreSQL.
type Dialect struct {
	Name string
	// Placeholder returns the n-th (1-based) positional parameter.
	Placeholder func(n int) string
	// Least and Greatest are the two-argument scalar min and max.
	Least, Greatest string
	// Collate follows a text key in the select list so that "keys
	// ascending" is bytewise in both backends (PostgreSQL would otherwise
	// use the database's locale).
	Collate string
	// ShareLock and UpdateLock follow a SELECT of rollup_state rows: they
	// make an Insert and a Rollup of the same table wait for each other in
	// PostgreSQL, where a row written by an Insert still in flight would
	// otherwise slip behind a watermark unseen. SQLite has one writer, so
	// they are empty there.
	ShareLock, UpdateLock string
	// RollupLock, when set, runs first in every rollup transaction, so
	// that two processes sharing a database never roll up concurrently.
	RollupLock string
}

// width is a precision's bucket width in seconds.
func width(p store.Precision) int64 { return int64(p.Width() / time.Second) }

// floorTo aligns t down to a multiple of w.
func floorTo(t, w int64) int64 {
	r := t % w
	if r < 0 {
		r += w
	}
	return t - r
}

// ceilTo aligns t up to a multiple of w.
func ceilTo(t, w int64) int64 {
	f := floorTo(t, w)
	if f < t {
		return f + w
	}
	return f
}

// suffix names a precision's rollup tables.
func suffix(p store.Precision) string {
	switch p {
	case store.Quarter:
		return "_15m"
	case store.Hour:
		return "_1h"
	case store.Day:
		return "_1d"
	}
	return ""
}

// rawName is the raw table of a Table.
func rawName(t store.Table) string { return t.String() }

// family is one rollup of a raw table: which columns it keeps. Incidents
// have three, because one table cannot be both small and complete: the
// attacker address and the device each multiply the rows of a bucket, and
// count queries (the bulk of the view) need neither.
type family struct {
	table store.Table
	base  string
	cols  []string
}

var families = []family{
	// Counts by trap, action and country.
	{store.Incidents, "incidents", []string{"trap", "action", "country"}},
	// The same narrowed to trap and action, and to country: a few rows per
	// bucket for the totals and the rankings over a year.
	{store.Incidents, "incidents_ta", []string{"trap", "action"}},
	{store.Incidents, "incidents_c", []string{"country"}},
	// Per device, for the "My Devices" view (filtered by device first),
	// and narrowed to the trap or to the country: a visitor's year.
	{store.Incidents, "incidents_dev", []string{"device_id", "trap", "action", "country"}},
	{store.Incidents, "incidents_devt", []string{"device_id", "trap"}},
	{store.Incidents, "incidents_devc", []string{"device_id", "country"}},
	// Per attacker address: exact distinct counts, top attackers, one
	// attacker's graph.
	{store.Incidents, "incidents_ip", []string{"ip", "country"}},
	// Per attacker address and trap: the traps and actions of one
	// attacker (its detail page).
	{store.Incidents, "incidents_ipt", []string{"ip", "trap", "action"}},
	{store.Passwords, "passwords", []string{"trap", "username", "password"}},
	// Without the trap, and per password alone: one password's graph and
	// logins, the sliding windows.
	{store.Passwords, "passwords_pu", []string{"password", "username"}},
	{store.Passwords, "passwords_pw", []string{"password"}},
	// Per attacker address: the credentials one address tried, the
	// addresses and countries that tried one password.
	{store.Passwords, "passwords_ip", []string{"ip", "country", "username", "password"}},
	{store.Ports, "ports", []string{"port", "protocol"}},
	// Ports by protocol only: totals without a thousand ports per bucket.
	{store.Ports, "ports_p", []string{"protocol"}},
	// Per scanner address: the ports one address scanned.
	{store.Ports, "ports_ip", []string{"ip", "protocol", "port"}},
}

func familiesOf(t store.Table) []family {
	var out []family
	for _, f := range families {
		if f.table == t {
			out = append(out, f)
		}
	}
	return out
}

// Tables lists every table, for the Status figures.
var Tables = []store.Table{store.Incidents, store.Passwords, store.Ports}

// Rollups lists the rollup precisions, finest first.
var Rollups = []store.Precision{store.Quarter, store.Hour, store.Day}

// ph builds a list of placeholders and their arguments.
type ph struct {
	d    Dialect
	args []any
}

func (p *ph) add(v any) string {
	p.args = append(p.args, v)
	return p.d.Placeholder(len(p.args))
}

// IPBytes is the stored form of an address: 16 bytes, IPv4 mapped.
func IPBytes(a netip.Addr) []byte {
	b := a.Unmap().As16()
	return b[:]
}

// IPString is the Row key of a stored address.
func IPString(b []byte) string {
	if len(b) != 16 {
		return fmt.Sprintf("invalid:%x", b)
	}
	return netip.AddrFrom16([16]byte(b)).Unmap().String()
}

// badQuery wraps store.ErrBadQuery with a reason.
func badQuery(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrBadQuery, fmt.Sprintf(format, args...))
}

func placeholders(p *ph, vals []any) string {
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = p.add(v)
	}
	return strings.Join(s, ", ")
}
