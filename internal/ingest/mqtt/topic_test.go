package mqtt

import (
	"errors"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/devicetoken"
)

// The device token test vectors of sentinel-formats.md §3.5.
const (
	zeroToken = "00000000000000000000000000000000000000000000000000000000807077e9"
	seqToken  = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c582a244c"
	serial    = "0000000D300012AB"
)

// testToken returns a valid token that differs for every i.
func testToken(i int) string {
	var b [devicetoken.RandomLen]byte
	b[0], b[1], b[2], b[27] = byte(i), byte(i>>8), byte(i>>16), 0xa5
	return devicetoken.FromBytes(b)
}

func TestParseTopic(t *testing.T) {
	upper := strings.ToUpper(seqToken)
	badCRC := seqToken[:63] + "d"
	for _, c := range []struct {
		name   string
		root   string
		topic  string
		want   Topic
		reason DropReason // "" for success
		err    error
	}{
		{name: "data", topic: "sentinel/collect/" + serial + "/" + seqToken + "/minipot",
			want: Topic{Serial: serial, Token: seqToken, Suffix: "minipot"}},
		{name: "suffix with segments", topic: "sentinel/collect/" + serial + "/" + zeroToken + "/minipot/telnet/x",
			want: Topic{Serial: serial, Token: zeroToken, Suffix: "minipot/telnet/x"}},
		{name: "suffix with an empty segment", topic: "sentinel/collect/" + serial + "/" + zeroToken + "//x",
			want: Topic{Serial: serial, Token: zeroToken, Suffix: "/x"}},
		{name: "status", topic: "sentinel/collect/" + serial + "/" + seqToken + "/status",
			want: Topic{Serial: serial, Token: seqToken, Suffix: "status", Status: true}},
		{name: "below status is data", topic: "sentinel/collect/" + serial + "/" + seqToken + "/status/x",
			want: Topic{Serial: serial, Token: seqToken, Suffix: "status/x"}},
		{name: "legacy", topic: "sentinel/collect/" + serial + "/fwlogs",
			want: Topic{Serial: serial, Suffix: "fwlogs"}},
		{name: "legacy with segments", topic: "sentinel/collect/" + serial + "/minipot/ftp",
			want: Topic{Serial: serial, Suffix: "minipot/ftp"}},
		{name: "legacy status is data", topic: "sentinel/collect/" + serial + "/status",
			want: Topic{Serial: serial, Suffix: "status"}},
		{name: "31 hex characters are a legacy suffix", topic: "sentinel/collect/" + serial + "/" + seqToken[:31] + "/x",
			want: Topic{Serial: serial, Suffix: seqToken[:31] + "/x"}},
		{name: "custom root", root: "bridge/eu/sentinel/collect", topic: "bridge/eu/sentinel/collect/a.b_c-E/" + seqToken + "/survey",
			want: Topic{Serial: "a.b_c-E", Token: seqToken, Suffix: "survey"}},
		{name: "64-character serial", topic: "sentinel/collect/" + strings.Repeat("A", 64) + "/faillogs",
			want: Topic{Serial: strings.Repeat("A", 64), Suffix: "faillogs"}},

		{name: "other root", topic: "other/collect/" + serial + "/minipot", reason: DropBadTopic, err: ErrOutsideRoot},
		{name: "root as a prefix of a word", topic: "sentinel/collector/" + serial + "/minipot", reason: DropBadTopic, err: ErrOutsideRoot},
		{name: "root alone", topic: "sentinel/collect", reason: DropBadTopic, err: ErrOutsideRoot},
		{name: "ZMQ topic of a probe", topic: "sentinel/collect/minipot", reason: DropBadTopic, err: ErrNoSuffix,
			want: Topic{Serial: "minipot"}},
		{name: "no suffix", topic: "sentinel/collect/" + serial + "/", reason: DropBadTopic, err: ErrNoSuffix,
			want: Topic{Serial: serial}},
		{name: "token without suffix", topic: "sentinel/collect/" + serial + "/" + seqToken, reason: DropBadTopic, err: ErrNoSuffix,
			want: Topic{Serial: serial, Token: seqToken}},
		{name: "token with empty suffix", topic: "sentinel/collect/" + serial + "/" + seqToken + "/", reason: DropBadTopic, err: ErrNoSuffix,
			want: Topic{Serial: serial, Token: seqToken}},
		{name: "empty serial", topic: "sentinel/collect//" + seqToken + "/minipot", reason: DropBadSerial, err: ErrSerial},
		{name: "65-character serial", topic: "sentinel/collect/" + strings.Repeat("A", 65) + "/minipot", reason: DropBadSerial, err: ErrSerial,
			want: Topic{Serial: strings.Repeat("A", 65)}},
		{name: "space in serial", topic: "sentinel/collect/00 11/minipot", reason: DropBadSerial, err: ErrSerial,
			want: Topic{Serial: "00 11"}},
		{name: "non-ASCII serial", topic: "sentinel/collect/sériál/minipot", reason: DropBadSerial, err: ErrSerial,
			want: Topic{Serial: "sériál"}},
		{name: "colon in serial", topic: "sentinel/collect/a:b/minipot", reason: DropBadSerial, err: ErrSerial,
			want: Topic{Serial: "a:b"}},
		{name: "dollar in serial", topic: "sentinel/collect/$SYS/minipot", reason: DropBadSerial, err: ErrSerial,
			want: Topic{Serial: "$SYS"}},
		{name: "bad CRC", topic: "sentinel/collect/" + serial + "/" + badCRC + "/minipot", reason: DropBadToken, err: devicetoken.ErrCRC,
			want: Topic{Serial: serial, Token: badCRC, Suffix: "minipot"}},
		{name: "upper-case token", topic: "sentinel/collect/" + serial + "/" + upper + "/minipot", reason: DropBadToken, err: devicetoken.ErrNotHex,
			want: Topic{Serial: serial, Token: upper, Suffix: "minipot"}},
		{name: "upper-case CRC part", topic: "sentinel/collect/" + serial + "/" + zeroToken[:56] + "807077E9/minipot", reason: DropBadToken, err: devicetoken.ErrCRCNotLowercase,
			want: Topic{Serial: serial, Token: zeroToken[:56] + "807077E9", Suffix: "minipot"}},
		{name: "63-character token", topic: "sentinel/collect/" + serial + "/" + seqToken[:63] + "/minipot", reason: DropBadToken, err: devicetoken.ErrLength,
			want: Topic{Serial: serial, Token: seqToken[:63], Suffix: "minipot"}},
		{name: "65-character token", topic: "sentinel/collect/" + serial + "/" + seqToken + "0/minipot", reason: DropBadToken, err: devicetoken.ErrLength,
			want: Topic{Serial: serial, Token: seqToken + "0", Suffix: "minipot"}},
		{name: "32-character token", topic: "sentinel/collect/" + serial + "/" + seqToken[:32] + "/minipot", reason: DropBadToken, err: devicetoken.ErrLength,
			want: Topic{Serial: serial, Token: seqToken[:32], Suffix: "minipot"}},
		{name: "empty token", topic: "sentinel/collect/" + serial + "//minipot", reason: DropBadToken, err: devicetoken.ErrEmpty,
			want: Topic{Serial: serial, Suffix: "minipot"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseTopic(c.root, c.topic)
			if got != c.want {
				t.Errorf("ParseTopic = %+v, want %+v", got, c.want)
			}
			if c.reason == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			var de *DropError
			if !errors.As(err, &de) || de.Reason != c.reason || !errors.Is(err, c.err) {
				t.Fatalf("error %v, want %s wrapping %v", err, c.reason, c.err)
			}
			if got.Token != "" && strings.Contains(err.Error(), got.Token) {
				t.Errorf("error text %q contains the token", err)
			}
		})
	}
}

func TestTopicBuilders(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{DataTopic("", serial, seqToken, "minipot"), "sentinel/collect/" + serial + "/" + seqToken + "/minipot"},
		{DataTopic("x/y", serial, seqToken, "a/b"), "x/y/" + serial + "/" + seqToken + "/a/b"},
		{StatusTopic("", serial, seqToken), "sentinel/collect/" + serial + "/" + seqToken + "/status"},
		{LegacyTopic("", serial, "fwlogs"), "sentinel/collect/" + serial + "/fwlogs"},
	} {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
	tp, err := ParseTopic("", StatusTopic("", serial, seqToken))
	if err != nil || !tp.Status || tp.Legacy() {
		t.Errorf("status topic parsed as %+v, %v", tp, err)
	}
	tp, err = ParseTopic("", LegacyTopic("", serial, "fwlogs"))
	if err != nil || !tp.Legacy() {
		t.Errorf("legacy topic parsed as %+v, %v", tp, err)
	}
}

func BenchmarkParseTopic(b *testing.B) {
	topic := DataTopic("", serial, seqToken, "minipot")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTopic("", topic); err != nil {
			b.Fatal(err)
		}
	}
}
