// Package nftables is the nftables backend of dynfw-client: it keeps the
// blocked addresses in kernel nf_tables sets and changes them through
// netlink, each change one atomic kernel transaction. No nft binary is
// needed at run time.
//
// Data enters as firewall.Elements: Replace with the full list after start
// or a resynchronisation, Apply with the additions and deletions of each
// delta. It leaves as netlink batches: single addresses go into hash sets
// as they are; prefixes, which may overlap or touch, are merged in memory
// into disjoint intervals and only the intervals that changed are sent.
// Nothing is read back from the sets (listing a million elements takes a
// minute); the only things read are the table, set and chain definitions
// at start and the rules' drop counters (Counters), for metrics.
//
// # Own table (the default)
//
// The backend owns one table and everything in it (names with the default
// empty SetPrefix):
//
//	table inet dynfw {
//		set addr4  { type ipv4_addr; size 65536; }      # single IPv4 addresses (hash, sized for the list)
//		set addr6  { type ipv6_addr; size 65536; }      # single IPv6 addresses (hash, sized for the list)
//		set net4   { type ipv4_addr; flags interval; }  # merged IPv4 prefixes
//		set net6   { type ipv6_addr; flags interval; }  # merged IPv6 prefixes (also /64 expansions)
//		set allow4 { type ipv4_addr; flags interval; }  # Config.Allow, IPv4
//		set allow6 { type ipv6_addr; flags interval; }  # Config.Allow, IPv6
//		chain input {
//			type filter hook input priority -5; policy accept;
//			ip saddr @allow4 accept
//			ip6 saddr @allow6 accept
//			ip saddr @addr4 counter drop
//			ip saddr @net4 counter drop
//			ip6 saddr @addr6 counter drop
//			ip6 saddr @net6 counter drop
//		}
//		chain forward { type filter hook forward priority -5; policy accept; ... the same rules }  # only with Config.Forward
//	}
//
// An ip or ip6 table holds only the sets and rules of its family.
//
// The allow-list is checked first: in our base chain, a packet from an
// allow-listed source is accepted by this chain, so it skips our drop
// rules. Like any accept it ends only this chain: other chains at the same
// hook (the system firewall's) still see the packet and may drop it. The
// allow-list never makes us block anything.
//
// New reuses a table left behind by an earlier run (Close with keep): it
// rewrites the rules and the allow sets in one transaction and keeps the
// blocked sets and their contents, so the last good list stays enforced
// until the first Replace swaps in the new one. Sets or chains whose
// definition differs from the above are replaced in the same transaction;
// anything else in the table is removed.
//
// # Set-only mode
//
// With Config.SetOnly the backend only fills sets in a table that the
// system firewall owns (OpenWrt fw4's inet fw4, firewalld's tables): the
// six sets, named SetPrefix+"addr4" and so on, are created there if
// missing (an existing set must have the definition above), and the
// system firewall's own rules are expected to use them. The backend never
// creates chains or rules there and never deletes that table. Close
// without keep deletes the sets New created, except those the system
// firewall's rules use, which it empties like the sets that were there
// before.
//
// # Transactions
//
// Every change is one nf_tables transaction (one netlink batch): packets
// see the sets before it or after it, never in between.
//
// Replace, in our own table, deletes the four blocking sets and creates
// them again with the rules that use them and every element; the rules'
// counters carry on from their old values. Deleting a full set costs the
// transaction almost nothing (the kernel frees its elements afterwards),
// and a new hash set can be created with a size: the kernel then uses its
// fixed-size hash instead of the resizable one, which, filled by one big
// batch, keeps resizing and takes four times as long. The size is a limit
// too, so it leaves room for deltas (half the list, at least 65536 in all);
// an Apply that would pass it fails with ENFILE before anything is sent,
// and the caller's next Replace sizes the sets for the longer list. In set-only mode the sets
// belong to the system firewall's rules, so Replace flushes them and adds
// every element instead, and sets it creates have no size.
//
// Apply sends all deletions, then all additions, with NLM_F_EXCL, so that
// an element added twice is an error rather than silently accepted.
//
// A batch is encoded straight into one buffer (16 bytes per IPv4
// address, at most 32000 bytes of elements per message) and sent with one
// sendmsg; the buffer of a big batch is mmap'ed and unmapped right after,
// so that its memory returns to the system at once. Errors the kernel
// reports are mapped back to the message and, through the kernel's
// extended acknowledgement, to the element that caused them (OpError).
package nftables

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/firewall/netlink"
	"golang.org/x/sys/unix"
)

