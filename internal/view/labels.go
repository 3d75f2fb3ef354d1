package view

import (
	"strconv"
	"strings"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/geoip"
	"github.com/dynfw/sentinel/internal/store"
)

// Labels turn the store's and the scorer's names (minipot_telnet,
// small_port_scan, telnet_login, CZ, 23) into words a visitor reads. Pages
// show the label and keep the raw name at hand (a title or a caption), so
// that what a page says can still be matched with the API and the CSV.

// trapLabels names the traps of the store (events.Type.Trap).
var trapLabels = map[string]string{
	"minipot_telnet": "Telnet honeypot",
	"minipot_ftp":    "FTP honeypot",
	"minipot_smtp":   "SMTP honeypot",
	"minipot_http":   "HTTP honeypot",
	"haas":           "SSH honeypot (HaaS)",
	"fwlogs":         "Firewall",
	"faillogs_ssh":   "SSH server",
}

// actionLabels names the actions of the store (events.Type.Action).
var actionLabels = map[string]string{
	"connect":         "connection",
	"login":           "login attempt",
	"invalid":         "invalid input",
	"message":         "request",
	"not_logged":      "failed login",
	"logged":          "logged in",
	"logged_active":   "logged in and ran commands",
	"small_port_scan": "small port scan",
	"big_port_scan":   "big port scan",
}

// trapLabel returns the name of a trap, or the trap itself when unknown
// (a sensor registered in the configuration).
func trapLabel(trap string) string {
	if l, ok := trapLabels[trap]; ok {
		return l
	}
	return trap
}

// actionLabel returns the name of an action, or the action itself.
func actionLabel(action string) string {
	if l, ok := actionLabels[action]; ok {
		return l
	}
	return strings.ReplaceAll(action, "_", " ")
}

// eventLabel names an event type of the DynFW vocabulary ("telnet_login":
// "Telnet honeypot: login attempt"); custom types keep their name.
func eventLabel(name string) string {
	t, ok := events.Lookup(name)
	if !ok || t.Trap() == "" {
		return name
	}
	return trapLabel(t.Trap()) + ": " + actionLabel(t.Action())
}

// commonNames are the names people use for the countries whose ISO short
// name is a formal one ("Korea, Republic of"): a table reads "South Korea".
var commonNames = map[string]string{
	"BO": "Bolivia", "BN": "Brunei", "CD": "DR Congo", "FK": "Falkland Islands", "FM": "Micronesia",
	"IR": "Iran", "KP": "North Korea", "KR": "South Korea", "LA": "Laos", "MD": "Moldova",
	"MF": "Saint Martin", "PS": "Palestine", "RU": "Russia", "SH": "Saint Helena", "SX": "Sint Maarten",
	"SY": "Syria", "TW": "Taiwan", "TZ": "Tanzania", "VA": "Vatican City", "VE": "Venezuela",
	"VG": "British Virgin Islands", "VI": "US Virgin Islands", "VN": "Vietnam",
}

// eventNouns name the events of the DynFW vocabulary in a sentence:
// singular and plural.
var eventNouns = map[events.Type][2]string{
	events.TelnetConnect:       {"telnet connection", "telnet connections"},
	events.TelnetLogin:         {"telnet login", "telnet logins"},
	events.TelnetInvalid:       {"invalid telnet input", "invalid telnet inputs"},
	events.FTPConnect:          {"FTP connection", "FTP connections"},
	events.FTPLogin:            {"FTP login", "FTP logins"},
	events.FTPInvalid:          {"invalid FTP command", "invalid FTP commands"},
	events.SMTPConnect:         {"SMTP connection", "SMTP connections"},
	events.SMTPLogin:           {"SMTP login", "SMTP logins"},
	events.SMTPInvalid:         {"invalid SMTP command", "invalid SMTP commands"},
	events.HTTPConnect:         {"HTTP connection", "HTTP connections"},
	events.HTTPMessage:         {"HTTP request", "HTTP requests"},
	events.HTTPLogin:           {"HTTP login", "HTTP logins"},
	events.HTTPInvalid:         {"invalid HTTP request", "invalid HTTP requests"},
	events.HaasNotLogged:       {"failed SSH honeypot login", "failed SSH honeypot logins"},
	events.HaasLogged:          {"SSH honeypot session", "SSH honeypot sessions"},
	events.HaasLoggedActive:    {"SSH honeypot session with commands", "SSH honeypot sessions with commands"},
	events.FwlogsSmallPortScan: {"small port scan", "small port scans"},
	events.FwlogsBigPortScan:   {"big port scan", "big port scans"},
	events.SSHLoginFailed:      {"failed SSH login", "failed SSH logins"},
}

