package probe

import (
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/msgpack"
)

// TestDetailsAreStorable: what a probe types reaches the events as
// storable text (events.Storable), whatever the bytes, on str and bin
// strings alike (issue 10, fault 5).
func TestDetailsAreStorable(t *testing.T) {
	euro := strings.Repeat("€", 341)
	for _, c := range []struct{ in, want string }{
		{"a\x00b", `a\x00b`},
		{"pw\xff\xfe", `pw\xff\xfe`},
		{euro + "€", euro}, // 1026 bytes: the cut at 1024 falls inside the last "€"
		{`C:\x41`, `C:\x5cx41`},
		{"root", "root"},
	} {
		for _, asBin := range []bool{false, true} {
			b := msgpack.AppendMapHeader(nil, 4)
			for _, kv := range [][2]string{{"type", "telnet"}, {"ip", "192.0.2.1"}, {"action", "login"}} {
				b = msgpack.AppendString(b, kv[0])
				b = msgpack.AppendString(b, kv[1])
			}
			b = msgpack.AppendString(b, "data")
			b = msgpack.AppendMapHeader(b, 2)
			b = msgpack.AppendString(b, "username")
			b = msgpack.AppendString(b, c.in)
			b = msgpack.AppendString(b, "password")
			if asBin {
				b = msgpack.AppendBytes(b, []byte(c.in))
			} else {
				b = msgpack.AppendString(b, c.in)
			}
			evs, errs := Parse(nil, "minipot", b, Meta{})
			if len(errs) != 0 || len(evs) != 1 || evs[0].Details == nil {
				t.Fatalf("%q: %v %+v", c.in, errs, evs)
			}
			if d := evs[0].Details; d.Username != c.want || d.Password != c.want {
				t.Errorf("%q (bin %v): username %q, password %q, want %q", c.in, asBin, d.Username, d.Password, c.want)
			}
		}
	}
}
