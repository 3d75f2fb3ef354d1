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

// countryName returns the English name of an ISO code, or "" if unknown.
func (m *worldMap) countryName(code string) string { return m.names[strings.ToUpper(code)] }

// Map colours: the reference's scale from #C8EEFF to #0071A4, on a
// logarithmic axis because attack counts span orders of magnitude (one
// country usually dwarfs the others).
var (
	mapLow  = [3]float64{0xC8, 0xEE, 0xFF}
	mapHigh = [3]float64{0x00, 0x71, 0xA4}
)

func mapColour(v, top int64) string {
	t := 1.0
	if top > 1 {
		t = math.Log1p(float64(v)) / math.Log1p(float64(top))
	}
	var c [3]int
	for i := range c {
		c[i] = int(math.Round(mapLow[i] + (mapHigh[i]-mapLow[i])*t))
	}
	return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])
}

// render draws the map with each country filled by its value; unit names
// the value in the tooltips ("incidents", "attackers").
func (m *worldMap) render(title, unit string, values map[string]int64) template.HTML {
	var top int64
	for _, v := range values {
		top = max(top, v)
	}
	var b strings.Builder
	b.Grow(200 << 10)
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" class="map" viewBox="` + m.viewBox + `" role="img" aria-label="` + svgText(title) + `"><title>` + svgText(title) + `</title>`)
	for _, c := range m.countries {
		v, ok := values[c.code]
		if ok && v > 0 {
			b.WriteString(`<path d="` + c.d + `" data-cc="` + c.code + `" fill="` + mapColour(v, top) + `" class="c"><title>`)
			b.WriteString(svgText(c.name) + ": " + strconv.FormatInt(v, 10) + " " + svgText(unit))
		} else {
			b.WriteString(`<path d="` + c.d + `" data-cc="` + c.code + `" fill="#dde3e8" class="c nd"><title>`)
			b.WriteString(svgText(c.name) + ": 0")
		}
		b.WriteString(`</title></path>`)
	}
	// Legend: five steps of the scale with their values.
	if top > 0 {
		for i := range 5 {
			v := int64(math.Round(math.Expm1(math.Log1p(float64(top)) * float64(i+1) / 5)))
			x := 20 + i*46
			b.WriteString(`<rect x="` + strconv.Itoa(x) + `" y="600" width="44" height="12" fill="` + mapColour(v, top) + `"/>`)
			b.WriteString(`<text class="axis" x="` + strconv.Itoa(x+22) + `" y="630" font-size="12" text-anchor="middle" fill="#666">≤` + compact(v) + `</text>`)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
