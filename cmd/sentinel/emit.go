package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/emit"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/live"
)

const emitUsage = `Usage: sentinel emit --ip ADDR [--event NAME] [options]

Sends test events to a Sentinel server as its probes would: the same
messages, checked by the server's own parser before they leave, so that
what the server would drop is refused here.

The server records an address of private or documentation space (10/8,
192.0.2/24, 2001:db8::/32, ...) but never lists it; use a global one.

Events (--event; or --type telnet --action login, which is telnet_login):
  telnet_, ftp_, smtp_ + connect, login, invalid   minipot traps
  http_connect, http_message, http_login, http_invalid
  haas_not_logged, haas_logged, haas_logged_active  the HaaS SSH honeypot
  ssh_login_failed                                  sshd failures (faillogs)
  fwlogs_packet                                     a firewall-log packet (--port)
  --scan small|big   port scans: packets to enough distinct ports of a router
                     that the server reports fwlogs_small_port_scan or
                     fwlogs_big_port_scan (--targets for another [portscan])

Paths, chosen by the options:
  ZMQ (default)   the probe ingest, --ingest, as a probe.
  MQTT            --mqtt URL: a broker, as sentinel-proxy publishes for the
                  router --serial with --device-token; the server must
                  subscribe to it (sentinel run --mqtt-url).
  control         the control socket of the server on this host (--data), or
                  --server URL with the admin token: used for --at and
                  --spread, and for --device-token without --mqtt. Probes'
                  clocks are not trusted, so only this path places events
                  in time (up to 71 hours back: older rows would miss the
                  statistics' rollups).

Examples:
  sentinel emit --ip 45.155.205.9 --count 5                  five telnet logins
  sentinel emit --ip 45.155.205.9 --scan big                 a port scan
  sentinel emit --ip 45.155.205.9 --event haas_logged --count 30 --spread 24h
  sentinel emit --ip 45.155.205.9 --device-token new         a router's event for My Devices
`