// Config says where the backend keeps its sets. The zero value is a
// working configuration: own table inet dynfw, input hook, priority -5.
type Config struct {
	// Table is the table's name: by default "dynfw", or "fw4" in
	// set-only mode.
	Table string
	// Family is the table's family: "inet" (the default), "ip" or
	// "ip6". In set-only mode it is the family of the existing table.
	Family string
	// SetOnly fills sets in an existing table owned by the system
	// firewall, without any chain or rule of ours.
	SetOnly bool
	// SetPrefix is prepended to the set names (addr4, addr6, net4,
	// net6, allow4, allow6). It defaults to "dynfw_" in set-only mode,
	// where the sets live among the system firewall's, and to nothing in
	// our own table.
	SetPrefix string
	// Forward also drops in a chain on the forward hook, for routers.
	// It needs our own table.
	Forward bool
	// Priority of our base chains. 0 means the default, -5 (Turris'
	// dynfw_block): just before the usual filter chains at 0. Priority 0
	// itself is not offered: chains of equal priority run in no defined
	// order, so choose -1 or 1.
	Priority int
	// Allow are prefixes that our chains never block (see the package
	// documentation for what that means exactly).
	Allow []netip.Prefix
	// NetNS is an open file descriptor of the network namespace to work
	// in, for tests; 0 means the current one. It is used only by New,
	// which opens the netlink sockets there.
	NetNS int
	// Logger receives one line per change; nil discards.
	Logger *slog.Logger
}

// DefaultPriority is the priority of our base chains unless configured.
const DefaultPriority = -5

var (
	// ErrNeedReplace is returned by Apply when the kernel's sets may hold
	// something other than what the backend believes: before the first
	// Replace when New found existing sets, or after a transaction whose
	// outcome is unknown. A Replace sets things right.
	ErrNeedReplace = errors.New("nftables: set contents unknown, Replace needed")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("nftables: backend closed")
)

// Counter is what the drop rules of one chain counted for one family.
type Counter struct {
	// Chain is our chain's name: "input" or "forward".
	Chain string
	// Family is "ipv4" or "ipv6".
	Family string
	// Packets and Bytes dropped since our table was created: Replace
	// and a restart that reuses the table re-create the rules but carry
	// their counters over (a packet counted in that instant may be lost).
	Packets, Bytes uint64
}

// setDef is one of our sets.
type setDef struct {
	name     string  // in the kernel, with prefix
	desc     string  // "inet dynfw addr4", for messages
	addDesc  string  // "add elements to set inet dynfw addr4"
	delDesc  string  // "delete elements from set inet dynfw addr4"
	f        afamily // family of its keys
	interval bool
	id       uint32 // NFTA_SET_ID if the set is created in the batch being built, else 0
	newCap   int    // the size it is created with in that batch
	cap      int    // its size in the kernel: a limit on elements; 0 if none or unknown
	count    int    // elements it holds (hash sets), while Backend.known
	newCount int    // count after the batch being built
}

// Backend is a firewall.Backend on nf_tables. Its methods may be called
// from several goroutines; they are serialised, except that Counters runs
// on a socket of its own so that a metrics scrape never waits for a big
// Replace.
type Backend struct {
	cfg     Config
	nfproto uint8
	log     *slog.Logger

	addr4, addr6, net4, net6, allow4, allow6 *setDef // nil if the table's family cannot hold it
	chains                                   []chainDef

	mu      sync.Mutex
	c       *conn
	nextID  uint32 // last NFTA_SET_ID used
	small   []byte // batch buffer kept between small batches
	known   bool   // the kernel's blocking sets hold exactly what we believe
	nets4   netState
	nets6   netState
	created []*setDef // set-only mode: sets that New created

	closed atomic.Bool // set by Close; read without mu by Counters

	cmu sync.Mutex
	cc  *conn // for Counters
}

var _ firewall.Backend = (*Backend)(nil)

