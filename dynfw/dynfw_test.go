package dynfw

import (
	"bytes"
	"errors"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/msgpack"

	"github.com/dynfw/sentinel/internal/testenv"
)

// pack encodes a generic value (a msgpack.Map keeps key order) as a payload.
func pack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Append(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pfx(s string) netip.Prefix {
	p, err := ParseAddr(s, true)
	if err != nil {
		panic(err)
	}
	return p
}

type kv = msgpack.KV

func deltaMap(serial, op, ip, ts any) msgpack.Map {
	return msgpack.Map{{Key: "serial", Value: serial}, {Key: "delta", Value: op}, {Key: "ip", Value: ip}, {Key: "ts", Value: ts}}
}

func TestMarshalKnownBytes(t *testing.T) {
	// Spelled out by hand from the MessagePack spec, independently of the
	// Python check in python_test.go.
	d := Delta{Serial: 70000, Op: Negative, Addr: pfx("192.0.2.1"), TS: 1700000000}
	want := testenv.Hex(t, "84"+
		"a6 73657269616c ce 00011170"+ // "serial": 70000
		"a5 64656c7461 a8 6e65676174697665"+ // "delta": "negative"
		"a2 6970 a9 3139322e302e322e31"+ // "ip": "192.0.2.1"
		"a2 7473 ce 6553f100") // "ts": 1700000000
	if got := d.Marshal(); !bytes.Equal(got, want) {
		t.Errorf("delta:\n got %x\nwant %x", got, want)
	}
	if got := d.AppendMsgpack([]byte{0xff}); !bytes.Equal(got, append([]byte{0xff}, want...)) {
		t.Errorf("AppendMsgpack does not append: %x", got)
	}

	l := List{Version: 5, Serial: 0, Addrs: []netip.Prefix{pfx("1.2.3.4"), pfx("2001:db8::/32")}, TS: 200}
	want = testenv.Hex(t, "84"+
		"a7 76657273696f6e 05"+
		"a6 73657269616c 00"+
		"a4 6c697374 92 a7 312e322e332e34 ad 323030313a6462383a3a2f3332"+
		"a2 7473 cc c8")
	if got := l.Marshal(); !bytes.Equal(got, want) {
		t.Errorf("list:\n got %x\nwant %x", got, want)
	}

	e := Event{Name: "telnet_login", Addr: netip.MustParseAddr("::1"), TS: 1}
	want = testenv.Hex(t, "83 a5 6576656e74 ac 74656c6e65745f6c6f67696e a2 6970 a3 3a3a31 a2 7473 01")
	if got := e.Marshal(); !bytes.Equal(got, want) {
		t.Errorf("event:\n got %x\nwant %x", got, want)
	}
}

func TestMarshalLongAddressUsesStr8(t *testing.T) {
	// 39 characters: more than fixstr's 31, so packb uses str8.
	d := Delta{Serial: 1, Op: Positive, Addr: pfx("2001:db8:1234:5678:9abc:def0:1234:5678"), TS: 1}
	b := d.Marshal()
	if i := bytes.Index(b, []byte("\xa2ip\xd9\x26")); i < 0 {
		t.Errorf("ip not encoded as str8 of 38 bytes: %x", b)
	}
}

func TestMarshalNormalisesAddresses(t *testing.T) {
	e := Event{Name: "x", Addr: netip.MustParseAddr("fe80::1%eth0"), TS: 1}
	got, err := DecodeEvent(e.Marshal(), DecodeOptions{})
	if err != nil || got.Addr != netip.MustParseAddr("fe80::1") {
		t.Errorf("zoned event address: %v, %v", got.Addr, err)
	}
	e.Addr = netip.MustParseAddr("::ffff:1.2.3.4")
	if got, err := DecodeEvent(e.Marshal(), DecodeOptions{}); err != nil || got.Addr != netip.MustParseAddr("1.2.3.4") {
		t.Errorf("mapped event address: %v, %v", got.Addr, err)
	}
}

func TestDecodeDelta(t *testing.T) {
	want := Delta{Serial: 70000, Op: Positive, Addr: pfx("192.0.2.1"), TS: 1700000000}
	for _, c := range []struct {
		name    string
		payload []byte
	}{
		{"canonical", want.Marshal()},
		{"reordered", pack(t, msgpack.Map{{Key: "ts", Value: 1700000000}, {Key: "ip", Value: "192.0.2.1"}, {Key: "delta", Value: "positive"}, {Key: "serial", Value: 70000}})},
		{"extra keys", pack(t, msgpack.Map{
			{Key: "geo", Value: msgpack.Map{{Key: "cc", Value: "CZ"}}}, {Key: "serial", Value: 70000}, {Key: "delta", Value: "positive"},
			{Key: "list", Value: []any{"9.9.9.9"}}, {Key: "ip", Value: "192.0.2.1"}, {Key: "ts", Value: 1700000000}, {Key: "", Value: nil},
		})},
		{"non-string keys skipped", append(testenv.Hex(t, "86 05 c0 93 01 02 03 a5 6f74686572"),
			want.Marshal()[1:]...)},
		{"bin values", pack(t, deltaMap(70000, []byte("positive"), []byte("192.0.2.1"), 1700000000))},
		{"bin keys", testenv.Hex(t, "84 c4 06 73657269616c ce 00011170 c4 05 64656c7461 a8 706f736974697665 c4 02 6970 a9 3139322e302e322e31 c4 02 7473 ce 6553f100")},
		{"wide ints", testenv.Hex(t, "84 a6 73657269616c cf 0000000000011170 a5 64656c7461 a8 706f736974697665 a2 6970 a9 3139322e302e322e31 a2 7473 d3 000000006553f100")},
		{"map16 header and str8 keys", testenv.Hex(t, "de 0004 d9 06 73657269616c ce 00011170 da 0005 64656c7461 a8 706f736974697665 db 00000002 6970 a9 3139322e302e322e31 a2 7473 ce 6553f100")},
		{"mapped address", pack(t, deltaMap(70000, "positive", "::ffff:192.0.2.1", 1700000000))},
	} {
		got, err := DecodeDelta(c.payload, DecodeOptions{})
		if err != nil || got != want {
			t.Errorf("%s: got %+v, %v", c.name, got, err)
		}
	}
	neg, err := DecodeDelta(pack(t, deltaMap(0, "negative", "2001:db8::1", 0)), DecodeOptions{})
	if err != nil || neg != (Delta{Op: Negative, Addr: pfx("2001:db8::1")}) {
		t.Errorf("negative delta: %+v, %v", neg, err)
	}
}

// fieldErr asserts that err is a *FieldError for topic and field wrapping
// target (if non-nil).
func fieldErr(t *testing.T, name string, err error, topic, field string, target error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Topic != topic || fe.Field != field {
		t.Errorf("%s: error %v, want a FieldError for %s %q", name, err, topic, field)
		return
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("%s: error %v does not wrap %v", name, err, target)
	}
	var ae *AddrError
	if errors.As(err, &ae) {
		t.Errorf("%s: fatal error %v wraps an AddrError", name, err)
	}
}

func TestDecodeDeltaFieldErrors(t *testing.T) {
	ok := deltaMap(1, "positive", "1.2.3.4", 2)
	without := func(key string) msgpack.Map {
		var m msgpack.Map
		for _, e := range ok {
			if e.Key != key {
				m = append(m, e)
			}
		}
		return m
	}
	for _, c := range []struct {
		name   string
		m      msgpack.Map
		field  string
		target error
	}{
		{"missing serial", without("serial"), "serial", ErrMissing},
		{"missing delta", without("delta"), "delta", ErrMissing},
		{"missing ip", without("ip"), "ip", ErrMissing},
		{"missing ts", without("ts"), "ts", ErrMissing},
		{"serial is a string", deltaMap("1", "positive", "1.2.3.4", 2), "serial", msgpack.ErrType},
		{"serial is negative", deltaMap(-1, "positive", "1.2.3.4", 2), "serial", msgpack.ErrRange},
		{"serial is a float", deltaMap(1.0, "positive", "1.2.3.4", 2), "serial", msgpack.ErrType},
		{"serial is nil", deltaMap(nil, "positive", "1.2.3.4", 2), "serial", msgpack.ErrType},
		{"ts is negative", deltaMap(1, "positive", "1.2.3.4", math.MinInt64), "ts", msgpack.ErrRange},
		{"ts is an array", deltaMap(1, "positive", "1.2.3.4", []any{}), "ts", msgpack.ErrType},
		{"delta is unknown", deltaMap(1, "add", "1.2.3.4", 2), "delta", ErrInvalidOp},
		{"delta is capitalised", deltaMap(1, "Positive", "1.2.3.4", 2), "delta", ErrInvalidOp},
		{"delta is empty", deltaMap(1, "", "1.2.3.4", 2), "delta", ErrInvalidOp},
		{"delta is a bool", deltaMap(1, true, "1.2.3.4", 2), "delta", msgpack.ErrType},
		{"duplicate serial", append(deltaMap(1, "positive", "1.2.3.4", 2), kv{Key: "serial", Value: 2}), "serial", ErrDuplicate},
		// The fatal error wins over the address error.
		{"missing serial and bad ip", msgpack.Map{{Key: "delta", Value: "positive"}, {Key: "ip", Value: "bogus"}, {Key: "ts", Value: 2}}, "serial", ErrMissing},
		{"bad ip then bad ts", deltaMap(1, "positive", "bogus", "2"), "ts", msgpack.ErrType},
	} {
		d, err := DecodeDelta(pack(t, c.m), DecodeOptions{})
		fieldErr(t, c.name, err, TopicDelta, c.field, c.target)
		if d != (Delta{}) {
			t.Errorf("%s: fatal error came with %+v, want the zero Delta", c.name, d)
		}
	}
	_, err := DecodeDelta(pack(t, without("serial")), DecodeOptions{})
	if got, want := err.Error(), `dynfw/delta: field "serial": missing`; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	_, err = DecodeDelta(pack(t, deltaMap(1, "add", "1.2.3.4", 2)), DecodeOptions{})
	if got, want := err.Error(), `dynfw/delta: field "delta": want "positive" or "negative", got "add"`; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

func TestDecodeDeltaAddrError(t *testing.T) {
	for _, c := range []struct {
		name   string
		ip     any
		opt    DecodeOptions
		value  string
		target error
	}{
		{"garbage", "1.2.3.999", DecodeOptions{}, "1.2.3.999", ErrInvalidAddr},
		{"empty", "", DecodeOptions{}, "", ErrInvalidAddr},
		{"zone", "fe80::1%eth0", DecodeOptions{}, "fe80::1%eth0", ErrZone},
		{"prefix not allowed", "10.0.0.0/8", DecodeOptions{}, "10.0.0.0/8", ErrPrefixNotAllowed},
		{"not a string", uint64(16909060), DecodeOptions{}, "", msgpack.ErrType},
		{"nil", nil, DecodeOptions{}, "", msgpack.ErrType},
		{"nested", []any{"1.2.3.4"}, DecodeOptions{}, "", msgpack.ErrType},
		{"long", strings.Repeat("9", 1000), DecodeOptions{}, strings.Repeat("9", MaxValueLen), ErrInvalidAddr},
	} {
		d, err := DecodeDelta(pack(t, deltaMap(41, "negative", c.ip, 7)), c.opt)
		var ae *AddrError
		if !errors.As(err, &ae) {
			t.Errorf("%s: error %v, want an AddrError", c.name, err)
			continue
		}
		if !errors.Is(err, c.target) || ae.Value != c.value || ae.Index != -1 {
			t.Errorf("%s: got %+v, want value %q wrapping %v", c.name, ae, c.value, c.target)
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "ip" || fe.Topic != TopicDelta {
			t.Errorf("%s: error %v does not name field ip", c.name, err)
		}
		if d != (Delta{Serial: 41, Op: Negative, TS: 7}) {
			t.Errorf("%s: delta %+v, want serial, op and ts set", c.name, d)
		}
	}
	d, err := DecodeDelta(pack(t, deltaMap(1, "positive", "10.1.0.0/16", 2)), DecodeOptions{AllowPrefix: true})
	if err != nil || d.Addr != netip.MustParsePrefix("10.1.0.0/16") {
		t.Errorf("prefix with AllowPrefix: %+v, %v", d, err)
	}
}

func TestDecodePayloadErrors(t *testing.T) {
	valid := Delta{Serial: 1, Op: Positive, Addr: pfx("1.2.3.4"), TS: 2}.Marshal()
	for _, c := range []struct {
		name    string
		payload []byte
		target  error
	}{
		{"empty", nil, msgpack.ErrShortBuffer},
		{"array", testenv.Hex(t, "90"), msgpack.ErrType},
		{"string", testenv.Hex(t, "a1 61"), msgpack.ErrType},
		{"nil", testenv.Hex(t, "c0"), msgpack.ErrType},
		{"trailing byte", append(bytes.Clone(valid), 0x00), msgpack.ErrTrailing},
		{"two maps", append(bytes.Clone(valid), valid...), msgpack.ErrTrailing},
		{"hostile map size", testenv.Hex(t, "df ffffffff a6 73657269616c 01"), msgpack.ErrShortBuffer},
		{"truncated key", testenv.Hex(t, "81 a6 7365"), msgpack.ErrShortBuffer},
		{"truncated unknown value", testenv.Hex(t, "81 a1 78 dd 00000005 01"), msgpack.ErrShortBuffer},
		{"invalid byte in unknown value", testenv.Hex(t, "81 a1 78 c1"), msgpack.ErrInvalidCode},
	} {
		for topic, decode := range decoders {
			err := decode(c.payload)
			var pe *PayloadError
			if !errors.As(err, &pe) || pe.Topic != topic || !errors.Is(err, c.target) {
				t.Errorf("%s %s: error %v, want a PayloadError wrapping %v", topic, c.name, err, c.target)
			}
		}
	}
	err := decoders[TopicList](testenv.Hex(t, "90"))
	if got, want := err.Error(), "dynfw/list: payload: msgpack: at offset 0: want map, got array"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

var decoders = map[string]func([]byte) error{
	TopicList:  func(b []byte) error { _, err := DecodeList(b, DecodeOptions{}); return err },
	TopicDelta: func(b []byte) error { _, err := DecodeDelta(b, DecodeOptions{}); return err },
	TopicEvent: func(b []byte) error { _, err := DecodeEvent(b, DecodeOptions{}); return err },
}

func TestTruncatedAtEveryOffset(t *testing.T) {
	for topic, full := range map[string][]byte{
		TopicList:  List{Version: 1700000000, Serial: 70000, Addrs: []netip.Prefix{pfx("1.2.3.4"), pfx("2001:db8::1")}, TS: 1700000001}.Marshal(),
		TopicDelta: Delta{Serial: 1 << 40, Op: Positive, Addr: pfx("2001:db8::1"), TS: 1700000000}.Marshal(),
		TopicEvent: Event{Name: "haas_logged", Addr: netip.MustParseAddr("192.0.2.9"), TS: 1700000000}.Marshal(),
	} {
		if err := decoders[topic](full); err != nil {
			t.Fatalf("%s: full payload: %v", topic, err)
		}
		for i := range len(full) {
			if err := decoders[topic](full[:i]); err == nil {
				t.Errorf("%s cut at %d of %d decoded", topic, i, len(full))
			}
			if m, err := Decode(topic, full[:i], DecodeOptions{}); err == nil || m != nil {
				t.Errorf("%s cut at %d: Decode = %v, %v", topic, i, m, err)
			}
		}
	}
}

func TestDecodeList(t *testing.T) {
	addrs := []netip.Prefix{pfx("1.2.3.4"), pfx("2001:db8::1"), pfx("0.0.0.0"), pfx("255.255.255.255")}
	want := List{Version: 1700000000, Serial: 70000, Addrs: addrs, TS: 1700000001}
	l, err := DecodeList(want.Marshal(), DecodeOptions{})
	if err != nil || !reflect.DeepEqual(l, want) {
		t.Errorf("canonical list: %+v, %v", l, err)
	}

	empty, err := DecodeList(List{Version: 1, Serial: 2, TS: 3}.Marshal(), DecodeOptions{})
	if err != nil || len(empty.Addrs) != 0 || empty.Version != 1 || empty.Serial != 2 || empty.TS != 3 || empty.SkippedCount != 0 {
		t.Errorf("empty list: %+v, %v", empty, err)
	}

	mixed := msgpack.Map{
		{Key: "ts", Value: 9}, {Key: "extra", Value: []any{1, 2}}, {Key: "version", Value: 0},
		{Key: "list", Value: []any{
			"1.2.3.4",              // 0
			"bogus",                // 1
			uint64(5),              // 2
			[]byte("5.6.7.8"),      // 3: bin is a string
			"10.0.0.0/8",           // 4: prefix, not allowed
			nil,                    // 5
			"::ffff:9.9.9.9",       // 6
			"fe80::1%lo",           // 7
			msgpack.Map{},          // 8
			"",                     // 9
			"2001:db8::/32",        // 10: prefix
			"2001:DB8:0:0:0:0:0:1", // 11
		}},
		{Key: "serial", Value: 1},
	}
	l, err = DecodeList(pack(t, mixed), DecodeOptions{})
	if err != nil {
		t.Fatalf("mixed list: %v", err)
	}
	wantAddrs := []netip.Prefix{pfx("1.2.3.4"), pfx("5.6.7.8"), pfx("9.9.9.9"), pfx("2001:db8::1")}
	if !reflect.DeepEqual(l.Addrs, wantAddrs) {
		t.Errorf("valid entries %v, want %v", l.Addrs, wantAddrs)
	}
	if l.TS != 9 || l.Version != 0 || l.Serial != 1 {
		t.Errorf("fields %+v", l)
	}
	type skip struct {
		i      int
		value  string
		target error
	}
	wantSkips := []skip{
		{1, "bogus", ErrInvalidAddr}, {2, "", msgpack.ErrType}, {4, "10.0.0.0/8", ErrPrefixNotAllowed},
		{5, "", msgpack.ErrType}, {7, "fe80::1%lo", ErrZone}, {8, "", msgpack.ErrType}, {9, "", ErrInvalidAddr},
		{10, "2001:db8::/32", ErrPrefixNotAllowed},
	}
	if l.SkippedCount != len(wantSkips) || len(l.Skipped) != len(wantSkips) {
		t.Fatalf("skipped %d (%d kept), want %d: %v", l.SkippedCount, len(l.Skipped), len(wantSkips), l.Skipped)
	}
	for i, w := range wantSkips {
		got := l.Skipped[i]
		if got.Index != w.i || got.Value != w.value || !errors.Is(&got, w.target) {
			t.Errorf("skipped[%d] = %v, want index %d value %q wrapping %v", i, &got, w.i, w.value, w.target)
		}
	}

	l, err = DecodeList(pack(t, mixed), DecodeOptions{AllowPrefix: true})
	if err != nil || l.SkippedCount != len(wantSkips)-2 || len(l.Addrs) != len(wantAddrs)+2 {
		t.Errorf("with AllowPrefix: %d addresses, %d skipped, %v", len(l.Addrs), l.SkippedCount, err)
	}
	if !slicesContains(l.Addrs, netip.MustParsePrefix("10.0.0.0/8")) || !slicesContains(l.Addrs, netip.MustParsePrefix("2001:db8::/32")) {
		t.Errorf("prefixes missing with AllowPrefix: %v", l.Addrs)
	}
}

func slicesContains(s []netip.Prefix, p netip.Prefix) bool {
	for _, e := range s {
		if e == p {
			return true
		}
	}
	return false
}

func TestDecodeListSkippedIsBounded(t *testing.T) {
	entries := make([]any, 5000)
	for i := range entries {
		entries[i] = i // every entry is an int, so every one is skipped
	}
	entries[4999] = "1.2.3.4"
	l, err := DecodeList(pack(t, msgpack.Map{{Key: "version", Value: 1}, {Key: "serial", Value: 1}, {Key: "list", Value: entries}, {Key: "ts", Value: 1}}), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.SkippedCount != 4999 || len(l.Skipped) != MaxSkipped || len(l.Addrs) != 1 {
		t.Errorf("SkippedCount %d, %d details, %d addresses", l.SkippedCount, len(l.Skipped), len(l.Addrs))
	}
	if l.Skipped[MaxSkipped-1].Index != MaxSkipped-1 {
		t.Errorf("details are not the first entries: last index %d", l.Skipped[MaxSkipped-1].Index)
	}
}

func TestDecodeListFieldErrors(t *testing.T) {
	base := func(list any) msgpack.Map {
		return msgpack.Map{{Key: "version", Value: 1}, {Key: "serial", Value: 2}, {Key: "list", Value: list}, {Key: "ts", Value: 3}}
	}
	for _, c := range []struct {
		name   string
		m      msgpack.Map
		field  string
		target error
	}{
		{"list is a string", base("1.2.3.4"), "list", msgpack.ErrType},
		{"list is a map", base(msgpack.Map{}), "list", msgpack.ErrType},
		{"list is nil", base(nil), "list", msgpack.ErrType},
		{"missing list", base([]any{})[:2], "list", ErrMissing},
		{"missing version", base([]any{})[1:], "version", ErrMissing},
		{"version is negative", append(msgpack.Map{{Key: "version", Value: -5}}, base([]any{})[1:]...), "version", msgpack.ErrRange},
		{"duplicate list", append(base([]any{}), kv{Key: "list", Value: []any{}}), "list", ErrDuplicate},
	} {
		l, err := DecodeList(pack(t, c.m), DecodeOptions{})
		fieldErr(t, c.name, err, TopicList, c.field, c.target)
		if !reflect.DeepEqual(l, List{}) {
			t.Errorf("%s: fatal error came with %+v", c.name, l)
		}
	}
	// A list element whose encoding is broken is fatal, not skipped: there
	// is no way to find the next element.
	b := testenv.Hex(t, "84 a7 76657273696f6e 01 a6 73657269616c 01 a4 6c697374 92 a7 312e322e332e34 c1 a2 7473 01")
	_, err := DecodeList(b, DecodeOptions{})
	fieldErr(t, "invalid byte in list", err, TopicList, "list", msgpack.ErrInvalidCode)
	b = testenv.Hex(t, "84 a7 76657273696f6e 01 a6 73657269616c 01 a4 6c697374 dd ffffffff a2 7473 01")
	_, err = DecodeList(b, DecodeOptions{})
	fieldErr(t, "hostile list count", err, TopicList, "list", msgpack.ErrShortBuffer)
}

func TestDecodeEvent(t *testing.T) {
	want := Event{Name: "ftp_login", Addr: netip.MustParseAddr("2001:db8::5"), TS: 1700000000}
	for _, c := range []struct {
		name    string
		payload []byte
	}{
		{"canonical", want.Marshal()},
		{"reordered with extras", pack(t, msgpack.Map{{Key: "ip", Value: "2001:db8::5"}, {Key: "geo", Value: "CZ"}, {Key: "ts", Value: int64(1700000000)}, {Key: "event", Value: []byte("ftp_login")}})},
	} {
		got, err := DecodeEvent(c.payload, DecodeOptions{})
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v", c.name, got, err)
		}
	}
	ev := func(name, ip, ts any) msgpack.Map {
		return msgpack.Map{{Key: "event", Value: name}, {Key: "ip", Value: ip}, {Key: "ts", Value: ts}}
	}
	for _, c := range []struct {
		name   string
		m      msgpack.Map
		field  string
		target error
	}{
		{"missing event", ev("x", "1.2.3.4", 1)[1:], "event", ErrMissing},
		{"event is an int", ev(5, "1.2.3.4", 1), "event", msgpack.ErrType},
		{"ts is a string", ev("x", "1.2.3.4", "1"), "ts", msgpack.ErrType},
		{"missing ip", append(ev("x", "1.2.3.4", 1)[:1:1], ev("x", "", 1)[2]), "ip", ErrMissing},
	} {
		e, err := DecodeEvent(pack(t, c.m), DecodeOptions{})
		fieldErr(t, c.name, err, TopicEvent, c.field, c.target)
		if e != (Event{}) {
			t.Errorf("%s: fatal error came with %+v", c.name, e)
		}
	}
	// A prefix is an address error for an event whatever the options say.
	for _, opt := range []DecodeOptions{{}, {AllowPrefix: true}} {
		e, err := DecodeEvent(pack(t, ev("http_login", "10.0.0.0/8", 5)), opt)
		var ae *AddrError
		if !errors.As(err, &ae) || !errors.Is(err, ErrPrefixNotAllowed) || e != (Event{Name: "http_login", TS: 5}) {
			t.Errorf("event with prefix (%+v): %+v, %v", opt, e, err)
		}
	}
	e, err := DecodeEvent(pack(t, ev("x", "1.2.3.4/32", 5)), DecodeOptions{})
	if err != nil || e.Addr != netip.MustParseAddr("1.2.3.4") {
		t.Errorf("event with /32: %+v, %v", e, err)
	}
}

func TestDecodeDispatch(t *testing.T) {
	l := List{Version: 1, Addrs: []netip.Prefix{pfx("1.2.3.4")}}
	d := Delta{Serial: 9, Op: Negative, Addr: pfx("1.2.3.4"), TS: 1}
	e := Event{Name: "x", Addr: netip.MustParseAddr("1.2.3.4"), TS: 1}
	for _, want := range []Message{&l, &d, &e} {
		got, err := Decode(want.Topic(), want.AppendMsgpack(nil), DecodeOptions{})
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %#v, %v", want.Topic(), got, err)
		}
	}
	m, err := Decode("dynfw/other", l.Marshal(), DecodeOptions{})
	var ut *UnknownTopicError
	if !errors.As(err, &ut) || ut.Topic != "dynfw/other" || m != nil {
		t.Errorf("unknown topic: %v, %v", m, err)
	}
	if _, err := Decode(TopicDelta, l.Marshal(), DecodeOptions{}); err == nil {
		t.Error("a list decoded as a delta")
	}
	// A bad address still yields the message, with the error.
	m, err = Decode(TopicDelta, pack(t, deltaMap(9, "negative", "x", 1)), DecodeOptions{})
	var ae *AddrError
	if !errors.As(err, &ae) || m == nil || m.(*Delta).Serial != 9 {
		t.Errorf("delta with bad address: %v, %v", m, err)
	}
	m, err = Decode(TopicEvent, pack(t, msgpack.Map{{Key: "event", Value: "e"}, {Key: "ip", Value: 5}, {Key: "ts", Value: 1}}), DecodeOptions{})
	if !errors.As(err, &ae) || m == nil || m.(*Event).Name != "e" {
		t.Errorf("event with bad address: %v, %v", m, err)
	}
}

func TestOp(t *testing.T) {
	for op, want := range map[Op]string{Positive: "positive", Negative: "negative", 0: "Op(0)", 7: "Op(7)"} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q, want %q", op, got, want)
		}
	}
	// An invalid Op is encoded so that decoders reject it.
	_, err := DecodeDelta(Delta{Serial: 1, Addr: pfx("1.2.3.4")}.Marshal(), DecodeOptions{})
	if !errors.Is(err, ErrInvalidOp) {
		t.Errorf("delta with zero Op: %v", err)
	}
	_, err = DecodeDelta(Delta{Serial: 1, Op: Positive}.Marshal(), DecodeOptions{})
	if !errors.Is(err, ErrInvalidAddr) {
		t.Errorf("delta with zero Addr: %v", err)
	}
}

func TestListRoundTripKeepsEveryAddress(t *testing.T) {
	var addrs []netip.Prefix
	for i := range 70000 { // more than array16 holds
		addrs = append(addrs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32))
	}
	addrs = append(addrs, pfx("2001:db8::1"), pfx("::"))
	in := List{Version: math.MaxUint64, Serial: 1<<32 + 5, Addrs: addrs, TS: math.MaxUint32}
	b := in.Marshal()
	if b[len("\x84\xa7version\xcf")+8+len("\xa6serial\xcf")+8+len("\xa4list")] != 0xdd {
		t.Errorf("list of %d addresses not encoded as array32", len(addrs))
	}
	out, err := DecodeList(b, DecodeOptions{})
	if err != nil || !reflect.DeepEqual(out, in) {
		t.Errorf("round trip: %d addresses, %v", len(out.Addrs), err)
	}
}

