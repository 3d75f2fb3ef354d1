package probe

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/testenv"
)

// Helpers for tagged values (see internal/testenv/packb.py).
func str(s string) []any { return []any{"str", s} }
func bin(s string) []any { return []any{"bin", hexOf(s)} }
func num(v int64) []any  { return []any{"int", strconv.FormatInt(v, 10)} }
func arr(vs ...[]any) []any {
	a := make([]any, len(vs))
	for i, v := range vs {
		a[i] = v
	}
	return []any{"array", a}
}
func kv(k string, v []any) []any { return []any{str(k), v} }
func mp(pairs ...[]any) []any {
	a := make([]any, len(pairs))
	for i, p := range pairs {
		a[i] = p
	}
	return []any{"map", a}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, digits[s[i]>>4], digits[s[i]&15])
	}
	return string(out)
}

// minipotEvent is a map as sentinel-minipot packs it: ts, type, ip,
// action, and data only when non-empty.
func minipotEvent(ts int64, typ, ip, action string, data ...[]any) []any {
	pairs := [][]any{kv("ts", num(ts)), kv("type", str(typ)), kv("ip", str(ip)), kv("action", str(action))}
	if len(data) > 0 {
		pairs = append(pairs, kv("data", mp(data...)))
	}
	return mp(pairs...)
}

func TestParseProbeFixtures(t *testing.T) {
	type want struct {
		types []events.Type
		addrs []string
		bad   int
		errIs error
	}
	cases := []struct {
		name   string
		suffix string
		v      []any
		want   want
	}{
		{"minipot batch of v2.3.0", "minipot", arr(
			minipotEvent(1700000000, "telnet", "1.2.3.4", "connect"),
			minipotEvent(1700000001, "telnet", "1.2.3.4", "login", kv("username", str("root")), kv("password", str("<script>alert(1)</script>"))),
			minipotEvent(1700000002, "http", "::ffff:5.6.7.8", "message", kv("method", str("GET")), kv("url", str("/cgi-bin/x")), kv("user_agent", str("curl"))),
			minipotEvent(1700000003, "smtp", "2001:db8::1", "login", kv("username", str("a@b")), kv("password", str("p")), kv("mechanism", str("plain")), kv("our_domain", str("mx1.abcde.com")), kv("domain", str("b"))),
			minipotEvent(1700000004, "ftp", "9.9.9.9", "invalid"),
		), want{types: []events.Type{events.TelnetConnect, events.TelnetLogin, events.HTTPMessage, events.SMTPLogin, events.FTPInvalid},
			addrs: []string{"1.2.3.4", "1.2.3.4", "5.6.7.8", "2001:db8::1", "9.9.9.9"}}},
		{"minipot single map (after 2.3.0)", "minipot", minipotEvent(1700000000, "http", "10.1.1.1", "connect"),
			want{types: []events.Type{events.HTTPConnect}, addrs: []string{"10.1.1.1"}}},
		{"bin strings", "minipot", mp(kv("ts", num(5)), kv("type", bin("ftp")), kv("ip", bin("8.8.4.4")), kv("action", bin("login")), kv("data", mp(kv("username", bin("u")), kv("password", bin("\xff\xfe"))))),
			want{types: []events.Type{events.FTPLogin}, addrs: []string{"8.8.4.4"}}},
		{"bad entries in a batch keep the good ones", "minipot", arr(
			minipotEvent(1, "telnet", "1.1.1.1", "login"),
			minipotEvent(2, "telnet", "not-an-ip", "login"),
			minipotEvent(3, "gopher", "1.1.1.2", "login"),
			minipotEvent(4, "telnet", "1.1.1.3", "message"),
			num(7),
			mp(kv("ts", num(5)), kv("type", str("ftp")), kv("action", str("connect"))),
			minipotEvent(6, "ftp", "1.1.1.4", "connect"),
		), want{types: []events.Type{events.TelnetLogin, events.FTPConnect}, addrs: []string{"1.1.1.1", "1.1.1.4"}, bad: 5}},
		{"fwlogs packet", "fwlogs", mp(kv("ts", num(1700000000)), kv("protocol", str("TCP")), kv("ip", str("45.1.2.3")), kv("port", num(51234)), kv("local_ip", str("192.0.2.1")), kv("local_port", num(23))),
			want{types: []events.Type{events.FwlogsPacket}, addrs: []string{"45.1.2.3"}}},
		{"faillogs sshd", "faillogs", mp(kv("ts", num(1)), kv("service", str("sshd")), kv("user", str("admin")), kv("ip", str("7.7.7.7")), kv("port", num(22))),
			want{types: []events.Type{events.SSHLoginFailed}, addrs: []string{"7.7.7.7"}}},
		{"haas", "haas", mp(kv("ts", num(1)), kv("ip", str("6.6.6.6")), kv("action", str("logged_active"))),
			want{types: []events.Type{events.HaasLoggedActive}, addrs: []string{"6.6.6.6"}}},
		{"survey is not an attack", "survey", arr(mp(kv("os_version", str("7.0")))), want{errIs: ErrIgnored}},
		{"unknown topic", "nikola", mp(), want{errIs: ErrUnknownTopic}},
		{"a string payload", "minipot", str("hello"), want{errIs: ErrMalformed}},
		{"wide integers", "minipot", mp(kv("ts", []any{"int", "18446744073709551"}), kv("type", str("telnet")), kv("ip", str("1.0.0.1")), kv("action", str("connect"))),
			want{types: []events.Type{events.TelnetConnect}, addrs: []string{"1.0.0.1"}}},
	}
	var packCases []any
	for i, c := range cases {
		packCases = append(packCases, map[string]any{"name": "c" + strconv.Itoa(i), "v": c.v})
	}
	packed := testenv.Packb(t, packCases)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			payload := packed["c"+strconv.Itoa(i)]
			evs, errs := Parse(nil, c.suffix, payload, Meta{Received: 42, Probe: 3, Source: events.FromZMQ})
			if c.want.errIs != nil {
				if len(errs) != 1 || !errors.Is(errs[0], c.want.errIs) || len(evs) != 0 {
					t.Fatalf("got %v events, errors %v; want %v", evs, errs, c.want.errIs)
				}
				return
			}
			if len(errs) != c.want.bad {
				t.Fatalf("%d refused entries (%v), want %d", len(errs), errs, c.want.bad)
			}
			if len(evs) != len(c.want.types) {
				t.Fatalf("%d events, want %d", len(evs), len(c.want.types))
			}
			for j, e := range evs {
				if e.Type != c.want.types[j] || e.Addr != netip.MustParseAddr(c.want.addrs[j]) || e.Time != 42 || e.Probe != 3 || e.Source != events.FromZMQ {
					t.Fatalf("event %d: %+v", j, e)
				}
			}
		})
	}
	// Details survive as bytes, unescaped and uninterpreted.
	evs, _ := Parse(nil, "minipot", packed["c0"], Meta{})
	if d := evs[1].Details; d == nil || d.Username != "root" || d.Password != "<script>alert(1)</script>" {
		t.Fatalf("telnet login details %+v", evs[1].Details)
	}
	if d := evs[2].Details; d == nil || d.URL != "/cgi-bin/x" || d.UserAgent != "curl" || d.Method != "GET" {
		t.Fatalf("http details %+v", evs[2].Details)
	}
	if evs[0].Details != nil || evs[0].TS != 1700000000 {
		t.Fatalf("connect event %+v", evs[0])
	}
	evs, _ = Parse(nil, "fwlogs", packed["c4"], Meta{})
	if d := evs[0].Details; d.LocalPort != 23 || d.Port != 51234 || d.Protocol != "TCP" || d.LocalAddr != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("fwlogs details %+v", d)
	}
}

