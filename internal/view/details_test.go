package view

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/asn"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/geoip"
	"github.com/dynfw/sentinel/internal/passwords"
	"github.com/dynfw/sentinel/internal/scorecard"
	"github.com/dynfw/sentinel/internal/scoring"
	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
)

// The detail pages on real components: the SQLite store and the stats
// engine, the DynFW scorer, the embedded country and network tables, the
// password checker's corpus, and Go's DNS resolver asking a DNS server
// run by the test.

var detailNow = time.Date(2026, 3, 4, 12, 7, 30, 0, time.UTC)

// Addresses with a known network: Cloudflare's and Google's resolvers.
var (
	listed4   = netip.MustParseAddr("1.1.1.1")
	listed6   = netip.MustParseAddr("2001:4860:4860::8888")
	quiet4    = netip.MustParseAddr("1.0.0.1")
	private4  = netip.MustParseAddr("10.1.2.3")
	blocked4  = netip.MustParseAddr("8.8.4.4")
	unblock6  = netip.MustParseAddr("2606:4700:4700::1111")
	expired4  = netip.MustParseAddr("9.9.9.9")
	unknown4  = netip.MustParseAddr("208.67.222.222")
	hostile4  = netip.MustParseAddr("8.8.8.8")
	failing4  = netip.MustParseAddr("4.2.2.2")
	secretPw  = "xc3511"
	unknownPw = "correct horse battery staple"
)

// dnsServer answers PTR queries over UDP from a table, NXDOMAIN for the
// rest, and counts the queries.
type dnsServer struct {
	pc    net.PacketConn
	mu    sync.Mutex
	names map[string][]string // "1.1.1.1.in-addr.arpa." → PTR names
	fail  map[string]bool     // SERVFAIL
	n     int
}

func startDNS(t *testing.T, names map[string][]string, fail map[string]bool) *dnsServer {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc, names: names, fail: fail}
	t.Cleanup(func() { pc.Close() })
	go s.serve()
	return s
}

func (s *dnsServer) queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := s.answer(buf[:n]); resp != nil {
			s.pc.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query (RFC 1035 §4.1).
func (s *dnsServer) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	// The question: labels, then type and class.
	i := 12
	var labels []string
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qend := i + 5
	qtype := binary.BigEndian.Uint16(q[i+1:])
	name := strings.ToLower(strings.Join(labels, ".")) + "."
	s.mu.Lock()
	s.n++
	ptrs, fail := s.names[name], s.fail[name]
	s.mu.Unlock()
	out := append([]byte(nil), q[:2]...)
	rcode := uint16(0)
	switch {
	case fail:
		rcode = 2
	case ptrs == nil:
		rcode = 3
	}
	if qtype != 12 {
		ptrs = nil
	}
	out = binary.BigEndian.AppendUint16(out, 0x8180|rcode)
	out = binary.BigEndian.AppendUint16(out, 1)
	out = binary.BigEndian.AppendUint16(out, uint16(len(ptrs)))
	out = append(out, 0, 0, 0, 0)
	out = append(out, q[12:qend]...)
	for _, p := range ptrs {
		var rdata []byte
		for _, l := range strings.Split(strings.TrimSuffix(p, "."), ".") {
			rdata = append(rdata, byte(len(l)))
			rdata = append(rdata, l...)
		}
		rdata = append(rdata, 0)
		out = append(out, 0xc0, 12, 0, 12, 0, 1, 0, 0, 0, 60)
		out = binary.BigEndian.AppendUint16(out, uint16(len(rdata)))
		out = append(out, rdata...)
	}
	return out
}

func arpa(a netip.Addr) string {
	if a.Is4() {
		b := a.As4()
		return netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]}).String() + ".in-addr.arpa."
	}
	b := a.As16()
	var s strings.Builder
	for i := 15; i >= 0; i-- {
		const hex = "0123456789abcdef"
		s.WriteByte(hex[b[i]&15])
		s.WriteByte('.')
		s.WriteByte(hex[b[i]>>4])
		s.WriteByte('.')
	}
	return s.String() + "ip6.arpa."
}

type detailEnv struct {
	*testEnv
	dns *dnsServer
}

