// Package storetest is the conformance suite of store.Store: every backend
// runs it, so the backends agree with each other and with a plain Go model
// of the semantics (model.go), which computes each query from the rows the
// test inserted.
package storetest

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

// Model is what the test inserted, and computes the expected answer of a
// query by brute force.
type Model struct {
	Incidents []store.Incident
	Passwords []store.Password
	Ports     []store.Port
}

// Add records a batch.
func (m *Model) Add(b *store.Batch) {
	m.Incidents = append(m.Incidents, b.Incidents...)
	m.Passwords = append(m.Passwords, b.Passwords...)
	m.Ports = append(m.Ports, b.Ports...)
}

type mrow struct {
	t    int64
	keys map[store.Dim]string
	ip   string
	tok  string
	pw   string
}

func proto(p string) string {
	switch strings.ToUpper(p) {
	case "TCP", "UDP":
		return strings.ToUpper(p)
	}
	return "other"
}

func (m *Model) rows(t store.Table) []mrow {
	var out []mrow
	switch t {
	case store.Incidents:
		for _, in := range m.Incidents {
			ip := addrKey(in.IP)
			out = append(out, mrow{t: in.Time.Unix(), ip: ip, tok: in.Token, keys: map[store.Dim]string{
				store.DimIP: ip, store.DimCountry: in.Country, store.DimTrap: in.Trap, store.DimAction: in.Action, store.DimDevice: in.Serial}})
		}
	case store.Passwords:
		for _, p := range m.Passwords {
			ip := addrKey(p.IP)
			out = append(out, mrow{t: p.Time.Unix(), pw: p.Password, ip: ip, keys: map[store.Dim]string{
				store.DimIP: ip, store.DimCountry: p.Country,
				store.DimTrap: p.Trap, store.DimUsername: p.Username, store.DimPassword: p.Password}})
		}
	case store.Ports:
		for _, p := range m.Ports {
			ip := addrKey(p.IP)
			out = append(out, mrow{t: p.Time.Unix(), ip: ip, keys: map[store.Dim]string{
				store.DimIP: ip, store.DimPort: strconv.Itoa(int(p.Port)), store.DimProtocol: proto(p.Protocol)}})
		}
	}
	return out
}

// addrKey is the Row key of a stored address: "::" for none.
func addrKey(a netip.Addr) string {
	if !a.IsValid() {
		return "::"
	}
	return a.Unmap().String()
}

// CompareKey orders two keys of a dimension the way the stores do: ports
// numerically, addresses by their 16-byte form, text bytewise.
func CompareKey(d store.Dim, a, b string) int {
	switch d {
	case store.DimPort:
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return cmp.Compare(x, y)
	case store.DimIP:
		x, y := netip.MustParseAddr(a).As16(), netip.MustParseAddr(b).As16()
		return bytes.Compare(x[:], y[:])
	}
	return strings.Compare(a, b)
}

// Query computes q over the model.
func (m *Model) Query(q store.Query) []store.Row {
	from, to := q.From.Unix(), q.To.Unix()
	bw := int64(q.Bucket / time.Second)
	type agg struct {
		r   store.Row
		n   int64
		ips map[string]bool
	}
	groups := map[string]*agg{}
	var tokens map[string]bool
	if q.DeviceTokens != nil {
		tokens = map[string]bool{}
		for _, t := range q.DeviceTokens {
			tokens[t] = true
		}
	}
	for _, r := range m.rows(q.Table) {
		if r.t < from || r.t >= to {
			continue
		}
		if q.IP.IsValid() && r.ip != q.IP.Unmap().String() {
			continue
		}
		if q.Password != nil && r.pw != *q.Password {
			continue
		}
		if tokens != nil && !tokens[r.tok] {
			continue
		}
		keys := make([]string, len(q.GroupBy))
		skip := false
		for i, d := range q.GroupBy {
			keys[i] = r.keys[d]
			if q.NonEmpty && (d == store.DimUsername || d == store.DimPassword) && (keys[i] == "" || keys[i] == "\n") {
				skip = true
			}
		}
		if skip {
			continue
		}
		if q.Only != nil && !slices.ContainsFunc(q.Only, func(o []string) bool {
			for i, d := range q.GroupBy {
				if CompareKey(d, o[i], keys[i]) != 0 {
					return false
				}
			}
			return true
		}) {
			continue
		}
		var b time.Time
		if bw > 0 {
			b = time.Unix(from+(r.t-from)/bw*bw, 0).UTC()
		}
		id := b.String() + "\x00" + strings.Join(keys, "\x00")
		g := groups[id]
		if g == nil {
			g = &agg{r: store.Row{Bucket: b, Keys: keys}, ips: map[string]bool{}}
			if len(keys) == 0 {
				g.r.Keys = nil
			}
			groups[id] = g
		}
		g.n++
		g.ips[r.ip] = true
	}
	out := []store.Row{}
	for _, g := range groups {
		g.r.Value = g.n
		if q.Measure == store.DistinctIPs {
			g.r.Value = int64(len(g.ips))
		}
		out = append(out, g.r)
	}
	// A total (no bucket, no group) is always one row, even 0, unless a
	// filter matches nothing by construction.
	matchesNothing := (q.DeviceTokens != nil && len(q.DeviceTokens) == 0) || (q.Only != nil && len(q.Only) == 0)
	if bw == 0 && len(q.GroupBy) == 0 && len(out) == 0 && !matchesNothing {
		out = append(out, store.Row{})
	}
	cmpKeys := func(a, b store.Row) int {
		for i, d := range q.GroupBy {
			if c := CompareKey(d, a.Keys[i], b.Keys[i]); c != 0 {
				return c
			}
		}
		return 0
	}
	if bw > 0 {
		slices.SortFunc(out, func(a, b store.Row) int {
			if c := a.Bucket.Compare(b.Bucket); c != 0 {
				return c
			}
			return cmpKeys(a, b)
		})
	} else {
		slices.SortFunc(out, func(a, b store.Row) int {
			if c := cmp.Compare(b.Value, a.Value); c != 0 {
				return c
			}
			return cmpKeys(a, b)
		})
		if q.Limit > 0 && len(out) > q.Limit {
			out = out[:q.Limit]
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
