package view

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/scorecard"
	"github.com/dynfw/sentinel/internal/stats"
)

func (e *testEnv) get(c *http.Client, path string) (*http.Response, string) {
	e.t.Helper()
	if c == nil {
		c = e.client(false)
	}
	resp, err := c.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *testEnv) post(c *http.Client, path string, form url.Values) (*http.Response, string) {
	e.t.Helper()
	resp, err := c.PostForm(e.srv.URL+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func wantStatus(t *testing.T, resp *http.Response, body string, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("%s %s: status %d, want %d\n%.500s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, code, body)
	}
}

func wantContains(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Errorf("body lacks %q", s)
		}
	}
}

func TestPages(t *testing.T) {
	e := newEnv(t, nil)
	pages := map[string][]string{
		"/?period=1w": {"<h1>Overview</h1>", "Unique IP addresses", "Top countries", "Top passwords",
			`class="map"`, `China <small class="cap">CN</small>`, "/passwords/details/MTIzNDU2?period=1w",
			`aria-current="true">Week</a>`, "@svg-maps/world"},
		"/attackers/?period=1d": {"<h1>Attackers</h1>", "Top attackers", "/attackers/details/ip/2001:db8::1?period=1d",
			"Attackers of the top countries", `class="legend"`},
		"/passwords/?period=1m":                     {"<h1>Passwords</h1>", "Top usernames", "Top combinations", "Usages of the top passwords"},
		"/incidents/?period=6h":                     {"<h1>Incidents</h1>", "Incidents by trap", "Incidents by action", "Top incident types", "minipot_telnet"},
		"/ports/?period=1h":                         {"<h1>Ports</h1>", "Scanned ports", "TCP/22"},
		"/devices/?period=1y":                       {"<h1>My Devices</h1>", `action="/api/device/add"`, `name="csrf"`, "No device added yet."},
		"/attackers/details/ip/192.0.2.1?period=1w": {"Attacker 192.0.2.1", "https://client.rdap.org/?type=ip&amp;object=192.0.2.1", "Events"},
		"/passwords/details/" + encodePassword("123456") + "?period=3m": {"<code>123456</code>", "Usernames used with this password"},
	}
	for path, subs := range pages {
		resp, body := e.get(nil, path)
		wantStatus(t, resp, body, 200)
		wantContains(t, body, subs...)
		h := resp.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
			t.Errorf("%s: security headers missing: %v", path, h)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
			t.Errorf("%s: inline script or style", path)
		}
	}
}

func TestPeriodRedirect(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/", "/attackers/?foo=bar", "/ports/?period=2w", "/devices/", "/attackers/details/ip/192.0.2.1",
		"/passwords/details/" + encodePassword("x") + "?period="} {
		resp, body := e.get(nil, path)
		wantStatus(t, resp, body, http.StatusFound)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		u, _ := url.Parse(path)
		if loc.Path != u.Path || loc.Query().Get("period") != "1w" {
			t.Errorf("%s → %s", path, loc)
		}
		if u.Query().Get("foo") != "" && loc.Query().Get("foo") != "bar" {
			t.Errorf("%s: lost a parameter: %s", path, loc)
		}
	}
}

func TestAttackerAddresses(t *testing.T) {
	e := newEnv(t, nil)
	resp, body := e.get(nil, "/attackers/details/ip/2001:db8::1?period=1w")
	wantStatus(t, resp, body, 200)
	wantContains(t, body, "Attacker 2001:db8::1", "object=2001%3Adb8%3A%3A1")
	if r := e.src.requests("selected_attacker_incidents_graph"); len(r) != 1 || r[0].IP != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("requests %+v", r)
	}
	for _, bad := range []string{"1.2.3", "999.1.1.1", "fe80::1%25eth0", "example.com", "%3Cscript%3E"} {
		resp, body := e.get(nil, "/attackers/details/ip/"+bad+"?period=1w")
		wantStatus(t, resp, body, 400)
		wantContains(t, body, "Not a valid IPv4 or IPv6 address.")
		if strings.Contains(body, "<script>") {
			t.Error("reflected")
		}
	}
}

func TestPasswordLinks(t *testing.T) {
	e := newEnv(t, nil)
	pw := "ř/+?\u00e9ab>"
	for _, enc := range []string{encodePassword(pw), base64.StdEncoding.EncodeToString([]byte(pw)), base64.URLEncoding.EncodeToString([]byte(pw))} {
		resp, body := e.get(nil, "/passwords/details/"+enc+"?period=1w")
		wantStatus(t, resp, body, 200)
		wantContains(t, body, "<code>ř/&#43;?éab&gt;</code>")
	}
	if r := e.src.requests("selected_password_by_usages_graph"); len(r) != 3 || r[0].Password != pw {
		t.Errorf("requests %+v", r)
	}
	for _, bad := range []string{"!!!", "a", "%25"} {
		resp, body := e.get(nil, "/passwords/details/"+bad+"?period=1w")
		wantStatus(t, resp, body, 400)
		wantContains(t, body, "Unable to decode password.")
	}
}

