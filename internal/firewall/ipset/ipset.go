// Package ipset is the ipset backend of dynfw-client: it keeps the DynFW
// blocklist in kernel ipsets, which iptables rules (its own, when asked, or
// the administrator's) match packets against.
//
// Data enters as firewall.Elements through Replace (a full list) and Apply
// (deltas), and leaves only towards the kernel: requests on an nfnetlink
// socket of the ipset subsystem, encoded straight from the caller's slices
// into one reusable buffer, thousands of elements per message and several
// messages per system call (the batch form `ipset restore` uses). Nothing
// is ever read back from the kernel except set headers (type, family,
// sizes); the caller holds the desired state.
//
// Four sets hold the list, named after Config.Name:
//
//	Name        hash:ip  inet    single IPv4 addresses
//	Name-v6     hash:ip  inet6   single IPv6 addresses
//	Name-net4   hash:net inet    IPv4 prefixes
//	Name-net6   hash:net inet6   IPv6 prefixes
//
// and, when Config.Allow is set, Name-allow4 and Name-allow6 (hash:net)
// hold the allow-list. Replace fills temporary sets (Name-t, Name-v6-t, ...)
// and swaps each with its live set, so rules always see a complete list.
//
// With Config.Rules the backend also installs iptables and ip6tables rules:
// a chain (Config.Chain) that returns for allowed sources and drops sources
// in the four sets, jumped to from the top of INPUT (and FORWARD).
//
// ipset has no transactions spanning several sets or commands: each swap
// is atomic for its set, but a Replace swaps the four sets one after the
// other, and an Apply's deletes may be seen before its adds. Nothing is
// ever seen empty or half-loaded by Replace.
package ipset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/dynfw/sentinel/internal/firewall"
)

// DefaultName is the name the Turris DynFW client (sentinel-dynfw-client)
// gives its IPv4 hash:ip set by default, so firewall rules written for it
// keep working. (Turris OS's packaging passes "turris-sn-dynfw-block_v4",
// which is also a valid Name.)
const DefaultName = "turris-sn-dynfw-block"

// DefaultMaxElem is the maxelem of Turris OS's DynFW sets.
const DefaultMaxElem = 262144

// tmpSuffix marks the temporary sets that Replace fills before a swap. It
// is short because every name, temporary ones included, must fit ipset's
// 31 characters.
const tmpSuffix = "-t"

// Config configures a Backend. The zero value works: it manages the sets
// under DefaultName and installs no rules.
type Config struct {
	// Name is the base name of the sets (see the package documentation).
	// Default DefaultName. With the longest suffix and the temporary
	// suffix, it may have at most 24 characters (22 with Allow).
	Name string
	// MaxElem is the least maxelem of every set. Replace sizes its sets
	// for the list it loads (twice its length when that is more), so a
	// list larger than MaxElem still loads. Default DefaultMaxElem.
	MaxElem int

	// Rules installs iptables and ip6tables rules that drop packets from
	// sources in the sets: a chain named Chain, jumped to from the first
	// position of INPUT (and FORWARD with Forward). The chain first
	// returns for allowed sources, then drops. The jump is inserted only
	// if missing, and the chain rewritten only if its rules differ, so a
	// restart changes nothing (and keeps the counters). Close(false)
	// removes both.
	Rules bool
	// Forward also jumps to the chain from FORWARD (routed traffic).
	Forward bool
	// Chain is the name of the iptables chain. Default Name (at most 28
	// characters: iptables' limit).
	Chain string
	// Allow are sources never blocked. They are loaded into the
	// Name-allow4 and Name-allow6 sets (hash:net) when non-empty; only
	// the rules of this backend (Rules) act on them, by returning from
	// the chain before the drop rules. Without Rules they are there for
	// the administrator's own rules.
	Allow []netip.Prefix
	// IPTables and IP6Tables are the programs that manage rules, default
	// "iptables" and "ip6tables" (either variant, nft or legacy, works).
	// Their "-restore" companions must exist next to them.
	IPTables, IP6Tables string

	// NetNS is an open file descriptor of a network namespace to work in
	// (0: the current one). Tests use it.
	NetNS int
	// Logger receives one line per event; default slog.Default().
	Logger *slog.Logger
}