// newDetailEnv fills a store and a scorer with the stories of the test's
// addresses and serves the view on them.
func newDetailEnv(t *testing.T) *detailEnv {
	ctx := context.Background()
	st, err := backend.Open(ctx, filepath.Join(t.TempDir(), "stats.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := func(d time.Duration) time.Time { return detailNow.Add(-d).Truncate(time.Second) }
	cc := func(a netip.Addr) string { return geoip.Default().Country(a) }
	b := &store.Batch{}
	for i, a := range []netip.Addr{listed4, listed4, listed4, listed4, listed4, listed6, listed6, private4} {
		b.Incidents = append(b.Incidents, store.Incident{Time: at(50*time.Minute - time.Duration(i)*20*time.Second), Serial: "sn", Token: "tok",
			Trap: "minipot_telnet", Action: "login", IP: a, Country: cc(a)})
	}
	b.Incidents = append(b.Incidents,
		store.Incident{Time: at(20 * time.Minute), Serial: "sn", Trap: "fwlogs", Action: "small_port_scan", IP: listed4, Country: cc(listed4)},
		store.Incident{Time: at(30 * time.Hour), Serial: "sn", Trap: "haas", Action: "logged", IP: listed6, Country: cc(listed6)})
	b.Passwords = []store.Password{
		{Time: at(50 * time.Minute), Trap: "minipot_telnet", Username: "root", Password: secretPw, IP: listed4, Country: cc(listed4)},
		{Time: at(49 * time.Minute), Trap: "minipot_telnet", Username: `"><img src=x onerror=alert(1)>`, Password: xssPassword, IP: listed4, Country: cc(listed4)},
		{Time: at(48 * time.Minute), Trap: "minipot_telnet", Username: "admin", Password: secretPw, IP: listed6, Country: cc(listed6)},
		{Time: at(30 * time.Hour), Trap: "haas", Username: "pi", Password: "raspberry", IP: listed6, Country: cc(listed6)},
	}
	b.Ports = []store.Port{
		{Time: at(20 * time.Minute), Port: 23, Protocol: "TCP", IP: listed4},
		{Time: at(20 * time.Minute), Port: 2323, Protocol: "TCP", IP: listed4},
		{Time: at(29 * time.Hour), Port: 22, Protocol: "TCP", IP: listed6},
	}
	if err := st.Insert(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Rollup(ctx, detailNow); err != nil {
		t.Fatal(err)
	}
	engine := stats.New(st, stats.Options{Now: func() time.Time { return detailNow }})

	sc := scoring.New(scoring.Config{})
	observe := func(a netip.Addr, typ events.Type, n int, start time.Time, step time.Duration) {
		for i := range n {
			sc.Observe(&events.Event{Time: start.Add(time.Duration(i) * step).UnixNano(), Type: typ, Addr: a})
		}
	}
	// Five telnet logins in two minutes list an address.
	observe(listed4, events.TelnetLogin, 5, detailNow.Add(-97*time.Minute), 30*time.Second)
	observe(listed6, events.TelnetLogin, 5, detailNow.Add(-97*time.Minute), 30*time.Second)
	observe(quiet4, events.TelnetLogin, 2, detailNow.Add(-10*time.Minute), 5*time.Minute)
	observe(private4, events.TelnetLogin, 8, detailNow.Add(-10*time.Minute), time.Second)
	observe(blocked4, events.HTTPConnect, 1, detailNow.Add(-3*time.Hour), time.Second)
	if _, _, err := sc.Block(netip.PrefixFrom(blocked4, 32), detailNow.Add(-2*time.Hour), detailNow.Add(22*time.Hour), "abuse report <from a CERT>"); err != nil {
		t.Fatal(err)
	}
	observe(unblock6, events.TelnetLogin, 5, detailNow.Add(-20*time.Minute), time.Minute)
	if _, _, err := sc.Unblock(sc.Key(unblock6), detailNow.Add(-5*time.Minute), detailNow.Add(7*24*time.Hour), "our monitoring"); err != nil {
		t.Fatal(err)
	}
	// Listed two days ago, then the score decayed below the exit
	// threshold: the listing ended.
	observe(expired4, events.TelnetLogin, 5, detailNow.Add(-48*time.Hour), 30*time.Second)
	sc.Tick(detailNow.Add(-2*time.Hour), func(scoring.Change) {})
	explain := func(_ context.Context, a netip.Addr) (*scorecard.Explanation, error) {
		x, ok := sc.Explain(a, detailNow)
		if !ok {
			return nil, nil
		}
		return &x, nil
	}

	corpus, err := passwords.OpenCorpus(filepath.Join(t.TempDir(), "passwords.idx"), passwords.CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { corpus.Close() })
	for range 3 {
		corpus.Add(secretPw, passwords.SourceTelnet)
	}
	corpus.Add(secretPw, passwords.SourceHaaS)

	dns := startDNS(t, map[string][]string{
		arpa(listed4):  {"one.one.one.one."},
		arpa(listed6):  {"dns.google."},
		arpa(hostile4): {"<script>alert(1)</script>.example."},
	}, map[string]bool{arpa(failing4): true})
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns.pc.LocalAddr().String())
	}}

	o := Options{Source: engine, SessionKey: make([]byte, 32), Now: func() time.Time { return detailNow },
		RateLimit: RateLimit{Disabled: true}, Explain: explain,
		Countries: geoip.Default(), Networks: asn.Default(), Resolver: res}
	v, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	v.SetPasswords(corpus)
	mux := http.NewServeMux()
	v.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &detailEnv{testEnv: &testEnv{t: t, v: v, srv: srv}, dns: dns}
}

