package httpin

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/events"
)

// TestDetailsAreStorable: strings a sensor posts reach the events as
// storable text (events.Storable), as those of the probes do (issue 10,
// fault 5): a NUL, other controls, a cut inside a character.
func TestDetailsAreStorable(t *testing.T) {
	var got []events.Event
	const tok = "0123456789abcdef0123"
	h, err := New([]Token{{Name: "s", Token: tok}}, &events.Probes{}, func(e []events.Event) { got = append(got, e...) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	euro := strings.Repeat("€", 341)
	body := `{"event":"http_login","ip":"192.0.2.1","username":"a\u0000b","password":"` + euro + `€",` +
		`"url":"/x\u001b[2J","user_agent":"ua\r\n","method":"G\u0000T"}`
	r := httptest.NewRequest("POST", "/api/v1/events", strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 202 || len(got) != 1 || got[0].Details == nil {
		t.Fatalf("%d %s %+v", w.Code, w.Body, got)
	}
	d := got[0].Details
	if d.Username != `a\x00b` || d.Password != euro || d.URL != `/x\x1b[2J` || d.UserAgent != "ua\\x0d\n" || d.Method != `G\x00T` {
		t.Errorf("details %+v", *d)
	}
}
