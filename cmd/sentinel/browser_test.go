package main

// Tests of Sentinel View's pages in a real browser: Debian's headless
// Chromium, driven over the DevTools protocol with chromedp, against the
// sentinel binary fed by a libzmq probe.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/dynfw/sentinel/internal/msgpack"
	"github.com/dynfw/sentinel/internal/testenv"
	"github.com/dynfw/sentinel/zmtp"
)

// browser starts a headless Chromium and returns a context driving one
// tab, plus a function returning the console errors seen so far (CSP
// violations and script errors appear there).
func browser(t *testing.T) (context.Context, func() []string) {
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
		return nil, nil
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	// The first call starts the browser, which lives as long as the
	// context of that call: no timeout on it.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	ctx, cancelT := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancelT)
	var (
		errs []string
		mu   sync.Mutex
	)
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enabling the log domain: %v", err)
	}
	add := func(s string) {
		mu.Lock()
		errs = append(errs, s)
		mu.Unlock()
	}
	chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			add(e.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, a.Description+string(a.Value))
				}
				add(strings.Join(parts, " "))
			}
		case *cdplog.EventEntryAdded:
			// CSP violations and failed loads are reported here.
			if e.Entry.Level == cdplog.EntryLevelError {
				add(e.Entry.Text + " " + e.Entry.URL)
			}
		}
	})
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// apiData fetches a resource's data from the view's API.
func apiData(t *testing.T, base, name, period string) json.RawMessage {
	t.Helper()
	resp, err := http.Get(base + "/api/resource?name=" + name + "&period=" + period)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %s", name, b)
	}
	return out.Data
}

// TestBrowserOverview: events pushed by a probe appear on the overview in
// a browser, as a coloured map and a chart, with an attacker's password
// shown as text.
func TestBrowserOverview(t *testing.T) {
	ctx, consoleErrors := browser(t)
	p := startSentinel(t, filepath.Join(t.TempDir(), "data"), [3]int{freePort(t), freePort(t), freePort(t)})
	evs := logins("81.2.69.142", 6) // GB
	for _, e := range evs {
		e["data"] = map[string]string{"username": "root", "password": "<script>alert(1)</script>"}
	}
	evs = append(evs, logins("1.2.3.4", 4)...)     // AU
	evs = append(evs, logins("2001:db8::7", 2)...) // no country
	probePush(t, p.ingest, evs)
	base := "http://" + p.httpA
	waitFor(t, 40*time.Second, "passwords in the 1h view", func() bool {
		d := apiData(t, base, "top_passwords_by_usages_list", "1h")
		return strings.Contains(string(d), `\u003cscript\u003e`)
	})
	waitFor(t, 40*time.Second, "countries in the 1h map", func() bool {
		d := apiData(t, base, "all_countries_by_incidents_list", "1h")
		return strings.Contains(string(d), `"GB":6`) && strings.Contains(string(d), `"AU":4`)
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?period=1h"), chromedp.WaitVisible("svg.map")); err != nil {
		t.Fatal(err)
	}
	eval := func(expr string, out any) {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
		if err == nil {
			err = json.Unmarshal(v, out)
		}
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
	}
	var (
		coloured, blank, scripts int
		colours                  []string
		chartPoints, bodyText    string
	)
	eval(`document.querySelectorAll("svg.map .c:not(.nd)").length`, &coloured)
	eval(`document.querySelectorAll("svg.map .c.nd").length`, &blank)
	eval(`[...document.querySelectorAll("svg.map .c:not(.nd)")].slice(0,1).concat([...document.querySelectorAll("svg.map .c.nd")].slice(0,1)).map(e => getComputedStyle(e).fill)`, &colours)
	eval(`[...document.querySelectorAll("svg.chart polyline.line")].map(e => e.getAttribute("points")).join("|")`, &chartPoints)
	eval(`document.scripts.length`, &scripts)
	eval(`document.body.innerText`, &bodyText)
	if coloured < 2 || blank < 100 {
		t.Errorf("map: %d coloured countries, %d blank", coloured, blank)
	}
	if len(colours) != 2 || colours[0] == colours[1] {
		t.Errorf("map colours %v: a country with incidents looks like one without", colours)
	}
	if chartPoints == "" {
		t.Error("no chart lines rendered")
	}
	// A line that is not flat: some point is above the baseline.
	flat := true
	for _, line := range strings.Split(chartPoints, "|") {
		ys := map[string]bool{}
		for _, pt := range strings.Fields(line) {
			if _, y, ok := strings.Cut(pt, ","); ok {
				ys[y] = true
			}
		}
		if len(ys) > 1 {
			flat = false
		}
	}
	if flat {
		t.Errorf("every chart line is flat: %s", chartPoints)
	}
	if !strings.Contains(bodyText, "<script>alert(1)</script>") && !strings.Contains(bodyText, "<script>alert") {
		t.Errorf("the attacker's password is not shown as text:\n%s", bodyText)
	}
	if scripts > 1 {
		t.Errorf("%d script elements: attacker text became markup", scripts)
	}
	// The greylist's index in the site's layout: navigation, styles and
	// the dark-mode script, under the site's CSP (a violation would be a
	// console error).
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/greylist-data/"), chromedp.WaitVisible("nav.nav")); err != nil {
		t.Fatal(err)
	}
	var grey struct {
		Current, MaxWidth string
		Toggle            bool
	}
	eval(`({Current: document.querySelector("nav.nav a[aria-current]").textContent,
		MaxWidth: getComputedStyle(document.querySelector("main")).maxWidth,
		Toggle: !document.getElementById("theme").hidden})`, &grey)
	if grey.Current != "Greylist" || grey.MaxWidth != "1200px" || !grey.Toggle {
		t.Errorf("greylist page: %+v", grey)
	}
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}

