package scoring

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors of the administrative calls.
var (
	// ErrKey is returned for a prefix that is not a key: keys are single
	// addresses, or IPv6 prefixes of exactly Config.IPv6Prefix bits.
	ErrKey = errors.New("scoring: not a key")
	// ErrNeverListed is returned when blocking a key that the allow-list
	// or its non-global address keeps off the list.
	ErrNeverListed = errors.New("scoring: key is never listed")
	// ErrUntil is returned for an override that ends before it starts.
	ErrUntil = errors.New("scoring: override ends before it starts")
	// ErrNoOverride is returned by Clear for a key without an override.
	ErrNoOverride = errors.New("scoring: no override")
)

// maxReason bounds an administrator's reason, which lives in memory and in
// every snapshot.
const maxReason = 512

func clip(r string) string {
	if len(r) > maxReason {
		r = r[:maxReason]
		for len(r) > 0 && !utf8.ValidString(r) {
			r = r[:len(r)-1]
		}
	}
	return strings.ToValidUTF8(r, "?")
}

// keyFor turns an administrator's prefix into a key: a single address
// (an IPv6 one maps to its aggregate when IPv6Prefix is set) or an
// aggregate itself.
func (s *Scorer) keyFor(p netip.Prefix) (key, error) {
	if !p.IsValid() {
		return key{}, fmt.Errorf("%w: %v", ErrKey, p)
	}
	a, bits := p.Addr().WithZone(""), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	if bits != a.BitLen() && !(a.Is6() && s.cfg.IPv6Prefix > 0 && bits == s.cfg.IPv6Prefix) {
		if s.cfg.IPv6Prefix > 0 {
			return key{}, fmt.Errorf("%w: %v (want an address or an IPv6 /%d)", ErrKey, p, s.cfg.IPv6Prefix)
		}
		return key{}, fmt.Errorf("%w: %v (want an address)", ErrKey, p)
	}
	k, _ := keyOf(a, s.v6bits)
	return k, nil
}

// entryFor returns the entry of k, creating an empty one at t.
func (s *Scorer) entryFor(k key, t int64) *entry {
	i, ok := s.index.get(k, &s.ents)
	if !ok {
		i = s.add(k, t)
	}
	return s.ents.at(i)
}

// Block lists key from now until until, whatever its score, and returns
// the change it makes (none when the key was listed already). The listing
// counts as an offence. When the block ends the key stays listed only as
// long as its score keeps it there. The caller authenticates the
// administrator; reason is kept (up to 512 bytes) for explanations.
func (s *Scorer) Block(p netip.Prefix, now, until time.Time, reason string) (Change, bool, error) {
	k, err := s.keyFor(p)
	if err != nil {
		return Change{}, false, err
	}
	t, u := now.UnixNano(), until.UnixNano()
	if u <= t {
		return Change{}, false, fmt.Errorf("%w: %v", ErrUntil, until)
	}
	if f := s.classify(k); f != 0 {
		why := "allow-list"
		if f&fAllowed == 0 {
			why = "non-global address: " + s.nonGlobalWhy(k)
		}
		return Change{}, false, fmt.Errorf("%w: %v (%s)", ErrNeverListed, p, why)
	}
	reason = clip(reason)
	en := s.entryFor(k, t)
	s.ovr[k] = override{set: t, until: u, reason: reason}
	en.flags |= fOverride
	var c Change
	changed := en.flags&fListed == 0
	if changed {
		c = s.list(en, t, true, "manual block: "+reason)
	}
	s.schedule(en, t)
	return c, changed, nil
}

// Unblock keeps key off the list from now until until (a false positive)
// and returns the change it makes (none when the key was not listed). A
// listing ended this way does not count as an offence. If the key's score
// is still above the entry threshold when the unblock ends, it is listed
// again then.
func (s *Scorer) Unblock(p netip.Prefix, now, until time.Time, reason string) (Change, bool, error) {
	k, err := s.keyFor(p)
	if err != nil {
		return Change{}, false, err
	}
	t, u := now.UnixNano(), until.UnixNano()
	if u <= t {
		return Change{}, false, fmt.Errorf("%w: %v", ErrUntil, until)
	}
	reason = clip(reason)
	en := s.entryFor(k, t)
	s.ovr[k] = override{unblock: true, set: t, until: u, reason: reason}
	en.flags |= fOverride
	var c Change
	changed := en.flags&fListed != 0
	if changed {
		c = s.unlist(en, t, "manual unblock: "+reason)
		en.offences--
	}
	s.schedule(en, t)
	return c, changed, nil
}

// Clear removes the override of key at now and returns the change that
// follows: a key whose block is cleared leaves the list unless its score
// keeps it there; a key whose unblock is cleared is listed if its score is
// above the entry threshold.
func (s *Scorer) Clear(p netip.Prefix, now time.Time) (Change, bool, error) {
	k, err := s.keyFor(p)
	if err != nil {
		return Change{}, false, err
	}
	i, ok := s.index.get(k, &s.ents)
	if !ok || s.ents.at(i).flags&fOverride == 0 {
		return Change{}, false, fmt.Errorf("%w: %v", ErrNoOverride, p)
	}
	delete(s.ovr, k)
	s.ents.at(i).flags &^= fOverride
	c, changed, forget := s.evaluate(i, now.UnixNano())
	if forget {
		s.remove(i)
	}
	return c, changed, nil
}

// Overridden calls yield for every key with a manual override in force
// (blocked or unblocked), in no particular order, until yield returns
// false. Explain tells the override of each.
func (s *Scorer) Overridden(yield func(key netip.Prefix) bool) {
	for k := range s.ovr {
		if !yield(k.prefix(s.v6bits)) {
			return
		}
	}
}
