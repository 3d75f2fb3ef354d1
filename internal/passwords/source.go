package passwords

import "strings"

// Source is a set of honeypots that saw a password, as a bitmask. HIBP
// imports carry no source.
type Source uint8

// The honeypot sources, in the order of the reference's data_source enum,
// which is also the order of the "sources" arrays in API answers.
const (
	SourceTelnet Source = 1 << iota
	SourceSMTP
	SourceFTP
	SourceHTTP
	SourceHaaS

	// SourceAll is every known source.
	SourceAll = SourceTelnet | SourceSMTP | SourceFTP | SourceHTTP | SourceHaaS
)

var sourceNames = [...]string{"telnet", "smtp", "ftp", "http", "haas"}

// ParseSource maps a source name ("telnet", "smtp", "ftp", "http", "haas")
// or a minipot trap name ("minipot_telnet", ...) to its Source.
func ParseSource(name string) (Source, bool) {
	name = strings.TrimPrefix(strings.ToLower(name), "minipot_")
	for i, n := range sourceNames {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// Names returns the names of the sources in s in the fixed order telnet,
// smtp, ftp, http, haas. It never returns nil, so that JSON encodes [].
func (s Source) Names() []string {
	out := make([]string, 0, 2)
	for i, n := range sourceNames {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// String joins the names with "|", or "none".
func (s Source) String() string {
	if s&SourceAll == 0 {
		return "none"
	}
	return strings.Join(s.Names(), "|")
}
