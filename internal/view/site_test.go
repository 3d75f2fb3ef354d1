package view

import (
	"strings"
	"testing"
)

// TestSiteDefaultsNeutral: without configuration the pages claim no
// network, licence or brand but the software's.
func TestSiteDefaultsNeutral(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/?period=1w", "/ports/?period=1d", "/search?q="} {
		_, body := e.get(nil, p)
		wantLacks(t, p, body, "Turris", "BY-NC-SA", "creativecommons", "licensed under", "Sentinel View")
		wantContains(t, body, `">Sentinel</a>`, "Times are in UTC")
	}
	_, body := e.get(nil, "/?period=1w")
	wantContains(t, body, "<title>Overview · Sentinel</title>", `<p class="intro">`+DefaultIntro+`</p>`)
}

// TestSiteConfigured: the operator's name, introduction, source and
// licence show where the defaults were.
func TestSiteConfigured(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Site = Site{Name: "Turris Sentinel View", Intro: "Attacks on Turris routers reported to Sentinel.",
			Attribution: "the Turris Sentinel network", License: "CC BY-NC-SA 4.0",
			LicenseURL: "https://creativecommons.org/licenses/by-nc-sa/4.0/"}
	})
	_, body := e.get(nil, "/?period=1w")
	wantContains(t, body, `<a class="brand" href="/?period=1w">Turris Sentinel View</a>`, "<title>Overview · Turris Sentinel View</title>",
		`<p class="intro">Attacks on Turris routers reported to Sentinel.</p>`,
		`The statistics come from the Turris Sentinel network and are licensed under <a href="https://creativecommons.org/licenses/by-nc-sa/4.0/" rel="license noreferrer">CC BY-NC-SA 4.0</a>.`)
	// A licence without attribution, without a link; text is escaped.
	e = newEnv(t, func(o *Options) { o.Site = Site{License: "<b>ODbL</b>"} })
	_, body = e.get(nil, "/?period=1w")
	wantContains(t, body, "The statistics are licensed under &lt;b&gt;ODbL&lt;/b&gt;.")
	for _, bad := range []Site{{LicenseURL: "javascript:alert(1)"}, {LicenseURL: "/relative"}, {Name: strings.Repeat("x", 61)}} {
		if _, err := New(Options{Source: &fakeSource{}, Site: bad}); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}
