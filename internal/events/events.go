// Package events defines the normalised events of the Sentinel server: what
// every ingest path (ZMQ from probes, MQTT from sentinel-proxy, HTTP from
// other sensors) turns a probe's message into, and what scoring, the DynFW
// publisher and the statistics store consume.
//
// An event is named as in the dynfw/event vocabulary (telnet_login,
// http_message, haas_logged, fwlogs_big_port_scan, ...). Names are interned
// into a Type so that the hot path compares small integers; each type knows
// its greylist tag ("telnet", "haas", "port_scan") and its trap and action
// as Sentinel View stores them.
package events

import (
	"fmt"
	"net/netip"
	"regexp"
	"sync"
	"sync/atomic"
)

// Type is an interned event name.
type Type uint16

// The dynfw/event vocabulary, plus the internal observations that are not
// published as events.
const (
	Invalid Type = iota

	TelnetConnect
	TelnetLogin
	TelnetInvalid
	FTPConnect
	FTPLogin
	FTPInvalid
	SMTPConnect
	SMTPLogin
	SMTPInvalid
	HTTPConnect
	HTTPMessage
	HTTPLogin
	HTTPInvalid
	HaasNotLogged
	HaasLogged
	HaasLoggedActive
	FwlogsSmallPortScan
	FwlogsBigPortScan

	// FwlogsPacket is one packet logged by a router's firewall: input of
	// the port-scan detector and of the ports statistics, never published
	// or scored itself.
	FwlogsPacket
	// SSHLoginFailed is a failed SSH login read from a router's logs
	// (sentinel-faillogs). Not in the Turris vocabulary.
	SSHLoginFailed

	numBuiltin
)

// info describes a Type.
type info struct {
	name      string
	tag       string // greylist tag
	trap      string // Sentinel View trap ("" when not an incident)
	action    string // Sentinel View action
	published bool   // sent as dynfw/event
}

var builtin = [numBuiltin]info{
	Invalid:             {name: "invalid"},
	TelnetConnect:       {"telnet_connect", "telnet", "minipot_telnet", "connect", true},
	TelnetLogin:         {"telnet_login", "telnet", "minipot_telnet", "login", true},
	TelnetInvalid:       {"telnet_invalid", "telnet", "minipot_telnet", "invalid", true},
	FTPConnect:          {"ftp_connect", "ftp", "minipot_ftp", "connect", true},
	FTPLogin:            {"ftp_login", "ftp", "minipot_ftp", "login", true},
	FTPInvalid:          {"ftp_invalid", "ftp", "minipot_ftp", "invalid", true},
	SMTPConnect:         {"smtp_connect", "smtp", "minipot_smtp", "connect", true},
	SMTPLogin:           {"smtp_login", "smtp", "minipot_smtp", "login", true},
	SMTPInvalid:         {"smtp_invalid", "smtp", "minipot_smtp", "invalid", true},
	HTTPConnect:         {"http_connect", "http", "minipot_http", "connect", true},
	HTTPMessage:         {"http_message", "http", "minipot_http", "message", true},
	HTTPLogin:           {"http_login", "http", "minipot_http", "login", true},
	HTTPInvalid:         {"http_invalid", "http", "minipot_http", "invalid", true},
	HaasNotLogged:       {"haas_not_logged", "haas", "haas", "not_logged", true},
	HaasLogged:          {"haas_logged", "haas", "haas", "logged", true},
	HaasLoggedActive:    {"haas_logged_active", "haas", "haas", "logged_active", true},
	FwlogsSmallPortScan: {"fwlogs_small_port_scan", "port_scan", "fwlogs", "small_port_scan", true},
	FwlogsBigPortScan:   {"fwlogs_big_port_scan", "port_scan", "fwlogs", "big_port_scan", true},
	FwlogsPacket:        {name: "fwlogs_packet"},
	SSHLoginFailed:      {"ssh_login_failed", "ssh", "faillogs_ssh", "login", true},
}

var (
	mu     sync.Mutex
	custom atomic.Pointer[[]info] // types registered at run time, after builtin
	byName sync.Map               // string -> Type
)

