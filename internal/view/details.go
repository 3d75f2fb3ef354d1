package view

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/internal/asn"
	"github.com/dynfw/sentinel/internal/geoip"
	"github.com/dynfw/sentinel/internal/passwords"
	"github.com/dynfw/sentinel/internal/ratelimit"
	"github.com/dynfw/sentinel/internal/scorecard"
)

// What the detail pages know about an address besides the statistics: its
// country and network (embedded tables), its reverse DNS name (asked for by
// the visitor), and the scorer's explanation told as a sentence; and about
// a password, whether the password checker knows it.

// NetworkDB finds the autonomous system announcing an address
// (*asn.Table).
type NetworkDB interface {
	Lookup(netip.Addr) asn.AS
}

// Resolver looks up the names of an address (*net.Resolver).
type Resolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// PasswordChecker is the password checker's corpus (*passwords.Corpus).
type PasswordChecker interface {
	Get(h passwords.Hash) (passwords.Entry, bool, error)
}

// SetPasswords connects the password checker once it is open (it opens
// after the view, from the view's store); until then, and with nil, the
// password page does not say whether the checker knows a password.
func (v *View) SetPasswords(pc PasswordChecker) {
	if pc == nil {
		v.checker.Store(nil)
		return
	}
	v.checker.Store(&pc)
}

// addressView is what the attacker page says about the address itself.
type addressView struct {
	Public      bool
	CountryCode string
	Country     string
	AS          asn.AS
	ASCredits   []asn.Credit
	ASLicence   asn.Credit
	RDNS        *rdnsView
	RDNSHref    string
	First, Last timeView
	Seen        bool
}

type timeView struct {
	ISO, Text string
}

func newTimeView(t time.Time) timeView {
	if t.IsZero() {
		return timeView{}
	}
	t = t.UTC()
	return timeView{ISO: t.Format(time.RFC3339), Text: t.Format("2006-01-02 15:04 UTC")}
}

// newAddressView fills the facts that need no query.
func (v *View) newAddressView(a netip.Addr, period string) *addressView {
	av := &addressView{Public: geoip.Public(a)}
	if v.o.Countries != nil {
		if c := v.o.Countries.Country(a); c != "" {
			av.CountryCode, av.Country = c, countryLabel(c)
		}
	}
	if v.o.Networks != nil {
		av.AS = v.o.Networks.Lookup(a)
		if av.AS.Known() {
			av.ASCredits = asn.Credits
			av.ASLicence = asn.Credit{Name: asn.Licence, URL: asn.LicenceURL}
		}
	}
	av.RDNSHref = attackerURL(a.String(), period) + "&dns=1#rdns"
	return av
}

// Reverse DNS, on request only: a lookup costs a query to the resolver
// and, for an attacker's address, tells its operator someone looked, so
// the page never makes one by itself. Lookups are bounded in time, cached
// and limited for the whole site, on top of the visitor's own rate limit.
const (
	rdnsTimeout    = 2 * time.Second
	rdnsTTL        = time.Hour
	rdnsFailTTL    = 5 * time.Minute
	rdnsMaxEntries = 4096
	rdnsPerMinute  = 30
	rdnsBurst      = 10
	rdnsMaxNames   = 5
)

type rdnsView struct {
	Names []string
	// Note explains an empty Names: no name, a failure, the limit.
	Note string
}

type rdnsEntry struct {
	names   []string
	note    string
	expires time.Time
}

type rdnsCache struct {
	res   Resolver
	now   func() time.Time
	limit *ratelimit.Limiter
	mu    sync.Mutex
	m     map[netip.Addr]rdnsEntry
	// counts by result, for /metrics: rdnsResults.
	counts [len(rdnsResults)]atomic.Uint64
}

// rdnsResults are the outcomes of a lookup a visitor asked for: a name,
// none (no PTR record), failed (resolver error or timeout), limited (the
// site's budget was spent), cached, private (not looked up).
var rdnsResults = [...]string{"name", "none", "failed", "limited", "cached", "private"}

const (
	rdnsName = iota
	rdnsNone
	rdnsFailed
	rdnsLimited
	rdnsCached
	rdnsPrivate
)

