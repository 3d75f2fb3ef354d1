package dynfw

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"net/netip"
	"reflect"
	"strconv"
	"testing"

	"github.com/dynfw/sentinel/internal/msgpack"
	"github.com/dynfw/sentinel/internal/testenv"
)

func TestPythonByteIdentity(t *testing.T) {
	addrs := func(ss ...string) []netip.Prefix {
		out := make([]netip.Prefix, len(ss))
		for i, s := range ss {
			out[i] = pfx(s)
		}
		return out
	}
	seventeen := make([]string, 17)
	for i := range seventeen {
		seventeen[i] = "198.51.100." + strconv.Itoa(i*15)
	}
	lists := map[string]struct {
		l    List
		text []string // the list as the Python publisher holds it
	}{
		"list_few": {
			List{Version: 1700000000, Serial: 70000, TS: 1700000005},
			[]string{"1.2.3.4", "2001:db8::1", "192.0.2.255", "2001:db8:1234:5678:9abc:def0:1234:5678", "0.0.0.0"},
		},
		"list_empty":    {List{}, []string{}},
		"list_17":       {List{Version: 1, Serial: 200, TS: 256}, seventeen},
		"list_prefixes": {List{Version: math.MaxUint64, Serial: 1<<32 + 5, TS: 65536}, []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.1"}},
	}
	var cases []map[string]any
	for name, c := range lists {
		cases = append(cases, map[string]any{"name": name, "kind": "list",
			"version": c.l.Version, "serial": c.l.Serial, "list": c.text, "ts": c.l.TS})
	}
	deltas := map[string]Delta{}
	for _, serial := range []uint64{0, 1, 127, 128, 200, 255, 256, 65535, 65536, 70000, 1<<32 - 1, 1<<32 + 5, math.MaxUint64} {
		for _, op := range []Op{Positive, Negative} {
			name := "delta_" + op.String() + "_" + strconv.FormatUint(serial, 10)
			addr := "192.0.2." + strconv.FormatUint(serial%256, 10)
			if op == Negative {
				addr = "2001:db8::" + strconv.FormatUint(serial%4096+1, 16)
			}
			deltas[name] = Delta{Serial: serial, Op: op, Addr: pfx(addr), TS: 1700000000 + serial%1000}
			cases = append(cases, map[string]any{"name": name, "kind": "delta",
				"serial": serial, "delta": op.String(), "ip": addr, "ts": 1700000000 + serial%1000})
		}
	}
	events := map[string]Event{
		"event_v4":        {Name: "telnet_login", Addr: netip.MustParseAddr("203.0.113.7"), TS: 1700000000},
		"event_v6":        {Name: "haas_logged_active", Addr: netip.MustParseAddr("2001:db8::dead:beef"), TS: 0},
		"event_long_name": {Name: "fwlogs_small_port_scan_and_some_more", Addr: netip.MustParseAddr("1.1.1.1"), TS: math.MaxUint32},
	}
	for name, e := range events {
		cases = append(cases, map[string]any{"name": name, "kind": "event",
			"event": e.Name, "ip": e.Addr.String(), "ts": e.TS})
	}

	want := testenv.Packb(t, cases)
	check := func(name string, got []byte, m Message) {
		t.Helper()
		if !bytes.Equal(got, want[name]) {
			t.Errorf("%s: Marshal differs from packb\n got %x\nwant %x", name, got, want[name])
			return
		}
		back, err := Decode(m.Topic(), want[name], DecodeOptions{AllowPrefix: true})
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Errorf("%s: Decode of packb output = %+v, %v", name, back, err)
		}
	}
	for name, c := range lists {
		l := c.l
		l.Addrs = addrs(c.text...)
		check(name, l.Marshal(), &l)
	}
	for name, d := range deltas {
		check(name, d.Marshal(), &d)
	}
	for name, e := range events {
		check(name, e.Marshal(), &e)
	}
}

// tagged converts a value to the tagged form testdata/packb.py builds raw
// payloads from. [][2]any is a map whose keys may be of any type.
func tagged(v any) any {
	switch v := v.(type) {
	case nil:
		return []any{"nil"}
	case bool:
		return []any{"bool", v}
	case int:
		return []any{"int", strconv.Itoa(v)}
	case uint64:
		return []any{"int", strconv.FormatUint(v, 10)}
	case float64:
		return []any{"float", strconv.FormatUint(math.Float64bits(v), 10)}
	case string:
		return []any{"str", v}
	case []byte:
		return []any{"bin", hex.EncodeToString(v)}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = tagged(e)
		}
		return []any{"array", out}
	case [][2]any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = []any{tagged(e[0]), tagged(e[1])}
		}
		return []any{"map", out}
	}
	panic("tagged: unsupported value")
}

