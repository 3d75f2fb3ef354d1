package view

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/url"
	"strconv"
	"sync"

	"github.com/dynfw/sentinel/internal/stats"
)

// spec names a resource shown on a page and how to label it.
type spec struct {
	Name, Title string
	// Unit names the counted thing: the count column's heading and the
	// map's tooltips.
	Unit string
}

// widget is one rendered resource. State is "ok", "empty", "computing" or
// "error"; only an "ok" widget has content.
type widget struct {
	Name, Title string
	Kind        string // "graph", "map", "table"
	State       string
	SVG         template.HTML // built by lineChart or worldMap.render
	Legend      []legendItem
	Head        []string
	Rows        [][]cell
	CSV         string
}

type legendItem struct {
	Class string
	cell
}

// cell is a table cell: Text shown, Full (the uncut value or a country's
// name) in an <abbr title>, Href a link. All are escaped by html/template.
type cell struct {
	Text, Full, Href string
	Num              bool
}

// cutLen is the length table cells are cut to, as in the reference.
const cutLen = 14

func textCell(s string) cell {
	s = xmlSafe(s)
	if c := cut(s, cutLen); c != s {
		return cell{Text: c, Full: s}
	}
	return cell{Text: s}
}

var fieldTitles = map[string]string{
	"country": "Country", "ip": "Address", "password": "Password", "username": "Username",
	"source": "Trap", "action": "Action", "port": "Port",
}

// fetchAll computes the widgets concurrently, each waiting at most
// Options.PageWait, so that a page is never held by a slow resource.
func (v *View) fetchAll(ctx context.Context, period string, base stats.Request, specs []spec) []widget {
	ctx, cancel := context.WithTimeout(ctx, v.o.PageWait)
	defer cancel()
	out := make([]widget, len(specs))
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
	res := stats.Catalog[req.Name]
	w := widget{Name: req.Name, Title: sp.Title, CSV: csvLink(req)}
	switch res.Shape {
	case stats.Graph, stats.MultiGraph:
		w.Kind = "graph"
	case stats.Map:
		w.Kind = "map"
	default:
		w.Kind = "table"
	}
	r, err := v.o.Source.Resource(ctx, req)
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
	w.State = "empty"
	switch res.Shape {
	case stats.Graph:
		pts := graphData(r.Data)
		if len(pts) == 0 {
			return w
		}
		buckets := make([]string, len(pts))
		vals := make([]int64, len(pts))
		for i, p := range pts {
			buckets[i], vals[i] = p.Bucket, p.Count
		}
		w.SVG = lineChart(sp.Title, buckets, []series{{Label: sp.Unit, Values: vals}})
	case stats.MultiGraph:
		buckets, ss := multiSeries(multiData(r.Data))
		if len(buckets) == 0 || len(ss) == 0 {
			return w
		}
		for i, s := range ss {
			it := legendItem{Class: "s" + strconv.Itoa(i%len(seriesColours)), cell: textCell(s.Label)}
			if n := v.world.countryName(s.Label); n != "" && len(s.Label) == 2 {
				it.Full = n
			}
			w.Legend = append(w.Legend, it)
		}
		w.SVG = lineChart(sp.Title, buckets, ss)
	case stats.List:
		rows := listData(r.Data)
		if len(rows) == 0 {
			return w
		}
		for _, f := range res.Fields {
			w.Head = append(w.Head, fieldTitles[f])
		}
		w.Head = append(w.Head, sp.Unit)
		for _, row := range rows {
			cells := make([]cell, 0, len(res.Fields)+1)
			for _, f := range res.Fields {
				cells = append(cells, v.fieldCell(f, asString(row[f]), req.Period))
			}
			n, _ := asInt(row["count"])
			cells = append(cells, cell{Text: strconv.FormatInt(n, 10), Num: true})
			w.Rows = append(w.Rows, cells)
		}
	case stats.Map:
		m := mapData(r.Data)
		if len(m) == 0 {
			return w
		}
		w.SVG = v.world.render(sp.Title, sp.Unit, m)
	}
	w.State = "ok"
	return w
}

// fieldCell renders one field of a list row, with links to the details
// pages for addresses and passwords.
func (v *View) fieldCell(field, val, period string) cell {
	switch field {
	case "country":
		if val == "" {
			return cell{Text: "??", Full: "Unknown country"}
		}
		c := textCell(val)
		if n := v.world.countryName(val); n != "" {
			c.Full = n
		}
		return c
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

func csvLink(req stats.Request) string {
	q := url.Values{"name": {req.Name}, "period": {req.Period}, "format": {"csv"}}
	switch stats.Catalog[req.Name].Param {
	case stats.NeedsIP:
		q.Set("ip", req.IP.String())
	case stats.NeedsPassword:
		q.Set("password", req.Password)
	}
	return "/api/resource?" + q.Encode()
}