func apiJSON(t *testing.T, e *testEnv, q string, code int) map[string]any {
	t.Helper()
	resp, body := e.get(nil, "/api/resource?"+q)
	wantStatus(t, resp, body, code)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAPI(t *testing.T) {
	e := newEnv(t, nil)
	for _, name := range stats.Names() {
		q := url.Values{"name": {name}, "period": {"1w"}}
		switch stats.Catalog[name].Param {
		case stats.NeedsIP:
			q.Set("ip", "2001:db8::5")
		case stats.NeedsPassword:
			q.Set("password", "admin")
		}
		resp, body := e.get(nil, "/api/resource?"+q.Encode())
		wantStatus(t, resp, body, 200)
		var m struct {
			Name string          `json:"resource_name"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &m); err != nil || m.Name != name || len(m.Data) == 0 {
			t.Errorf("%s: %v %.100s", name, err, body)
		}
		cc := resp.Header.Get("Cache-Control")
		// As long as the period's results live (the week's window ends
		// with the bucket in progress, so they change all the time).
		week, _ := stats.LookupPeriod("1w")
		maxAge := strconv.Itoa(int(week.MaxAge.Seconds()))
		if stats.Catalog[name].Param == stats.NeedsDevices {
			if cc != "private, max-age="+maxAge || string(m.Data) == "null" {
				t.Errorf("%s: %q %s", name, cc, m.Data)
			}
		} else if cc != "public, max-age="+maxAge {
			t.Errorf("%s: Cache-Control %q", name, cc)
		}
	}
	// Default period of the API.
	apiJSON(t, e, "name=all_incidents_graph", 200)
	if r := e.src.requests("all_incidents_graph"); r[len(r)-1].Period != APIDefaultPeriod {
		t.Errorf("default period %q", r[len(r)-1].Period)
	}
	if m := apiJSON(t, e, "", 400); m["error"] != "No resource name provided." {
		t.Error(m)
	}
	if m := apiJSON(t, e, "name=nope", 404); m["error"] != "Unknown resource 'nope'" {
		t.Error(m)
	}
	apiJSON(t, e, "name=all_incidents_graph&period=2y", 400)
	apiJSON(t, e, "name=all_incidents_graph&format=xml", 400)
	apiJSON(t, e, "name=selected_attacker_incidents_graph&period=1w&ip=1.2.3", 400)
	apiJSON(t, e, "name=selected_attacker_incidents_graph&period=1w", 400)
	apiJSON(t, e, "name=selected_password_by_usages_graph&period=1w", 400)

	// Errors of the source.
	e.src.err = map[string]error{"all_ports_by_scans_graph": fmt.Errorf("x: %w", stats.ErrBadParam),
		"top_ports_by_scans_graph": stats.ErrUnknownResource, "all_attackers_graph": errors.New("db down")}
	apiJSON(t, e, "name=all_ports_by_scans_graph", 400)
	apiJSON(t, e, "name=top_ports_by_scans_graph", 404)
	apiJSON(t, e, "name=all_attackers_graph", 500)
}

func TestAPIComputing(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.APIWait = 50 * time.Millisecond; o.PageWait = 50 * time.Millisecond })
	e.src.block = true
	resp, body := e.get(nil, "/api/resource?name=all_incidents_graph&period=1w")
	wantStatus(t, resp, body, 503)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	resp, body = e.get(nil, "/?period=1w")
	wantStatus(t, resp, body, 200)
	wantContains(t, body, "Data is being computed; reload in a moment.")
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Error("a page with computing widgets must not be cached")
	}
}

func TestEmpty(t *testing.T) {
	e := newEnv(t, nil)
	e.src.empty = true
	for _, p := range []string{"/?period=1w", "/passwords/?period=1w", "/incidents/?period=1w", "/ports/?period=1w", "/attackers/?period=1w"} {
		resp, body := e.get(nil, p)
		wantStatus(t, resp, body, 200)
		wantContains(t, body, "No data available from this period.")
		if strings.Contains(body, "<svg") {
			t.Errorf("%s: chart for empty data", p)
		}
	}
}

func TestCSV(t *testing.T) {
	e := newEnv(t, nil)
	cases := map[string][]string{
		"all_incidents_graph":                  {"bucket", "count"},
		"top_passwords_by_usages_graph":        {"bucket", "123456", xssPassword, "admin", "'" + csvPassword},
		"top_combinations_by_usages_list_long": {"username", "password", "count"},
		"all_countries_by_incidents_list":      {"country", "count"},
	}
	for name, head := range cases {
		resp, body := e.get(nil, "/api/resource?format=csv&period=1d&name="+name)
		wantStatus(t, resp, body, 200)
		if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" ||
			resp.Header.Get("Content-Disposition") != `attachment; filename="`+name+`_1d.csv"` {
			t.Errorf("%s: headers %v", name, resp.Header)
		}
		recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil || len(recs) < 2 {
			t.Fatalf("%s: %v %q", name, err, body)
		}
		if strings.Join(recs[0], "|") != strings.Join(head, "|") {
			t.Errorf("%s: header %q, want %q", name, recs[0], head)
		}
		for _, rec := range recs[1:] {
			for _, c := range rec {
				if c != "" && strings.ContainsRune("=+-@", rune(c[0])) {
					t.Errorf("%s: unsafe cell %q", name, c)
				}
			}
		}
		switch name {
		case "all_countries_by_incidents_list":
			if recs[1][0] != "CN" || recs[1][1] != "12000" {
				t.Errorf("map rows %q", recs[1])
			}
		case "top_combinations_by_usages_list_long":
			if recs[1][1] != xssPassword || recs[3][1] != "'"+csvPassword || recs[4][0] != "'-" {
				t.Errorf("list rows %q", recs)
			}
		case "all_incidents_graph":
			if len(recs) != 49 {
				t.Errorf("1d graph has %d rows", len(recs)-1)
			}
		}
	}
}

func TestRateLimit(t *testing.T) {
	now := testNow
	e := newEnv(t, func(o *Options) {
		o.RateLimit = RateLimit{OnDemandPerMinute: 60, OnDemandBurst: 3, PerMinute: 60, Burst: 5}
		o.Now = func() time.Time { return now }
	})
	q := "/api/resource?name=selected_attacker_incidents_graph&period=1w&ip=192.0.2.1"
	for i := range 3 {
		resp, body := e.get(nil, q)
		wantStatus(t, resp, body, 200)
		_ = i
	}
	resp, body := e.get(nil, q)
	wantStatus(t, resp, body, 429)
	if resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "Too many requests") {
		t.Errorf("Retry-After %q body %s", resp.Header.Get("Retry-After"), body)
	}
	// Pages have their own, separate budget.
	for range 5 {
		resp, body := e.get(nil, "/ports/?period=1w")
		wantStatus(t, resp, body, 200)
	}
	resp, body = e.get(nil, "/ports/?period=1w")
	wantStatus(t, resp, body, 429)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After on page")
	}
	// Static files are never limited.
	resp, body = e.get(nil, "/static/style.css")
	wantStatus(t, resp, body, 200)
}

func TestStatic(t *testing.T) {
	e := newEnv(t, nil)
	for _, f := range []string{"style.css", "view.js", "world-LICENSE.md"} {
		resp, body := e.get(nil, "/static/"+f)
		wantStatus(t, resp, body, 200)
		if !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=31536000") {
			t.Error(resp.Header)
		}
	}
	resp, body := e.get(nil, "/static/")
	wantStatus(t, resp, body, 404)
	resp, body = e.get(nil, "/static/../view.go")
	if resp.StatusCode == 200 {
		t.Error("traversal")
	}
	_ = body
}

var token1 = "1000000000000000000000000000000000000000000000000000000000000001"
var token2 = "2000000000000000000000000000000000000000000000000000000000000002"

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no csrf field")
	}
	return m[1]
}

// confirmAdd follows a router's add link and presses the confirmation
// page's button, as a visitor does.
func (e *testEnv) confirmAdd(c *http.Client, token string) (*http.Response, string) {
	e.t.Helper()
	resp, body := e.get(c, "/api/device/add?token="+token)
	wantStatus(e.t, resp, body, 200)
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`).FindAllStringSubmatch(body, -1) {
		form.Set(m[1], m[2])
	}
	if form.Get("device_token") != token || form.Get("csrf") == "" {
		e.t.Fatalf("confirmation form %v", form)
	}
	return e.post(c, "/api/device/add", form)
}

// TestDeviceAddLinkConfirms: the router's link GET /api/device/add?token=
// adds nothing, whoever makes the browser follow it: it shows a page in
// the site's layout whose button posts the add form. Only that POST adds.
func TestDeviceAddLinkConfirms(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(false)
	// A cross-site page sends the visitor to the link.
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/device/add?token="+token1+"&period=1d", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	wantStatus(t, resp, body, 200)
	wantContains(t, body, `<nav class="nav"`, "Add a device", "10000000…", `method="post" action="/api/device/add"`,
		`name="device_token" value="`+token1+`"`, `name="period" value="1d"`, `name="csrf"`)
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("Cache-Control %q, Content-Encoding %q", cc, resp.Header.Get("Content-Encoding"))
	}
	resp, body = e.get(c, "/devices/?period=1w")
	wantStatus(t, resp, body, 200)
	wantContains(t, body, "No device added yet.")
	if len(e.src.requests("my_all_incidents_graph")) != 0 {
		t.Fatal("the link made the session hold a token")
	}
	// A full list of links adds nothing either.
	for i := range maxTokens + 5 {
		e.get(c, fmt.Sprintf("/api/device/add?token=%064x", i+100))
	}
	_, body = e.get(c, "/devices/?period=1w")
	wantContains(t, body, "No device added yet.")
	// The visitor's own router's link, confirmed, is added.
	resp, body = e.confirmAdd(c, token1)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/devices/?period=1w" {
		t.Errorf("redirected to %s", loc)
	}
	_, body = e.get(c, "/devices/?period=1w")
	wantContains(t, body, "10000000…")
	// Following the link again goes straight to My Devices.
	resp, body = e.get(c, "/api/device/add?token="+token1)
	wantStatus(t, resp, body, http.StatusSeeOther)
}

