package control

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dynfw/sentinel/internal/scorecard"
)

// How the command line shows the answers to a person; --json prints the
// answers themselves.

// timeLayout is how times are shown: UTC, to the second.
const timeLayout = "2006-01-02 15:04:05 UTC"

func showTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

// state names a decision: listed by its score, blocked or unblocked by
// hand.
func (d Decision) state() string {
	switch {
	case d.Override != nil && d.Override.Kind == "block":
		return "blocked"
	case d.Override != nil && d.Override.Kind == "unblock":
		return "unblocked"
	case d.Listed:
		return "listed"
	}
	return "-"
}

// WriteList shows the decisions as a table, then a count.
func WriteList(w io.Writer, l List) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(l.Decisions) > 0 {
		fmt.Fprintln(tw, "KEY\tSTATE\tSINCE\tUNTIL\tSCORE\tREASON")
	}
	for _, d := range l.Decisions {
		since, until, reason := d.Since, d.EarliestEnd, d.Reason
		if o := d.Override; o != nil {
			until, reason = o.Until, o.Reason
			if o.Kind == "unblock" {
				since = o.Set
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%s\n", d.Key, d.state(), showTime(since), showTime(until), d.Score, oneLine(reason))
	}
	overrides := 0
	for _, d := range l.Decisions {
		if d.Override != nil {
			overrides++
		}
	}
	fmt.Fprintf(tw, "%d listed (DynFW version %d, serial %d), %d manual overrides\n", l.Listed, l.Version, l.Serial, overrides)
	return tw.Flush()
}

// WriteExplanation shows what the scorer knows of a key.
func WriteExplanation(w io.Writer, ex *scorecard.Explanation) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "not listed"
	switch {
	case ex.Listed:
		head = "listed since " + showTime(ex.Since) + ": " + oneLine(ex.Reason)
	case ex.NeverListed != "":
		head = "never listed (" + ex.NeverListed + ")"
	}
	fmt.Fprintf(tw, "%s: %s\n", ex.Key, head)
	fmt.Fprintf(tw, "  score\t%.2f (entry threshold %g, exit threshold %g)\n", ex.Score, ex.Entry, ex.Exit)
	if ex.Listed && !ex.EarliestEnd.IsZero() {
		fmt.Fprintf(tw, "  earliest end\t%s\n", showTime(ex.EarliestEnd))
	}
	if o := ex.Override; o != nil {
		fmt.Fprintf(tw, "  override\t%s until %s (set %s): %s\n", o.Kind, showTime(o.Until), showTime(o.Set), oneLine(o.Reason))
	}
	if len(ex.Counts) > 0 {
		names := make([]string, 0, len(ex.Counts))
		for n := range ex.Counts {
			names = append(names, n)
		}
		slices.SortFunc(names, func(a, b string) int {
			if ex.Counts[a] != ex.Counts[b] {
				return int(ex.Counts[b]) - int(ex.Counts[a])
			}
			return strings.Compare(a, b)
		})
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s %d", n, ex.Counts[n])
		}
		fmt.Fprintf(tw, "  events\t%s\n", strings.Join(parts, ", "))
	}
	if len(ex.Tags) > 0 {
		fmt.Fprintf(tw, "  tags\t%s\n", strings.Join(ex.Tags, ", "))
	}
	if !ex.FirstSeen.IsZero() {
		fmt.Fprintf(tw, "  seen\t%s to %s\n", showTime(ex.FirstSeen), showTime(ex.LastSeen))
	}
	probes := fmt.Sprint(ex.Probes)
	if ex.ProbesAtLeast {
		probes = "at least " + probes
	}
	fmt.Fprintf(tw, "  probes\t%s\n", probes)
	fmt.Fprintf(tw, "  offences\t%d\n", ex.Offences)
	for i, h := range ex.History {
		label := ""
		if i == 0 {
			label = "history"
		}
		end := "now"
		if !h.End.IsZero() {
			end = showTime(h.End)
			if h.EndReason != "" {
				end += " (" + oneLine(h.EndReason) + ")"
			}
		}
		fmt.Fprintf(tw, "  %s\t%s to %s: %s\n", label, showTime(h.Start), end, oneLine(h.Reason))
	}
	return tw.Flush()
}

// WriteProbes shows the probes as a table.
func WriteProbes(w io.Writer, ps []Probe) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROBE\tSERIAL\tTOKEN\tEVENTS\tLAST EVENT")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", oneLine(p.Name), dash(p.Serial), dash(p.Token), p.Events, showTime(p.LastSeen))
	}
	fmt.Fprintf(tw, "%d probes; events are counted since the server started\n", len(ps))
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return oneLine(s)
}

// oneLine keeps a text that an administrator or a probe typed on its
// line: control characters are shown as escapes.
func oneLine(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0 {
		return s
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}
