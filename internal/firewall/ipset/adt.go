package ipset

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/firewall/netlink"
	"golang.org/x/sys/unix"
)

// source is one list of elements bound for one set, read in place from the
// caller's Elements: nothing is copied, a million addresses are encoded
// straight from the caller's slice into the send buffer.
type source struct {
	kind srcKind
	a4   []uint32
	a6   [][16]byte
	nets []netip.Prefix // all families; only those of family are sent
	// For nets: which family this source takes from the mixed list.
	family uint8
}

type srcKind uint8

const (
	srcAddr4 srcKind = iota
	srcAddr6
	srcNets
)

func (s *source) len() int { return len(s.a4) + len(s.a6) + len(s.nets) }

// accept reports whether element i belongs to this source's set.
func (s *source) accept(i int) bool {
	if s.kind != srcNets {
		return true
	}
	return s.nets[i].Addr().Is4() == (s.family == familyInet)
}

// count is the number of elements this source sends.
func (s *source) count() int {
	if s.kind != srcNets {
		return s.len()
	}
	n := 0
	for i := range s.nets {
		if s.accept(i) {
			n++
		}
	}
	return n
}

func (s *source) prefix(i int) netip.Prefix {
	switch s.kind {
	case srcAddr4:
		return netip.PrefixFrom(firewall.AddrFrom4(s.a4[i]), 32)
	case srcAddr6:
		return netip.PrefixFrom(netip.AddrFrom16(s.a6[i]), 128)
	default:
		return s.nets[i]
	}
}

// Encoded sizes of one element: IPSET_ATTR_DATA holding IPSET_ATTR_IP
// (holding the address), for nets IPSET_ATTR_CIDR, and IPSET_ATTR_LINENO.
const (
	elemSize4    = 4 + 4 + 8 + 8
	elemSize6    = 4 + 4 + 20 + 8
	elemSizeNet4 = elemSize4 + 8
	elemSizeNet6 = elemSize6 + 8
	maxElemSize  = elemSizeNet6
)

// putElem appends element i. Its line number (i+1) is what the kernel
// reports back when this element fails, which is how an error is mapped to
// its element without a request per element.
func (c *conn) putElem(s *source, i int) {
	var b [maxElemSize]byte
	var n int
	var ip []byte
	var cidr int
	switch s.kind {
	case srcAddr4:
		n = elemSize4
		ip = binary.BigEndian.AppendUint32(b[12:12], s.a4[i])
	case srcAddr6:
		n = elemSize6
		ip = append(b[12:12], s.a6[i][:]...)
	default:
		p := s.nets[i]
		cidr = p.Bits()
		if p.Addr().Is4() {
			n = elemSizeNet4
			a := p.Addr().As4()
			ip = append(b[12:12], a[:]...)
		} else {
			n = elemSizeNet6
			a := p.Addr().As16()
			ip = append(b[12:12], a[:]...)
		}
	}
	ne := binary.NativeEndian
	ne.PutUint16(b[0:], uint16(n))
	ne.PutUint16(b[2:], attrData|nlaFNested)
	ne.PutUint16(b[4:], uint16(8+len(ip)))
	ne.PutUint16(b[6:], attrIP|nlaFNested)
	ne.PutUint16(b[8:], uint16(4+len(ip)))
	if len(ip) == 4 {
		ne.PutUint16(b[10:], attrIPAddrIPv4|nlaFNetByteOrder)
	} else {
		ne.PutUint16(b[10:], attrIPAddrIPv6|nlaFNetByteOrder)
	}
	o := 12 + len(ip)
	if s.kind == srcNets {
		ne.PutUint16(b[o:], 5)
		ne.PutUint16(b[o+2:], attrCIDR)
		b[o+4] = uint8(cidr)
		o += 8
	}
	ne.PutUint16(b[o:], 8)
	ne.PutUint16(b[o+2:], attrLineNo)
	ne.PutUint32(b[o+4:], uint32(i+1))
	c.Buf = append(c.Buf, b[:n]...)
}

// job is a range of a source's elements bound for one set.
type job struct {
	set      string
	src      *source
	from, to int
}

// maxReported bounds the element errors returned from one call; the rest
// are counted.
const maxReported = 20