// setDef describes one of the backend's sets.
type setDef struct {
	name   string
	tmp    string
	typ    string
	family uint8
	rev    uint8
}

// Indexes into Backend.sets.
const (
	setAddr4 = iota
	setAddr6
	setNet4
	setNet6
)

// Backend keeps the DynFW list in ipsets. It implements firewall.Backend.
type Backend struct {
	cfg   Config
	log   *slog.Logger
	mu    sync.Mutex // the interface promises one caller at a time; this guards Close against a stray call
	nl    *conn
	sets  [4]*setDef
	allow []*setDef // Name-allow4, Name-allow6; nil without Config.Allow
	rules []*ruleSet
	done  bool
}

var _ firewall.Backend = (*Backend)(nil)

// New checks the configuration, opens the netlink socket, makes sure the
// four live sets exist with the right type and family (creating them empty
// if missing, so that rules can reference them before the first list),
// loads the allow-list and installs the rules if asked.
//
// A live set left by an earlier run is reused as it is: the first Replace
// swaps in a fresh set anyway. A set of the same name but another type or
// family (an older client's) is destroyed and created again if no rule
// references it; if one does, New fails and says which set, rather than
// pulling it from under someone else's rule.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.MaxElem == 0 {
		cfg.MaxElem = DefaultMaxElem
	}
	if cfg.Chain == "" {
		cfg.Chain = cfg.Name
	}
	if cfg.IPTables == "" {
		cfg.IPTables = "iptables"
	}
	if cfg.IP6Tables == "" {
		cfg.IP6Tables = "ip6tables"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Backend{cfg: cfg, log: cfg.Logger.With("backend", "ipset")}
	b.sets = [4]*setDef{
		{name: cfg.Name, typ: typeHashIP, family: familyInet},
		{name: cfg.Name + "-v6", typ: typeHashIP, family: familyInet6},
		{name: cfg.Name + "-net4", typ: typeHashNet, family: familyInet},
		{name: cfg.Name + "-net6", typ: typeHashNet, family: familyInet6},
	}
	allow4 := &setDef{name: cfg.Name + "-allow4", typ: typeHashNet, family: familyInet}
	allow6 := &setDef{name: cfg.Name + "-allow6", typ: typeHashNet, family: familyInet6}
	if len(cfg.Allow) > 0 {
		b.allow = []*setDef{allow4, allow6}
	}
	if err := b.validate(); err != nil {
		return nil, err
	}

	nl, err := dial(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	b.nl = nl
	fail := func(err error) (*Backend, error) {
		nl.Close()
		return nil, err
	}
	type typeKey struct {
		typ    string
		family uint8
	}
	revs := map[typeKey]uint8{}
	for _, d := range append(b.sets[:], b.allow...) {
		d.tmp = d.name + tmpSuffix
		k := typeKey{d.typ, d.family}
		rev, ok := revs[k]
		if !ok {
			if rev, err = nl.typeRevision(d.typ, d.family); err != nil {
				return fail(err)
			}
			revs[k] = rev
		}
		d.rev = rev
		if err := b.ensure(d); err != nil {
			return fail(err)
		}
		// A temporary set left by a crash holds nothing of value.
		if err := nl.destroy(d.tmp); err != nil && !isNotExist(err) {
			b.log.Warn("cannot remove a leftover temporary set", "set", d.tmp, "err", err)
		}
	}
	if len(cfg.Allow) > 0 {
		a := &firewall.Elements{Nets: maskedAll(cfg.Allow)}
		src4 := &source{kind: srcNets, nets: a.Nets, family: familyInet}
		src6 := &source{kind: srcNets, nets: a.Nets, family: familyInet6}
		if err := b.load(ctx, []*setDef{allow4, allow6}, []*source{src4, src6}); err != nil {
			return fail(err)
		}
	}
	if cfg.Rules {
		b.rules = b.ruleSets()
		for _, r := range b.rules {
			if err := r.ensure(ctx); err != nil {
				return fail(err)
			}
		}
	}
	if len(cfg.Allow) == 0 {
		// An allow-list of an earlier run is no longer wanted; the
		// rules just written no longer reference it.
		for _, d := range []*setDef{allow4, allow6} {
			if err := nl.destroy(d.name); err == nil {
				b.log.Info("removed the allow-list set of an earlier run", "set", d.name)
			} else if !isNotExist(err) {
				b.log.Warn("cannot remove the allow-list set of an earlier run", "set", d.name, "err", err)
			}
		}
	}
	return b, nil
}

// validate checks every name the backend will use, temporary ones
// included, against the kernel's limits, so that a bad Name fails at start
// with a clear message instead of at the first full list.
func (b *Backend) validate() error {
	if b.cfg.MaxElem < 0 {
		return fmt.Errorf("ipset: MaxElem %d is negative", b.cfg.MaxElem)
	}
	for _, p := range b.cfg.Allow {
		if !p.IsValid() || (p.Addr().Is4In6() && p.Bits() < 96) {
			return fmt.Errorf("ipset: Allow holds an invalid prefix %s", p)
		}
		if maskedAll([]netip.Prefix{p})[0].Bits() == 0 {
			// hash:net refuses /0 (IPSET_ERR_INVALID_CIDR).
			return fmt.Errorf("ipset: Allow prefix %s: a /0 cannot be stored in a hash:net set", p)
		}
	}
	longest := 0
	for _, d := range append(b.sets[:], b.allow...) {
		longest = max(longest, len(d.name+tmpSuffix)-len(b.cfg.Name))
	}
	for _, d := range append(b.sets[:], b.allow...) {
		for _, n := range []string{d.name, d.name + tmpSuffix} {
			if err := checkName(n); err != nil {
				return err
			}
			if len(n) > maxNameLen {
				return fmt.Errorf("ipset: set name %q has %d characters, ipset allows %d: shorten Name %q to at most %d characters",
					n, len(n), maxNameLen, b.cfg.Name, maxNameLen-longest)
			}
		}
	}
	if b.cfg.Rules {
		if err := checkName(b.cfg.Chain); err != nil {
			return err
		}
		if len(b.cfg.Chain) > maxChainLen {
			return fmt.Errorf("ipset: chain name %q has %d characters, iptables allows %d: set Chain",
				b.cfg.Chain, len(b.cfg.Chain), maxChainLen)
		}
	}
	return nil
}

// checkName keeps names to characters that survive iptables and ipset
// command lines and the iptables-restore format unquoted.
func checkName(n string) error {
	if n == "" {
		return errors.New("ipset: empty name")
	}
	for _, r := range n {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '-', r == '_', r == '.', r == ':', r == '+':
		default:
			return fmt.Errorf("ipset: name %q: only letters, digits and - _ . : + are allowed", n)
		}
	}
	if n[0] == '-' {
		return fmt.Errorf("ipset: name %q must not start with '-'", n)
	}
	return nil
}

