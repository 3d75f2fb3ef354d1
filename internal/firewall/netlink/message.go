// Package netlink is the netlink layer of the firewall backends (nftables
// and ipset, both subsystems of nfnetlink): a Builder that writes messages
// and attributes straight into one []byte, parsers for the kernel's
// answers (messages, attributes, acknowledgements with their extended-ack
// details), a Conn that sends requests and reads the answers in the right
// network namespace, and a Batch that makes a whole change one kernel
// transaction, as google/nftables does.
//
// Requests enter as bytes a backend encoded with a Builder; answers leave
// as Messages and Acks that the backend reads with Attrs. The package
// knows the nfnetlink framing but no subsystem's attributes.
package netlink

import (
	"encoding/binary"
	"errors"
	"iter"

	"golang.org/x/sys/unix"
)

var ne = binary.NativeEndian // netlink headers are in host byte order

// Sizes of the fixed headers.
const (
	HeaderLen     = 16 // struct nlmsghdr
	NfgenLen      = 4  // struct nfgenmsg, after the nlmsghdr of every nfnetlink message
	AttrHeaderLen = 4  // struct nlattr

	attrTypeMask = 0x3fff // nla_type without NLA_F_NESTED and NLA_F_NET_BYTEORDER
)

// Align rounds n up to netlink's 4-byte alignment.
func Align(n int) int { return (n + 3) &^ 3 }

// Builder writes netlink messages and attributes by appending to Buf.
// Hot loops may append pre-encoded attributes to Buf directly.
//
// Its methods are marked go:noinline. They run a few times per message,
// never per element (the element loops write templates), so a call costs
// nothing measurable, while inlining them at their hundred call sites
// made the router client 68 kB larger on mips.
type Builder struct {
	Buf   []byte
	msg   int   // offset of the message being written
	nests []int // offsets of open nested attributes
}

// BeginMsg starts an nfnetlink message: the nlmsghdr (its length is set
// by EndMsg; the port id is left 0 for the kernel to fill in) and the
// nfgenmsg with version NFNETLINK_V0 and resID in network byte order.
//
//go:noinline
func (w *Builder) BeginMsg(typ, flags uint16, seq uint32, family uint8, resID uint16) {
	w.msg = len(w.Buf)
	var h [HeaderLen + NfgenLen]byte
	ne.PutUint16(h[4:], typ)
	ne.PutUint16(h[6:], flags)
	ne.PutUint32(h[8:], seq)
	h[16] = family
	h[17] = 0 // NFNETLINK_V0
	binary.BigEndian.PutUint16(h[18:], resID)
	w.Buf = append(w.Buf, h[:]...)
}

// EndMsg sets the length of the message BeginMsg started.
//
//go:noinline
func (w *Builder) EndMsg() {
	ne.PutUint32(w.Buf[w.msg:], uint32(len(w.Buf)-w.msg))
}

// AttrHeader appends an attribute header for a payload of n bytes, which
// the caller appends (and pads) next.
//
//go:noinline
func (w *Builder) AttrHeader(typ uint16, n int) {
	w.Buf = ne.AppendUint16(w.Buf, uint16(AttrHeaderLen+n))
	w.Buf = ne.AppendUint16(w.Buf, typ)
}

// Bytes appends an attribute holding v.
//
//go:noinline
func (w *Builder) Bytes(typ uint16, v []byte) {
	w.AttrHeader(typ, len(v))
	w.Buf = append(w.Buf, v...)
	w.pad()
}

// Str appends a NUL-terminated string.
//
//go:noinline
func (w *Builder) Str(typ uint16, s string) {
	w.AttrHeader(typ, len(s)+1)
	w.Buf = append(w.Buf, s...)
	w.Buf = append(w.Buf, 0)
	w.pad()
}

// U8 appends a one-byte value.
//
//go:noinline
func (w *Builder) U8(typ uint16, v uint8) {
	w.AttrHeader(typ, 1)
	w.Buf = append(w.Buf, v, 0, 0, 0)
}

// U32 appends a 32-bit value in host byte order.
//
//go:noinline
func (w *Builder) U32(typ uint16, v uint32) {
	w.AttrHeader(typ, 4)
	w.Buf = ne.AppendUint32(w.Buf, v)
}

// BE32 appends a 32-bit value in network byte order. (ipset wants such
// attributes flagged unix.NLA_F_NET_BYTEORDER in typ; nf_tables does not.)
//
//go:noinline
func (w *Builder) BE32(typ uint16, v uint32) {
	w.AttrHeader(typ, 4)
	w.Buf = binary.BigEndian.AppendUint32(w.Buf, v)
}

// BE64 appends a 64-bit value in network byte order.
//
//go:noinline
func (w *Builder) BE64(typ uint16, v uint64) {
	w.AttrHeader(typ, 8)
	w.Buf = binary.BigEndian.AppendUint64(w.Buf, v)
}

func (w *Builder) pad() {
	for len(w.Buf)%4 != 0 {
		w.Buf = append(w.Buf, 0)
	}
}

