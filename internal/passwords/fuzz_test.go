package passwords

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseLine checks that the import line parser never panics and that
// what it accepts is a well-formed line that round-trips.
func FuzzParseLine(f *testing.F) {
	f.Add([]byte("E5E9FA1BA31ECD1AE84F75CAAA474F3A663F05F4:12\r\n"))
	f.Add([]byte("e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4:1"))
	f.Add([]byte(":"))
	f.Fuzz(func(t *testing.T, line []byte) {
		h, n, err := ParseLine(line)
		if err != nil {
			return
		}
		if n == 0 {
			t.Fatal("accepted count 0")
		}
		trimmed := bytes.TrimSpace(line)
		if want := fmt.Sprintf("%s:%d", h, n); !strings.EqualFold(string(trimmed), want) && !bytes.HasPrefix(bytes.ToLower(trimmed), []byte(h.String()+":0")) {
			t.Fatalf("ParseLine(%q) = %s:%d", line, h, n)
		}
		h2, n2, err := ParseLine([]byte(fmt.Sprintf("%s:%d\r\n", strings.ToUpper(h.String()), n)))
		if err != nil || h2 != h || n2 != n {
			t.Fatalf("round trip of %q: %s %d %v", line, h2, n2, err)
		}
	})
}

// FuzzAPIRequest feeds request bodies to the legacy API parser and
// handler: never a panic or a 500, always a JSON answer, and an accepted
// request is exactly the schema.
func FuzzAPIRequest(f *testing.F) {
	f.Add([]byte(`{"msg_type":"request","hash":"e5e9fa"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"msg_type":"request","hash":"e5e9fa","x":null}`))
	dir := f.TempDir()
	c, err := OpenCorpus(filepath.Join(dir, "fuzz.idx"), CorpusOptions{})
	if err != nil {
		f.Fatal(err)
	}
	c.Add("secret", SourceTelnet)
	h := c.APIHandler()
	f.Fuzz(func(t *testing.T, body []byte) {
		p, msg := parseAPIRequest(body)
		if msg == "" {
			var req map[string]any
			if err := json.Unmarshal(body, &req); err != nil || len(req) != 2 || req["msg_type"] != "request" || req["hash"] != fmt.Sprintf("%06x", p) {
				t.Fatalf("accepted %q as prefix %06x", body, p)
			}
		}
		req := httptest.NewRequest("POST", "/passcheck/apiv1/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 413:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("answer %q is not JSON", w.Body.Bytes())
		}
		if w.Code == 200 && msg != "" || w.Code != 200 && msg == "" {
			t.Fatalf("status %d, parser message %q", w.Code, msg)
		}
	})
}
