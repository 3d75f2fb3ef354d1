package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/dynfw/sentinel/internal/firewall/netlink"
	"golang.org/x/sys/unix"
)

// This file holds the nf_tables messages on the shared netlink layer
// (internal/firewall/netlink): the batch with its element lists, written
// from templates in the hot loops; the errors, mapped back to the message
// and element that caused them; and the requests for the few things the
// backend reads back (table, sets, chains, rules; never set elements).

var ne = binary.NativeEndian // netlink headers are in host byte order

const (
	nlmsgHdrLen = netlink.HeaderLen
	nfgenLen    = netlink.NfgenLen
	nlaHdrLen   = netlink.AttrHeaderLen

	// maxListBytes bounds the payload of one NFTA_SET_ELEM_LIST_ELEMENTS
	// attribute. Its length field is a uint16: past 65535 bytes it wraps
	// and the kernel misreads the message (google/nftables v0.3.0 fails
	// that way with a misleading ENOENT above about 3000 elements). 32000
	// bytes is 2000 IPv4 addresses or 1142 IPv6 ones per message; bigger
	// messages measured no faster.
	maxListBytes = 32000

	// rcvBuf must hold one error per message of a failed batch; each is
	// a small skb, but the accounting charges its full truesize.
	rcvBuf = 4 << 20
)

// nf_tables values that golang.org/x/sys/unix does not name.
const (
	nftMetaNFProto       = 15 // NFT_META_NFPROTO
	nftPayloadNetworkHdr = 1  // NFT_PAYLOAD_NETWORK_HEADER
	nftReg1              = 1  // NFT_REG_1
	nftRegVerdict        = 0  // NFT_REG_VERDICT
	nftCmpEq             = 0  // NFT_CMP_EQ
	nfDrop               = 0  // NF_DROP
	nfAccept             = 1  // NF_ACCEPT
	nfInetLocalIn        = 1  // NF_INET_LOCAL_IN
	nfInetForward        = 2  // NF_INET_FORWARD
	nftTypeIPv4Addr      = 7  // nft's datatype id of ipv4_addr (TYPE_IPADDR)
	nftTypeIPv6Addr      = 8  // TYPE_IP6ADDR
	// NFTNL_UDATA_SET_KEYBYTEORDER and the value nft stores for network
	// byte order; nft writes it on every set it creates.
	udataSetKeyByteOrder = 0
	byteOrderBigEndian   = 2
	// NFTNL_UDATA_SET_ELEM_FLAGS with NFTNL_SET_ELEM_F_INTERVAL_OPEN: nft
	// marks a start element without an end element (an interval reaching
	// the end of the address space) so that `nft list` shows it right.
	udataSetElemFlags    = 1
	setElemFIntervalOpen = 1
)

// batch is one nf_tables transaction (see netlink.Batch) and the element
// list being written.
type batch struct {
	netlink.Batch

	// the open element list, see openList
	list struct {
		open    bool
		op      uint16
		flags   uint16
		family  uint8
		table   string
		set     *setDef
		payload int // offset of the NFTA_SET_ELEM_LIST_ELEMENTS payload
	}
}

// newBatch prepares a batch whose encoding needs about sizeHint bytes;
// see netlink.NewBatch. start must be called next.
func newBatch(sizeHint int, small []byte) *batch {
	return &batch{Batch: netlink.NewBatch(sizeHint, small)}
}

// start writes BATCH_BEGIN for nf_tables.
func (b *batch) start(seq0 uint32) { b.Start(seq0, unix.NFNL_SUBSYS_NFTABLES) }

// begin starts an nf_tables message of the batch.
func (b *batch) begin(typ uint16, flags uint16, family uint8, what string) {
	b.closeList()
	b.Add(unix.NFNL_SUBSYS_NFTABLES<<8|typ, flags, family, what)
}

// finish ends the last message and writes BATCH_END.
func (b *batch) finish() {
	b.closeList()
	b.Finish()
}

