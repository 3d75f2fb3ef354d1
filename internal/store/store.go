// Package store keeps the statistics of Sentinel View: incidents, passwords
// and port scans reported by the probes, and the devices they came from,
// with rollups at 15 minutes, 1 hour and 1 day.
//
// Data enters as Batches of rows, written by the server as it processes
// events. Rollups are maintained by Rollup, which is idempotent: each
// precision keeps a watermark (every bucket before it is final), catches up
// after downtime, re-rolls buckets that received late rows, and never
// counts a row twice, so running it again changes nothing. Data leaves
// through Query, one generic aggregation (sum of counts or distinct
// attacker addresses, per time bucket and per grouping columns) from which
// package stats builds every resource of the web view. A rollup keeps the
// attacker address as a column, so distinct-attacker counts are exact at
// every precision.
//
// Two backends implement Store: SQLite (embedded, pure Go, the default)
// and PostgreSQL (with TimescaleDB hypertables where the extension is
// present).
package store

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Precision is the resolution a query reads from.
type Precision int

// Precisions, from the raw rows to daily rollups.
const (
	Raw     Precision = iota
	Quarter           // 15 minutes
	Hour
	Day
)

// Width is the bucket width of a rollup precision (0 for Raw).
func (p Precision) Width() time.Duration {
	switch p {
	case Quarter:
		return 15 * time.Minute
	case Hour:
		return time.Hour
	case Day:
		return 24 * time.Hour
	}
	return 0
}

func (p Precision) String() string {
	switch p {
	case Raw:
		return "raw"
	case Quarter:
		return "15m"
	case Hour:
		return "1h"
	case Day:
		return "1d"
	}
	return "unknown"
}

// Table is one kind of data.
type Table int

// Tables.
const (
	Incidents Table = iota
	Passwords
	Ports
)

func (t Table) String() string {
	switch t {
	case Incidents:
		return "incidents"
	case Passwords:
		return "passwords"
	case Ports:
		return "ports"
	}
	return "unknown"
}

// Dim is a grouping column. Not every table has every column:
// Incidents: IP, Country, Trap, Action, Device (serial); Passwords: IP,
// Country, Trap, Username, Password; Ports: IP, Port, Protocol.
type Dim int

// Dimensions.
const (
	DimIP Dim = iota
	DimCountry
	DimTrap
	DimAction
	DimDevice
	DimUsername
	DimPassword
	DimPort
	DimProtocol
)

// Measure is what a query sums up.
type Measure int

// Measures.
const (
	// Count is the number of rows (a rollup row counts what it sums).
	Count Measure = iota
	// DistinctIPs is the number of distinct attacker addresses
	// (Incidents only).
	DistinctIPs
)

// Query is one aggregation.
type Query struct {
	Table     Table
	Precision Precision
	// From and To bound the time: From <= time < To. With a rollup
	// precision they must be aligned to its width. The rollup answers up
	// to its watermark; past it, the finer rollups and the raw rows do,
	// so a range that ends now counts every row stored.
	From, To time.Time
	// Bucket, when positive, groups rows by time buckets of this width,
	// starting at From (a multiple of the precision's width). Buckets
	// without rows are not returned: the caller fills gaps.
	Bucket  time.Duration
	GroupBy []Dim
	Measure Measure
	// Filters.
	IP       netip.Addr // rows of one attacker address (any table)
	Password *string    // passwords rows of one password
	// DeviceTokens, when not nil, restricts incidents to devices with
	// these tokens (an empty slice matches nothing).
	DeviceTokens []string
	// NonEmpty drops rows where a grouped username or password is empty
	// or a lone newline, as the reference view does.
	NonEmpty bool
	// Only restricts the grouped key tuples to these (for the lines of a
	// multi-line graph).
	Only [][]string
	// Limit keeps the first rows after ordering by value descending, then
	// keys ascending (0: all). Ignored with Bucket.
	Limit int
}

