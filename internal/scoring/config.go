package scoring

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/dynfw/sentinel/internal/events"
)

// Config sets how events become listings. The package documentation gives
// the reasoning behind each default. New replaces zero fields by their
// defaults; Check reports invalid ones.
type Config struct {
	// HalfLife is how fast a score decays: it halves every HalfLife.
	HalfLife time.Duration
	// Entry is the score at which a key is listed; Exit, lower, the score
	// below which a listed key may end (hysteresis). 0 < Exit <= Entry.
	Entry, Exit float64
	// Weights gives the score an event adds, by event name
	// ("telnet_login"). Names not present take the built-in default, or
	// CustomWeight for types registered at run time. A weight of 0
	// disables a type: its events are ignored entirely.
	Weights map[string]float64
	// CustomWeight is the weight of registered event types that Weights
	// does not name (0 takes the default; to ignore a custom type, give it
	// weight 0 in Weights).
	CustomWeight float64

	// MinDuration is the shortest listing of a first offence; it doubles
	// for each earlier listing of the key still remembered, up to
	// MaxDuration.
	MinDuration, MaxDuration time.Duration
	// MaxAge ends a listing whose key has had no event for that long,
	// whatever its score and minimum duration: a listing must not outlive
	// the evidence for it.
	MaxAge time.Duration
	// OffenceMemory is how long after its last listing ended a key's
	// offences are remembered for escalation.
	OffenceMemory time.Duration
	// Forget drops the state of an unlisted key without overrides that has
	// had no event for Forget, once its score is negligible (below 1% of
	// Entry) and its offences are forgotten.
	Forget time.Duration

	// IPv6Prefix, between 1 and 127, scores and lists IPv6 addresses by
	// their /IPv6Prefix (an attacker usually holds a whole /64). 0 keeps
	// single addresses, which every DynFW client understands.
	IPv6Prefix int
	// Allow lists networks that are never listed. A key that overlaps one
	// (an IPv6 aggregate containing an allowed address) is never listed.
	Allow []netip.Prefix
	// ListNonGlobal allows listing non-global addresses (private, CGNAT,
	// documentation, ULA, ...), for a laboratory. Off by default: they
	// cannot be Internet attackers. The unspecified, loopback, link-local
	// and multicast space (netspace.Floor), and their 6to4, NAT64,
	// IPv4-mapped and Teredo forms, are never listed whatever this says.
	ListNonGlobal bool

	// ProbeCap is the fraction of Entry that the events of one probe can
	// contribute to a key's score (the contribution decays like the
	// score, so a probe can add more later). 1, the default, is no cap. A
	// network of many probes should set about 0.6, so that a listing needs
	// two independent sensors and one compromised or buggy probe cannot
	// list anyone on its own.
	ProbeCap float64

	// History is how many past listings each key keeps for explanations.
	History int
}

// Default weights, by event name. See the package documentation.
var defaultWeights = map[string]float64{
	"telnet_connect":         0.1,
	"ftp_connect":            0.1,
	"smtp_connect":           0.1,
	"http_connect":           0.1,
	"telnet_invalid":         0.3,
	"ftp_invalid":            0.3,
	"smtp_invalid":           0.3,
	"http_invalid":           0.3,
	"http_message":           0.3,
	"haas_not_logged":        0.3,
	"telnet_login":           2.5,
	"ftp_login":              2.5,
	"smtp_login":             2.5,
	"http_login":             2.5,
	"ssh_login_failed":       2.5,
	"fwlogs_small_port_scan": 2,
	"fwlogs_big_port_scan":   4,
	"haas_logged":            5,
	"haas_logged_active":     8,
}

// DefaultConfig returns the defaults, with Weights filled in for every
// built-in event type (the map is a copy the caller may change).
func DefaultConfig() Config {
	w := make(map[string]float64, len(defaultWeights))
	for n, v := range defaultWeights {
		w[n] = v
	}
	return Config{
		HalfLife:      12 * time.Hour,
		Entry:         10,
		Exit:          5,
		Weights:       w,
		CustomWeight:  2.5,
		MinDuration:   6 * time.Hour,
		MaxDuration:   30 * 24 * time.Hour,
		MaxAge:        7 * 24 * time.Hour,
		OffenceMemory: 30 * 24 * time.Hour,
		Forget:        48 * time.Hour,
		ProbeCap:      1,
		History:       8,
	}
}

