package ipset

import (
	"errors"
	"fmt"

	"github.com/dynfw/sentinel/internal/firewall/netlink"
	"golang.org/x/sys/unix"
)

// Whole-set commands. Each is one request and one ack; they run a handful
// of times per Replace, never per element.

const (
	reqFlags  = unix.NLM_F_REQUEST | unix.NLM_F_ACK
	dumpFlags = unix.NLM_F_REQUEST | unix.NLM_F_DUMP
)

// setInfo is a set's header as LIST reports it with the header-only flag.
type setInfo struct {
	typ        string
	family     uint8
	revision   uint8
	hashSize   uint32
	maxElem    uint32
	elements   uint32
	references uint32
	memSize    uint32
	timeout    bool // created with a default timeout: elements would expire
}

// header returns a set's header without its members, or an error that
// satisfies isNotExist when the set does not exist.
func (c *conn) header(name string) (*setInfo, error) {
	c.Buf = c.Buf[:0]
	seq := c.beginMsg(cmdList, dumpFlags)
	c.Str(attrSetName, name)
	c.putBE32(attrFlags, flagListHeader)
	c.EndMsg()
	var info *setInfo
	err := c.do(seq, func(b []byte) error {
		var got setInfo
		var setName string
		for typ, v := range netlink.Attrs(b) {
			switch typ {
			case attrSetName:
				setName = netlink.String(v)
			case attrTypeName:
				got.typ = netlink.String(v)
			case attrFamily:
				if len(v) > 0 {
					got.family = v[0]
				}
			case attrRevision:
				if len(v) > 0 {
					got.revision = v[0]
				}
			case attrData:
				for typ, v := range netlink.Attrs(v) {
					switch typ {
					case attrHashSize:
						got.hashSize = netlink.BE32(v)
					case attrMaxElem:
						got.maxElem = netlink.BE32(v)
					case attrElements:
						got.elements = netlink.BE32(v)
					case attrReferences:
						got.references = netlink.BE32(v)
					case attrMemSize:
						got.memSize = netlink.BE32(v)
					case attrTimeout:
						got.timeout = true
					}
				}
			}
		}
		// A header-only dump of one set may come in several messages;
		// the first has the type.
		if setName == name && info == nil && got.typ != "" {
			info = &got
		}
		return nil
	})
	if err != nil {
		return nil, &opError{"list header of", name, err}
	}
	if info == nil {
		return nil, &opError{"list header of", name, errors.New("no header in the kernel's reply")}
	}
	return info, nil
}

// typeRevision returns the newest revision of a set type the kernel
// supports. CREATE needs an exact revision, and the newest is what ipset(8)
// uses; this package sends no attribute that depends on it.
func (c *conn) typeRevision(typ string, family uint8) (uint8, error) {
	c.Buf = c.Buf[:0]
	seq := c.beginMsg(cmdType, reqFlags)
	c.Str(attrTypeName, typ)
	c.U8(attrFamily, family)
	c.EndMsg()
	var rev uint8
	var found bool
	err := c.do(seq, func(b []byte) error {
		for t, v := range netlink.Attrs(b) {
			if t == attrRevision && len(v) > 0 {
				rev, found = v[0], true
			}
		}
		return nil
	})
	if err == nil && !found {
		err = errors.New("no revision in the kernel's reply")
	}
	if err != nil {
		return 0, fmt.Errorf("ipset: kernel support for %s %s: %w", typ, familyName(family), err)
	}
	return rev, nil
}

// create makes an empty set; it fails with ErrnoExist if the name is taken.
func (c *conn) create(name, typ string, rev, family uint8, hashSize, maxElem uint32) error {
	c.Buf = c.Buf[:0]
	seq := c.beginMsg(cmdCreate, reqFlags|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	c.Str(attrSetName, name)
	c.Str(attrTypeName, typ)
	c.U8(attrRevision, rev)
	c.U8(attrFamily, family)
	c.Nest(attrData)
	c.putBE32(attrHashSize, hashSize)
	c.putBE32(attrMaxElem, maxElem)
	c.EndNest()
	c.EndMsg()
	if err := c.do(seq, nil); err != nil {
		return &opError{"create", name, err}
	}
	return nil
}

func (c *conn) simple(cmd uint8, flags uint16, op, name, name2 string) error {
	c.Buf = c.Buf[:0]
	seq := c.beginMsg(cmd, reqFlags|flags)
	c.Str(attrSetName, name)
	if name2 != "" {
		c.Str(attrSetName2, name2)
	}
	c.EndMsg()
	if err := c.do(seq, nil); err != nil {
		if name2 != "" {
			name += " with " + name2
		}
		return &opError{op, name, err}
	}
	return nil
}

// destroy removes a set; ErrnoBusy if a rule references it, ENOENT if it
// does not exist (without NLM_F_EXCL the kernel would report success).
func (c *conn) destroy(name string) error {
	return c.simple(cmdDestroy, unix.NLM_F_EXCL, "destroy", name, "")
}

// flush empties a set.
func (c *conn) flush(name string) error { return c.simple(cmdFlush, 0, "flush", name, "") }

// swap exchanges the contents (and names) of two sets of the same type and
// family in one step under the kernel's lock: rules referencing either see
// the old set or the new one, never something in between.
func (c *conn) swap(a, b string) error { return c.simple(cmdSwap, 0, "swap", a, b) }

// rename gives set a the name b, which must be free.
func (c *conn) rename(a, b string) error { return c.simple(cmdRename, 0, "rename", a, b) }
