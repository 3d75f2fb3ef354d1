package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/dynfw/sentinel/internal/certfetch"
	"github.com/dynfw/sentinel/internal/config"
	"github.com/dynfw/sentinel/internal/policy"
)

// options are every setting of dynfw-client. Each can come from the config
// file (/etc/dynfw-client.toml), the environment (DYNFW_<NAME>) or a flag.
type options struct {
	config string

	// Connection.
	server       string
	port         int
	cert         string
	certURL      string
	renew        bool
	keyDir       string
	retry        bool
	startTimeout time.Duration
	heartbeat    time.Duration

	// Backend.
	backend      string
	nftTable     string
	nftFamily    string
	nftSetOnly   bool
	nftSetPrefix string
	nftForward   bool
	nftPriority  int
	ipset        string
	ipsetMaxElem int
	ipsetRules   bool
	ipsetForward bool
	output       string
	format       string
	execCmd      string

	// Policy.
	ipv6Prefix   int
	noIPv6       bool
	allow        []netip.Prefix
	allowPrivate bool
	minPrefix4   int
	minPrefix6   int

	// Operation.
	keepRules      bool
	once           bool
	metrics        string
	batchInterval  time.Duration
	verifyInterval time.Duration
	memoryLimit    int
	verbose        bool
	logFormat      string
	version        bool

	set *config.Options
}

const defaultConfigFile = "/etc/dynfw-client.toml"

func newOptions() *options {
	o := &options{}
	s := config.New("dynfw-client", "DYNFW_")
	o.set = s
	s.String(&o.config, "config", nil, "", "config file (TOML; default "+defaultConfigFile+" if it exists)")

	s.String(&o.server, "server", []string{"s"}, "sentinel.turris.cz", "DynFW server")
	s.Int(&o.port, "port", []string{"p"}, 7087, "DynFW server port")
	s.String(&o.cert, "cert", []string{"c"}, "", "server certificate (zcert public file); without it the certificate is downloaded")
	s.String(&o.certURL, "cert-url", nil, certfetch.DefaultURL, "where to download the server certificate")
	s.Bool(&o.renew, "renew", nil, false, "download the certificate from --cert-url into --cert before starting")
	s.String(&o.keyDir, "key-dir", nil, defaultKeyDir(), "where the client key pair is kept (created on first start)")
	s.Bool(&o.retry, "retry", nil, false, "keep retrying when the server is unreachable or rejects us, instead of exiting")
	s.Duration(&o.startTimeout, "start-timeout", nil, 8*time.Second, "without --retry, give up after this long without a connection")
	s.Duration(&o.heartbeat, "heartbeat", nil, 30*time.Second, "ZMTP heartbeat interval that detects a dead connection")

	s.String(&o.backend, "backend", nil, "nftables", "firewall backend: nftables, ipset, file, exec or print")
	s.String(&o.nftTable, "nft-table", nil, "dynfw", "nftables: table name")
	s.String(&o.nftFamily, "nft-family", nil, "inet", "nftables: table family (inet, ip, ip6)")
	s.Bool(&o.nftSetOnly, "nft-set-only", nil, false, "nftables: only fill sets in an existing table owned by the system firewall (fw4, firewalld)")
	s.String(&o.nftSetPrefix, "nft-set-prefix", nil, "", "nftables: prefix of the set names (addr4, addr6, net4, net6)")
	s.Bool(&o.nftForward, "nft-forward", nil, false, "nftables: also drop forwarded traffic (routers)")
	s.Int(&o.nftPriority, "nft-priority", nil, -5, "nftables: priority of the input and forward hooks")
	s.String(&o.ipset, "ipset", nil, "turris-sn-dynfw-block", "ipset: base name of the sets (implies --backend ipset)")
	s.Int(&o.ipsetMaxElem, "ipset-maxelem", nil, 262144, "ipset: least maxelem of the sets")
	s.Bool(&o.ipsetRules, "ipset-rules", nil, false, "ipset: insert iptables/ip6tables rules that drop listed sources")
	s.Bool(&o.ipsetForward, "ipset-forward", nil, false, "ipset: the rules also drop forwarded traffic")
	s.String(&o.output, "output", nil, "", "file: path of the file to keep current")
	s.String(&o.format, "format", nil, "plain", "file: plain, ipset (for ipset restore) or nft (for nft -f)")
	s.String(&o.execCmd, "exec", nil, "", "exec: command (run by /bin/sh -c) that receives every change as JSON lines")

	s.Int(&o.ipv6Prefix, "ipv6-prefix", nil, 0, "block the whole /N around every listed IPv6 address (e.g. 64); 0 blocks single addresses")
	s.Bool(&o.noIPv6, "no-ipv6", nil, false, "ignore IPv6 entries")
	s.Prefixes(&o.allow, "allow", nil, "network never blocked (repeatable): your own addresses")
	s.Bool(&o.allowPrivate, "allow-private", nil, false, "let the server block private (RFC 1918), CGNAT and unique-local entries; loopback, link-local, multicast, the server and the gateways stay protected")
	s.Int(&o.minPrefix4, "min-prefix4", nil, policy.DefaultMinPrefix4, "refuse IPv4 entries shorter than this prefix length")
	s.Int(&o.minPrefix6, "min-prefix6", nil, policy.DefaultMinPrefix6, "refuse IPv6 entries shorter than this prefix length")

	s.Bool(&o.keepRules, "keep-rules", nil, false, "leave tables, sets, rules and their contents in place on exit")
	s.Bool(&o.once, "once", nil, false, "apply the first list, then exit (with --keep-rules, the set stays)")
	s.String(&o.metrics, "metrics", nil, "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9187)")
	s.Duration(&o.batchInterval, "batch-interval", nil, 50*time.Millisecond, "deltas arriving within this tick are applied as one transaction")
	s.Duration(&o.verifyInterval, "verify-interval", nil, time.Hour, "check the state against a full list this often (0: never)")
	s.Int(&o.memoryLimit, "memory-limit", nil, 32, "soft memory limit in MiB: the garbage collector works harder near it (0: none; GOMEMLIMIT wins)")
	s.Bool(&o.verbose, "verbose", []string{"v"}, false, "debug logging")
	s.String(&o.logFormat, "log-format", nil, "text", "log format: text or json")
	s.Bool(&o.version, "version", nil, false, "print the version and exit")
	return o
}

