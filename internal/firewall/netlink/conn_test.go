package netlink

import (
	"errors"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall/fwtest"
	"golang.org/x/sys/unix"
)

// dialIn opens a Conn in a private network namespace.
func dialIn(t *testing.T) *Conn {
	t.Helper()
	ns := fwtest.NewNetns(t)
	c, err := Dial(Config{Name: "test", NetNS: int(ns.File.Fd()), RequireExtAck: true, RecvBuffer: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func getTable(c *Conn, name string) error {
	var w Builder
	seq := c.NextSeq()
	w.BeginMsg(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETTABLE, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq, unix.NFPROTO_INET, 0)
	w.Str(unix.NFTA_TABLE_NAME, name)
	w.EndMsg()
	return c.Query(w.Buf, seq, func(Message) error { return nil })
}

func TestQuery(t *testing.T) {
	t.Parallel()
	c := dialIn(t)
	var w Builder
	seq := c.NextSeq()
	w.BeginMsg(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq, unix.AF_UNSPEC, 0)
	w.EndMsg()
	gen := false
	err := c.Query(w.Buf, seq, func(m Message) error {
		for typ, v := range Attrs(m.Data()) {
			if typ == unix.NFTA_GEN_ID && len(v) == 4 {
				gen = true
			}
		}
		return nil
	})
	if err != nil || !gen {
		t.Fatalf("GETGEN: %v, generation found %v", err, gen)
	}
	// The kernel's error comes back as its errno.
	if err := getTable(c, "absent"); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("GETTABLE of an absent table: %v, want ENOENT", err)
	}
	// A late answer to an earlier request is skipped: send a request
	// whose answer nobody reads, then query.
	var late Builder
	late.BeginMsg(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN, unix.NLM_F_REQUEST|unix.NLM_F_ACK, c.NextSeq(), unix.AF_UNSPEC, 0)
	late.EndMsg()
	if err := c.Send(late.Buf); err != nil {
		t.Fatal(err)
	}
	if err := getTable(c, "absent"); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("GETTABLE after an unread answer: %v, want ENOENT", err)
	}
}

// TestTransact checks that a batch is one transaction: a failing message
// undoes the others, and its error names it.
func TestTransact(t *testing.T) {
	t.Parallel()
	c := dialIn(t)
	build := func(tables ...string) *Batch {
		b := NewBatch(0, nil)
		c.StartBatch(&b, unix.NFNL_SUBSYS_NFTABLES)
		for _, name := range tables {
			typ := uint16(unix.NFT_MSG_NEWTABLE)
			if name == "absent" {
				typ = unix.NFT_MSG_DELTABLE
			}
			b.Add(unix.NFNL_SUBSYS_NFTABLES<<8|typ, 0, unix.NFPROTO_INET, name)
			b.Str(unix.NFTA_TABLE_NAME, name)
			b.EndMsg()
		}
		return &b
	}
	b := build("a", "absent", "b")
	var explained []uint32
	err := c.Transact(b, func(m Message) error {
		a, _ := ParseAck(m)
		explained = append(explained, m.Seq)
		return unix.Errno(-a.Error)
	})
	if !errors.Is(err, unix.ENOENT) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Transact = %v, want ENOENT", err)
	}
	if len(explained) != 1 || explained[0] != b.Seq0()+2 {
		t.Fatalf("errors explained for %v, want the second message (%d)", explained, b.Seq0()+2)
	}
	if err := getTable(c, "a"); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("table a after a failed transaction: %v, want ENOENT", err)
	}

	if err := c.Transact(build("a", "b"), nil); err != nil {
		t.Fatal(err)
	}
	// Without explain, the error number alone.
	if err := c.Transact(build("absent"), nil); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("Transact without explain = %v, want ENOENT", err)
	}
	for _, name := range []string{"a", "b"} {
		if err := getTable(c, name); err != nil {
			t.Fatalf("table %s: %v", name, err)
		}
	}
	if err := c.Transact(build(), nil); err != nil {
		t.Fatalf("an empty batch: %v", err)
	}
}