func TestDevices(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.client(true), e.client(true)

	// Router link: confirmed, then redirected to My Devices.
	resp, body := e.confirmAdd(a, token1)
	wantStatus(t, resp, body, 200)
	if resp.Request.URL.Path != "/devices/" || resp.Request.URL.Query().Get("period") != "1w" || strings.Contains(resp.Request.URL.RawQuery, "token") {
		t.Errorf("redirected to %s", resp.Request.URL)
	}
	wantContains(t, body, "10000000…", "0000000A00000001", "Incidents on my devices")
	if strings.Contains(body, token1) {
		t.Error("the page shows the whole token")
	}
	// POST add with the CSRF secret.
	resp, body = e.post(a, "/api/device/add", url.Values{"device_token": {token2}, "period": {"1d"}, "csrf": {csrfOf(t, body)}})
	wantStatus(t, resp, body, 200)
	if resp.Request.URL.RequestURI() != "/devices/?period=1d" {
		t.Errorf("redirected to %s", resp.Request.URL)
	}
	wantContains(t, body, "10000000…", "20000000…", "No data from this device yet")

	// The resources got the session's tokens, a URL token is ignored.
	reqs := e.src.requests("my_all_incidents_graph")
	last := reqs[len(reqs)-1]
	if strings.Join(last.DeviceTokens, ",") != token1+","+token2 {
		t.Errorf("tokens %q", last.DeviceTokens)
	}
	for _, n := range []string{"my_top_traps_by_incidents_graph", "my_top_countries_by_incidents_graph"} {
		if len(e.src.requests(n)) == 0 {
			t.Errorf("%s not requested", n)
		}
	}
	resp, body = e.get(b, "/api/resource?name=my_all_incidents_graph&period=1w&token="+token1)
	wantStatus(t, resp, body, 200)
	if !strings.Contains(body, `"data":[]`) {
		t.Errorf("another client got data: %s", body)
	}
	n := len(e.src.requests("my_all_incidents_graph"))
	resp, body = e.get(a, "/api/resource?name=my_all_incidents_graph&period=1w&token=ffff")
	wantStatus(t, resp, body, 200)
	reqs = e.src.requests("my_all_incidents_graph")
	if len(reqs) != n+1 || len(reqs[n].DeviceTokens) != 2 {
		t.Errorf("API did not use the session: %+v", reqs[n:])
	}

	// The second client has its own, empty session.
	resp, body = e.get(b, "/devices/?period=1w")
	wantStatus(t, resp, body, 200)
	wantContains(t, body, "No device added yet.")
	if strings.Contains(body, "10000000…") {
		t.Error("leak to another client")
	}
	for _, r := range e.src.reqs {
		if r.Name != "" && len(r.DeviceTokens) > 0 && stats.Catalog[r.Name].Param != stats.NeedsDevices {
			t.Error("tokens sent to a public resource")
		}
	}

	// Delete.
	_, body = e.get(a, "/devices/?period=1w")
	id := regexp.MustCompile(`name="device_id" value="([0-9a-f]+)"`).FindStringSubmatch(body)[1]
	resp, body = e.post(a, "/api/device/delete", url.Values{"device_id": {id}, "period": {"1w"}, "csrf": {csrfOf(t, body)}})
	wantStatus(t, resp, body, 200)
	if strings.Contains(body, "10000000…") || !strings.Contains(body, "20000000…") {
		t.Error("delete failed")
	}
	resp, body = e.post(a, "/api/device/delete", url.Values{"device_token": {token2}, "csrf": {csrfOf(t, body)}})
	wantStatus(t, resp, body, 200)
	wantContains(t, body, "No device added yet.")
}

