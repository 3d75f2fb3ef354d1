package view

import (
	"net/http"

	"github.com/dynfw/sentinel/internal/ratelimit"
)

// ClientAddr returns how the view tells clients apart
// (ratelimit.ClientKey), as a string, for other handlers on the same site
// that limit per client (the live page).
func ClientAddr(trustProxy bool) func(*http.Request) string {
	return func(r *http.Request) string { return ratelimit.ClientKey(r, trustProxy).String() }
}

// isAPI: /api/resource answers JSON; the device endpoints are form
// targets and answer pages.
func isAPI(r *http.Request) bool { return r.URL.Path == "/api/resource" }