// openList starts a NEWSETELEM or DELSETELEM message for set s. Elements
// are then appended with room/appendElem; a new message is started
// whenever the list would grow past maxListBytes.
func (b *batch) openList(op, flags uint16, family uint8, table string, s *setDef) {
	b.closeList()
	what := s.addDesc
	if op == unix.NFT_MSG_DELSETELEM {
		what = s.delDesc
	}
	b.begin(op, flags, family, what)
	b.Str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	b.Str(unix.NFTA_SET_ELEM_LIST_SET, s.name)
	b.Nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	l := &b.list
	l.open, l.op, l.flags, l.family, l.table, l.set = true, op, flags, family, table, s
	l.payload = len(b.Buf)
}

// room makes sure n more bytes of elements fit in the current message.
func (b *batch) room(n int) {
	if l := &b.list; len(b.Buf)-l.payload+n > maxListBytes {
		b.openList(l.op, l.flags, l.family, l.table, l.set)
	}
}

func (b *batch) closeList() {
	if !b.list.open {
		return
	}
	b.list.open = false
	b.EndNest()
	b.EndMsg()
}

// flushSet appends a DELSETELEM without elements, which empties the set
// within the transaction.
func (b *batch) flushSet(family uint8, table string, s *setDef) {
	b.begin(unix.NFT_MSG_DELSETELEM, 0, family, "flush set "+s.desc)
	b.Str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	b.Str(unix.NFTA_SET_ELEM_LIST_SET, s.name)
	b.EndMsg()
}

// Element encodings. An element is NFTA_LIST_ELEM { NFTA_SET_ELEM_KEY {
// NFTA_DATA_VALUE key } [NFTA_SET_ELEM_FLAGS] [NFTA_SET_ELEM_USERDATA] };
// the hot loops write it from a template instead of building attributes.
const (
	elemHdr      = 3 * nlaHdrLen // list elem + key + data value headers
	flagsAttrLen = nlaHdrLen + 4
	openAttrLen  = 12 // userdata attribute: header + 6 bytes TLV + padding
)

func elemLen(keyLen int, end, open bool) int {
	n := elemHdr + keyLen
	if end {
		n += flagsAttrLen
	}
	if open {
		n += openAttrLen
	}
	return n
}

// appendElem writes one element; key must be 4 or 16 bytes.
func (b *batch) appendElem(key []byte, end, open bool) {
	n := elemLen(len(key), end, open)
	b.room(n)
	var t [elemHdr + 16 + flagsAttrLen + openAttrLen]byte
	ne.PutUint16(t[0:], uint16(n))
	ne.PutUint16(t[2:], unix.NLA_F_NESTED|unix.NFTA_LIST_ELEM)
	p := 4
	if end {
		ne.PutUint16(t[p:], flagsAttrLen)
		ne.PutUint16(t[p+2:], unix.NFTA_SET_ELEM_FLAGS)
		binary.BigEndian.PutUint32(t[p+4:], unix.NFT_SET_ELEM_INTERVAL_END)
		p += flagsAttrLen
	}
	ne.PutUint16(t[p:], uint16(2*nlaHdrLen+len(key)))
	ne.PutUint16(t[p+2:], unix.NLA_F_NESTED|unix.NFTA_SET_ELEM_KEY)
	ne.PutUint16(t[p+4:], uint16(nlaHdrLen+len(key)))
	ne.PutUint16(t[p+6:], unix.NFTA_DATA_VALUE)
	copy(t[p+8:], key)
	p += 8 + len(key)
	if open {
		ne.PutUint16(t[p:], nlaHdrLen+6)
		ne.PutUint16(t[p+2:], unix.NFTA_SET_ELEM_USERDATA)
		t[p+4] = udataSetElemFlags
		t[p+5] = 4
		ne.PutUint32(t[p+6:], setElemFIntervalOpen)
		p += openAttrLen
	}
	b.Buf = append(b.Buf, t[:p]...)
}

// appendAddr4 writes IPv4 addresses into a hash set, the path a million
// elements take: 16 bytes each, no allocation.
func (b *batch) appendAddr4(vals []uint32) {
	const n = elemHdr + 4
	var t [n]byte
	ne.PutUint16(t[0:], n)
	ne.PutUint16(t[2:], unix.NLA_F_NESTED|unix.NFTA_LIST_ELEM)
	ne.PutUint16(t[4:], 2*nlaHdrLen+4)
	ne.PutUint16(t[6:], unix.NLA_F_NESTED|unix.NFTA_SET_ELEM_KEY)
	ne.PutUint16(t[8:], nlaHdrLen+4)
	ne.PutUint16(t[10:], unix.NFTA_DATA_VALUE)
	for _, v := range vals {
		b.room(n)
		binary.BigEndian.PutUint32(t[12:], v)
		b.Buf = append(b.Buf, t[:]...)
	}
}

