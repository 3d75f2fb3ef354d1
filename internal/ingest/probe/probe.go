// Package probe turns what Sentinel probes send (minipots, firewall logs,
// fail logs, and HaaS) into normalised events. It is the one place where a
// probe's msgpack payload is parsed: the ZMQ and MQTT ingest paths both hand
// it a topic suffix ("minipot", "fwlogs", ...) and the payload bytes, and get
// events back.
//
// Payloads are untrusted. A payload may be one map or an array of maps
// (minipot 2.3.0 batches up to ten); strings may be msgpack str or bin;
// integers any width; unknown keys are ignored. A bad entry of a batch is
// skipped and counted without losing the others. Attacker-supplied strings
// (usernames, passwords, URLs, user agents) are never interpreted: they are
// made storable (events.Storable: invalid UTF-8 and controls escaped as
// \xHH, cut at MaxDetail bytes on a character boundary) as they are read.
package probe

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/msgpack"
)

// MaxDetail bounds each attacker-supplied string kept from a payload, in
// bytes of its storable form (see events.Storable).
const MaxDetail = events.MaxText

// MaxBatch bounds the entries of one payload.
const MaxBatch = 10_000

// Reasons a payload or an entry is refused.
var (
	ErrUnknownTopic = errors.New("unknown topic")
	ErrIgnored      = errors.New("topic carries no attack events") // survey
	ErrMissing      = errors.New("missing field")
	ErrBadAddress   = errors.New("bad address")
	ErrBadType      = errors.New("unknown type or action")
	ErrMalformed    = errors.New("malformed payload")
	ErrTooMany      = errors.New("too many entries")
)

// EntryError says which entry of a payload was refused and why.
type EntryError struct {
	Index int // -1 for the payload as a whole
	Field string
	Err   error
}

func (e *EntryError) Error() string {
	where := "payload"
	if e.Index >= 0 {
		where = fmt.Sprintf("entry %d", e.Index)
	}
	if e.Field != "" {
		where += " field " + e.Field
	}
	return where + ": " + e.Err.Error()
}

func (e *EntryError) Unwrap() error { return e.Err }

const (
	kindMinipot = iota + 1
	kindFwlogs
	kindFaillogs
	kindHaas
)

// Meta is what the caller knows about the message: when it arrived and from
// which probe.
type Meta struct {
	Received int64 // Unix nanoseconds
	Probe    events.ProbeID
	Source   events.Source
}

// Parse appends the events of one probe message to dst. suffix is the
// topic without "sentinel/collect/". It returns the events and the entries
// it refused; an error of the whole payload (unknown topic, not msgpack)
// comes back as the only EntryError with Index -1.
func Parse(dst []events.Event, suffix string, payload []byte, meta Meta) ([]events.Event, []*EntryError) {
	// A kind, not a func value: direct calls let the reader and the event
	// stay on the stack.
	var kind int
	switch suffix {
	case "minipot", "minipot/telnet", "minipot/ftp", "minipot/smtp", "minipot/http":
		kind = kindMinipot
	case "fwlogs":
		kind = kindFwlogs
	case "faillogs":
		kind = kindFaillogs
	case "haas":
		kind = kindHaas
	case "survey":
		return dst, []*EntryError{{Index: -1, Err: ErrIgnored}}
	default:
		return dst, []*EntryError{{Index: -1, Err: fmt.Errorf("%w %q", ErrUnknownTopic, clip(suffix))}}
	}
	var r msgpack.Reader
	r.Reset(payload)
	t, err := r.PeekType()
	if err != nil {
		return dst, []*EntryError{{Index: -1, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}}
	}
	var errs []*EntryError
	n := 1
	switch t {
	case msgpack.TypeMap:
	case msgpack.TypeArray:
		if n, err = r.ReadArrayHeader(); err != nil {
			return dst, []*EntryError{{Index: -1, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}}
		}
		if n > MaxBatch {
			return dst, []*EntryError{{Index: -1, Err: fmt.Errorf("%w: %d", ErrTooMany, n)}}
		}
	default:
		return dst, []*EntryError{{Index: -1, Err: fmt.Errorf("%w: a %v, not a map or an array of maps", ErrMalformed, t)}}
	}
	for i := range n {
		e := events.Event{Time: meta.Received, Probe: meta.Probe, Source: meta.Source}
		start := r.Offset()
		var ee *EntryError
		switch kind {
		case kindMinipot:
			ee = minipot(&r, &e)
		case kindFwlogs:
			ee = fwlogs(&r, &e)
		case kindFaillogs:
			ee = faillogs(&r, &e)
		default:
			ee = haas(&r, &e)
		}
		if ee != nil {
			ee.Index = i
			errs = append(errs, ee)
			// Resynchronise on the next entry: skip what is left of
			// this one, if the reader stopped inside it.
			if r.Offset() == start {
				if err := r.Skip(); err != nil {
					errs = append(errs, &EntryError{Index: i, Err: ErrMalformed})
					return dst, errs
				}
			}
			continue
		}
		dst = append(dst, e)
	}
	if r.Remaining() != 0 {
		errs = append(errs, &EntryError{Index: -1, Err: fmt.Errorf("%w: trailing bytes", ErrMalformed)})
	}
	return dst, errs
}