func TestDeviceErrors(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(false)
	resp, body := e.get(c, "/api/device/add?token=abc")
	wantStatus(t, resp, body, 400)
	wantContains(t, body, "Bad format of device token.")
	resp, body = e.get(c, "/api/device/add?token="+strings.Repeat("A", 64))
	wantStatus(t, resp, body, 400)
	resp, body = e.get(c, "/api/device/add")
	wantStatus(t, resp, body, 400)
	wantContains(t, body, "Device token not provided.")
	resp, body = e.get(c, "/api/device/delete?token="+token1)
	wantStatus(t, resp, body, 405)

	// POST without or with a wrong CSRF secret.
	_, body = e.get(c, "/devices/?period=1w")
	csrf := csrfOf(t, body)
	resp, body = e.post(c, "/api/device/add", url.Values{"device_token": {token1}})
	wantStatus(t, resp, body, 403)
	resp, body = e.post(c, "/api/device/add", url.Values{"device_token": {token1}, "csrf": {"x" + csrf}})
	wantStatus(t, resp, body, 403)
	resp, body = e.post(e.client(false), "/api/device/add", url.Values{"device_token": {token1}, "csrf": {csrf}})
	wantStatus(t, resp, body, 403) // the secret without its session
	resp, body = e.post(c, "/api/device/delete", url.Values{"device_token": {token1}})
	wantStatus(t, resp, body, 403)
	// Cross-site POST with the right secret.
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/device/add", strings.NewReader(url.Values{"device_token": {token1}, "csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("cross-site POST: %d", resp.StatusCode)
	}
	// Valid secret, bad token.
	resp, body = e.post(c, "/api/device/add", url.Values{"device_token": {"x"}, "csrf": {csrf}})
	wantStatus(t, resp, body, 400)
	resp, body = e.post(c, "/api/device/add", url.Values{"csrf": {csrf}})
	wantStatus(t, resp, body, 400)
	resp, body = e.post(c, "/api/device/add", url.Values{"device_token": {token1}, "csrf": {csrf}})
	wantStatus(t, resp, body, 303)

	// Limit of tokens per session.
	for i := 1; i < maxTokens; i++ {
		resp, body = e.confirmAdd(c, fmt.Sprintf("%064x", i+100))
		wantStatus(t, resp, body, 303)
	}
	resp, body = e.get(c, "/api/device/add?token="+token2)
	wantStatus(t, resp, body, 400)
}

