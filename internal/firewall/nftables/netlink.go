package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// This file is the whole netlink layer: a socket in the right network
// namespace, an encoder that writes messages straight into one []byte, the
// batch (one kernel transaction) and its acknowledgements, and dump
// requests for the few things the backend reads back (table, sets, chains,
// rules; never set elements).

var ne = binary.NativeEndian // netlink headers are in host byte order

const (
	nlmsgHdrLen = 16 // struct nlmsghdr
	nfgenLen    = 4  // struct nfgenmsg
	nlaHdrLen   = 4  // struct nlattr

	// maxListBytes bounds the payload of one NFTA_SET_ELEM_LIST_ELEMENTS
	// attribute. Its length field is a uint16: past 65535 bytes it wraps
	// and the kernel misreads the message (google/nftables v0.3.0 fails
	// that way with a misleading ENOENT above about 3000 elements). 32000
	// bytes is 2000 IPv4 addresses or 1142 IPv6 ones per message; bigger
	// messages measured no faster.
	maxListBytes = 32000

	// rcvTimeout is a safety net only: the kernel processes a batch while
	// sendmsg runs, so its answers are already queued when we read.
	rcvTimeout = 30 * time.Second

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
	udataSetElemFlags     = 1
	setElemFIntervalOpen  = 1
	nlaTypeMask           = 0x3fff
	errorLimitPerDelivery = 8 // errors explained in detail per batch
)

func align4(n int) int { return (n + 3) &^ 3 }

// builder writes netlink messages and attributes by appending to buf.
type builder struct {
	buf   []byte
	msg   int   // offset of the message being written
	nests []int // offsets of open nested attributes
}

func (w *builder) beginMsg(typ, flags uint16, seq uint32, family uint8, resID uint16) {
	w.msg = len(w.buf)
	var h [nlmsgHdrLen + nfgenLen]byte
	ne.PutUint16(h[4:], typ)
	ne.PutUint16(h[6:], flags)
	ne.PutUint32(h[8:], seq)
	h[16] = family
	h[17] = 0 // NFNETLINK_V0
	binary.BigEndian.PutUint16(h[18:], resID)
	w.buf = append(w.buf, h[:]...)
}

func (w *builder) endMsg() {
	ne.PutUint32(w.buf[w.msg:], uint32(len(w.buf)-w.msg))
}

func (w *builder) attrHdr(typ uint16, payload int) {
	w.buf = ne.AppendUint16(w.buf, uint16(nlaHdrLen+payload))
	w.buf = ne.AppendUint16(w.buf, typ)
}

func (w *builder) bytes(typ uint16, v []byte) {
	w.attrHdr(typ, len(v))
	w.buf = append(w.buf, v...)
	w.pad()
}

func (w *builder) str(typ uint16, s string) {
	w.attrHdr(typ, len(s)+1)
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, 0)
	w.pad()
}

func (w *builder) be32(typ uint16, v uint32) {
	w.attrHdr(typ, 4)
	w.buf = binary.BigEndian.AppendUint32(w.buf, v)
}

func (w *builder) be64(typ uint16, v uint64) {
	w.attrHdr(typ, 8)
	w.buf = binary.BigEndian.AppendUint64(w.buf, v)
}

func (w *builder) pad() {
	for len(w.buf)%4 != 0 {
		w.buf = append(w.buf, 0)
	}
}

func (w *builder) nest(typ uint16) {
	w.nests = append(w.nests, len(w.buf))
	w.attrHdr(typ|unix.NLA_F_NESTED, 0)
}

func (w *builder) end() {
	off := w.nests[len(w.nests)-1]
	w.nests = w.nests[:len(w.nests)-1]
	ne.PutUint16(w.buf[off:], uint16(len(w.buf)-off))
}

// msgInfo remembers what one message of a batch does, to explain an error
// the kernel reports for it.
type msgInfo struct {
	off  int    // offset of its nlmsghdr in the batch buffer
	what string // "add elements to set inet dynfw addr4"
}

