package view

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// The world map's outlines come from the npm package @svg-maps/world
// 2.0.0 by Victor Cazanave (CC BY 4.0), simplified by ./mapgen into
// static/world.tsv (one country per line: id, name, path); the licence is
// static/world-LICENSE.md and the footer credits it. Ids are lowercase ISO
// 3166-1 alpha-2 codes, except the US minor islands "um-xx", which all
// take the value of UM.

// MapAttribution credits the map's outlines; the footer shows it.
const MapAttribution = "Map outlines: @svg-maps/world by Victor Cazanave, CC BY 4.0 (simplified)."

type country struct {
	id, code, name, d string
}

type worldMap struct {
	viewBox   string
	countries []country
	names     map[string]string // upper-case code → name
}

func loadWorld() (*worldMap, error) {
	src, err := staticFS.ReadFile("static/world.tsv")
	if err != nil {
		return nil, err
	}
	m := &worldMap{names: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# viewBox\t"); ok {
			m.viewBox = rest
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("view: bad world.tsv line %.20q", line)
		}
		code, _, _ := strings.Cut(f[0], "-")
		code = strings.ToUpper(code)
		m.countries = append(m.countries, country{id: f[0], code: code, name: f[1], d: f[2]})
		if _, ok := m.names[code]; !ok || !strings.Contains(f[0], "-") {
			m.names[code] = f[1]
		}
	}
	m.names["UM"] = "United States Minor Outlying Islands"
	if m.viewBox == "" || len(m.countries) < 200 {
		return nil, errors.New("view: world.tsv is incomplete")
	}
	return m, nil
}

// countryName returns the name pages show for an ISO code (countryLabel,
// else the map's own name for the few territories the country table
// lacks), or "" if unknown.
func (m *worldMap) countryName(code string) string {
	if l := countryLabel(code); l != strings.ToUpper(code) && l != "Unknown" {
		return l
	}
	return m.names[strings.ToUpper(code)]
}

// The map's colours are classes, not a continuous scale: a legend of a
// few ranges ("6–20 incidents") is read at a glance, and each class is a
// CSS variable (--m1…--m6 in style.css), so that the dark theme has its own
// scale in which, as in the light one, the strongest colour (the most
// contrast with the page) means the most. The fill attributes are the
// light scale, for SVG shown without the stylesheet.
//
// Values span orders of magnitude (one country usually dwarfs the
// others), so the classes' bounds are spaced on a logarithmic axis and
// rounded to one significant digit.
const mapSteps = 6

// mapLight is the light theme's scale, from the reference's #C8EEFF to
// #0071A4; style.css holds the same colours.
var mapLight = [mapSteps]string{"#c8eeff", "#a0d5ed", "#78bcdb", "#50a3c8", "#288ab6", "#0071a4"}

// mapBins returns the upper bounds of the colour classes for values from
// 1 to top: strictly increasing, the last one top. A small top has fewer
// classes (top 3: 1, 2, 3) rather than empty ones.
func mapBins(top int64) []int64 {
	if top < 1 {
		return nil
	}
	var out []int64
	for i := 1; i <= mapSteps; i++ {
		b := top
		if i < mapSteps {
			b = roundSig(math.Expm1(math.Log1p(float64(top)) * float64(i) / mapSteps))
		}
		if b < 1 || b > top || (len(out) > 0 && b <= out[len(out)-1]) {
			continue
		}
		out = append(out, b)
	}
	return out
}

// roundSig rounds f to an integer with one significant digit from 10 on
// (108 → 100, 2508 → 3000).
func roundSig(f float64) int64 {
	if f < 10 {
		return int64(math.Round(f))
	}
	mag := math.Pow(10, math.Floor(math.Log10(f)))
	return int64(math.Round(f/mag) * mag)
}

// mapLevel is the colour class (1…mapSteps) of v among bins: the classes
// are spread over the whole scale, so the top class is always the
// strongest colour.
func mapLevel(v int64, bins []int64) int {
	for j, b := range bins {
		if v <= b {
			return (j + 1) * mapSteps / len(bins)
		}
	}
	return mapSteps
}

// mapLegend is the legend of a map: what is counted and the classes'
// ranges.
type mapLegend struct {
	Caption, Unit string
	Items         []legendItem
}

func newMapLegend(unit string, bins []int64) *mapLegend {
	l := &mapLegend{Caption: capitalise(unit) + " per country", Unit: unit}
	lo := int64(1)
	for j, b := range bins {
		text := thousands(b)
		if b > lo {
			text = thousands(lo) + "–" + thousands(b)
		}
		l.Items = append(l.Items, legendItem{Class: "q" + strconv.Itoa((j+1)*mapSteps/len(bins)), cell: cell{Text: text}})
		lo = b + 1
	}
	return l
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// render draws the map with each country filled by its value's class;
// unit names the value in the tooltips and the legend ("incidents").
func (m *worldMap) render(title, unit string, values map[string]int64) (template.HTML, *mapLegend) {
	var top int64
	for _, v := range values {
		top = max(top, v)
	}
	bins := mapBins(top)
	var b strings.Builder
	b.Grow(200 << 10)
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" class="map" viewBox="` + m.viewBox + `" role="img" aria-label="` + svgText(title) + `"><title>` + svgText(title) + `</title>`)
	for _, c := range m.countries {
		name := c.name
		if n := m.countryName(c.code); n != "" && !strings.Contains(c.id, "-") {
			name = n
		}
		v, ok := values[c.code]
		if ok && v > 0 {
			lv := mapLevel(v, bins)
			b.WriteString(`<path d="` + c.d + `" data-cc="` + c.code + `" data-v="` + strconv.FormatInt(v, 10) + `" fill="` + mapLight[lv-1] + `" class="c q` + strconv.Itoa(lv) + `"><title>`)
			b.WriteString(svgText(name) + ": " + thousands(v) + " " + svgText(unit))
		} else {
			b.WriteString(`<path d="` + c.d + `" data-cc="` + c.code + `" fill="#dde3e8" class="c nd"><title>`)
			b.WriteString(svgText(name) + ": none")
		}
		b.WriteString(`</title></path>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), newMapLegend(unit, bins)
}
