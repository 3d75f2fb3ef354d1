package stats

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"

	"github.com/dynfw/sentinel/internal/store"
)

// Shape is the form of a resource: which typed rows of Result it fills,
// and the JSON shape the API writes them in (sentinel-view.md §2).
type Shape int

// Shapes.
const (
	// Graph: [{"bucket": "2025-01-13 12:15", "count": 42}, ...], one item
	// per bucket, empty buckets 0; the label is the bucket's end.
	Graph Shape = iota
	// MultiGraph: {"labels": [g0, g1, ...], "ykeys": [0, 1, ...], "data":
	// [{"bucket": ..., "0": c0, "1": c1, ...}]}: the top groups over the
	// window, counted per bucket.
	MultiGraph
	// List: [{<key fields>, "count": n}, ...], by count descending.
	List
	// Map: {"CN": 12, ...}: every country.
	Map
	// Seen: {"first": t0, "last": t1}, the start of the first and the end
	// of the last store bucket (of the period's precision, a minute for
	// raw rows) with a row in the window; null when there is none.
	Seen
)

// Param is what a resource needs besides a period.
type Param int

// Params.
const (
	NoParam Param = iota
	NeedsIP
	NeedsPassword
	NeedsDevices // the session's device tokens
)

// Resource describes one named resource.
type Resource struct {
	Name    string
	Table   store.Table
	Shape   Shape
	Measure store.Measure
	// GroupBy of lists, maps and multi-line graphs; Fields names the JSON
	// fields of list items, in the same order.
	GroupBy []store.Dim
	Fields  []string
	Limit   int
	Param   Param
	// Precached resources are kept fresh by the scheduler for every
	// period; the others are computed on demand (their parameters vary).
	Precached bool
}

// Catalog is every resource of the reference view, by name.
var Catalog = map[string]*Resource{}

func add(r Resource) {
	if r.Param == NoParam {
		r.Precached = true
	}
	Catalog[r.Name] = &r
}

