package ipset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/dynfw/sentinel/internal/firewall/netlink"
	"golang.org/x/sys/unix"
)

// conn is a netlink socket (internal/firewall/netlink) speaking the ipset
// subsystem of nfnetlink. It owns one reusable send buffer, the embedded
// Builder: requests are encoded into it and sent many messages per
// sendmsg, so a million elements cost a few hundred system calls and no
// per-element allocation.
//
// The kernel handles a netlink message inside the sender's sendmsg call and
// queues the acks before sendmsg returns, so a batch is: encode, one
// sendmsg, then read exactly one ack per message.
type conn struct {
	nl *netlink.Conn
	netlink.Builder
	sndb int // bytes one sendmsg may carry
}

const (
	nlmsgHdrLen = netlink.HeaderLen
	nfgenHdrLen = netlink.NfgenLen
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
	nl, err := netlink.Dial(netlink.Config{
		Name:       "ipset",
		NetNS:      netnsFD,
		RecvBuffer: wantSockBuf,
		SendBuffer: wantSockBuf,
		// Error replies from a batch add copy the failing request whole
		// (ipset sends them itself, whatever NETLINK_CAP_ACK says).
		MaxAnswer: 2 * (maxADTBytes + 1024),
		Timeout:   replyTimeout,
		Errno:     func(code int32, _ string) error { return kernelErrno(code) },
	})
	if err != nil {
		return nil, err
	}
	c := &conn{nl: nl}
	snd, err := nl.SendBuffer()
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("ipset: netlink getsockopt: %w", err)
	}
	// Netlink refuses a sendmsg longer than the send buffer less 32.
	c.sndb = min(maxBatch, snd-64)
	if c.sndb < 8<<10 {
		nl.Close()
		return nil, fmt.Errorf("ipset: netlink send buffer of %d bytes is too small", snd)
	}
	c.Buf = make([]byte, 0, c.sndb)
	return c, nil
}

func (c *conn) Close() error { return c.nl.Close() }

// maxMsg is the largest single message this package builds.
func (c *conn) maxMsg() int { return min(c.sndb, maxADTBytes+512) }

// beginMsg appends a netlink and nfnetlink header for an ipset command and
// the protocol attribute every ipset request carries, and returns the
// message's sequence number. The message ends with EndMsg.
func (c *conn) beginMsg(cmd uint8, flags uint16) (seq uint32) {
	seq = c.nl.NextSeq()
	// nfgen_family: ipset ignores it; ipset(8) sends AF_INET.
	c.BeginMsg(nfnlSubsysIPSet<<8|uint16(cmd), flags, seq, unix.AF_INET, 0)
	c.U8(attrProtocol, protocolVersion)
	return seq
}

// putBE32 appends a 32-bit value in network order, flagged as such: ipset
// rejects multi-byte create and flag attributes without the flag.
func (c *conn) putBE32(typ uint16, v uint32) {
	c.BE32(typ|nlaFNetByteOrder, v)
}

// do sends the one request encoded in c.Buf, whose sequence number is seq,
// and waits for its ack. Data messages answering it are passed to onData
// (nil: ignored). A dump ends with NLMSG_DONE instead of an ack.
func (c *conn) do(seq uint32, onData func(attrs []byte) error) error {
	return c.nl.Query(c.Buf, seq, func(m netlink.Message) error {
		if onData == nil {
			return nil
		}
		return onData(m.Data())
	})
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
	for typ, v := range netlink.Attrs(orig[nlmsgHdrLen+nfgenHdrLen : l]) {
		if typ == attrLineNo && len(v) == 4 {
			n, ok = binary.NativeEndian.Uint32(v), true
		}
	}
	return n, ok && n != 0
}

// isErrno reports whether err is the ipset or system error number n.
func isErrno(err error, n Errno) bool {
	var e Errno
	return errors.As(err, &e) && e == n
}

func isNotExist(err error) bool {
	return errors.Is(err, syscall.ENOENT)
}
