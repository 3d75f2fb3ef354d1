package dynfw

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/dynfw/sentinel/internal/msgpack"
)

// DecodeOptions adjusts what the decoders accept.
type DecodeOptions struct {
	// AllowPrefix accepts CIDR prefixes ("10.0.0.0/8") in lists and deltas.
	// Without it only single addresses are valid and a prefix is reported
	// as an *AddrError wrapping ErrPrefixNotAllowed, for clients whose
	// firewall sets hold single addresses only. Events never carry prefixes.
	AllowPrefix bool
}

// Reasons a field is rejected, wrapped by *FieldError.
var (
	ErrMissing   = errors.New("missing")
	ErrDuplicate = errors.New("duplicate key")
	ErrInvalidOp = errors.New(`want "positive" or "negative"`)
)

// FieldError reports a required field that is missing, duplicated or not of
// the expected type or value. Only for field "ip" of a delta or event can it
// wrap an *AddrError; then the message is otherwise valid (see DecodeDelta).
type FieldError struct {
	Topic string // TopicList, TopicDelta or TopicEvent
	Field string // the key, e.g. "serial"
	Err   error  // ErrMissing, ErrDuplicate, ErrInvalidOp, *AddrError or a msgpack error
}

// Error returns "<topic>: field \"<field>\": <reason>", e.g.
// `dynfw/delta: field "serial": missing`.
func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: field %q: %v", e.Topic, e.Field, e.Err)
}

// Unwrap returns the reason.
func (e *FieldError) Unwrap() error { return e.Err }

// PayloadError reports a payload that is not a single well-formed
// MessagePack map: another type, malformed or truncated outside a known
// field, or followed by trailing bytes.
type PayloadError struct {
	Topic string
	Err   error // a msgpack error: *msgpack.TypeError, *msgpack.DecodeError
}

// Error returns "<topic>: payload: <reason>".
func (e *PayloadError) Error() string { return fmt.Sprintf("%s: payload: %v", e.Topic, e.Err) }

// Unwrap returns the underlying msgpack error.
func (e *PayloadError) Unwrap() error { return e.Err }

// UnknownTopicError is returned by Decode for a topic that is not one of the
// three DynFW topics.
type UnknownTopicError struct {
	Topic string
}

// Error quotes the topic, cut to MaxValueLen bytes since it comes from the
// network.
func (e *UnknownTopicError) Error() string {
	return fmt.Sprintf("dynfw: unknown topic %q", clip(e.Topic))
}

// Decode decodes payload according to topic and returns a *List, *Delta or
// *Event. A non-nil Message comes with a non-nil error only when the error
// wraps an *AddrError (an unusable delta or event address; see DecodeDelta).
func Decode(topic string, payload []byte, opt DecodeOptions) (Message, error) {
	switch topic {
	case TopicList:
		l, err := DecodeList(payload, opt)
		if err != nil {
			return nil, err
		}
		return &l, nil
	case TopicDelta:
		d, err := DecodeDelta(payload, opt)
		if err != nil && !isAddrError(err) {
			return nil, err
		}
		return &d, err
	case TopicEvent:
		e, err := DecodeEvent(payload, opt)
		if err != nil && !isAddrError(err) {
			return nil, err
		}
		return &e, err
	}
	return nil, &UnknownTopicError{Topic: topic}
}

func isAddrError(err error) bool {
	var ae *AddrError
	return errors.As(err, &ae)
}

// fieldFunc decodes the value of known field i at the reader's position.
type fieldFunc func(i int) error

