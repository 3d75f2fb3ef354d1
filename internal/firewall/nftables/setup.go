package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/dynfw/sentinel/internal/firewall/netlink"
	"golang.org/x/sys/unix"
)

// chainDef is one of our base chains.
type chainDef struct {
	name string
	hook uint32 // NF_INET_LOCAL_IN or NF_INET_FORWARD
}

// kernelSet is a set definition as the kernel reports it.
type kernelSet struct {
	name                   string
	flags, keyType, keyLen uint32
}

// kernelChain is a chain definition as the kernel reports it.
type kernelChain struct {
	name      string
	base      bool
	hook      uint32
	prio      int32
	typ       string
	policy    uint32
	hasPolicy bool
}

// matches reports whether an existing set can serve as s. Flags that do not
// change what the set holds for us (timeout, dynamic) are tolerated, so
// that a set the system firewall declared a bit differently still works in
// set-only mode.
func (k kernelSet) matches(s *setDef) bool {
	keyType, keyLen := uint32(nftTypeIPv4Addr), uint32(4)
	if s.f.v6 {
		keyType, keyLen = nftTypeIPv6Addr, 16
	}
	const tolerated = unix.NFT_SET_TIMEOUT | unix.NFT_SET_EVAL
	want := uint32(0)
	if s.interval {
		want = unix.NFT_SET_INTERVAL
	}
	return k.keyType == keyType && k.keyLen == keyLen && k.flags&^tolerated == want
}

func (b *Backend) chainMatches(k kernelChain, c chainDef) bool {
	return k.base && k.hook == c.hook && k.prio == int32(b.cfg.Priority) && k.typ == "filter" &&
		(!k.hasPolicy || k.policy == nfAccept)
}

// inspect reads whether our table exists and its sets and chains.
func (b *Backend) inspect() (exists bool, sets map[string]kernelSet, chains map[string]kernelChain, err error) {
	err = consistent(func() (err error) {
		exists, sets, chains, err = b.inspect1()
		return err
	})
	return exists, sets, chains, err
}

func (b *Backend) inspect1() (exists bool, sets map[string]kernelSet, chains map[string]kernelChain, err error) {
	t := b.cfg.Table
	err = b.c.query(unix.NFT_MSG_GETTABLE, false, b.nfproto, func(w *netlink.Builder) {
		w.Str(unix.NFTA_TABLE_NAME, t)
	}, func(netlink.Message) error { return nil })
	if errors.Is(err, unix.ENOENT) {
		return false, nil, nil, nil
	}
	if err != nil {
		return false, nil, nil, fmt.Errorf("nftables: looking up table %s %s: %w", b.cfg.Family, t, err)
	}
	sets = map[string]kernelSet{}
	err = b.c.query(unix.NFT_MSG_GETSET, true, b.nfproto, func(w *netlink.Builder) {
		w.Str(unix.NFTA_SET_TABLE, t)
	}, func(m netlink.Message) error {
		var k kernelSet
		table := ""
		for typ, v := range netlink.Attrs(m.Body) {
			switch typ {
			case unix.NFTA_SET_TABLE:
				table = netlink.String(v)
			case unix.NFTA_SET_NAME:
				k.name = netlink.String(v)
			case unix.NFTA_SET_FLAGS:
				k.flags = netlink.BE32(v)
			case unix.NFTA_SET_KEY_TYPE:
				k.keyType = netlink.BE32(v)
			case unix.NFTA_SET_KEY_LEN:
				k.keyLen = netlink.BE32(v)
			}
		}
		if table == t {
			sets[k.name] = k
		}
		return nil
	})
	if err != nil {
		return false, nil, nil, fmt.Errorf("nftables: listing the sets of table %s %s: %w", b.cfg.Family, t, err)
	}
	if b.cfg.SetOnly {
		return true, sets, nil, nil // not our chains: never touched
	}
	chains = map[string]kernelChain{}
	err = b.c.query(unix.NFT_MSG_GETCHAIN, true, b.nfproto, func(w *netlink.Builder) {
		w.Str(unix.NFTA_CHAIN_TABLE, t)
	}, func(m netlink.Message) error {
		var k kernelChain
		table := ""
		for typ, v := range netlink.Attrs(m.Body) {
			switch typ {
			case unix.NFTA_CHAIN_TABLE:
				table = netlink.String(v)
			case unix.NFTA_CHAIN_NAME:
				k.name = netlink.String(v)
			case unix.NFTA_CHAIN_HOOK:
				k.base = true
				for ht, hv := range netlink.Attrs(v) {
					switch ht {
					case unix.NFTA_HOOK_HOOKNUM:
						k.hook = netlink.BE32(hv)
					case unix.NFTA_HOOK_PRIORITY:
						k.prio = int32(netlink.BE32(hv))
					}
				}
			case unix.NFTA_CHAIN_TYPE:
				k.typ = netlink.String(v)
			case unix.NFTA_CHAIN_POLICY:
				k.policy, k.hasPolicy = netlink.BE32(v), true
			}
		}
		if table == t {
			chains[k.name] = k
		}
		return nil
	})
	if err != nil {
		return false, nil, nil, fmt.Errorf("nftables: listing the chains of table %s %s: %w", b.cfg.Family, t, err)
	}
	return true, sets, chains, nil
}

