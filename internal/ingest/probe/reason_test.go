package probe

import (
	"testing"
)

// Every refusal of Parse has a reason that names it, not the input: the
// error's text may quote the payload, the reason never does.
func TestReasons(t *testing.T) {
	entry := func(pairs ...string) []byte {
		b := []byte{0x80 | byte(len(pairs)/2)}
		for _, p := range pairs {
			b = appendStr(b, p)
		}
		return b
	}
	for _, c := range []struct {
		suffix  string
		payload []byte
		want    string
	}{
		{"survey", []byte{0x80}, ReasonIgnored},
		{"EVIL<topic>", []byte{0x80}, ReasonUnknownTopic},
		{"minipot", []byte{0xc1, 'E', 'V', 'I', 'L'}, ReasonMalformed},
		{"minipot", append([]byte{0xdd, 0, 0, 0x4e, 0x20}, make([]byte, 20000)...), ReasonTooMany},
		{"minipot", entry("type", "telnet", "action", "login"), ReasonMissing},
		{"minipot", entry("type", "telnet", "action", "login", "ip", "EVIL<addr>"), ReasonBadAddress},
		{"minipot", entry("type", "EVIL<type>", "action", "login", "ip", "1.2.3.4"), ReasonBadType},
		{"faillogs", entry("service", "EVIL<service>", "ip", "1.2.3.4"), ReasonBadType},
		{"haas", entry("ts", "EVIL<ts>", "ip", "1.2.3.4", "action", "logged"), ReasonBadValue},
	} {
		_, errs := Parse(nil, c.suffix, c.payload, Meta{})
		if len(errs) == 0 {
			t.Errorf("%s %q: accepted", c.suffix, c.payload[:min(len(c.payload), 32)])
			continue
		}
		var counts Counts
		if r := counts.Add(errs[0]); r != c.want {
			t.Errorf("%s %q: reason %s (%v), want %s", c.suffix, c.payload, r, errs[0], c.want)
		}
		if c.want == ReasonIgnored {
			if counts.Ignored() != 1 {
				t.Error("ignored not counted")
			}
		} else if counts.Refused()[c.want] != 1 {
			t.Errorf("%s not counted: %v", c.want, counts.Refused())
		}
	}
	if len(Reasons()) != len(new(Counts).Refused()) {
		t.Fatal("Refused must list every reason")
	}
}