// adt adds (cmdAdd) or deletes (cmdDel) the elements of jobs: as many
// elements per message as one netlink attribute holds (IPSET_ATTR_ADT, the
// batch form `ipset restore` uses), as many messages per sendmsg as the
// socket takes, one ack per message.
//
// With excl, the kernel reports adding a present element or deleting an
// absent one (ErrnoExist); without, it ignores both. The kernel stops a
// message at its first failing element and reports that element's line
// number; the rest of that message is sent again, so one refused element
// costs one more round trip, not the rest of the batch. A full set is not
// retried. Errors that name no element (the set is missing, ...) end the
// call.
//
// Within one call the order of elements is not preserved after an error;
// callers needing "delete, then add" make two calls.
func (c *conn) adt(ctx context.Context, cmd uint8, excl bool, jobs []job) error {
	op := "add"
	if cmd == cmdDel {
		op = "del"
	}
	flags := uint16(reqFlags)
	if excl {
		flags |= unix.NLM_F_EXCL
	}
	queue := append([]job(nil), jobs...)
	var (
		reported []error
		more     int
		full     map[string]int // set name → elements not added
		sent     []job
	)
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.Buf = c.Buf[:0]
		sent = sent[:0]
		var first uint32 // sequence number of the first message
		for len(queue) > 0 && len(c.Buf)+c.maxMsg() <= c.sndb {
			j := &queue[0]
			for j.from < j.to && !j.src.accept(j.from) {
				j.from++
			}
			if _, ok := full[j.set]; ok && j.from < j.to {
				full[j.set] += countRange(j.src, j.from, j.to)
				j.from = j.to
			}
			if j.from == j.to {
				queue = queue[1:]
				continue
			}
			start := len(c.Buf)
			seq := c.beginMsg(cmd, flags)
			if len(sent) == 0 {
				first = seq
			}
			c.Str(attrSetName, j.set)
			// Required with IPSET_ATTR_ADT; the kernel overwrites it in
			// the echoed request with the failing element's line number.
			c.U32(attrLineNo, 0)
			adtOff := c.Nest(attrADT)
			limit := min(adtOff+4+maxADTBytes, start+c.maxMsg()) - maxElemSize
			i := j.from
			for ; i < j.to && len(c.Buf) <= limit; i++ {
				if j.src.accept(i) {
					c.putElem(j.src, i)
				}
			}
			c.EndNest()
			c.EndMsg()
			sent = append(sent, job{j.set, j.src, j.from, i})
			j.from = i
		}
		if len(sent) == 0 {
			break
		}
		if err := c.nl.Send(c.Buf); err != nil {
			return fmt.Errorf("ipset: netlink send of %d bytes: %w", len(c.Buf), err)
		}
		var fatal error
		// refused handles an error answer to message m: an element it
		// names is reported and the rest of m queued again (unless the
		// set is full); an error naming no element ends the call.
		refused := func(m job, a netlink.Ack) {
			kerr := kernelErrno(a.Error)
			ln, ok := lineNo(a.Echo)
			idx := int(ln) - 1
			if !ok || idx < m.from || idx >= m.to {
				if fatal == nil {
					fatal = &opError{op, m.set, kerr}
				}
				return
			}
			if len(reported) < maxReported {
				reported = append(reported, &ElementError{Op: op, Set: m.set, Prefix: m.src.prefix(idx), Err: kerr})
			} else {
				more++
			}
			if isErrno(kerr, ErrnoHashFull) {
				if full == nil {
					full = map[string]int{}
				}
				full[m.set] += countRange(m.src, idx, m.to)
			} else if idx+1 < m.to {
				queue = append(queue, job{m.set, m.src, idx + 1, m.to})
			}
		}
		answered := 0
		for r, err := range c.nl.Receive() {
			if err != nil {
				return fmt.Errorf("ipset: %w", err)
			}
			k := int(r.Seq - first)
			a, ok := netlink.ParseAck(r)
			if r.Type != unix.NLMSG_ERROR || !ok || r.Seq-first >= uint32(len(sent)) {
				continue
			}
			answered++
			if a.Error != 0 {
				refused(sent[k], a)
			}
			if answered == len(sent) {
				break
			}
		}
		if fatal != nil {
			return fatal
		}
	}
	for set, n := range full {
		if n > 0 {
			reported = append(reported, fmt.Errorf("ipset: set %s is full: %d elements not added: %w", set, n, ErrFull))
		}
	}
	if more > 0 {
		reported = append(reported, fmt.Errorf("ipset: %d more elements refused", more))
	}
	return errors.Join(reported...)
}

func countRange(s *source, from, to int) int {
	n := 0
	for i := from; i < to; i++ {
		if s.accept(i) {
			n++
		}
	}
	return n
}
