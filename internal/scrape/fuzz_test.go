package scrape

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

// FuzzReadRequest: whatever a client sends, readRequest returns a request
// with a token method and HTTP/1.0 or 1.1, or an error; where net/http
// reads the request too, both read it alike.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"GET /metrics HTTP/1.1\r\nHost: r\r\n\r\n",
		"HEAD / HTTP/1.0\r\n\r\n",
		"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
		"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n",
		"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET  / HTTP/1.1\r\n\r\n",
		"G\x00T / HTTP/1.1\r\n\r\n",
		"GET / HTTP/2.0\r\n\r\n",
		"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 4096)
		req, err := readRequest(br)
		if err != nil {
			return
		}
		if !token([]byte(req.method)) || req.minor > 1 {
			t.Fatalf("accepted %+v", req)
		}
		// Where net/http reads the same request, both agree on the method,
		// the version and whether the connection ends after the answer.
		hr, herr := http.ReadRequest(bufio.NewReader(bytes.NewReader(in)))
		if herr != nil {
			return
		}
		if hr.Method != req.method || byte(hr.ProtoMinor) != req.minor || hr.Close && !req.close {
			t.Fatalf("net/http reads %s HTTP/1.%d close=%v, readRequest %+v: %q", hr.Method, hr.ProtoMinor, hr.Close, req, in)
		}
	})
}