// Row is one result. Keys follow Query.GroupBy; an unknown country is "",
// an unknown address (password and port rows stored before they carried
// one) is "::". Port keys are decimal numbers.
type Row struct {
	Bucket time.Time // start of the bucket; zero without Query.Bucket
	Keys   []string
	Value  int64
}

// Batch is what the server writes at once.
type Batch struct {
	Incidents []Incident
	Passwords []Password
	Ports     []Port
}

// Len is the number of rows.
func (b *Batch) Len() int { return len(b.Incidents) + len(b.Passwords) + len(b.Ports) }

// Incident is one event of an attacker on a probe.
type Incident struct {
	Time time.Time
	// Device identifies the probe: a router's serial number and device
	// token (MQTT), or a name with an empty token (other ingest paths).
	Serial, Token string
	// Trap and Action as Sentinel View names them: minipot_telnet /
	// login, fwlogs / small_port_scan, haas / logged, ...
	Trap, Action string
	IP           netip.Addr
	// Country is the ISO 3166 alpha-2 code of IP, "" if unknown.
	Country string
}

// Password is one credential an attacker tried.
type Password struct {
	Time               time.Time
	Trap               string
	Username, Password string
	// IP is the attacker's address and Country its country ("" if
	// unknown), for the attacker's and the password's detail pages. The
	// zero IP is stored as "::" (unknown).
	IP      netip.Addr
	Country string
}

// Port is one packet a router's firewall logged: the port attacked.
type Port struct {
	Time     time.Time
	Port     uint16
	Protocol string // TCP, UDP or other
	// IP is the scanner's address; the zero IP is stored as "::".
	IP netip.Addr
}

// Device is a probe known to the store.
type Device struct {
	Serial, Token string
	FirstSeen     time.Time
	LastSeen      time.Time
}

// RollupState is where one precision's rollup stands.
type RollupState struct {
	Table     Table
	Precision Precision
	// Watermark: every bucket before it is rolled up.
	Watermark time.Time
	// Dirty counts buckets before the watermark that received late rows
	// and wait to be rolled up again.
	Dirty int
	Rows  int64
}

// Status describes the store for `sentinel view status`.
type Status struct {
	Backend string
	Tables  map[Table]int64 // raw rows
	Rollups []RollupState
	Devices int
	Windows []WindowState
	Bytes   int64 // on-disk size, when known
}

// RollupReport says what one Rollup call did.
type RollupReport struct {
	Buckets int // buckets (re)computed
	Rows    int64
	Took    time.Duration
}

// Retention says how long each precision keeps its rows (0: forever).
type Retention struct {
	Raw, Quarter, Hour, Day time.Duration
}

// DefaultRetention keeps what the periods of the web view need, with
// margin: raw rows for 3 days (the 1h period and rebuilds), 15-minute
// rollups 14 days (6h and 1d periods), hourly 60 days (1w), daily 2 years
// (1m, 3m, 1y).
var DefaultRetention = Retention{Raw: 72 * time.Hour, Quarter: 14 * 24 * time.Hour, Hour: 60 * 24 * time.Hour, Day: 2 * 365 * 24 * time.Hour}

// Options configure a backend.
type Options struct {
	// Grace is how long after a bucket ends before it is rolled up, so
	// that events in flight are counted the first time (default 2 min).
	// Later rows still count: their bucket is rolled up again.
	Grace     time.Duration
	Retention Retention
	// Windows are the sliding windows kept as running totals (nil:
	// DefaultWindows; an empty slice: none).
	Windows []Window
}

// Window is a sliding window of one rollup precision whose totals the
// store keeps up to date, so that queries over exactly that window (top
// attackers, passwords, usernames, combinations; distinct attackers per
// country) read a few rows instead of every bucket. Its end is the rollup
// watermark rounded down to Step, its start is Span before. Queries over
// any other range read the rollups as usual: a window only makes a query
// faster, never different.
type Window struct {
	Precision  Precision
	Span, Step time.Duration
}