// Nest opens a nested attribute (flagged NLA_F_NESTED) and returns its
// offset in Buf; EndNest closes the innermost open one.
//
//go:noinline
func (w *Builder) Nest(typ uint16) int {
	off := len(w.Buf)
	w.nests = append(w.nests, off)
	w.AttrHeader(typ|unix.NLA_F_NESTED, 0)
	return off
}

// EndNest sets the length of the innermost open nested attribute.
//
//go:noinline
func (w *Builder) EndNest() {
	off := w.nests[len(w.nests)-1]
	w.nests = w.nests[:len(w.nests)-1]
	ne.PutUint16(w.Buf[off:], uint16(len(w.Buf)-off))
}

// Message is one netlink message of a datagram the kernel sent.
type Message struct {
	Type, Flags uint16
	Seq, PortID uint32
	Body        []byte // everything after the nlmsghdr
}

// Data returns the attributes of an nfnetlink message: the body after its
// nfgenmsg, or nil if the body is too short to have one.
func (m Message) Data() []byte {
	if len(m.Body) < NfgenLen {
		return nil
	}
	return m.Body[NfgenLen:]
}

// ErrMalformed reports a message whose length field does not fit the
// datagram holding it.
var ErrMalformed = errors.New("malformed netlink message")

// Messages iterates over the messages of a datagram. A length that does
// not fit ends the iteration with ErrMalformed; nothing in b can make it
// read out of bounds. Bytes too few for a header at the end are ignored.
func Messages(b []byte) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for len(b) >= HeaderLen {
			l := int(ne.Uint32(b))
			if l < HeaderLen || l > len(b) {
				yield(Message{}, ErrMalformed)
				return
			}
			m := Message{Type: ne.Uint16(b[4:]), Flags: ne.Uint16(b[6:]), Seq: ne.Uint32(b[8:]), PortID: ne.Uint32(b[12:]), Body: b[HeaderLen:l]}
			if !yield(m, nil) {
				return
			}
			if Align(l) >= len(b) {
				return
			}
			b = b[Align(l):]
		}
	}
}

// Attrs iterates over the attributes in b: type (without the nested and
// byte-order flags) and value. It stops at the first attribute whose
// length does not fit.
func Attrs(b []byte) iter.Seq2[uint16, []byte] {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= AttrHeaderLen {
			l := int(ne.Uint16(b))
			if l < AttrHeaderLen || l > len(b) {
				return
			}
			if !yield(ne.Uint16(b[2:])&attrTypeMask, b[AttrHeaderLen:l]) {
				return
			}
			if Align(l) >= len(b) {
				return
			}
			b = b[Align(l):]
		}
	}
}

// String reads a string attribute up to its NUL.
func String(v []byte) string {
	for i, c := range v {
		if c == 0 {
			return string(v[:i])
		}
	}
	return string(v)
}

// BE32 reads a 32-bit attribute in network byte order; 0 if v has another
// length.
func BE32(v []byte) uint32 {
	if len(v) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

// Ack is the kernel's answer that ends a request: an NLMSG_ERROR (whose
// error 0 acknowledges success) or the NLMSG_DONE ending a dump.
type Ack struct {
	// Error is 0 or a negative error number, as the kernel wrote it.
	Error int32
	// Echo is the request as echoed back: its header, and its payload
	// too unless the answer is capped (NLM_F_CAPPED).
	Echo []byte
	// Msg is the extended ack's message, if any.
	Msg string
	// Offset is the extended ack's offset of the rejected attribute
	// within the request, or -1.
	Offset int
}

// ParseAck reads an NLMSG_ERROR or NLMSG_DONE message; it reports false
// for other messages and for an error message too short to hold its
// error number.
func ParseAck(m Message) (Ack, bool) {
	a := Ack{Offset: -1}
	switch m.Type {
	case unix.NLMSG_ERROR:
		if len(m.Body) < 4 {
			return a, false
		}
	case unix.NLMSG_DONE:
		if len(m.Body) < 4 {
			return a, true // a dump's end without an error number
		}
	default:
		return a, false
	}
	a.Error = int32(ne.Uint32(m.Body))
	a.Echo = m.Body[4:]
	if m.Type != unix.NLMSG_ERROR || len(a.Echo) < HeaderLen || m.Flags&unix.NLM_F_ACK_TLVS == 0 {
		return a, true
	}
	tlvs := a.Echo[HeaderLen:]
	if m.Flags&unix.NLM_F_CAPPED == 0 {
		// The request was echoed in full: the TLVs follow its payload.
		l := int(ne.Uint32(a.Echo))
		if l < HeaderLen || l-HeaderLen > len(tlvs) {
			return a, true
		}
		tlvs = tlvs[min(Align(l-HeaderLen), len(tlvs)):]
	}
	for t, v := range Attrs(tlvs) {
		switch t {
		case unix.NLMSGERR_ATTR_MSG:
			a.Msg = String(v)
		case unix.NLMSGERR_ATTR_OFFS:
			if len(v) == 4 {
				a.Offset = int(ne.Uint32(v))
			}
		}
	}
	return a, true
}
