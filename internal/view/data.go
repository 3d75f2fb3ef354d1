package view

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/dynfw/sentinel/internal/stats"
)

// Conversions from stats.Result.Data to what the charts and tables need.
// They accept the documented types and, for robustness, the generic forms
// the same JSON decodes to ([]any, map[string]any, float64), and the empty
// shapes of the NeedsDevices resources.

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case uint64:
		return int64(n), true
	case uint32:
		return int64(n), true
	case float64:
		return int64(n), true
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		return i, err == nil
	}
	return 0, false
}

func asString(v any) string {
	switch s := v.(type) {
	case nil:
		return ""
	case string:
		return s
	case fmt.Stringer:
		return s.String()
	}
	return fmt.Sprint(v)
}

func graphData(d any) []stats.GraphPoint {
	switch g := d.(type) {
	case []stats.GraphPoint:
		return g
	case []any:
		out := make([]stats.GraphPoint, 0, len(g))
		for _, it := range g {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			c, _ := asInt(m["count"])
			out = append(out, stats.GraphPoint{Bucket: asString(m["bucket"]), Count: c})
		}
		return out
	}
	return nil
}

func multiData(d any) stats.MultiGraphData {
	switch g := d.(type) {
	case stats.MultiGraphData:
		return g
	case *stats.MultiGraphData:
		if g != nil {
			return *g
		}
	case map[string]any:
		var out stats.MultiGraphData
		if ls, ok := g["labels"].([]any); ok {
			for _, l := range ls {
				out.Labels = append(out.Labels, asString(l))
			}
		}
		if ds, ok := g["data"].([]any); ok {
			for _, it := range ds {
				if m, ok := it.(map[string]any); ok {
					out.Data = append(out.Data, m)
				}
			}
		}
		return out
	}
	return stats.MultiGraphData{}
}

// multiSeries turns a MultiGraph into series ordered by total descending,
// then label: the reference's order came from a Python set and changed
// from one computation to the next, and so did the colours.
func multiSeries(g stats.MultiGraphData) (buckets []string, ss []series) {
	for _, row := range g.Data {
		buckets = append(buckets, asString(row["bucket"]))
	}
	totals := make([]int64, len(g.Labels))
	for i, l := range g.Labels {
		s := series{Label: l, Values: make([]int64, len(g.Data))}
		key := strconv.Itoa(i)
		for j, row := range g.Data {
			s.Values[j], _ = asInt(row[key])
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

func listData(d any) []map[string]any {
	switch l := d.(type) {
	case []map[string]any:
		return l
	case []any:
		out := make([]map[string]any, 0, len(l))
		for _, it := range l {
			if m, ok := it.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

func mapData(d any) map[string]int64 {
	switch m := d.(type) {
	case map[string]int64:
		return m
	case map[string]any:
		out := make(map[string]int64, len(m))
		for k, v := range m {
			if n, ok := asInt(v); ok {
				out[k] = n
			}
		}
		return out
	}
	return nil
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