// setup creates or adapts the table, sets, chains and rules in one
// transaction, and fills the allow sets.
func (b *Backend) setup() error {
	exists, sets, chains, err := b.inspect()
	if err != nil {
		return err
	}
	t, fam := b.cfg.Table, b.nfproto
	if b.cfg.SetOnly && !exists {
		return fmt.Errorf("nftables: set-only mode needs the system firewall's table %s %s, which does not exist: %w", b.cfg.Family, t, unix.ENOENT)
	}
	// Counters of rules we re-create carry on from an earlier run.
	var counts map[string]ruleInfo
	if len(chains) > 0 {
		if counts, err = b.ruleCounters(b.c); err != nil {
			return err
		}
	}
	bt := b.c.newBatch(4096, b.small)
	defer b.recycle(bt)

	kept := map[*setDef]bool{}
	wanted := map[string]*setDef{}
	for _, s := range b.sets() {
		wanted[s.name] = s
		if k, ok := sets[s.name]; ok {
			if k.matches(s) {
				kept[s] = true
			} else if b.cfg.SetOnly {
				return fmt.Errorf("nftables: set %s exists with another definition (want type %s%s): %w",
					s.desc, map[bool]string{false: "ipv4_addr", true: "ipv6_addr"}[s.f.v6],
					map[bool]string{false: "", true: "; flags interval"}[s.interval], unix.EEXIST)
			}
		}
	}

	if !b.cfg.SetOnly {
		bt.begin(unix.NFT_MSG_NEWTABLE, unix.NLM_F_CREATE, fam, "create table "+b.cfg.Family+" "+t)
		bt.Str(unix.NFTA_TABLE_NAME, t)
		bt.BE32(unix.NFTA_TABLE_FLAGS, 0)
		bt.EndMsg()
		// Empty every chain of our table first: rules reference sets,
		// and a set in use cannot be deleted. Our chains then get their
		// rules again below, in the same transaction, so packets never
		// see a chain without them.
		keptChain := map[string]bool{}
		for _, name := range slices.Sorted(maps.Keys(chains)) {
			k := chains[name]
			b.flushChain(bt, name)
			want := false
			for _, c := range b.chains {
				if c.name == name && b.chainMatches(k, c) {
					want = true
				}
			}
			if want {
				keptChain[name] = true
				continue
			}
			bt.begin(unix.NFT_MSG_DELCHAIN, 0, fam, "delete chain "+b.cfg.Family+" "+t+" "+name)
			bt.Str(unix.NFTA_CHAIN_TABLE, t)
			bt.Str(unix.NFTA_CHAIN_NAME, name)
			bt.EndMsg()
		}
		for _, name := range slices.Sorted(maps.Keys(sets)) {
			if s := wanted[name]; s != nil && kept[s] {
				continue
			}
			b.delSet(bt, name)
		}
		b.addSets(bt, kept)
		for _, c := range b.chains {
			if !keptChain[c.name] {
				b.addChain(bt, c)
			}
		}
		for _, c := range b.chains {
			b.addRules(bt, c, counts)
		}
	} else {
		b.addSets(bt, kept)
		for _, s := range b.sets() {
			if !kept[s] && !slices.Contains(b.created, s) {
				b.created = append(b.created, s)
			}
		}
	}
	// The allow sets are refilled from the configuration every time.
	for _, s := range []*setDef{b.allow4, b.allow6} {
		if s == nil {
			continue
		}
		if kept[s] {
			bt.flushSet(fam, t, s)
		}
		sp := mergeSpans(nil, spansOf(nil, b.cfg.Allow, s.f), s.f)
		if len(sp) > 0 {
			bt.openList(unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE, fam, t, s)
			bt.appendSpans(sp, s.f)
		}
	}
	err = b.c.transact(bt)
	b.endBatch(err == nil)
	if err != nil {
		return fmt.Errorf("nftables: setting up table %s %s: %w", b.cfg.Family, t, err)
	}
	reused := 0
	for _, s := range []*setDef{b.addr4, b.addr6, b.net4, b.net6} {
		if s != nil && kept[s] {
			reused++
		}
	}
	// Fresh sets are empty, which is what our state says; reused ones
	// hold a list we do not know until the first Replace.
	b.known = reused == 0
	mode := "own table"
	if b.cfg.SetOnly {
		mode = "set-only"
	}
	b.log.Info("nftables: ready", "table", b.cfg.Family+" "+t, "mode", mode, "table_existed", exists,
		"sets_reused", reused, "forward", b.cfg.Forward, "priority", b.cfg.Priority, "allow", len(b.cfg.Allow))
	return nil
}

