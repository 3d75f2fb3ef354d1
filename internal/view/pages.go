package view

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/scorecard"
	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/webserver"
)

// pageData is what the layout and every page template receive.
type pageData struct {
	Title   string
	Crumbs  []Link
	Nav     []navItem
	Period  string
	Periods []navItem
	Widgets []widget
	Intro   string

	Attacker *attackerView
	Password *passwordView
	Devices  *devicesView
	// DeviceAdd is the confirmation page of the router's add link.
	DeviceAdd *deviceAddView
	Message   string // error pages

	CSS, JS, Icon string // versioned static URLs
	// Head and Body are the trusted markup of a page another package
	// renders (Wrap).
	Head, Body     template.HTML
	GeoIP, MapNote string
	// Site is the operator's name for the instance and the statistics'
	// licence (Name resolved to its default).
	Site Site
	// SearchMax is the search box's maxlength.
	SearchMax int
	// Refresh is the auto-refresh switch of the short periods (nil on
	// the others).
	Refresh *refreshView
}

// refreshView is the switch of the optional auto-refresh: a link that
// adds or removes refresh=1, and when on a <meta http-equiv="refresh">,
// so that it works without script.
type refreshView struct {
	On      bool
	Href    string
	Seconds int
}

// refreshPeriods are the periods whose pages offer an auto-refresh: their
// newest buckets change within minutes.
var refreshPeriods = map[string]bool{"1h": true, "6h": true}

// refreshSeconds is the interval of the auto-refresh.
const refreshSeconds = 60

type navItem struct {
	Label, Href string
	Active      bool
}

var statPages = []struct{ path, label string }{
	{"/", "Overview"}, {"/attackers/", "Attackers"}, {"/passwords/", "Passwords"},
	{"/incidents/", "Incidents"}, {"/ports/", "Ports"}, {"/devices/", "My Devices"},
}

// page wraps a page handler: the general rate limit, then the period,
// which must be valid: otherwise 302 to the same URL with period=1w and
// the other parameters kept, as the reference does, before any other
// check. What the page computes on demand is charged by fetchAll.
func (v *View) page(h func(http.ResponseWriter, *http.Request, *pageData)) http.Handler {
	return v.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if _, ok := stats.LookupPeriod(q.Get("period")); !ok {
			q.Set("period", stats.DefaultPeriod)
			http.Redirect(w, r, r.URL.EscapedPath()+"?"+q.Encode(), http.StatusFound)
			return
		}
		pd := v.newPage(r, q.Get("period"))
		if refreshPeriods[pd.Period] {
			on := q.Get("refresh") == "1"
			tq := url.Values{}
			for k, vs := range q {
				tq[k] = vs
			}
			if on {
				tq.Del("refresh")
			} else {
				tq.Set("refresh", "1")
			}
			pd.Refresh = &refreshView{On: on, Href: r.URL.EscapedPath() + "?" + tq.Encode(), Seconds: refreshSeconds}
		}
		h(w, r, pd)
	}), v.general)
}

func (v *View) newPage(r *http.Request, period string) *pageData {
	pd := &pageData{Period: period, CSS: staticURL("style.css"), JS: staticURL("view.js"), Icon: staticURL("favicon.svg"),
		GeoIP: v.o.GeoIPAttribution, MapNote: MapAttribution, Site: v.o.Site, SearchMax: maxSearch}
	pd.Site.Name = v.o.Site.name()
	section := "/" + strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0] + "/"
	if section == "//" {
		section = "/"
	}
	for _, p := range statPages {
		pd.Nav = append(pd.Nav, navItem{Label: p.label, Href: p.path + "?period=" + period, Active: p.path == section})
	}
	for _, l := range v.o.Links {
		// A link to another package's pages marks them as the current
		// section, as the statistics pages are marked.
		active := strings.HasSuffix(l.Href, "/") && strings.HasPrefix(r.URL.Path, l.Href)
		pd.Nav = append(pd.Nav, navItem{Label: l.Label, Href: l.Href, Active: active})
	}
	for _, p := range stats.Periods {
		pd.Periods = append(pd.Periods, navItem{Label: p.Label, Href: "?period=" + p.Name, Active: p.Name == period})
	}
	pd.Crumbs = []Link{{Label: "Threat Detection", Href: "/?period=" + period}}
	return pd
}

func (pd *pageData) crumb(label, href string) { pd.Crumbs = append(pd.Crumbs, Link{label, href}) }

func (v *View) statsPage(title, path, intro string, specs []spec) func(http.ResponseWriter, *http.Request, *pageData) {
	return func(w http.ResponseWriter, r *http.Request, pd *pageData) {
		pd.Title, pd.Intro = title, intro
		if path != "/" {
			pd.crumb(title, path+"?period="+pd.Period)
		} else {
			pd.crumb("Overview", "")
		}
		pd.Widgets = v.fetchAll(r.Context(), pd.Period, stats.Request{}, specs)
		v.render(w, r, "stats", pd, http.StatusOK)
	}
}

