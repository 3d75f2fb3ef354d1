package httpin

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/events"
)

func TestHTTPIngest(t *testing.T) {
	var got []events.Event
	probes := &events.Probes{}
	events.Register("fail2ban_sshd", "ssh")
	h, err := New([]Token{{Name: "fail2ban", Token: "0123456789abcdef0123"}}, probes, func(e []events.Event) { got = append(got, e...) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, token, body string) (int, map[string]any) {
		r := httptest.NewRequest(method, "/api/v1/events", strings.NewReader(body))
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var m map[string]any
		json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m
	}
	const tok = "0123456789abcdef0123"
	if code, _ := do("POST", "", `{}`); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := do("POST", "wrong-token-0123456789", `{}`); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, _ := do("GET", tok, ``); code != 405 {
		t.Fatalf("GET: %d", code)
	}
	if code, _ := do("POST", tok, `{not json`); code != 400 {
		t.Fatalf("bad JSON: %d", code)
	}
	if code, _ := do("POST", tok, `"a string"`); code != 400 {
		t.Fatalf("a string: %d", code)
	}
	if code, _ := do("POST", tok, strings.Repeat(" ", MaxBody+10)+"{}"); code != 413 {
		t.Fatalf("huge body: %d", code)
	}
	code, res := do("POST", tok, `{"event":"telnet_login","ip":"192.0.2.7","ts":1700000000,"username":"root","password":"<b>1234</b>"}`)
	if code != 202 || res["accepted"].(float64) != 1 {
		t.Fatalf("one event: %d %v", code, res)
	}
	code, res = do("POST", tok, `[{"event":"fail2ban_sshd","ip":"2001:db8::9"},{"event":"nope","ip":"1.1.1.1"},{"event":"ftp_login","ip":"999.1.1.1"},{"event":"fwlogs_packet","ip":"1.1.1.1"}]`)
	if code != 202 || res["accepted"].(float64) != 1 || res["rejected"].(float64) != 3 || len(res["errors"].([]any)) != 3 {
		t.Fatalf("array: %d %v", code, res)
	}
	if len(got) != 2 || got[0].Type != events.TelnetLogin || got[0].Details.Password != "<b>1234</b>" || got[1].Type.String() != "fail2ban_sshd" {
		t.Fatalf("events %+v", got)
	}
	if p, _ := probes.Get(got[0].Probe); p.Name != "http:fail2ban" {
		t.Fatalf("probe %+v", p)
	}
	if _, err := New([]Token{{Name: "x", Token: "short"}}, probes, nil, nil); err == nil {
		t.Fatal("a short token was accepted")
	}
}
