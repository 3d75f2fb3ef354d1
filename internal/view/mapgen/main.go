// Command mapgen turns the world.svg of the npm package @svg-maps/world
// (CC BY 4.0, Victor Cazanave) into internal/view/static/world.tsv, the
// compact path data the view colours server-side. It is run by hand:
//
//	cd /tmp && npm pack @svg-maps/world && tar xzf svg-maps-world-*.tgz
//	go run ./internal/view/mapgen /tmp/package/world.svg > internal/view/static/world.tsv
//
// The original uses relative coordinates with three decimals (1.2 MB); a
// page embedding it would weigh more than all its data. mapgen converts
// each ring to absolute coordinates, simplifies it (Douglas–Peucker, 0.25
// units of the 1010×666 viewBox, i.e. a quarter of a pixel at full width),
// drops rings smaller than a pixel (islands of countries that keep a larger
// ring), rounds to one decimal and writes relative moves again. These are
// the "changes" the CC BY licence asks us to indicate.
package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

type pt struct{ x, y float64 }

const tolerance = 0.25

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mapgen world.svg > world.tsv")
		os.Exit(2)
	}
	src, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	re := regexp.MustCompile(`(?s)<path\s+d="([^"]*)"\s+aria-label="([^"]*)"\s+id="([^"]*)"`)
	vb := regexp.MustCompile(`viewBox="([^"]*)"`).FindSubmatch(src)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	fmt.Fprintf(out, "# viewBox\t%s\n", vb[1])
	fmt.Fprintln(out, "# Derived from @svg-maps/world 2.0.0 by Victor Cazanave, CC BY 4.0; simplified by mapgen.")
	for _, m := range re.FindAllSubmatch(src, -1) {
		d := encode(parse(string(m[1])))
		if d == "" {
			continue
		}
		fmt.Fprintf(out, "%s\t%s\t%s\n", m[3], m[2], d)
	}
}

// parse reads a path made of "m" (relative moveto + implicit relative
// linetos) and "z", the only commands the source uses.
func parse(d string) [][]pt {
	var rings [][]pt
	var cur []pt
	var pos, start pt
	toks := strings.FieldsFunc(d, func(r rune) bool { return r == ' ' || r == ',' || r == '\n' || r == '\t' })
	for i := 0; i < len(toks); i++ {
		switch toks[i] {
		case "m":
			if cur != nil {
				rings = append(rings, cur)
			}
			cur = nil
			i++
			x, _ := strconv.ParseFloat(toks[i], 64)
			y, _ := strconv.ParseFloat(toks[i+1], 64)
			i++
			pos = pt{pos.x + x, pos.y + y}
			start = pos
			cur = append(cur, pos)
		case "z":
			rings = append(rings, cur)
			cur = nil
			pos = start
		default:
			x, _ := strconv.ParseFloat(toks[i], 64)
			y, _ := strconv.ParseFloat(toks[i+1], 64)
			i++
			pos = pt{pos.x + x, pos.y + y}
			cur = append(cur, pos)
		}
	}
	if cur != nil {
		rings = append(rings, cur)
	}
	return rings
}

func extent(r []pt) float64 {
	minx, miny, maxx, maxy := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range r {
		minx, maxx = min(minx, p.x), max(maxx, p.x)
		miny, maxy = min(miny, p.y), max(maxy, p.y)
	}
	return max(maxx-minx, maxy-miny)
}

func encode(rings [][]pt) string {
	biggest := 0.0
	for _, r := range rings {
		biggest = max(biggest, extent(r))
	}
	var b strings.Builder
	var px, py int // previous point in tenths
	first := true
	for _, r := range rings {
		e := extent(r)
		if e < 1 && e < biggest {
			continue
		}
		s := simplify(r)
		if len(s) < 3 {
			s = r
		}
		for i, p := range s {
			x, y := int(math.Round(p.x*10)), int(math.Round(p.y*10))
			if i == 0 {
				if first {
					fmt.Fprintf(&b, "M%s %s", tenth(x), tenth(y))
					first = false
				} else {
					fmt.Fprintf(&b, "m%s %s", tenth(x-px), tenth(y-py))
				}
			} else {
				if x == px && y == py {
					continue
				}
				if i == 1 {
					b.WriteByte('l')
				} else {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%s %s", tenth(x-px), tenth(y-py))
			}
			px, py = x, y
		}
		b.WriteByte('z')
		// After z the current point is the ring's start.
		px, py = int(math.Round(s[0].x*10)), int(math.Round(s[0].y*10))
	}
	return b.String()
}

// tenth formats n/10 with at most one decimal and no leading zero.
func tenth(n int) string {
	s := strconv.FormatFloat(float64(n)/10, 'f', -1, 64)
	if rest, ok := strings.CutPrefix(s, "0."); ok {
		return "." + rest
	}
	if rest, ok := strings.CutPrefix(s, "-0."); ok {
		return "-." + rest
	}
	return s
}

func simplify(r []pt) []pt {
	if len(r) < 4 {
		return r
	}
	keep := make([]bool, len(r))
	keep[0], keep[len(r)-1] = true, true
	// The ring is closed implicitly; split it at the farthest point from
	// the start so that Douglas–Peucker has two real segments.
	far, fd := 0, -1.0
	for i, p := range r {
		if d := math.Hypot(p.x-r[0].x, p.y-r[0].y); d > fd {
			far, fd = i, d
		}
	}
	keep[far] = true
	dp(r, 0, far, keep)
	dp(r, far, len(r)-1, keep)
	var out []pt
	for i, k := range keep {
		if k {
			out = append(out, r[i])
		}
	}
	return out
}

func dp(r []pt, a, b int, keep []bool) {
	if b <= a+1 {
		return
	}
	best, bi := -1.0, -1
	for i := a + 1; i < b; i++ {
		if d := segDist(r[i], r[a], r[b]); d > best {
			best, bi = d, i
		}
	}
	if best > tolerance {
		keep[bi] = true
		dp(r, a, bi, keep)
		dp(r, bi, b, keep)
	}
}

func segDist(p, a, b pt) float64 {
	dx, dy := b.x-a.x, b.y-a.y
	l := dx*dx + dy*dy
	if l == 0 {
		return math.Hypot(p.x-a.x, p.y-a.y)
	}
	t := max(0, min(1, ((p.x-a.x)*dx+(p.y-a.y)*dy)/l))
	return math.Hypot(p.x-a.x-t*dx, p.y-a.y-t*dy)
}