// cmdEmit sends test events to a server (package emit).
func cmdEmit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		ip, event, typ, action, user, pass, scan, at, token, serial string
		ingest, cert, mqttURL, data, server, adminToken             string
		count, port, targets                                        int
		spread, timeout                                             time.Duration
	)
	c := newCommand("sentinel emit", emitUsage)
	s := c.opts
	s.String(&ip, "ip", nil, "", "attacker address (required)")
	s.String(&event, "event", nil, "telnet_login", "event name, as the server publishes it")
	s.String(&typ, "type", nil, "", "with --action, another spelling of --event: telnet, ftp, smtp, http, haas, ...")
	s.String(&action, "action", nil, "", "with --type: connect, login, invalid, message, logged, not_logged, ...")
	s.Int(&count, "count", nil, 1, "how many events (with --scan: how many scans)")
	s.String(&user, "username", nil, "root", "username of a login or an sshd failure")
	s.String(&pass, "password", nil, "123456", "password of a login")
	s.Int(&port, "port", nil, 23, "the router's port a fwlogs_packet hit")
	s.String(&scan, "scan", nil, "", "send port scans instead: small or big")
	s.Int(&targets, "targets", nil, 0, "distinct ports per scan (default: what the server's default [portscan] needs)")
	s.String(&at, "at", nil, "", "place the (last) event at this time: 2006-01-02T15:04:05Z, 2006-01-02T15:04 (UTC) or a duration ago (90m)")
	s.Duration(&spread, "spread", nil, 0, "spread the events evenly over this time before --at (default now)")
	s.String(&token, "device-token", nil, "", "the router's device token (\"new\" makes one), so that the events show on My Devices")
	s.String(&serial, "serial", nil, "sentinel-emit", "the router's serial (certificate CN), with --device-token")
	s.String(&ingest, "ingest", nil, "tcp://127.0.0.1:7088", "the server's ZMQ probe ingest")
	s.String(&cert, "cert", nil, "", "the server's public certificate (<data>/dynfw.key), for an ingest with --ingest-curve")
	s.String(&mqttURL, "mqtt", nil, "", "send through this MQTT broker, as sentinel-proxy (needs --device-token)")
	s.String(&data, "data", nil, defaultDataDir(), "data directory of the server on this host, for the control socket")
	s.String(&server, "server", nil, "", "URL of the server's HTTP listener, for the control path from another host (with --admin-token)")
	s.String(&adminToken, "admin-token", nil, "", "the server's admin token, with --server")
	s.Duration(&timeout, "timeout", nil, control.DialTimeout, "how long to wait for the server to answer")
	if code, ok := c.parse(args, "", "", stdout, stderr); !ok {
		return code
	}
	now := time.Now()
	spec := emit.Spec{Count: count, Username: user, Password: pass}
	if ip == "" {
		return c.usageError(stderr, "--ip is required")
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return c.usageError(stderr, "--ip %q is not an IP address", ip)
	}
	spec.Addr = a
	if set, _ := s.Set("type"); set || action != "" {
		if typ == "" || action == "" {
			return c.usageError(stderr, "--type and --action go together")
		}
		event = typ + "_" + action
	}
	if scan != "" {
		small, big := emit.ScanTargets()
		switch scan {
		case "small":
			spec.Targets = small
		case "big":
			spec.Targets = big
		default:
			return c.usageError(stderr, "--scan %q: small or big", scan)
		}
		if set, _ := s.Set("event"); set && event != events.FwlogsPacket.String() {
			return c.usageError(stderr, "--scan sends fwlogs packets, not %s", event)
		}
		event = events.FwlogsPacket.String()
	}
	if set, _ := s.Set("targets"); set {
		if scan == "" {
			return c.usageError(stderr, "--targets goes with --scan")
		}
		spec.Targets = targets
	}
	t, ok := events.Lookup(event)
	if !ok {
		return c.usageError(stderr, "unknown event %q; the events are %s", event, strings.Join(emit.Events(), ", "))
	}
	spec.Event = t
	if port < 1 || port > 65535 {
		return c.usageError(stderr, "--port %d: want 1 to 65535", port)
	}
	spec.Port = uint16(port)
	if at != "" || spread != 0 {
		when := now
		if at != "" {
			if when, err = parseAt(at, now); err != nil {
				return c.usageError(stderr, "--at: %v", err)
			}
		}
		if first := when.Add(-spread); first.Before(now.Add(-control.MaxPast)) || when.After(now.Add(control.MaxFuture)) {
			return c.usageError(stderr, "the events would span %s to %s: the server places events from %v ago up to now",
				first.UTC().Format(time.RFC3339), when.UTC().Format(time.RFC3339), control.MaxPast)
		}
		spec.At, spec.Spread = when, spread
	}
	if token != "" {
		if token == "new" {
			if token, err = devicetoken.Generate(); err != nil {
				return c.fail(stderr, err)
			}
			fmt.Fprintf(stdout, "new device token (add it on My Devices): %s\n", token)
		}
		spec.Serial, spec.Token = serial, token
	}
	if err := spec.Check(); err != nil {
		return c.usageError(stderr, "%s", strings.TrimPrefix(err.Error(), emit.ErrSpec.Error()+": "))
	}

	// The path: MQTT when asked, the control channel for what only it
	// carries, else the probe ingest.
	ingestSet, _ := s.Set("ingest")
	placed, device := !spec.At.IsZero(), spec.Token != ""
	var sender emit.Sender
	var where string
	batch := emit.Batch(spec.Event)
	switch {
	case mqttURL != "":
		if !device {
			return c.usageError(stderr, "--mqtt needs --device-token: sentinel-proxy publishes under the router's serial and token")
		}
		if placed || server != "" || ingestSet {
			return c.usageError(stderr, "--mqtt goes without --at, --spread, --server and --ingest (the server takes the receive time of MQTT messages)")
		}
		q, err := emit.DialMQTT(mqttURL, timeout)
		if err != nil {
			return c.fail(stderr, err)
		}
		sender, where = q, "MQTT broker "+mqttURL
	case placed || device || server != "":
		if ingestSet {
			return c.usageError(stderr, "--ingest goes without --at, --spread, --device-token and --server: a probe's ingest takes the receive time and knows no device")
		}
		cl := control.Local(data)
		if server != "" {
			if cl, err = control.Remote(server, adminToken); err != nil {
				return c.usageError(stderr, "--server: %v", err)
			}
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := cl.Ping(pctx)
		cancel()
		if err != nil {
			return c.fail(stderr, err)
		}
		sender, where, batch = emit.Control{C: cl}, "the server at "+cl.Where(), 1000
		if spec.Targets > 0 {
			// Whole scans per message: the server's detector forgets a
			// source placed in the past at its next tick.
			batch = max(spec.Targets, batch-batch%spec.Targets)
		}
	default:
		var key *[32]byte
		if cert != "" {
			if key, err = live.LoadServerKey(cert); err != nil {
				return c.usageError(stderr, "--cert: %v", err)
			}
		}
		z, err := emit.DialZMQ(ctx, ingest, key, timeout)
		if err != nil {
			if errors.Is(err, emit.ErrSpec) {
				return c.usageError(stderr, "--ingest: %v", err)
			}
			return c.fail(stderr, err)
		}
		sender, where = z, ingest
	}
	msgs, err := emit.Messages(spec, now, batch)
	if err != nil {
		sender.Close()
		return c.usageError(stderr, "%s", strings.TrimPrefix(err.Error(), emit.ErrSpec.Error()+": "))
	}
	sent := 0
	for _, m := range msgs {
		n, err := sender.Send(ctx, m)
		sent += n
		if err != nil {
			sender.Close()
			fmt.Fprintf(stdout, "sent %d %s event(s) for %s to %s before it failed\n", sent, spec.Event, spec.Addr, where)
			return c.fail(stderr, err)
		}
	}
	if err := sender.Close(); err != nil {
		return c.fail(stderr, err)
	}
	what := fmt.Sprintf("%d %s event(s)", sent, spec.Event)
	if spec.Targets > 0 {
		small, big := emit.ScanTargets()
		kind := "too few targets for a scan at the default thresholds"
		switch {
		case spec.Targets >= big:
			kind = "big port scans at the default thresholds"
		case spec.Targets >= small:
			kind = "small port scans at the default thresholds"
		}
		what = fmt.Sprintf("%d scan(s) of %d ports, %d fwlogs packets (%s)", spec.Count, spec.Targets, sent, kind)
	}
	fmt.Fprintf(stdout, "sent %s for %s to %s", what, spec.Addr, where)
	if placed {
		first := spec.At.Add(-spec.Spread)
		if spec.Count == 1 {
			first = spec.At
		}
		fmt.Fprintf(stdout, ", placed from %s to %s", first.UTC().Format(time.RFC3339), spec.At.UTC().Format(time.RFC3339))
	}
	if device {
		fmt.Fprintf(stdout, ", from the router %s (token %s)", spec.Serial, devicetoken.Fingerprint(spec.Token))
	}
	fmt.Fprintln(stdout)
	return 0
}

// parseAt reads --at: a time (RFC 3339, or to the minute in UTC) or a
// duration before now.
func parseAt(s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a time (2006-01-02T15:04:05Z, 2006-01-02T15:04) nor a duration ago (90m)", s)
}
