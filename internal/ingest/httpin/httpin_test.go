package httpin

import (
	"bytes"
	"encoding/json"
	"log/slog"
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

// TestWholeRequestRejects: every request refused as a whole gets its
// status and is counted under its reason; data after the JSON value is
// refused, white space is not.
func TestWholeRequestRejects(t *testing.T) {
	var delivered int
	var logs bytes.Buffer
	h, err := New([]Token{{Name: "sensor", Token: "0123456789abcdef0123"}}, &events.Probes{},
		func(e []events.Event) { delivered += len(e) }, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	const tok = "0123456789abcdef0123"
	one := `{"event":"telnet_login","ip":"192.0.2.7"}`
	many := "[" + strings.Repeat(one+",", MaxEvents) + one + "]"
	for _, tc := range []struct {
		method, token, body string
		code                int
		reason              RequestReason
	}{
		{"GET", tok, "", 405, ReasonMethod},
		{"POST", "", one, 401, ReasonUnauthorized},
		{"POST", tok, strings.Repeat(" ", MaxBody+10) + "{}", 413, ReasonTooLarge},
		{"POST", tok, many, 413, ReasonTooManyEvents},
		{"POST", tok, `{not json`, 400, ReasonBadJSON},
		{"POST", tok, `{"event":"telnet_login"`, 400, ReasonBadJSON},
		{"POST", tok, one + `garbage<script>`, 400, ReasonTrailingData},
		{"POST", tok, one + one, 400, ReasonTrailingData},
		{"POST", tok, one + ` ]`, 400, ReasonTrailingData},
		{"POST", tok, `"a string"`, 400, ReasonBadShape},
		{"POST", tok, `[1, 2]`, 400, ReasonBadShape},
	} {
		before := h.RequestsRejected(tc.reason)
		r := httptest.NewRequest(tc.method, "/api/v1/events", strings.NewReader(tc.body))
		if tc.token != "" {
			r.Header.Set("Authorization", "Bearer "+tc.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.code {
			t.Errorf("%s %.40q: %d, want %d: %s", tc.method, tc.body, w.Code, tc.code, w.Body)
		}
		if got := h.RequestsRejected(tc.reason) - before; got != 1 {
			t.Errorf("%.40q: %s counted %d times", tc.body, tc.reason, got)
		}
	}
	if delivered != 0 {
		t.Fatalf("%d events delivered from refused requests", delivered)
	}
	// White space after the value is fine.
	r := httptest.NewRequest("POST", "/api/v1/events", strings.NewReader(one+" \r\n\t"))
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 202 || delivered != 1 {
		t.Fatalf("trailing white space: %d, %d delivered", w.Code, delivered)
	}
	// The log names the reason, never the content.
	if !strings.Contains(logs.String(), "reason=trailing_data") || strings.Contains(logs.String(), "script") || strings.Contains(logs.String(), "not json") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// TestTrailingGarbageRefused: a body with anything but white space after
// its JSON value is refused as a whole (it was accepted with 202).
func TestTrailingGarbageRefused(t *testing.T) {
	var delivered int
	h, err := New([]Token{{Name: "sensor", Token: "0123456789abcdef0123"}}, &events.Probes{}, func(e []events.Event) { delivered += len(e) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"event":"telnet_login","ip":"192.0.2.7"}x`,
		`{"event":"telnet_login","ip":"192.0.2.7"} {"event":"telnet_login","ip":"192.0.2.8"}`,
		`[{"event":"telnet_login","ip":"192.0.2.7"}] trailing`,
	} {
		r := httptest.NewRequest("POST", "/api/v1/events", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 400 {
			t.Errorf("%q: %d, want 400", body, w.Code)
		}
	}
	if delivered != 0 {
		t.Fatalf("%d events delivered", delivered)
	}
}
