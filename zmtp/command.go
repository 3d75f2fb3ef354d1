package zmtp

import (
	"encoding/binary"
	"strings"
)

// Command names used by ZMTP 3.1 and ZMTP-CURVE.
const (
	cmdReady     = "READY"
	cmdError     = "ERROR"
	cmdPing      = "PING"
	cmdPong      = "PONG"
	cmdSubscribe = "SUBSCRIBE"
	cmdCancel    = "CANCEL"
	cmdHello     = "HELLO"
	cmdWelcome   = "WELCOME"
	cmdInitiate  = "INITIATE"
	cmdMessage   = "MESSAGE"
)

// command is a parsed command body: a length-prefixed name and its data.
type command struct {
	name string
	data []byte
}

func parseCommand(body []byte) (command, error) {
	if len(body) < 1 {
		return command{}, protoErr("empty command")
	}
	n := int(body[0])
	if n == 0 || len(body) < 1+n {
		return command{}, protoErr("command name length %d exceeds body of %d bytes", n, len(body))
	}
	return command{name: string(body[1 : 1+n]), data: body[1+n:]}, nil
}

// isCommand reports whether body is the command name, without allocating.
func isCommand(body []byte, name string) bool {
	return len(body) >= 1+len(name) && int(body[0]) == len(name) && string(body[1:1+len(name)]) == name
}

func appendCommand(b []byte, name string, data ...[]byte) []byte {
	b = append(b, byte(len(name)))
	b = append(b, name...)
	for _, d := range data {
		b = append(b, d...)
	}
	return b
}

// property is one metadata property of READY or INITIATE.
type property struct {
	name, value string
}

// metadata is an ordered property list; names compare case-insensitively.
type metadata []property

func (md metadata) get(name string) (string, bool) {
	for _, p := range md {
		if strings.EqualFold(p.name, name) {
			return p.value, true
		}
	}
	return "", false
}

func appendMetadata(b []byte, md metadata) []byte {
	for _, p := range md {
		b = append(b, byte(len(p.name)))
		b = append(b, p.name...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(p.value)))
		b = append(b, p.value...)
	}
	return b
}

func parseMetadata(b []byte) (metadata, error) {
	var md metadata
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || len(b) < 1+n+4 {
			return nil, protoErr("truncated metadata property")
		}
		name := b[1 : 1+n]
		for _, c := range name {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '+') {
				return nil, protoErr("invalid metadata property name of %d bytes", len(name))
			}
		}
		vl := binary.BigEndian.Uint32(b[1+n:])
		b = b[1+n+4:]
		if uint64(vl) > uint64(len(b)) {
			return nil, protoErr("metadata value of %d bytes exceeds the command", vl)
		}
		md = append(md, property{name: string(name), value: string(b[:vl])})
		b = b[vl:]
	}
	return md, nil
}