func (v *View) overview(w http.ResponseWriter, r *http.Request, pd *pageData) {
	v.statsPage("Overview", "/", v.o.Site.intro(), []spec{
		{"all_countries_by_incidents_list", "Incidents by country", "incidents"},
		{"all_attackers_graph", "Unique IP addresses", "Attackers"},
		{"all_incidents_graph", "Incidents", "Incidents"},
		{"top_countries_by_incidents_list", "Top countries", "Incidents"},
		{"top_passwords_by_usages_list", "Top passwords", "Usages"},
	})(w, r, pd)
}

func (v *View) attackers(w http.ResponseWriter, r *http.Request, pd *pageData) {
	v.statsPage("Attackers", "/attackers/", "Addresses that attacked the traps.", []spec{
		{"all_countries_by_attackers_list", "Attackers by country", "attackers"},
		{"all_attackers_graph", "Unique IP addresses", "Attackers"},
		{"top_countries_by_attackers_graph", "Attackers of the top countries", "Attackers"},
		{"top_countries_by_attackers_list_long", "Top countries", "Attackers"},
		{"top_attackers_by_incidents_list_long", "Top attackers", "Incidents"},
	})(w, r, pd)
}

func (v *View) passwords(w http.ResponseWriter, r *http.Request, pd *pageData) {
	v.statsPage("Passwords", "/passwords/", "Credentials tried on the honeypots.", []spec{
		{"top_passwords_by_usages_graph", "Usages of the top passwords", "Usages"},
		{"top_passwords_by_usages_list_long", "Top passwords", "Usages"},
		{"top_usernames_by_usages_list_long", "Top usernames", "Usages"},
		{"top_combinations_by_usages_list_long", "Top combinations", "Usages"},
	})(w, r, pd)
}

func (v *View) incidents(w http.ResponseWriter, r *http.Request, pd *pageData) {
	v.statsPage("Incidents", "/incidents/", "Events reported by the traps.", []spec{
		{"all_countries_by_incidents_list", "Incidents by country", "incidents"},
		{"all_incidents_graph", "Incidents", "Incidents"},
		{"top_countries_by_incidents_graph", "Incidents from the top countries", "Incidents"},
		{"top_traps_by_incidents_graph", "Incidents by trap", "Incidents"},
		{"top_actions_by_incidents_graph", "Incidents by action", "Incidents"},
		{"top_countries_by_incidents_list", "Top countries", "Incidents"},
		{"top_incident_types_by_incidents_list", "Top incident types", "Incidents"},
	})(w, r, pd)
}

func (v *View) ports(w http.ResponseWriter, r *http.Request, pd *pageData) {
	v.statsPage("Ports", "/ports/", "Ports probed by port scans.", []spec{
		{"all_ports_by_scans_graph", "Scanned ports", "Scans"},
		{"top_ports_by_scans_graph", "Scans of the top ports", "Scans"},
		{"top_ports_by_scans_list_long", "Top ports", "Scans"},
	})(w, r, pd)
}

// attackerView is the attacker details page.
type attackerView struct {
	Addr, RDAP string
	Address    *addressView
	// HasExplain: Options.Explain is set. Known: the scorer knows the
	// address. Failed: Explain returned an error.
	HasExplain, Known, Failed bool
	X                         *explainView
	// Sentence is the explanation told in one sentence.
	Sentence string
}

type explainView struct {
	Key                        string
	Score, Entry, Exit         string
	Listed                     bool
	Reason, Since, EarliestEnd string
	NeverListed                string
	Offences                   int
	Tags                       []string
	Counts                     []kv
	FirstSeen, LastSeen        string
	Probes                     string
	History                    []listingView
	Override                   *listingView
}

type kv struct {
	Key   string
	Value uint64
}

