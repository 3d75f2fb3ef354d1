// Package control is the operator's channel to a running `sentinel run`.
//
// The server listens on a Unix socket in its data directory, <data>/
// control.sock (Listen), and answers there the same JSON API as its admin
// routes over HTTP (/api/v1/admin/..., see package server), without a
// token: the socket's permissions decide who may use it (the socket is
// 0600, the data directory 0700, so its owner and root). From another host
// the same requests go to the HTTP listener with the admin token. Client
// speaks both, so every operator command has one implementation for both
// transports.
//
// Listen also makes the data directory single-server: it takes an
// exclusive lock on the directory (released by the kernel when the process
// ends, however it ends) and refuses to start when another server holds it
// or answers on the socket. Running reports whether a server answers, for
// commands that must not touch the files of a running server.
//
// The protocol is plain HTTP/1.1 on the socket: requests and answers are
// JSON; an error is a status code with {"error": "..."}. The types below
// are the bodies.
package control

import (
	"net/netip"
	"time"

	"github.com/dynfw/sentinel/internal/scorecard"
)

// SocketName is the socket's file name in the data directory.
const SocketName = "control.sock"

// Routes of the API, the same on the socket and on the HTTP listener.
const (
	PathBlock   = "/api/v1/admin/block"   // POST AdminRequest → AdminResult
	PathUnblock = "/api/v1/admin/unblock" // POST AdminRequest → AdminResult
	PathClear   = "/api/v1/admin/clear"   // POST AdminRequest (ip) → AdminResult
	PathList    = "/api/v1/admin/list"    // GET → List
	PathProbes  = "/api/v1/admin/probes"  // GET → []Probe
	PathEmit    = "/api/v1/admin/emit"    // POST EmitRequest → EmitResult
	PathExplain = "/api/v1/addresses/"    // GET + address → scorecard.Explanation (public on HTTP)
	PathHealth  = "/healthz"              // GET → server status
)

// AdminRequest is the body of block, unblock and clear.
type AdminRequest struct {
	// IP is an address, or an IPv6 prefix of the scorer's aggregate size.
	IP string `json:"ip"`
	// Duration ("6h"; Go syntax, so a week is "168h") or Until (RFC
	// 3339); block and unblock need one of them.
	Duration string    `json:"duration,omitempty"`
	Until    time.Time `json:"until,omitzero"`
	Reason   string    `json:"reason,omitempty"`
}

// AdminResult answers block, unblock and clear.
type AdminResult struct {
	OK     bool   `json:"ok"`
	Action string `json:"action"`
	// Key is the key the action applied to (an IPv6 address may map to
	// its aggregate).
	Key   string    `json:"key"`
	Until time.Time `json:"until,omitzero"`
}

// Decision is one key the list holds, or one manual override.
type Decision struct {
	Key netip.Prefix `json:"key"`
	// Listed: on the DynFW list now. Reason says why it entered (the event
	// that crossed the threshold, or a manual block), Since when.
	Listed      bool      `json:"listed"`
	Reason      string    `json:"reason,omitempty"`
	Since       time.Time `json:"since,omitzero"`
	EarliestEnd time.Time `json:"earliest_end,omitzero"`
	Score       float64   `json:"score"`
	Tags        []string  `json:"tags,omitempty"`
	// Override is the manual block or unblock in force, if any.
	Override *scorecard.Override `json:"override,omitempty"`
}

// List answers GET PathList: every listed key and every key with an
// override (an unblocked key is not listed), listed ones first.
type List struct {
	Version   uint64     `json:"version"`
	Serial    uint64     `json:"serial"`
	Listed    int        `json:"listed"`
	Decisions []Decision `json:"decisions"`
}

// Probe is one sensor the server has heard from since it started.
type Probe struct {
	// Name identifies it: "zmq:<address or key>", "mqtt:<serial>",
	// "http:<token name>", "local" (sentinel emit on the control socket).
	Name   string `json:"name"`
	Serial string `json:"serial,omitempty"`
	// Token is the fingerprint of its device token (never the token).
	Token string `json:"token,omitempty"`
	// Events counts what it sent since the server started; LastSeen is
	// the receive time of the latest. Zero for a probe known only from
	// the saved state.
	Events   uint64    `json:"events"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// EmitRequest is a probe message handed to the server on the control
// channel: the same topic and msgpack payload as a probe sends over ZMQ,
// parsed by the same parser. Unlike a probe's, each entry's "ts" places
// the event in time (within MaxPast), and Topic may name a device as
// sentinel-proxy does: sentinel/collect/<serial>/<token>/<suffix>.
type EmitRequest struct {
	// Topic is the probe's topic without "sentinel/collect/" ("minipot",
	// "fwlogs", "faillogs", "haas"), or a full sentinel-proxy topic.
	Topic   string `json:"topic"`
	Payload []byte `json:"payload"` // base64 in JSON
}

// EmitResult answers an EmitRequest.
type EmitResult struct {
	// Accepted events were processed; Refused entries were not, the first
	// reasons in Errors.
	Accepted int      `json:"accepted"`
	Refused  int      `json:"refused"`
	Errors   []string `json:"errors,omitempty"`
}

// MaxPast is how far in the past an emitted event may be placed. Older
// rows would miss the statistics' rollups: the store keeps raw rows for 3
// days (store.DefaultRetention) and re-rolls a late row's bucket only
// while its raw rows are kept; an hour of margin keeps a row from being
// deleted before the next rollup counts it.
const MaxPast = 71 * time.Hour

// MaxFuture is how far ahead of the server's clock an emitted event may
// be placed: clock skew between the shell and the server.
const MaxFuture = time.Minute
