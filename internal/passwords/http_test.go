package passwords

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// testCorpus holds "secret" (e5e9fa1b…, telnet 3 + haas 2), a hash of the
// same 5-hex bucket but another 6th digit (e5e9f0…), an HIBP-only hash in
// the 6-hex bucket of "secret", and "password" from HIBP and smtp.
func testCorpus(t *testing.T) *Corpus {
	t.Helper()
	mk := func(s string) Hash {
		h, err := ParseHash(s)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	path := filepath.Join(t.TempDir(), "api.idx")
	_, err := Build(context.Background(), path, []Entry{
		{Hash: HashPassword("secret"), Count: 3, Sources: SourceTelnet},
		{Hash: mk("e5e9f00000000000000000000000000000000001"), Count: 1, Sources: SourceFTP},
		{Hash: mk("e5e9fa0000000000000000000000000000000002"), HIBP: 42},
		{Hash: HashPassword("password"), Count: 1, HIBP: 9545824, Sources: SourceSMTP},
	}, BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenCorpus(path, CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.Add("secret", SourceHaaS)
	c.Add("secret", SourceHaaS)
	return c
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, h http.Handler, method, target, contentType, body string, hdr ...string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return response{w.Code, w.Result().Header, w.Body.String()}
}

const (
	notJSON = `{"API error":"Invalid HTTP method for URL Please use the POST method."}` + "\n"
	noQuery = `{"msg_type":"response","status":"NO_QUERY"}` + "\n"
)

func validation(msg string) string {
	return `{"error":"` + msg + `","msg_type":"response","status":"VALIDATION_ERROR"}` + "\n"
}

func TestAPI(t *testing.T) {
	c := testCorpus(t)
	mux := http.NewServeMux()
	c.Register(mux)
	const url = "/passcheck/apiv1/"
	const secretOK = `{"data":[{"count":5,"hash":"e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4","sources":["telnet","haas"]}],"msg_type":"response","status":"SUCCESS"}` + "\n"
	for _, tc := range []struct {
		name, method, ctype, body string
		status                    int
		want                      string
	}{
		{"secret", "POST", "application/json", `{"msg_type": "request", "hash": "e5e9fa"}`, 200, secretOK},
		{"GET with a JSON body", "GET", "application/json", `{"hash":"e5e9fa","msg_type":"request"}`, 200, secretOK},
		{"charset parameter", "POST", "application/json; charset=utf-8", `{"msg_type":"request","hash":"e5e9fa"}`, 200, secretOK},
		{"+json type", "POST", "application/vnd.api+json", `{"msg_type":"request","hash":"e5e9fa"}`, 200, secretOK},
		{"other 6th digit", "POST", "application/json", `{"msg_type":"request","hash":"e5e9f0"}`, 200,
			`{"data":[{"count":1,"hash":"e5e9f00000000000000000000000000000000001","sources":["ftp"]}],"msg_type":"response","status":"SUCCESS"}` + "\n"},
		{"honeypot count only", "POST", "application/json", `{"msg_type":"request","hash":"5baa61"}`, 200,
			`{"data":[{"count":1,"hash":"5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8","sources":["smtp"]}],"msg_type":"response","status":"SUCCESS"}` + "\n"},
		{"no match", "POST", "application/json", `{"msg_type":"request","hash":"000000"}`, 200, noQuery},
		{"HIBP-only hash omitted", "POST", "application/json", `{"msg_type":"request","hash":"e5e9fb"}`, 200, noQuery},
		{"no content type", "POST", "", `{"msg_type":"request","hash":"e5e9fa"}`, 400, notJSON},
		{"form", "POST", "application/x-www-form-urlencoded", "hash=e5e9fa", 400, notJSON},
		{"GET without body", "GET", "", "", 400, notJSON},
		{"invalid JSON", "POST", "application/json", `{"msg_type":"request",`, 400, notJSON},
		{"empty JSON body", "POST", "application/json", "", 400, notJSON},
		{"two values", "POST", "application/json", `{} {}`, 400, notJSON},
		{"array", "POST", "application/json", `["e5e9fa"]`, 400, validation(`['e5e9fa'] is not of type 'object'`)},
		{"string", "POST", "application/json", `"e5e9fa"`, 400, validation(`'e5e9fa' is not of type 'object'`)},
		{"null", "POST", "application/json", `null`, 400, validation(`None is not of type 'object'`)},
		{"missing msg_type", "POST", "application/json", `{"hash":"e5e9fa"}`, 400, validation(`'msg_type' is a required property`)},
		{"missing hash", "POST", "application/json", `{"msg_type":"request"}`, 400, validation(`'hash' is a required property`)},
		{"extra key", "POST", "application/json", `{"msg_type":"request","hash":"e5e9fa","x":1}`, 400, validation(`Additional properties are not allowed ('x' was unexpected)`)},
		{"extra keys", "POST", "application/json", `{"msg_type":"request","hash":"e5e9fa","y":1,"x":1}`, 400, validation(`Additional properties are not allowed ('x', 'y' were unexpected)`)},
		{"wrong msg_type", "POST", "application/json", `{"msg_type":"response","hash":"e5e9fa"}`, 400, validation(`'response' is not one of ['request']`)},
		{"msg_type not a string", "POST", "application/json", `{"msg_type":true,"hash":"e5e9fa"}`, 400, validation(`True is not one of ['request']`)},
		{"hash not a string", "POST", "application/json", `{"msg_type":"request","hash":123456}`, 400, validation(`123456 is not of type 'string'`)},
		{"full hash", "POST", "application/json", `{"msg_type":"request","hash":"e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4"}`, 400,
			validation(`'e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4' does not match '^[0-9a-f]{6}$'`)},
		{"upper case", "POST", "application/json", `{"msg_type":"request","hash":"E5E9FA"}`, 400, validation(`'E5E9FA' does not match '^[0-9a-f]{6}$'`)},
		{"non-hex letter", "POST", "application/json", `{"msg_type":"request","hash":"e5e9fz"}`, 400, validation(`'e5e9fz' does not match '^[0-9a-f]{6}$'`)},
		{"quote in hash", "POST", "application/json", `{"msg_type":"request","hash":"it's"}`, 400, validation(`\"it's\" does not match '^[0-9a-f]{6}$'`)},
		{"too large", "POST", "application/json", `{"msg_type":"request","hash":"e5e9fa","pad":"` + strings.Repeat("x", MaxAPIBody) + `"}`, 413,
			validation(`request body larger than 4096 bytes`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, h := range []http.Handler{mux, c.APIHandler()} {
				r := do(t, h, tc.method, url, tc.ctype, tc.body)
				if r.status != tc.status || r.body != tc.want {
					t.Fatalf("got %d %q\nwant %d %q", r.status, r.body, tc.status, tc.want)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Fatalf("Content-Type %q", ct)
				}
			}
		})
	}
	for _, h := range []http.Handler{mux, c.APIHandler()} {
		if r := do(t, h, "PUT", url, "application/json", `{"msg_type":"request","hash":"e5e9fa"}`); r.status != 405 || !strings.Contains(r.header.Get("Allow"), "POST") {
			t.Fatalf("PUT: %d %v", r.status, r.header)
		}
	}
}

var suffixLine = regexp.MustCompile(`^[0-9A-F]{35}:[0-9]+$`)

func TestRange(t *testing.T) {
	c := testCorpus(t)
	mux := http.NewServeMux()
	c.Register(mux)
	const e5e9f = "00000000000000000000000000000000001:1\r\n" +
		"A0000000000000000000000000000000002:42\r\n" +
		"A1BA31ECD1AE84F75CAAA474F3A663F05F4:5"
	for _, h := range []http.Handler{mux, c.RangeHandler()} {
		for _, target := range []string{"/range/e5e9f", "/range/E5E9F", "/range/e5E9f?mode=sha1"} {
			r := do(t, h, "GET", target, "", "")
			if r.status != 200 || r.body != e5e9f {
				t.Fatalf("%s: %d %q", target, r.status, r.body)
			}
			for k, v := range map[string]string{"Content-Type": "text/plain", "Cache-Control": "public, max-age=3600", "Vary": "Add-Padding", "Access-Control-Allow-Origin": "*"} {
				if got := r.header.Get(k); got != v {
					t.Fatalf("%s: %s %q, want %q", target, k, got, v)
				}
			}
		}
		if r := do(t, h, "GET", "/range/5BAA6", "", ""); r.status != 200 || r.body != "1E4C9B93F3F0682250B6CF8331B7EE68FD8:9545825" {
			t.Fatalf("5BAA6: %d %q", r.status, r.body)
		}
		if r := do(t, h, "GET", "/range/00000", "", ""); r.status != 200 || r.body != "" {
			t.Fatalf("empty bucket: %d %q", r.status, r.body)
		}
		if r := do(t, h, "HEAD", "/range/e5e9f", "", ""); r.status != 200 || r.body != "" || r.header.Get("Content-Length") != "116" {
			t.Fatalf("HEAD: %d %q %v", r.status, r.body, r.header)
		}
		for _, bad := range []string{"/range/e5e9", "/range/e5e9fa", "/range/e5e9g", "/range/%20e5e9f"} {
			if r := do(t, h, "GET", bad, "", ""); r.status != 400 || r.body != "The hash prefix was not in a valid format" {
				t.Fatalf("%s: %d %q", bad, r.status, r.body)
			}
		}
		if r := do(t, h, "GET", "/range/e5e9f?mode=ntlm", "", ""); r.status != 400 || r.body != "NTLM mode is not supported: this corpus holds SHA-1 hashes only" {
			t.Fatalf("ntlm: %d %q", r.status, r.body)
		}
		if r := do(t, h, "GET", "/range/e5e9f?mode=md5", "", ""); r.status != 400 || r.body != `Unknown mode "md5"` {
			t.Fatalf("md5: %d %q", r.status, r.body)
		}
		if r := do(t, h, "POST", "/range/e5e9f", "", ""); r.status != 405 {
			t.Fatalf("POST: %d", r.status)
		}
	}
}

func TestRangePadding(t *testing.T) {
	c := testCorpus(t)
	h := c.RangeHandler()
	sizes := map[int]bool{}
	for i := 0; i < 20; i++ {
		r := do(t, h, "GET", "/range/e5e9f", "", "", "Add-Padding", "True")
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		lines := strings.Split(r.body, "\r\n")
		if len(lines) < PadMin || len(lines) > PadMax {
			t.Fatalf("%d lines, want %d-%d", len(lines), PadMin, PadMax)
		}
		sizes[len(lines)] = true
		var real []string
		for _, l := range lines {
			if !suffixLine.MatchString(l) {
				t.Fatalf("bad line %q", l)
			}
			if !strings.HasSuffix(l, ":0") {
				real = append(real, l)
			}
		}
		if strings.Join(real, "\r\n") != do(t, h, "GET", "/range/e5e9f", "", "").body {
			t.Fatalf("real lines %q", real)
		}
		if !slices.IsSorted(lines) {
			t.Fatal("padded answer not sorted")
		}
	}
	if len(sizes) < 5 {
		t.Fatalf("padding sizes not random: %v", sizes)
	}
	// A bucket bigger than PadMax still gets some padding, never less.
	fakes, _ := appendPadding(nil, nil, 0x12345, 1500)
	if len(fakes) > 300 {
		t.Fatalf("%d fakes for 1500 real lines", len(fakes))
	}
	if big, _ := appendPadding(nil, nil, 0, 20000); len(big) > 4000 || !slices.IsSorted(big) {
		t.Fatalf("%d fakes for 20000 real lines", len(big))
	}
	if !slices.IsSorted(fakes) {
		t.Fatal("fakes not sorted")
	}
	for _, f := range fakes {
		if f>>60 != 0x5 {
			t.Fatalf("fake %x outside the bucket", f)
		}
	}
	if r := do(t, h, "GET", "/range/e5e9f", "", "", "Add-Padding", "false"); strings.Count(r.body, "\r\n") != 2 {
		t.Fatalf("padding without the header: %q", r.body)
	}
}

func TestRangeNoStore(t *testing.T) {
	c, err := OpenCorpus(filepath.Join(t.TempDir(), "none.idx"), CorpusOptions{CacheMaxAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := do(t, c.RangeHandler(), "GET", "/range/fffff", "", ""); r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v", r.status, r.header)
	}
}
