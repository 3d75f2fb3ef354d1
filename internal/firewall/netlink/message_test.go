package netlink

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestBatchMmap(t *testing.T) {
	b := NewBatch(4<<20, nil)
	if !b.Mapped() || cap(b.Buf) < 4<<20 {
		t.Fatalf("a 4 MiB batch is not mmap'ed")
	}
	if b.Release() != nil {
		t.Fatalf("an mmap'ed buffer offered for reuse")
	}
	small := make([]byte, 0, 1000)
	b = NewBatch(500, small)
	if b.Mapped() || &b.Buf[:1][0] != &small[:1][0] {
		t.Fatalf("a small batch does not reuse the buffer")
	}
	if got := b.Release(); cap(got) != 1000 {
		t.Fatalf("Release returned a buffer of %d bytes, want the small one back", cap(got))
	}
}

func TestMessagesIterator(t *testing.T) {
	var w Builder
	for i := range 3 {
		w.BeginMsg(unix.NLMSG_ERROR, 0, uint32(i), 0, 0)
		w.Str(1, "x") // odd length: padding
		w.EndMsg()
	}
	n := 0
	for m, err := range Messages(w.Buf) {
		if err != nil || m.Seq != uint32(n) || m.Type != unix.NLMSG_ERROR {
			t.Errorf("message %d: %+v, %v", n, m, err)
		}
		n++
	}
	if n != 3 {
		t.Errorf("%d messages", n)
	}
	// Truncated input stops cleanly.
	for range Messages(w.Buf[:10]) {
		t.Errorf("message from truncated input")
	}
	// A length that does not fit is an error.
	bad := append([]byte(nil), w.Buf...)
	ne.PutUint32(bad[28:], 200) // the second message's length (each is 28 bytes)
	n = 0
	for _, err := range Messages(bad) {
		if n == 1 && !errors.Is(err, ErrMalformed) {
			t.Errorf("second message: %v, want ErrMalformed", err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d results from a malformed datagram, want a message and an error", n)
	}
}

// TestBatchFraming pins the batch's framing: BEGIN and END carry the
// subsystem in res_id, messages are numbered on from BEGIN, only the last
// asks for an ack.
func TestBatchFraming(t *testing.T) {
	b := NewBatch(0, nil)
	b.Start(41, unix.NFNL_SUBSYS_NFTABLES)
	for range 2 {
		b.Add(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWTABLE, unix.NLM_F_CREATE, unix.NFPROTO_INET, "create table t")
		b.Str(unix.NFTA_TABLE_NAME, "t")
		b.EndMsg()
	}
	b.Finish()
	b.Finish() // idempotent
	type hdr struct {
		typ, flags uint16
		seq        uint32
		resID      uint16
	}
	var got []hdr
	for m, err := range Messages(b.Buf) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, hdr{m.Type, m.Flags, m.Seq, uint16(m.Body[2])<<8 | uint16(m.Body[3])})
	}
	want := []hdr{
		{unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, 41, unix.NFNL_SUBSYS_NFTABLES},
		{unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWTABLE, unix.NLM_F_REQUEST | unix.NLM_F_CREATE, 42, 0},
		{unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWTABLE, unix.NLM_F_REQUEST | unix.NLM_F_CREATE | unix.NLM_F_ACK, 43, 0},
		{unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, 44, unix.NFNL_SUBSYS_NFTABLES},
	}
	if len(got) != len(want) {
		t.Fatalf("messages %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if b.Seq0() != 41 || b.LastSeq() != 43 || b.EndSeq() != 44 || len(b.Msgs) != 2 {
		t.Errorf("sequence numbers %d %d %d", b.Seq0(), b.LastSeq(), b.EndSeq())
	}
}

// errorMsg builds an NLMSG_ERROR answering req, with the request echoed
// (capped: header only) and the extended-ack attributes.
func errorMsg(errno unix.Errno, req []byte, capped bool, tlvs func(*Builder)) Message {
	var w Builder
	w.Buf = ne.AppendUint32(w.Buf, uint32(-int32(errno)))
	if capped {
		w.Buf = append(w.Buf, req[:HeaderLen]...)
	} else {
		w.Buf = append(w.Buf, req...)
	}
	flags := uint16(0)
	if capped {
		flags |= unix.NLM_F_CAPPED
	}
	if tlvs != nil {
		flags |= unix.NLM_F_ACK_TLVS
		tlvs(&w)
	}
	return Message{Type: unix.NLMSG_ERROR, Flags: flags, Seq: ne.Uint32(req[8:]), Body: w.Buf}
}

func TestParseAck(t *testing.T) {
	var req Builder
	req.BeginMsg(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM, unix.NLM_F_REQUEST, 7, unix.NFPROTO_INET, 0)
	req.Str(unix.NFTA_SET_ELEM_LIST_TABLE, "dynfw")
	req.EndMsg()
	ext := func(w *Builder) {
		w.Str(unix.NLMSGERR_ATTR_MSG, "no such set")
		w.U32(unix.NLMSGERR_ATTR_OFFS, 24)
	}
	for _, c := range []struct {
		name   string
		m      Message
		errno  int32
		msg    string
		offset int
		echo   int
	}{
		{"ack", Message{Type: unix.NLMSG_ERROR, Body: append(make([]byte, 4), req.Buf[:HeaderLen]...)}, 0, "", -1, HeaderLen},
		{"capped with ext ack", errorMsg(unix.ENOENT, req.Buf, true, ext), -int32(unix.ENOENT), "no such set", 24, -1},
		{"full echo with ext ack", errorMsg(unix.EEXIST, req.Buf, false, ext), -int32(unix.EEXIST), "no such set", 24, -1},
		{"full echo without ext ack", errorMsg(unix.EBUSY, req.Buf, false, nil), -int32(unix.EBUSY), "", -1, len(req.Buf)},
		{"done", Message{Type: unix.NLMSG_DONE, Body: make([]byte, 4)}, 0, "", -1, 0},
		{"done without error number", Message{Type: unix.NLMSG_DONE}, 0, "", -1, 0},
	} {
		a, ok := ParseAck(c.m)
		if !ok || a.Error != c.errno || a.Msg != c.msg || a.Offset != c.offset || (c.echo >= 0 && len(a.Echo) != c.echo) {
			t.Errorf("%s: %+v %v", c.name, a, ok)
		}
	}
	// An echo whose length is not a multiple of 4 and ends the message:
	// the padding before the TLVs is missing, which must not make the
	// parser slice past the end.
	odd := make([]byte, 4+HeaderLen+1)
	ne.PutUint32(odd[4:], HeaderLen+1)
	if a, ok := ParseAck(Message{Type: unix.NLMSG_ERROR, Flags: unix.NLM_F_ACK_TLVS, Body: odd}); !ok || a.Offset != -1 {
		t.Errorf("odd echo: %+v %v", a, ok)
	}
	if _, ok := ParseAck(Message{Type: unix.NLMSG_ERROR, Body: []byte{1, 2}}); ok {
		t.Error("a short error message parsed")
	}
	if _, ok := ParseAck(Message{Type: unix.NFNL_SUBSYS_NFTABLES << 8}); ok {
		t.Error("a data message parsed as an ack")
	}
}

func TestBuilderAttributes(t *testing.T) {
	var w Builder
	w.U8(1, 7)
	w.U32(2, 0x01020304)
	w.BE32(3, 0x01020304)
	w.BE64(4, 5)
	w.Bytes(5, []byte{9, 9, 9})
	off := w.Nest(6)
	w.Str(1, "ab")
	w.EndNest()
	if off != 8+8+8+12+8 {
		t.Errorf("nest at %d", off)
	}
	want := []string{"\x07", string(ne.AppendUint32(nil, 0x01020304)), "\x01\x02\x03\x04", "\x00\x00\x00\x00\x00\x00\x00\x05", "\x09\x09\x09"}
	i := 0
	for typ, v := range Attrs(w.Buf) {
		switch {
		case i < len(want):
			if typ != uint16(i+1) || string(v) != want[i] {
				t.Errorf("attribute %d: type %d value %q", i, typ, v)
			}
		default:
			if typ != 6 {
				t.Errorf("nested attribute type %d", typ)
			}
			for ct, cv := range Attrs(v) {
				if ct != 1 || String(cv) != "ab" || len(cv) != 3 {
					t.Errorf("inner attribute %d %q", ct, cv)
				}
			}
		}
		i++
	}
	if i != 6 || len(w.Buf)%4 != 0 {
		t.Errorf("%d attributes in %d bytes", i, len(w.Buf))
	}
	if BE32([]byte{1, 2, 3}) != 0 || BE32([]byte{0, 0, 1, 0}) != 256 {
		t.Error("BE32")
	}
}

// FuzzMessages feeds arbitrary bytes to the parsers of kernel answers:
// none may panic or read out of bounds.
func FuzzMessages(f *testing.F) {
	var req Builder
	req.BeginMsg(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM, unix.NLM_F_REQUEST, 7, unix.NFPROTO_INET, 0)
	req.Str(unix.NFTA_SET_ELEM_LIST_TABLE, "dynfw")
	req.Nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	req.BE32(1, 2)
	req.EndNest()
	req.EndMsg()
	f.Add(req.Buf)
	for _, capped := range []bool{false, true} {
		m := errorMsg(unix.ENOENT, req.Buf, capped, func(w *Builder) {
			w.Str(unix.NLMSGERR_ATTR_MSG, "x")
			w.U32(unix.NLMSGERR_ATTR_OFFS, 28)
		})
		var w Builder
		w.Buf = ne.AppendUint32(w.Buf, uint32(HeaderLen+len(m.Body)))
		w.Buf = ne.AppendUint16(w.Buf, m.Type)
		w.Buf = ne.AppendUint16(w.Buf, m.Flags)
		w.Buf = append(w.Buf, make([]byte, 8)...)
		w.Buf = append(w.Buf, m.Body...)
		f.Add(w.Buf)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for m, err := range Messages(b) {
			if err != nil {
				break
			}
			ParseAck(m)
			for _, v := range Attrs(m.Data()) {
				for range Attrs(v) {
				}
				String(v)
				BE32(v)
			}
		}
	})
}