// eventPhrase is "5 telnet logins", "1 HTTP request".
func eventPhrase(name string, n uint64) string {
	nouns := [2]string{strings.ReplaceAll(name, "_", " ") + " event", strings.ReplaceAll(name, "_", " ") + " events"}
	if t, ok := events.Lookup(name); ok {
		if w, ok := eventNouns[t]; ok {
			nouns = w
		}
	}
	if n == 1 {
		return "1 " + nouns[0]
	}
	return strconv.FormatUint(n, 10) + " " + nouns[1]
}

// countryLabel returns the English name of an ISO 3166 code, "Unknown" for
// none, or the code itself when the table does not know it.
func countryLabel(code string) string {
	if code == "" || code == "??" {
		return "Unknown"
	}
	code = strings.ToUpper(code)
	if n, ok := commonNames[code]; ok {
		return n
	}
	if n := geoip.Name(code); n != "" {
		return n
	}
	return code
}

// portServices are the services scanners look for on well-known ports
// (IANA's registry, and the ports IoT malware is known to probe).
var portServices = map[uint16]string{
	21: "FTP", 22: "SSH", 23: "Telnet", 25: "SMTP", 53: "DNS", 69: "TFTP", 80: "HTTP",
	81: "HTTP (alt.)", 110: "POP3", 111: "RPC", 123: "NTP", 135: "MS RPC", 137: "NetBIOS",
	138: "NetBIOS", 139: "NetBIOS", 143: "IMAP", 161: "SNMP", 389: "LDAP", 443: "HTTPS",
	445: "SMB", 465: "SMTPS", 500: "IKE", 502: "Modbus", 554: "RTSP", 587: "SMTP submission",
	631: "IPP", 993: "IMAPS", 995: "POP3S", 1080: "SOCKS", 1194: "OpenVPN", 1433: "MS SQL",
	1521: "Oracle DB", 1723: "PPTP", 1883: "MQTT", 1900: "UPnP", 2222: "SSH (alt.)",
	2323: "Telnet (alt.)", 3128: "HTTP proxy", 3306: "MySQL", 3389: "RDP", 4444: "Metasploit",
	5060: "SIP", 5222: "XMPP", 5432: "PostgreSQL", 5555: "Android debug", 5900: "VNC",
	5985: "WinRM", 6379: "Redis", 6443: "Kubernetes API", 7547: "TR-069", 8000: "HTTP (alt.)",
	8080: "HTTP (alt.)", 8081: "HTTP (alt.)", 8291: "MikroTik Winbox", 8443: "HTTPS (alt.)",
	8888: "HTTP (alt.)", 9000: "HTTP (alt.)", 9090: "HTTP (alt.)", 9200: "Elasticsearch",
	10000: "Webmin", 11211: "Memcached", 27017: "MongoDB", 37215: "Huawei UPnP",
	49152: "UPnP", 52869: "Realtek UPnP",
}

// portService returns the service usually found on a port ("" if none is
// well known). port is a number or the store's "TCP/22".
func portService(port string) string {
	if _, num, ok := strings.Cut(port, "/"); ok {
		port = num
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return ""
	}
	return portServices[uint16(n)]
}

// dimCell is a value of a statistics dimension as a table cell or legend
// entry: the label a visitor reads, with the raw value kept at hand: a
// country's code and a port's service as a caption, a trap's or action's
// internal name as a tooltip.
func dimCell(d store.Dim, v string) cell {
	switch d {
	case store.DimCountry:
		if v == "" || v == "??" {
			return cell{Text: "Unknown", Title: "No country known for the address"}
		}
		code := strings.ToUpper(xmlSafe(v))
		if l := countryLabel(code); l != code {
			return cell{Text: l, Note: code}
		}
		return textCell(code) // a code no table names
	case store.DimTrap:
		return labelled(trapLabel(v), v)
	case store.DimAction:
		return labelled(actionLabel(v), v)
	case store.DimPort, store.DimProtocol:
		c := textCell(v)
		c.Note = portService(v)
		return c
	}
	return textCell(v)
}

// labelled shows label with the raw name as its tooltip when they differ.
func labelled(label, raw string) cell {
	label, raw = xmlSafe(label), xmlSafe(raw)
	if label == raw {
		return textCell(raw)
	}
	return cell{Text: label, Title: raw}
}

// labelFuncs are the labels for templates.
var labelFuncs = map[string]any{
	"trapLabel":    trapLabel,
	"actionLabel":  actionLabel,
	"eventLabel":   eventLabel,
	"countryLabel": countryLabel,
	"portService":  portService,
}