func TestTamperedCookie(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(true)
	e.confirmAdd(c, token1)
	u, _ := url.Parse(e.srv.URL)
	cookies := c.Jar.Cookies(u)
	if len(cookies) != 1 || strings.Contains(cookies[0].Value, "1000000") {
		t.Fatalf("cookies %v", cookies)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(cookies[0].Value)
	raw[len(raw)-5] ^= 1
	cookies[0].Value = base64.RawURLEncoding.EncodeToString(raw)
	c.Jar.SetCookies(u, cookies)
	_, body := e.get(c, "/devices/?period=1w")
	wantContains(t, body, "No device added yet.")

	// A cookie from another key is rejected too.
	other := newEnv(t, func(o *Options) { o.SessionKey = []byte("0123456789abcdef0123456789abcdef") })
	c2 := other.client(true)
	other.confirmAdd(c2, token1)
	ou, _ := url.Parse(other.srv.URL)
	c.Jar.SetCookies(u, c2.Jar.Cookies(ou))
	_, body = e.get(c, "/devices/?period=1w")
	wantContains(t, body, "No device added yet.")
}

func TestXSS(t *testing.T) {
	e := newEnv(t, nil)
	escPw := "&lt;script&gt;alert(1)&lt;/script&gt;"
	escUser := "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"
	pages := []string{"/?period=1w", "/passwords/?period=1w", "/passwords/details/" + encodePassword(xssPassword) + "?period=1w"}
	for _, p := range pages {
		resp, body := e.get(nil, p)
		wantStatus(t, resp, body, 200)
		if strings.Contains(body, xssPassword) || strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
			t.Errorf("%s: raw markup from data", p)
		}
		wantContains(t, body, escPw)
		if p == "/passwords/?period=1w" {
			wantContains(t, body, "&lt;script&gt;alert…", escUser[:20])
			// The multi-line graph's tooltips (SVG <title>) hold the password.
			svgTitles := regexp.MustCompile(`(?s)<title>([^<]*)</title>`).FindAllStringSubmatch(body, -1)
			found := false
			for _, m := range svgTitles {
				found = found || strings.Contains(m[1], escPw)
			}
			if !found {
				t.Error("no escaped password in the SVG titles")
			}
		}
	}
}