func TestParseLimits(t *testing.T) {
	// An array header claiming a billion entries in a few bytes.
	payload := []byte{0xdd, 0x40, 0, 0, 0, 0x80}
	if _, errs := Parse(nil, "minipot", payload, Meta{}); len(errs) != 1 || !errors.Is(errs[0], ErrMalformed) {
		t.Fatalf("errs %v", errs)
	}
	// A real batch beyond MaxBatch is refused as a whole, before any work.
	big := append([]byte{0xdd, 0, 0, 0x4e, 0x20}, make([]byte, 20000)...)
	if evs, errs := Parse(nil, "minipot", big, Meta{}); len(errs) != 1 || !errors.Is(errs[0], ErrTooMany) || len(evs) != 0 {
		t.Fatalf("errs %v", errs)
	}
	// Details are bounded.
	long := make([]byte, 0, 5000)
	for len(long) < 5000 {
		long = append(long, 'A')
	}
	var b []byte
	b = append(b, 0x85)
	b = appendStr(b, "ts")
	b = append(b, 0x01)
	b = appendStr(b, "type")
	b = appendStr(b, "telnet")
	b = appendStr(b, "ip")
	b = appendStr(b, "1.2.3.4")
	b = appendStr(b, "action")
	b = appendStr(b, "login")
	b = appendStr(b, "data")
	b = append(b, 0x81)
	b = appendStr(b, "password")
	b = append(b, 0xda, byte(len(long)>>8), byte(len(long)))
	b = append(b, long...)
	evs, errs := Parse(nil, "minipot", b, Meta{})
	if len(errs) != 0 || len(evs) != 1 || len(evs[0].Details.Password) != MaxDetail {
		t.Fatalf("errs %v, events %+v", errs, evs)
	}
	// Every prefix of a valid payload is refused or parsed, never a panic.
	for i := range b {
		Parse(nil, "minipot", b[:i], Meta{})
	}
}

func appendStr(b []byte, s string) []byte {
	return append(append(b, 0xa0|byte(len(s))), s...)
}

func FuzzParse(f *testing.F) {
	f.Add("minipot", []byte("\x91\x85\xa2ts\x01\xa4type\xa6telnet\xa2ip\xa71.2.3.4\xa6action\xa5login\xa4data\x82\xa8username\xa4root\xa8password\xa3abc"))
	f.Add("fwlogs", []byte("\x86\xa2ts\x01\xa8protocol\xa3TCP\xa2ip\xa71.2.3.4\xa4port\xcd\x04\xd2\xa8local_ip\xa71.1.1.1\xaalocal_port\x17"))
	f.Add("faillogs", []byte("\x85\xa2ts\x01\xa7service\xa4sshd\xa4user\xa1u\xa2ip\xa39::1\xa4port\x16"))
	f.Add("haas", []byte("\x83\xa2ts\x01\xa2ip\xa71.2.3.4\xa6action\xa6logged"))
	f.Fuzz(func(t *testing.T, suffix string, payload []byte) {
		evs, errs := Parse(nil, suffix, payload, Meta{})
		for _, e := range evs {
			if !e.Addr.IsValid() || e.Type == events.Invalid {
				t.Fatalf("invalid event %+v", e)
			}
			if d := e.Details; d != nil {
				for _, s := range []string{d.Username, d.Password, d.URL, d.UserAgent, d.Method} {
					if len(s) > MaxDetail || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
						t.Fatalf("detail %q is not storable", s)
					}
				}
			}
		}
		for _, err := range errs {
			_ = err.Error()
		}
	})
}
