package view

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
)

// spec names a resource shown on a page and how to label it.
type spec struct {
	Name, Title string
	// Unit names the counted thing: the count column's heading and the
	// map's tooltips.
	Unit string
}

// widget is one rendered resource. State is "ok", "empty", "computing",
// "error" or "limited" (the client's budget of on-demand computations is
// spent: the page answers 429); only an "ok" widget has content.
type widget struct {
	Name, Title string
	Kind        string // "graph", "map", "table"
	State       string
	SVG         template.HTML // built by lineChart or worldMap.render
	Legend      []legendItem
	MapLegend   *mapLegend
	// Note is the caption under a graph: what one point counts.
	Note string
	Head []string
	Rows [][]cell
	CSV  string
	// retry is how long a "limited" widget's client must wait.
	retry time.Duration
}

type legendItem struct {
	Class string
	cell
}

// cell is a table cell or a legend entry: Text shown, Note a small
// caption after it (a country's code, a port's service), Title a tooltip
// (the uncut value, a trap's internal name), Href a link. All are escaped
// by html/template.
type cell struct {
	Text, Note, Title, Href string
	Num                     bool
}

// cutLen is the length attacker-chosen text (passwords, usernames) is cut
// to in tables, as in the reference; labels are never cut.
const cutLen = 14

func textCell(s string) cell {
	s = xmlSafe(s)
	if c := cut(s, cutLen); c != s {
		return cell{Text: c, Title: s}
	}
	return cell{Text: s}
}

// fieldTitles head the columns of lists; fieldDims say how their values
// are labelled (dimCell).
var (
	fieldTitles = map[string]string{
		"country": "Country", "ip": "Address", "password": "Password", "username": "Username",
		"source": "Trap", "action": "Action", "port": "Port",
	}
	fieldDims = map[string]store.Dim{
		"country": store.DimCountry, "source": store.DimTrap, "action": store.DimAction, "port": store.DimPort,
	}
)

// fetchAll computes the widgets concurrently, each waiting at most
// Options.PageWait, so that a page is never held by a slow resource.
//
// The resources computed on demand (those with a parameter: one
// attacker, one password, a visitor's devices) are charged to the
// client's on-demand budget first, one token each: a page costs what it
// makes the store compute. When the budget does not cover them, nothing is
// computed and every widget is "limited", which render turns into a 429.
func (v *View) fetchAll(ctx context.Context, period string, base stats.Request, specs []spec) []widget {
	out := make([]widget, len(specs))
	cost := 0
	for _, sp := range specs {
		if res := stats.Catalog[sp.Name]; res != nil && res.Param != stats.NoParam {
			cost++
		}
	}
	if ok, wait := v.charge(ctx, cost); !ok {
		for i, sp := range specs {
			out[i] = widget{Name: sp.Name, Title: sp.Title, State: "limited", retry: wait}
		}
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, v.o.PageWait)
	defer cancel()
	var wg sync.WaitGroup
	for i, sp := range specs {
		wg.Go(func() {
			req := base
			req.Name, req.Period = sp.Name, period
			out[i] = v.fetch(ctx, req, sp)
		})
	}
	wg.Wait()
	return out
}

