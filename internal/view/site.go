package view

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/dynfw/sentinel/internal/stats"
)

// check refuses a Site the pages could not show as meant: a licence link
// that is not http(s) (html/template would blank it) or texts that would
// swamp the header.
func (s Site) check() error {
	if s.LicenseURL != "" {
		u, err := url.Parse(s.LicenseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("view: the data licence URL must be an http or https URL")
		}
	}
	if utf8.RuneCountInString(s.Name) > 60 {
		return errors.New("view: the site name is longer than 60 characters")
	}
	if utf8.RuneCountInString(s.Intro) > 2000 || utf8.RuneCountInString(s.Attribution) > 500 || utf8.RuneCountInString(s.License) > 200 {
		return errors.New("view: the site's intro, attribution or licence text is too long")
	}
	return nil
}

// name is the site's name, or the default.
func (s Site) name() string {
	if n := strings.TrimSpace(s.Name); n != "" {
		return n
	}
	return DefaultSiteName
}

// intro is the overview's introduction, or the default.
func (s Site) intro() string {
	if t := strings.TrimSpace(s.Intro); t != "" {
		return t
	}
	return DefaultIntro
}

// maxSearch bounds what the search box takes: the longest password the
// ingest keeps, in its UTF-8 bytes.
const maxSearch = maxPassword

// search answers the search box of every page (GET /search?q=&period=): an
// IPv4 or IPv6 address goes to its attacker page, anything else to the
// password page of that exact text. An address typed with spaces around
// it is still an address; a password is taken as typed.
func (v *View) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	period := q.Get("period")
	if _, ok := stats.LookupPeriod(period); !ok {
		period = stats.DefaultPeriod
	}
	text := q.Get("q")
	switch {
	case strings.TrimSpace(text) == "":
		v.errorPage(w, r, http.StatusBadRequest, "Type an IP address or a password to search for.")
		return
	case len(text) > maxSearch:
		v.errorPage(w, r, http.StatusBadRequest, "That is longer than any password the traps keep.")
		return
	}
	target := passwordURL(text, period)
	if a, ok := parseAddr(strings.TrimSpace(text)); ok {
		target = attackerURL(a.String(), period)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}