// batch is one nf_tables transaction: NFNL_MSG_BATCH_BEGIN, the messages,
// NFNL_MSG_BATCH_END, all in one buffer sent with one sendmsg. The kernel
// applies all messages or none.
type batch struct {
	builder
	seq0   uint32    // sequence number of BATCH_BEGIN; message i has seq0+1+i
	msgs   []msgInfo // the messages between BEGIN and END
	mapped []byte    // the mmap'ed memory behind buf, if any

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

// bigBatch is the size from which a batch buffer is mmap'ed and unmapped
// after use instead of being kept on the Go heap: a full list of a million
// addresses needs 16 MB for one moment, and the client must not keep that
// (nor let the garbage collector's headroom double it) afterwards.
const bigBatch = 1 << 20

// newBatch prepares a batch whose encoding needs about sizeHint bytes.
// small is a buffer the caller keeps for small batches.
func newBatch(sizeHint int, small []byte) *batch {
	b := &batch{}
	if sizeHint >= bigBatch {
		size := (sizeHint + 4095) &^ 4095
		if mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err == nil {
			b.mapped = mem
			b.buf = mem[:0]
		}
	}
	if b.buf == nil {
		if cap(small) < sizeHint {
			small = make([]byte, 0, sizeHint)
		}
		b.buf = small[:0]
	}
	return b
}

// release returns the memory of a big batch to the system at once.
func (b *batch) release() {
	if b.mapped != nil {
		_ = unix.Munmap(b.mapped)
		b.mapped = nil
	}
	b.buf = nil
}

// start writes BATCH_BEGIN. res_id carries the subsystem the batch is for
// (NFNL_SUBSYS_NFTABLES, big-endian), as nft sends it; like nft for plain
// commands we send no NFNL_BATCH_GENID, so a concurrent change by another
// program does not make our batch fail.
func (b *batch) start(seq0 uint32) {
	b.seq0 = seq0
	b.beginMsg(unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, seq0, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	b.endMsg()
}

// begin starts an nf_tables message of the batch.
func (b *batch) begin(typ uint16, flags uint16, family uint8, what string) {
	b.closeList()
	b.msgs = append(b.msgs, msgInfo{off: len(b.buf), what: what})
	b.beginMsg(unix.NFNL_SUBSYS_NFTABLES<<8|typ, unix.NLM_F_REQUEST|flags, b.seq0+uint32(len(b.msgs)), family, 0)
}

// finish ends the last message and writes BATCH_END. Only the last
// message asks for an acknowledgement: errors are reported for every
// failing message anyway, and its ack tells that the kernel has answered
// everything, without queueing hundreds of acks for a big batch.
func (b *batch) finish() {
	b.closeList()
	if len(b.msgs) > 0 {
		off := b.msgs[len(b.msgs)-1].off
		ne.PutUint16(b.buf[off+6:], ne.Uint16(b.buf[off+6:])|unix.NLM_F_ACK)
	}
	b.beginMsg(unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, b.seq0+uint32(len(b.msgs))+1, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	b.endMsg()
}

func (b *batch) lastSeq() uint32 { return b.seq0 + uint32(len(b.msgs)) }
func (b *batch) endSeq() uint32  { return b.seq0 + uint32(len(b.msgs)) + 1 }

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
	b.str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	b.str(unix.NFTA_SET_ELEM_LIST_SET, s.name)
	b.nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	l := &b.list
	l.open, l.op, l.flags, l.family, l.table, l.set = true, op, flags, family, table, s
	l.payload = len(b.buf)
}

// room makes sure n more bytes of elements fit in the current message.
func (b *batch) room(n int) {
	if l := &b.list; len(b.buf)-l.payload+n > maxListBytes {
		b.openList(l.op, l.flags, l.family, l.table, l.set)
	}
}

func (b *batch) closeList() {
	if !b.list.open {
		return
	}
	b.list.open = false
	b.end()
	b.endMsg()
}

// flushSet appends a DELSETELEM without elements, which empties the set
// within the transaction.
func (b *batch) flushSet(family uint8, table string, s *setDef) {
	b.begin(unix.NFT_MSG_DELSETELEM, 0, family, "flush set "+s.desc)
	b.str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	b.str(unix.NFTA_SET_ELEM_LIST_SET, s.name)
	b.endMsg()
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
	b.buf = append(b.buf, t[:p]...)
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
		b.buf = append(b.buf, t[:]...)
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
	return nlmsgHdrLen + nfgenLen + nlaHdrLen + align4(len(table)+1) + nlaHdrLen + align4(len(set)+1) + nlaHdrLen
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

// errDumpInterrupted means a dump saw a ruleset change, so what it
// returned may be inconsistent; see consistent.
var errDumpInterrupted = errors.New("dump interrupted by a concurrent change")

// consistent runs read (which must start from scratch each time) again
// while its dumps are interrupted by concurrent ruleset changes.
func consistent(read func() error) error {
	for try := 0; ; try++ {
		err := read()
		if !errors.Is(err, errDumpInterrupted) || try == 4 {
			return err
		}
	}
}

// errOutcomeUnknown marks failures after which the kernel may or may not
// have applied the batch.
var errOutcomeUnknown = errors.New("outcome unknown")

// conn is a NETLINK_NETFILTER socket.
type conn struct {
	fd     int
	seq    uint32
	sndbuf int
	rbuf   []byte
}

// dial opens the socket, inside the network namespace netns unless it is 0.
func dial(netns int) (*conn, error) {
	fd, err := socketIn(netns)
	if err != nil {
		return nil, fmt.Errorf("nftables: netlink socket: %w", err)
	}
	c := &conn{fd: fd, seq: 1, rbuf: make([]byte, 64<<10)}
	// CAP_ACK: errors do not echo the failing message (up to 64 KiB each);
	// EXT_ACK: the kernel says which attribute (element) it rejected.
	for _, o := range []int{unix.NETLINK_CAP_ACK, unix.NETLINK_EXT_ACK} {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, o, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("nftables: netlink socket option %d: %w", o, err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	tv := unix.NsecToTimeval(rcvTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nftables: netlink receive timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nftables: netlink bind: %w", err)
	}
	return c, nil
}

func newSocket() (int, error) {
	return unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
}

// socketIn creates the socket in another network namespace: a socket keeps
// the namespace it was created in, so only its creation needs the thread
// to switch. That happens on a goroutine of its own locked to its thread;
// if switching back fails the thread stays locked and the runtime
// discards it when the goroutine ends, instead of reusing a thread in the
// wrong namespace.
func socketIn(netns int) (int, error) {
	if netns == 0 {
		return newSocket()
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, err}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(netns, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("setns: %w", err)}
			return
		}
		fd, err := newSocket()
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			if err == nil {
				unix.Close(fd)
			}
			ch <- result{-1, fmt.Errorf("setns back: %w", rerr)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

func (c *conn) close() error { return unix.Close(c.fd) }

// newBatch starts a batch on this connection; see newBatch.
func (c *conn) newBatch(sizeHint int, small []byte) *batch {
	if c.seq > 1<<31 {
		c.seq = 1 // keep seq0..endSeq from wrapping around
	}
	b := newBatch(sizeHint, small)
	b.start(c.seq)
	return b
}

// transact sends a finished batch with one sendmsg and checks the kernel's
// answers. A netlink error is mapped back to the message (and, with the
// kernel's extended ack, the element) that caused it. If the error wraps
// errOutcomeUnknown the batch may have been applied.
func (c *conn) transact(b *batch) error {
	if len(b.msgs) == 0 {
		return nil
	}
	b.finish()
	c.seq = b.endSeq() + 1
	// The kernel takes a batch only within one message, which must fit in
	// the send buffer; SO_SNDBUFFORCE passes the sysctl limit (we have
	// CAP_NET_ADMIN anyway, nf_tables needs it).
	if need := len(b.buf) + 64<<10; need > c.sndbuf {
		if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, need); err != nil {
			if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, need); err != nil {
				return fmt.Errorf("nftables: netlink send buffer of %d bytes: %w", need, err)
			}
		}
		c.sndbuf = need
	}
	for {
		err := unix.Sendto(c.fd, b.buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// Nothing was processed: the kernel refuses the whole message.
			return fmt.Errorf("nftables: sending a batch of %d bytes: %w", len(b.buf), err)
		}
		break
	}
	var errs []error
	nerr := 0
	defer c.drain()
	for {
		n, err := c.recv()
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("nftables: reading the kernel's answer to a batch: %w (%w)", err, errOutcomeUnknown))...)
		}
		done := false
		for m := range messages(c.rbuf[:n]) {
			if m.seq < b.seq0 || m.seq > b.endSeq() || m.typ != unix.NLMSG_ERROR || len(m.body) < 4 {
				continue // a late answer to an earlier request
			}
			code := int32(ne.Uint32(m.body))
			if code != 0 {
				nerr++
				if nerr <= errorLimitPerDelivery {
					errs = append(errs, b.explain(m, unix.Errno(-code)))
				}
			}
			// BATCH_BEGIN's seq carries errors for the batch as a whole
			// (commit failed, out of memory): nothing else will come.
			if m.seq == b.lastSeq() || (code != 0 && (m.seq == b.seq0 || m.seq == b.endSeq())) {
				done = true
			}
		}
		if done {
			break
		}
	}
	if nerr > errorLimitPerDelivery {
		errs = append(errs, fmt.Errorf("nftables: and %d more errors in the same batch", nerr-errorLimitPerDelivery))
	}
	return errors.Join(errs...)
}

// recv reads one datagram into c.rbuf.
func (c *conn) recv() (int, error) {
	for {
		n, _, flags, _, err := unix.Recvmsg(c.fd, c.rbuf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if flags&unix.MSG_TRUNC != 0 {
			return 0, fmt.Errorf("netlink message larger than %d bytes", len(c.rbuf))
		}
		return n, nil
	}
}

// drain discards answers left in the socket, such as acks delivered after
// a batch-wide error, so that the next request starts clean.
func (c *conn) drain() {
	for {
		_, _, err := unix.Recvfrom(c.fd, c.rbuf, unix.MSG_DONTWAIT)
		if err != nil && err != unix.EINTR {
			return
		}
	}
}

// nlmsg is one received netlink message.
type nlmsg struct {
	typ, flags uint16
	seq        uint32
	body       []byte // after nlmsghdr
}

// messages iterates over the netlink messages in a datagram.
func messages(b []byte) func(func(nlmsg) bool) {
	return func(yield func(nlmsg) bool) {
		for len(b) >= nlmsgHdrLen {
			l := int(ne.Uint32(b))
			if l < nlmsgHdrLen || l > len(b) {
				return
			}
			m := nlmsg{typ: ne.Uint16(b[4:]), flags: ne.Uint16(b[6:]), seq: ne.Uint32(b[8:]), body: b[nlmsgHdrLen:l]}
			if !yield(m) {
				return
			}
			if align4(l) >= len(b) {
				return
			}
			b = b[align4(l):]
		}
	}
}

// attrs iterates over netlink attributes: type (without flag bits), value.
func attrs(b []byte) func(func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= nlaHdrLen {
			l := int(ne.Uint16(b))
			if l < nlaHdrLen || l > len(b) {
				return
			}
			if !yield(ne.Uint16(b[2:])&nlaTypeMask, b[nlaHdrLen:l]) {
				return
			}
			if align4(l) >= len(b) {
				return
			}
			b = b[align4(l):]
		}
	}
}

func attrString(v []byte) string {
	for i, c := range v {
		if c == 0 {
			return string(v[:i])
		}
	}
	return string(v)
}

// ackInfo parses an NLMSG_ERROR body: the kernel's message and the offset
// of the rejected attribute within the failing message, if given.
func ackInfo(m nlmsg) (msg string, off int) {
	off = -1
	if len(m.body) < 4+nlmsgHdrLen || m.flags&unix.NLM_F_ACK_TLVS == 0 {
		return "", off
	}
	rest := m.body[4+nlmsgHdrLen:]
	if m.flags&unix.NLM_F_CAPPED == 0 {
		// The failing message was echoed in full: skip its payload.
		l := int(ne.Uint32(m.body[4:]))
		if l-nlmsgHdrLen > len(rest) || l < nlmsgHdrLen {
			return "", off
		}
		rest = rest[align4(l-nlmsgHdrLen):]
	}
	for t, v := range attrs(rest) {
		switch t {
		case unix.NLMSGERR_ATTR_MSG:
			msg = attrString(v)
		case unix.NLMSGERR_ATTR_OFFS:
			if len(v) == 4 {
				off = int(ne.Uint32(v))
			}
		}
	}
	return msg, off
}

// explain turns an error answer into an OpError naming the message and,
// if the kernel pointed at one, the element.
func (b *batch) explain(m nlmsg, errno unix.Errno) error {
	kmsg, off := ackInfo(m)
	switch {
	case m.seq == b.seq0 || m.seq == b.endSeq():
		return &OpError{Op: "transaction", Msg: kmsg, Err: errno}
	case m.seq > b.lastSeq():
		return &OpError{Op: "unknown message", Msg: kmsg, Err: errno}
	}
	info := b.msgs[m.seq-b.seq0-1]
	e := &OpError{Op: info.what, Msg: kmsg, Err: errno}
	if off > 0 {
		e.Element = b.elementAt(info.off, off)
	}
	return e
}

// elementAt describes the element at offset off of the message at msgOff
// of the batch buffer, or "" if off is not inside an element.
func (b *batch) elementAt(msgOff, off int) string {
	if msgOff+nlmsgHdrLen > len(b.buf) {
		return ""
	}
	msg := b.buf[msgOff : msgOff+int(ne.Uint32(b.buf[msgOff:]))]
	if off >= len(msg) {
		return ""
	}
	pos := nlmsgHdrLen + nfgenLen
	for t, v := range attrs(msg[pos:]) {
		start := pos
		pos += align4(nlaHdrLen + len(v))
		if t != unix.NFTA_SET_ELEM_LIST_ELEMENTS || off < start || off >= pos {
			continue
		}
		epos := start + nlaHdrLen
		for _, ev := range attrs(v) {
			estart := epos
			epos += align4(nlaHdrLen + len(ev))
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
	for t, a := range attrs(v) {
		switch t {
		case unix.NFTA_SET_ELEM_KEY:
			for t2, k := range attrs(a) {
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

// query sends one request outside a batch (a GET or a dump) and calls fn
// for every answer message until the kernel says it is done. build
// writes the attributes.
func (c *conn) query(typ uint16, dump bool, family uint8, build func(*builder), fn func(nlmsg) error) error {
	var w builder
	w.buf = make([]byte, 0, 256)
	seq := c.seq
	c.seq++
	flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK)
	if dump {
		// A dump ends with NLMSG_DONE; the kernel sends no ack for it.
		flags = unix.NLM_F_REQUEST | unix.NLM_F_DUMP
	}
	w.beginMsg(unix.NFNL_SUBSYS_NFTABLES<<8|typ, flags, seq, family, 0)
	if build != nil {
		build(&w)
	}
	w.endMsg()
	if err := unix.Sendto(c.fd, w.buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	var ferr error
	for {
		n, err := c.recv()
		if err != nil {
			c.drain()
			return err
		}
		for m := range messages(c.rbuf[:n]) {
			if m.seq != seq {
				continue
			}
			switch m.typ {
			case unix.NLMSG_DONE:
				return ferr
			case unix.NLMSG_ERROR:
				if len(m.body) < 4 {
					return errors.New("short netlink error message")
				}
				if code := int32(ne.Uint32(m.body)); code != 0 {
					msg, _ := ackInfo(m)
					if msg != "" {
						return fmt.Errorf("%w (%s)", unix.Errno(-code), msg)
					}
					return unix.Errno(-code)
				}
				return ferr
			default:
				if m.flags&unix.NLM_F_DUMP_INTR != 0 && ferr == nil {
					// The ruleset changed during the dump: what we
					// got may be inconsistent. Read on to the end.
					ferr = errDumpInterrupted
				}
				if ferr == nil && len(m.body) >= nfgenLen {
					ferr = fn(nlmsg{typ: m.typ & 0xff, flags: m.flags, seq: m.seq, body: m.body[nfgenLen:]})
				}
			}
		}
	}
}