func (v *View) fetch(ctx context.Context, req stats.Request, sp spec) widget {
	w := widget{Name: req.Name, Title: sp.Title}
	f, err := stats.Resolve(req)
	if err != nil {
		v.log.Warn("view: resource failed", slog.String("resource", req.Name), slog.String("period", req.Period), slog.Any("err", err))
		w.State = "error"
		return w
	}
	res := f.Resource
	w.CSV = csvLink(f)
	switch res.Shape {
	case stats.Graph, stats.MultiGraph:
		w.Kind = "graph"
	case stats.Map:
		w.Kind = "map"
	default:
		w.Kind = "table"
	}
	r, err := v.o.Source.Fetch(ctx, f)
	switch {
	case err == nil:
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		w.State = "computing"
		return w
	default:
		v.log.Warn("view: resource failed", slog.String("resource", req.Name), slog.String("period", req.Period), slog.Any("err", err))
		w.State = "error"
		return w
	}
	period := f.Period
	opts := chartOpts{Bucket: period.Bucket, Now: r.Computed}
	w.State = "empty"
	switch res.Shape {
	case stats.Graph:
		pts := r.Graph
		if len(pts) == 0 {
			return w
		}
		buckets := make([]string, len(pts))
		vals := make([]int64, len(pts))
		for i, p := range pts {
			buckets[i], vals[i] = p.Bucket, p.Count
		}
		w.SVG = lineChart(sp.Title, buckets, []series{{Label: sp.Unit, Values: vals}}, opts)
		w.Note = bucketNote(sp.Unit, period.Bucket)
	case stats.MultiGraph:
		buckets, ss := multiSeries(r.Multi)
		if len(buckets) == 0 || len(ss) == 0 {
			return w
		}
		dim := store.DimPassword
		if len(res.GroupBy) > 0 {
			dim = res.GroupBy[len(res.GroupBy)-1]
		}
		for i, s := range ss {
			c := dimCell(dim, s.Label)
			w.Legend = append(w.Legend, legendItem{Class: "s" + strconv.Itoa(i%len(seriesColours)), cell: c})
			// The tooltips name the series as the legend does, with
			// attacker text uncut.
			switch {
			case dim == store.DimPassword || dim == store.DimUsername:
			case c.Note != "":
				ss[i].Label = c.Text + " (" + c.Note + ")"
			case c.Title != "":
				ss[i].Label = c.Text + " [" + c.Title + "]"
			default:
				ss[i].Label = c.Text
			}
		}
		w.SVG = lineChart(sp.Title, buckets, ss, opts)
		w.Note = bucketNote(sp.Unit, period.Bucket)
	case stats.List:
		rows := r.List
		if len(rows) == 0 {
			return w
		}
		for _, f := range res.Fields {
			w.Head = append(w.Head, fieldTitles[f])
		}
		w.Head = append(w.Head, sp.Unit)
		for _, row := range rows {
			cells := make([]cell, 0, len(res.Fields)+1)
			for i, f := range res.Fields {
				cells = append(cells, v.fieldCell(f, row.Fields[i], req.Period))
			}
			cells = append(cells, cell{Text: thousands(row.Count), Num: true})
			w.Rows = append(w.Rows, cells)
		}
	case stats.Map:
		m := r.Countries
		if len(m) == 0 {
			return w
		}
		w.SVG, w.MapLegend = v.world.render(sp.Title, sp.Unit, m)
	}
	w.State = "ok"
	return w
}

// fieldCell renders one field of a list row: labels for countries, traps,
// actions and ports, links to the details pages for addresses and
// passwords.
func (v *View) fieldCell(field, val, period string) cell {
	if d, ok := fieldDims[field]; ok {
		return dimCell(d, val)
	}
	switch field {
	case "ip":
		c := textCell(val)
		c.Href = attackerURL(val, period)
		return c
	case "password":
		c := textCell(val)
		c.Href = passwordURL(val, period)
		return c
	}
	return textCell(val)
}

func attackerURL(ip, period string) string {
	return "/attackers/details/ip/" + url.PathEscape(ip) + "?period=" + url.QueryEscape(period)
}

func passwordURL(pw, period string) string {
	return "/passwords/details/" + encodePassword(pw) + "?period=" + url.QueryEscape(period)
}

func csvLink(f stats.Fetch) string {
	req := f.Request
	q := url.Values{"name": {req.Name}, "period": {req.Period}, "format": {"csv"}}
	switch f.Resource.Param {
	case stats.NeedsIP:
		q.Set("ip", req.IP.String())
	case stats.NeedsPassword:
		q.Set("password", req.Password)
	}
	return "/api/resource?" + q.Encode()
}