func (b *batch) appendAddr6(vals [][16]byte) {
	for i := range vals {
		b.appendElem(vals[i][:], false, false)
	}
}

// appendSpans writes intervals the way the kernel's interval sets want
// them and nft sends them: a start element with the first address, and an
// end element flagged NFT_SET_ELEM_INTERVAL_END with the address after the
// last. An interval reaching the end of the address space has no end
// element (last+1 does not exist); its start is marked open in userdata.
//
// nft also adds a lone end element at address 0 when it first fills an
// empty interval set. The kernel does not need it (a lookup below the
// first start finds no start element), and keeping it would make our
// deltas depend on whether the set was filled by nft or by us, so we never
// send it; `nft list` and `nft get element` show our sets correctly
// without it (see the tests).
func (b *batch) appendSpans(spans []span, f afamily) {
	var key [16]byte
	for _, s := range spans {
		open := s.hi == f.maxAddr
		b.room(elemLen(f.keyLen, false, open) + elemLen(f.keyLen, true, false))
		b.appendElem(putKey(key[:], s.lo, f), false, open)
		if !open {
			b.appendElem(putKey(key[:], s.hi.next(), f), true, false)
		}
	}
}

func putKey(dst []byte, a u128, f afamily) []byte {
	if !f.v6 {
		binary.BigEndian.PutUint32(dst, uint32(a.lo))
		return dst[:4]
	}
	binary.BigEndian.PutUint64(dst, a.hi)
	binary.BigEndian.PutUint64(dst[8:], a.lo)
	return dst[:16]
}

// listOverhead is what one element message costs besides its elements.
func listOverhead(table, set string) int {
	return nlmsgHdrLen + nfgenLen + nlaHdrLen + netlink.Align(len(table)+1) + nlaHdrLen + netlink.Align(len(set)+1) + nlaHdrLen
}

// listSize bounds the bytes needed to send elemBytes of elements to one
// set, split into messages.
func listSize(table, set string, elemBytes int) int {
	if elemBytes == 0 {
		return 0
	}
	return elemBytes + (elemBytes/(maxListBytes-64)+1)*listOverhead(table, set)
}

// OpError is an error the kernel reported for one message of a
// transaction. The whole transaction was rolled back.
type OpError struct {
	// Op says what the message did: "add elements to set inet dynfw addr4".
	Op string
	// Element is the element the kernel pointed at, when it did
	// ("192.0.2.1", "interval end 10.2.0.0").
	Element string
	// Msg is the kernel's extended-ack message, if any.
	Msg string
	// Err is the errno (unix.Errno), for errors.Is: ENOENT for an absent
	// element or set, EEXIST for an element already present, ENOTEMPTY
	// for an interval overlapping another, EBUSY for a set still in use.
	Err error
}

func (e *OpError) Error() string {
	s := "nftables: " + e.Op
	if e.Element != "" {
		s += ": element " + e.Element
	}
	s += ": " + e.Err.Error()
	if e.Msg != "" {
		s += " (" + e.Msg + ")"
	}
	return s
}

func (e *OpError) Unwrap() error { return e.Err }

// explain turns an error answer into an OpError naming the message and,
// if the kernel pointed at one, the element.
func (b *batch) explain(m netlink.Message) error {
	a, _ := netlink.ParseAck(m)
	errno := unix.Errno(-a.Error)
	switch {
	case m.Seq == b.Seq0() || m.Seq == b.EndSeq():
		return &OpError{Op: "transaction", Msg: a.Msg, Err: errno}
	case m.Seq-b.Seq0() > uint32(len(b.Msgs)):
		return &OpError{Op: "unknown message", Msg: a.Msg, Err: errno}
	}
	i := m.Seq - b.Seq0() - 1
	e := &OpError{Op: b.Msgs[i].What, Msg: a.Msg, Err: errno}
	if a.Offset > 0 {
		e.Element = b.elementAt(b.Msgs[i].Off, a.Offset)
	}
	return e
}

