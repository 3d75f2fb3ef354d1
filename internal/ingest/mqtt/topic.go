package mqtt

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/dynfw/sentinel/internal/devicetoken"
)

// DefaultRoot is the topic prefix under which sentinel-proxy publishes.
const DefaultRoot = "sentinel/collect"

// StatusSuffix is the suffix of the status topic of proxy ≥ 1.4.
const StatusSuffix = "status"

// MaxSerialLen is the longest serial (certificate CN) accepted. sentinel-proxy
// uses the CN as its MQTT client ID and limits it to 64 characters.
const MaxSerialLen = 64

// minTokenSegment is the length from which the segment after the serial is
// taken for a device token rather than for the first segment of a legacy
// suffix. Probe topics are short words (minipot, fwlogs, faillogs, survey),
// a token is 64 characters; anything from 32 characters up is a token, valid
// or not, so that a truncated or padded token is reported as a bad token
// instead of slipping through as a legacy suffix.
const minTokenSegment = 32

// Errors of ParseTopic, wrapped in a *DropError. Token errors are those of
// package devicetoken.
var (
	ErrOutsideRoot = errors.New("topic is not under the root")
	ErrNoSuffix    = errors.New("topic has no suffix after the serial and device token")
	ErrSerial      = errors.New("serial (certificate CN) must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
)

// Topic is a parsed sentinel-proxy topic.
type Topic struct {
	// Serial is the router's certificate CN (its serial number).
	Serial string
	// Token is the device token; "" in the legacy layout of proxy ≤ 1.1.
	// It is a secret: log devicetoken.Fingerprint(Token), never Token.
	Token string
	// Suffix is the probe's ZMQ topic without "sentinel/collect/", e.g.
	// "minipot" or "fwlogs"; it may contain further "/" segments. For a
	// status message it is "status".
	Suffix string
	// Status is set for the status topic <root>/<CN>/<token>/status. The
	// legacy layout has no status topic: there, a "status" suffix is data.
	Status bool
}

// Legacy reports whether t is in the token-less layout of proxy ≤ 1.1.
func (t Topic) Legacy() bool { return t.Token == "" }

// ParseTopic splits an MQTT topic of sentinel-proxy published under root
// (DefaultRoot when root is ""):
//
//	<root>/<CN>/<device_token>/<suffix...>   proxy ≥ 1.2, data
//	<root>/<CN>/<device_token>/status        proxy ≥ 1.4, status
//	<root>/<CN>/<suffix...>                  proxy ≤ 1.1 (legacy)
//
// The two layouts are told apart by the segment after the CN: one of
// minTokenSegment (32) characters or more, or an empty one followed by more
// segments, is the device token position and must hold a valid token; a
// shorter one is the first segment of a legacy suffix.
//
// The CN must be 1 to MaxSerialLen characters of A-Z a-z 0-9 . _ - (serial
// numbers are 16 hex digits), the token must pass devicetoken.Validate, and
// the suffix must not be empty. Errors are *DropError values with Reason
// DropBadTopic, DropBadSerial or DropBadToken, wrapping ErrOutsideRoot,
// ErrNoSuffix, ErrSerial or a devicetoken error; their texts never contain
// the token. On error the returned Topic holds what was parsed before the
// failure, for logging.
func ParseTopic(root, topic string) (Topic, error) {
	if root == "" {
		root = DefaultRoot
	}
	var t Topic
	rest, ok := strings.CutPrefix(topic, root)
	if !ok || !strings.HasPrefix(rest, "/") {
		return t, &DropError{Reason: DropBadTopic, Err: ErrOutsideRoot}
	}
	serial, rest, ok := strings.Cut(rest[1:], "/")
	t.Serial = serial
	if !validSerial(serial) {
		return t, &DropError{Reason: DropBadSerial, Err: ErrSerial}
	}
	if !ok || rest == "" {
		return t, &DropError{Reason: DropBadTopic, Err: ErrNoSuffix}
	}
	seg, tail, more := strings.Cut(rest, "/")
	if len(seg) < minTokenSegment && (seg != "" || !more) {
		t.Suffix = rest
		return t, nil
	}
	t.Token, t.Suffix = seg, tail
	if err := devicetoken.Validate(seg); err != nil {
		return t, &DropError{Reason: DropBadToken, Err: err}
	}
	if tail == "" {
		return t, &DropError{Reason: DropBadTopic, Err: ErrNoSuffix}
	}
	t.Status = tail == StatusSuffix
	return t, nil
}

// validSerial reports whether s is a sane certificate CN: the characters of
// serial numbers and host names, none that would need quoting in a log line,
// a file name or a metric label.
func validSerial(s string) bool {
	if s == "" || len(s) > MaxSerialLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// SerialFingerprint identifies a serial in logs without quoting it: the CN
// in a topic is typed by whoever publishes (the broker's ACL ties it to a
// certificate only when it is configured so). It is "s:" and 12 hex digits
// of the serial's SHA-256, as devicetoken.Fingerprint is for tokens; an
// operator finds a router's with
// printf %s SERIAL | sha256sum | cut -c1-12.
func SerialFingerprint(serial string) string {
	sum := sha256.Sum256([]byte(serial))
	return "s:" + hex.EncodeToString(sum[:6])
}

// DataTopic returns the topic on which proxy ≥ 1.2 publishes data of the
// probe topic suffix (DefaultRoot when root is "").
func DataTopic(root, serial, token, suffix string) string {
	if root == "" {
		root = DefaultRoot
	}
	return root + "/" + serial + "/" + token + "/" + suffix
}

// StatusTopic returns the topic of proxy ≥ 1.4's status messages.
func StatusTopic(root, serial, token string) string {
	return DataTopic(root, serial, token, StatusSuffix)
}

// LegacyTopic returns the token-less topic of proxy ≤ 1.1.
func LegacyTopic(root, serial, suffix string) string {
	if root == "" {
		root = DefaultRoot
	}
	return root + "/" + serial + "/" + suffix
}
