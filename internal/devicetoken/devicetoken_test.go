package devicetoken

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// The test vectors of sentinel-formats.md §3.5.
const (
	zeroToken = "00000000000000000000000000000000000000000000000000000000807077e9"
	seqToken  = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c582a244c"
)

func seqBytes() [RandomLen]byte {
	var b [RandomLen]byte
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

func TestFromBytesVectors(t *testing.T) {
	if got := FromBytes([RandomLen]byte{}); got != zeroToken {
		t.Errorf("28 zero bytes: got %s, want %s", got, zeroToken)
	}
	if got := FromBytes(seqBytes()); got != seqToken {
		t.Errorf("bytes 01..1c: got %s, want %s", got, seqToken)
	}
}

func TestGenerate(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		tok, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(tok); err != nil {
			t.Fatalf("generated token %s does not validate: %v", tok, err)
		}
		if seen[tok] {
			t.Fatalf("token %s generated twice", tok)
		}
		seen[tok] = true
	}
}

// replaceTail returns tok with its last 8 characters replaced by tail.
func replaceTail(tok, tail string) string { return tok[:randomHexLen] + tail }

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		token string
		want  error
	}{
		{"zero vector", zeroToken, nil},
		{"sequence vector", seqToken, nil},
		{"empty", "", ErrEmpty},
		{"one character", "0", ErrLength},
		{"63 characters", zeroToken[:63], ErrLength},
		{"65 characters", zeroToken + "0", ErrLength},
		{"length checked before characters", strings.Repeat("Z", 63), ErrLength},
		{"upper case in the random part", strings.ToUpper(seqToken[:randomHexLen]) + seqToken[randomHexLen:], ErrNotHex},
		{"non-hex letter in the random part", "g" + zeroToken[1:], ErrNotHex},
		{"space in the random part", " " + zeroToken[1:], ErrNotHex},
		{"NUL in the random part", "\x00" + zeroToken[1:], ErrNotHex},
		{"characters checked before the CRC", "g" + zeroToken[1:63] + "0", ErrNotHex},
		{"wrong CRC", replaceTail(zeroToken, "807077e8"), ErrCRC},
		{"CRC of the other vector", replaceTail(zeroToken, "582a244c"), ErrCRC},
		{"flipped random bit", "1" + zeroToken[1:], ErrCRC},
		// The forms strtoul would accept for the right value.
		{"upper-case CRC", replaceTail(zeroToken, "807077E9"), ErrCRCNotLowercase},
		{"mixed-case CRC", replaceTail(seqToken, "582A244c"), ErrCRCNotLowercase},
		// The same shapes with a wrong value are plain CRC failures, as in
		// the reference.
		{"upper-case wrong CRC", replaceTail(zeroToken, "807077E8"), ErrCRC},
		{"non-hex CRC", replaceTail(zeroToken, "zzzzzzzz"), ErrCRC},
		{"CRC cut short by junk", replaceTail(zeroToken, "807077e "), ErrCRC},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Validate(c.token)
			if err != c.want {
				t.Fatalf("Validate = %v, want %v", err, c.want)
			}
		})
	}
}

func TestErrCRCNotLowercase(t *testing.T) {
	if !errors.Is(ErrCRCNotLowercase, ErrNotHex) {
		t.Error("ErrCRCNotLowercase does not wrap ErrNotHex")
	}
	if ErrCRCNotLowercase.Error() != ErrNotHex.Error() {
		t.Errorf("message %q, want the reference's %q", ErrCRCNotLowercase, ErrNotHex)
	}
}

