package greylist

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIndexCountAndNext: the index says how many entries the latest
// snapshot holds, when it was taken and when the next one comes, and
// links the current list; the JSON index carries the same.
func TestIndexCountAndNext(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2024, 3, 10, 9, 30, 0, 0, time.UTC)
	r := startRun(t, dir, start, 0)
	r.clock.waitArmed(t) // the catch-up snapshot is taken, Run waits
	r.store.opts.CurrentListURL = "/api/v1/list"
	h := r.store.Handler()
	body := do(h, "GET", "/greylist-data/").Body.String()
	for _, want := range []string{
		"3 entries",
		`<time datetime="2024-03-10T09:30:00Z">2024-03-10 09:30 UTC</time>`,
		`Next snapshot <time datetime="2024-03-11T00:00:00Z">2024-03-11 00:00 UTC</time>`,
		`<a href="/api/v1/list">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("index lacks %s:\n%s", want, body)
		}
	}
	var cat Catalog
	if err := json.Unmarshal(do(h, "GET", "/greylist-data/?format=json").Body.Bytes(), &cat); err != nil {
		t.Fatal(err)
	}
	if cat.Latest == nil || cat.Latest.Count == nil || *cat.Latest.Count != 3 || cat.Next == nil || !cat.Next.Equal(start.Truncate(24*time.Hour).Add(24*time.Hour)) {
		t.Errorf("catalog %+v", cat)
	}
	// A read-only copy knows the count (from the files) but not the
	// schedule, and says neither "next" nor a wrong time.
	ro, _ := newStore(t, dir, Options{ReadOnly: true})
	body = do(ro.Handler(), "GET", "/greylist-data/").Body.String()
	if !strings.Contains(body, "3 entries") || strings.Contains(body, "Next snapshot") || strings.Contains(body, "/api/v1/list") {
		t.Errorf("read-only index:\n%s", body)
	}
}

// TestLicenseFollowsOperator: LICENSE.txt and the page name the licence
// and attribution the operator configured, and claim none by default.
func TestLicenseFollowsOperator(t *testing.T) {
	dir := t.TempDir()
	s, _ := newStore(t, dir, Options{})
	lic := string(readFile(t, dir, "LICENSE.txt"))
	for _, bad := range []string{"Creative Commons", "BY-NC-SA", "Turris"} {
		if strings.Contains(lic, bad) {
			t.Errorf("default LICENSE.txt claims %q:\n%s", bad, lic)
		}
	}
	if !strings.Contains(lic, DefaultAttribution) || !strings.Contains(lic, "No licence") {
		t.Errorf("default LICENSE.txt:\n%s", lic)
	}
	body := do(s.Handler(), "GET", "/greylist-data/").Body.String()
	if strings.Contains(body, "creativecommons") || !strings.Contains(body, "LICENSE.txt") {
		t.Errorf("default index names a licence:\n%s", body)
	}

	dir2 := t.TempDir()
	s2, _ := newStore(t, dir2, Options{Attribution: "Example CERT", License: "CC BY 4.0", LicenseURL: "https://creativecommons.org/licenses/by/4.0/"})
	lic = string(readFile(t, dir2, "LICENSE.txt"))
	for _, want := range []string{"Example CERT", "CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/"} {
		if !strings.Contains(lic, want) {
			t.Errorf("LICENSE.txt lacks %q:\n%s", want, lic)
		}
	}
	if strings.Contains(lic, "NonCommercial") {
		t.Errorf("LICENSE.txt keeps another licence's terms:\n%s", lic)
	}
	body = do(s2.Handler(), "GET", "/greylist-data/").Body.String()
	if !strings.Contains(body, `Published by Example CERT under <a href="https://creativecommons.org/licenses/by/4.0/" rel="license">CC BY 4.0</a>`) {
		t.Errorf("index:\n%s", body)
	}
	if err := s2.Snapshot(march10, ipv4Entries(2)); err != nil {
		t.Fatal(err)
	}
	csv, _ := os.ReadFile(filepath.Join(dir2, "greylist-latest.csv"))
	if !strings.HasPrefix(string(csv), "# For the terms of use see https://creativecommons.org/licenses/by/4.0/\n") {
		t.Errorf("CSV head %.80q", csv)
	}
}