func init() {
	for t := Type(1); t < numBuiltin; t++ {
		byName.Store(builtin[t].name, t)
	}
	empty := []info{}
	custom.Store(&empty)
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Register adds an event name that other sensors may send (through HTTP),
// with the greylist tag it gives. Registering a known name returns its Type.
func Register(name, tag string) (Type, error) {
	if t, ok := Lookup(name); ok {
		return t, nil
	}
	if !nameRE.MatchString(name) {
		return Invalid, fmt.Errorf("event name %q: want lowercase letters, digits and _", name)
	}
	if tag == "" {
		tag = name
	}
	mu.Lock()
	defer mu.Unlock()
	old := *custom.Load()
	if int(numBuiltin)+len(old) >= 1<<16 {
		return Invalid, fmt.Errorf("too many event types")
	}
	next := append(append([]info(nil), old...), info{name: name, tag: tag, trap: "custom", action: name, published: true})
	custom.Store(&next)
	t := numBuiltin + Type(len(old))
	byName.Store(name, t)
	return t, nil
}

// Lookup returns the Type of an event name.
func Lookup(name string) (Type, bool) {
	v, ok := byName.Load(name)
	if !ok {
		return Invalid, false
	}
	return v.(Type), true
}

func (t Type) info() info {
	if t < numBuiltin {
		return builtin[t]
	}
	c := *custom.Load()
	if i := int(t - numBuiltin); i < len(c) {
		return c[i]
	}
	return builtin[Invalid]
}

// String is the event's name in the dynfw/event vocabulary.
func (t Type) String() string { return t.info().name }

// Tag is the greylist tag of the event ("telnet", "port_scan", "haas").
func (t Type) Tag() string { return t.info().tag }

// Trap and Action are how Sentinel View classifies the event as an
// incident ("minipot_telnet", "login"); Trap is empty for observations that
// are not incidents.
func (t Type) Trap() string   { return t.info().trap }
func (t Type) Action() string { return t.info().action }

// Published reports whether the event is sent as dynfw/event.
func (t Type) Published() bool { return t.info().published }

// Count returns the number of types known now, for tables indexed by Type.
func Count() int { return int(numBuiltin) + len(*custom.Load()) }

// Builtin returns every built-in published type, in order.
func Builtin() []Type {
	var out []Type
	for t := Type(1); t < numBuiltin; t++ {
		if builtin[t].published {
			out = append(out, t)
		}
	}
	return out
}

// Source says how an event reached the server.
type Source uint8

// Sources.
const (
	FromZMQ Source = iota + 1
	FromMQTT
	FromHTTP
	FromDetector // derived on the server (port scans)
	FromAdmin
)

func (s Source) String() string {
	switch s {
	case FromZMQ:
		return "zmq"
	case FromMQTT:
		return "mqtt"
	case FromHTTP:
		return "http"
	case FromDetector:
		return "detector"
	case FromAdmin:
		return "admin"
	}
	return "unknown"
}

// Event is one normalised observation of an attacker.
type Event struct {
	// Time is when the server received it (Unix nanoseconds); scoring and
	// statistics use it, since probe clocks drift.
	Time int64
	// TS is the time the probe reported (Unix seconds), 0 if none.
	TS   int64
	Type Type
	// Addr is the attacker's address, IPv4-mapped IPv6 unmapped.
	Addr netip.Addr
	// Probe identifies the sensor that saw it (interned; see Probes).
	Probe  ProbeID
	Source Source
	// Details carries what statistics keep of some events (credentials,
	// HTTP request, ports); nil for most.
	Details *Details
}

// Details are the attacker-supplied strings and port numbers of an event.
// They are untrusted: never log them, escape them everywhere. The ingest
// paths make each string storable as they parse it (Storable, at most
// MaxText bytes), so they are valid UTF-8 without NUL or controls other
// than tab and newline.
type Details struct {
	Username, Password string
	Method, URL        string
	UserAgent          string
	Protocol           string // fwlogs: TCP, UDP, ...
	Port               uint16 // fwlogs: the source port
	LocalPort          uint16 // fwlogs: the destination (router) port
	LocalAddr          netip.Addr
}