func init() {
	inc, pw, ports := store.Incidents, store.Passwords, store.Ports
	count, dip := store.Count, store.DistinctIPs
	D := func(d ...store.Dim) []store.Dim { return d }
	F := func(f ...string) []string { return f }
	add(Resource{Name: "all_incidents_graph", Table: inc, Shape: Graph, Measure: count})
	add(Resource{Name: "all_attackers_graph", Table: inc, Shape: Graph, Measure: dip})
	add(Resource{Name: "selected_attacker_incidents_graph", Table: inc, Shape: Graph, Measure: count, Param: NeedsIP})
	add(Resource{Name: "my_all_incidents_graph", Table: inc, Shape: Graph, Measure: count, Param: NeedsDevices})
	add(Resource{Name: "top_incident_types_by_incidents_list", Table: inc, Shape: List, Measure: count, GroupBy: D(store.DimTrap, store.DimAction), Fields: F("source", "action"), Limit: 15})
	add(Resource{Name: "top_traps_by_incidents_graph", Table: inc, Shape: MultiGraph, Measure: count, GroupBy: D(store.DimTrap), Limit: 7})
	add(Resource{Name: "top_actions_by_incidents_graph", Table: inc, Shape: MultiGraph, Measure: count, GroupBy: D(store.DimAction), Limit: 7})
	add(Resource{Name: "top_attackers_by_incidents_list_long", Table: inc, Shape: List, Measure: count, GroupBy: D(store.DimIP), Fields: F("ip"), Limit: 30})
	add(Resource{Name: "top_countries_by_incidents_list", Table: inc, Shape: List, Measure: count, GroupBy: D(store.DimCountry), Fields: F("country"), Limit: 15})
	add(Resource{Name: "top_countries_by_incidents_list_long", Table: inc, Shape: List, Measure: count, GroupBy: D(store.DimCountry), Fields: F("country"), Limit: 30})
	add(Resource{Name: "top_countries_by_attackers_list", Table: inc, Shape: List, Measure: dip, GroupBy: D(store.DimCountry), Fields: F("country"), Limit: 15})
	add(Resource{Name: "top_countries_by_attackers_list_long", Table: inc, Shape: List, Measure: dip, GroupBy: D(store.DimCountry), Fields: F("country"), Limit: 30})
	add(Resource{Name: "all_countries_by_incidents_list", Table: inc, Shape: Map, Measure: count, GroupBy: D(store.DimCountry)})
	add(Resource{Name: "all_countries_by_attackers_list", Table: inc, Shape: Map, Measure: dip, GroupBy: D(store.DimCountry)})
	add(Resource{Name: "top_countries_by_attackers_graph", Table: inc, Shape: MultiGraph, Measure: dip, GroupBy: D(store.DimCountry), Limit: 7})
	add(Resource{Name: "top_countries_by_incidents_graph", Table: inc, Shape: MultiGraph, Measure: count, GroupBy: D(store.DimCountry), Limit: 7})
	add(Resource{Name: "my_top_countries_by_incidents_graph", Table: inc, Shape: MultiGraph, Measure: count, GroupBy: D(store.DimCountry), Limit: 7, Param: NeedsDevices})
	add(Resource{Name: "my_top_traps_by_incidents_graph", Table: inc, Shape: MultiGraph, Measure: count, GroupBy: D(store.DimTrap), Limit: 7, Param: NeedsDevices})
	add(Resource{Name: "all_ports_by_scans_graph", Table: ports, Shape: Graph, Measure: count})
	add(Resource{Name: "top_ports_by_scans_list_long", Table: ports, Shape: List, Measure: count, GroupBy: D(store.DimProtocol, store.DimPort), Fields: F("port"), Limit: 30})
	add(Resource{Name: "top_ports_by_scans_graph", Table: ports, Shape: MultiGraph, Measure: count, GroupBy: D(store.DimProtocol, store.DimPort), Limit: 7})
	add(Resource{Name: "top_passwords_by_usages_list", Table: pw, Shape: List, Measure: count, GroupBy: D(store.DimPassword), Fields: F("password"), Limit: 15})
	add(Resource{Name: "top_passwords_by_usages_list_long", Table: pw, Shape: List, Measure: count, GroupBy: D(store.DimPassword), Fields: F("password"), Limit: 30})
	add(Resource{Name: "top_usernames_by_usages_list", Table: pw, Shape: List, Measure: count, GroupBy: D(store.DimUsername), Fields: F("username"), Limit: 15})
	add(Resource{Name: "top_usernames_by_usages_list_long", Table: pw, Shape: List, Measure: count, GroupBy: D(store.DimUsername), Fields: F("username"), Limit: 30})
	add(Resource{Name: "top_combinations_by_usages_list_long", Table: pw, Shape: List, Measure: count, GroupBy: D(store.DimUsername, store.DimPassword), Fields: F("username", "password"), Limit: 30})
	add(Resource{Name: "top_passwords_by_usages_graph", Table: pw, Shape: MultiGraph, Measure: count, GroupBy: D(store.DimPassword), Limit: 7})
	add(Resource{Name: "selected_password_by_usages_graph", Table: pw, Shape: Graph, Measure: count, Param: NeedsPassword})
	add(Resource{Name: "logins_of_password_by_usages_list", Table: pw, Shape: List, Measure: count, GroupBy: D(store.DimUsername), Fields: F("username"), Limit: 30, Param: NeedsPassword})
	// The detail pages: what one address did, who tried one password.
	add(Resource{Name: "selected_attacker_seen", Table: inc, Shape: Seen, Measure: count, Param: NeedsIP})
	add(Resource{Name: "selected_attacker_traps_list", Table: inc, Shape: List, Measure: count, GroupBy: D(store.DimTrap, store.DimAction), Fields: F("source", "action"), Limit: 30, Param: NeedsIP})
	add(Resource{Name: "selected_attacker_passwords_list", Table: pw, Shape: List, Measure: count, GroupBy: D(store.DimPassword), Fields: F("password"), Limit: 30, Param: NeedsIP})
	add(Resource{Name: "selected_attacker_usernames_list", Table: pw, Shape: List, Measure: count, GroupBy: D(store.DimUsername), Fields: F("username"), Limit: 30, Param: NeedsIP})
	add(Resource{Name: "selected_attacker_ports_list", Table: ports, Shape: List, Measure: count, GroupBy: D(store.DimProtocol, store.DimPort), Fields: F("port"), Limit: 30, Param: NeedsIP})
	add(Resource{Name: "attackers_of_password_list", Table: pw, Shape: List, Measure: count, GroupBy: D(store.DimIP, store.DimCountry), Fields: F("ip", "country"), Limit: 30, Param: NeedsPassword})
	add(Resource{Name: "countries_of_password_list", Table: pw, Shape: List, Measure: count, GroupBy: D(store.DimCountry), Fields: F("country"), Limit: 30, Param: NeedsPassword})
}

// Names returns every resource name, sorted.
func Names() []string {
	out := make([]string, 0, len(Catalog))
	for n := range Catalog {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Request asks for one resource.
type Request struct {
	Name   string
	Period string
	// IP for NeedsIP, Password for NeedsPassword.
	IP       netip.Addr
	Password string
	// DeviceTokens for NeedsDevices: the tokens the visitor's session
	// holds. Never taken from a URL.
	DeviceTokens []string
}

// key identifies a request in caches. Parameters are hashed: device tokens
// are secrets, and an attacker-typed password must not shape a cache key.
func (r Request) key() string {
	return r.keyOf(Catalog[r.Name])
}

func (r Request) keyOf(res *Resource) string {
	var b strings.Builder
	b.WriteString(r.Name)
	b.WriteByte(';')
	b.WriteString(r.Period)
	if res == nil {
		return b.String()
	}
	h := sha256.New()
	switch res.Param {
	case NeedsIP:
		h.Write([]byte(r.IP.String()))
	case NeedsPassword:
		h.Write([]byte(r.Password))
	case NeedsDevices:
		toks := slices.Clone(r.DeviceTokens)
		slices.Sort(toks)
		for _, t := range toks {
			h.Write([]byte(t))
			h.Write([]byte{0})
		}
	default:
		return b.String()
	}
	b.WriteByte(';')
	b.WriteString(hex.EncodeToString(h.Sum(nil)[:12]))
	return b.String()
}