// pushMinipot sends minipot events to the server's probe ingest from this
// process (a ZMTP PUSH socket), so that the time of sending is known to
// the millisecond; it returns when the socket has sent them.
func pushMinipot(t *testing.T, endpoint string, ip string, n int) time.Time {
	t.Helper()
	push, err := zmtp.NewSocket(zmtp.PUSH, zmtp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer push.Close()
	if err := push.Dial("tcp://" + endpoint); err != nil {
		t.Fatal(err)
	}
	var b []byte
	b = msgpack.AppendArrayHeader(b, n)
	for range n {
		b = msgpack.AppendMapHeader(b, 4)
		b = msgpack.AppendString(msgpack.AppendString(b, "type"), "telnet")
		b = msgpack.AppendString(msgpack.AppendString(b, "action"), "connect")
		b = msgpack.AppendString(msgpack.AppendString(b, "ip"), ip)
		b = msgpack.AppendInt(msgpack.AppendString(b, "ts"), time.Now().Unix())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sent := time.Now()
	if err := push.Send(ctx, zmtp.Message{[]byte("sentinel/collect/minipot"), b}); err != nil {
		t.Fatal(err)
	}
	return sent
}

// TestBrowserLive: the live DynFW page shows a new event and a new delta
// within a second of their publication, pushed over SSE.
func TestBrowserLive(t *testing.T) {
	ctx, consoleErrors := browser(t)
	p := startSentinel(t, filepath.Join(t.TempDir(), "data"), [3]int{freePort(t), freePort(t), freePort(t)})
	base := "http://" + p.httpA
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/dynfw/"), chromedp.WaitVisible("#lv-state")); err != nil {
		t.Fatal(err)
	}
	eval := func(expr string, out any) {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr, chromedp.EvalAwaitPromise))
		if err == nil && out != nil {
			err = json.Unmarshal(v, out)
		}
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
	}
	waitFor(t, 10*time.Second, "the live page connected", func() bool {
		var state string
		eval(`document.getElementById("lv-state").textContent`, &state)
		return state == "connected"
	})
	// Record when items about our attacker appear in the two feeds.
	eval(`window.seen = {};
		for (const id of ["lv-events", "lv-deltas"]) {
			new MutationObserver(() => {
				if (!window.seen[id] && document.getElementById(id).textContent.includes("45.155.205.9")) window.seen[id] = Date.now();
			}).observe(document.getElementById(id), {childList: true, subtree: true, characterData: true});
		}
		true`, nil)
	// Twelve telnet connects (weight 0.1 each) score too little to list:
	// one event suffices for the feed, then a burst of logins lists it.
	sent := pushMinipot(t, p.ingest, "45.155.205.9", 1)
	var seen map[string]float64
	waitFor(t, 5*time.Second, "the event in the browser", func() bool {
		eval(`window.seen`, &seen)
		return seen["lv-events"] > 0
	})
	if lat := time.UnixMilli(int64(seen["lv-events"])).Sub(sent); lat > time.Second {
		t.Errorf("event shown %v after it was sent", lat)
	} else {
		t.Logf("event shown %v after it was sent", lat)
	}
	sentLogins := time.Now()
	probePush(t, p.ingest, logins("45.155.205.9", 6))
	waitFor(t, 10*time.Second, "the delta in the browser", func() bool {
		eval(`window.seen`, &seen)
		return seen["lv-deltas"] > 0
	})
	// The delta is published when the scorer lists the address; the
	// logins left the probe after sentLogins (python's start-up included).
	lat := time.UnixMilli(int64(seen["lv-deltas"])).Sub(sentLogins)
	if lat > 3*time.Second {
		t.Errorf("delta shown %v after the logins were pushed", lat)
	}
	var delta struct {
		Published string
		Shown     float64
	}
	eval(`({Published: document.querySelector("#lv-deltas li time").dateTime, Shown: window.seen["lv-deltas"]})`, &delta)
	pub, err := time.Parse(time.RFC3339Nano, delta.Published)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.UnixMilli(int64(delta.Shown)).Sub(pub); d > time.Second {
		t.Errorf("delta shown %v after its publication", d)
	} else {
		t.Logf("delta shown %v after its publication (%v after the probe process started)", d, lat)
	}
	var size string
	eval(`document.getElementById("lv-size").textContent`, &size)
	if size != "1" {
		t.Errorf("list size %q, want 1", size)
	}
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}