// fields walks one map, calling fn for each key; fn must consume the value
// (or return false to have it skipped).
func fields(r *msgpack.Reader, fn func(key []byte) (bool, *EntryError)) *EntryError {
	n, err := r.ReadMapHeader()
	if err != nil {
		// An array element that is not a map: consume it.
		if t, perr := r.PeekType(); perr == nil && t != msgpack.TypeInvalid {
			_ = r.Skip()
		}
		return &EntryError{Err: fmt.Errorf("%w: entry is not a map", ErrMalformed)}
	}
	var firstErr *EntryError
	for range n {
		key, err := r.ReadStringBytes()
		if err != nil {
			if err := r.Skip(); err != nil { // a non-string key
				return &EntryError{Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
			}
			if err := r.Skip(); err != nil {
				return &EntryError{Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
			}
			continue
		}
		used, ee := fn(key)
		if ee != nil && firstErr == nil {
			firstErr = ee
		}
		if !used {
			if err := r.Skip(); err != nil {
				return &EntryError{Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
			}
		}
	}
	return firstErr
}

func skipPair(r *msgpack.Reader) error {
	if err := r.Skip(); err != nil {
		return err
	}
	return r.Skip()
}

func readTS(r *msgpack.Reader, e *events.Event) (bool, *EntryError) {
	if t, _ := r.PeekType(); t == msgpack.TypeFloat {
		f, err := r.ReadFloat64()
		if err != nil {
			return true, &EntryError{Field: "ts", Err: err}
		}
		e.TS = int64(f)
		return true, nil
	}
	v, err := r.ReadInt()
	if err != nil {
		return false, &EntryError{Field: "ts", Err: err}
	}
	e.TS = v
	return true, nil
}

func readAddr(r *msgpack.Reader, field string) (netip.Addr, bool, *EntryError) {
	b, err := r.ReadStringBytes()
	if err != nil {
		return netip.Addr{}, false, &EntryError{Field: field, Err: fmt.Errorf("%w: %v", ErrBadAddress, err)}
	}
	p, err := dynfw.ParseAddrBytes(b, false)
	if err != nil {
		return netip.Addr{}, true, &EntryError{Field: field, Err: fmt.Errorf("%w %q: %v", ErrBadAddress, clip(string(b)), err)}
	}
	return p.Addr(), true, nil
}

func readDetail(r *msgpack.Reader) (string, bool) {
	b, err := r.ReadStringBytes()
	if err != nil {
		return "", false
	}
	return events.StorableBytes(b, MaxDetail), true
}

func readPort(r *msgpack.Reader) (uint16, bool) {
	v, err := r.ReadUint()
	if err != nil || v > 65535 {
		return 0, err == nil
	}
	return uint16(v), true
}

// minipot reads {ts, type, ip, action, data}. It is the hot path of the
// ingest, so it walks the map without closures: the event and its details
// stay on the stack unless the entry has data.
func minipot(r *msgpack.Reader, e *events.Event) *EntryError {
	var proto, action []byte
	var d events.Details
	hasDetails := false
	n, err := r.ReadMapHeader()
	if err != nil {
		if t, perr := r.PeekType(); perr == nil && t != msgpack.TypeInvalid {
			_ = r.Skip()
		}
		return &EntryError{Err: fmt.Errorf("%w: entry is not a map", ErrMalformed)}
	}
	var firstErr *EntryError
	for range n {
		key, err := r.ReadStringBytes()
		if err != nil {
			// A key that is not a string: skip it and its value.
			if skipErr := skipPair(r); skipErr != nil {
				return &EntryError{Err: fmt.Errorf("%w: %v", ErrMalformed, skipErr)}
			}
			continue
		}
		used := false
		switch string(key) {
		case "ts":
			var ee *EntryError
			used, ee = readTS(r, e)
			if ee != nil && firstErr == nil {
				firstErr = ee
			}
		case "type":
			b, err := r.ReadStringBytes()
			proto, used = b, err == nil
		case "action":
			b, err := r.ReadStringBytes()
			action, used = b, err == nil
		case "ip":
			a, u, ee := readAddr(r, "ip")
			e.Addr, used = a, u
			if ee != nil && firstErr == nil {
				firstErr = ee
			}
		case "data":
			dn, err := r.ReadMapHeader()
			if err != nil {
				break
			}
			used = true
			for range dn {
				k, err := r.ReadStringBytes()
				if err != nil {
					_ = r.Skip()
					_ = r.Skip()
					continue
				}
				var dst *string
				switch string(k) {
				case "username":
					dst = &d.Username
				case "password":
					dst = &d.Password
				case "method":
					dst = &d.Method
				case "url":
					dst = &d.URL
				case "user_agent":
					dst = &d.UserAgent
				default:
					_ = r.Skip()
					continue
				}
				v, ok := readDetail(r)
				if !ok {
					_ = r.Skip()
					continue
				}
				*dst = v
				hasDetails = true
			}
		}
		if !used {
			if err := r.Skip(); err != nil {
				return &EntryError{Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
			}
		}
	}
	if firstErr != nil {
		return firstErr
	}
	switch {
	case proto == nil:
		return &EntryError{Field: "type", Err: ErrMissing}
	case action == nil:
		return &EntryError{Field: "action", Err: ErrMissing}
	case !e.Addr.IsValid():
		return &EntryError{Field: "ip", Err: ErrMissing}
	}
	e.Type = minipotType(proto, action)
	if e.Type == events.Invalid {
		return &EntryError{Field: "action", Err: fmt.Errorf("%w: %q/%q", ErrBadType, clip(string(proto)), clip(string(action)))}
	}
	if hasDetails {
		dd := d
		e.Details = &dd
	}
	return nil
}

func minipotType(proto, action []byte) events.Type {
	switch string(proto) {
	case "telnet":
		switch string(action) {
		case "connect":
			return events.TelnetConnect
		case "login":
			return events.TelnetLogin
		case "invalid":
			return events.TelnetInvalid
		}
	case "ftp":
		switch string(action) {
		case "connect":
			return events.FTPConnect
		case "login":
			return events.FTPLogin
		case "invalid":
			return events.FTPInvalid
		}
	case "smtp":
		switch string(action) {
		case "connect":
			return events.SMTPConnect
		case "login":
			return events.SMTPLogin
		case "invalid":
			return events.SMTPInvalid
		}
	case "http":
		switch string(action) {
		case "connect":
			return events.HTTPConnect
		case "message":
			return events.HTTPMessage
		case "login":
			return events.HTTPLogin
		case "invalid":
			return events.HTTPInvalid
		}
	}
	return events.Invalid
}

// fwlogs reads {ts, protocol, ip, port, local_ip, local_port}: one logged
// packet, input of the port-scan detector.
func fwlogs(r *msgpack.Reader, e *events.Event) *EntryError {
	d := &events.Details{}
	ee := fields(r, func(key []byte) (bool, *EntryError) {
		switch string(key) {
		case "ts":
			return readTS(r, e)
		case "protocol":
			v, ok := readDetail(r)
			if len(v) > 16 {
				v = v[:16]
			}
			d.Protocol = v
			return ok, nil
		case "ip":
			a, used, ee := readAddr(r, "ip")
			e.Addr = a
			return used, ee
		case "local_ip":
			a, used, ee := readAddr(r, "local_ip")
			d.LocalAddr = a
			return used, ee
		case "port":
			p, ok := readPort(r)
			d.Port = p
			return ok, nil
		case "local_port":
			p, ok := readPort(r)
			d.LocalPort = p
			return ok, nil
		}
		return false, nil
	})
	if ee != nil {
		return ee
	}
	if !e.Addr.IsValid() {
		return &EntryError{Field: "ip", Err: ErrMissing}
	}
	e.Type = events.FwlogsPacket
	e.Details = d
	return nil
}

// faillogs reads {ts, service, user, ip, port}: a failed login on the
// router itself (sentinel-faillogs; only sshd so far).
func faillogs(r *msgpack.Reader, e *events.Event) *EntryError {
	var service string
	d := &events.Details{}
	ee := fields(r, func(key []byte) (bool, *EntryError) {
		switch string(key) {
		case "ts":
			return readTS(r, e)
		case "service":
			v, ok := readDetail(r)
			service = v
			return ok, nil
		case "user":
			v, ok := readDetail(r)
			d.Username = v
			return ok, nil
		case "ip":
			a, used, ee := readAddr(r, "ip")
			e.Addr = a
			return used, ee
		}
		return false, nil
	})
	if ee != nil {
		return ee
	}
	if !e.Addr.IsValid() {
		return &EntryError{Field: "ip", Err: ErrMissing}
	}
	if service != "sshd" {
		return &EntryError{Field: "service", Err: fmt.Errorf("%w: %q", ErrBadType, clip(service))}
	}
	e.Type = events.SSHLoginFailed
	e.Details = d
	return nil
}

// haas reads {ts, ip, action} with action logged, not_logged or
// logged_active: a session of the HaaS SSH honeypot.
func haas(r *msgpack.Reader, e *events.Event) *EntryError {
	var action []byte
	ee := fields(r, func(key []byte) (bool, *EntryError) {
		switch string(key) {
		case "ts":
			return readTS(r, e)
		case "action":
			b, err := r.ReadStringBytes()
			action = b
			return err == nil, nil
		case "ip":
			a, used, ee := readAddr(r, "ip")
			e.Addr = a
			return used, ee
		}
		return false, nil
	})
	if ee != nil {
		return ee
	}
	if !e.Addr.IsValid() {
		return &EntryError{Field: "ip", Err: ErrMissing}
	}
	switch string(action) {
	case "logged":
		e.Type = events.HaasLogged
	case "not_logged":
		e.Type = events.HaasNotLogged
	case "logged_active":
		e.Type = events.HaasLoggedActive
	default:
		return &EntryError{Field: "action", Err: fmt.Errorf("%w: %q", ErrBadType, clip(string(action)))}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