// ensure makes sure the live set d exists with d's type and family.
func (b *Backend) ensure(d *setDef) error {
	info, err := b.nl.header(d.name)
	switch {
	case isNotExist(err):
		if err := b.nl.create(d.name, d.typ, d.rev, d.family, minHashSize, uint32(b.cfg.MaxElem)); err != nil {
			return err
		}
		b.log.Info("created set", "set", d.name, "type", d.typ, "family", familyName(d.family), "maxelem", b.cfg.MaxElem)
		return nil
	case err != nil:
		return err
	case info.typ == d.typ && info.family == d.family:
		b.log.Info("reusing set", "set", d.name, "type", d.typ, "family", familyName(d.family),
			"elements", info.elements, "maxelem", info.maxElem, "references", info.references,
			"memsize", info.memSize, "timeout", info.timeout)
		return nil
	case info.references > 0:
		return fmt.Errorf("ipset: set %s exists as %s %s and %d rules reference it, but this backend needs %s %s: remove those rules (or the set), or choose another Name",
			d.name, info.typ, familyName(info.family), info.references, d.typ, familyName(d.family))
	}
	if err := b.nl.destroy(d.name); err != nil {
		return err
	}
	if err := b.nl.create(d.name, d.typ, d.rev, d.family, minHashSize, uint32(b.cfg.MaxElem)); err != nil {
		return err
	}
	b.log.Warn("recreated a set of another type", "set", d.name, "was", info.typ+" "+familyName(info.family),
		"now", d.typ+" "+familyName(d.family), "dropped_elements", info.elements)
	return nil
}

