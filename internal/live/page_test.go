package live

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/testenv"
)

// TestPageEscapes: attacker-influenced fields (event names, addresses that
// a custom country source maps to odd codes) are escaped in the page.
func TestPageEscapes(t *testing.T) {
	evil := `<script>alert(1)</script>`
	var got map[string]int64
	h, srv := newTestHub(t, Options{
		Countries: ccMap{"8.8.8.8": "US", "9.9.9.9": `"><img src=x onerror=alert(2)>`},
		MapSVG: func(c map[string]int64) template.HTML {
			got = c
			return `<svg class="testmap"><path data-cc="US"/></svg>`
		},
	})
	h.ApplyList(5, 9, []netip.Prefix{pfx("1.1.1.1")})
	h.SetState(StateConnected, 0)
	h.ApplyEvent(dynfw.Event{Name: evil, Addr: netip.MustParseAddr("8.8.8.8")})
	h.ApplyEvent(dynfw.Event{Name: "telnet_login", Addr: netip.MustParseAddr("9.9.9.9")})
	h.ApplyDelta(dynfw.Delta{Serial: 10, Op: dynfw.Positive, Addr: pfx("8.8.8.8")})

	resp, body := testenv.Get(t, srv.URL+"/dynfw/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("CSP %q", csp)
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
		t.Fatal("unescaped attacker data in the page")
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(body, "&lt;img src=x onerror=alert(2)&gt;") {
		t.Fatal("event name not shown escaped")
	}
	// The only script is the external one, and there is no inline style.
	scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1)
	if len(scripts) != 1 || !strings.Contains(scripts[0], `src="/dynfw/static/live.js?v=`) {
		t.Fatalf("scripts %v", scripts)
	}
	if strings.Contains(body, "style=") || strings.Contains(body, "<style") || regexp.MustCompile(`<[^>]*\son[a-z]+=`).MatchString(body) {
		t.Fatal("inline style or handler")
	}
	for _, want := range []string{`id="lv-state" class="lv-state lv-connected">connected`, `<span id="lv-version">5</span> / <span id="lv-serial">10</span>`,
		`<span id="lv-size">2</span>`, `<code class="lv-ip">8.8.8.8</code>`, `class="testmap"`, "United States", `href="/dynfw/list.txt"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if got["US"] != 1 {
		t.Fatalf("MapSVG got %v", got)
	}
}

func TestPageEmptyAndLayout(t *testing.T) {
	var p Page
	_, srv := newTestHub(t, Options{Layout: func(w http.ResponseWriter, r *http.Request, pg Page) {
		p = pg
		w.Write([]byte("wrapped"))
	}})
	_, body := testenv.Get(t, srv.URL+"/dynfw/")
	if body != "wrapped" || p.Title != Title || !strings.Contains(string(p.Head), "live.css") ||
		!strings.Contains(string(p.Body), "No events yet.") || !strings.Contains(string(p.Body), "disconnected") {
		t.Fatalf("layout got %+v", p)
	}
	resp, _ := testenv.Get(t, srv.URL+"/dynfw")
	if resp.Request.URL.Path != "/dynfw/" {
		t.Fatalf("redirect to %s", resp.Request.URL)
	}
}

func TestStateJSON(t *testing.T) {
	h, srv := newTestHub(t, Options{})
	h.ApplyList(1, 2, []netip.Prefix{pfx("1.1.1.1")})
	h.ApplyEvent(dynfw.Event{Name: "haas_logged", Addr: netip.MustParseAddr("2.2.2.2")})
	h.ApplyDelta(dynfw.Delta{Serial: 3, Op: dynfw.Positive, Addr: pfx("3.3.3.3")})
	resp, body := testenv.Get(t, srv.URL+"/dynfw/state.json")
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Fatal(resp.Header)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		return strings.Join(sorted(k), ",")
	}
	if got := keys(m); got != "countries,deltas,events,names,status,total,types,unknown" {
		t.Fatalf("top level %s", got)
	}
	if got := keys(m["status"].(map[string]any)); got != "last,resyncs,serial,since,size,state,version" {
		t.Fatalf("status %s", got)
	}
	if got := keys(m["events"].([]any)[0].(map[string]any)); got != "cc,event,ip,t" {
		t.Fatalf("event %s", got)
	}
	if got := keys(m["deltas"].([]any)[0].(map[string]any)); got != "cc,ip,op,serial,size,t" {
		t.Fatalf("delta %s", got)
	}
	if m["countries"].(map[string]any)["CZ"] != 1.0 || m["types"].(map[string]any)["haas_logged"] != 1.0 || m["names"].(map[string]any)["CZ"] != "Czechia" {
		t.Fatalf("counts %s", body)
	}
}

func sorted(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestListText(t *testing.T) {
	h, srv := newTestHub(t, Options{})
	h.ApplyList(1, 1, []netip.Prefix{pfx("9.9.9.9"), pfx("2001:db8::/32"), pfx("1.2.3.4"), pfx("10.0.0.0/8")})
	resp, body := testenv.Get(t, srv.URL+"/dynfw/list.txt")
	if body != "1.2.3.4\n9.9.9.9\n10.0.0.0/8\n2001:db8::/32\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%q", body)
	}
	h.ApplyDelta(dynfw.Delta{Serial: 2, Op: dynfw.Negative, Addr: pfx("9.9.9.9")})
	if _, body = testenv.Get(t, srv.URL+"/dynfw/list.txt"); body != "1.2.3.4\n10.0.0.0/8\n2001:db8::/32\n" {
		t.Fatalf("after delta %q", body)
	}
}

func TestStatic(t *testing.T) {
	h, srv := newTestHub(t, Options{})
	resp, js := testenv.Get(t, srv.URL+"/dynfw/static/live.js?v="+h.staticETag)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatal(resp.Header)
	}
	// Attacker-influenced text must only reach the DOM as text.
	for _, bad := range []string{".innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(js, bad) {
			t.Errorf("live.js uses %s", bad)
		}
	}
	resp, _ = testenv.Get(t, srv.URL+"/dynfw/static/live.css")
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatal(resp.Header)
	}
	if resp, _ = testenv.Get(t, srv.URL+"/dynfw/static/other.js"); resp.StatusCode != 404 {
		t.Fatal(resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/dynfw/state.json", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %v %v", resp.StatusCode, err)
	}
}