type listingView struct {
	Kind, Start, End, Reason, EndReason string
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func newExplainView(x *scorecard.Explanation) *explainView {
	e := &explainView{
		Key:   x.Key.String(),
		Score: fmt.Sprintf("%.2f", x.Score), Entry: fmt.Sprintf("%.2f", x.Entry), Exit: fmt.Sprintf("%.2f", x.Exit),
		Listed: x.Listed, Reason: x.Reason, Since: fmtTime(x.Since), EarliestEnd: fmtTime(x.EarliestEnd),
		NeverListed: x.NeverListed, Offences: x.Offences, Tags: x.Tags,
		FirstSeen: fmtTime(x.FirstSeen), LastSeen: fmtTime(x.LastSeen),
		Probes: fmt.Sprint(x.Probes),
	}
	if x.ProbesAtLeast {
		e.Probes = "at least " + e.Probes
	}
	for k, n := range x.Counts {
		e.Counts = append(e.Counts, kv{k, n})
	}
	slices.SortFunc(e.Counts, func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
	for _, l := range x.History {
		e.History = append(e.History, listingView{Start: fmtTime(l.Start), End: fmtTime(l.End), Reason: l.Reason, EndReason: l.EndReason})
	}
	if o := x.Override; o != nil {
		e.Override = &listingView{Kind: o.Kind, Start: fmtTime(o.Set), End: fmtTime(o.Until), Reason: o.Reason}
	}
	return e
}

// parseAddr accepts an IPv4 or IPv6 address without zone; an IPv4-mapped
// IPv6 address is the IPv4 address.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func (v *View) attackerDetails(w http.ResponseWriter, r *http.Request, pd *pageData) {
	addr, ok := parseAddr(r.PathValue("addr"))
	if !ok {
		v.errorPage(w, r, http.StatusBadRequest, "Not a valid IPv4 or IPv6 address.")
		return
	}
	s := addr.String()
	pd.Title = "Attacker " + s
	pd.crumb("Attackers", "/attackers/?period="+pd.Period)
	pd.crumb(s, "")
	av := &attackerView{Addr: s, RDAP: "https://client.rdap.org/?type=ip&object=" + url.QueryEscape(s),
		Address: v.newAddressView(addr, pd.Period)}
	pd.Attacker = av
	// Reverse DNS only when the visitor asks (the page's link).
	var rdnsc chan *rdnsView
	if r.URL.Query().Get("dns") == "1" {
		rdnsc = make(chan *rdnsView, 1)
		go func() { rdnsc <- v.rdns.lookup(r.Context(), addr) }()
	}
	seenc := make(chan stats.SeenData, 1)
	go func() {
		ctx, cancel := context.WithTimeout(r.Context(), v.o.PageWait)
		defer cancel()
		var sd stats.SeenData
		f, err := stats.Resolve(stats.Request{Name: "selected_attacker_seen", Period: pd.Period, IP: addr})
		if err == nil {
			var res stats.Result
			if res, err = v.o.Source.Fetch(ctx, f); err == nil && res.Seen != nil {
				sd = *res.Seen
			}
		}
		seenc <- sd
	}()
	type exRes struct {
		x   *scorecard.Explanation
		err error
	}
	exc := make(chan exRes, 1)
	if v.o.Explain != nil {
		av.HasExplain = true
		go func() {
			ctx, cancel := context.WithTimeout(r.Context(), v.o.PageWait)
			defer cancel()
			x, err := v.o.Explain(ctx, addr)
			exc <- exRes{x, err}
		}()
	}
	pd.Widgets = v.fetchAll(r.Context(), pd.Period, stats.Request{IP: addr}, []spec{
		{"selected_attacker_incidents_graph", "Events", "Events"},
		{"selected_attacker_traps_list", "Traps and actions", "Events"},
		{"selected_attacker_ports_list", "Ports scanned", "Scans"},
		{"selected_attacker_passwords_list", "Passwords tried", "Usages"},
		{"selected_attacker_usernames_list", "Usernames tried", "Usages"},
	})
	if av.HasExplain {
		res := <-exc
		switch {
		case res.err != nil:
			v.log.Warn("view: explain failed", slog.Any("err", res.err))
			av.Failed = true
		case res.x != nil:
			av.Known, av.X = true, newExplainView(res.x)
			av.Sentence = dynfwSentence(res.x, v.o.Now())
		}
	}
	if sd := <-seenc; !sd.First.IsZero() {
		av.Address.Seen, av.Address.First, av.Address.Last = true, newTimeView(sd.First), newTimeView(sd.Last)
	}
	if rdnsc != nil {
		av.Address.RDNS = <-rdnsc
	}
	v.render(w, r, "attacker", pd, http.StatusOK)
}

// maxPassword bounds what a password link or API parameter may carry: the
// longest password the ingest keeps.
const maxPassword = events.MaxText

// encodePassword is base64url without padding of the UTF-8 password: it
// is safe in a path segment, unlike the reference's standard base64
// ("/" breaks routing).
func encodePassword(pw string) string { return base64.RawURLEncoding.EncodeToString([]byte(pw)) }

// decodePassword accepts base64url with or without padding and, for the
// reference's links, standard base64.
func decodePassword(s string) (string, bool) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) > 0 && len(b) <= maxPassword {
			return string(b), true
		}
	}
	return "", false
}

type passwordView struct {
	Password string
	// Checker is what the password checker knows (nil: no checker).
	Checker *passwordFacts
}

