package view

// The pages in a real browser: Debian's headless Chromium, driven over the
// DevTools protocol with chromedp, against a View on the fake source. One
// browser serves every subtest; each sets its own viewport, colour scheme
// and time zone.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/dynfw/sentinel/internal/testenv"
)

// tab is a Chromium tab and the console errors it saw (CSP violations
// and script errors show there).
type tab struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	err []string
}

func startChromium(t *testing.T) *tab {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		testenv.Skip(t, "no Chromium: install Debian's chromium package")
		return nil
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	ctx, cancelT := context.WithTimeout(bctx, 3*time.Minute)
	t.Cleanup(cancelT)
	tb := &tab{t: t, ctx: ctx}
	if _, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (cdp.Empty, error) {
		return cdp.Call(ctx, tg, cdplog.Enable, cdp.Empty{})
	}); err != nil {
		t.Fatal(err)
	}
	chromedp.Listen(ctx, func(ev any) {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			tb.err = append(tb.err, e.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				tb.err = append(tb.err, e.Entry.Text+" "+e.Entry.URL)
			}
		}
	})
	return tb
}

func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.t.Fatal(err)
	}
}

func (tb *tab) eval(expr string, out any) {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err == nil {
		err = json.Unmarshal(v, out)
	}
	if err != nil {
		tb.t.Fatalf("%.80s: %v", expr, err)
	}
}

// setup sets the viewport (width 390 emulates a phone), the colour
// scheme and the time zone.
func (tb *tab) setup(width int64, scheme, zone string) {
	tb.t.Helper()
	vp := chromedp.EmulateViewport(width, 900)
	if width < 500 {
		vp = chromedp.EmulateViewport(width, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulatePortrait)
	}
	tb.do(vp, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone})
		return err
	}))
}

func (tb *tab) open(url string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(url), chromedp.WaitVisible("footer"))
}

func (tb *tab) consoleErrors() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	out := tb.err
	tb.err = nil
	return out
}

// screenshot saves the page as name.png in $SENTINEL_VIEW_SCREENSHOTS,
// when set (for a person to look at the pages).
func (tb *tab) screenshot(name string) {
	dir := os.Getenv("SENTINEL_VIEW_SCREENSHOTS")
	if dir == "" {
		return
	}
	b, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatal(err)
	}
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// luminance of the CSS colours (rgb(…)) the browser computes, WCAG's
// relative luminance, and the contrast ratio of two of them.
const contrastJS = `
function lum(c) {
  const m = c.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)/);
  const ch = m.slice(1, 4).map(v => { v = v / 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
}
function contrast(a, b) { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); }
function background(el) {
  for (; el; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor;
    if (c && c !== "transparent" && !/rgba\(.*,\s*0\)$/.test(c)) return c;
  }
  return "rgb(255, 255, 255)";
}
`

