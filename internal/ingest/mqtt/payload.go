package mqtt

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dynfw/sentinel/internal/msgpack"
)

// Message is one message of a router, as handed to the handler of a
// Subscriber. The probe payload is not parsed here.
type Message struct {
	// Serial is the router's certificate CN, taken from the topic.
	Serial string
	// Token is the device token; "" in the legacy layout. It is a secret
	// that opens the router's Sentinel View page: never log it, log
	// devicetoken.Fingerprint(Token).
	Token string
	// Suffix is the probe's topic without "sentinel/collect/" ("minipot",
	// "fwlogs", ...), or "status" for a status message.
	Suffix string
	// Payload is the msgpack payload, inflated if it arrived zlib
	// compressed. It is not shared with anything else: the handler may
	// keep or modify it.
	Payload []byte
	// Legacy is set for messages of proxy ≤ 1.3.1: without a token or
	// with a zlib payload.
	Legacy bool
	// Zlib is set when Payload was inflated (proxy ≤ 1.3.1).
	Zlib bool
	// Status is the decoded status message, nil for data.
	Status *Status
	// Received is when the message arrived from the broker.
	Received time.Time
}

// StatusAction is the "action" of a status message.
type StatusAction string

// The actions sent by sentinel-proxy ≥ 1.4 (up to 2.2.0, the last release).
// A map with any other action is dropped as DropBadStatus: a probe whose ZMQ
// topic is "sentinel/collect/status" would publish on the status topic, and
// its maps must not pass for status messages; a new action, should one
// appear, shows up in the drop counters rather than confusing the handler.
const (
	// StatusHeartbeat is sent on every (re)connection and every 5 minutes.
	StatusHeartbeat StatusAction = "heartbeat"
	// StatusDisconnect is sent when the proxy shuts down cleanly.
	StatusDisconnect StatusAction = "disconnect"
	// StatusLastWill is the proxy's MQTT last will, published by the broker
	// when the connection is lost without a clean shutdown.
	StatusLastWill StatusAction = "last_will_disconnect"
)

// Status is a status message of proxy ≥ 1.4: a msgpack map
// {"action": str, "ts": int}.
type Status struct {
	Action StatusAction
	// Time is "ts" (seconds since the epoch). The last will has no "ts",
	// since it is written long before it is sent; then Time is the receive
	// time in whole seconds and TimeAdded is set, as Sentinel's smash did.
	Time      time.Time
	TimeAdded bool
}

// DropReason classifies a message that was not handed to the handler. The
// values are short snake_case words, usable as metric labels.
type DropReason string

// The reasons for dropping a message.
const (
	DropBadTopic     DropReason = "bad_topic"     // not under the root, or no suffix
	DropBadSerial    DropReason = "bad_serial"    // CN empty, too long or with odd characters
	DropBadToken     DropReason = "bad_token"     // token fails devicetoken.Validate
	DropNoToken      DropReason = "no_token"      // legacy layout while Config.RequireToken is set
	DropEmpty        DropReason = "empty_payload" // zero-length payload
	DropTooLarge     DropReason = "too_large"     // payload above Config.MaxPayload as received
	DropInflateLimit DropReason = "inflate_limit" // zlib payload inflating above Config.MaxPayload
	DropBadZlib      DropReason = "bad_zlib"      // zlib header but a broken stream
	DropBadStatus    DropReason = "bad_status"    // status topic without a valid status map
	DropRetained     DropReason = "retained"      // a retained message replayed by the broker
	DropQueueFull    DropReason = "queue_full"    // the handler fell behind; see Config.QueueSize
	DropShutdown     DropReason = "shutdown"      // still queued when Run returned
)

// dropReasons lists every DropReason, in the order of the counters.
var dropReasons = [...]DropReason{
	DropBadTopic, DropBadSerial, DropBadToken, DropNoToken, DropEmpty,
	DropTooLarge, DropInflateLimit, DropBadZlib, DropBadStatus,
	DropRetained, DropQueueFull, DropShutdown,
}

func (r DropReason) index() int {
	for i, d := range dropReasons {
		if d == r {
			return i
		}
	}
	panic("mqtt: unknown drop reason " + string(r))
}

// DropError is the error for a message that is dropped: why, and the
// underlying error. Its text never contains a device token.
type DropError struct {
	Reason DropReason
	Err    error
}

// Error returns the reason and the underlying error's text. The text never
// quotes the topic or the payload either; log the Reason all the same.
func (e *DropError) Error() string { return string(e.Reason) + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *DropError) Unwrap() error { return e.Err }

// Errors of payload decoding, wrapped in a *DropError.
var (
	ErrEmptyPayload = errors.New("empty payload")
	ErrTooLarge     = errors.New("payload larger than the limit")
	ErrInflateLimit = errors.New("zlib payload inflates beyond the limit")
	ErrBadZlib      = errors.New("broken zlib stream")
	ErrBadStatus    = errors.New("malformed status message")
)