func TestDecodePythonEdgeCases(t *testing.T) {
	longV6 := "2001:db8:1234:5678:9abc:def0:1234:5678"
	type check func(t *testing.T, name string, payload []byte)
	wantDelta := func(want Delta) check {
		return func(t *testing.T, name string, payload []byte) {
			got, err := DecodeDelta(payload, DecodeOptions{})
			if err != nil || got != want {
				t.Errorf("%s: %+v, %v; want %+v", name, got, err, want)
			}
		}
	}
	cases := []struct {
		name  string
		v     any
		opts  map[string]any
		check check
	}{
		{
			name:  "delta_bin_values_and_keys",
			v:     [][2]any{{[]byte("serial"), 7}, {[]byte("delta"), []byte("negative")}, {[]byte("ip"), []byte("1.2.3.4")}, {[]byte("ts"), 9}},
			check: wantDelta(Delta{Serial: 7, Op: Negative, Addr: pfx("1.2.3.4"), TS: 9}),
		},
		{
			// use_bin_type=False: the pre-2.0 raw type for everything, and no
			// str8, so the 38-byte address is raw16.
			name: "delta_legacy_raw",
			v:    [][2]any{{"serial", 7}, {"delta", []byte("positive")}, {"ip", longV6}, {"ts", 9}},
			opts: map[string]any{"use_bin_type": false},
			check: func(t *testing.T, name string, payload []byte) {
				if !bytes.Contains(payload, []byte{0xda, 0x00, byte(len(longV6))}) {
					t.Errorf("%s: expected a raw16 address in %x", name, payload)
				}
				wantDelta(Delta{Serial: 7, Op: Positive, Addr: pfx(longV6), TS: 9})(t, name, payload)
			},
		},
		{
			name: "delta_reordered_with_extras",
			v: [][2]any{{"ts", 9}, {"geo", [][2]any{{"country", "CZ"}, {1, []any{1.5, nil, true}}}}, {"ip", "::ffff:1.2.3.4"},
				{5, "int key"}, {"serial", uint64(math.MaxUint64)}, {"delta", "positive"}},
			check: wantDelta(Delta{Serial: math.MaxUint64, Op: Positive, Addr: pfx("1.2.3.4"), TS: 9}),
		},
		{
			name: "list_mixed_entries",
			v: [][2]any{{"version", 1}, {"serial", 2}, {"ts", 3},
				{"list", []any{"1.2.3.4", 5, nil, "bad", []byte("5.6.7.8"), "::ffff:1.1.1.1", []any{"9.9.9.9"}, longV6}}},
			check: func(t *testing.T, name string, payload []byte) {
				l, err := DecodeList(payload, DecodeOptions{})
				want := []netip.Prefix{pfx("1.2.3.4"), pfx("5.6.7.8"), pfx("1.1.1.1"), pfx(longV6)}
				if err != nil || !reflect.DeepEqual(l.Addrs, want) || l.SkippedCount != 4 {
					t.Errorf("%s: %v, %d skipped, %v", name, l.Addrs, l.SkippedCount, err)
				}
				var idx []int
				for _, s := range l.Skipped {
					idx = append(idx, s.Index)
				}
				if !reflect.DeepEqual(idx, []int{1, 2, 3, 6}) {
					t.Errorf("%s: skipped indexes %v", name, idx)
				}
			},
		},
		{
			name: "event_float_ts",
			v:    [][2]any{{"event", "x"}, {"ip", "1.2.3.4"}, {"ts", 1700000000.5}},
			check: func(t *testing.T, name string, payload []byte) {
				_, err := DecodeEvent(payload, DecodeOptions{})
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != "ts" || !errors.Is(err, msgpack.ErrType) {
					t.Errorf("%s: %v, want a type error on ts", name, err)
				}
			},
		},
		{
			name: "list_as_array_of_maps",
			v:    []any{[][2]any{{"version", 1}}},
			check: func(t *testing.T, name string, payload []byte) {
				_, err := DecodeList(payload, DecodeOptions{})
				var pe *PayloadError
				if !errors.As(err, &pe) || !errors.Is(err, msgpack.ErrType) {
					t.Errorf("%s: %v, want a PayloadError", name, err)
				}
			},
		},
	}
	var pc []map[string]any
	for _, c := range cases {
		m := map[string]any{"name": c.name, "kind": "raw", "v": tagged(c.v)}
		if c.opts != nil {
			m["opts"] = c.opts
		}
		pc = append(pc, m)
	}
	packed := testenv.Packb(t, pc)
	for _, c := range cases {
		c.check(t, c.name, packed[c.name])
	}
}