func (v *View) passwordDetails(w http.ResponseWriter, r *http.Request, pd *pageData) {
	pw, ok := decodePassword(r.PathValue("b64"))
	if !ok {
		v.errorPage(w, r, http.StatusBadRequest, "Unable to decode password.")
		return
	}
	pd.Title = "Password " + cut(pw, 40)
	pd.crumb("Passwords", "/passwords/?period="+pd.Period)
	pd.crumb(cut(pw, cutLen), "")
	pd.Password = &passwordView{Password: xmlSafe(pw), Checker: v.passwordFacts(pw)}
	pd.Widgets = v.fetchAll(r.Context(), pd.Period, stats.Request{Password: pw}, []spec{
		{"selected_password_by_usages_graph", "Usages", "Usages"},
		{"logins_of_password_by_usages_list", "Usernames used with this password", "Usages"},
		{"attackers_of_password_list", "Addresses that tried it", "Usages"},
		{"countries_of_password_list", "Countries that tried it", "Usages"},
	})
	v.render(w, r, "password", pd, http.StatusOK)
}

// render executes a template into a buffer (so that a template error
// still gives a clean 500) and sends it, gzipped when the client accepts
// it: the map alone is 170 kB of path data, about 55 kB compressed. The
// devices pages are never compressed, as they hold the CSRF secret next to
// reflected input (BREACH).
func (v *View) render(w http.ResponseWriter, r *http.Request, name string, pd *pageData, code int) {
	for _, wd := range pd.Widgets {
		if wd.State == "limited" {
			v.tooMany(w, r, wd.retry)
			return
		}
	}
	var buf bytes.Buffer
	if err := v.pages[name].ExecuteTemplate(&buf, "layout", pd); err != nil {
		v.log.Error("view: template failed", slog.String("template", name), slog.Any("err", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		cc := "public, max-age=30"
		if p, ok := stats.LookupPeriod(pd.Period); ok && p.MaxAge < 30*time.Second {
			// A page is as fresh as its period's resources.
			cc = "public, max-age=" + strconv.Itoa(int(p.MaxAge.Seconds()))
		}
		for _, wd := range pd.Widgets {
			if wd.State == "computing" || wd.State == "error" {
				cc = "no-store"
			}
		}
		if code != http.StatusOK {
			cc = "no-store"
		}
		h.Set("Cache-Control", cc)
	}
	h.Add("Vary", "Accept-Encoding")
	if name != "devices" && name != "deviceadd" && buf.Len() > 1024 && webserver.AcceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		w.WriteHeader(code)
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		zw.Write(buf.Bytes())
		zw.Close()
		return
	}
	h.Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// errorPage renders msg in the layout with status code.
func (v *View) errorPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	period := r.URL.Query().Get("period")
	if _, ok := stats.LookupPeriod(period); !ok {
		period = stats.DefaultPeriod
	}
	pd := v.newPage(r, period)
	pd.Title = http.StatusText(code)
	pd.Message = msg
	pd.Periods = nil
	pd.crumb(pd.Title, "")
	v.render(w, r, "error", pd, code)
}

// Wrap renders a page that another package built (the live DynFW page, the
// password checker) inside the site's layout: navigation, footer and
// styles. head and body must be trusted markup, produced by html/template.
//
// The response gets the site's security headers (its Content-Security-
// Policy: scripts and styles from this origin only, nothing inline) unless
// the caller set its own already, as the live page does for its event
// stream.
func (v *View) Wrap(w http.ResponseWriter, r *http.Request, title string, head, body template.HTML) {
	hd := w.Header()
	for _, kv := range [][2]string{{"Content-Security-Policy", csp}, {"X-Content-Type-Options", "nosniff"},
		{"Referrer-Policy", "same-origin"}, {"X-Frame-Options", "DENY"}} {
		if hd.Get(kv[0]) == "" {
			hd.Set(kv[0], kv[1])
		}
	}
	pd := v.newPage(r, stats.DefaultPeriod)
	pd.Title, pd.Head, pd.Body = title, head, body
	pd.Periods = nil // not a statistics page
	pd.Crumbs = []Link{{Label: "Threat Detection", Href: "/?period=" + stats.DefaultPeriod}, {Label: title}}
	v.render(w, r, "wrapped", pd, http.StatusOK)
}

// Map draws the world map coloured by values (country code → count), as
// the statistics pages do, followed by its legend (div.maplegend with
// data-unit, the classes' ranges in its ul). Each country's path carries data-cc with its code, and the
// class q1…q6 of its colour, so that scripts can recolour it.
func (v *View) Map(title, unit string, values map[string]int64) template.HTML {
	svg, legend := v.world.render(title, unit, values)
	var buf bytes.Buffer
	buf.WriteString(string(svg))
	if err := v.pages["stats"].ExecuteTemplate(&buf, "maplegend", legend); err != nil {
		v.log.Error("view: map legend failed", slog.Any("err", err))
	}
	return template.HTML(buf.String())
}
