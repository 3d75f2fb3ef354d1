package zmtp

import (
	"errors"
	"sync/atomic"
)

// Reason names why a connection was refused, why its handshake failed or
// why a ready peer was disconnected. The values are short snake_case words
// that never contain anything a peer sent, so they are safe as metric
// labels and in logs.
type Reason string

// The reasons of Event.Reason and of the counters in Stats.
const (
	// ReasonClosedByPeer: the peer closed or reset the connection, or sent
	// an ERROR command.
	ReasonClosedByPeer Reason = "closed_by_peer"
	// ReasonSocketClosed: our own Close.
	ReasonSocketClosed Reason = "socket_closed"
	// ReasonWriteTimeout: the peer accepted no data for
	// Options.WriteTimeout (a stalled subscriber, e.g. a zero TCP window).
	ReasonWriteTimeout Reason = "write_timeout"
	// ReasonHeartbeatTimeout: no traffic after a PING, or longer than the
	// TTL the peer announced.
	ReasonHeartbeatTimeout Reason = "heartbeat_timeout"
	// ReasonHandshakeTimeout: the greeting and security handshake took
	// longer than Options.HandshakeTimeout (half-open connections).
	ReasonHandshakeTimeout Reason = "handshake_timeout"
	// ReasonProtocolError: a violation of ZMTP or CurveZMQ (bad greeting,
	// frame, command, box, nonce, metadata or socket type).
	ReasonProtocolError Reason = "protocol_error"
	// ReasonMessageTooLarge: a frame or message above
	// Options.MaxMessageSize (or a handshake frame above 64 KiB).
	ReasonMessageTooLarge Reason = "message_too_large"
	// ReasonTooManyFrames: a message with more than Options.MaxFrames.
	ReasonTooManyFrames Reason = "too_many_frames"
	// ReasonTooManySubscriptions: a subscriber asked for more than
	// Options.MaxSubscriptions subscriptions.
	ReasonTooManySubscriptions Reason = "too_many_subscriptions"
	// ReasonAuthRefused: CurveOptions.Authorize refused the client's key,
	// or the server refused ours.
	ReasonAuthRefused Reason = "auth_refused"
	// ReasonNetworkError: any other error of the connection.
	ReasonNetworkError Reason = "network_error"
	// ReasonPeerLimit: an accepted connection was closed at once because
	// Options.MaxPeers connections were open.
	ReasonPeerLimit Reason = "peer_limit"
	// ReasonHandshakeLimit: an accepted connection was closed at once
	// because Options.MaxHandshakes handshakes were in progress.
	ReasonHandshakeLimit Reason = "handshake_limit"
)

// reasons lists every Reason, in the order of the counters.
var reasons = [...]Reason{
	ReasonClosedByPeer, ReasonSocketClosed, ReasonWriteTimeout, ReasonHeartbeatTimeout,
	ReasonHandshakeTimeout, ReasonProtocolError, ReasonMessageTooLarge, ReasonTooManyFrames,
	ReasonTooManySubscriptions, ReasonAuthRefused, ReasonNetworkError, ReasonPeerLimit, ReasonHandshakeLimit,
}

// The reasons that can end each stage of a connection, for Stats: every one
// of them is present in its map, counted or not.
var (
	disconnectReasons = []Reason{
		ReasonClosedByPeer, ReasonSocketClosed, ReasonWriteTimeout, ReasonHeartbeatTimeout,
		ReasonProtocolError, ReasonMessageTooLarge, ReasonTooManyFrames, ReasonTooManySubscriptions,
		ReasonNetworkError,
	}
	handshakeReasons = []Reason{
		ReasonClosedByPeer, ReasonHandshakeTimeout, ReasonProtocolError, ReasonMessageTooLarge,
		ReasonAuthRefused, ReasonNetworkError,
	}
	refuseReasons = []Reason{ReasonPeerLimit, ReasonHandshakeLimit}
)

func (r Reason) index() int {
	for i, x := range reasons {
		if x == r {
			return i
		}
	}
	return ReasonNetworkError.index()
}

// reasonCounters counts events by Reason.
type reasonCounters [len(reasons)]atomic.Uint64

func (c *reasonCounters) add(r Reason) { c[r.index()].Add(1) }

// snapshot returns the counts of the reasons of one stage.
func (c *reasonCounters) snapshot(of []Reason) map[Reason]uint64 {
	m := make(map[Reason]uint64, len(of))
	for _, r := range of {
		m[r] = c[r.index()].Load()
	}
	return m
}

// ReasonOf classifies an error of a connection (Event.Err) into a Reason.
func ReasonOf(err error) Reason {
	var perr *PeerError
	switch {
	case errors.Is(err, ErrClosed):
		return ReasonSocketClosed
	case errors.Is(err, ErrWriteTimeout):
		return ReasonWriteTimeout
	case errors.Is(err, ErrHeartbeatTimeout):
		return ReasonHeartbeatTimeout
	case errors.Is(err, ErrHandshakeTimeout):
		return ReasonHandshakeTimeout
	case errors.Is(err, ErrPeerLimit):
		return ReasonPeerLimit
	case errors.Is(err, ErrHandshakeLimit):
		return ReasonHandshakeLimit
	case errors.Is(err, ErrTooManyFrames):
		return ReasonTooManyFrames
	case errors.Is(err, ErrTooManySubscriptions):
		return ReasonTooManySubscriptions
	case errors.Is(err, ErrFrameTooLarge):
		return ReasonMessageTooLarge
	case errors.Is(err, ErrAuthRefused):
		return ReasonAuthRefused
	case errors.Is(err, ErrProtocol):
		return ReasonProtocolError
	case errors.As(err, &perr), isEOF(err):
		return ReasonClosedByPeer
	}
	return ReasonNetworkError
}