func TestBrowser(t *testing.T) {
	tb := startChromium(t)
	e := newEnv(t, nil)
	base := e.srv.URL

	// The search box of every page: an address opens its attacker page,
	// anything else the password page.
	t.Run("search", func(t *testing.T) {
		tb.t = t
		tb.setup(1280, "light", "UTC")
		for _, c := range []struct{ typed, path, h1 string }{
			{"192.0.2.1", "/attackers/details/ip/192.0.2.1", "Attacker 192.0.2.1"},
			{"2001:db8::1", "/attackers/details/ip/2001:db8::1", "Attacker 2001:db8::1"},
			{"hunter2 ", "/passwords/details/" + encodePassword("hunter2 "), "Password hunter2"},
		} {
			tb.open(base + "/incidents/?period=1d")
			// The detail pages, unlike the statistics pages, have a subject line.
			tb.do(chromedp.SendKeys("#search-q", c.typed), chromedp.Submit("#search-q"), chromedp.WaitVisible("p.subject"))
			var got struct{ Path, Query, H1 string }
			tb.eval(`({Path: location.pathname, Query: location.search, H1: document.querySelector("h1").textContent})`, &got)
			if got.Path != c.path || got.Query != "?period=1d" || !strings.HasPrefix(got.H1, c.h1) {
				t.Errorf("searched %q: %+v", c.typed, got)
			}
		}
		if errs := tb.consoleErrors(); len(errs) > 0 {
			t.Errorf("console errors: %v", errs)
		}
	})

	// A phone 390 px wide (and a tablet at 700): every axis label as rendered, SVG scaling
	// included, is at least 11 px, visible labels do not overlap, the
	// map legend is HTML text of the page's size, and nothing scrolls
	// sideways.
	t.Run("phone", func(t *testing.T) {
		tb.t = t
		for _, v := range []struct {
			width  int64
			scheme string
		}{{390, "light"}, {390, "dark"}, {700, "light"}} {
			scheme := v.scheme
			tb.setup(v.width, scheme, "UTC")
			for _, p := range []string{"/?period=1w", "/incidents/?period=1y", "/ports/?period=1d", "/attackers/?period=1h", "/passwords/?period=3m"} {
				tb.open(base + p)
				var m struct {
					Labels  []float64
					Overlap []string
					Legend  []float64
					Scroll  float64
					Width   float64
				}
				tb.eval(`(() => {
					const vis = el => getComputedStyle(el).display !== "none" && el.getBoundingClientRect().width > 0;
					const texts = [...document.querySelectorAll("svg.chart text, svg.map text")].filter(vis);
					const labels = texts.map(el => parseFloat(getComputedStyle(el).fontSize) * Math.abs(el.getScreenCTM().d));
					const overlap = [];
					for (const svg of document.querySelectorAll("svg.chart")) {
						const xs = [...svg.querySelectorAll("text.xl")].filter(vis).map(el => el.getBoundingClientRect()).sort((a, b) => a.left - b.left);
						for (let i = 1; i < xs.length; i++) if (xs[i].left < xs[i-1].right) overlap.push(svg.getAttribute("aria-label"));
					}
					const legend = [...document.querySelectorAll(".maplegend li, .legend li")].map(el => parseFloat(getComputedStyle(el).fontSize));
					return {Labels: labels, Overlap: overlap, Legend: legend, Scroll: document.documentElement.scrollWidth, Width: innerWidth};
				})()`, &m)
				if len(m.Labels) < 5 {
					t.Errorf("%s: only %d axis labels", p, len(m.Labels))
				}
				for _, px := range m.Labels {
					if px < 11 {
						t.Errorf("%s %s %d px: an axis label renders at %.1f px", p, scheme, v.width, px)
						break
					}
				}
				if len(m.Overlap) > 0 {
					t.Errorf("%s %d px: overlapping x labels in %v", p, v.width, m.Overlap)
				}
				for _, px := range m.Legend {
					if px < 11 {
						t.Errorf("%s: a legend entry at %.1f px", p, px)
						break
					}
				}
				if m.Scroll > m.Width+1 {
					t.Errorf("%s: the page is %v px wide on a %v px screen", p, m.Scroll, m.Width)
				}
				tb.screenshot(fmt.Sprint("w", v.width, "-", scheme) + strings.NewReplacer("/", "_", "?", "_", "=", "").Replace(p))
			}
		}
		if errs := tb.consoleErrors(); len(errs) > 0 {
			t.Errorf("console errors: %v", errs)
		}
	})

	// The map's colours are ordered by value in both themes: the more
	// incidents, the more contrast with the card the map is drawn on;
	// the country with the most has the most.
	t.Run("map contrast", func(t *testing.T) {
		tb.t = t
		check := func(what string) {
			var cs []struct {
				CC       string
				V        float64
				Contrast float64
			}
			tb.eval(contrastJS+`[...document.querySelectorAll("svg.map path.c:not(.nd)")].map(p => ({CC: p.dataset.cc,
				V: +p.querySelector("title").textContent.split(": ").pop().replace(/[^0-9]/g, ""),
				Contrast: contrast(getComputedStyle(p).fill, background(p.closest(".card")))}))`, &cs)
			if len(cs) < 4 {
				t.Fatalf("%s: %d countries with data", what, len(cs))
			}
			sort.Slice(cs, func(i, j int) bool { return cs[i].V < cs[j].V })
			for i := 1; i < len(cs); i++ {
				if cs[i].Contrast < cs[i-1].Contrast {
					t.Errorf("%s: %s (%v) has less contrast (%.2f) than %s (%v, %.2f)", what,
						cs[i].CC, cs[i].V, cs[i].Contrast, cs[i-1].CC, cs[i-1].V, cs[i-1].Contrast)
				}
			}
			if top, low := cs[len(cs)-1], cs[0]; top.Contrast <= low.Contrast*1.5 {
				t.Errorf("%s: the most (%s, contrast %.2f) hardly stands out from the least (%s, %.2f)", what, top.CC, top.Contrast, low.CC, low.Contrast)
			}
			t.Logf("%s: %+v", what, cs)
		}
		for _, scheme := range []string{"light", "dark"} {
			tb.setup(1280, scheme, "UTC")
			tb.open(base + "/?period=1w")
			check(scheme)
			tb.screenshot("desktop-" + scheme + "-overview-1w")
		}
		// The toggle's dark theme, over a light system scheme.
		tb.setup(1280, "light", "UTC")
		tb.open(base + "/attackers/?period=1w")
		tb.do(chromedp.Click("#theme"))
		var theme string
		tb.eval(`document.documentElement.dataset.theme`, &theme)
		if theme != "dark" {
			t.Fatalf("toggle: theme %q", theme)
		}
		check("toggled dark")
		tb.eval(`localStorage.removeItem("sview-theme"), ""`, &theme)
	})

	// Sortable tables: a click on a heading sorts by that column, again
	// reverses it.
	t.Run("sort", func(t *testing.T) {
		tb.t = t
		tb.setup(1280, "light", "UTC")
		tb.open(base + "/passwords/?period=1w")
		col := func(i int) []string {
			var out []string
			tb.eval(`[...document.querySelectorAll("#top_combinations_by_usages_list_long tbody tr")].map(r => r.cells[`+string(rune('0'+i))+`].textContent.trim())`, &out)
			return out
		}
		var sorted string
		tb.eval(`document.querySelector("#top_combinations_by_usages_list_long th:last-child").getAttribute("aria-sort")`, &sorted)
		if sorted != "descending" {
			t.Errorf("the count column starts %q", sorted)
		}
		tb.do(chromedp.Click("#top_combinations_by_usages_list_long th:last-child button"))
		counts := col(2)
		if strings.Join(counts, ",") != "200,250,333,500,1,000" {
			t.Errorf("counts ascending: %v", counts)
		}
		tb.do(chromedp.Click("#top_combinations_by_usages_list_long th:first-child button"))
		users := col(0)
		var inOrder bool
		tb.eval(`(a => a.every((x, i) => i == 0 || a[i-1].localeCompare(x, undefined, {numeric: true, sensitivity: "base"}) <= 0))(`+jsonOf(users)+`)`, &inOrder)
		if !inOrder || len(users) != 5 {
			t.Errorf("usernames ascending: %q", users)
		}
		tb.do(chromedp.Click("#top_combinations_by_usages_list_long th:first-child button"))
		if again := col(0); again[0] != users[len(users)-1] || again[4] != users[0] {
			t.Errorf("usernames descending: %q", again)
		}
		if errs := tb.consoleErrors(); len(errs) > 0 {
			t.Errorf("console errors: %v", errs)
		}
	})

	// The visitor's time zone next to UTC: in the footer and in the
	// graphs' tooltips.
	t.Run("time zone", func(t *testing.T) {
		tb.t = t
		tb.setup(1280, "light", "Europe/Prague")
		tb.open(base + "/?period=1d")
		var got struct{ Footer, Tip string }
		tb.eval(`({Footer: document.querySelector("footer").textContent,
			Tip: [...document.querySelectorAll("#all_incidents_graph rect.hit title")].pop().textContent})`, &got)
		if !strings.Contains(got.Footer, "Times are in UTC; your time zone, Europe/Prague, is UTC+1") {
			t.Errorf("footer: %q", got.Footer)
		}
		if !strings.Contains(got.Tip, "20 Jan 2025 11:30–12:00 UTC\n20 Jan 2025 12:30–13:00 your time (UTC+1)") {
			t.Errorf("tooltip: %q", got.Tip)
		}
	})

	// Pages for a person to look at ($SENTINEL_VIEW_SCREENSHOTS).
	if os.Getenv("SENTINEL_VIEW_SCREENSHOTS") != "" {
		t.Run("screenshots", func(t *testing.T) {
			tb.t = t
			tb.setup(1280, "light", "Europe/Prague")
			tb.open(base + "/api/device/add?token=" + token1 + "&period=1w")
			tb.do(chromedp.Click(".addform button"), chromedp.WaitVisible("table.devices"))
			for _, scheme := range []string{"light", "dark"} {
				for _, width := range []int64{1280, 390} {
					tb.setup(width, scheme, "Europe/Prague")
					for _, p := range []string{"/?period=1h", "/?period=1d", "/?period=1y", "/incidents/?period=1w", "/passwords/?period=1w",
						"/ports/?period=6h", "/devices/?period=1w", "/attackers/details/ip/999.1.1.1?period=1w"} {
						tb.open(base + p)
						name := strings.NewReplacer("/", "_", "?", "_", "=", "").Replace(p)
						tb.screenshot(scheme + "-" + map[bool]string{true: "desktop", false: "phone"}[width > 500] + name)
					}
				}
			}
		})
	}
}

// jsonOf writes v as a script's literal.
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
