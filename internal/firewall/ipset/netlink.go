package ipset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// conn is a netlink socket speaking the ipset subsystem of nfnetlink. It
// owns one reusable send buffer: requests are encoded into it and sent
// many messages per sendmsg, so a million elements cost a few hundred
// system calls and no per-element allocation.
//
// The kernel handles a netlink message inside the sender's sendmsg call and
// queues the acks before sendmsg returns, so a batch is: encode, one
// sendmsg, then read exactly one ack per message.
type conn struct {
	fd   int
	pid  uint32
	seq  uint32
	out  []byte // outgoing batch, reused
	in   []byte // receive buffer
	sndb int    // bytes one sendmsg may carry
}

const (
	nlmsgHdrLen = 16
	nfgenHdrLen = 4
	// wantSockBuf is asked for both directions. A batch of several 64 KiB
	// messages must fit the send buffer in one piece (netlink rejects a
	// larger sendmsg with EMSGSIZE), and error replies, which copy the
	// whole failing message, must fit the receive buffer.
	wantSockBuf = 4 << 20
	// maxBatch bounds one sendmsg. Larger batches save little: the kernel's
	// hash inserts dominate.
	maxBatch = 256 << 10
	// replyTimeout guards against a bug that leaves us waiting for an ack
	// that never comes; the kernel answers within the sendmsg call.
	replyTimeout = 30 * time.Second
)

// dial opens the socket in the network namespace open at netnsFD (0: the
// current one).
func dial(netnsFD int) (*conn, error) {
	var fd int
	err := inNetNS(netnsFD, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ipset: netlink socket: %w", err)
	}
	c := &conn{fd: fd, seq: uint32(time.Now().UnixNano())}
	if err := c.setup(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return c, nil
}

func (c *conn) setup() error {
	if err := unix.Bind(c.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("ipset: netlink bind: %w", err)
	}
	sa, err := unix.Getsockname(c.fd)
	if err != nil {
		return fmt.Errorf("ipset: netlink getsockname: %w", err)
	}
	nl, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		return errors.New("ipset: netlink getsockname: not a netlink address")
	}
	c.pid = nl.Pid
	// Successful acks then carry only the request's header, not a copy of
	// a 64 KiB request. Kernels before 4.3 lack the option; acks are
	// just larger there.
	_ = unix.SetsockoptInt(c.fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
		// The FORCE variants need CAP_NET_ADMIN, which ipset needs anyway;
		// the plain ones are capped by net.core.[wr]mem_max.
		if unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, o[0], wantSockBuf) != nil {
			_ = unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, o[1], wantSockBuf)
		}
	}
	snd, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
	if err != nil {
		return fmt.Errorf("ipset: netlink getsockopt: %w", err)
	}
	// Netlink refuses a sendmsg longer than the send buffer less 32.
	c.sndb = min(maxBatch, snd-64)
	if c.sndb < 8<<10 {
		return fmt.Errorf("ipset: netlink send buffer of %d bytes is too small", snd)
	}
	tv := unix.NsecToTimeval(replyTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("ipset: netlink receive timeout: %w", err)
	}
	// Error replies from a batch add copy the failing request whole.
	c.in = make([]byte, 2*(maxADTBytes+1024))
	c.out = make([]byte, 0, c.sndb)
	return nil
}

func (c *conn) Close() error {
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

// maxMsg is the largest single message this package builds.
func (c *conn) maxMsg() int { return min(c.sndb, maxADTBytes+512) }

// --- encoding ---

// beginMsg appends a netlink and nfnetlink header for an ipset command and
// the protocol attribute every ipset request carries. It returns the
// message's offset for endMsg.
func (c *conn) beginMsg(cmd uint8, flags uint16) (start int, seq uint32) {
	c.seq++
	start = len(c.out)
	var h [nlmsgHdrLen + nfgenHdrLen]byte
	binary.NativeEndian.PutUint16(h[4:], nfnlSubsysIPSet<<8|uint16(cmd))
	binary.NativeEndian.PutUint16(h[6:], flags)
	binary.NativeEndian.PutUint32(h[8:], c.seq)
	// h[12:16] port id 0: the kernel fills in ours.
	h[16] = unix.AF_INET // nfgen_family: ipset ignores it; ipset(8) sends AF_INET
	// h[17] version NFNETLINK_V0, h[18:20] res_id 0.
	c.out = append(c.out, h[:]...)
	c.putU8(attrProtocol, protocolVersion)
	return start, c.seq
}

func (c *conn) endMsg(start int) {
	binary.NativeEndian.PutUint32(c.out[start:], uint32(len(c.out)-start))
}

func (c *conn) attrHdr(typ uint16, payload int) {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(4+payload))
	binary.NativeEndian.PutUint16(h[2:], typ)
	c.out = append(c.out, h[:]...)
}

func (c *conn) pad() {
	for len(c.out)%4 != 0 {
		c.out = append(c.out, 0)
	}
}

func (c *conn) putU8(typ uint16, v uint8) {
	c.attrHdr(typ, 1)
	c.out = append(c.out, v, 0, 0, 0)
}

// putBE32 appends a 32-bit value in network order, flagged as such: ipset
// rejects multi-byte create and flag attributes without the flag.
func (c *conn) putBE32(typ uint16, v uint32) {
	c.attrHdr(typ|nlaFNetByteOrder, 4)
	c.out = binary.BigEndian.AppendUint32(c.out, v)
}

// putU32 appends a host-order 32-bit value (ipset's line numbers).
func (c *conn) putU32(typ uint16, v uint32) {
	c.attrHdr(typ, 4)
	c.out = binary.NativeEndian.AppendUint32(c.out, v)
}