func attackerPage(e *detailEnv, a netip.Addr, query string) string {
	e.t.Helper()
	resp, body := e.get(nil, "/attackers/details/ip/"+a.String()+"?"+query)
	wantStatus(e.t, resp, body, 200)
	return body
}

func TestAttackerPageDetails(t *testing.T) {
	e := newDetailEnv(t)
	for _, c := range []struct {
		a      netip.Addr
		period string
		as     string
		subs   []string
	}{
		{listed4, "1h", "AS13335", []string{
			"Passwords tried", `<a href="/passwords/details/` + encodePassword(secretPw) + `?period=1h">xc3511</a>`,
			"Usernames tried", ">root<", "Ports scanned", "TCP/23", "TCP/2323", "Traps and actions", "minipot_telnet", "small_port_scan",
			// The first and last minute with an event, in this period.
			`<time datetime="2026-03-04T11:17:00Z">2026-03-04 11:17 UTC</time>`, `<time datetime="2026-03-04T11:48:00Z">2026-03-04 11:48 UTC</time>`}},
		// The week reads hourly rollups, and sees the older events.
		{listed6, "1w", "AS15169", []string{
			"Passwords tried", "raspberry", "xc3511", "Usernames tried", ">pi<", ">admin<", "TCP/22", "haas",
			`<time datetime="2026-03-03T06:00:00Z">2026-03-03 06:00 UTC</time>`, `<time datetime="2026-03-04T12:00:00Z">2026-03-04 12:00 UTC</time>`}},
	} {
		body := attackerPage(e, c.a, "period="+c.period)
		country := countryLabel(geoip.Default().Country(c.a))
		as := asn.Default().Lookup(c.a)
		if !strings.HasPrefix(c.as, "AS") || as.String() == "" || "AS"+strconv.FormatUint(uint64(as.Number), 10) != c.as {
			t.Fatalf("%v: the embedded table says %v, want %s", c.a, as, c.as)
		}
		wantContains(t, body, append(c.subs,
			"<dt>Country</dt><dd>"+country+` <small class="raw">`,
			">"+c.as+"</a> "+htmlText(as.Name)+"</dd>",
			`<a href="https://db-ip.com" rel="noopener noreferrer">DB-IP</a>`, "CC BY 4.0",
			// Reverse DNS only on request.
			`<a href="/attackers/details/ip/`+c.a.String()+"?period="+c.period+`&amp;dns=1#rdns" rel="nofollow">Look up the name</a>`)...)
		// Attacker-typed strings arrive escaped.
		if strings.Contains(body, "<img src=x") || strings.Contains(body, "<script>alert") {
			t.Errorf("%v: unescaped attacker text", c.a)
		}
	}
	if n := e.dns.queries(); n != 0 {
		t.Errorf("%d DNS queries without a request", n)
	}
	// A private address has no country, network or name to look up.
	body := attackerPage(e, private4, "period=1h")
	wantContains(t, body, "None: a private or reserved address", "<dt>Network</dt><dd>Unknown</dd>", "None: not a public address")
	// An address without events in the period.
	body = attackerPage(e, unknown4, "period=1h")
	wantContains(t, body, "<dt>First seen</dt><dd>Not in this period</dd>", "Passwords tried", "No data available from this period.")
}

