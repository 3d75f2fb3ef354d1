// Package dynfw defines the messages of the Turris Sentinel Dynamic Firewall
// (DynFW) publisher and their MessagePack encoding. It knows nothing of
// sockets: the publisher turns typed values into payloads here and hands them
// to a transport as the second frame after the topic, and a client hands the
// two frames it received to Decode and works on the typed values that come
// back.
//
// There are three topics, each a MessagePack map with str keys:
//
//	dynfw/list   version, serial, list (array of str), ts   the whole blocklist
//	dynfw/delta  serial, delta ("positive"/"negative"), ip, ts   one change
//	dynfw/event  event, ip, ts   one observed attack
//
// Encoding is byte-identical to what the Python reference publisher emits
// (msgpack-python packb of a dict in the key order above), so that clients
// written against the reference see no difference. Decoding is liberal where
// senders are known to differ (any integer width, str or bin, extra keys,
// any key order) and strict where a silent guess would be wrong: a missing or
// ill-typed field is a *FieldError naming the topic and the field.
//
// Addresses are netip.Prefix values, a single address having all its bits
// (/32 or /128); see ParseAddr for how text is validated and normalised. A
// bad address never costs the rest of a message: a list keeps its valid
// entries and reports the others in List.Skipped, and a delta or event is
// returned with its other fields set alongside an error wrapping *AddrError,
// so a client can advance its serial and move on.
package dynfw

import (
	"net/netip"
	"strconv"

	"github.com/dynfw/sentinel/internal/msgpack"
)

// Topics, sent as the first frame of each message. Subscribing to TopicPrefix
// receives all three.
const (
	TopicPrefix = "dynfw/"
	TopicList   = "dynfw/list"
	TopicDelta  = "dynfw/delta"
	TopicEvent  = "dynfw/event"
)

// Message is implemented by *List, *Delta and *Event, and by nothing else, so
// a type switch on a decoded Message is exhaustive over those three.
type Message interface {
	// Topic returns the topic the message is published under.
	Topic() string
	// AppendMsgpack appends the payload, as the publisher sends it.
	AppendMsgpack(b []byte) []byte

	message() // seals the interface
}

// List is a dynfw/list message: the complete set of blocked addresses, sent
// periodically so that clients can (re)initialise.
type List struct {
	Version uint64 // version of the list ("currently equal to time stamp"); may be reset to 0
	Serial  uint64 // serial of the last delta applied to this list
	Addrs   []netip.Prefix
	TS      uint64 // Unix seconds when the message was generated

	// Skipped describes entries of the list that DecodeList could not use, in
	// order, at most MaxSkipped of them; SkippedCount counts them all. Neither
	// is encoded.
	Skipped      []AddrError
	SkippedCount int
}

// MaxSkipped bounds List.Skipped, so a list made of garbage cannot make the
// decoder keep an error per byte of input.
const MaxSkipped = 100

// Delta is a dynfw/delta message: one address added to or removed from the
// list.
type Delta struct {
	Serial uint64 // one more than the serial of the previous delta
	Op     Op
	Addr   netip.Prefix
	TS     uint64 // Unix seconds when the message was generated
}

// Event is a dynfw/event message: DynFW was told about one malicious
// interaction. Events carry single addresses only.
type Event struct {
	Name string // e.g. "telnet_login", "haas_logged"; not checked against a vocabulary
	Addr netip.Addr
	TS   uint64 // Unix seconds when the message was generated
}

// Op says whether a delta adds or removes its address. The zero Op is
// invalid, so a forgotten field cannot silently mean "add".
type Op uint8

// The two delta operations.
const (
	Positive Op = 1 // the address was added to the list
	Negative Op = 2 // the address was removed from the list
)

// String returns the wire form, "positive" or "negative", or "Op(n)" for an
// invalid Op.
func (o Op) String() string {
	switch o {
	case Positive:
		return "positive"
	case Negative:
		return "negative"
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// Topic returns TopicList.
func (List) Topic() string { return TopicList }

// Topic returns TopicDelta.
func (Delta) Topic() string { return TopicDelta }

// Topic returns TopicEvent.
func (Event) Topic() string { return TopicEvent }

func (*List) message()  {}
func (*Delta) message() {}
func (*Event) message() {}

// AppendMsgpack appends the payload of l: a map of version, serial, list and
// ts, in that order, each address in the form FormatAddr gives. An invalid
// (zero) Prefix in Addrs is encoded as an empty string, which decoders skip.
func (l List) AppendMsgpack(b []byte) []byte {
	b = msgpack.AppendMapHeader(b, 4)
	b = msgpack.AppendString(b, "version")
	b = msgpack.AppendUint(b, l.Version)
	b = msgpack.AppendString(b, "serial")
	b = msgpack.AppendUint(b, l.Serial)
	b = msgpack.AppendString(b, "list")
	b = msgpack.AppendArrayHeader(b, len(l.Addrs))
	var buf [64]byte
	for _, p := range l.Addrs {
		b = msgpack.AppendStringBytes(b, appendAddr(buf[:0], p))
	}
	b = msgpack.AppendString(b, "ts")
	return msgpack.AppendUint(b, l.TS)
}

// Marshal returns the payload of l (see AppendMsgpack).
func (l List) Marshal() []byte {
	// Most entries are IPv4, at most 16 bytes each on the wire.
	return l.AppendMsgpack(make([]byte, 0, 64+16*len(l.Addrs)))
}

// AppendMsgpack appends the payload of d: a map of serial, delta, ip and ts,
// in that order. An Op other than Positive or Negative is encoded as its
// String form and an invalid Addr as an empty string; decoders reject both,
// so a bug shows up at the first client instead of as a wrong block.
func (d Delta) AppendMsgpack(b []byte) []byte {
	b = msgpack.AppendMapHeader(b, 4)
	b = msgpack.AppendString(b, "serial")
	b = msgpack.AppendUint(b, d.Serial)
	b = msgpack.AppendString(b, "delta")
	b = msgpack.AppendString(b, d.Op.String())
	b = msgpack.AppendString(b, "ip")
	var buf [64]byte
	b = msgpack.AppendStringBytes(b, appendAddr(buf[:0], d.Addr))
	b = msgpack.AppendString(b, "ts")
	return msgpack.AppendUint(b, d.TS)
}

// Marshal returns the payload of d (see AppendMsgpack).
func (d Delta) Marshal() []byte { return d.AppendMsgpack(make([]byte, 0, 80)) }

// AppendMsgpack appends the payload of e: a map of event, ip and ts, in that
// order. The address is written unmapped and without a zone, as decoders
// require; an invalid Addr is encoded as an empty string.
func (e Event) AppendMsgpack(b []byte) []byte {
	b = msgpack.AppendMapHeader(b, 3)
	b = msgpack.AppendString(b, "event")
	b = msgpack.AppendString(b, e.Name)
	b = msgpack.AppendString(b, "ip")
	var buf [64]byte
	a := e.Addr
	if a.IsValid() {
		a = a.WithZone("").Unmap()
	}
	b = msgpack.AppendStringBytes(b, a.AppendTo(buf[:0]))
	b = msgpack.AppendString(b, "ts")
	return msgpack.AppendUint(b, e.TS)
}

// Marshal returns the payload of e (see AppendMsgpack).
func (e Event) Marshal() []byte { return e.AppendMsgpack(make([]byte, 0, 64+len(e.Name))) }
