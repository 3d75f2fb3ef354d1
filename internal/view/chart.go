package view

import (
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Charts are drawn on the server as inline SVG, so that pages need no
// script and no chart library. The SVG is built here rather than in a
// template because it is mostly arithmetic; every piece of text that comes
// from data goes through svgText, which escapes it and removes what XML
// cannot hold, so the result is both safe HTML and well-formed XML. That is
// the only reason the result may be typed template.HTML.
//
// The chart has no viewBox: its user unit is the CSS pixel, so that its
// text keeps the page's size at every width (a scaled 800-unit drawing set
// 12-unit labels at 5 px on a phone). Horizontal positions are percentages
// of the width; the lines live in a nested SVG that stretches its own
// coordinates (0…1000 across) to the width, with strokes that do not
// stretch (vector-effect). The y axis labels sit on their grid lines, at
// the left, so the plot needs no margin of a fixed width.

// Series colours, chosen for contrast on white; style.css overrides them
// (classes s0…s6) with lighter tones in dark mode. Seven, because
// multi-line graphs show at most seven groups (sentinel-view.md §2).
var seriesColours = [7]string{"#0b6fb8", "#d55e00", "#00896b", "#b8457f", "#8a6d00", "#6a51a3", "#555555"}

type series struct {
	Label  string
	Values []int64
}

const (
	chartH = 240    // px
	plotT  = 18     // px above the plot
	plotB1 = 30     // px below it for one line of x labels
	plotB2 = 46     // ... for two (a time over its date)
	plotW  = 1000.0 // units across the nested plot
	// Units left of the first point (room for most of the y labels,
	// which sit on their grid lines) and right of the last.
	plotInsetL, plotInsetR = 40.0, 16.0
	axisFontPx             = 12 // rendered size of axis labels
	maxXLabels             = 7  // on a wide screen; half of them on a phone
	bucketLayout           = "2006-01-02 15:04"
)

// chartOpts says how to read the buckets: their width (the labels are the
// buckets' ends, as in the reference) for the tooltips' ranges.
type chartOpts struct {
	Bucket time.Duration
	// Now, when set, marks the buckets not over at that time (the newest,
	// partial one) as in progress: drawn dashed and lighter, with a
	// caption, so that a low last point does not read as a fall.
	Now time.Time
}

// inProgress returns the index of the first bucket that is not over at
// o.Now (n when every bucket is over or Now is unset).
func inProgress(buckets []string, o chartOpts) int {
	if o.Now.IsZero() {
		return len(buckets)
	}
	for i, l := range buckets {
		if _, end, ok := bucketTimes(l, o.Bucket); ok && end.After(o.Now) {
			return i
		}
	}
	return len(buckets)
}

// lineChart draws one or more series over the same buckets. A chart with
// one series gets point markers; every bucket has an invisible band whose
// <title> is the tooltip listing each series' value.
func lineChart(title string, buckets []string, ss []series, o chartOpts) template.HTML {
	var b strings.Builder
	n := len(buckets)
	var top int64
	for _, s := range ss {
		for _, v := range s.Values {
			top = max(top, v)
		}
	}
	ymax, step := niceScale(top)
	idx := labelIndices(buckets, o.Bucket)
	labels := dayLabels(buckets, idx, axisLabels(buckets))
	plotB := plotB1
	for _, i := range idx {
		if labels[i].Sub != "" {
			plotB = plotB2
		}
	}
	ph := float64(chartH - plotT - plotB)
	// x in plot units, and as a percentage of the whole chart's width.
	x := func(i int) float64 {
		if n <= 1 {
			return plotW / 2
		}
		return plotW * float64(i) / float64(n-1)
	}
	pct := func(i int) float64 { return (x(i) + plotInsetL) / (plotW + plotInsetL + plotInsetR) * 100 }
	y := func(v int64) float64 { return ph * (1 - float64(v)/float64(ymax)) }

	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="100%" height="` + strconv.Itoa(chartH) +
		`" font-size="` + strconv.Itoa(axisFontPx) + `" role="img" aria-label="`)
	b.WriteString(svgText(title))
	b.WriteString(`"><title>`)
	b.WriteString(svgText(title))
	b.WriteString(`</title>`)
	// Grid lines with their values, drawn above the line they name.
	for v := int64(0); v <= ymax; v += step {
		yy := fmtF(plotT + y(v))
		b.WriteString(`<line class="gl" x1="0" x2="100%" y1="` + yy + `" y2="` + yy + `" stroke="#ccc" stroke-width="1"/>`)
		b.WriteString(`<text class="axis yl" x="2" y="` + fmtF(plotT+y(v)-4) + `" fill="#666">` + compact(v) + `</text>`)
	}
	// X labels: about maxXLabels, at round times; every other one,
	// counted from the newest, is marked xl2, which a narrow screen hides.
	for k, i := range idx {
		p := pct(i)
		anchor := "middle"
		switch {
		case p < 10:
			anchor = "start"
		case p > 90:
			anchor = "end"
		}
		cls := "axis xl"
		if k%2 == 1 {
			cls += " xl2"
		}
		b.WriteString(`<text class="` + cls + `" x="` + fmtF(p) + `%" y="` + strconv.Itoa(chartH-plotB+18) + `" text-anchor="` + anchor + `" fill="#666">` + svgText(labels[i].Main))
		if labels[i].Sub != "" {
			b.WriteString(`<tspan x="` + fmtF(p) + `%" dy="15">` + svgText(labels[i].Sub) + `</tspan>`)
		}
		b.WriteString(`</text>`)
	}
	// The plot: lines, markers and tooltip bands, stretched to the width.
	b.WriteString(`<svg class="plot" x="0" y="` + strconv.Itoa(plotT) + `" width="100%" height="` + fmtF(ph) +
		`" viewBox="` + fmtF(-plotInsetL) + ` 0 ` + fmtF(plotW+plotInsetL+plotInsetR) + ` ` + fmtF(ph) + `" preserveAspectRatio="none" overflow="visible">`)
	// Buckets from cut on are in progress: their segment is dashed and
	// their dot lighter.
	partFrom := inProgress(buckets, o)
	for si, s := range ss {
		cls, col := "s"+strconv.Itoa(si%len(seriesColours)), seriesColours[si%len(seriesColours)]
		m := min(n, len(s.Values))
		line := func(from, to int, extra string) {
			if to-from < 2 {
				return
			}
			b.WriteString(`<polyline class="line ` + cls + extra + `" fill="none" stroke="` + col + `" stroke-width="2" stroke-linejoin="round" vector-effect="non-scaling-stroke"`)
			if extra != "" {
				b.WriteString(` stroke-dasharray="5 4" stroke-opacity="0.6"`)
			}
			b.WriteString(` points="`)
			for i := from; i < to; i++ {
				if i > from {
					b.WriteByte(' ')
				}
				b.WriteString(fmtF(x(i)) + "," + fmtF(y(s.Values[i])))
			}
			b.WriteString(`"/>`)
		}
		done := min(partFrom, m)
		line(0, done, "")
		line(max(done-1, 0), m, " partial")
		if len(ss) == 1 || n == 1 {
			// Round caps of empty segments: dots that stay round however
			// the plot is stretched.
			dots := func(from, to int, extra string) {
				if from >= to {
					return
				}
				b.WriteString(`<path class="dot ` + cls + extra + `" fill="none" stroke="` + col + `" stroke-width="5" stroke-linecap="round" vector-effect="non-scaling-stroke"`)
				if extra != "" {
					b.WriteString(` stroke-opacity="0.45"`)
				}
				b.WriteString(` d="`)
				for i := from; i < to; i++ {
					b.WriteString("M" + fmtF(x(i)) + " " + fmtF(y(s.Values[i])) + "h0")
				}
				b.WriteString(`"/>`)
			}
			dots(0, done, "")
			dots(done, m, " partial")
		}
	}
	band := plotW
	if n > 1 {
		band = plotW / float64(n-1)
	}
	for i := range n {
		b.WriteString(`<rect class="hit" x="` + fmtF(x(i)-band/2) + `" y="0" width="` + fmtF(band) + `" height="` + fmtF(ph) + `" fill="transparent"`)
		if t0, t1, ok := bucketTimes(buckets[i], o.Bucket); ok {
			b.WriteString(` data-t0="` + strconv.FormatInt(t0.Unix(), 10) + `" data-t1="` + strconv.FormatInt(t1.Unix(), 10) + `"`)
		}
		b.WriteString(`><title>`)
		b.WriteString(svgText(bucketRange(buckets[i], o.Bucket)))
		if i >= partFrom {
			b.WriteString(svgText(" (in progress, up to " + o.Now.UTC().Format("15:04") + " UTC)"))
		}
		for _, s := range ss {
			if i < len(s.Values) {
				b.WriteString("\n" + svgText(cut(s.Label, 40)) + ": " + thousands(s.Values[i]))
			}
		}
		b.WriteString(`</title></rect>`)
	}
	b.WriteString(`</svg>`)
	if partFrom < n {
		// The caption, at the top right, above the plot.
		b.WriteString(`<text class="axis inprogress" x="100%" y="12" text-anchor="end" fill="#666">`)
		b.WriteString(svgText(inProgressCaption(n - partFrom)))
		b.WriteString(`</text>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// inProgressCaption says which points of the chart are partial.
func inProgressCaption(k int) string {
	if k == 1 {
		return "dashed: last point in progress"
	}
	return "dashed: last " + strconv.Itoa(k) + " points in progress"
}

// labelSteps are the spans between x labels a person reads as round.
var labelSteps = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour,
}

// labelIndices picks the buckets that get an x label, newest first: those
// that end on a round time (a multiple of the smallest round step that
// keeps to about maxXLabels labels; weeks start on Monday), or, when the
// buckets do not fall on one (the year's 14-day buckets follow the
// window), every so many counted back from the newest.
func labelIndices(buckets []string, width time.Duration) []int {
	n := len(buckets)
	every := max(1, (n+maxXLabels-1)/maxXLabels)
	var out []int
	if width > 0 && n > 1 {
		target := width * time.Duration(n-1) / maxXLabels
		for _, step := range labelSteps {
			if step < target || step%width != 0 {
				continue
			}
			// Unix time 0 was a Thursday: weeks are counted from a Monday.
			offset := int64(0)
			if step%(7*24*time.Hour) == 0 {
				offset = 4 * 86400
			}
			for i := n - 1; i >= 0; i-- {
				t, err := time.Parse(bucketLayout, buckets[i])
				if err != nil {
					out = nil
					break
				}
				if (t.Unix()-offset)%int64(step/time.Second) == 0 {
					out = append(out, i)
				}
			}
			break
		}
	}
	if len(out) >= 2 {
		return out
	}
	out = out[:0]
	for i := n - 1; i >= 0; i -= every {
		out = append(out, i)
	}
	return out
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

// thousands writes 1234567 as 1,234,567.
func thousands(v int64) string {
	s := strconv.FormatInt(v, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func trimF(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

func fmtF(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

// axisLabel is an x label: Main, and under it Sub (the date under a
// time, the year under a date), so that labels stay narrow on a phone.
type axisLabel struct{ Main, Sub string }

// axisLabels writes the buckets' labels ("2006-01-02 15:04", UTC) as a
// person reads them, dropping what they all share: the time of day when
// every bucket ends at midnight ("20 Jan"), the date when all are on one
// day ("15:30"); a time over several days has its date under it. The year
// is written, under the date, when the window crosses one, so a year's
// graph reads "3 Feb 2024 … 19 Jan 2025". Labels that do not parse are
// kept as they are.
func axisLabels(buckets []string) []axisLabel {
	out := make([]axisLabel, len(buckets))
	for i, l := range buckets {
		out[i].Main = l
	}
	ts := make([]time.Time, len(buckets))
	sameDay, midnight, sameYear := true, true, true
	for i, l := range buckets {
		t, err := time.Parse(bucketLayout, l)
		if err != nil {
			return out
		}
		ts[i] = t
		sameDay = sameDay && l[:10] == buckets[0][:10]
		midnight = midnight && l[11:] == "00:00"
		sameYear = sameYear && t.Year() == ts[0].Year()
	}
	for i, t := range ts {
		switch {
		case sameDay:
			out[i] = axisLabel{Main: t.Format("15:04")}
		case midnight && sameYear:
			out[i] = axisLabel{Main: t.Format("2 Jan")}
		case midnight:
			out[i] = axisLabel{Main: t.Format("2 Jan"), Sub: t.Format("2006")}
		case sameYear:
			out[i] = axisLabel{Main: t.Format("15:04"), Sub: t.Format("2 Jan")}
		default:
			out[i] = axisLabel{Main: t.Format("15:04"), Sub: t.Format("2 Jan 2006")}
		}
	}
	return out
}

// dayLabels writes the chosen labels as dates alone when they all fall on
// midnight (a week's labels read "14 Jan", not "00:00" over "14 Jan");
// the year, when written, stays under the date.
func dayLabels(buckets []string, idx []int, labels []axisLabel) []axisLabel {
	for _, i := range idx {
		if len(buckets[i]) != len(bucketLayout) || buckets[i][11:] != "00:00" || labels[i].Sub == "" || labels[i].Main != "00:00" {
			return labels
		}
	}
	out := append([]axisLabel(nil), labels...)
	for _, i := range idx {
		date, year, _ := strings.Cut(labels[i].Sub, " ")
		if d2, y, ok := strings.Cut(year, " "); ok { // "2 Jan 2006"
			date, year = date+" "+d2, y
		} else {
			date, year = labels[i].Sub, ""
		}
		out[i] = axisLabel{Main: date, Sub: year}
	}
	return out
}

// bucketTimes returns the start and end of a bucket whose label is its
// end.
func bucketTimes(label string, width time.Duration) (start, end time.Time, ok bool) {
	end, err := time.Parse(bucketLayout, label)
	if err != nil || width <= 0 {
		return time.Time{}, time.Time{}, false
	}
	return end.Add(-width), end, true
}

// bucketRange is a tooltip's heading: the bucket's span ("20 Jan 2025
// 11:30–12:00 UTC"; whole days as "6–19 Jan 2025").
func bucketRange(label string, width time.Duration) string {
	start, end, ok := bucketTimes(label, width)
	if !ok {
		return label + " UTC"
	}
	if width < 24*time.Hour {
		if start.YearDay() == end.YearDay() || end.Format("15:04") == "00:00" {
			return start.Format("2 Jan 2006 15:04") + "–" + end.Format("15:04") + " UTC"
		}
		return start.Format("2 Jan 2006 15:04") + " – " + end.Format("2 Jan 2006 15:04") + " UTC"
	}
	last := end.Add(-24 * time.Hour) // the last whole day of the bucket
	switch {
	case start.Equal(last):
		return start.Format("2 Jan 2006")
	case start.Year() != last.Year():
		return start.Format("2 Jan 2006") + " – " + last.Format("2 Jan 2006")
	case start.Month() != last.Month():
		return start.Format("2 Jan") + " – " + last.Format("2 Jan 2006")
	}
	return start.Format("2") + "–" + last.Format("2 Jan 2006")
}

// bucketNote is the caption under a graph: what one point counts.
func bucketNote(unit string, width time.Duration) string {
	if unit == "" || width <= 0 {
		return ""
	}
	var per string
	switch {
	case width == time.Minute:
		per = "minute"
	case width%(24*time.Hour) == 0 && width/(24*time.Hour) == 1:
		per = "day"
	case width%(24*time.Hour) == 0:
		per = strconv.Itoa(int(width/(24*time.Hour))) + " days"
	case width == time.Hour:
		per = "hour"
	case width%time.Hour == 0:
		per = strconv.Itoa(int(width/time.Hour)) + " hours"
	default:
		per = strconv.Itoa(int(width/time.Minute)) + " minutes"
	}
	return unit + " per " + per + "; times in UTC"
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
