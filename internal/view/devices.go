package view

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
)

// My Devices (sentinel-view.md §6.5). The visitor's device tokens live in
// their own encrypted session cookie and nowhere else: the resources get
// them from the session (stats.Request.DeviceTokens), never from a URL, so
// no link can show one visitor's device data to another, and a shared
// cache cannot mix them up (the API marks these answers private).
//
// GET /api/device/add?token= stays, because routers open that link, but it
// changes nothing: any site can make a browser follow a link, and a
// third-party page could otherwise fill a visitor's list with devices of
// its choosing until their own router's link is refused (the list is
// full). The GET shows a confirmation page whose button posts the add form;
// adding and removing are POST only, with the CSRF check (the session's
// secret in the form, and no cross-origin request).

type devicesView struct {
	CSRF    string
	Devices []deviceRow
	Full    bool // the session holds maxTokens tokens
	Max     int
}

type deviceRow struct {
	ID, Prefix, Serial  string
	FirstSeen, LastSeen string
	// FirstISO and LastISO are the same times in RFC 3339, for <time>.
	FirstISO, LastISO string
	Known             bool
}

func (v *View) devices(w http.ResponseWriter, r *http.Request, pd *pageData) {
	sess, ok := v.sessions.loadOrNew(r)
	if !ok {
		// The page's forms need the CSRF secret in a cookie.
		v.sessions.save(w, r, sess)
	}
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Add("Vary", "Cookie")
	pd.Title = "My Devices"
	pd.crumb("My Devices", "")
	dv := &devicesView{CSRF: sess.CSRF, Full: len(sess.Tokens) >= maxTokens, Max: maxTokens}
	pd.Devices = dv
	if len(sess.Tokens) == 0 {
		v.render(w, r, "devices", pd, http.StatusOK)
		return
	}
	known := map[string]store.Device{}
	if v.o.Devices != nil {
		ctx, cancel := context.WithTimeout(r.Context(), v.o.PageWait)
		devs, err := v.o.Devices(ctx, sess.Tokens)
		cancel()
		if err != nil {
			v.log.Warn("view: devices lookup failed", slog.Any("err", err))
		}
		for _, d := range devs {
			known[d.Token] = d
		}
	}
	for _, t := range sess.Tokens {
		row := deviceRow{ID: tokenID(t), Prefix: t[:8] + "…"}
		if d, ok := known[t]; ok {
			row.Known, row.Serial = true, d.Serial
			row.FirstSeen, row.LastSeen = fmtTime(d.FirstSeen), fmtTime(d.LastSeen)
			row.FirstISO, row.LastISO = d.FirstSeen.UTC().Format(time.RFC3339), d.LastSeen.UTC().Format(time.RFC3339)
		}
		dv.Devices = append(dv.Devices, row)
	}
	pd.Widgets = v.fetchAll(r.Context(), pd.Period, stats.Request{DeviceTokens: sess.Tokens}, []spec{
		{"my_all_incidents_graph", "Incidents on my devices", "Incidents"},
		{"my_top_traps_by_incidents_graph", "Incidents by trap", "Incidents"},
		{"my_top_countries_by_incidents_graph", "Incidents by country", "Incidents"},
	})
	v.render(w, r, "devices", pd, http.StatusOK)
}

// devicesRedirect sends the browser back to My Devices; the session is the
// truth, so the URL needs no token hash (the reference's, §6.5, only
// served to bust its cache key).
func devicesRedirect(w http.ResponseWriter, r *http.Request, period string) {
	if _, ok := stats.LookupPeriod(period); !ok {
		period = stats.DefaultPeriod
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/devices/?period="+url.QueryEscape(period), http.StatusSeeOther)
}

// deviceAddView is the confirmation page of the router's link.
type deviceAddView struct {
	Token, Prefix, CSRF string
}

// deviceAddGet answers the router's link with a confirmation page in the
// site's layout; nothing is added until its form is posted. A token already
// in the session goes straight to My Devices.
func (v *View) deviceAddGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tok, period := q.Get("token"), q.Get("period")
	if _, ok := stats.LookupPeriod(period); !ok {
		period = stats.DefaultPeriod
	}
	if !v.checkToken(w, r, tok) {
		return
	}
	sess, ok := v.sessions.loadOrNew(r)
	if slices.Contains(sess.Tokens, tok) {
		devicesRedirect(w, r, period)
		return
	}
	if len(sess.Tokens) >= maxTokens {
		v.errorPage(w, r, http.StatusBadRequest, "At most 20 devices per browser; remove one first.")
		return
	}
	if !ok {
		// The form needs the CSRF secret in a cookie.
		v.sessions.save(w, r, sess)
	}
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Add("Vary", "Cookie")
	pd := v.newPage(r, period)
	pd.Periods = nil // the period links would drop the token
	pd.Title = "Add a device"
	pd.crumb("My Devices", "/devices/?period="+period)
	pd.crumb("Add a device", "")
	pd.DeviceAdd = &deviceAddView{Token: tok, Prefix: tok[:8] + "…", CSRF: sess.CSRF}
	v.render(w, r, "deviceadd", pd, http.StatusOK)
}

// checkToken answers 400 for a missing or malformed device token.
func (v *View) checkToken(w http.ResponseWriter, r *http.Request, tok string) bool {
	switch {
	case tok == "":
		v.errorPage(w, r, http.StatusBadRequest, "Device token not provided.")
		return false
	case !validToken(tok):
		v.errorPage(w, r, http.StatusBadRequest, "Bad format of device token.")
		return false
	}
	return true
}

func (v *View) addDevice(w http.ResponseWriter, r *http.Request, tok, period string) {
	if !v.checkToken(w, r, tok) {
		return
	}
	sess, _ := v.sessions.loadOrNew(r)
	toks, ok := addToken(sess.Tokens, tok)
	if !ok {
		v.errorPage(w, r, http.StatusBadRequest, "At most 20 devices per browser; remove one first.")
		return
	}
	sess.Tokens = toks
	v.sessions.save(w, r, sess)
	devicesRedirect(w, r, period)
}

// devicePost handles the add and delete forms, both CSRF-checked.
func (v *View) devicePost(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			v.errorPage(w, r, http.StatusBadRequest, "Bad form.")
			return
		}
		sess, ok := v.sessions.load(r)
		if !v.checkCSRF(r, sess, ok) {
			v.errorPage(w, r, http.StatusForbidden, "The form has expired or comes from another site; reload My Devices and try again.")
			return
		}
		period := r.PostFormValue("period")
		if add {
			v.addDevice(w, r, r.PostFormValue("device_token"), period)
			return
		}
		tok, id := r.PostFormValue("device_token"), r.PostFormValue("device_id")
		if tok == "" && id == "" {
			v.errorPage(w, r, http.StatusBadRequest, "Device token not provided.")
			return
		}
		if tok != "" && !validToken(tok) {
			v.errorPage(w, r, http.StatusBadRequest, "Bad format of device token.")
			return
		}
		kept := sess.Tokens[:0:0]
		for _, t := range sess.Tokens {
			if t != tok && tokenID(t) != id {
				kept = append(kept, t)
			}
		}
		sess.Tokens = kept
		v.sessions.save(w, r, sess)
		devicesRedirect(w, r, period)
	}
}