// maxHistory bounds Config.History: explanations are for people.
const maxHistory = 1000

func validWeight(w float64) bool { return w >= 0 && !math.IsInf(w, 0) }

// Check reports the fields that New would replace because they are
// invalid (zero fields simply take their defaults).
func (c Config) Check() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"half-life", c.HalfLife}, {"min-duration", c.MinDuration}, {"max-duration", c.MaxDuration},
		{"max-age", c.MaxAge}, {"offence-memory", c.OffenceMemory}, {"forget", c.Forget}} {
		if d.v < 0 {
			bad("%s %v: must not be negative", d.name, d.v)
		}
	}
	if !(c.Entry >= 0) || math.IsInf(c.Entry, 0) {
		bad("entry threshold %v: want a positive number", c.Entry)
	}
	if !(c.Exit >= 0) || math.IsInf(c.Exit, 0) {
		bad("exit threshold %v: want a positive number", c.Exit)
	}
	if entry, exit := or(c.Entry, 10), or(c.Exit, 5); exit > entry {
		bad("exit threshold %v above entry threshold %v", exit, entry)
	}
	if c.MinDuration > 0 && c.MaxDuration > 0 && c.MaxDuration < c.MinDuration {
		bad("max-duration %v below min-duration %v", c.MaxDuration, c.MinDuration)
	}
	for n, w := range c.Weights {
		if !validWeight(w) {
			bad("weight of %s %v: want 0 or a positive number", n, w)
		}
	}
	if !validWeight(c.CustomWeight) {
		bad("custom weight %v: want 0 or a positive number", c.CustomWeight)
	}
	if c.IPv6Prefix < 0 || c.IPv6Prefix > 128 {
		bad("ipv6 prefix %d: want 0 to 128", c.IPv6Prefix)
	}
	if !(c.ProbeCap >= 0 && c.ProbeCap <= 1) {
		bad("probe cap %v: want a fraction between 0 and 1", c.ProbeCap)
	}
	if c.History < 0 || c.History > maxHistory {
		bad("history %d: want 0 to %d", c.History, maxHistory)
	}
	for _, p := range c.Allow {
		if !p.IsValid() {
			bad("allow-list entry %v is not a prefix", p)
		}
	}
	return errors.Join(errs...)
}

func or[T int | float64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// normalise returns c with zero and invalid fields replaced by defaults.
func (c Config) normalise() Config {
	d := DefaultConfig()
	fix := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	fix(&c.HalfLife, d.HalfLife)
	fix(&c.MinDuration, d.MinDuration)
	fix(&c.MaxDuration, d.MaxDuration)
	fix(&c.MaxAge, d.MaxAge)
	fix(&c.OffenceMemory, d.OffenceMemory)
	fix(&c.Forget, d.Forget)
	c.MaxDuration = max(c.MaxDuration, c.MinDuration)
	if !(c.Entry > 0) || math.IsInf(c.Entry, 0) {
		c.Entry = d.Entry
	}
	if !(c.Exit > 0) || c.Exit > c.Entry {
		c.Exit = c.Entry * d.Exit / d.Entry
	}
	if c.CustomWeight == 0 || !validWeight(c.CustomWeight) {
		c.CustomWeight = d.CustomWeight
	}
	if c.IPv6Prefix <= 0 || c.IPv6Prefix > 128 {
		c.IPv6Prefix = 0
	}
	if !(c.ProbeCap > 0 && c.ProbeCap <= 1) {
		c.ProbeCap = 1
	}
	if c.History <= 0 || c.History > maxHistory {
		c.History = d.History
	}
	w := d.Weights
	for n, v := range c.Weights {
		if validWeight(v) {
			w[n] = v
		}
	}
	c.Weights = w
	c.Allow = append([]netip.Prefix(nil), c.Allow...)
	return c
}

// v6bits is the length of IPv6 keys.
func (c *Config) v6bits() int {
	if c.IPv6Prefix == 0 {
		return 128
	}
	return c.IPv6Prefix
}

// weightOf resolves the weight of an event type by its name. Types that
// are not published (fwlogs_packet, invalid) are observations, never
// evidence on their own.
func (c *Config) weightOf(t events.Type) float64 {
	if !t.Published() {
		return 0
	}
	if w, ok := c.Weights[t.String()]; ok {
		return w
	}
	return c.CustomWeight
}
