package zcert

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestZ85Vectors(t *testing.T) {
	tests := []struct {
		name, hex, z85 string
	}{
		{"empty", "", ""},
		{"RFC 32", "864fd26fb559f75b", "HelloWorld"},
		{"DynFW server key", "7bc5b0ca2766c35e707863fd1f0ab6800197d912288a1770211e32b5abcb7603", "D=rkicUyn5AcL)>9$2Db0HIELd2F*WaS-zDTikU*"},
		{"zero", "00000000", "00000"},
		{"largest group", "ffffffff", "%nSc0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := EncodeZ85(raw)
			if err != nil {
				t.Fatalf("EncodeZ85: %v", err)
			}
			if enc != tt.z85 {
				t.Errorf("EncodeZ85 = %q, want %q", enc, tt.z85)
			}
			dec, err := DecodeZ85(tt.z85)
			if err != nil {
				t.Fatalf("DecodeZ85: %v", err)
			}
			if !bytes.Equal(dec, raw) {
				t.Errorf("DecodeZ85 = %x, want %x", dec, raw)
			}
		})
	}
}

// Every character of the alphabet must decode to its own index, in every
// position of a group; a table typo would break exactly one of them.
func TestZ85Alphabet(t *testing.T) {
	if len(z85Alphabet) != 85 {
		t.Fatalf("alphabet has %d characters", len(z85Alphabet))
	}
	for i := 0; i < 85; i++ {
		for pos := 1; pos < 5; pos++ { // position 0 with large digits overflows
			group := []byte("00000")
			group[pos] = z85Alphabet[i]
			dec, err := DecodeZ85(string(group))
			if err != nil {
				t.Fatalf("DecodeZ85(%q): %v", group, err)
			}
			want := uint32(i)
			for p := pos; p < 4; p++ {
				want *= 85
			}
			got := uint32(dec[0])<<24 | uint32(dec[1])<<16 | uint32(dec[2])<<8 | uint32(dec[3])
			if got != want {
				t.Errorf("DecodeZ85(%q) = %d, want %d", group, got, want)
			}
		}
	}
}

func TestDecodeZ85Errors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"Hell", "multiple of 5"},
		{"HelloWorld!", "multiple of 5"},
		{"Hello World", "multiple of 5"},
		{"Hell World", "' ' at offset 4"},
		{"Hel\"o", "'\"' at offset 3"},
		{"Hello,orld", "',' at offset 5"},
		{"~~~~~", "'~' at offset 0"},
		{"\x00\x00\x00\x00\x00", "offset 0"},
		{"Hell\xff", "offset 4"},
		{"%nSc1", "exceeds 32 bits"},
		{"HelloWorld#####", "group \"#####\" at offset 10 exceeds 32 bits"},
	}
	for _, tt := range tests {
		_, err := DecodeZ85(tt.in)
		if err == nil {
			t.Errorf("DecodeZ85(%q) succeeded", tt.in)
			continue
		}
		if !errors.Is(err, ErrInvalidZ85) {
			t.Errorf("DecodeZ85(%q) error %v does not wrap ErrInvalidZ85", tt.in, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeZ85(%q) error %q does not mention %q", tt.in, err, tt.want)
		}
	}
}

func TestEncodeZ85Length(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 31, 33} {
		if _, err := EncodeZ85(make([]byte, n)); !errors.Is(err, ErrInvalidZ85) {
			t.Errorf("EncodeZ85 of %d bytes: err = %v, want ErrInvalidZ85", n, err)
		}
	}
}

func TestZ85RoundTripRandom(t *testing.T) {
	for n := 0; n <= 64; n += 4 {
		src := make([]byte, n)
		rand.Read(src)
		enc, err := EncodeZ85(src)
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) != n/4*5 {
			t.Fatalf("len(EncodeZ85(%d bytes)) = %d", n, len(enc))
		}
		dec, err := DecodeZ85(enc)
		if err != nil {
			t.Fatalf("DecodeZ85(%q): %v", enc, err)
		}
		if !bytes.Equal(dec, src) {
			t.Fatalf("round trip of %x gave %x", src, dec)
		}
	}
}
