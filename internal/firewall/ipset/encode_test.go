package ipset

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall/netlink"
	"golang.org/x/sys/unix"
)

// These tests need no root: they check the wire encoding against the
// kernel's rules as read from ip_set_core.c and ip_set_hash_gen.h.

type rawAttr struct {
	typ   uint16 // with flags
	value []byte
}

func rawAttrs(t *testing.T, b []byte) []rawAttr {
	t.Helper()
	var out []rawAttr
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("trailing %d bytes", len(b))
		}
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			t.Fatalf("attribute length %d of %d", l, len(b))
		}
		out = append(out, rawAttr{binary.NativeEndian.Uint16(b[2:]), b[4:l]})
		al := (l + 3) &^ 3
		if al > len(b) {
			t.Fatalf("attribute padding runs past the end")
		}
		b = b[al:]
	}
	return out
}

func TestElementEncoding(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for _, c := range []struct {
		name   string
		src    *source
		i      int
		size   int
		ipType uint16
		ip     []byte
		cidr   int // -1: none
	}{
		{"addr4", &source{kind: srcAddr4, a4: []uint32{1, 0xc0000201}}, 1, elemSize4, attrIPAddrIPv4, []byte{192, 0, 2, 1}, -1},
		{"addr6", &source{kind: srcAddr6, a6: [][16]byte{{0x20, 0x01, 0x0d, 0xb8, 15: 1}}}, 0, elemSize6, attrIPAddrIPv6,
			[]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, -1},
		{"net4", &source{kind: srcNets, nets: nets, family: familyInet}, 0, elemSizeNet4, attrIPAddrIPv4, []byte{10, 0, 0, 0}, 8},
		{"net6", &source{kind: srcNets, nets: nets, family: familyInet6}, 1, elemSizeNet6, attrIPAddrIPv6,
			[]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 32},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := &conn{nl: new(netlink.Conn)}
			conn.putElem(c.src, c.i)
			if len(conn.Buf) != c.size {
				t.Fatalf("encoded %d bytes, want %d", len(conn.Buf), c.size)
			}
			top := rawAttrs(t, conn.Buf)
			if len(top) != 1 || top[0].typ != attrData|nlaFNested {
				t.Fatalf("top level %+v, want one nested IPSET_ATTR_DATA", top)
			}
			inner := rawAttrs(t, top[0].value)
			var sawIP, sawLine bool
			cidr := -1
			for _, a := range inner {
				switch a.typ {
				case attrIP | nlaFNested:
					ip := rawAttrs(t, a.value)
					// The kernel rejects addresses without the byte-order flag.
					if len(ip) != 1 || ip[0].typ != c.ipType|nlaFNetByteOrder || string(ip[0].value) != string(c.ip) {
						t.Errorf("IP attribute %+v, want type %d|NET_BYTEORDER value %v", ip, c.ipType, c.ip)
					}
					sawIP = true
				case attrCIDR:
					if len(a.value) != 1 {
						t.Errorf("CIDR of %d bytes", len(a.value))
					}
					cidr = int(a.value[0])
				case attrLineNo:
					if binary.NativeEndian.Uint32(a.value) != uint32(c.i+1) {
						t.Errorf("line number %d, want %d", binary.NativeEndian.Uint32(a.value), c.i+1)
					}
					sawLine = true
				default:
					t.Errorf("unexpected attribute %#x", a.typ)
				}
			}
			if !sawIP || !sawLine || cidr != c.cidr {
				t.Errorf("ip %v lineno %v cidr %d (want %d)", sawIP, sawLine, cidr, c.cidr)
			}
		})
	}
}

