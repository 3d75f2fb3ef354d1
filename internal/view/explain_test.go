package view

// Pages that explain themselves: labels instead of internal names, legends
// with units, dates with their year, the operator's own words, a search
// box, an auto-refresh on the short periods, and rate limits that a person
// browsing never meets.

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// section returns the HTML of the widget with this id.
func section(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, `<section class="card `)
	for i >= 0 {
		end := strings.Index(body[i:], "</section>")
		if end < 0 {
			break
		}
		s := body[i : i+end]
		if strings.Contains(s[:min(len(s), 200)], `id="`+id+`"`) {
			return s
		}
		next := strings.Index(body[i+end:], `<section class="card `)
		if next < 0 {
			break
		}
		i += end + next
	}
	t.Fatalf("no widget %s", id)
	return ""
}

func wantLacks(t *testing.T, where, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(body, s) {
			t.Errorf("%s shows %q", where, s)
		}
	}
}

// TestCountryNames: tables and legends name countries; the code stays as
// a caption.
func TestCountryNames(t *testing.T) {
	e := newEnv(t, nil)
	_, body := e.get(nil, "/?period=1w")
	top := section(t, body, "top_countries_by_incidents_list")
	wantContains(t, top, `China <small class="cap">CN</small>`, `United States <small class="cap">US</small>`,
		`Czechia <small class="cap">CZ</small>`, "Kosovo", "Unknown")
	wantLacks(t, "top countries", top, `<abbr title="China">CN</abbr>`, ">??<")
	_, body = e.get(nil, "/attackers/?period=1w")
	legend := section(t, body, "top_countries_by_attackers_graph")
	wantContains(t, legend, `Russia <small class="cap">RU</small>`, `Brazil <small class="cap">BR</small>`)
	// The same names in the map's tooltips.
	wantContains(t, section(t, body, "all_countries_by_attackers_list"), "<title>Russia: 900 attackers</title>")
}

// TestTrapAndEventNames: traps and actions read as words, with the
// internal name as a tooltip, never cut.
func TestTrapAndEventNames(t *testing.T) {
	e := newEnv(t, nil)
	_, body := e.get(nil, "/incidents/?period=1w")
	types := section(t, body, "top_incident_types_by_incidents_list")
	wantContains(t, types, `<abbr title="minipot_telnet">Telnet honeypot</abbr>`, `<abbr title="login">login attempt</abbr>`,
		`<abbr title="fwlogs">Firewall</abbr>`, `<abbr title="small_port_scan">small port scan</abbr>`)
	wantLacks(t, "incident types", types, "small_port_sc…", ">minipot_telnet<")
	wantContains(t, section(t, body, "top_traps_by_incidents_graph"), `<abbr title="minipot_http">HTTP honeypot</abbr>`,
		"Telnet honeypot [minipot_telnet]: ")
	wantContains(t, section(t, body, "top_actions_by_incidents_graph"), `<abbr title="small_port_scan">small port scan</abbr>`)
}

// TestPortServices: well-known ports carry their service.
func TestPortServices(t *testing.T) {
	e := newEnv(t, nil)
	_, body := e.get(nil, "/ports/?period=1w")
	wantContains(t, section(t, body, "top_ports_by_scans_list_long"), `TCP/22 <small class="cap">SSH</small>`,
		`TCP/23 <small class="cap">Telnet</small>`, `UDP/53 <small class="cap">DNS</small>`, `TCP/443 <small class="cap">HTTPS</small>`)
	wantContains(t, section(t, body, "top_ports_by_scans_graph"), `TCP/22 <small class="cap">SSH</small>`, "TCP/22 (SSH): ")
}

// TestMapLegend: the legend says what it counts, in ranges, with no empty
// "≤0" class, for a large and for a tiny maximum.
func TestMapLegend(t *testing.T) {
	e := newEnv(t, nil)
	_, body := e.get(nil, "/?period=1w")
	m := section(t, body, "all_countries_by_incidents_list")
	wantContains(t, m, "Incidents per country", "1–4</li>", "5–20</li>", "3,001–12,000</li>")
	wantLacks(t, "map", m, "≤")
	for top, want := range map[int64]string{1: "[1]", 2: "[1 2]", 3: "[1 2 3]", 12000: "[4 20 100 500 3000 12000]", 900: "[2 9 30 90 300 900]"} {
		if got := fmt.Sprint(mapBins(top)); got != want {
			t.Errorf("mapBins(%d) = %s, want %s", top, got, want)
		}
	}
	_, l := e.v.world.render("t", "attackers", map[string]int64{"CZ": 1})
	if len(l.Items) != 1 || l.Items[0].Text != "1" || l.Items[0].Class != "q6" || l.Caption != "Attackers per country" {
		t.Errorf("legend of a single attacker: %+v", l)
	}
}

// TestDatesWithYear: a window across new year writes the year on its
// axis; a day's tooltips give each bucket's span.
func TestDatesWithYear(t *testing.T) {
	e := newEnv(t, nil)
	labels := func(svg string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`(?s)<text[^>]*>(.*?)</text>`).FindAllStringSubmatch(svg, -1) {
			out = append(out, regexp.MustCompile(`<[^>]*>`).ReplaceAllString(m[1], " "))
		}
		return out
	}
	_, body := e.get(nil, "/?period=1y")
	year := strings.Join(labels(section(t, body, "all_incidents_graph")), "|")
	if !strings.Contains(year, "2024") || !strings.Contains(year, "2025") || !strings.Contains(year, "Jan") {
		t.Errorf("a year's axis without years: %s", year)
	}
	_, body = e.get(nil, "/?period=1d")
	day := section(t, body, "all_incidents_graph")
	wantContains(t, day, "20 Jan 2025 11:30–12:00 UTC", "Incidents per 30 minutes; times in UTC")
	_, body = e.get(nil, "/?period=1m")
	wantContains(t, section(t, body, "all_incidents_graph"), "<title>19 Jan 2025\n")
}

