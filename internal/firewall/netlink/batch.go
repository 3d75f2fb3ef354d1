package netlink

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Batch is one nfnetlink transaction: NFNL_MSG_BATCH_BEGIN, the messages,
// NFNL_MSG_BATCH_END, all in one buffer sent with one sendmsg. The kernel
// applies all messages or none.
type Batch struct {
	Builder
	// Msgs describes the messages between BEGIN and END; message i has
	// sequence number Seq0()+1+i.
	Msgs     []MsgInfo
	seq0     uint32 // sequence number of BATCH_BEGIN
	subsys   uint16
	finished bool
	mapped   []byte // the mmap'ed memory behind Buf, if any
}

// MsgInfo is one message of a batch: where it starts in Buf, and what it
// does, to explain an error the kernel reports for it ("add elements to
// set inet dynfw addr4").
type MsgInfo struct {
	Off  int
	What string
}

// BigBatch is the size from which a batch buffer is mmap'ed and unmapped
// after use instead of being kept on the Go heap: a full list of a million
// addresses needs 16 MB for one moment, and the client must not keep that
// (nor let the garbage collector's headroom double it) afterwards.
const BigBatch = 1 << 20

// NewBatch prepares a batch whose encoding needs about sizeHint bytes.
// small is a buffer the caller keeps for small batches (see Release).
// Start (or Conn.StartBatch) must be called next.
func NewBatch(sizeHint int, small []byte) Batch {
	var b Batch
	if sizeHint >= BigBatch {
		size := (sizeHint + 4095) &^ 4095
		if mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err == nil {
			b.mapped = mem
			b.Buf = mem[:0]
		}
	}
	if b.Buf == nil {
		if cap(small) < sizeHint {
			small = make([]byte, 0, sizeHint)
		}
		b.Buf = small[:0]
	}
	return b
}

// StartBatch starts b for subsystem subsys with the connection's next
// sequence number; see Start.
func (c *Conn) StartBatch(b *Batch, subsys uint16) {
	if c.seq >= 1<<31 {
		c.seq = 0 // keep Seq0..EndSeq from wrapping around
	}
	b.Start(c.seq+1, subsys)
}

// Mapped reports whether the batch's buffer is mmap'ed.
func (b *Batch) Mapped() bool { return b.mapped != nil }

// Release gives the batch's memory back: a big batch's to the system at
// once. It returns the buffer for the next small batch, or nil if this
// one's is not worth keeping.
func (b *Batch) Release() (small []byte) {
	if b.mapped != nil {
		_ = unix.Munmap(b.mapped)
		b.mapped = nil
	} else if cap(b.Buf) <= BigBatch {
		small = b.Buf[:0]
	}
	b.Buf = nil
	return small
}

// Start writes BATCH_BEGIN with sequence number seq0. Its res_id carries
// the subsystem the batch is for (big-endian), as nft sends it; like nft
// for plain commands no NFNL_BATCH_GENID is sent, so a concurrent change
// by another program does not make the batch fail.
func (b *Batch) Start(seq0 uint32, subsys uint16) {
	b.seq0, b.subsys = seq0, subsys
	b.BeginMsg(unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, seq0, unix.AF_UNSPEC, subsys)
	b.EndMsg()
}

// Add begins the next message of the batch; typ is the full message type
// (subsystem<<8 | command), what says what it does. The caller writes
// its attributes and EndMsg.
func (b *Batch) Add(typ, flags uint16, family uint8, what string) {
	b.Msgs = append(b.Msgs, MsgInfo{len(b.Buf), what})
	b.BeginMsg(typ, unix.NLM_F_REQUEST|flags, b.seq0+uint32(len(b.Msgs)), family, 0)
}

// Finish writes BATCH_END; further calls do nothing. Only the last
// message asks for an acknowledgement: errors are reported for every
// failing message anyway, and its ack tells that the kernel has answered
// everything, without queueing hundreds of acks for a big batch.
func (b *Batch) Finish() {
	if b.finished {
		return
	}
	b.finished = true
	if len(b.Msgs) > 0 {
		off := b.Msgs[len(b.Msgs)-1].Off
		ne.PutUint16(b.Buf[off+6:], ne.Uint16(b.Buf[off+6:])|unix.NLM_F_ACK)
	}
	b.BeginMsg(unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, b.EndSeq(), unix.AF_UNSPEC, b.subsys)
	b.EndMsg()
}

// Seq0 is BATCH_BEGIN's sequence number, LastSeq the last message's and
// EndSeq BATCH_END's.
func (b *Batch) Seq0() uint32    { return b.seq0 }
func (b *Batch) LastSeq() uint32 { return b.seq0 + uint32(len(b.Msgs)) }
func (b *Batch) EndSeq() uint32  { return b.seq0 + uint32(len(b.Msgs)) + 1 }

// ErrOutcomeUnknown marks failures after which the kernel may or may not
// have applied a batch.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// errorLimit bounds the errors explained in detail per batch.
const errorLimit = 8

// Transact finishes the batch, sends it with one sendmsg and reads the
// kernel's answers. explain turns an error answer (an NLMSG_ERROR with a
// sequence number from Seq0 to EndSeq) into the error to report; BEGIN's
// and END's sequence numbers carry errors of the batch as a whole. A nil
// explain reports the error number alone. If
// the returned error wraps ErrOutcomeUnknown the batch may have been
// applied; otherwise it was, if the error is nil, or it was not.
func (c *Conn) Transact(b *Batch, explain func(Message) error) error {
	if len(b.Msgs) == 0 {
		return nil
	}
	b.Finish()
	c.seq = b.EndSeq()
	if need := len(b.Buf) + 64<<10; need > c.sndbuf {
		if err := c.GrowSendBuffer(need); err != nil {
			return fmt.Errorf("%s: netlink send buffer of %d bytes: %w", c.name, need, err)
		}
	}
	if err := c.Send(b.Buf); err != nil {
		// Nothing was processed: the kernel refuses the whole message.
		return fmt.Errorf("%s: sending a batch of %d bytes: %w", c.name, len(b.Buf), err)
	}
	defer c.Drain()
	var errs []error
	nerr := 0
	for m, err := range c.Receive() {
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("%s: reading the kernel's answer to a batch: %w (%w)", c.name, err, ErrOutcomeUnknown))...)
		}
		if m.Seq-b.seq0 > b.EndSeq()-b.seq0 || m.Type != unix.NLMSG_ERROR {
			continue // a late answer to an earlier request
		}
		a, ok := ParseAck(m)
		if !ok {
			continue
		}
		if a.Error != 0 {
			nerr++
			switch {
			case nerr > errorLimit:
			case explain != nil:
				errs = append(errs, explain(m))
			default:
				errs = append(errs, fmt.Errorf("%s: %w", c.name, unix.Errno(-a.Error)))
			}
		}
		// BATCH_BEGIN's sequence number carries errors for the batch as
		// a whole (commit failed, out of memory): nothing else will come.
		if m.Seq == b.LastSeq() || (a.Error != 0 && (m.Seq == b.seq0 || m.Seq == b.EndSeq())) {
			break
		}
	}
	if nerr > errorLimit {
		errs = append(errs, fmt.Errorf("%s: and %d more errors in the same batch", c.name, nerr-errorLimit))
	}
	return errors.Join(errs...)
}