// htmlText is what html/template makes of an AS name.
func htmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "+", "&#43;").Replace(s)
}

// TestAttackerSentence: the DynFW headline is one sentence for every
// state of an address, the full explanation below it.
func TestAttackerSentence(t *testing.T) {
	e := newDetailEnv(t)
	for _, c := range []struct {
		a    netip.Addr
		want string // a regular expression of the headline
	}{
		// Listed at the fourth login, with the score it then had.
		{listed4, `<p class="status listed">Listed since 10:32 UTC: 5 telnet logins in 2 minutes \(score 10\.0, threshold 10\)\.</p>`},
		{listed6, `<p class="status listed">Listed since 10:32 UTC: 5 telnet logins in 2 minutes \(score 10\.0, threshold 10\)\.</p>`},
		{quiet4, `<p class="status unlisted">Not listed: 2 telnet logins in 5 minutes \(score 5\.0, threshold 10\)\.</p>`},
		{private4, `<p class="status unlisted">Never listed: a private or reserved address, which DynFW never publishes \(8 telnet logins within a minute\)\.</p>`},
		{blocked4, `<p class="status listed">Blocked by hand since 10:07 UTC, until 2026-03-05 10:07 UTC: abuse report &lt;from a CERT&gt;\.</p>`},
		{unblock6, `<p class="status unlisted">Unblocked by hand until 2026-03-11 12:07 UTC \(our monitoring\): 5 telnet logins in 4 minutes \(score now 12\.\d, threshold 10\)\.</p>`},
		{expired4, `<p class="status unlisted">Not listed since 10:07 UTC \(listed from 2026-03-02 12:09 UTC; ended: score below the exit threshold 5\): 5 telnet logins in 2 minutes \(score now \d\.\d, threshold 10\)\.</p>`},
		{unknown4, `<p class="status unlisted">Not listed: DynFW has no record of this address\.</p>`},
	} {
		body := attackerPage(e, c.a, "period=1h")
		if !regexp.MustCompile(c.want).MatchString(body) {
			i := strings.Index(body, `<p class="status`)
			t.Errorf("%v: headline\n%.300s\nwant %s", c.a, body[max(i, 0):], c.want)
		}
		if c.a != unknown4 {
			wantContains(t, body, "<summary>Full explanation</summary>", "<dt>Score</dt>")
		}
	}
}