func (b *Backend) addSets(bt *batch, kept map[*setDef]bool) {
	for _, s := range b.sets() {
		if kept[s] {
			continue
		}
		size := 0
		if !s.interval && !b.cfg.SetOnly {
			size = capacityFor(0)
		}
		b.newSet(bt, s, size)
	}
}

// capacityFor is the size of a hash set created for n elements.
//
// A hash set created without a size is the kernel's resizable rhash,
// which starts with 4 buckets and doubles while a big batch fills it:
// inserts that meet a resize in progress take a slow path, and a million
// addresses take 2.7 s instead of 0.6 s. A size makes the kernel choose
// its fixed-size hash with pow2(size*4/3) buckets, allocated up front (8
// bytes each: 1 MB for the minimum, 16 MB for a million addresses, what
// the rhash would grow to anyway). The size is also a hard limit, so
// there is headroom for deltas; Replace sizes the sets anew each time.
func capacityFor(n int) int {
	return max(minCapacity, n+n/2)
}

// minCapacity keeps headroom for a typical list (15k addresses) to grow
// by deltas between two Replaces.
const minCapacity = 65536

// newSet appends the creation of set s; size 0 means no size (the kernel
// picks a resizable hash, or a tree for intervals). The set gets a new ID
// for the rules of the same batch to find it.
func (b *Backend) newSet(bt *batch, s *setDef, size int) {
	keyType, keyLen := uint32(nftTypeIPv4Addr), uint32(4)
	if s.f.v6 {
		keyType, keyLen = nftTypeIPv6Addr, 16
	}
	flags := uint32(0)
	if s.interval {
		flags = unix.NFT_SET_INTERVAL
	}
	b.nextID++
	s.id = b.nextID
	bt.begin(unix.NFT_MSG_NEWSET, unix.NLM_F_CREATE, b.nfproto, "create set "+s.desc)
	bt.Str(unix.NFTA_SET_TABLE, b.cfg.Table)
	bt.Str(unix.NFTA_SET_NAME, s.name)
	bt.BE32(unix.NFTA_SET_FLAGS, flags)
	bt.BE32(unix.NFTA_SET_KEY_TYPE, keyType)
	bt.BE32(unix.NFTA_SET_KEY_LEN, keyLen)
	bt.BE32(unix.NFTA_SET_ID, s.id)
	if size > 0 {
		bt.Nest(unix.NFTA_SET_DESC)
		bt.BE32(unix.NFTA_SET_DESC_SIZE, uint32(size))
		bt.EndNest()
	}
	// nft records the key byte order in userdata; `nft list` relies on
	// it for some types, so we write it as nft does.
	var ud [6]byte
	ud[0], ud[1] = udataSetKeyByteOrder, 4
	ne.PutUint32(ud[2:], byteOrderBigEndian)
	bt.Bytes(unix.NFTA_SET_USERDATA, ud[:])
	bt.EndMsg()
	s.newCap = size
}