// decodeFields walks the map that must make up the whole payload. For each
// key equal to one of fields (str or bin) it calls fn, which must consume the
// value; it skips every other entry, whatever its key type. Each field must
// appear exactly once: a duplicate is an error rather than "last wins",
// because different clients would pick different copies.
func decodeFields(r *msgpack.Reader, topic string, fields []string, fn fieldFunc) error {
	n, err := r.ReadMapHeader()
	if err != nil {
		return &PayloadError{Topic: topic, Err: err}
	}
	var seen uint
	for range n {
		field := -1
		if t, err := r.PeekType(); err != nil {
			return &PayloadError{Topic: topic, Err: err}
		} else if t == msgpack.TypeStr || t == msgpack.TypeBin {
			key, err := r.ReadStringBytes()
			if err != nil {
				return &PayloadError{Topic: topic, Err: err}
			}
			for i, f := range fields {
				if string(key) == f {
					field = i
					break
				}
			}
		} else if err := r.Skip(); err != nil {
			return &PayloadError{Topic: topic, Err: err}
		}
		if field < 0 {
			if err := r.Skip(); err != nil {
				return &PayloadError{Topic: topic, Err: err}
			}
			continue
		}
		if seen&(1<<field) != 0 {
			return &FieldError{Topic: topic, Field: fields[field], Err: ErrDuplicate}
		}
		seen |= 1 << field
		if err := fn(field); err != nil {
			return &FieldError{Topic: topic, Field: fields[field], Err: err}
		}
	}
	if r.Remaining() != 0 {
		return &PayloadError{Topic: topic, Err: &msgpack.DecodeError{Offset: r.Offset(), Err: msgpack.ErrTrailing}}
	}
	for i, f := range fields {
		if seen&(1<<i) == 0 {
			return &FieldError{Topic: topic, Field: f, Err: ErrMissing}
		}
	}
	return nil
}

var listFields = []string{"version", "serial", "list", "ts"}

// DecodeList decodes a dynfw/list payload. Entries of the list that are not
// valid addresses (see ParseAddr), or not strings at all, do not fail the
// list: they are left out of Addrs and reported in Skipped and SkippedCount,
// so that one bad entry cannot keep a router unprotected. Anything else wrong
// fails the whole message with a *FieldError or *PayloadError and a zero
// List.
func DecodeList(payload []byte, opt DecodeOptions) (List, error) {
	return decodeList(payload, opt, nil)
}

// DecodeListFunc decodes a dynfw/list payload like DecodeList but hands each
// valid address to each instead of collecting them, so a client can build
// its own compact set without a 32-byte netip.Prefix per address (a list of
// a million addresses would otherwise cost 32 MB before any work is done).
// The returned List has no Addrs. each may have been called for some
// addresses before an error is found later in the payload (a missing field,
// a malformed tail); the caller must then discard what it received.
func DecodeListFunc(payload []byte, opt DecodeOptions, each func(netip.Prefix)) (List, error) {
	if each == nil {
		each = func(netip.Prefix) {}
	}
	return decodeList(payload, opt, each)
}

func decodeList(payload []byte, opt DecodeOptions, each func(netip.Prefix)) (List, error) {
	var l List
	var r msgpack.Reader
	r.Reset(payload)
	err := decodeFields(&r, TopicList, listFields, func(i int) (err error) {
		switch i {
		case 0:
			l.Version, err = r.ReadUint()
		case 1:
			l.Serial, err = r.ReadUint()
		case 2:
			err = l.decodeAddrs(&r, opt.AllowPrefix, each)
		case 3:
			l.TS, err = r.ReadUint()
		}
		return err
	})
	if err != nil {
		return List{}, err
	}
	return l, nil
}

// minAddrSize is the smallest encoding of a valid IPv4 entry ("0.0.0.0" as a
// fixstr). Sizing Addrs by it rather than by the declared count keeps a
// hostile count of one-byte entries from allocating 32 bytes per input byte.
const minAddrSize = 8

func (l *List) decodeAddrs(r *msgpack.Reader, allowPrefix bool, each func(netip.Prefix)) error {
	n, err := r.ReadArrayHeader()
	if err != nil {
		return err
	}
	if each != nil {
		for i := range n {
			s, err := r.ReadStringBytes()
			if err != nil {
				te, ok := err.(*msgpack.TypeError)
				if !ok {
					return err
				}
				if err := r.Skip(); err != nil {
					return err
				}
				l.skip(i, nil, te)
				continue
			}
			p, err := parseAddr(s, allowPrefix)
			if err != nil {
				l.skip(i, s, err)
				continue
			}
			each(p)
		}
		return nil
	}
	// A local slice, stored back at the end, lets the compiler keep its
	// header in registers across the loop. (On error the List is dropped.)
	addrs := make([]netip.Prefix, 0, min(n, r.Remaining()/minAddrSize))
	for i := range n {
		s, err := r.ReadStringBytes()
		if err != nil {
			te, ok := err.(*msgpack.TypeError)
			if !ok {
				return err
			}
			if err := r.Skip(); err != nil {
				return err
			}
			l.skip(i, nil, te)
			continue
		}
		p, err := parseAddr(s, allowPrefix)
		if err != nil {
			l.skip(i, s, err)
			continue
		}
		addrs = append(addrs, p)
	}
	l.Addrs = addrs
	return nil
}

