package nftables

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall/netlink"
	"golang.org/x/sys/unix"
)

// decodedMsg is one message of an encoded batch, parsed back.
type decodedMsg struct {
	off      int
	typ      uint16
	flags    uint16
	seq      uint32
	family   uint8
	resID    uint16
	set      string
	elemsLen int      // payload of NFTA_SET_ELEM_LIST_ELEMENTS
	elems    [][]byte // raw NFTA_LIST_ELEM payloads
}

func decodeBatch(t *testing.T, buf []byte) []decodedMsg {
	t.Helper()
	var out []decodedMsg
	off := 0
	for off < len(buf) {
		l := int(ne.Uint32(buf[off:]))
		if l < nlmsgHdrLen+nfgenLen || off+l > len(buf) || l%4 != 0 {
			t.Fatalf("bad message length %d at %d", l, off)
		}
		m := decodedMsg{off: off, typ: ne.Uint16(buf[off+4:]), flags: ne.Uint16(buf[off+6:]), seq: ne.Uint32(buf[off+8:]),
			family: buf[off+16], resID: binary.BigEndian.Uint16(buf[off+18:])}
		body := buf[off+20 : off+l]
		seen := 0
		for typ, v := range netlink.Attrs(body) {
			seen += netlink.Align(nlaHdrLen + len(v))
			switch typ {
			case unix.NFTA_SET_ELEM_LIST_SET:
				m.set = netlink.String(v)
			case unix.NFTA_SET_ELEM_LIST_ELEMENTS:
				m.elemsLen = len(v)
				n := 0
				for et, ev := range netlink.Attrs(v) {
					if et != unix.NFTA_LIST_ELEM {
						t.Fatalf("element attribute type %d", et)
					}
					n += netlink.Align(nlaHdrLen + len(ev))
					m.elems = append(m.elems, ev)
				}
				if n != len(v) {
					t.Fatalf("elements cover %d of %d bytes", n, len(v))
				}
			}
		}
		if seen != len(body) {
			t.Fatalf("attributes cover %d of %d bytes in message at %d", seen, len(body), off)
		}
		out = append(out, m)
		off += l
	}
	return out
}

// elemKey returns an element's key and whether it is an interval end and
// marked open.
func elemKey(t *testing.T, v []byte) (netip.Addr, bool, bool) {
	t.Helper()
	var key []byte
	end, open := false, false
	for typ, a := range netlink.Attrs(v) {
		switch typ {
		case unix.NFTA_SET_ELEM_KEY:
			for t2, k := range netlink.Attrs(a) {
				if t2 == unix.NFTA_DATA_VALUE {
					key = k
				}
			}
		case unix.NFTA_SET_ELEM_FLAGS:
			end = binary.BigEndian.Uint32(a) == unix.NFT_SET_ELEM_INTERVAL_END
		case unix.NFTA_SET_ELEM_USERDATA:
			open = len(a) == 6 && a[0] == udataSetElemFlags && a[1] == 4 && ne.Uint32(a[2:]) == setElemFIntervalOpen
		}
	}
	a, ok := netip.AddrFromSlice(key)
	if !ok {
		t.Fatalf("bad key %x", key)
	}
	return a, end, open
}

