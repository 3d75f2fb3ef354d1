// Package certfetch obtains the public CURVE certificate of a DynFW server:
// downloaded over HTTPS (https://repo.turris.cz/sentinel/dynfw.pub for the
// Turris server) with retries and exponential backoff, validated as a zcert
// public certificate, and optionally cached on disk so that a client can
// start when the download server is down.
package certfetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/dynfw/sentinel/zmtp/zcert"
)

// DefaultURL is where Turris publishes the certificate of its DynFW server.
const DefaultURL = "https://repo.turris.cz/sentinel/dynfw.pub"

// Options tunes Fetch. The zero value is usable.
type Options struct {
	// Client performs the requests; default: a client with a 10 s timeout.
	Client *http.Client
	// MinBackoff and MaxBackoff bound the delay between attempts, which
	// doubles after each failure with random jitter. Defaults 1 s and 60 s.
	MinBackoff, MaxBackoff time.Duration
	// Logger reports failed attempts; default: none.
	Logger *slog.Logger
}

// Fetch downloads and validates the certificate at url, retrying until it
// succeeds or ctx ends; then it returns the last attempt's error. The raw
// bytes are returned as well so that a caller can cache them unchanged.
func Fetch(ctx context.Context, url string, o Options) (*zcert.Cert, []byte, error) {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(60*time.Second, o.MinBackoff)
	}
	backoff := o.MinBackoff
	var last error // the last failure of a completed attempt
	giveUp := func(err error) error {
		if last == nil || last == err {
			return err
		}
		return fmt.Errorf("%w (last failure: %v)", ctx.Err(), last)
	}
	for attempt := 1; ; attempt++ {
		cert, raw, err := fetchOnce(ctx, o.Client, url)
		if err == nil {
			return cert, raw, nil
		}
		if ctx.Err() != nil {
			return nil, nil, giveUp(err)
		}
		last = err
		wait := backoff/2 + rand.N(backoff/2+1)
		if o.Logger != nil {
			o.Logger.Warn("server certificate download failed", "url", url, "attempt", attempt, "err", err, "retry_in", wait.Round(time.Millisecond))
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, nil, giveUp(err)
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

// errNotCert marks a response that is not a usable certificate (an HTML error
// page from a captive portal, say). Fetch retries it like any failure.
var errNotCert = errors.New("response is not a CURVE public certificate")

func fetchOnce(ctx context.Context, c *http.Client, url string) (*zcert.Cert, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate URL %q: %w", url, err)
	}
	req.Header.Set("User-Agent", "dynfw-client")
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, zcert.MaxSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if len(raw) > zcert.MaxSize {
		return nil, nil, fmt.Errorf("GET %s: %w: larger than %d bytes", url, errNotCert, zcert.MaxSize)
	}
	cert, err := zcert.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w: %v", url, errNotCert, err)
	}
	if cert.Secret != nil {
		// A server never hands out its secret; refuse to use or cache it.
		return nil, nil, fmt.Errorf("GET %s: %w: it contains a secret key", url, errNotCert)
	}
	return cert, raw, nil
}