// TestStrtoulQuirks pins down the CRC spellings that the reference validator
// accepts through strtoul and Validate does not. The CRC values are chosen so
// that the odd spelling still means the right number.
func TestStrtoulQuirks(t *testing.T) {
	for _, c := range []struct {
		name   string
		random [RandomLen]byte
		tail   func(crc uint32) string
	}{
		{"upper case", [RandomLen]byte{}, func(crc uint32) string { return fmt.Sprintf("%08X", crc) }},
		{"leading blanks", findRandom(t, func(crc uint32) bool { return crc < 1<<24 }), func(crc uint32) string { return fmt.Sprintf(" %7x", crc) }},
		{"plus sign", findRandom(t, func(crc uint32) bool { return crc < 1<<28 }), func(crc uint32) string { return fmt.Sprintf("+%07x", crc) }},
		{"0x prefix", findRandom(t, func(crc uint32) bool { return crc < 1<<24 }), func(crc uint32) string { return fmt.Sprintf("0x%06x", crc) }},
		{"trailing junk", findRandom(t, func(crc uint32) bool { return crc < 1<<24 }), func(crc uint32) string { return fmt.Sprintf("%07xz", crc) }},
		{"minus sign", findRandom(t, func(crc uint32) bool { return -crc < 1<<28 }), func(crc uint32) string { return fmt.Sprintf("-%07x", -crc) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			good := FromBytes(c.random)
			crc := strtoul16(good[randomHexLen:])
			tok := replaceTail(good, c.tail(crc))
			if len(tok) != Len {
				t.Fatalf("bad test: %q", tok)
			}
			if got := strtoul16(tok[randomHexLen:]); got != crc {
				t.Fatalf("strtoul16(%q) = %08x, want %08x", tok[randomHexLen:], got, crc)
			}
			if err := Validate(tok); err != ErrCRCNotLowercase {
				t.Fatalf("Validate(%q) = %v, want ErrCRCNotLowercase", tok, err)
			}
		})
	}
}

// findRandom returns the first counter-based random part whose CRC satisfies
// ok, so that the quirk tests have a CRC of the shape they need.
func findRandom(t *testing.T, ok func(uint32) bool) [RandomLen]byte {
	t.Helper()
	for i := range uint32(1 << 24) {
		var b [RandomLen]byte
		b[0], b[1], b[2], b[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		if ok(strtoul16(FromBytes(b)[randomHexLen:])) {
			return b
		}
	}
	t.Fatal("no random part found")
	return [RandomLen]byte{}
}

// TestStrtoulAgainstGlibc checks the strtoul model against the C library
// itself, through Python's ctypes (no third-party module needed).
func TestStrtoulAgainstGlibc(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		testenv.Skip(t, "needs python3 to call glibc's strtoul through ctypes")
	}
	inputs := []string{
		"807077e9", "807077E9", "ffffffff", "FFFFFFFF", "00000000",
		" 7077e9 ", "\t\n\v\f\r123", "+1234567", "-1234567", "-0000001",
		"--123456", "+-123456", "- 123456", "0x123456", "0X12345z",
		"0x", "      0x", "0xg12345", "-0x12345", " -0xffff", "zzzzzzzz",
		"1234567z", "12 34567", "", "x", "0", "-", "+0x", "00x12345",
	}
	var script strings.Builder
	script.WriteString("import ctypes, sys\nlibc = ctypes.CDLL(None)\nlibc.strtoul.restype = ctypes.c_ulong\nlibc.strtoul.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]\n")
	script.WriteString("for line in sys.stdin.buffer.read().split(b'\\0')[:-1]:\n    print(libc.strtoul(line, None, 16) & 0xffffffff)\n")
	cmd := exec.Command(python, "-c", script.String())
	cmd.Stdin = strings.NewReader(strings.Join(inputs, "\x00") + "\x00")
	out, err := cmd.Output()
	if err != nil {
		testenv.Skip(t, fmt.Sprintf("python3 with ctypes could not call strtoul: %v", err))
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(inputs) {
		t.Fatalf("got %d results for %d inputs: %q", len(lines), len(inputs), out)
	}
	for i, in := range inputs {
		var want uint32
		if _, err := fmt.Sscan(lines[i], &want); err != nil {
			t.Fatal(err)
		}
		if got := strtoul16(in); got != want {
			t.Errorf("strtoul16(%q) = %#x, glibc says %#x", in, got, want)
		}
	}
}

func TestFingerprint(t *testing.T) {
	fp := Fingerprint(seqToken)
	if len(fp) != 14 || !strings.HasPrefix(fp, "t:") {
		t.Fatalf("Fingerprint = %q", fp)
	}
	if strings.Contains(seqToken, fp[2:]) {
		t.Errorf("fingerprint %q is a piece of the token", fp)
	}
	if fp == Fingerprint(zeroToken) {
		t.Error("two tokens share a fingerprint")
	}
	// printf %s 0102…244c | sha256sum | cut -c1-12
	if want := "t:e103e642aa23"; fp != want {
		t.Errorf("Fingerprint = %s, want %s", fp, want)
	}
}

func BenchmarkValidate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(seqToken); err != nil {
			b.Fatal(err)
		}
	}
}
