package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/dynfw/sentinel/internal/scorecard"
)

// DialTimeout bounds the connection to the server: an operator hears
// within it that the server is not there.
const DialTimeout = 2 * time.Second

// ErrNotRunning is wrapped by the errors of a Client whose server does not
// answer: no socket, a stale one, or nothing listening at the URL.
var ErrNotRunning = errors.New("the server is not running")

// Error is an answer of the server other than success.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Client sends the operator's requests to one server, on its control
// socket (Local) or over HTTP with the admin token (Remote).
type Client struct {
	base  string // "http://sentinel" on the socket
	token string
	hc    *http.Client
	// where names the server in errors: the socket's path or the URL.
	where string
	local bool
}

// Local is the client of the server whose data directory is dir.
func Local(dir string) *Client {
	path := SocketPath(dir)
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		d, err := os.Open(dir)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		var nd net.Dialer
		return nd.DialContext(ctx, "unix", sockAddr(d))
	}
	tr := &http.Transport{DialContext: dial, MaxIdleConns: 1, IdleConnTimeout: 10 * time.Second, ResponseHeaderTimeout: time.Minute}
	return &Client{base: "http://sentinel", hc: &http.Client{Transport: tr}, where: path, local: true}
}

// Remote is the client of the server at base ("http://host:8080"), whose
// admin API takes token.
func Remote(base, token string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://host:port or https://host", base)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: DialTimeout}).DialContext
	tr.TLSHandshakeTimeout = 5 * time.Second
	tr.ResponseHeaderTimeout = time.Minute
	return &Client{base: strings.TrimRight(base, "/"), token: token, hc: &http.Client{Transport: tr}, where: base}, nil
}

// Where names the server: the socket's path or the URL.
func (c *Client) Where() string { return c.where }

// do sends one request; in (when not nil) is the JSON body, out receives
// the JSON answer.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.connError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", c.where, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
			if len(e.Error) > 200 || e.Error == "" {
				e.Error = resp.Status
			}
		}
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: unexpected answer: %w", c.where, err)
	}
	return nil
}

// connError says in the operator's words why the server could not be
// reached.
func (c *Client) connError(err error) error {
	var ne net.Error
	switch {
	case c.local && errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: no control socket %s (is sentinel run running with this --data?)", ErrNotRunning, c.where)
	case c.local && errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: nothing answers on %s (a server that stopped left it)", ErrNotRunning, c.where)
	case c.local && errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%s: permission denied: run as the user of sentinel run (or root)", c.where)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %s refused the connection", ErrNotRunning, c.where)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %s did not answer in time", ErrNotRunning, c.where)
	}
	return fmt.Errorf("%s: %w", c.where, err)
}

// Ping asks whether the server answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, PathHealth, nil, nil)
}

// Block lists r.IP until r.Until or for r.Duration, whatever its score.
func (c *Client) Block(ctx context.Context, r AdminRequest) (AdminResult, error) {
	var res AdminResult
	return res, c.do(ctx, http.MethodPost, PathBlock, r, &res)
}

// Unblock keeps r.IP off the list until r.Until or for r.Duration.
func (c *Client) Unblock(ctx context.Context, r AdminRequest) (AdminResult, error) {
	var res AdminResult
	return res, c.do(ctx, http.MethodPost, PathUnblock, r, &res)
}

// Clear removes the manual override of ip.
func (c *Client) Clear(ctx context.Context, ip string) (AdminResult, error) {
	var res AdminResult
	return res, c.do(ctx, http.MethodPost, PathClear, AdminRequest{IP: ip}, &res)
}

// Explain returns what the scorer knows of a, or nil when it knows
// nothing.
func (c *Client) Explain(ctx context.Context, a netip.Addr) (*scorecard.Explanation, error) {
	var ex scorecard.Explanation
	err := c.do(ctx, http.MethodGet, PathExplain+url.PathEscape(a.String()), nil, &ex)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &ex, nil
}

// List returns the listed keys and the overrides.
func (c *Client) List(ctx context.Context) (List, error) {
	var l List
	return l, c.do(ctx, http.MethodGet, PathList, nil, &l)
}

// Probes returns the probes the server knows.
func (c *Client) Probes(ctx context.Context) ([]Probe, error) {
	var ps []Probe
	return ps, c.do(ctx, http.MethodGet, PathProbes, nil, &ps)
}

// Emit hands a probe message to the server.
func (c *Client) Emit(ctx context.Context, r EmitRequest) (EmitResult, error) {
	var res EmitResult
	return res, c.do(ctx, http.MethodPost, PathEmit, r, &res)
}
