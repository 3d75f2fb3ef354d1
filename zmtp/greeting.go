package zmtp

import (
	"bytes"
	"fmt"
)

const greetingSize = 64

// greeting is the 64-byte ZMTP 3.x greeting.
type greeting struct {
	major, minor byte
	mechanism    string
	asServer     bool
}

// marshal produces the greeting as libzmq sends it: the signature's padding
// holds the big-endian value 1, the version is 3.1.
func (g greeting) marshal() [greetingSize]byte {
	var b [greetingSize]byte
	b[0] = 0xff
	b[8] = 0x01
	b[9] = 0x7f
	b[10] = g.major
	b[11] = g.minor
	copy(b[12:32], g.mechanism)
	if g.asServer {
		b[32] = 1
	}
	return b
}

// parseGreeting checks the signature and extracts version, mechanism and
// role. ZMTP 1.0 and 2.0 peers are refused; any 3.x minor version is accepted.
func parseGreeting(b []byte) (greeting, error) {
	if len(b) != greetingSize {
		return greeting{}, protoErr("greeting is %d bytes, want %d", len(b), greetingSize)
	}
	if b[0] != 0xff || b[9]&0x01 != 0x01 {
		return greeting{}, protoErr("bad greeting signature % x (not a ZMTP 3 peer)", b[:10])
	}
	g := greeting{major: b[10], minor: b[11], asServer: b[32] == 1}
	if g.major < 3 {
		return greeting{}, protoErr("peer speaks ZMTP %d.%d, need 3.x", g.major, g.minor)
	}
	mech := b[12:32]
	if i := bytes.IndexByte(mech, 0); i >= 0 {
		for _, c := range mech[i:] {
			if c != 0 {
				return greeting{}, protoErr("mechanism name not NUL padded")
			}
		}
		mech = mech[:i]
	}
	for _, c := range mech {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '+') {
			return greeting{}, protoErr("invalid mechanism name of %d bytes", len(mech))
		}
	}
	if len(mech) == 0 {
		return greeting{}, protoErr("empty mechanism name")
	}
	g.mechanism = string(mech)
	return g, nil
}

func (g greeting) String() string {
	return fmt.Sprintf("ZMTP %d.%d %s server=%v", g.major, g.minor, g.mechanism, g.asServer)
}
