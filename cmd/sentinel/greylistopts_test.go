package main

import (
	"testing"

	"github.com/dynfw/sentinel/internal/view"
)

// TestGreylistOptionsFollowSite: the greylist names the view's data
// licence and attribution unless [greylist] sets its own.
func TestGreylistOptionsFollowSite(t *testing.T) {
	site := view.Site{Attribution: "Example CERT", License: "CC BY 4.0", LicenseURL: "https://creativecommons.org/licenses/by/4.0/"}
	o := greylistOptions(greylistSection{RetentionDays: 30}, site, "/api/v1/list")
	if o.Attribution != "Example CERT" || o.License != "CC BY 4.0" || o.LicenseURL != site.LicenseURL || o.RetentionDays != 30 || o.CurrentListURL != "/api/v1/list" {
		t.Errorf("from the site: %+v", o)
	}
	o = greylistOptions(greylistSection{LicenseURL: "https://example.org/terms", Attribution: "Greylist team"}, site, "")
	if o.Attribution != "Greylist team" || o.LicenseURL != "https://example.org/terms" || o.License != "" {
		t.Errorf("[greylist] set: %+v", o)
	}
	if o = greylistOptions(greylistSection{}, view.Site{}, ""); o.License != "" || o.LicenseURL != "" || o.Attribution != "" {
		t.Errorf("neutral: %+v", o)
	}
}