func TestExplain(t *testing.T) {
	since := testNow.Add(-3 * time.Hour)
	e := newEnv(t, func(o *Options) {
		o.Explain = func(ctx context.Context, a netip.Addr) (*scorecard.Explanation, error) {
			switch a.String() {
			case "192.0.2.1":
				return &scorecard.Explanation{
					Key: netip.MustParsePrefix("192.0.2.1/32"), Score: 12.5, Entry: 10, Exit: 5,
					Listed: true, Reason: "telnet_login", Since: since, EarliestEnd: since.Add(24 * time.Hour),
					Offences: 2, Tags: []string{"brute-force", "scan"}, Counts: map[string]uint64{"telnet_login": 7, "<b>x</b>": 1},
					FirstSeen: since.Add(-time.Hour), LastSeen: since, Probes: 16, ProbesAtLeast: true,
					History: []scorecard.Listing{{Start: since.Add(-72 * time.Hour), End: since.Add(-48 * time.Hour), Reason: "ftp_login", EndReason: "expired"}, {Start: since, Reason: "telnet_login"}},
				}, nil
			case "10.0.0.1":
				return &scorecard.Explanation{Key: netip.MustParsePrefix("10.0.0.1/32"), NeverListed: "non-global address", Counts: map[string]uint64{}}, nil
			case "192.0.2.99":
				return nil, errors.New("boom")
			}
			return nil, nil
		}
	})
	_, body := e.get(nil, "/attackers/details/ip/192.0.2.1?period=1w")
	// The headline is a sentence; the full explanation follows it.
	wantContains(t, body, `<p class="status listed">Listed since 09:00 UTC: 7 telnet logins and 1 &lt;b&gt;x&lt;/b&gt; event in 1 hour (score 12.5, threshold 10).</p>`,
		"<summary>Full explanation</summary>", "Listed since 2025-01-20 09:00:00 UTC: telnet_login",
		"12.50 (enters the list at 10.00, leaves below 5.00)", "2025-01-21 09:00:00 UTC", "brute-force, scan",
		"at least 16", `<td>Telnet honeypot: login attempt <small class="raw">telnet_login</small></td><td class="num">7</td>`, "&lt;b&gt;x&lt;/b&gt;", "ftp_login", "expired", "ongoing",
		"<dt>Offences</dt><dd>2</dd>", "<dt>First seen</dt><dd>2025-01-20 08:00:00 UTC</dd>")
	_, body = e.get(nil, "/attackers/details/ip/10.0.0.1?period=1w")
	wantContains(t, body, "Never listed: a private or reserved address, which DynFW never publishes (no events remembered).", "Never listed: non-global address")
	_, body = e.get(nil, "/attackers/details/ip/198.51.100.1?period=1w")
	wantContains(t, body, "Not listed: DynFW has no record of this address.")
	_, body = e.get(nil, "/attackers/details/ip/192.0.2.99?period=1w")
	wantContains(t, body, "The DynFW explanation is not available right now.")

	plain := newEnv(t, nil)
	_, body = plain.get(nil, "/attackers/details/ip/192.0.2.1?period=1w")
	if strings.Contains(body, "DynFW") {
		t.Error("DynFW section without Explain")
	}
}

// wellFormed parses s as XML.
func wellFormed(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%.300s", err, s)
		}
	}
}