// Name returns "ipset".
func (b *Backend) Name() string { return "ipset" }

func (b *Backend) sources(e *firewall.Elements) []*source {
	if e == nil {
		e = &firewall.Elements{}
	}
	return []*source{
		setAddr4: {kind: srcAddr4, a4: e.Addr4},
		setAddr6: {kind: srcAddr6, a6: e.Addr6},
		setNet4:  {kind: srcNets, nets: e.Nets, family: familyInet},
		setNet6:  {kind: srcNets, nets: e.Nets, family: familyInet6},
	}
}

// Replace makes the four sets hold exactly e. Each list is loaded into a
// new temporary set sized for it, which is then swapped with the live set
// (one atomic step per set: packets see the old list or the new one) and
// destroyed with the old contents. If loading fails, the live sets are
// untouched.
func (b *Backend) Replace(ctx context.Context, e *firewall.Elements) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return errors.New("ipset: Replace after Close")
	}
	t0 := time.Now()
	if err := b.load(ctx, b.sets[:], b.sources(e)); err != nil {
		return err
	}
	b.log.Debug("replaced", "elements", e.Len(), "duration", time.Since(t0))
	return nil
}

// minHashSize is the hash size of empty sets (ipset's default).
const minHashSize = 1024

// hashSize is the initial hash size for n elements. The kernel doubles a
// set's table whenever a bucket overflows, rehashing everything; starting
// at the size it would end at anyway (about two elements per bucket) saves
// those rehashes on a large load.
func hashSize(n int) uint32 {
	h := uint32(minHashSize)
	for int(h)*2 < n && h < 1<<24 {
		h <<= 1
	}
	return h
}

// load fills temporaries of defs from srcs and swaps them in.
func (b *Backend) load(ctx context.Context, defs []*setDef, srcs []*source) error {
	jobs := make([]job, 0, len(defs))
	created := make([]*setDef, 0, len(defs))
	cleanup := func() {
		for _, d := range created {
			if err := b.nl.destroy(d.tmp); err != nil && !isNotExist(err) {
				b.log.Warn("cannot remove temporary set", "set", d.tmp, "err", err)
			}
		}
	}
	for i, d := range defs {
		s := srcs[i]
		n := s.count()
		maxElem := max(b.cfg.MaxElem, 2*n)
		if n > b.cfg.MaxElem {
			b.log.Info("list larger than MaxElem: sizing the set for it", "set", d.name,
				"elements", n, "maxelem", maxElem, "config_maxelem", b.cfg.MaxElem)
		}
		if err := b.nl.destroy(d.tmp); err != nil && !isNotExist(err) {
			cleanup()
			return err
		}
		if err := b.nl.create(d.tmp, d.typ, d.rev, d.family, hashSize(n), uint32(maxElem)); err != nil {
			cleanup()
			return err
		}
		created = append(created, d)
		jobs = append(jobs, job{set: d.tmp, src: s, to: s.len()})
	}
	// Duplicates in a full list are harmless: without excl the kernel
	// ignores them.
	if err := b.nl.adt(ctx, cmdAdd, false, jobs); err != nil {
		cleanup()
		return fmt.Errorf("ipset: loading the list (live sets unchanged): %w", err)
	}
	for i, d := range defs {
		err := b.nl.swap(d.tmp, d.name)
		if isErrno(err, ErrnoNoSetName2) {
			// Someone destroyed the live set (no rule referenced it,
			// or the kernel would have refused): the new one takes
			// its name.
			if err = b.nl.rename(d.tmp, d.name); err == nil {
				b.log.Warn("live set was missing: created it from the list", "set", d.name)
			}
		}
		if err != nil {
			cleanup()
			if i > 0 {
				return fmt.Errorf("ipset: %w (after %d of %d sets were swapped)", err, i, len(defs))
			}
			return err
		}
	}
	// The temporaries now hold the old lists.
	cleanup()
	return nil
}