// New connects to nf_tables and creates what the configuration needs,
// reusing what an earlier run left behind (see the package
// documentation). It does not change the blocking sets' contents: that is
// Replace's job.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	b := &Backend{cfg: cfg}
	if err := b.normalise(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := dial(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	b.c = c
	if err := b.setup(); err != nil {
		c.close()
		return nil, err
	}
	if len(b.chains) > 0 {
		// Counters reads on a socket of its own, opened now, while the
		// namespace descriptor is certainly still open.
		if b.cc, err = dial(cfg.NetNS); err != nil {
			c.close()
			return nil, err
		}
	}
	return b, nil
}

func (b *Backend) normalise() error {
	cfg := &b.cfg
	if cfg.Table == "" {
		cfg.Table = "dynfw"
		if cfg.SetOnly {
			cfg.Table = "fw4"
		}
	}
	if cfg.Family == "" {
		cfg.Family = "inet"
	}
	if cfg.SetOnly && cfg.SetPrefix == "" {
		cfg.SetPrefix = "dynfw_"
	}
	if cfg.Priority == 0 {
		cfg.Priority = DefaultPriority
	}
	if int(int32(cfg.Priority)) != cfg.Priority {
		return fmt.Errorf("nftables: priority %d out of range", cfg.Priority)
	}
	if cfg.SetOnly && cfg.Forward {
		return errors.New("nftables: Forward needs our own table; in set-only mode the system firewall's rules decide where the sets apply")
	}
	b.log = cfg.Logger
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	var v4, v6 bool
	switch cfg.Family {
	case "inet":
		b.nfproto, v4, v6 = unix.NFPROTO_INET, true, true
	case "ip":
		b.nfproto, v4 = unix.NFPROTO_IPV4, true
	case "ip6":
		b.nfproto, v6 = unix.NFPROTO_IPV6, true
	default:
		return fmt.Errorf("nftables: family %q: want inet, ip or ip6", cfg.Family)
	}
	if len(cfg.Table) >= 256 || len(cfg.SetPrefix)+6 >= 256 {
		return errors.New("nftables: table or set name longer than 255 bytes")
	}
	for _, p := range cfg.Allow {
		if !p.IsValid() {
			return fmt.Errorf("nftables: invalid allow-list prefix %v", p)
		}
	}
	def := func(name string, f afamily, interval bool) *setDef {
		return newSetDef(cfg.Family, cfg.Table, cfg.SetPrefix+name, f, interval)
	}
	if v4 {
		b.addr4 = def("addr4", fam4, false)
		b.net4 = def("net4", fam4, true)
		b.allow4 = def("allow4", fam4, true)
	}
	if v6 {
		b.addr6 = def("addr6", fam6, false)
		b.net6 = def("net6", fam6, true)
		b.allow6 = def("allow6", fam6, true)
	}
	b.nets4.f, b.nets6.f = fam4, fam6
	if !cfg.SetOnly {
		b.chains = []chainDef{{name: "input", hook: nfInetLocalIn}}
		if cfg.Forward {
			b.chains = append(b.chains, chainDef{name: "forward", hook: nfInetForward})
		}
	}
	return nil
}

func newSetDef(family, table, name string, f afamily, interval bool) *setDef {
	d := family + " " + table + " " + name
	return &setDef{name: name, desc: d, addDesc: "add elements to set " + d, delDesc: "delete elements from set " + d, f: f, interval: interval}
}

// sets returns our sets in a fixed order: blocking sets first.
func (b *Backend) sets() []*setDef {
	var out []*setDef
	for _, s := range []*setDef{b.addr4, b.net4, b.addr6, b.net6, b.allow4, b.allow6} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// endBatch records the outcome of a batch for the sets it created: their
// sizes and counts become current if it was applied.
func (b *Backend) endBatch(applied bool) {
	for _, s := range b.sets() {
		if applied && s.id != 0 {
			s.cap = s.newCap
		}
		if applied {
			s.count = s.newCount
		}
		s.newCount = s.count
		s.id = 0
	}
}

// blocking returns the four blocking sets that exist for our family.
func (b *Backend) blocking() []*setDef {
	var out []*setDef
	for _, s := range []*setDef{b.addr4, b.net4, b.addr6, b.net6} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Name is "nftables".
func (b *Backend) Name() string { return "nftables" }

// Replace makes the blocking sets hold exactly e, in one transaction: in
// our own table it deletes the blocking sets and creates them anew (the
// hash sets sized for e) together with the rules that use them; in
// set-only mode it flushes them. Then it adds every element. Elements of a
// family the table cannot hold (IPv6 in an ip table) are skipped with a
// warning. Duplicates in e are harmless.
//
// If the table or the sets have disappeared (deleted by hand, or by a
// reload of the system firewall in set-only mode), Replace sets them up
// again and retries once.
func (b *Backend) Replace(ctx context.Context, e *firewall.Elements) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if e == nil {
		e = &firewall.Elements{}
	}
	err := b.replace(e)
	if errors.Is(err, unix.ENOENT) {
		// Our table or sets are gone: someone deleted them, or the
		// system firewall reloaded (OpenWrt's fw4 re-creates its table
		// from its configuration, without our sets). Set them up again
		// and retry once: Replace is how the client recovers.
		b.log.Warn("nftables: table or sets missing, setting them up again", "err", err)
		if serr := b.setup(); serr != nil {
			return errors.Join(err, serr)
		}
		err = b.replace(e)
	}
	return err
}

func (b *Backend) replace(e *firewall.Elements) error {
	begin := time.Now()
	var n4, n6, m4, m6 []span
	if b.net4 != nil {
		n4 = spansOf(nil, e.Nets, fam4)
		m4 = mergeSpans(nil, n4, fam4)
	}
	if b.net6 != nil {
		n6 = spansOf(nil, e.Nets, fam6)
		m6 = mergeSpans(nil, n6, fam6)
	}
	b.warnSkipped("replace", e)

	t := b.cfg.Table
	// Room for set and rule definitions plus the elements; an mmap'ed
	// buffer costs only the pages written, so err on the big side.
	hint := 16384
	if b.addr4 != nil {
		hint += listSize(t, b.addr4.name, len(e.Addr4)*elemLen(4, false, false))
	}
	if b.addr6 != nil {
		hint += listSize(t, b.addr6.name, len(e.Addr6)*elemLen(16, false, false))
	}
	hint += b.spansSize(b.net4, m4) + b.spansSize(b.net6, m6)

	var counts map[string]ruleInfo
	if !b.cfg.SetOnly {
		var err error
		if counts, err = b.ruleCounters(b.c); err != nil {
			b.log.Warn("nftables: rule counters restart from zero", "err", err)
		}
	}
	bt := b.c.newBatch(hint, b.small)
	if b.cfg.SetOnly {
		// The system firewall's rules use the sets: empty them within
		// the transaction.
		for _, s := range b.blocking() {
			bt.flushSet(b.nfproto, t, s)
		}
	} else {
		// Our own table: delete the blocking sets and create them anew,
		// hash sets sized for this list (see capacityFor), with the
		// rules that use them. Deleting a set is cheap inside the
		// transaction (the kernel frees its elements afterwards), while
		// flushing a million elements is not. The rules' counters carry
		// on from their current values.
		for _, c := range b.chains {
			b.flushChain(bt, c.name)
		}
		for _, s := range b.blocking() {
			b.delSet(bt, s.name)
		}
		for _, s := range b.blocking() {
			size := 0
			switch s {
			case b.addr4:
				size = capacityFor(len(e.Addr4))
			case b.addr6:
				size = capacityFor(len(e.Addr6))
			}
			b.newSet(bt, s, size)
		}
		for _, c := range b.chains {
			b.addRules(bt, c, counts)
		}
	}
	if b.addr4 != nil {
		b.addr4.newCount = len(e.Addr4)
		if len(e.Addr4) > 0 {
			bt.openList(unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE, b.nfproto, t, b.addr4)
			bt.appendAddr4(e.Addr4)
		}
	}
	if b.addr6 != nil {
		b.addr6.newCount = len(e.Addr6)
		if len(e.Addr6) > 0 {
			bt.openList(unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE, b.nfproto, t, b.addr6)
			bt.appendAddr6(e.Addr6)
		}
	}
	b.listSpans(bt, unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE, b.net4, m4)
	b.listSpans(bt, unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE, b.net6, m6)

	size := len(bt.Buf)
	err := b.c.transact(bt)
	b.recycle(bt)
	b.endBatch(err == nil)
	if err != nil {
		if errors.Is(err, netlink.ErrOutcomeUnknown) {
			b.known = false
		}
		return err
	}
	b.nets4 = netState{f: fam4, spans: n4, merged: m4}
	b.nets6 = netState{f: fam6, spans: n6, merged: m6}
	b.known = true
	b.log.Info("nftables: sets replaced", "table", b.cfg.Family+" "+t,
		"addr4", len(e.Addr4), "addr6", len(e.Addr6), "nets", len(n4)+len(n6),
		"intervals", len(m4)+len(m6), "batch_bytes", size, "took", time.Since(begin))
	return nil
}

// Apply deletes del and adds add in one transaction. Deleting an element
// that is not there, or adding one that is, fails the whole transaction
// with an error wrapping ENOENT or EEXIST: the caller promised never to
// do that, so it is a bug, and the sets stay as they were.
func (b *Backend) Apply(ctx context.Context, add, del *firewall.Elements) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !b.known {
		return ErrNeedReplace
	}
	if add == nil {
		add = &firewall.Elements{}
	}
	if del == nil {
		del = &firewall.Elements{}
	}
	begin := time.Now()

	// Work out the interval changes first: a bad deletion is found here,
	// before anything is sent.
	type netChange struct {
		s             *setDef
		st            *netState
		spans, merged []span
		delSp, addSp  []span
		changed       bool
	}
	var changes [2]netChange
	for i, x := range []struct {
		s  *setDef
		st *netState
	}{{b.net4, &b.nets4}, {b.net6, &b.nets6}} {
		if x.s == nil {
			continue
		}
		d := spansOf(nil, del.Nets, x.st.f)
		a := spansOf(nil, add.Nets, x.st.f)
		if len(d) == 0 && len(a) == 0 {
			continue
		}
		spans, merged, err := x.st.change(d, a)
		if err != nil {
			return fmt.Errorf("nftables: set %s: %w", x.s.desc, err)
		}
		ds, as := diffSpans(x.st.merged, merged)
		changes[i] = netChange{s: x.s, st: x.st, spans: spans, merged: merged, delSp: ds, addSp: as, changed: true}
	}
	b.warnSkipped("apply", add)
	b.warnSkipped("apply", del)
	// A sized hash set refuses elements past its size (ENFILE). Say so
	// before sending anything; the caller's Replace sizes the sets anew.
	for _, x := range []struct {
		s        *setDef
		add, del int
	}{{b.addr4, len(add.Addr4), len(del.Addr4)}, {b.addr6, len(add.Addr6), len(del.Addr6)}} {
		if x.s == nil {
			continue
		}
		x.s.newCount = x.s.count + x.add - x.del
		if x.s.cap > 0 && x.s.newCount > x.s.cap {
			b.endBatch(false)
			return fmt.Errorf("nftables: set %s would hold %d elements, more than its size %d; the next Replace sizes it for the list: %w",
				x.s.desc, x.s.newCount, x.s.cap, unix.ENFILE)
		}
	}

	t := b.cfg.Table
	hint := 256
	for _, x := range []*firewall.Elements{add, del} {
		if b.addr4 != nil {
			hint += listSize(t, b.addr4.name, len(x.Addr4)*elemLen(4, false, false))
		}
		if b.addr6 != nil {
			hint += listSize(t, b.addr6.name, len(x.Addr6)*elemLen(16, false, false))
		}
	}
	for _, c := range changes {
		if c.changed {
			hint += b.spansSize(c.s, c.delSp) + b.spansSize(c.s, c.addSp)
		}
	}

	bt := b.c.newBatch(hint, b.small)
	// Deletions first: an address moving from a single entry to a
	// prefix, or an interval that is replaced by a bigger one, must be
	// gone before its successor is added.
	if b.addr4 != nil && len(del.Addr4) > 0 {
		bt.openList(unix.NFT_MSG_DELSETELEM, 0, b.nfproto, t, b.addr4)
		bt.appendAddr4(del.Addr4)
	}
	if b.addr6 != nil && len(del.Addr6) > 0 {
		bt.openList(unix.NFT_MSG_DELSETELEM, 0, b.nfproto, t, b.addr6)
		bt.appendAddr6(del.Addr6)
	}
	for _, c := range changes {
		if c.changed {
			b.listSpans(bt, unix.NFT_MSG_DELSETELEM, 0, c.s, c.delSp)
		}
	}
	// NLM_F_EXCL: an element already present is an error (EEXIST), not
	// silently accepted, so that a caller's bug shows.
	const addFlags = unix.NLM_F_CREATE | unix.NLM_F_EXCL
	if b.addr4 != nil && len(add.Addr4) > 0 {
		bt.openList(unix.NFT_MSG_NEWSETELEM, addFlags, b.nfproto, t, b.addr4)
		bt.appendAddr4(add.Addr4)
	}
	if b.addr6 != nil && len(add.Addr6) > 0 {
		bt.openList(unix.NFT_MSG_NEWSETELEM, addFlags, b.nfproto, t, b.addr6)
		bt.appendAddr6(add.Addr6)
	}
	for _, c := range changes {
		if c.changed {
			b.listSpans(bt, unix.NFT_MSG_NEWSETELEM, addFlags, c.s, c.addSp)
		}
	}
	msgs := len(bt.Msgs)
	err := b.c.transact(bt)
	b.recycle(bt)
	b.endBatch(err == nil)
	if err != nil {
		if errors.Is(err, netlink.ErrOutcomeUnknown) {
			b.known = false
		}
		return err
	}
	for _, c := range changes {
		if c.changed {
			c.st.commit(c.spans, c.merged)
		}
	}
	b.log.Debug("nftables: delta applied", "add", add.Len(), "del", del.Len(), "messages", msgs, "took", time.Since(begin))
	return nil
}

// listSpans adds a NEWSETELEM/DELSETELEM list for spans, if any.
func (b *Backend) listSpans(bt *batch, op, flags uint16, s *setDef, spans []span) {
	if s == nil || len(spans) == 0 {
		return
	}
	bt.openList(op, flags, b.nfproto, b.cfg.Table, s)
	bt.appendSpans(spans, s.f)
}

// spansSize bounds the batch bytes for spans in set s.
func (b *Backend) spansSize(s *setDef, spans []span) int {
	if s == nil {
		return 0
	}
	return listSize(b.cfg.Table, s.name, len(spans)*(elemLen(s.f.keyLen, false, true)+elemLen(s.f.keyLen, true, false)))
}

// recycle keeps a small batch buffer for the next batch and lets a big
// one go.
func (b *Backend) recycle(bt *batch) {
	if small := bt.Release(); small != nil {
		b.small = small
	}
}

// warnSkipped logs elements of a family the table cannot hold.
func (b *Backend) warnSkipped(op string, e *firewall.Elements) {
	skipped := 0
	if b.addr4 == nil {
		skipped += len(e.Addr4)
	}
	if b.addr6 == nil {
		skipped += len(e.Addr6)
	}
	for _, p := range e.Nets {
		if v6 := isV6(p); (v6 && b.net6 == nil) || (!v6 && b.net4 == nil) {
			skipped++
		}
	}
	if skipped > 0 {
		b.log.Warn("nftables: elements of a family the table cannot hold are not blocked",
			"op", op, "table", b.cfg.Family+" "+b.cfg.Table, "skipped", skipped)
	}
}

// Close releases the netlink sockets. With keep everything stays in the
// kernel and keeps blocking. Without keep, in our own table the table is
// deleted (with its sets and chains); in set-only mode the sets New created
// are deleted, unless a rule of the system firewall still uses them (the
// kernel refuses with EBUSY): then they, like the sets that existed
// before New, are only emptied. The system firewall's table is never
// deleted.
func (b *Backend) Close(keep bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return nil
	}
	b.closed.Store(true)
	var err error
	if !keep {
		err = b.teardown()
	}
	b.cmu.Lock()
	if b.cc != nil {
		b.cc.close()
		b.cc = nil
	}
	b.cmu.Unlock()
	if cerr := b.c.close(); err == nil && cerr != nil {
		err = fmt.Errorf("nftables: closing the netlink socket: %w", cerr)
	}
	b.small = nil
	return err
}

// Counters reads the counters of our drop rules, summed per chain and
// family, for metrics. It reads only our few rules, never set elements,
// so it is cheap enough for every scrape. In set-only mode there are no
// rules of ours and it returns nothing.
func (b *Backend) Counters(ctx context.Context) ([]Counter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.cmu.Lock()
	defer b.cmu.Unlock()
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if len(b.chains) == 0 {
		return nil, nil
	}
	counts, err := b.ruleCounters(b.cc)
	if err != nil {
		return nil, err
	}
	var out []Counter
	for _, ch := range b.chains {
		for _, pair := range [][2]*setDef{{b.addr4, b.net4}, {b.addr6, b.net6}} {
			if pair[0] == nil {
				continue
			}
			c := Counter{Chain: ch.name, Family: "ipv4"}
			if pair[0].f.v6 {
				c.Family = "ipv6"
			}
			for _, s := range pair {
				r := counts[ruleKey(ch.name, s.name)]
				c.Packets += r.packets
				c.Bytes += r.bytes
			}
			out = append(out, c)
		}
	}
	return out, nil
}