func TestBatchEncoding(t *testing.T) {
	set4 := newSetDef("inet", "dynfw", "addr4", fam4, false)
	set6 := newSetDef("inet", "dynfw", "addr6", fam6, false)
	net4 := newSetDef("inet", "dynfw", "net4", fam4, true)
	const n4 = 5001
	vals := make([]uint32, n4)
	for i := range vals {
		vals[i] = 0x0a000000 + uint32(i)
	}
	v6 := make([][16]byte, 1500)
	for i := range v6 {
		v6[i] = netip.MustParseAddr("2001:db8::").As16()
		binary.BigEndian.PutUint16(v6[i][14:], uint16(i))
	}
	spans := mergeSpans(nil, spansOf(nil, pfx("10.0.0.0/8", "192.168.0.0/16", "255.255.255.0/24", "0.0.0.0/8"), fam4), fam4)

	hint := listSize("dynfw", "addr4", n4*elemLen(4, false, false)) + listSize("dynfw", "addr6", len(v6)*elemLen(16, false, false))
	b := newBatch(hint, nil)
	b.start(100)
	b.flushSet(unix.NFPROTO_INET, "dynfw", set4)
	b.openList(unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE, unix.NFPROTO_INET, "dynfw", set4)
	b.appendAddr4(vals)
	b.openList(unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE|unix.NLM_F_EXCL, unix.NFPROTO_INET, "dynfw", set6)
	b.appendAddr6(v6)
	b.openList(unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE, unix.NFPROTO_INET, "dynfw", net4)
	b.appendSpans(spans, fam4)
	b.finish()
	if len(b.Buf) > hint+4096 {
		t.Errorf("batch of %d bytes, size hint %d too low", len(b.Buf), hint)
	}

	msgs := decodeBatch(t, b.Buf)
	first, last := msgs[0], msgs[len(msgs)-1]
	if first.typ != unix.NFNL_MSG_BATCH_BEGIN || first.resID != unix.NFNL_SUBSYS_NFTABLES || first.seq != 100 || first.family != unix.AF_UNSPEC {
		t.Errorf("batch begin %+v", first)
	}
	if last.typ != unix.NFNL_MSG_BATCH_END || last.resID != unix.NFNL_SUBSYS_NFTABLES || last.seq != 100+uint32(len(msgs)-1) {
		t.Errorf("batch end %+v", last)
	}
	inner := msgs[1 : len(msgs)-1]
	if len(inner) != len(b.Msgs) {
		t.Fatalf("%d inner messages, batch recorded %d", len(inner), len(b.Msgs))
	}
	var got4, got6 int
	var gotSpans []string
	for i, m := range inner {
		if m.seq != 101+uint32(i) {
			t.Errorf("message %d: seq %d", i, m.seq)
		}
		if m.off != b.Msgs[i].Off {
			t.Errorf("message %d: recorded at %d, found at %d", i, b.Msgs[i].Off, m.off)
		}
		if ack := m.flags&unix.NLM_F_ACK != 0; ack != (i == len(inner)-1) {
			t.Errorf("message %d: ack flag %v", i, ack)
		}
		if m.flags&unix.NLM_F_REQUEST == 0 || m.resID != 0 || m.family != unix.NFPROTO_INET {
			t.Errorf("message %d: header %+v", i, m)
		}
		if m.elemsLen > maxListBytes {
			t.Errorf("message %d: element list of %d bytes", i, m.elemsLen)
		}
		switch m.set {
		case "addr4":
			if i == 0 {
				if m.typ != unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_DELSETELEM || m.elems != nil {
					t.Errorf("first message should flush addr4: %+v", m)
				}
				continue
			}
			for _, e := range m.elems {
				a, end, _ := elemKey(t, e)
				if end || a != netip.AddrFrom4([4]byte{10, 0, byte(got4 >> 8), byte(got4)}) {
					t.Fatalf("addr4 element %d: %v end=%v", got4, a, end)
				}
				got4++
			}
		case "addr6":
			if m.flags&unix.NLM_F_EXCL == 0 {
				t.Errorf("addr6 message without NLM_F_EXCL")
			}
			got6 += len(m.elems)
		case "net4":
			for _, e := range m.elems {
				a, end, open := elemKey(t, e)
				s := a.String()
				if end {
					s = "end:" + s
				}
				if open {
					s += ":open"
				}
				gotSpans = append(gotSpans, s)
			}
		}
	}
	if got4 != n4 || got6 != len(v6) {
		t.Errorf("decoded %d IPv4 and %d IPv6 elements, want %d and %d", got4, got6, n4, len(v6))
	}
	// 2000 IPv4 or 1142 IPv6 addresses fill a message.
	if n := len(inner); n != 1+3+2+1 {
		t.Errorf("%d messages, want 7", n)
	}
	want := []string{"0.0.0.0", "end:1.0.0.0", "10.0.0.0", "end:11.0.0.0", "192.168.0.0", "end:192.169.0.0", "255.255.255.0:open"}
	if len(gotSpans) != len(want) {
		t.Fatalf("interval elements %v, want %v", gotSpans, want)
	}
	for i := range want {
		if gotSpans[i] != want[i] {
			t.Fatalf("interval elements %v, want %v", gotSpans, want)
		}
	}

	// An extended ack pointing into an element names it.
	m := inner[2] // second addr4 message: elements 2000..3999
	elems := m.off + nlmsgHdrLen + nfgenLen + nlaHdrLen + netlink.Align(len("dynfw")+1) + nlaHdrLen + netlink.Align(len("addr4")+1) + nlaHdrLen
	off := elems + 7*16 + 5 - m.off // inside the 8th element
	if got := b.elementAt(m.off, off); got != "10.0.7.215" {
		t.Errorf("elementAt = %q, want 10.0.7.215 (element 2007)", got)
	}
	if got := b.elementAt(m.off, 8); got != "" {
		t.Errorf("elementAt(header) = %q", got)
	}
	// The same through the error path.
	var ack [4 + nlmsgHdrLen + 8]byte
	ne.PutUint32(ack[0:], uint32(0xfffffffe)) // -ENOENT
	ne.PutUint16(ack[4+nlmsgHdrLen:], 8)
	ne.PutUint16(ack[4+nlmsgHdrLen+2:], unix.NLMSGERR_ATTR_OFFS)
	ne.PutUint32(ack[4+nlmsgHdrLen+4:], uint32(off))
	err := b.explain(netlink.Message{Type: unix.NLMSG_ERROR, Flags: unix.NLM_F_CAPPED | unix.NLM_F_ACK_TLVS, Seq: m.seq, Body: ack[:]})
	var oe *OpError
	if !errors.As(err, &oe) || oe.Element != "10.0.7.215" || !errors.Is(err, unix.ENOENT) || oe.Op != "add elements to set inet dynfw addr4" {
		t.Errorf("explain = %v", err)
	}
	b.Release()
}
