package zcert

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// Seeds live in testdata/fuzz/<FuzzName>/.

func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is %T, not *ParseError", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed certificate fails Validate: %v", err)
		}
		c.Generated = exampleTime

		pub, err := Parse(c.MarshalPublic())
		if err != nil {
			t.Fatalf("re-parsing MarshalPublic: %v\n%s", err, c.MarshalPublic())
		}
		if pub.Public != c.Public || pub.Secret != nil || !reflect.DeepEqual(pub.Metadata, c.Metadata) {
			t.Fatalf("public round trip: got %+v, want %+v", pub, c)
		}

		out := c.MarshalSecret()
		if c.Secret == nil {
			if out != nil {
				t.Fatal("MarshalSecret without a secret returned data")
			}
			return
		}
		sec, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parsing MarshalSecret: %v\n%s", err, out)
		}
		if sec.Public != c.Public || sec.Secret == nil || *sec.Secret != *c.Secret || !reflect.DeepEqual(sec.Metadata, c.Metadata) {
			t.Fatalf("secret round trip: got %+v, want %+v", sec, c)
		}
	})
}

func FuzzZ85(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		// As text: decoding must not panic, and whatever decodes must
		// re-encode to the same text (one spelling per value).
		if dec, err := DecodeZ85(string(data)); err == nil {
			enc, err := EncodeZ85(dec)
			if err != nil || enc != string(data) {
				t.Fatalf("DecodeZ85(%q) = %x, which encodes to %q (%v)", data, dec, enc, err)
			}
		} else if !errors.Is(err, ErrInvalidZ85) {
			t.Fatalf("DecodeZ85 error %v does not wrap ErrInvalidZ85", err)
		}
		if k, err := ParseKey(string(data)); err == nil && k.String() != string(data) {
			t.Fatalf("ParseKey(%q).String() = %q", data, k.String())
		}

		// As bytes: encoding whole groups must round-trip.
		src := data[:len(data)/4*4]
		enc, err := EncodeZ85(src)
		if err != nil {
			t.Fatalf("EncodeZ85 of %d bytes: %v", len(src), err)
		}
		if len(enc) != len(src)/4*5 {
			t.Fatalf("EncodeZ85 of %d bytes gave %d characters", len(src), len(enc))
		}
		dec, err := DecodeZ85(enc)
		if err != nil {
			t.Fatalf("DecodeZ85(EncodeZ85(%x)) = %v", src, err)
		}
		if !bytes.Equal(dec, src) {
			t.Fatalf("round trip of %x gave %x", src, dec)
		}
		if len(data)%4 != 0 {
			if _, err := EncodeZ85(data); err == nil {
				t.Fatalf("EncodeZ85 accepted %d bytes", len(data))
			}
		}
	})
}
