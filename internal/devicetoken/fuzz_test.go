package devicetoken

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// reference is an independent model of the C validator
// (device_token_verify in sentinel-proxy), kept close to its structure:
// check_base, then hex2bytes over the first 56 characters, then the CRC
// parsed with strtoul. It returns nil where the C code returns DT_OK.
func reference(s string) error {
	// check_base (with the Go reading of "" as an absent token).
	if s == "" {
		return ErrEmpty
	}
	if len(s) != Len {
		return ErrLength
	}
	// hex2bytes accepts lowercase only.
	raw, err := hex.DecodeString(s[:randomHexLen])
	if err != nil || strings.ToLower(s[:randomHexLen]) != s[:randomHexLen] {
		return ErrNotHex
	}
	var b [RandomLen]byte
	copy(b[:], raw)
	want := FromBytes(b)[randomHexLen:]
	if strtoul16(s[randomHexLen:]) != strtoul16(want) {
		return ErrCRC
	}
	return nil
}

// FuzzValidate checks Validate on arbitrary strings: it never panics, a token
// it accepts is canonical (FromBytes of its own bytes), and it agrees with a
// model of the reference validator: same error (by message) wherever the
// reference rejects, and ErrCRCNotLowercase exactly where the reference
// accepts a spelling Validate does not.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		zeroToken, seqToken, "", "0", zeroToken[:63], zeroToken + "0",
		replaceTail(zeroToken, "807077E9"), replaceTail(zeroToken, "807077e8"),
		replaceTail(zeroToken, "0x7077e9"), "g" + zeroToken[1:],
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := Validate(s)
		switch err {
		case nil, ErrEmpty, ErrLength, ErrNotHex, ErrCRC, ErrCRCNotLowercase:
		default:
			t.Fatalf("Validate(%q) = unexpected error %v", s, err)
		}
		if err == nil {
			raw, herr := hex.DecodeString(s[:randomHexLen])
			if herr != nil {
				t.Fatalf("accepted %q, not hex: %v", s, herr)
			}
			var b [RandomLen]byte
			copy(b[:], raw)
			if FromBytes(b) != s {
				t.Fatalf("accepted non-canonical %q", s)
			}
		}
		if strings.IndexByte(s, 0) >= 0 {
			return // the C code would stop at the NUL; see Validate
		}
		ref := reference(s)
		switch {
		case ref != nil && (err == nil || err.Error() != ref.Error()):
			t.Fatalf("%q: Validate = %v, reference = %v", s, err, ref)
		case ref == nil && err != nil && err != ErrCRCNotLowercase:
			t.Fatalf("%q: Validate = %v where the reference accepts", s, err)
		case err == ErrCRCNotLowercase && (ref != nil || !errors.Is(err, ErrNotHex)):
			t.Fatalf("%q: ErrCRCNotLowercase but reference = %v", s, ref)
		}
	})
}