// elementAt describes the element at offset off of the message at msgOff
// of the batch buffer, or "" if off is not inside an element.
func (b *batch) elementAt(msgOff, off int) string {
	if msgOff+nlmsgHdrLen > len(b.Buf) {
		return ""
	}
	msg := b.Buf[msgOff : msgOff+int(ne.Uint32(b.Buf[msgOff:]))]
	if off >= len(msg) {
		return ""
	}
	pos := nlmsgHdrLen + nfgenLen
	for t, v := range netlink.Attrs(msg[pos:]) {
		start := pos
		pos += netlink.Align(nlaHdrLen + len(v))
		if t != unix.NFTA_SET_ELEM_LIST_ELEMENTS || off < start || off >= pos {
			continue
		}
		epos := start + nlaHdrLen
		for _, ev := range netlink.Attrs(v) {
			estart := epos
			epos += netlink.Align(nlaHdrLen + len(ev))
			if off >= estart && off < epos {
				return describeElem(ev)
			}
		}
	}
	return ""
}

func describeElem(v []byte) string {
	var key []byte
	end := false
	for t, a := range netlink.Attrs(v) {
		switch t {
		case unix.NFTA_SET_ELEM_KEY:
			for t2, k := range netlink.Attrs(a) {
				if t2 == unix.NFTA_DATA_VALUE {
					key = k
				}
			}
		case unix.NFTA_SET_ELEM_FLAGS:
			end = len(a) == 4 && binary.BigEndian.Uint32(a)&unix.NFT_SET_ELEM_INTERVAL_END != 0
		}
	}
	a, ok := netip.AddrFromSlice(key)
	if !ok {
		return fmt.Sprintf("%x", key)
	}
	if end {
		return "interval end " + a.String() + " (the address after the interval)"
	}
	return a.String()
}

// conn is a netlink socket speaking nf_tables.
type conn struct{ nl *netlink.Conn }

// dial opens the socket, inside the network namespace netns unless it is 0.
func dial(netns int) (*conn, error) {
	nl, err := netlink.Dial(netlink.Config{
		Name:  "nftables",
		NetNS: netns,
		// Errors must be small (one per failing message of a batch
		// must fit rcvBuf) and name the element they are about.
		RequireExtAck: true,
		RecvBuffer:    rcvBuf,
		Timeout:       30 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	return &conn{nl}, nil
}

func (c *conn) close() error { return c.nl.Close() }

// newBatch starts a batch on this connection; see newBatch.
func (c *conn) newBatch(sizeHint int, small []byte) *batch {
	b := newBatch(sizeHint, small)
	c.nl.StartBatch(&b.Batch, unix.NFNL_SUBSYS_NFTABLES)
	return b
}

// transact sends a batch as one transaction. A netlink error is mapped
// back to the message (and, with the kernel's extended ack, the element)
// that caused it. If the error wraps netlink.ErrOutcomeUnknown the batch
// may have been applied.
func (c *conn) transact(b *batch) error {
	b.closeList()
	return c.nl.Transact(&b.Batch, b.explain)
}

// query sends one request outside a batch (a GET or a dump) and calls fn
// for every answer message until the kernel says it is done. build
// writes the attributes.
func (c *conn) query(typ uint16, dump bool, family uint8, build func(*netlink.Builder), fn func(netlink.Message) error) error {
	w := netlink.Builder{Buf: make([]byte, 0, 256)}
	seq := c.nl.NextSeq()
	flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK)
	if dump {
		// A dump ends with NLMSG_DONE; the kernel sends no ack for it.
		flags = unix.NLM_F_REQUEST | unix.NLM_F_DUMP
	}
	w.BeginMsg(unix.NFNL_SUBSYS_NFTABLES<<8|typ, flags, seq, family, 0)
	if build != nil {
		build(&w)
	}
	w.EndMsg()
	return c.nl.Query(w.Buf, seq, func(m netlink.Message) error {
		if len(m.Body) < nfgenLen {
			return nil
		}
		return fn(netlink.Message{Type: m.Type & 0xff, Flags: m.Flags, Seq: m.Seq, Body: m.Data()})
	})
}

// consistent runs read (which must start from scratch each time) again
// while its dumps are interrupted by concurrent ruleset changes.
func consistent(read func() error) error {
	for try := 0; ; try++ {
		err := read()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 4 {
			return err
		}
	}
}
