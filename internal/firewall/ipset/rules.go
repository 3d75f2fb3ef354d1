package ipset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"

	"github.com/dynfw/sentinel/internal/firewall/netns"
)

// maxChainLen is iptables' limit on chain names (XT_EXTENSION_MAXNAMELEN
// less the NUL).
const maxChainLen = 28

// ruleSet is the chain of one address family and the jumps to it. Rules are
// a one-time setup at start, so they go through the iptables programs
// rather than a second netlink protocol (nf_tables or the legacy socket
// options, depending on the variant the system uses).
//
// The drop rules live in their own chain rather than in INPUT: the allow
// rules can then RETURN (hand the packet back to the rest of the
// administrator's INPUT rules) instead of ACCEPT (which would bypass them),
// and the whole chain can be rewritten in one iptables-restore commit.
type ruleSet struct {
	bin     string   // iptables or ip6tables
	restore string   // iptables-restore or ip6tables-restore
	chain   string   // our chain
	hooks   []string // built-in chains jumping to ours
	rules   []string // our chain's rules, as "iptables -S" prints them
	netns   int
}

func (b *Backend) ruleSets() []*ruleSet {
	hooks := []string{"INPUT"}
	if b.cfg.Forward {
		hooks = append(hooks, "FORWARD")
	}
	mk := func(bin string, allow *setDef, block ...*setDef) *ruleSet {
		r := &ruleSet{bin: bin, restore: bin + "-restore", chain: b.cfg.Chain, hooks: hooks, netns: b.cfg.NetNS}
		// Allow first: a source both allowed and blocked passes.
		if allow != nil {
			r.rules = append(r.rules, "-m set --match-set "+allow.name+" src -j RETURN")
		}
		for _, d := range block {
			r.rules = append(r.rules, "-m set --match-set "+d.name+" src -j DROP")
		}
		return r
	}
	var allow4, allow6 *setDef
	if len(b.allow) == 2 {
		allow4, allow6 = b.allow[0], b.allow[1]
	}
	return []*ruleSet{
		mk(b.cfg.IPTables, allow4, b.sets[setAddr4], b.sets[setNet4]),
		mk(b.cfg.IP6Tables, allow6, b.sets[setAddr6], b.sets[setNet6]),
	}
}

// run runs an iptables program inside the backend's network namespace.
func (r *ruleSet) run(ctx context.Context, stdin string, prog string, args ...string) (string, error) {
	// -w: wait for the xtables lock instead of failing when another
	// program changes rules at the same moment (legacy variant).
	cmd := exec.CommandContext(ctx, prog, append([]string{"-w"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	// Only the fork must happen inside the namespace: the child keeps it.
	if err := netns.Do(r.netns, cmd.Start); err != nil {
		return "", fmt.Errorf("ipset: %s: %w", prog, err)
	}
	err := cmd.Wait()
	if err != nil {
		return out.String(), fmt.Errorf("ipset: %s %s: %w: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// current returns the rules of our chain as "iptables -S" prints them, or
// ok=false if the chain does not exist.
func (r *ruleSet) current(ctx context.Context) (rules []string, ok bool) {
	out, err := r.run(ctx, "", r.bin, "-S", r.chain)
	if err != nil {
		return nil, false
	}
	for line := range strings.Lines(out) {
		if rest, found := strings.CutPrefix(strings.TrimSpace(line), "-A "+r.chain+" "); found {
			rules = append(rules, rest)
		}
	}
	return rules, true
}

// ensure installs the chain and the jumps, changing only what differs, so
// that running it again (a restart) leaves rules and counters alone.
func (r *ruleSet) ensure(ctx context.Context) error {
	if got, ok := r.current(ctx); !ok || !slices.Equal(got, r.rules) {
		// In --noflush mode a chain declaration creates the chain or
		// empties an existing one, and the commit replaces its rules in
		// one step: no moment without the drop rules.
		var in strings.Builder
		fmt.Fprintf(&in, "*filter\n:%s - [0:0]\n", r.chain)
		for _, rule := range r.rules {
			fmt.Fprintf(&in, "-A %s %s\n", r.chain, rule)
		}
		in.WriteString("COMMIT\n")
		if _, err := r.run(ctx, in.String(), r.restore, "--noflush"); err != nil {
			return err
		}
	}
	for _, hook := range allHooks {
		_, err := r.run(ctx, "", r.bin, "-C", hook, "-j", r.chain)
		switch want := slices.Contains(r.hooks, hook); {
		case want && err != nil:
			if _, err := r.run(ctx, "", r.bin, "-I", hook, "1", "-j", r.chain); err != nil {
				return err
			}
		case !want && err == nil:
			// Forward was set in an earlier run and is no longer.
			if err := r.unhook(ctx, hook); err != nil {
				return err
			}
		}
	}
	return nil
}

// allHooks are the built-in chains this backend may jump from.
var allHooks = []string{"INPUT", "FORWARD"}

// unhook deletes every jump from hook to our chain (an administrator may
// have added another).
func (r *ruleSet) unhook(ctx context.Context, hook string) error {
	for range 100 {
		if _, err := r.run(ctx, "", r.bin, "-C", hook, "-j", r.chain); err != nil {
			return nil
		}
		if _, err := r.run(ctx, "", r.bin, "-D", hook, "-j", r.chain); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes the jumps and the chain. A missing chain is not an error:
// Close(false) may follow a start that never installed it.
func (r *ruleSet) remove(ctx context.Context) error {
	if _, ok := r.current(ctx); !ok {
		return nil
	}
	var errs []error
	for _, hook := range allHooks {
		if err := r.unhook(ctx, hook); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := r.run(ctx, "", r.bin, "-F", r.chain); err != nil {
		errs = append(errs, err)
	}
	if _, err := r.run(ctx, "", r.bin, "-X", r.chain); err != nil {
		// A jump we do not know of (from a chain other than our hooks)
		// keeps the chain; say so rather than fail silently.
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
