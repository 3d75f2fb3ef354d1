package stats

import (
	"fmt"
	"time"
)

// Fetch is a Request resolved against the catalogue, once: its resource,
// its period and its cache key. Resolve makes one; the engine, the store
// queries and the view take it from there.
type Fetch struct {
	Request
	Resource *Resource
	Period   Period
	key      string
}

// Resolve checks a request against the catalogue and resolves its name and
// period. Its errors are ErrUnknownResource, ErrBadPeriod and ErrBadParam.
func Resolve(req Request) (Fetch, error) {
	res := Catalog[req.Name]
	if res == nil {
		return Fetch{}, fmt.Errorf("%w %q", ErrUnknownResource, req.Name)
	}
	p, ok := LookupPeriod(req.Period)
	if !ok {
		return Fetch{}, fmt.Errorf("%w: %q", ErrBadPeriod, req.Period)
	}
	return res.Fetch(req, p)
}

// Fetch makes a fetch of this resource for period p (which req.Period
// names), for a caller that resolved both already; it checks the
// request's parameters (ErrBadParam).
func (res *Resource) Fetch(req Request, p Period) (Fetch, error) {
	switch res.Param {
	case NeedsIP:
		if !req.IP.IsValid() {
			return Fetch{}, fmt.Errorf("%w: %s needs an IP address", ErrBadParam, res.Name)
		}
	case NeedsPassword:
		if req.Password == "" {
			return Fetch{}, fmt.Errorf("%w: %s needs a password", ErrBadParam, res.Name)
		}
		if len(req.Password) > MaxPasswordLen {
			return Fetch{}, fmt.Errorf("%w: password longer than %d bytes", ErrBadParam, MaxPasswordLen)
		}
	}
	req.Name, req.Period = res.Name, p.Name
	return Fetch{Request: req, Resource: res, Period: p, key: req.keyOf(res)}, nil
}

// Key identifies the fetch in caches (parameters hashed).
func (f Fetch) Key() string { return f.key }

// Result is a computed resource: typed rows, of the field its resource's
// Shape names. The view renders them; the API writes them as the
// reference's JSON and as CSV.
type Result struct {
	Name     string
	Resource *Resource
	Period   Period
	// Computed is when it was computed; it is fresh until Computed + the
	// period's TTL.
	Computed time.Time

	// NoDevices is set on a NeedsDevices resource asked without device
	// tokens: it has no rows, and the reference answered a shape of its
	// own ([] for a graph, {"data": []} for a multi-line graph).
	NoDevices bool
	// Graph: one point per bucket.
	Graph []GraphPoint
	// Multi: the top groups, counted per bucket.
	Multi TopSeries
	// List: the top groups by count, descending.
	List []ListRow
	// Countries: every known country's count.
	Countries map[string]int64
	// Seen: when the address was seen; nil when it was not.
	Seen *SeenData
}

// GraphPoint is one bucket of a Graph.
type GraphPoint struct {
	Bucket string // the label of the bucket's end (Period.BucketLabel)
	Count  int64
}

// TopSeries is a MultiGraph: the top groups' labels (in the order of
// the top list, by value, then key) and their counts per bucket:
// Counts[i][j] is label j's count in bucket i.
type TopSeries struct {
	Labels  []string
	Buckets []string
	Counts  [][]int64
}

// ListRow is an item of a List: the values of the resource's Fields, in
// their order, and its count.
type ListRow struct {
	Fields []string
	Count  int64
}

// SeenData is a Seen resource: when the address was first and last seen
// in the window, to the resolution of the store's buckets.
type SeenData struct {
	First time.Time
	Last  time.Time
}
