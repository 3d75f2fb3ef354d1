package greylist

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
)

// FuzzResolve feeds arbitrary request targets to the path resolver: whatever
// it accepts as a file must be spelt exactly as the store writes names, lie
// inside the store, and be what the decoded request path names; whatever it
// redirects to must stay under URLPrefix.
func FuzzResolve(f *testing.F) {
	for _, seed := range []string{
		"/greylist-data/", "/greylist-data/greylist-latest.csv", "/greylist-data/archive/2024/greylist-2024-03-08.json",
		"/greylist-data/LICENSE.txt", "/greylist-data/archive/2024", "/greylist-data/../etc/passwd",
		"/greylist-data/archive%2f2024/x", "/greylist-data/archive/2024/..%2f..%2fLICENSE.txt",
	} {
		f.Add(seed)
	}
	s := &Store{clock: newFakeClock(march10)}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return
		}
		tgt, ok := s.resolve(&http.Request{Method: http.MethodGet, URL: u})
		if !ok {
			return
		}
		switch tgt.kind {
		case targetFile:
			if !knownName(tgt.name) || path.Clean(tgt.name) != tgt.name || URLPrefix+tgt.name != u.Path {
				t.Fatalf("%q resolved to file %q", raw, tgt.name)
			}
		case targetRedirect:
			if !strings.HasPrefix(tgt.name, URLPrefix) || path.Clean(tgt.name)+"/" != tgt.name {
				t.Fatalf("%q redirects to %q", raw, tgt.name)
			}
		}
	})
}

// knownName is an independent statement of the names the store writes.
func knownName(name string) bool {
	if name == "LICENSE.txt" {
		return true
	}
	for _, f := range formats {
		if name == "greylist-latest."+string(f) {
			return true
		}
	}
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] != "archive" || len(parts[1]) != 4 {
		return false
	}
	y, ok := parseYear(parts[1])
	if !ok {
		return false
	}
	_, _, ok = parseArchiveFile(y, parts[2])
	return ok && strings.HasPrefix(parts[2], "greylist-"+parts[1]+"-")
}