func (b *Backend) delSet(bt *batch, name string) {
	bt.begin(unix.NFT_MSG_DELSET, 0, b.nfproto, "delete set "+b.cfg.Family+" "+b.cfg.Table+" "+name)
	bt.Str(unix.NFTA_SET_TABLE, b.cfg.Table)
	bt.Str(unix.NFTA_SET_NAME, name)
	bt.EndMsg()
}

// flushChain appends the deletion of every rule of a chain.
func (b *Backend) flushChain(bt *batch, name string) {
	bt.begin(unix.NFT_MSG_DELRULE, 0, b.nfproto, "flush chain "+b.cfg.Family+" "+b.cfg.Table+" "+name)
	bt.Str(unix.NFTA_RULE_TABLE, b.cfg.Table)
	bt.Str(unix.NFTA_RULE_CHAIN, name)
	bt.EndMsg()
}

func (b *Backend) addChain(bt *batch, c chainDef) {
	bt.begin(unix.NFT_MSG_NEWCHAIN, unix.NLM_F_CREATE, b.nfproto, "create chain "+b.cfg.Family+" "+b.cfg.Table+" "+c.name)
	bt.Str(unix.NFTA_CHAIN_TABLE, b.cfg.Table)
	bt.Str(unix.NFTA_CHAIN_NAME, c.name)
	bt.Nest(unix.NFTA_CHAIN_HOOK)
	bt.BE32(unix.NFTA_HOOK_HOOKNUM, c.hook)
	bt.BE32(unix.NFTA_HOOK_PRIORITY, uint32(int32(b.cfg.Priority)))
	bt.EndNest()
	bt.BE32(unix.NFTA_CHAIN_POLICY, nfAccept)
	bt.Str(unix.NFTA_CHAIN_TYPE, "filter")
	bt.EndMsg()
}

// addRules appends the chain's rules: allow-list accepts first, then the
// counted drops, whose counters start from the values in counts (keyed by
// ruleKey) so that re-creating the rules does not reset them.
func (b *Backend) addRules(bt *batch, c chainDef, counts map[string]ruleInfo) {
	for _, s := range []*setDef{b.allow4, b.allow6} {
		if s != nil {
			b.addRule(bt, c, s, nfAccept, nil)
		}
	}
	for _, s := range []*setDef{b.addr4, b.net4, b.addr6, b.net6} {
		if s != nil {
			r := counts[ruleKey(c.name, s.name)]
			b.addRule(bt, c, s, nfDrop, &r)
		}
	}
}

func ruleKey(chain, set string) string { return chain + "\x00" + set }

// ruleCounters reads the counters of our rules, keyed by ruleKey.
func (b *Backend) ruleCounters(c *conn) (out map[string]ruleInfo, err error) {
	err = consistent(func() error {
		out = map[string]ruleInfo{}
		return b.ruleCounters1(c, out)
	})
	return out, err
}