// DefaultWindows are the finished parts of the web view's longer periods
// (its package stats checks that they match): a period's window ends with
// the bucket in progress, which the store reads from finer rows, so its
// window is the period's span less one step: a week of hourly rollups
// moving every 3 hours; 30, 90 and 364 days of daily rollups moving every
// day.
var DefaultWindows = []Window{
	{Hour, 7*24*time.Hour - 3*time.Hour, 3 * time.Hour},
	{Day, 29 * 24 * time.Hour, 24 * time.Hour},
	{Day, 89 * 24 * time.Hour, 24 * time.Hour},
	{Day, 363 * 24 * time.Hour, 24 * time.Hour},
}

// WindowState is where one sliding window of one table stands.
type WindowState struct {
	Table Table
	Window
	// From and To bound what the totals hold; zero before the first
	// build. Current reports that they match the target range.
	From, To time.Time
	Current  bool
}

// Store is implemented by the SQLite and PostgreSQL backends. Methods are
// safe for concurrent use.
type Store interface {
	// Insert writes a batch in one transaction and registers unknown
	// devices. When the database refuses a row for what it holds, the
	// error is a *RejectedError and nothing of the batch is written.
	Insert(ctx context.Context, b *Batch) error
	// Query runs one aggregation.
	Query(ctx context.Context, q Query) ([]Row, error)
	// Rollup brings every precision up to date as of now: idempotent,
	// catching up after downtime, re-rolling buckets with late rows.
	Rollup(ctx context.Context, now time.Time) (RollupReport, error)
	// Rebuild recomputes the rollups of p (and the coarser ones built on
	// it) for [from, to) from their source.
	Rebuild(ctx context.Context, p Precision, from, to time.Time) (RollupReport, error)
	// Retain deletes rows older than the retention of their precision.
	Retain(ctx context.Context, now time.Time) error
	// Devices returns the known devices with these tokens.
	Devices(ctx context.Context, tokens []string) ([]Device, error)
	// Status reports sizes and rollup watermarks.
	Status(ctx context.Context) (Status, error)
	Close() error
}

// ErrBadQuery reports a query the store cannot run (a column the table
// lacks, an unaligned range).
var ErrBadQuery = errors.New("store: bad query")

// Reasons why a database refuses rows (RejectedError.Reason).
const (
	// RejectInvalid: a value is not valid for its column (PostgreSQL
	// SQLSTATE class 22, data exception, e.g. a NUL byte or invalid
	// UTF-8 in text; SQLite SQLITE_MISMATCH; an incident without an
	// address).
	RejectInvalid = "invalid_value"
	// RejectConstraint: a constraint refused the row (PostgreSQL class
	// 23; SQLite SQLITE_CONSTRAINT).
	RejectConstraint = "constraint"
	// RejectTooLarge: a value beyond a limit of the database (PostgreSQL
	// 54000, e.g. an index row too large; SQLite SQLITE_TOOBIG).
	RejectTooLarge = "too_large"
)

// RejectReasons lists every RejectedError.Reason.
var RejectReasons = []string{RejectInvalid, RejectConstraint, RejectTooLarge}

// RejectedError is the error of an Insert whose rows the database refused
// for what they hold: the same rows fail the same way however often they
// are retried, while the others of the batch would be written. Any other
// Insert error (connection refused or lost, timeout, database shutting
// down) is an outage: the same rows may be written later.
type RejectedError struct {
	// Reason is one of RejectReasons.
	Reason string
	// Code is the database's own code for the refusal (a SQLSTATE such as
	// "22021", an SQLite result code name); it never holds the data, so
	// it may be logged, unlike Err.
	Code string
	Err  error
}

func (e *RejectedError) Error() string {
	return "store: rows refused (" + e.Reason + ", " + e.Code + "): " + e.Err.Error()
}

func (e *RejectedError) Unwrap() error { return e.Err }