func TestReverseDNS(t *testing.T) {
	e := newDetailEnv(t)
	body := attackerPage(e, listed4, "period=1h&dns=1")
	wantContains(t, body, `<dd id="rdns"><code>one.one.one.one</code>`)
	body = attackerPage(e, listed6, "period=1w&dns=1")
	wantContains(t, body, `<dd id="rdns"><code>dns.google</code>`)
	if n := e.dns.queries(); n != 2 {
		t.Errorf("%d DNS queries, want 2", n)
	}
	// Cached: asking again does not query again.
	attackerPage(e, listed4, "period=1w&dns=1")
	if n := e.dns.queries(); n != 2 {
		t.Errorf("%d DNS queries after a cached lookup, want 2", n)
	}
	// No name, a failing server, a hostile name: a note, never the name.
	wantContains(t, attackerPage(e, quiet4, "period=1h&dns=1"), "No reverse DNS name.")
	wantContains(t, attackerPage(e, failing4, "period=1h&dns=1"), "The lookup failed; try again later.")
	body = attackerPage(e, hostile4, "period=1h&dns=1")
	if strings.Contains(body, "<script>") || strings.Contains(body, "alert(1)") {
		t.Error("hostile PTR name on the page")
	}
	// A private address is never looked up.
	before := e.dns.queries()
	wantContains(t, attackerPage(e, private4, "period=1h&dns=1"), "No public name: not a public address.")
	if e.dns.queries() != before {
		t.Error("looked up a private address")
	}
	// The site's budget: a burst of 10 lookups, then a note (the clock
	// stands still, so nothing refills).
	for i := range 12 {
		a := netip.AddrFrom4([4]byte{1, 2, 3, byte(i)})
		body = attackerPage(e, a, "period=1h&dns=1")
	}
	wantContains(t, body, "Too many lookups right now; try again in a minute.")
	if n := e.dns.queries(); n > rdnsBurst+before {
		t.Errorf("%d DNS queries, the budget allows %d", n-before, rdnsBurst)
	}
	// Every outcome is counted for /metrics.
	got := e.v.ReverseDNSLookups()
	// 10 lookups: 2 names, 1 + 5 without one, 2 failures (the failing
	// server, the hostile name); then the budget is spent.
	want := map[string]uint64{"name": 2, "none": 1 + 5, "failed": 2, "cached": 1, "private": 1, "limited": 7}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("ReverseDNSLookups()[%q] = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
}

// deadlineResolver records the deadline each lookup got.
type deadlineResolver struct{ deadline time.Duration }

func (d *deadlineResolver) LookupAddr(ctx context.Context, _ string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dl, ok := ctx.Deadline()
	if !ok {
		return nil, errors.New("no deadline")
	}
	d.deadline = time.Until(dl)
	return []string{"x.example."}, nil
}

// TestReverseDNSBounded: a lookup never waits longer than rdnsTimeout.
func TestReverseDNSBounded(t *testing.T) {
	r := &deadlineResolver{}
	c := newRDNS(r, func() time.Time { return detailNow })
	got := c.lookup(context.Background(), listed4)
	if len(got.Names) != 1 || got.Names[0] != "x.example" {
		t.Fatalf("lookup = %+v", got)
	}
	if r.deadline <= 0 || r.deadline > rdnsTimeout {
		t.Errorf("lookup deadline %v, want at most %v", r.deadline, rdnsTimeout)
	}
	// A visitor who leaves does not cut short the lookup that everyone
	// will see from the cache.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := c.lookup(ctx, listed6); len(got.Names) != 1 {
		t.Errorf("lookup after the visitor left = %+v", got)
	}
}

func TestPasswordPageDetails(t *testing.T) {
	e := newDetailEnv(t)
	resp, body := e.get(nil, "/passwords/details/"+encodePassword(secretPw)+"?period=1h")
	wantStatus(t, resp, body, 200)
	c4, c6 := geoip.Default().Country(listed4), geoip.Default().Country(listed6)
	wantContains(t, body, "Usernames used with this password", ">root<", ">admin<",
		"Addresses that tried it", `<a href="/attackers/details/ip/1.1.1.1?period=1h">1.1.1.1</a>`,
		`<a href="/attackers/details/ip/2001:4860:4860::8888?period=1h">`,
		"Countries that tried it", countryLabel(c4)+` <small class="cap">`+c4+`</small>`, countryLabel(c6)+` <small class="cap">`+c6+`</small>`,
		"Known to the password checker: tried 4 times on the honeypots (Telnet honeypot, SSH honeypot (HaaS)).",
		`<a href="/passcheck/">Check another password</a>`)
	resp, body = e.get(nil, "/passwords/details/"+encodePassword(unknownPw)+"?period=1h")
	wantStatus(t, resp, body, 200)
	wantContains(t, body, "Not known to the password checker.", "Addresses that tried it", "No data available from this period.")
	// The week reads rollups: the older password and its IPv6 address.
	_, body = e.get(nil, "/passwords/details/"+encodePassword("raspberry")+"?period=1w")
	wantContains(t, body, `<a href="/attackers/details/ip/2001:4860:4860::8888?period=1w">`, "Not known to the password checker.")
	// A hostile password is shown escaped, and its page links safely.
	_, body = e.get(nil, "/passwords/details/"+encodePassword(xssPassword)+"?period=1h")
	wantContains(t, body, "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>", `<a href="/attackers/details/ip/1.1.1.1?period=1h">`)
	if strings.Contains(body, "<script>alert") {
		t.Error("unescaped password")
	}
}