// Apply deletes del, then adds add, in as few system calls as the kernel's
// message size allows (one per about 2,700 IPv4 addresses, both phases in
// separate calls so that an element deleted and added again ends up
// present). An element the kernel refuses (already present, not present,
// set full) is reported as an *ElementError in the returned error, and the
// rest of the batch is still applied. errors.Is(err, ErrFull) tells that a
// set reached its maxelem; Replace with the full state resizes it.
//
// ipset has no transactions: a concurrent reader may see the deletes
// before the adds.
func (b *Backend) Apply(ctx context.Context, add, del *firewall.Elements) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return errors.New("ipset: Apply after Close")
	}
	var errs []error
	for _, ph := range []struct {
		cmd uint8
		e   *firewall.Elements
	}{{cmdDel, del}, {cmdAdd, add}} {
		if ph.e.Len() == 0 {
			continue
		}
		srcs := b.sources(ph.e)
		jobs := make([]job, 0, 4)
		for i, d := range b.sets {
			if n := srcs[i].len(); n > 0 {
				jobs = append(jobs, job{set: d.name, src: srcs[i], to: n})
			}
		}
		if err := b.nl.adt(ctx, ph.cmd, true, jobs); err != nil {
			errs = append(errs, err)
			var ee *ElementError
			if !errors.As(err, &ee) {
				break // not about elements: the next phase would fail the same way
			}
		}
	}
	return errors.Join(errs...)
}

// Close releases the backend. With keep, sets, their contents and rules
// stay, so the last list stays enforced while the client is down.
// Otherwise the rules are removed and the sets destroyed; a set that
// someone else's rule still references cannot be destroyed and is flushed
// instead (and logged), so it blocks nothing.
func (b *Backend) Close(keep bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return nil
	}
	b.done = true
	defer b.nl.Close()
	if keep {
		return nil
	}
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, r := range b.rules {
		if err := r.remove(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range append(b.sets[:], b.allow...) {
		if err := b.destroyOrFlush(d.name, len(b.rules) > 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// destroyOrFlush destroys a set, or empties it if a rule still holds it.
// Right after our own rules are deleted the kernel may still hold their
// references for a moment (nf_tables releases them after the commit), so
// with waitRelease a busy set is retried for a short while first.
func (b *Backend) destroyOrFlush(name string, waitRelease bool) error {
	err := b.nl.destroy(name)
	for wait := 10 * time.Millisecond; waitRelease && isErrno(err, ErrnoBusy) && wait < 2*time.Second; wait *= 2 {
		b.log.Debug("set still busy after removing our rules; retrying", "set", name, "wait", wait)
		time.Sleep(wait)
		err = b.nl.destroy(name)
	}
	switch {
	case err == nil || isNotExist(err):
		return nil
	case isErrno(err, ErrnoBusy) || isErrno(err, ErrnoReferenced):
		if ferr := b.nl.flush(name); ferr != nil {
			return ferr
		}
		b.log.Warn("set still referenced by a rule: flushed instead of destroyed", "set", name)
		return nil
	}
	return err
}

func maskedAll(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		a := p.Addr()
		bits := p.Bits()
		if a.Is4In6() {
			a, bits = a.Unmap(), bits-96
		}
		out[i] = netip.PrefixFrom(a, bits).Masked()
	}
	return out
}