// TestSearch: the box on every page sends an address to its attacker
// page and anything else to the password page.
func TestSearch(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/?period=1d", "/ports/?period=1h", "/devices/?period=1w", "/attackers/details/ip/192.0.2.1?period=1w"} {
		_, body := e.get(nil, p)
		wantContains(t, body, `<form class="search" role="search" action="/search" method="get">`, `name="q"`)
	}
	cases := map[string]string{
		"/search?q=192.0.2.1&period=1d":       "/attackers/details/ip/192.0.2.1?period=1d",
		"/search?q=+2001:DB8::1+&period=6h":   "/attackers/details/ip/2001:db8::1?period=6h",
		"/search?q=::ffff:192.0.2.7":          "/attackers/details/ip/192.0.2.7?period=1w",
		"/search?q=hunter2&period=1y":         "/passwords/details/" + encodePassword("hunter2") + "?period=1y",
		"/search?q=+pass+word+&period=1d":     "/passwords/details/" + encodePassword(" pass word ") + "?period=1d",
		"/search?q=1.2.3&period=1d":           "/passwords/details/" + encodePassword("1.2.3") + "?period=1d",
		"/search?q=%3Cscript%3E&period=bogus": "/passwords/details/" + encodePassword("<script>") + "?period=1w",
	}
	for q, want := range cases {
		resp, body := e.get(nil, q)
		wantStatus(t, resp, body, http.StatusSeeOther)
		if loc := resp.Header.Get("Location"); loc != want {
			t.Errorf("%s → %s, want %s", q, loc, want)
		}
	}
	for _, q := range []string{"/search?q=", "/search?q=+++", "/search?q=" + strings.Repeat("x", maxSearch+1)} {
		resp, body := e.get(nil, q)
		wantStatus(t, resp, body, http.StatusBadRequest)
	}
}

// TestAutoRefresh: the short periods offer a reload every minute, which
// the visitor turns on; the others do not.
func TestAutoRefresh(t *testing.T) {
	e := newEnv(t, nil)
	_, body := e.get(nil, "/?period=1h")
	wantContains(t, body, `<a class="refresh" href="/?period=1h&amp;refresh=1"`, "Auto-refresh off")
	wantLacks(t, "1h", body, `http-equiv="refresh"`)
	_, body = e.get(nil, "/incidents/?period=6h&refresh=1")
	wantContains(t, body, `<meta http-equiv="refresh" content="60">`, `href="/incidents/?period=6h"`, "Auto-refresh on")
	_, body = e.get(nil, "/?period=1w&refresh=1")
	wantLacks(t, "1w", body, `http-equiv="refresh"`, `class="refresh"`)
}

// TestBrowsingNeverLimited: with the default limits, a person who opens
// the 30 addresses of a top list in tabs at once and then reads 60 more
// attacker and password pages within a minute, with statistics pages
// between, never sees a 429; a scraper fetching ten attacker pages a
// second meets one.
func TestBrowsingNeverLimited(t *testing.T) {
	// The handler reads the clock after it has answered (its access log),
	// so the test moves it under a lock.
	var mu sync.Mutex
	now := testNow
	tick := func() { mu.Lock(); now = now.Add(time.Second); mu.Unlock() }
	e := newEnv(t, func(o *Options) {
		o.RateLimit = RateLimit{TrustProxy: true} // the default limits
		o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	addr := func(i int) string { return fmt.Sprintf("198.51.%d.%d", i/250, i%250+1) }
	for i := range 30 {
		resp, body := e.get(nil, "/attackers/details/ip/"+addr(i)+"?period=1w")
		wantStatus(t, resp, body, 200)
	}
	for i := range 60 {
		tick()
		path := "/attackers/details/ip/" + addr(100+i) + "?period=1d"
		if i%3 == 2 {
			path = "/passwords/details/" + encodePassword(fmt.Sprint("pw", i)) + "?period=1w"
		}
		resp, body := e.get(nil, path)
		wantStatus(t, resp, body, 200)
		if i%10 == 0 {
			resp, body := e.get(nil, "/attackers/?period=1w")
			wantStatus(t, resp, body, 200)
		}
	}
	// A scraper from another address, ten pages a second.
	c := e.client(false)
	limited := -1
	for i := range 1200 {
		if i%10 == 0 {
			tick()
		}
		req, _ := http.NewRequest("GET", e.srv.URL+"/attackers/details/ip/"+addr(1000+i)+"?period=1w", nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			limited = i
			break
		}
		if resp.StatusCode != 200 {
			t.Fatalf("scraper got %d", resp.StatusCode)
		}
	}
	if limited < 0 {
		t.Fatal("a scraper at 10 pages a second never met the limit in two minutes")
	}
	t.Logf("the scraper met the limit after %d pages (%.0f s)", limited, float64(limited)/10)
}
