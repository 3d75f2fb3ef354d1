// Package emit makes the messages of test probe events and sends them to a
// Sentinel server: what `sentinel emit` does to fill a server's pages and
// see its pipeline work.
//
// A Spec names events in the server's vocabulary (package events): a
// minipot's connections, logins and invalid commands on its four traps,
// HaaS sessions, sshd failures (faillogs), firewall-log packets, and port
// scans as packets to enough distinct ports that the server's detector
// reports them. Messages turns it into the messages the probes send (topic
// and msgpack payload) and runs each through the server's own probe parser
// (package probe) before anything is sent, so that what the server would
// refuse is refused here, in its words.
//
// Three Senders deliver them: ZMQ, to the probe ingest as a probe does;
// MQTT, to a broker under sentinel-proxy's topic of a router (serial and
// device token), for a server subscribed to it; and the control channel
// (package control), the operator's own, which alone lets the server take
// each entry's ts as the event's time (probes' clocks are not trusted, so
// every other path uses the receive time).
package emit

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/ingest/mqtt"
	"github.com/dynfw/sentinel/internal/ingest/probe"
	"github.com/dynfw/sentinel/internal/msgpack"
	"github.com/dynfw/sentinel/internal/portscan"
)

// ErrSpec is wrapped by the errors of a Spec that cannot be sent: the
// operator's input, not the server's fault.
var ErrSpec = errors.New("invalid events")

// Limits of a Spec.
const (
	MaxCount   = 1_000_000
	MaxTargets = 65_535
)

// Spec describes the events to send.
type Spec struct {
	// Event is the event to send: a published type that a probe reports
	// (every built-in one but the port scans, which the server derives),
	// or events.FwlogsPacket.
	Event events.Type
	// Addr is the attacker.
	Addr netip.Addr
	// Count is how many events (with Targets: how many scans).
	Count int
	// Username and Password of a login (minipot, HTTP) or of an sshd
	// failure (the username only).
	Username, Password string
	// Port is the router's port an fwlogs packet hit (default 23).
	Port uint16
	// Targets, for Event FwlogsPacket, makes each of Count a port scan:
	// packets to Targets distinct ports of the router at one time.
	Targets int
	// At, when set, places the events in time: the last at At, the others
	// spread evenly over the Spread before it. The server takes these
	// times on the control channel only.
	At     time.Time
	Spread time.Duration
	// Serial and Token name the router that reports the events, as
	// sentinel-proxy does (MQTT, or the control channel); empty for a
	// probe without a device.
	Serial, Token string
}

// Message is one probe message.
type Message struct {
	// Suffix is the probe's topic without "sentinel/collect/"; Topic is
	// the whole topic: sentinel-proxy's sentinel/collect/<serial>/<token>/
	// <suffix> when the Spec names a device, else sentinel/collect/<suffix>.
	Suffix, Topic string
	Payload       []byte
	// Events is the number of entries.
	Events int
}

// ScanTargets are the distinct targets at which the server's detector, in
// its default configuration, reports a small and a big port scan.
func ScanTargets() (small, big int) {
	c := portscan.DefaultConfig()
	return c.Small, c.Big
}

// Events lists the event names a Spec may send, in the vocabulary's order.
func Events() []string {
	var out []string
	for _, t := range events.Builtin() {
		if _, ok := suffixOf(t); ok {
			out = append(out, t.String())
		}
	}
	return append(out, events.FwlogsPacket.String())
}

// suffixOf is the probe topic that reports t.
func suffixOf(t events.Type) (string, bool) {
	switch trap := t.Trap(); {
	case strings.HasPrefix(trap, "minipot_"):
		return "minipot", true
	case trap == "haas":
		return "haas", true
	case t == events.SSHLoginFailed:
		return "faillogs", true
	case t == events.FwlogsPacket:
		return "fwlogs", true
	}
	return "", false
}

// Batch is how many events of type t its probe sends in one message: up
// to ten for a minipot (as sentinel-minipot 2.3.0 batches), one for the
// others.
func Batch(t events.Type) int {
	if strings.HasPrefix(t.Trap(), "minipot_") {
		return 10
	}
	return 1
}