func (o *options) parse(args []string) error {
	if err := o.set.Parse(args, "config", defaultConfigFile); err != nil {
		return err
	}
	if set, _ := o.set.Set("ipset"); set {
		if bset, _ := o.set.Set("backend"); !bset {
			o.backend = "ipset" // the official client's --ipset selects ipset
		}
	}
	switch {
	case o.port <= 0 || o.port > 65535:
		return fmt.Errorf("invalid port %d", o.port)
	case o.ipv6Prefix < 0 || o.ipv6Prefix > 128:
		return fmt.Errorf("invalid --ipv6-prefix %d", o.ipv6Prefix)
	case o.minPrefix4 < 1 || o.minPrefix4 > 32:
		return fmt.Errorf("invalid --min-prefix4 %d (1 to 32)", o.minPrefix4)
	case o.minPrefix6 < 1 || o.minPrefix6 > 128:
		return fmt.Errorf("invalid --min-prefix6 %d (1 to 128)", o.minPrefix6)
	case o.ipv6Prefix > 0 && o.ipv6Prefix < o.minPrefix6:
		return fmt.Errorf("--ipv6-prefix %d is shorter than --min-prefix6 %d: every IPv6 entry would be refused", o.ipv6Prefix, o.minPrefix6)
	case o.logFormat != "text" && o.logFormat != "json":
		return fmt.Errorf("invalid --log-format %q (text or json)", o.logFormat)
	case o.renew && o.cert == "":
		return fmt.Errorf("--renew needs --cert, the file to download into")
	}
	switch o.backend {
	case "nftables", "ipset", "print":
	case "file":
		if o.output == "" {
			return fmt.Errorf("--backend file needs --output")
		}
	case "exec":
		if o.execCmd == "" {
			return fmt.Errorf("--backend exec needs --exec")
		}
	default:
		return fmt.Errorf("unknown backend %q (nftables, ipset, file, exec, print)", o.backend)
	}
	return nil
}

func (o *options) usage(w io.Writer) {
	fmt.Fprint(w, `Usage: dynfw-client [options]

Subscribes to a DynFW server (the Turris Sentinel dynamic firewall by default)
and keeps a firewall set of attacker addresses in sync with it, IPv4 and IPv6,
atomically. --backend print only prints what the server publishes.

Options:
`)
	o.set.Usage(w)
}

func defaultKeyDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/dynfw-client"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "dynfw-client")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "dynfw-client")
	}
	return filepath.Join(os.TempDir(), "dynfw-client")
}
