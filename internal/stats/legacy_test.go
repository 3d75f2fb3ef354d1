package stats

import "fmt"

// MultiGraphData is the reference's JSON shape of a MultiGraph, as the
// tests written before the typed rows read it.
type MultiGraphData struct {
	Labels []string
	YKeys  []int
	Data   []map[string]any
}

// data is a result in the generic shapes the tests written before the
// typed rows compare: []GraphPoint, MultiGraphData, []map[string]any
// (counts int64), map[string]int64, SeenData or nil, and []any{} for a
// NeedsDevices resource asked without devices.
func (r Result) data() any {
	switch r.Resource.Shape {
	case Graph:
		if r.NoDevices {
			return []any{}
		}
		return r.Graph
	case MultiGraph:
		if r.NoDevices {
			return map[string]any{"data": []any{}}
		}
		m := MultiGraphData{Labels: r.Multi.Labels, YKeys: []int{}, Data: []map[string]any{}}
		if m.Labels == nil {
			m.Labels = []string{}
		}
		for i := range m.Labels {
			m.YKeys = append(m.YKeys, i)
		}
		for i, b := range r.Multi.Buckets {
			item := map[string]any{"bucket": b}
			for j, n := range r.Multi.Counts[i] {
				item[fmt.Sprint(j)] = n
			}
			m.Data = append(m.Data, item)
		}
		return m
	case List:
		out := make([]map[string]any, 0, len(r.List))
		for _, row := range r.List {
			item := map[string]any{"count": row.Count}
			for i, f := range r.Resource.Fields {
				item[f] = row.Fields[i]
			}
			out = append(out, item)
		}
		return out
	case Map:
		return r.Countries
	case Seen:
		if r.Seen == nil {
			return nil
		}
		return *r.Seen
	}
	return nil
}
