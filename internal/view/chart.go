package view

import (
	"html/template"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Charts are drawn on the server as inline SVG, so that pages need no
// script and no chart library. The SVG is built here rather than in a
// template because it is mostly arithmetic; every piece of text that comes
// from data goes through svgText, which escapes it and removes what XML
// cannot hold, so the result is both safe HTML and well-formed XML. That is
// the only reason the result may be typed template.HTML.

// Series colours, chosen for contrast on white; style.css overrides them
// (classes s0…s6) with lighter tones in dark mode. Seven, because
// multi-line graphs show at most seven groups (sentinel-view.md §2).
var seriesColours = [7]string{"#0b6fb8", "#d55e00", "#00896b", "#b8457f", "#8a6d00", "#6a51a3", "#555555"}

type series struct {
	Label  string
	Values []int64
}

const (
	chartW, chartH                 = 800, 260
	padL, padR, padT, padB float64 = 56, 14, 12, 40
	maxXLabels                     = 6
)

// lineChart draws one or more series over the same buckets. A chart with
// one series gets point markers; every bucket has an invisible band whose
// <title> is the tooltip listing each series' value.
func lineChart(title string, buckets []string, ss []series) template.HTML {
	var b strings.Builder
	n := len(buckets)
	var top int64
	for _, s := range ss {
		for _, v := range s.Values {
			top = max(top, v)
		}
	}
	ymax, step := niceScale(top)
	pw, ph := chartW-padL-padR, chartH-padT-padB
	x := func(i int) float64 {
		if n <= 1 {
			return padL + pw/2
		}
		return padL + pw*float64(i)/float64(n-1)
	}
	y := func(v int64) float64 { return padT + ph*(1-float64(v)/float64(ymax)) }

	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 800 260" role="img" aria-label="`)
	b.WriteString(svgText(title))
	b.WriteString(`"><title>`)
	b.WriteString(svgText(title))
	b.WriteString(`</title>`)
	// Grid and y axis.
	for v := int64(0); v <= ymax; v += step {
		yy := fmtF(y(v))
		b.WriteString(`<line class="gl" x1="` + fmtF(padL) + `" x2="` + fmtF(chartW-padR) + `" y1="` + yy + `" y2="` + yy + `" stroke="#ccc" stroke-width="1"/>`)
		b.WriteString(`<text class="axis" x="` + fmtF(padL-6) + `" y="` + fmtF(y(v)+4) + `" text-anchor="end" font-size="12" fill="#666">` + compact(v) + `</text>`)
	}
	// X labels, thinned to at most maxXLabels.
	labels := shortLabels(buckets)
	every := max(1, (n+maxXLabels-1)/maxXLabels)
	for i := 0; i < n; i += every {
		anchor := "middle"
		if n > 1 && i == 0 {
			anchor = "start"
		}
		b.WriteString(`<text class="axis" x="` + fmtF(x(i)) + `" y="` + fmtF(chartH-padB+18) + `" text-anchor="` + anchor + `" font-size="12" fill="#666">` + svgText(labels[i]) + `</text>`)
	}
	// Lines.
	for si, s := range ss {
		cls, col := "s"+strconv.Itoa(si%len(seriesColours)), seriesColours[si%len(seriesColours)]
		b.WriteString(`<polyline class="line ` + cls + `" fill="none" stroke="` + col + `" stroke-width="2" stroke-linejoin="round" points="`)
		for i := 0; i < n && i < len(s.Values); i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(fmtF(x(i)) + "," + fmtF(y(s.Values[i])))
		}
		b.WriteString(`"/>`)
		if len(ss) == 1 || n == 1 {
			for i := 0; i < n && i < len(s.Values); i++ {
				b.WriteString(`<circle class="dot ` + cls + `" cx="` + fmtF(x(i)) + `" cy="` + fmtF(y(s.Values[i])) + `" r="2.5" fill="` + col + `"/>`)
			}
		}
	}
	// Tooltip bands.
	band := pw
	if n > 1 {
		band = pw / float64(n-1)
	}
	for i := range n {
		b.WriteString(`<rect class="hit" x="` + fmtF(x(i)-band/2) + `" y="` + fmtF(padT) + `" width="` + fmtF(band) + `" height="` + fmtF(ph) + `" fill="transparent"><title>`)
		b.WriteString(svgText(buckets[i] + " UTC"))
		for _, s := range ss {
			if i < len(s.Values) {
				b.WriteString("\n" + svgText(cut(s.Label, 40)) + ": " + strconv.FormatInt(s.Values[i], 10))
			}
		}
		b.WriteString(`</title></rect>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceScale returns a round top of the y axis ≥ v and a step that divides
// it into at most five intervals.
func niceScale(v int64) (top, step int64) {
	if v <= 4 {
		return max(v, 1), 1
	}
	raw := float64(v) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if s := m * mag; s >= raw {
			step = int64(math.Ceil(s))
			break
		}
	}
	top = (v + step - 1) / step * step
	return top, step
}

// compact writes 1234567 as 1.2M.
func compact(v int64) string {
	switch {
	case v >= 1e9:
		return trimF(float64(v)/1e9) + "G"
	case v >= 1e6:
		return trimF(float64(v)/1e6) + "M"
	case v >= 1e4:
		return trimF(float64(v)/1e3) + "k"
	}
	return strconv.FormatInt(v, 10)
}

func trimF(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

func fmtF(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

// shortLabels drops what all bucket labels ("2006-01-02 15:04") share: the
// date when they are all on one day, the time when all are midnight, the
// year otherwise.
func shortLabels(buckets []string) []string {
	out := make([]string, len(buckets))
	copy(out, buckets)
	if len(buckets) == 0 {
		return out
	}
	sameDay, midnight := true, true
	for _, l := range buckets {
		if len(l) != 16 || l[10] != ' ' {
			return out
		}
		sameDay = sameDay && l[:10] == buckets[0][:10]
		midnight = midnight && l[11:] == "00:00"
	}
	for i, l := range buckets {
		switch {
		case sameDay:
			out[i] = l[11:]
		case midnight:
			out[i] = l[5:10]
		default:
			out[i] = l[5:]
		}
	}
	return out
}

// svgText escapes s for HTML and XML alike and replaces what XML 1.0
// cannot contain (invalid UTF-8, control characters) with U+FFFD.
func svgText(s string) string {
	return template.HTMLEscapeString(xmlSafe(s))
}

func xmlSafe(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || r == 0xFFFE || r == 0xFFFF {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || r == 0xFFFE || r == 0xFFFF {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// cut shortens s to n runes, ending it with "…" when it was longer.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