func TestDecodeListFuncMatchesDecodeList(t *testing.T) {
	l := List{Version: 5, Serial: 9, TS: 7}
	for _, s := range []string{"1.2.3.4", "2001:db8::1", "10.0.0.0/8", "::ffff:5.6.7.8"} {
		p, err := ParseAddr(s, true)
		if err != nil {
			t.Fatal(err)
		}
		l.Addrs = append(l.Addrs, p)
	}
	payload := l.Marshal()
	for _, allow := range []bool{false, true} {
		want, err := DecodeList(payload, DecodeOptions{AllowPrefix: allow})
		if err != nil {
			t.Fatal(err)
		}
		var got []netip.Prefix
		head, err := DecodeListFunc(payload, DecodeOptions{AllowPrefix: allow}, func(p netip.Prefix) { got = append(got, p) })
		if err != nil {
			t.Fatal(err)
		}
		if head.Addrs != nil || head.Version != 5 || head.Serial != 9 || head.TS != 7 || head.SkippedCount != want.SkippedCount {
			t.Fatalf("header %+v, want %+v without Addrs", head, want)
		}
		if !slices.Equal(got, want.Addrs) {
			t.Fatalf("allow=%v: got %v, want %v", allow, got, want.Addrs)
		}
	}
	if _, err := DecodeListFunc(payload[:len(payload)-3], DecodeOptions{}, nil); err == nil {
		t.Fatal("truncated payload accepted")
	}
}