// ReverseDNSLookups counts the reverse DNS lookups visitors asked for, by
// result (see rdnsResults), for the metric
// sentinel_view_rdns_lookups_total{result}.
func (v *View) ReverseDNSLookups() map[string]uint64 {
	out := make(map[string]uint64, len(rdnsResults))
	for i, r := range rdnsResults {
		out[r] = v.rdns.counts[i].Load()
	}
	return out
}

func newRDNS(res Resolver, now func() time.Time) *rdnsCache {
	return &rdnsCache{res: res, now: now, m: map[netip.Addr]rdnsEntry{},
		limit: ratelimit.New(rdnsPerMinute, rdnsBurst, 1, now)}
}

// siteKey is the one client of the site-wide lookup budget.
var siteKey = netip.MustParsePrefix("0.0.0.0/0")

// lookup returns the names of a from the cache, or asks the resolver
// when the site's budget allows.
func (c *rdnsCache) lookup(ctx context.Context, a netip.Addr) *rdnsView {
	if !geoip.Public(a) {
		c.counts[rdnsPrivate].Add(1)
		return &rdnsView{Note: "No public name: not a public address."}
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[a]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		c.counts[rdnsCached].Add(1)
		return &rdnsView{Names: e.names, Note: e.note}
	}
	if ok, _ := c.limit.Allow(siteKey); !ok {
		c.counts[rdnsLimited].Add(1)
		return &rdnsView{Note: "Too many lookups right now; try again in a minute."}
	}
	// The answer is cached for everyone: a visitor who leaves must not
	// cut it short and leave a failure behind.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rdnsTimeout)
	defer cancel()
	names, err := c.res.LookupAddr(ctx, a.String())
	e = rdnsEntry{expires: now.Add(rdnsTTL)}
	for _, n := range names {
		// Go's resolver returns only well-formed names; keep them
		// printable and short all the same: they are the attacker's
		// text.
		n = cut(xmlSafe(strings.TrimSuffix(n, ".")), 253)
		if n != "" && !slices.Contains(e.names, n) && len(e.names) < rdnsMaxNames {
			e.names = append(e.names, n)
		}
	}
	result := rdnsName
	if len(e.names) == 0 {
		result, e.note = rdnsNone, "No reverse DNS name."
		if err != nil && !isNotFound(err) {
			result, e.note, e.expires = rdnsFailed, "The lookup failed; try again later.", now.Add(rdnsFailTTL)
		}
	}
	c.counts[result].Add(1)
	c.mu.Lock()
	if len(c.m) >= rdnsMaxEntries {
		// Expired entries first, then any, down to three quarters, so
		// that a flood of new addresses sweeps once per many lookups.
		for k, old := range c.m {
			if !now.Before(old.expires) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < rdnsMaxEntries*3/4 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[a] = e
	c.mu.Unlock()
	return &rdnsView{Names: e.names, Note: e.note}
}

// isNotFound: the resolver answered that there is no name.
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// passwordFacts is what the password checker knows of a password.
type passwordFacts struct {
	Known        bool
	Failed       bool
	Count, HIBP  uint64
	Sources      []string
	CheckerHref  string
	CheckerLabel string
}

func (v *View) passwordFacts(pw string) *passwordFacts {
	p := v.checker.Load()
	if p == nil {
		return nil
	}
	f := &passwordFacts{CheckerHref: "/passcheck/"}
	e, ok, err := (*p).Get(passwords.HashPassword(pw))
	switch {
	case err != nil:
		v.log.Warn("view: password checker failed", "err", err)
		f.Failed = true
	case ok:
		f.Known, f.Count, f.HIBP = true, e.Count, e.HIBP
		for _, s := range e.Sources.Names() {
			if s != "haas" {
				s = "minipot_" + s
			}
			f.Sources = append(f.Sources, trapLabel(s))
		}
	}
	return f
}

// The DynFW explanation as one sentence a person reads, e.g. "Listed since
// 18:30 UTC: 5 telnet logins in 2 minutes (score 12.5, threshold 10)."
// The full explanation stays on the page below it.

// reasonScore reads the score and threshold out of the scorer's listing
// reasons ("score 12.5 reached the entry threshold 10 with telnet_login",
// "score 11.0 above the entry threshold 10 when the unblock ended"): the
// score when the address was listed, which the sentence quotes rather
// than the score decayed since.
var reasonScore = regexp.MustCompile(`^score ([0-9.]+) (?:reached|above) the entry threshold ([0-9.e+]+)`)

// activity summarises the events the scorer remembers: the two commonest
// types and the time they took, "5 telnet logins and 2 telnet connections
// in 2 minutes".
func activity(x *scorecard.Explanation) string {
	type c struct {
		name string
		n    uint64
	}
	var cs []c
	var total uint64
	for k, n := range x.Counts {
		if n > 0 {
			cs = append(cs, c{k, n})
			total += n
		}
	}
	if len(cs) == 0 {
		return "no events remembered"
	}
	slices.SortFunc(cs, func(a, b c) int {
		if d := cmp.Compare(b.n, a.n); d != 0 {
			return d
		}
		return strings.Compare(a.name, b.name)
	})
	parts := []string{eventPhrase(cs[0].name, cs[0].n)}
	if len(cs) == 2 {
		parts = append(parts, eventPhrase(cs[1].name, cs[1].n))
	}
	s := strings.Join(parts, " and ")
	if len(cs) > 2 {
		rest := total - cs[0].n
		s += fmt.Sprintf(" and %d other event%s", rest, plural(rest))
	}
	if total > 1 && !x.FirstSeen.IsZero() && !x.LastSeen.IsZero() {
		s += " " + span(x.LastSeen.Sub(x.FirstSeen))
	}
	return s
}

func plural(n uint64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// span is "within a minute", "in 2 minutes", "in 3 hours", "over 4 days".
func span(d time.Duration) string {
	if d < time.Minute {
		return "within a minute"
	}
	if n := uint64(math.Round(d.Minutes())); n < 60 {
		return fmt.Sprintf("in %d minute%s", n, plural(n))
	}
	if n := uint64(math.Round(d.Hours())); n < 48 {
		return fmt.Sprintf("in %d hour%s", n, plural(n))
	}
	return fmt.Sprintf("over %d days", uint64(math.Round(d.Hours()/24)))
}

// when is "18:30 UTC" on the day of now, else "2026-06-03 18:30 UTC".
func when(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04 UTC")
	}
	return t.Format("2006-01-02 15:04 UTC")
}

// scores is "score 12.5, threshold 10": the listing's own figures when
// its reason gives them, else the current score.
func scores(x *scorecard.Explanation, reason string, now bool) string {
	if m := reasonScore.FindStringSubmatch(reason); m != nil {
		return "score " + m[1] + ", threshold " + m[2]
	}
	s := "score "
	if now {
		s = "score now "
	}
	return s + strconv.FormatFloat(x.Score, 'f', 1, 64) + ", threshold " + strconv.FormatFloat(x.Entry, 'g', -1, 64)
}

// dynfwSentence tells where the address stands on the DynFW list and why.
func dynfwSentence(x *scorecard.Explanation, now time.Time) string {
	act := activity(x)
	if o := x.Override; o != nil && o.Kind == "block" {
		s := "Blocked by hand since " + when(o.Set, now) + ", until " + when(o.Until, now)
		if o.Reason != "" {
			s += ": " + o.Reason
		}
		return s + "."
	}
	if o := x.Override; o != nil && o.Kind == "unblock" {
		s := "Unblocked by hand until " + when(o.Until, now)
		if o.Reason != "" {
			s += " (" + o.Reason + ")"
		}
		return s + ": " + act + " (" + scores(x, "", true) + ")."
	}
	switch x.NeverListed {
	case "":
	case "non-global address":
		return "Never listed: a private or reserved address, which DynFW never publishes (" + act + ")."
	case "allow-list":
		return "Never listed: the address is on the allow-list (" + act + ")."
	default:
		return "Never listed: " + x.NeverListed + " (" + act + ")."
	}
	if x.Listed {
		if r, ok := strings.CutPrefix(x.Reason, "manual block: "); ok {
			return "Listed by hand since " + when(x.Since, now) + ": " + r + "."
		}
		return "Listed since " + when(x.Since, now) + ": " + act + " (" + scores(x, x.Reason, false) + ")."
	}
	if n := len(x.History); n > 0 && !x.History[n-1].End.IsZero() {
		l := x.History[n-1]
		s := "Not listed since " + when(l.End, now) + " (listed from " + when(l.Start, now)
		if l.EndReason != "" {
			s += "; ended: " + l.EndReason
		}
		return s + "): " + act + " (" + scores(x, "", true) + ")."
	}
	return "Not listed: " + act + " (" + scores(x, "", false) + ")."
}