// isZlib reports whether b starts with an RFC 1950 header: method 8
// (deflate), a window of at most 32 KiB and a valid FCHECK. compress2 writes
// 0x78 0xda at level 9.
//
// Such a payload cannot be msgpack: the header's first byte (0x08, 0x18, …,
// 0x78) is a positive fixint, which is a complete msgpack value by itself, so
// a payload of two or more bytes that starts with it is not one msgpack
// value. The decision is therefore exact, not a heuristic, and real probe
// payloads start with a map or array marker anyway.
func isZlib(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

// decodePayload returns the msgpack payload of b, inflating it if it is a
// zlib stream, and whether it did. max bounds both b and the inflated size.
// The result never aliases b when inflated; otherwise it is b itself.
func decodePayload(b []byte, max int) ([]byte, bool, error) {
	switch {
	case len(b) == 0:
		return nil, false, &DropError{Reason: DropEmpty, Err: ErrEmptyPayload}
	case len(b) > max:
		return nil, false, &DropError{Reason: DropTooLarge, Err: fmt.Errorf("%w: %d > %d bytes", ErrTooLarge, len(b), max)}
	case !isZlib(b):
		return b, false, nil
	}
	out, err := inflate(b, max)
	return out, true, err
}

// zlibReaders recycles inflaters: each holds a 32 KiB window and tables
// worth keeping between messages.
var zlibReaders sync.Pool

// inflate decompresses the zlib stream b, which must be exactly one stream
// with a correct checksum and nothing after it, into at most max bytes. It
// stops reading as soon as the output passes max, so a zip bomb costs at most
// max bytes of memory and the time to produce them.
func inflate(b []byte, max int) ([]byte, error) {
	// bytes.Reader is an io.ByteReader, so the inflater reads exactly the
	// stream and what is left in br afterwards is trailing data.
	br := bytes.NewReader(b)
	var zr io.ReadCloser
	if r, ok := zlibReaders.Get().(io.ReadCloser); ok {
		if err := r.(zlib.Resetter).Reset(br, nil); err != nil {
			zlibReaders.Put(r)
			return nil, &DropError{Reason: DropBadZlib, Err: fmt.Errorf("%w: %v", ErrBadZlib, err)}
		}
		zr = r
	} else {
		r, err := zlib.NewReader(br)
		if err != nil {
			return nil, &DropError{Reason: DropBadZlib, Err: fmt.Errorf("%w: %v", ErrBadZlib, err)}
		}
		zr = r
	}
	defer zlibReaders.Put(zr)

	// Probe messages compress about 3:1; start there and let the buffer
	// grow, never past max+1.
	var out bytes.Buffer
	out.Grow(min(4*len(b), max+1))
	_, err := io.Copy(&out, io.LimitReader(zr, int64(max)+1))
	switch {
	case out.Len() > max:
		return nil, &DropError{Reason: DropInflateLimit, Err: fmt.Errorf("%w of %d bytes (%d compressed)", ErrInflateLimit, max, len(b))}
	case err != nil:
		return nil, &DropError{Reason: DropBadZlib, Err: fmt.Errorf("%w: %v", ErrBadZlib, err)}
	case br.Len() != 0:
		return nil, &DropError{Reason: DropBadZlib, Err: fmt.Errorf("%w: %d bytes after the end of the stream", ErrBadZlib, br.Len())}
	}
	return out.Bytes(), nil
}

// parseStatus decodes a status map. Keys other than "action" and "ts" are
// skipped; "action" is required (str or bin, one of the StatusAction
// constants), "ts" is optional (any integer encoding) and replaced by the
// receive time when absent.
func parseStatus(b []byte, received time.Time) (*Status, error) {
	bad := func(format string, args ...any) error {
		return &DropError{Reason: DropBadStatus, Err: fmt.Errorf("%w: "+format, append([]any{ErrBadStatus}, args...)...)}
	}
	r := msgpack.NewReader(b)
	n, err := r.ReadMapHeader()
	if err != nil {
		return nil, bad("not a map: %v", err)
	}
	var st Status
	haveAction, haveTS := false, false
	for range n {
		key, err := r.ReadStringBytes()
		if err != nil {
			// A key of another type is no field of ours: skip the pair.
			if err = r.Skip(); err == nil {
				err = r.Skip()
			}
			if err != nil {
				return nil, bad("%v", err)
			}
			continue
		}
		switch string(key) {
		case "action":
			var a string
			if a, err = r.ReadString(); err == nil {
				st.Action, haveAction = StatusAction(a), true
			}
		case "ts":
			var ts int64
			if ts, err = r.ReadInt(); err == nil {
				st.Time, haveTS = time.Unix(ts, 0), true
			}
		default:
			err = r.Skip()
		}
		if err != nil {
			return nil, bad("a field of %d bytes: %v", len(key), err)
		}
	}
	switch {
	case r.Remaining() != 0:
		return nil, bad("%d bytes after the map", r.Remaining())
	case !haveAction:
		return nil, bad("no action")
	case st.Action != StatusHeartbeat && st.Action != StatusDisconnect && st.Action != StatusLastWill:
		return nil, bad("unknown action of %d bytes", len(st.Action))
	case !haveTS:
		st.Time, st.TimeAdded = received.Truncate(time.Second), true
	}
	return &st, nil
}