func TestSVGWellFormed(t *testing.T) {
	e := newEnv(t, nil)
	nasty := "a<b>&\"'\x01\xff" + xssPassword
	wellFormed(t, string(lineChart(nasty, []string{"2025-01-13 12:00", "2025-01-13 15:00"}, []series{{Label: nasty, Values: []int64{1, 5}}}, chartOpts{Bucket: time.Hour})))
	wellFormed(t, string(lineChart("one", []string{"x"}, []series{{Label: "a", Values: []int64{0}}}, chartOpts{})))
	svgMap, _ := e.v.world.render(nasty, nasty, map[string]int64{"CN": 5, "US": 1})
	wellFormed(t, string(svgMap))
	for _, p := range []string{"/?period=1w", "/passwords/?period=1h", "/incidents/?period=1y", "/attackers/?period=3m"} {
		_, body := e.get(nil, p)
		all := outerSVGs(body)
		if len(all) == 0 {
			t.Errorf("%s: no svg", p)
		}
		for _, s := range all {
			wellFormed(t, s)
		}
	}
}

// outerSVGs returns the outermost <svg> elements of a page (charts nest
// one).
func outerSVGs(body string) []string {
	var out []string
	tag := regexp.MustCompile(`<svg[\s>]|</svg>`)
	depth, start := 0, 0
	for _, m := range tag.FindAllStringIndex(body, -1) {
		if body[m[0]+1] == '/' {
			if depth--; depth == 0 {
				out = append(out, body[start:m[1]])
			}
			continue
		}
		if depth == 0 {
			start = m[0]
		}
		depth++
	}
	return out
}