func TestCreateMessage(t *testing.T) {
	c := &conn{nl: new(netlink.Conn)}
	seq := c.beginMsg(cmdCreate, reqFlags|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	c.Str(attrSetName, "abc")
	c.Str(attrTypeName, typeHashIP)
	c.U8(attrRevision, 6)
	c.U8(attrFamily, familyInet6)
	c.Nest(attrData)
	c.putBE32(attrHashSize, 4096)
	c.putBE32(attrMaxElem, 262144)
	c.EndNest()
	c.EndMsg()

	b := c.Buf
	if int(binary.NativeEndian.Uint32(b)) != len(b) || len(b)%4 != 0 {
		t.Fatalf("message length %d, buffer %d", binary.NativeEndian.Uint32(b), len(b))
	}
	if typ := binary.NativeEndian.Uint16(b[4:]); typ != nfnlSubsysIPSet<<8|cmdCreate {
		t.Errorf("type %#x", typ)
	}
	if s := binary.NativeEndian.Uint32(b[8:]); s != seq {
		t.Errorf("seq %d, want %d", s, seq)
	}
	got := map[uint16][]byte{}
	for _, a := range rawAttrs(t, b[nlmsgHdrLen+nfgenHdrLen:]) {
		got[a.typ] = a.value
	}
	if v := got[attrProtocol]; len(v) != 1 || v[0] != protocolVersion {
		t.Errorf("protocol %v", v)
	}
	if v := got[attrSetName]; string(v) != "abc\x00" {
		t.Errorf("name %q, want NUL-terminated", v)
	}
	if v := got[attrFamily]; len(v) != 1 || v[0] != familyInet6 {
		t.Errorf("family %v", v)
	}
	data := got[attrData|nlaFNested]
	if data == nil {
		t.Fatal("no nested IPSET_ATTR_DATA")
	}
	want := map[uint16]uint32{attrHashSize | nlaFNetByteOrder: 4096, attrMaxElem | nlaFNetByteOrder: 262144}
	for _, a := range rawAttrs(t, data) {
		if w, ok := want[a.typ]; !ok || binary.BigEndian.Uint32(a.value) != w {
			t.Errorf("data attribute %#x = %v", a.typ, a.value)
		}
		delete(want, a.typ)
	}
	if len(want) != 0 {
		t.Errorf("missing %v", want)
	}
}

// TestLineNo reads the failing element back from an error reply: the
// kernel echoes the request with IPSET_ATTR_LINENO overwritten.
func TestLineNo(t *testing.T) {
	c := &conn{nl: new(netlink.Conn)}
	c.beginMsg(cmdAdd, reqFlags)
	c.Str(attrSetName, "s")
	c.U32(attrLineNo, 4242)
	c.Nest(attrADT)
	c.putElem(&source{kind: srcAddr4, a4: []uint32{1, 2}}, 0)
	c.EndNest()
	c.EndMsg()

	if n, ok := lineNo(c.Buf); !ok || n != 4242 {
		t.Errorf("lineNo = %d %v, want 4242", n, ok)
	}
	// A capped echo (header only) names no element.
	if _, ok := lineNo(c.Buf[:nlmsgHdrLen]); ok {
		t.Error("lineNo found a number in a capped echo")
	}
	// Nor does a request without a line number, or with 0.
	c.Buf = c.Buf[:0]
	c.beginMsg(cmdAdd, reqFlags)
	c.U32(attrLineNo, 0)
	c.EndMsg()
	if _, ok := lineNo(c.Buf); ok {
		t.Error("lineNo accepted line 0")
	}
}

func TestErrors(t *testing.T) {
	if err := kernelErrno(-int32(syscall.ENOENT)); !errors.Is(err, fs.ErrNotExist) || !isNotExist(err) {
		t.Errorf("ENOENT = %v", err)
	}
	full := &ElementError{Op: "add", Set: "s", Prefix: netip.MustParsePrefix("192.0.2.1/32"), Err: kernelErrno(-4352)}
	if !errors.Is(full, ErrFull) || errors.Is(kernelErrno(-4103), ErrFull) {
		t.Error("ErrFull does not match exactly the hash-full error")
	}
	del := &ElementError{Op: "del", Set: "s", Prefix: netip.MustParsePrefix("192.0.2.1/32"), Err: kernelErrno(-4103)}
	if got := del.Error(); got != "ipset: del 192.0.2.1/32 from set s: not in the set" {
		t.Errorf("message %q", got)
	}
	if got := Errno(4999).Error(); got != "ipset error 4999" {
		t.Errorf("unknown errno message %q", got)
	}
}

func TestHashSize(t *testing.T) {
	for _, c := range []struct {
		n    int
		want uint32
	}{{0, 1024}, {2048, 1024}, {2049, 2048}, {100_000, 65536}, {1_000_000, 524288}, {1 << 30, 1 << 24}} {
		if got := hashSize(c.n); got != c.want {
			t.Errorf("hashSize(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// TestConfigErrors needs no kernel: a bad configuration fails before the
// socket opens (NetNS -1 would make any kernel access fail too).
func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Name: strings.Repeat("x", 25)}, `set name "xxxxxxxxxxxxxxxxxxxxxxxxx-net4-t" has 32 characters, ipset allows 31: shorten Name`},
		{Config{Name: "a/b"}, "only letters"},
		{Config{Name: "-x"}, "must not start"},
		{Config{MaxElem: -1}, "negative"},
		{Config{Allow: []netip.Prefix{{}}}, "invalid prefix"},
		{Config{Allow: []netip.Prefix{netip.MustParsePrefix("::ffff:0.0.0.0/96")}}, "/0"},
		{Config{Rules: true, Chain: "c c"}, "only letters"},
	} {
		c.cfg.NetNS = -1
		_, err := New(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
}

// FuzzParseReply feeds arbitrary bytes to everything that parses kernel
// replies: none may panic or read out of bounds.
func FuzzParseReply(f *testing.F) {
	c := &conn{nl: new(netlink.Conn)}
	c.beginMsg(cmdAdd, reqFlags)
	c.Str(attrSetName, "s")
	c.U32(attrLineNo, 7)
	c.EndMsg()
	errMsg := binary.NativeEndian.AppendUint32(nil, uint32(nlmsgHdrLen+4+len(c.Buf)))
	errMsg = binary.NativeEndian.AppendUint16(errMsg, unix.NLMSG_ERROR)
	errMsg = append(errMsg, make([]byte, 10)...)
	errMsg = binary.NativeEndian.AppendUint32(errMsg, uint32(0xffffffff-4103+1))
	errMsg = append(errMsg, c.Buf...)
	f.Add(errMsg)
	f.Add(c.Buf)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for m, err := range netlink.Messages(b) {
			if err != nil {
				break
			}
			if a, ok := netlink.ParseAck(m); ok {
				lineNo(a.Echo)
			}
			for _, v := range netlink.Attrs(m.Data()) {
				for range netlink.Attrs(v) {
				}
				netlink.String(v)
				netlink.BE32(v)
			}
		}
	})
}