// scanPorts are the first targets of a scan: services scanners look for.
var scanPorts = [...]uint16{23, 22, 80, 443, 21, 25, 8080, 3389, 445, 3306, 5900, 53, 110, 143, 993, 995, 1433, 5432, 6379, 8443, 2323, 7547, 139, 135, 9200}

// routerAddr is the router's address in fwlogs packets (TEST-NET-2).
var routerAddr = netip.MustParseAddr("198.51.100.1")

// Check reports what is wrong with s, if anything.
func (s *Spec) Check() error {
	bad := func(format string, a ...any) error { return fmt.Errorf("%w: "+format, append([]any{ErrSpec}, a...)...) }
	if _, ok := suffixOf(s.Event); !ok || !(s.Event.Published() || s.Event == events.FwlogsPacket) {
		if s.Event == events.FwlogsSmallPortScan || s.Event == events.FwlogsBigPortScan {
			return bad("%s is derived by the server from firewall-log packets: send a scan of packets instead", s.Event)
		}
		return bad("no probe reports %q; the events are %s", s.Event, strings.Join(Events(), ", "))
	}
	if !s.Addr.IsValid() {
		return bad("no attacker address")
	}
	// The parser's own check of addresses (package dynfw).
	if _, err := dynfw.ParseAddr(s.Addr.String(), false); err != nil {
		return bad("address %s: %v", s.Addr, err)
	}
	if s.Count < 1 || s.Count > MaxCount {
		return bad("count %d: want 1 to %d events", s.Count, MaxCount)
	}
	if s.Targets != 0 && (s.Event != events.FwlogsPacket || s.Targets < 1 || s.Targets > MaxTargets) {
		return bad("a scan is of fwlogs packets, to 1 to %d targets", MaxTargets)
	}
	if s.Targets > 0 && s.Count*s.Targets > MaxCount {
		return bad("%d scans of %d targets: more than %d packets", s.Count, s.Targets, MaxCount)
	}
	if s.Spread < 0 || (s.Spread > 0 && s.At.IsZero()) {
		return bad("a spread needs a time (At) and must not be negative")
	}
	if (s.Serial == "") != (s.Token == "") {
		return bad("a device needs both a serial and a token")
	}
	if s.Token != "" {
		if err := devicetoken.Validate(s.Token); err != nil {
			return bad("device token: %v", err)
		}
		// The MQTT ingest's check of the topic: serial and token.
		t, err := mqtt.ParseTopic("", mqtt.DataTopic("", s.Serial, s.Token, "minipot"))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSpec, err)
		}
		if t.Serial != s.Serial || t.Token != s.Token {
			return fmt.Errorf("%w: %v", ErrSpec, mqtt.ErrSerial) // a "/" in it
		}
	}
	return nil
}

// times returns the ts of each of n events (Unix seconds); all now when
// the Spec places nothing.
func (s *Spec) times(now time.Time) []int64 {
	ts := make([]int64, s.Count)
	for i := range ts {
		t := now
		if !s.At.IsZero() {
			t = s.At
			if s.Count > 1 {
				t = s.At.Add(-s.Spread + time.Duration(float64(s.Spread)*float64(i)/float64(s.Count-1)))
			}
		}
		ts[i] = t.Unix()
	}
	return ts
}

// Messages returns the messages of s, at most batch entries each (a
// minipot sends up to ten at once, the other probes one), each checked by
// the server's probe parser. now is the ts of events that s does not
// place.
func Messages(s Spec, now time.Time, batch int) ([]Message, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	batch = max(batch, 1)
	suffix, _ := suffixOf(s.Event)
	topic := "sentinel/collect/" + suffix
	if s.Token != "" {
		topic = mqtt.DataTopic("", s.Serial, s.Token, suffix)
	}
	var entries [][]byte
	for i, ts := range s.times(now) {
		if s.Targets > 0 {
			for j := range s.Targets {
				entries = append(entries, s.packet(ts, targetPort(j), i*s.Targets+j))
			}
			continue
		}
		entries = append(entries, s.entry(ts, i))
	}
	var out []Message
	for len(entries) > 0 {
		n := min(batch, len(entries))
		var b []byte
		if n > 1 {
			b = msgpack.AppendArrayHeader(b, n)
		}
		for _, e := range entries[:n] {
			b = append(b, e...)
		}
		m := Message{Suffix: suffix, Topic: topic, Payload: b, Events: n}
		if err := s.verify(m); err != nil {
			return nil, err
		}
		out = append(out, m)
		entries = entries[n:]
	}
	return out, nil
}