func TestChartHelpers(t *testing.T) {
	for _, c := range []struct{ v, top, step int64 }{{0, 1, 1}, {3, 3, 1}, {7, 8, 2}, {42, 50, 10}, {1234, 1250, 250}} {
		if top, step := niceScale(c.v); top != c.top || step != c.step {
			t.Errorf("niceScale(%d) = %d, %d", c.v, top, step)
		}
	}
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"2025-01-13 12:00", "2025-01-13 13:00"}, "12:00|13:00"},
		{[]string{"2025-01-13 00:00", "2025-01-14 00:00"}, "13 Jan|14 Jan"},
		{[]string{"2024-12-31 00:00", "2025-01-01 00:00"}, "31 Dec/2024|1 Jan/2025"},
		{[]string{"2025-01-13 21:00", "2025-01-14 00:00"}, "21:00/13 Jan|00:00/14 Jan"},
		{[]string{"2024-12-31 21:00", "2025-01-01 00:00"}, "21:00/31 Dec 2024|00:00/1 Jan 2025"},
		{[]string{"TCP/22", "x"}, "TCP/22|x"},
	} {
		var parts []string
		for _, l := range axisLabels(c.in) {
			parts = append(parts, strings.TrimSuffix(l.Main+"/"+l.Sub, "/"))
		}
		if got := strings.Join(parts, "|"); got != c.want {
			t.Errorf("axisLabels(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		label string
		width time.Duration
		want  string
	}{
		{"2025-01-20 12:00", 30 * time.Minute, "20 Jan 2025 11:30–12:00 UTC"},
		{"2025-01-21 00:00", 3 * time.Hour, "20 Jan 2025 21:00–00:00 UTC"},
		{"2025-01-20 00:00", 24 * time.Hour, "19 Jan 2025"},
		{"2025-01-20 00:00", 48 * time.Hour, "18–19 Jan 2025"},
		{"2025-02-03 00:00", 14 * 24 * time.Hour, "20 Jan – 2 Feb 2025"},
		{"2025-01-05 00:00", 14 * 24 * time.Hour, "22 Dec 2024 – 4 Jan 2025"},
		{"junk", time.Hour, "junk UTC"},
	} {
		if got := bucketRange(c.label, c.width); got != c.want {
			t.Errorf("bucketRange(%s, %v) = %s, want %s", c.label, c.width, got, c.want)
		}
	}
	// X labels at round times, newest first; the year's buckets follow
	// the window, so its labels are counted from the newest.
	for _, c := range []struct{ period, want string }{
		{"1h", "12:00 11:50 11:40 11:30 11:20 11:10"},
		{"6h", "12:00 11:00 10:00 09:00 08:00 07:00"},
		{"1d", "12:00 08:00 04:00 00:00 20:00 16:00"},
		{"1w", "20 Jan 19 Jan 18 Jan 17 Jan 16 Jan 15 Jan 14 Jan"},
		{"1m", "20 Jan/2025 13 Jan/2025 6 Jan/2025 30 Dec/2024 23 Dec/2024"},
		{"1y", "20 Jan/2025 25 Nov/2024 30 Sep/2024 5 Aug/2024 10 Jun/2024 15 Apr/2024 19 Feb/2024"},
	} {
		p, _ := stats.LookupPeriod(c.period)
		end := testNow.Truncate(p.Bucket)
		var buckets []string
		for _, b := range p.Buckets(end.Add(-p.Span), end) {
			buckets = append(buckets, p.BucketLabel(b))
		}
		idx := labelIndices(buckets, p.Bucket)
		labels := dayLabels(buckets, idx, axisLabels(buckets))
		var got []string
		for _, i := range idx {
			if c.period == "1d" || labels[i].Sub == "" {
				got = append(got, labels[i].Main)
			} else {
				got = append(got, labels[i].Main+"/"+labels[i].Sub)
			}
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s: labels %q, want %s", c.period, got, c.want)
		}
	}
	// Across new year, a week's midnight labels keep the year under the date.
	wk := []string{"2024-12-30 00:00", "2024-12-31 00:00", "2025-01-01 00:00"}
	if got := dayLabels(wk, []int{2, 1, 0}, axisLabels([]string{"2024-12-30 00:00", "2024-12-31 00:00", "2025-01-01 00:00"})); got[2] != (axisLabel{"1 Jan", "2025"}) {
		t.Errorf("dayLabels: %v", got)
	}
	mixed := []string{"2024-12-31 21:00", "2025-01-01 00:00"}
	if got := dayLabels(mixed, []int{1, 0}, axisLabels(mixed)); got[1] != (axisLabel{"00:00", "1 Jan 2025"}) {
		t.Errorf("dayLabels: %v", got)
	}
	if got := thousands(1234567); got != "1,234,567" {
		t.Error(got)
	}
	if got := cut("abcdefghijklmnopq", 14); got != "abcdefghijklm…" {
		t.Error(got)
	}
	// Multi-line order: by total, then label, whatever the source order.
	_, ss := multiSeries(stats.TopSeries{Labels: []string{"b", "a", "c"}, Buckets: []string{"x"}, Counts: [][]int64{{1, 1, 9}}})
	if ss[0].Label != "c" || ss[1].Label != "a" || ss[2].Label != "b" {
		t.Error(ss)
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("no source accepted")
	}
	if _, err := New(Options{Source: &fakeSource{}, SessionKey: []byte("short")}); err == nil {
		t.Error("short key accepted")
	}
	v, err := New(Options{Source: &fakeSource{}, Links: []Link{{Label: "Greylist", Href: "/greylist-data/"}}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	v.Register(mux)
	// The routes of the server must stay free.
	mux.HandleFunc("GET /api/v1/list", func(http.ResponseWriter, *http.Request) {})
	mux.Handle("/greylist-data/", http.NotFoundHandler())
	mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/?period=1w", nil))
	if !strings.Contains(rec.Body.String(), `<a href="/greylist-data/">Greylist</a>`) {
		t.Error("extra link missing")
	}
}

func TestGzip(t *testing.T) {
	e := newEnv(t, nil)
	req, _ := http.NewRequest("GET", e.srv.URL+"/?period=1w", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Error("not compressed")
	}
}

func BenchmarkOverview(b *testing.B) {
	src := &fakeSource{}
	v, err := New(Options{Source: src, RateLimit: RateLimit{Disabled: true}})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	v.Register(mux)
	req := httptest.NewRequest("GET", "/?period=1w", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		src.mu.Lock()
		src.reqs = src.reqs[:0]
		src.mu.Unlock()
	}
}

// Wrap gives other packages' pages the site's security headers (unless
// they chose their own) and marks their navigation link as current.
func TestWrapHeadersAndNav(t *testing.T) {
	v, err := New(Options{Source: &fakeSource{}, Links: []Link{{Label: "Greylist", Href: "/greylist-data/"}, {Label: "Password check", Href: "/passcheck/"}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	v.Wrap(rec, httptest.NewRequest("GET", "/greylist-data/archive/2024/", nil), "Greylist <2024>", "", "<p>body</p>")
	hd := rec.Header()
	if hd.Get("Content-Security-Policy") != csp || hd.Get("X-Frame-Options") != "DENY" || hd.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", hd)
	}
	body := rec.Body.String()
	for _, w := range []string{`<a href="/greylist-data/" aria-current="page">Greylist</a>`, `<a href="/passcheck/">Password check</a>`,
		"<h1>Greylist &lt;2024&gt;</h1>", "<p>body</p>"} {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	rec = httptest.NewRecorder()
	rec.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'")
	v.Wrap(rec, httptest.NewRequest("GET", "/dynfw/", nil), "Live", "", "")
	if got := rec.Header().Get("Content-Security-Policy"); got != "default-src 'self'; connect-src 'self'" {
		t.Errorf("the caller's policy replaced by %q", got)
	}
	if strings.Contains(rec.Body.String(), "aria-current=\"page\">Greylist") {
		t.Error("Greylist marked current on /dynfw/")
	}
}