// putStr appends a NUL-terminated string.
func (c *conn) putStr(typ uint16, s string) {
	c.attrHdr(typ, len(s)+1)
	c.out = append(c.out, s...)
	c.out = append(c.out, 0)
	c.pad()
}

func (c *conn) nest(typ uint16) int {
	off := len(c.out)
	c.attrHdr(typ|nlaFNested, 0)
	return off
}

func (c *conn) endNest(off int) {
	binary.NativeEndian.PutUint16(c.out[off:], uint16(len(c.out)-off))
}

// --- sending and receiving ---

func (c *conn) send() error {
	if len(c.out) == 0 {
		return nil
	}
	err := unix.Sendto(c.fd, c.out, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	if err != nil {
		return fmt.Errorf("ipset: netlink send of %d bytes: %w", len(c.out), err)
	}
	return nil
}

// reply is one netlink message received for a request.
type reply struct {
	typ   uint16
	seq   uint32
	errno int32  // for NLMSG_ERROR and NLMSG_DONE: 0 or a negative errno
	orig  []byte // NLMSG_ERROR: the request as echoed back (header at least)
	attrs []byte // data messages: the ipset attributes after the nfgenmsg
}

// recv reads one datagram and calls fn for every message in it that is
// addressed to us. The slices passed to fn are valid only during the call.
func (c *conn) recv(fn func(r *reply) error) error {
	for {
		n, _, rflags, _, err := unix.Recvmsg(c.fd, c.in, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return fmt.Errorf("ipset: no netlink reply within %v", replyTimeout)
		}
		if err != nil {
			// ENOBUFS: the kernel dropped replies; what became of the
			// requests is unknown.
			return fmt.Errorf("ipset: netlink receive: %w", os.NewSyscallError("recvmsg", err))
		}
		if rflags&unix.MSG_TRUNC != 0 {
			return errors.New("ipset: netlink reply larger than the receive buffer")
		}
		return parseDatagram(c.in[:n], c.pid, fn)
	}
}

// parseDatagram calls fn for every netlink message in b addressed to port
// id pid (or to the kernel's 0). A malformed message ends the parse with an
// error; nothing in b can make it read out of bounds.
func parseDatagram(b []byte, pid uint32, fn func(r *reply) error) error {
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			return fmt.Errorf("ipset: malformed netlink message (length %d of %d)", l, len(b))
		}
		m := b[:l]
		if al := (l + 3) &^ 3; al < len(b) {
			b = b[al:]
		} else {
			b = nil
		}
		r := reply{
			typ: binary.NativeEndian.Uint16(m[4:]),
			seq: binary.NativeEndian.Uint32(m[8:]),
		}
		if p := binary.NativeEndian.Uint32(m[12:]); p != pid && p != 0 {
			continue
		}
		switch r.typ {
		case unix.NLMSG_NOOP:
			continue
		case unix.NLMSG_ERROR, unix.NLMSG_DONE:
			if len(m) >= nlmsgHdrLen+4 {
				r.errno = int32(binary.NativeEndian.Uint32(m[nlmsgHdrLen:]))
				r.orig = m[nlmsgHdrLen+4:]
			}
		default:
			if len(m) >= nlmsgHdrLen+nfgenHdrLen {
				r.attrs = m[nlmsgHdrLen+nfgenHdrLen:]
			}
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

// do sends the one request encoded in c.out and waits for its ack. Data
// messages answering it are passed to onData (nil: ignored). A dump ends
// with NLMSG_DONE instead of an ack.
func (c *conn) do(seq uint32, onData func(attrs []byte) error) error {
	if err := c.send(); err != nil {
		return err
	}
	var (
		done bool
		kerr error
	)
	for !done {
		err := c.recv(func(r *reply) error {
			if r.seq != seq {
				return nil // a late reply to an earlier, failed exchange
			}
			switch r.typ {
			case unix.NLMSG_ERROR, unix.NLMSG_DONE:
				done = true
				if r.errno != 0 {
					kerr = kernelErrno(r.errno)
				}
			default:
				if onData != nil && kerr == nil {
					kerr = onData(r.attrs)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return kerr
}

// --- attribute parsing ---

// attrs iterates over the netlink attributes in b, passing each type
// (flags masked off) and payload to fn.
func attrs(b []byte, fn func(typ uint16, v []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[4:l])
		al := (l + 3) &^ 3
		if al >= len(b) {
			return
		}
		b = b[al:]
	}
}

// lineNo finds the line number the kernel wrote into the echoed request
// of a failed batch: the index (plus one) of the element that failed.
func lineNo(orig []byte) (uint32, bool) {
	if len(orig) < nlmsgHdrLen+nfgenHdrLen {
		return 0, false
	}
	l := int(binary.NativeEndian.Uint32(orig))
	if l > len(orig) || l < nlmsgHdrLen+nfgenHdrLen {
		return 0, false // capped: only the header came back
	}
	var n uint32
	var ok bool
	attrs(orig[nlmsgHdrLen+nfgenHdrLen:l], func(typ uint16, v []byte) {
		if typ == attrLineNo && len(v) == 4 {
			n, ok = binary.NativeEndian.Uint32(v), true
		}
	})
	return n, ok && n != 0
}

func be32(v []byte) uint32 {
	if len(v) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func cstr(v []byte) string {
	for i, b := range v {
		if b == 0 {
			return string(v[:i])
		}
	}
	return string(v)
}

// isErrno reports whether err is the ipset or system error number n.
func isErrno(err error, n Errno) bool {
	var e Errno
	return errors.As(err, &e) && e == n
}

func isNotExist(err error) bool {
	return errors.Is(err, syscall.ENOENT)
}