// TestBrowserPasswordCheck: the checker page reports a password that a
// probe saw as seen and a random one as not, hashing in the browser.
func TestBrowserPasswordCheck(t *testing.T) {
	ctx, consoleErrors := browser(t)
	p := startSentinel(t, filepath.Join(t.TempDir(), "data"), [3]int{freePort(t), freePort(t), freePort(t)})
	evs := logins("198.51.100.20", 3)
	for _, e := range evs {
		e["data"] = map[string]string{"username": "admin", "password": "correct horse battery staple"}
	}
	probePush(t, p.ingest, evs)
	base := "http://" + p.httpA
	// The corpus answers as soon as the event is processed; wait for the
	// range API to know the hash (SHA-1 of the phrase begins ABF7A).
	waitFor(t, 10*time.Second, "the password in the range API", func() bool {
		resp, err := http.Get(base + "/range/ABF7A")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "AD6438836DBE526AA231ABDE2D0EEF74D42:3")
	})
	check := func(pw string) string {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/passcheck/"),
			chromedp.WaitVisible("#pc-password"),
			chromedp.SendKeys("#pc-password", pw),
			chromedp.Click("#pc-form button"),
		)
		if err != nil {
			t.Fatal(err)
		}
		var text string
		waitFor(t, 10*time.Second, "the checker's answer", func() bool {
			v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("pc-result").textContent`))
			if err != nil {
				t.Fatal(err)
			}
			text = v
			return text != "" && text != "Checking…"
		})
		return text
	}
	if got := check("correct horse battery staple"); !strings.Contains(got, "seen 3 times") {
		t.Errorf("a password attackers used: %q", got)
	}
	if got := check(fmt.Sprintf("never-used-%d", time.Now().UnixNano())); !strings.Contains(got, "no records") {
		t.Errorf("a random password: %q", got)
	}
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
