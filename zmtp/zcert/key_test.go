package zcert

import (
	"encoding/hex"
	"errors"
	"testing"
)

const (
	dynfwKeyZ85 = "D=rkicUyn5AcL)>9$2Db0HIELd2F*WaS-zDTikU*"
	dynfwKeyHex = "7bc5b0ca2766c35e707863fd1f0ab6800197d912288a1770211e32b5abcb7603"

	// A pair written by pyzmq, from the task's example certificate.
	examplePublicZ85 = ".8r3!@f3?0RCqFr?K:rNE0p8:>F1oi@qNVMa%XKJ"
	exampleSecretZ85 = "&GHI^dzotgmi/)S7wB?Ju=(f^jsXWD(MD:CL}v#F"
)

func mustKey(t testing.TB, z85 string) Key {
	t.Helper()
	k, err := ParseKey(z85)
	if err != nil {
		t.Fatalf("ParseKey(%q): %v", z85, err)
	}
	return k
}

func mustHexKey(t testing.TB, s string) Key {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != KeySize {
		t.Fatalf("bad hex key %q", s)
	}
	return Key(b)
}

func TestParseKey(t *testing.T) {
	k := mustKey(t, dynfwKeyZ85)
	if got := hex.EncodeToString(k[:]); got != dynfwKeyHex {
		t.Errorf("ParseKey = %s, want %s", got, dynfwKeyHex)
	}
	if k.String() != dynfwKeyZ85 {
		t.Errorf("String() = %q, want %q", k.String(), dynfwKeyZ85)
	}
	// The transport takes [32]byte; this must stay a plain conversion.
	raw := [32]byte(k)
	if Key(raw) != k {
		t.Error("conversion through [32]byte changed the key")
	}
}

func TestParseKeyErrors(t *testing.T) {
	for _, in := range []string{
		"",
		dynfwKeyZ85[:35],
		dynfwKeyZ85 + "00000",
		`"` + dynfwKeyZ85 + `"`,
		" " + dynfwKeyZ85[1:],
		dynfwKeyZ85[:39] + "~",
		"%nSc1" + dynfwKeyZ85[5:],
	} {
		k, err := ParseKey(in)
		if !errors.Is(err, ErrInvalidZ85) {
			t.Errorf("ParseKey(%q) err = %v, want ErrInvalidZ85", in, err)
		}
		if !k.IsZero() {
			t.Errorf("ParseKey(%q) returned nonzero key with error", in)
		}
	}
}

// RFC 7748 section 6.1 gives Alice's key pair; this pins PublicFromSecret to
// the standard rather than to our own generator.
func TestPublicFromSecretRFC7748(t *testing.T) {
	secret := mustHexKey(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	want := mustHexKey(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	if got := PublicFromSecret(secret); got != want {
		t.Errorf("PublicFromSecret = %x, want %x", got, want)
	}
	if got := PublicFromSecret(mustKey(t, exampleSecretZ85)); got.String() != examplePublicZ85 {
		t.Errorf("PublicFromSecret(pyzmq secret) = %s, want %s", got, examplePublicZ85)
	}
}

func TestGenerateKeyPair(t *testing.T) {
	pub1, sec1, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	pub2, sec2, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if sec1.IsZero() || pub1.IsZero() {
		t.Fatal("generated a zero key")
	}
	if sec1 == sec2 || pub1 == pub2 {
		t.Fatal("two generated key pairs are equal")
	}
	if PublicFromSecret(sec1) != pub1 || PublicFromSecret(sec2) != pub2 {
		t.Fatal("generated public key does not belong to the secret")
	}
}
