package view

import (
	"cmp"
	"slices"

	"github.com/dynfw/sentinel/internal/stats"
)

// multiSeries turns a MultiGraph into series ordered by total descending,
// then label: the reference's order came from a Python set and changed
// from one computation to the next, and so did the colours.
func multiSeries(g stats.TopSeries) (buckets []string, ss []series) {
	buckets = g.Buckets
	totals := make([]int64, len(g.Labels))
	for i, l := range g.Labels {
		s := series{Label: l, Values: make([]int64, len(g.Buckets))}
		for j := range g.Buckets {
			s.Values[j] = g.Counts[j][i]
			totals[i] += s.Values[j]
		}
		ss = append(ss, s)
	}
	idx := make([]int, len(ss))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if c := cmp.Compare(totals[b], totals[a]); c != 0 {
			return c
		}
		return cmp.Compare(ss[a].Label, ss[b].Label)
	})
	sorted := make([]series, len(ss))
	for i, j := range idx {
		sorted[i] = ss[j]
	}
	return buckets, sorted
}

type mapRow struct {
	Code  string
	Count int64
}

// mapRows is a Map sorted by value descending, then code.
func mapRows(m map[string]int64) []mapRow {
	out := make([]mapRow, 0, len(m))
	for k, v := range m {
		out = append(out, mapRow{k, v})
	}
	slices.SortFunc(out, func(a, b mapRow) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Code, b.Code)
	})
	return out
}
