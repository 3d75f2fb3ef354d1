package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/scorecard"
)

// The operator's commands of a running server (list, block, unblock,
// clear, explain, probes): on the control socket of its data directory, or
// over HTTP with the admin token.

const adminAbout = `
On the server's host the command talks to the control socket in the data
directory (<data>/control.sock); who may open it may use it, no token is
needed. From elsewhere give --server with the admin token (--admin-token,
or better SENTINEL_ADMIN_TOKEN, which ps does not show).
`

var adminUsages = map[string]string{
	"list": `Usage: sentinel list [options]

Lists the keys on the DynFW list and the manual overrides (blocks and
unblocks): when and why each entered, until when it stays at least.
` + adminAbout,
	"block": `Usage: sentinel block ADDR|PREFIX [--for 24h | --until TIME] [--reason TEXT] [options]

Puts an address (or an IPv6 prefix of the scorer's aggregate size) on the
DynFW list for a while, whatever its score. When the block ends it stays
listed only as long as its score keeps it there.
` + adminAbout,
	"unblock": `Usage: sentinel unblock ADDR|PREFIX [--for 24h | --until TIME] [--reason TEXT] [options]

Keeps an address off the DynFW list for a while (a false positive), whatever
its score. If its score is still high when the unblock ends, it is listed
again.
` + adminAbout,
	"clear": `Usage: sentinel clear ADDR|PREFIX [options]

Removes the manual block or unblock of an address: from now on its score
alone decides.
` + adminAbout,
	"explain": `Usage: sentinel explain ADDR [options]

Says what the server knows of an address: its score, events, listings and
overrides, and why it is or is not listed.
` + adminAbout,
	"probes": `Usage: sentinel probes [options]

Lists the probes (routers, sensors, sentinel emit) the server knows, with
the events each sent since the server started and the time of the latest.
` + adminAbout,
}

// adminArgs are the positional arguments of each command.
var adminArgs = map[string]int{"list": 0, "block": 1, "unblock": 1, "clear": 1, "explain": 1, "probes": 0}

func cmdAdmin(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	var (
		cfgFile, data, server, token, reason string
		asJSON                               bool
		dur                                  time.Duration
		until                                string
	)
	c := newCommand("sentinel "+name, adminUsages[name])
	s := c.opts
	s.AllowArgs = adminArgs[name] > 0
	// The server's config file, for its data directory and admin token.
	s.Lenient = true
	s.String(&cfgFile, "config", nil, "", "config file of sentinel run (TOML; default "+defaultConfigFile+" if it exists): its data and admin-token are used")
	s.String(&data, "data", nil, defaultDataDir(), "data directory of the server, whose control socket is used")
	s.String(&server, "server", nil, "", "URL of the server's HTTP listener, e.g. http://sentinel.example:8080, instead of the control socket")
	s.String(&token, "admin-token", nil, "", "the server's admin token, with --server")
	if name == "block" || name == "unblock" {
		s.Duration(&dur, "for", nil, 24*time.Hour, "how long")
		s.String(&until, "until", nil, "", "until when instead, as 2006-01-02T15:04:05Z (RFC 3339)")
		s.String(&reason, "reason", nil, "", "why, kept in explanations (at most 200 bytes)")
	}
	s.Bool(&asJSON, "json", nil, false, "print the server's answer as JSON")
	if code, ok := c.parse(args, "config", defaultConfigFile, stdout, stderr); !ok {
		return code
	}
	if n := len(s.Args()); n != adminArgs[name] {
		if n < adminArgs[name] {
			return c.usageError(stderr, "which address?")
		}
		return c.usageError(stderr, "unexpected argument %q", s.Args()[adminArgs[name]])
	}
	var target string
	if adminArgs[name] > 0 {
		// The server's own parser: what it would refuse is refused here.
		target = s.Args()[0]
		p, err := dynfw.ParseAddr(target, name != "explain")
		if err != nil {
			return c.usageError(stderr, "%q: %v", target, err)
		}
		target = p.String()
		if name == "explain" {
			target = p.Addr().String()
		}
	}
	var cl *control.Client
	if server != "" {
		var err error
		if cl, err = control.Remote(server, token); err != nil {
			return c.usageError(stderr, "--server: %v", err)
		}
	} else {
		cl = control.Local(data)
	}
	req := control.AdminRequest{IP: target, Reason: reason}
	if name == "block" || name == "unblock" {
		switch set, _ := s.Set("until"); {
		case set && until != "":
			t, err := time.Parse(time.RFC3339, until)
			if err != nil {
				return c.usageError(stderr, "--until: %q is not an RFC 3339 time (2006-01-02T15:04:05Z)", until)
			}
			req.Until = t
		case dur <= 0:
			return c.usageError(stderr, "--for must be positive")
		default:
			req.Duration = dur.String()
		}
		if len(reason) > 200 {
			return c.usageError(stderr, "--reason: at most 200 bytes")
		}
	}
	// out is the answer, show prints it for a person.
	var out any
	var show func()
	var err error
	switch name {
	case "list":
		var l control.List
		l, err = cl.List(ctx)
		out, show = l, func() { control.WriteList(stdout, l) }
	case "block", "unblock", "clear":
		var r control.AdminResult
		switch name {
		case "block":
			r, err = cl.Block(ctx, req)
		case "unblock":
			r, err = cl.Unblock(ctx, req)
		default:
			r, err = cl.Clear(ctx, target)
		}
		out, show = r, func() {
			if name == "clear" {
				fmt.Fprintf(stdout, "cleared the override of %s\n", r.Key)
			} else {
				fmt.Fprintf(stdout, "%sed %s until %s\n", name, r.Key, r.Until.UTC().Format(time.RFC3339))
			}
		}
	case "explain":
		var ex *scorecard.Explanation
		ex, err = cl.Explain(ctx, netip.MustParseAddr(target))
		out, show = ex, func() {
			if ex == nil {
				fmt.Fprintf(stdout, "%s: the server knows nothing of it (no event, no override)\n", target)
				return
			}
			control.WriteExplanation(stdout, ex)
		}
	case "probes":
		var ps []control.Probe
		ps, err = cl.Probes(ctx)
		out, show = ps, func() { control.WriteProbes(stdout, ps) }
	}
	if err != nil {
		var e *control.Error
		if errors.As(err, &e) {
			// The server's refusal, in its words.
			fmt.Fprintf(stderr, "%s: %s: %s\n", c.name, cl.Where(), e.Message)
			return 1
		}
		return c.fail(stderr, err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return 0
	}
	show()
	return 0
}