func (b *Backend) ruleCounters1(c *conn, out map[string]ruleInfo) error {
	for _, ch := range b.chains {
		err := c.query(unix.NFT_MSG_GETRULE, true, b.nfproto, func(w *netlink.Builder) {
			w.Str(unix.NFTA_RULE_TABLE, b.cfg.Table)
			w.Str(unix.NFTA_RULE_CHAIN, ch.name)
		}, func(m netlink.Message) error {
			r := parseRule(m.Body)
			if r.table == b.cfg.Table && r.chain == ch.name && r.counter {
				k := ruleKey(r.chain, r.set)
				o := out[k]
				o.packets += r.packets
				o.bytes += r.bytes
				out[k] = o
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("nftables: reading the rules of chain %s %s %s: %w", b.cfg.Family, b.cfg.Table, ch.name, err)
		}
	}
	return nil
}

// addRule appends "[meta nfproto X] ip(6) saddr @set [counter] verdict";
// the rule counts if counter is not nil, starting from its values.
func (b *Backend) addRule(bt *batch, c chainDef, s *setDef, verdict uint32, counter *ruleInfo) {
	bt.begin(unix.NFT_MSG_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_APPEND, b.nfproto,
		"add rule to chain "+b.cfg.Family+" "+b.cfg.Table+" "+c.name+" using set "+s.name)
	bt.Str(unix.NFTA_RULE_TABLE, b.cfg.Table)
	bt.Str(unix.NFTA_RULE_CHAIN, c.name)
	bt.Nest(unix.NFTA_RULE_EXPRESSIONS)
	proto, off, l := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4) // IPv4 saddr
	if s.f.v6 {
		proto, off, l = unix.NFPROTO_IPV6, 8, 16 // IPv6 saddr
	}
	if b.nfproto == unix.NFPROTO_INET {
		// In an inet chain the network header may be either family.
		expr(bt, "meta", func() {
			bt.BE32(unix.NFTA_META_DREG, nftReg1)
			bt.BE32(unix.NFTA_META_KEY, nftMetaNFProto)
		})
		expr(bt, "cmp", func() {
			bt.BE32(unix.NFTA_CMP_SREG, nftReg1)
			bt.BE32(unix.NFTA_CMP_OP, nftCmpEq)
			bt.Nest(unix.NFTA_CMP_DATA)
			bt.Bytes(unix.NFTA_DATA_VALUE, []byte{proto})
			bt.EndNest()
		})
	}
	expr(bt, "payload", func() {
		bt.BE32(unix.NFTA_PAYLOAD_DREG, nftReg1)
		bt.BE32(unix.NFTA_PAYLOAD_BASE, nftPayloadNetworkHdr)
		bt.BE32(unix.NFTA_PAYLOAD_OFFSET, off)
		bt.BE32(unix.NFTA_PAYLOAD_LEN, l)
	})
	expr(bt, "lookup", func() {
		bt.Str(unix.NFTA_LOOKUP_SET, s.name)
		bt.BE32(unix.NFTA_LOOKUP_SREG, nftReg1)
		if s.id != 0 {
			// The kernel finds the set by name first; the ID of a set
			// created in the same batch is what nft sends too.
			bt.BE32(unix.NFTA_LOOKUP_SET_ID, s.id)
		}
	})
	if counter != nil {
		expr(bt, "counter", func() {
			bt.BE64(unix.NFTA_COUNTER_BYTES, counter.bytes)
			bt.BE64(unix.NFTA_COUNTER_PACKETS, counter.packets)
		})
	}
	expr(bt, "immediate", func() {
		bt.BE32(unix.NFTA_IMMEDIATE_DREG, nftRegVerdict)
		bt.Nest(unix.NFTA_IMMEDIATE_DATA)
		bt.Nest(unix.NFTA_DATA_VERDICT)
		bt.BE32(unix.NFTA_VERDICT_CODE, verdict)
		bt.EndNest()
		bt.EndNest()
	})
	bt.EndNest()
	bt.EndMsg()
}

func expr(w *batch, name string, data func()) {
	w.Nest(unix.NFTA_LIST_ELEM)
	w.Str(unix.NFTA_EXPR_NAME, name)
	w.Nest(unix.NFTA_EXPR_DATA)
	data()
	w.EndNest()
	w.EndNest()
}

// ruleInfo is what Counters needs of a dumped rule.
type ruleInfo struct {
	table, chain   string
	set            string // the set its lookup uses
	counter        bool
	packets, bytes uint64
}

func parseRule(body []byte) ruleInfo {
	var r ruleInfo
	for t, v := range netlink.Attrs(body) {
		switch t {
		case unix.NFTA_RULE_TABLE:
			r.table = netlink.String(v)
		case unix.NFTA_RULE_CHAIN:
			r.chain = netlink.String(v)
		case unix.NFTA_RULE_EXPRESSIONS:
			for _, e := range netlink.Attrs(v) {
				var name string
				var data []byte
				for et, ev := range netlink.Attrs(e) {
					switch et {
					case unix.NFTA_EXPR_NAME:
						name = netlink.String(ev)
					case unix.NFTA_EXPR_DATA:
						data = ev
					}
				}
				for dt, dv := range netlink.Attrs(data) {
					switch {
					case name == "lookup" && dt == unix.NFTA_LOOKUP_SET:
						r.set = netlink.String(dv)
					case name == "counter" && dt == unix.NFTA_COUNTER_PACKETS && len(dv) == 8:
						r.counter, r.packets = true, binary.BigEndian.Uint64(dv)
					case name == "counter" && dt == unix.NFTA_COUNTER_BYTES && len(dv) == 8:
						r.counter, r.bytes = true, binary.BigEndian.Uint64(dv)
					}
				}
			}
		}
	}
	return r
}

// teardown removes what the backend created (Close without keep).
func (b *Backend) teardown() error {
	t, fam := b.cfg.Table, b.nfproto
	if !b.cfg.SetOnly {
		bt := b.c.newBatch(256, b.small)
		defer b.recycle(bt)
		bt.begin(unix.NFT_MSG_DELTABLE, 0, fam, "delete table "+b.cfg.Family+" "+t)
		bt.Str(unix.NFTA_TABLE_NAME, t)
		bt.EndMsg()
		err := b.c.transact(bt)
		if errors.Is(err, unix.ENOENT) {
			b.log.Warn("nftables: our table was already gone", "table", b.cfg.Family+" "+t)
			return nil
		}
		if err == nil {
			b.log.Info("nftables: table deleted", "table", b.cfg.Family+" "+t)
		}
		return err
	}
	// Set-only: delete the sets we created, empty the others. The kernel
	// refuses to delete a set that a rule of the system firewall uses
	// (EBUSY); such a set is emptied instead. One transaction per set, so
	// that one set in use does not keep the others.
	deleted, emptied := 0, 0
	var errs []error
	for _, s := range b.sets() {
		if slices.Contains(b.created, s) {
			bt := b.c.newBatch(256, b.small)
			b.delSet(bt, s.name)
			err := b.c.transact(bt)
			b.recycle(bt)
			if err == nil {
				deleted++
				continue
			}
			if !errors.Is(err, unix.EBUSY) {
				errs = append(errs, err)
				continue
			}
			b.log.Info("nftables: set in use by the system firewall's rules; emptying it instead of deleting it", "set", s.desc)
		}
		bt := b.c.newBatch(256, b.small)
		bt.flushSet(fam, t, s)
		err := b.c.transact(bt)
		b.recycle(bt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		emptied++
	}
	b.log.Info("nftables: sets removed", "table", b.cfg.Family+" "+t, "deleted", deleted, "emptied", emptied)
	return errors.Join(errs...)
}
