package mqtt

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/devicetoken"
)

// FuzzParseTopic checks ParseTopic on arbitrary topics: no panic; an
// accepted topic has a sane serial, a valid token or none, a suffix, and is
// rebuilt exactly by DataTopic or LegacyTopic; a rejected one gets a
// *DropError of a topic reason whose text does not contain the token.
// The seed corpus is in testdata/fuzz/FuzzParseTopic.
func FuzzParseTopic(f *testing.F) {
	f.Add(DataTopic("", serial, seqToken, "minipot"))
	f.Add(LegacyTopic("", serial, "fwlogs"))
	f.Fuzz(func(t *testing.T, topic string) {
		tp, err := ParseTopic("", topic)
		if err != nil {
			var de *DropError
			if !errors.As(err, &de) {
				t.Fatalf("%q: error %v is not a *DropError", topic, err)
			}
			switch de.Reason {
			case DropBadTopic, DropBadSerial, DropBadToken:
			default:
				t.Fatalf("%q: reason %s", topic, de.Reason)
			}
			if len(tp.Token) >= 16 && strings.Contains(err.Error(), tp.Token) {
				t.Fatalf("%q: error text %q contains the token", topic, err)
			}
			return
		}
		if !validSerial(tp.Serial) || tp.Suffix == "" {
			t.Fatalf("%q: accepted as %+v", topic, tp)
		}
		var rebuilt string
		if tp.Legacy() {
			first, _, _ := strings.Cut(tp.Suffix, "/")
			if first == "" || len(first) >= minTokenSegment || tp.Status {
				t.Fatalf("%q: legacy topic parsed as %+v", topic, tp)
			}
			rebuilt = LegacyTopic("", tp.Serial, tp.Suffix)
		} else {
			if err := devicetoken.Validate(tp.Token); err != nil {
				t.Fatalf("%q: accepted token fails validation: %v", topic, err)
			}
			if tp.Status != (tp.Suffix == StatusSuffix) {
				t.Fatalf("%q: Status %v for suffix %q", topic, tp.Status, tp.Suffix)
			}
			rebuilt = DataTopic("", tp.Serial, tp.Token, tp.Suffix)
		}
		if rebuilt != topic {
			t.Fatalf("%q parsed as %+v, which rebuilds as %q", topic, tp, rebuilt)
		}
	})
}

// FuzzDecodePayload checks the payload decisions on arbitrary bytes: no
// panic, nothing above the limit, a payload that is not zlib passed through
// untouched, and only known status actions accepted. The seed corpus is in
// testdata/fuzz/FuzzDecodePayload.
func FuzzDecodePayload(f *testing.F) {
	f.Add(minipotEvent("192.0.2.1"))
	f.Add(compress(f, minipotEvent("192.0.2.1"), 9))
	f.Add(zeroBomb(f, 10_000))
	const max = 4096
	received := time.Unix(1714564800, 0)
	f.Fuzz(func(t *testing.T, in []byte) {
		out, zl, err := decodePayload(in, max)
		if err != nil {
			var de *DropError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DropError", err)
			}
			if !zl && isZlib(in) && len(in) <= max && de.Reason != DropBadZlib && de.Reason != DropInflateLimit {
				t.Fatalf("zlib header, error %v", err)
			}
			return
		}
		if len(out) > max || len(out) == 0 {
			t.Fatalf("%d bytes out", len(out))
		}
		if zl != isZlib(in) {
			t.Fatalf("zlib %v for header % x", zl, in[:min(2, len(in))])
		}
		if !zl && (&out[0] != &in[0] || len(out) != len(in)) {
			t.Fatal("a plain payload was copied or changed")
		}
		if zl && len(in) > 0 && len(out) > 0 && &out[0] == &in[0] {
			t.Fatal("an inflated payload aliases its input")
		}
		st, err := parseStatus(out, received)
		if err != nil {
			return
		}
		switch st.Action {
		case StatusHeartbeat, StatusDisconnect, StatusLastWill:
		default:
			t.Fatalf("action %q accepted", st.Action)
		}
		if st.TimeAdded && !st.Time.Equal(received) {
			t.Fatalf("added time %v, received %v", st.Time, received)
		}
	})
}