// verify runs m through the server's parser: every entry must come out as
// the event asked for.
func (s *Spec) verify(m Message) error {
	evs, errs := probe.Parse(nil, m.Suffix, m.Payload, probe.Meta{})
	if len(errs) > 0 {
		return fmt.Errorf("%w: the server would refuse it: %v", ErrSpec, errs[0])
	}
	if len(evs) != m.Events {
		return fmt.Errorf("emit: %d entries parse as %d events", m.Events, len(evs))
	}
	for _, e := range evs {
		if e.Type != s.Event || e.Addr != s.Addr.Unmap() {
			return fmt.Errorf("emit: an entry parses as %s from %s, not %s from %s", e.Type, e.Addr, s.Event, s.Addr)
		}
	}
	return nil
}

// targetPort is the j-th port of a scan.
func targetPort(j int) uint16 {
	if j < len(scanPorts) {
		return scanPorts[j]
	}
	return uint16(10000 + j)
}

func appendKV(b []byte, k, v string) []byte {
	return msgpack.AppendString(msgpack.AppendString(b, k), v)
}

// entry is the i-th event's map, as its probe writes it.
func (s *Spec) entry(ts int64, i int) []byte {
	ip := s.Addr.String()
	var b []byte
	switch suffix, _ := suffixOf(s.Event); suffix {
	case "minipot":
		// {ts, type, ip, action, data}: sentinel-minipot.
		var data [][2]string
		switch s.Event.Action() {
		case "login":
			data = [][2]string{{"username", s.Username}, {"password", s.Password}}
		case "message":
			data = [][2]string{{"method", "GET"}, {"url", "/"}, {"user_agent", "sentinel-emit"}}
		}
		n := 4
		if data != nil {
			n = 5
		}
		b = msgpack.AppendMapHeader(b, n)
		b = msgpack.AppendInt(msgpack.AppendString(b, "ts"), ts)
		b = appendKV(b, "type", strings.TrimPrefix(s.Event.Trap(), "minipot_"))
		b = appendKV(b, "ip", ip)
		b = appendKV(b, "action", s.Event.Action())
		if data != nil {
			b = msgpack.AppendMapHeader(msgpack.AppendString(b, "data"), len(data))
			for _, kv := range data {
				b = appendKV(b, kv[0], kv[1])
			}
		}
	case "haas":
		// {ts, ip, action}: the HaaS proxy.
		b = msgpack.AppendMapHeader(b, 3)
		b = msgpack.AppendInt(msgpack.AppendString(b, "ts"), ts)
		b = appendKV(b, "ip", ip)
		b = appendKV(b, "action", s.Event.Action())
	case "faillogs":
		// {ts, service, user, ip, port}: sentinel-faillogs.
		b = msgpack.AppendMapHeader(b, 5)
		b = msgpack.AppendInt(msgpack.AppendString(b, "ts"), ts)
		b = appendKV(b, "service", "sshd")
		b = appendKV(b, "user", s.Username)
		b = appendKV(b, "ip", ip)
		b = msgpack.AppendUint(msgpack.AppendString(b, "port"), uint64(sourcePort(i)))
	case "fwlogs":
		port := s.Port
		if port == 0 {
			port = 23
		}
		return s.packet(ts, port, i)
	}
	return b
}

// packet is an fwlogs record {ts, protocol, ip, port, local_ip,
// local_port}: sentinel-fwlogs.
func (s *Spec) packet(ts int64, local uint16, i int) []byte {
	b := msgpack.AppendMapHeader(nil, 6)
	b = msgpack.AppendInt(msgpack.AppendString(b, "ts"), ts)
	b = appendKV(b, "protocol", "TCP")
	b = appendKV(b, "ip", s.Addr.String())
	b = msgpack.AppendUint(msgpack.AppendString(b, "port"), uint64(sourcePort(i)))
	b = appendKV(b, "local_ip", routerAddr.String())
	return msgpack.AppendUint(msgpack.AppendString(b, "local_port"), uint64(local))
}

// sourcePort is an attacker's ephemeral port.
func sourcePort(i int) uint16 { return uint16(40000 + i%20000) }