func (l *List) skip(i int, value []byte, err error) {
	l.SkippedCount++
	if len(l.Skipped) < MaxSkipped {
		l.Skipped = append(l.Skipped, AddrError{Index: i, Value: clip(value), Err: err})
	}
}

// readAddr reads the "ip" field of a delta or event. A value that is not a
// usable address is reported as bad (and consumed), a malformed payload as
// err.
func readAddr(r *msgpack.Reader, allowPrefix bool) (p netip.Prefix, bad *AddrError, err error) {
	s, err := r.ReadStringBytes()
	if err != nil {
		te, ok := err.(*msgpack.TypeError)
		if !ok {
			return netip.Prefix{}, nil, err
		}
		if err := r.Skip(); err != nil {
			return netip.Prefix{}, nil, err
		}
		return netip.Prefix{}, &AddrError{Index: -1, Err: te}, nil
	}
	p, perr := parseAddr(s, allowPrefix)
	if perr != nil {
		return netip.Prefix{}, &AddrError{Index: -1, Value: clip(s), Err: perr}, nil
	}
	return p, nil, nil
}

var deltaFields = []string{"serial", "delta", "ip", "ts"}

// DecodeDelta decodes a dynfw/delta payload.
//
// If everything but the address is valid, DecodeDelta returns the Delta with
// Serial, Op and TS set (Addr zero) and a *FieldError for "ip" that wraps an
// *AddrError: the caller can find it with errors.As, log it, and still
// advance its serial instead of re-syncing. An "ip" value that is not a
// string at all is treated the same way; a missing one is not. Any other
// error comes with a zero Delta.
func DecodeDelta(payload []byte, opt DecodeOptions) (Delta, error) {
	var d Delta
	var bad *AddrError
	var r msgpack.Reader
	r.Reset(payload)
	err := decodeFields(&r, TopicDelta, deltaFields, func(i int) (err error) {
		switch i {
		case 0:
			d.Serial, err = r.ReadUint()
		case 1:
			d.Op, err = readOp(&r)
		case 2:
			d.Addr, bad, err = readAddr(&r, opt.AllowPrefix)
		case 3:
			d.TS, err = r.ReadUint()
		}
		return err
	})
	if err != nil {
		return Delta{}, err
	}
	if bad != nil {
		return d, &FieldError{Topic: TopicDelta, Field: "ip", Err: bad}
	}
	return d, nil
}

func readOp(r *msgpack.Reader) (Op, error) {
	s, err := r.ReadStringBytes()
	if err != nil {
		return 0, err
	}
	switch string(s) {
	case "positive":
		return Positive, nil
	case "negative":
		return Negative, nil
	}
	return 0, fmt.Errorf("%w, got %q", ErrInvalidOp, clip(s))
}

var eventFields = []string{"event", "ip", "ts"}

// DecodeEvent decodes a dynfw/event payload. The event name is not checked
// against a vocabulary, since new probes add names. Address errors are
// reported as by DecodeDelta, with the Event's Name and TS set; a prefix is
// an address error whatever opt says, since an event names one host.
func DecodeEvent(payload []byte, opt DecodeOptions) (Event, error) {
	var e Event
	var bad *AddrError
	var r msgpack.Reader
	r.Reset(payload)
	err := decodeFields(&r, TopicEvent, eventFields, func(i int) (err error) {
		switch i {
		case 0:
			e.Name, err = r.ReadString()
		case 1:
			var p netip.Prefix
			p, bad, err = readAddr(&r, false)
			e.Addr = p.Addr()
		case 2:
			e.TS, err = r.ReadUint()
		}
		return err
	})
	if err != nil {
		return Event{}, err
	}
	if bad != nil {
		return e, &FieldError{Topic: TopicEvent, Field: "ip", Err: bad}
	}
	return e, nil
}
