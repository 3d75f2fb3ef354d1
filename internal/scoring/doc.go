// Package scoring decides which addresses the DynFW server lists, and can
// say why.
//
// # Data flow
//
// Normalised events (events.Event) enter through Observe, one at a time,
// each at its own Time. Time passes through Tick, which the server calls
// about every second. Administrators act through Block, Unblock and
// Clear. What leaves are Changes, an address entering or leaving the list
// with a reason, for the publisher's dynfw/delta and for the store;
// Listed, the listed keys with their greylist tags, for dynfw/list and the
// daily greylist; Explain, the whole story of one key, for the admin API
// and Sentinel View; and snapshots (AppendSnapshot, Restore), so that a
// restart neither forgets attackers nor republishes the list from zero.
//
// The scorer never reads the clock and is not safe for concurrent use: the
// server calls it under its own lock. Replaying the same events and ticks
// therefore gives the same changes and the same snapshot, byte for byte.
//
// # Model
//
// Each key has a score that decays exponentially (it halves every
// HalfLife); each event adds the weight of its type. A key is listed when
// its score reaches Entry, and leaves the list when its score has fallen
// below Exit and the listing's minimum duration has passed. The minimum
// duration is MinDuration for a first offence and doubles with each
// earlier listing of the key (as fail2ban's bantime.increment does), up to
// MaxDuration; offences are forgotten OffenceMemory after the last listing
// ended. Whatever else, a listing ends when its key has had no event for
// MaxAge. Keys are addresses, IPv4-mapped ones unmapped, or with
// IPv6Prefix set the IPv6 prefix an address falls in, so that an attacker
// cannot walk through its /64 one address at a time.
//
// Never listed, although scored for the explanation: keys overlapping the
// Allow list and, unless ListNonGlobal is set, non-global addresses
// (netspace.NonGlobal: loopback, private, link-local, CGNAT 100.64/10,
// documentation, benchmarking, multicast, reserved, IPv6 outside 2000::/3
// such as ULA and link-local), including the 6to4 and Teredo addresses
// that stand for such IPv4 addresses (2002:7f00:1::1 is 127.0.0.1), and
// every IPv6 aggregate that contains one (a Teredo /64 holds the Teredo
// form of every IPv4 address). They cannot be Internet attackers, and a
// forged event about them is the cheapest way to make every router block
// its own network. ListNonGlobal never lifts the floor (unspecified,
// loopback, link-local, multicast).
//
// Events count at their Time, when the server received them (probe
// clocks drift); a late event counts with the weight it would have
// decayed to. Types that are not published (fwlogs_packet) and types of
// weight 0 are ignored.
//
// ProbeCap limits what one probe can contribute to a key's score. Each key
// counts its distinct probes exactly up to 8, then says "at least 8".
//
// Manual overrides, which expire by themselves: Block lists a key until a
// time whatever its score (the listing counts as an offence); Unblock keeps
// it off the list until a time (a false positive; the listing it ends does
// not count as an offence); Clear removes either. Both appear in Explain.
// The allow-list wins over both: blocking such a key is refused.
//
// # Defaults and why
//
// The Turris server's weights and threshold are not public, so these are
// ours. The scale is set by Entry = 10 points; with the defaults no single
// event of any type lists an address, so one forged or misread event
// never does either.
//
//   - telnet/ftp/smtp/http_connect 0.1: a bare connection is what every
//     research scanner and mistyped address makes. One is 1% of the
//     threshold; a connection a minute for an hour stays below 6 points.
//     Only about a hundred connections in a short time (a scanner hammering
//     the probe network) list on connections alone.
//   - *_invalid, http_message, haas_not_logged 0.3: the client spoke, but
//     sent garbage, a plain HTTP request, or did not get into the SSH
//     honeypot: more deliberate than a connection, still what crawlers do.
//   - *_login, ssh_login_failed 2.5: a credential tried on a honeypot has
//     no innocent reading (no real user logs into a minipot), and a failed
//     login on a router's own sshd is where fail2ban's default (5 tries)
//     applies. Four attempts within a minute list, whether they arrive in
//     one batch or seconds apart (a score within the decay of one minute
//     below the threshold reaches it, see burstWindow): a brute-force
//     burst is listed within seconds, a single mistyped login stays at a
//     quarter of the threshold, four logins spread over hours do not list.
//   - fwlogs_small_port_scan 2, fwlogs_big_port_scan 4: the detector
//     already needs 5 (25) distinct targets within its window, and emits
//     each at most once per window, so a sustained scanner (small + big =
//     6 points every window) is listed in its second window, while one
//     burst is not.
//   - haas_logged 5, haas_logged_active 8: an attacker that logged into
//     the SSH honeypot, and worse, ran commands, is the strongest evidence
//     there is; two such sessions within a minute list (their 10 points
//     reach the threshold within the burst tolerance), one alone does not.
//   - custom types 2.5 (CustomWeight), as a login: a sensor registered at
//     run time reports failed logins more often than anything else.
//   - HalfLife 12 h: evidence from a day ago counts a quarter; attack
//     campaigns last hours to days, and a day-old signal should not keep
//     anyone listed for long.
//   - Exit 5 (half the entry): hysteresis, so an intermittent attacker
//     whose score wavers around the threshold does not flap on and off the
//     list (list churn costs every client a delta). A key listed by four
//     logins (10 points) stays 12 hours without further events, by six
//     (15 points) about 19 hours.
//   - MinDuration 6 h, doubling per remembered offence, MaxDuration 30
//     days: a first offence is short, a returning one much longer, as
//     fail2ban's bantime.increment and CrowdSec's duration_expr do.
//   - MaxAge 7 days: a listing must not outlive its evidence. Listed
//     attackers keep reaching the honeypots (redirected traffic bypasses
//     DynFW blocking), so an active one keeps its listing.
//   - OffenceMemory 30 days: escalation is for attackers that come back
//     within weeks, not for an address recycled months later.
//   - Forget 48 h: four half-lives; a quiet unlisted key's score is then
//     a sixteenth of what it was, and it is dropped once also below 1% of
//     the threshold and past its offence memory. Memory holds recent
//     activity only.
//   - IPv6Prefix 0 (single addresses): the published list stays readable
//     by every client; clients can widen to /64 themselves. Set 64 on a
//     server that wants to score and list whole /64s.
//   - ProbeCap 1 (no cap): a single-honeypot deployment must work. A
//     network of many probes should set 0.6, so that one probe reaches at
//     most 6 points and a listing needs two independent sensors, as NERD's
//     source diversity does.
//   - History 8 listings per key, enough to see a pattern.
//
// # Performance
//
// Entries live in one pointer-free table, found through an open-addressing
// index of 8-byte slots, so a million keys cost the garbage collector
// nothing and a lookup one cache miss before the entry's; Observe on a
// known key allocates nothing. Deadlines (ends of listings, expiry of
// overrides, forgetting) sit in one heap with at most one live item per
// key; events only move deadlines later, so they never touch the heap, and
// Tick only looks at what is due.
package scoring
