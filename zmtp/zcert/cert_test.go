package zcert

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

const dynfwPubSHA256 = "586f7f237468ef75ff55a18f7747159528cf8d1710a2d842a8ad50b99c2cbc5a"

// TestDynfwPub reads the Turris server's public certificate, copied into
// testdata with its SHA-256, so a user's clone checks it too.
func TestDynfwPub(t *testing.T) {
	for _, path := range []string{"testdata/dynfw.pub"} {
		t.Run(path, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			if got := hex.EncodeToString(sum[:]); got != dynfwPubSHA256 {
				t.Fatalf("SHA-256 of %s = %s, want %s", path, got, dynfwPubSHA256)
			}
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(c.Public[:]); got != dynfwKeyHex {
				t.Errorf("public key = %s, want %s", got, dynfwKeyHex)
			}
			if c.Secret != nil {
				t.Error("public certificate parsed with a secret key")
			}
			if len(c.Metadata) != 0 {
				t.Errorf("metadata = %v, want none", c.Metadata)
			}
		})
	}
}

var exampleTime = time.Date(2026, 11, 22, 2, 40, 38, 356900000, time.UTC)

const examplePublicFile = `#   ****  Generated on 2026-11-22 02:40:38.356900 by dynfw-sentinel  ****
#   ZeroMQ CURVE Public Certificate
#   Exchange securely, or use a secure mechanism to verify the contents
#   of this file after exchange. Store public certificates in your home
#   directory, in the .curve subdirectory.

metadata
curve
    public-key = ".8r3!@f3?0RCqFr?K:rNE0p8:>F1oi@qNVMa%XKJ"
`

const exampleSecretFile = `#   ****  Generated on 2026-11-22 02:40:38.356900 by dynfw-sentinel  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

metadata
curve
    public-key = ".8r3!@f3?0RCqFr?K:rNE0p8:>F1oi@qNVMa%XKJ"
    secret-key = "&GHI^dzotgmi/)S7wB?Ju=(f^jsXWD(MD:CL}v#F"
`

func exampleCert(t testing.TB) *Cert {
	secret := mustKey(t, exampleSecretZ85)
	return &Cert{Public: mustKey(t, examplePublicZ85), Secret: &secret, Generated: exampleTime}
}

func TestMarshalLayout(t *testing.T) {
	c := exampleCert(t)
	if got := string(c.MarshalPublic()); got != examplePublicFile {
		t.Errorf("MarshalPublic:\n%s\nwant:\n%s", got, examplePublicFile)
	}
	if got := string(c.MarshalSecret()); got != exampleSecretFile {
		t.Errorf("MarshalSecret:\n%s\nwant:\n%s", got, exampleSecretFile)
	}

	c.Metadata = []Property{{"User-Id", "alice"}, {"note", `say "hi"`}}
	want := strings.Replace(examplePublicFile, "metadata\n",
		"metadata\n    User-Id = \"alice\"\n    note = 'say \"hi\"'\n", 1)
	if got := string(c.MarshalPublic()); got != want {
		t.Errorf("MarshalPublic with metadata:\n%s\nwant:\n%s", got, want)
	}

	c.Secret = nil
	if got := c.MarshalSecret(); got != nil {
		t.Errorf("MarshalSecret without secret = %q, want nil", got)
	}
}

func TestPythonTime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{exampleTime, "2026-11-22 02:40:38.356900"},
		// str(datetime) drops the fraction when it is zero.
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02 03:04:05"},
		// Sub-microsecond digits are truncated, as Python never has them.
		{time.Date(2026, 1, 2, 3, 4, 5, 999, time.UTC), "2026-01-02 03:04:05"},
		{time.Date(2026, 1, 2, 3, 4, 5, 1999, time.UTC), "2026-01-02 03:04:05.000001"},
	}
	for _, tt := range tests {
		if got := pythonTime(tt.t); got != tt.want {
			t.Errorf("pythonTime(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestMarshalDefaultsToNow(t *testing.T) {
	c := exampleCert(t)
	c.Generated = time.Time{}
	before := time.Now().Add(-time.Second)
	first, _, _ := strings.Cut(string(c.MarshalPublic()), "\n")
	s := strings.TrimSuffix(strings.TrimPrefix(first, "#   ****  Generated on "), " by dynfw-sentinel  ****")
	got, err := time.ParseInLocation("2006-01-02 15:04:05.999999", s, time.Local)
	if err != nil {
		t.Fatalf("banner %q: %v", first, err)
	}
	if got.Before(before) || got.After(time.Now().Add(time.Second)) {
		t.Errorf("banner time %v is not now", got)
	}
}

func TestParseVariants(t *testing.T) {
	pub := mustKey(t, examplePublicZ85)
	sec := mustKey(t, exampleSecretZ85)
	tests := []struct {
		name      string
		in        string
		secret    bool
		metadata  []Property
		wantMatch bool
	}{
		{name: "pyzmq public", in: examplePublicFile},
		{name: "pyzmq secret", in: exampleSecretFile, secret: true},
		{name: "CRLF", in: strings.ReplaceAll(exampleSecretFile, "\n", "\r\n"), secret: true},
		{name: "BOM", in: "\uFEFF" + exampleSecretFile, secret: true},
		{name: "no final newline", in: strings.TrimSuffix(exampleSecretFile, "\n"), secret: true},
		{name: "tabs", in: "curve\n\tpublic-key\t=\t\"" + examplePublicZ85 + "\"\t\n"},
		{name: "no spaces", in: "curve\n public-key=\"" + examplePublicZ85 + "\"\n"},
		{name: "no quotes", in: "curve\n    public-key = " + examplePublicZ85 + "\n    secret-key = " + exampleSecretZ85 + "\n", secret: true},
		{name: "single quotes", in: "curve\n    public-key = '" + examplePublicZ85 + "'\n"},
		{name: "comment after quoted value", in: "curve # keys\n    public-key = \"" + examplePublicZ85 + "\" # the server\n"},
		{name: "indented comments and blank lines", in: "  # hi\n\n\t\ncurve\n    # public-key = \"nonsense\"\n\n    public-key = \"" + examplePublicZ85 + "\"\n"},
		{name: "unknown sections and properties", in: "other\n    public-key = \"nonsense\"\n    deeper\n        x = 1\nroot = 1\ncurve\n    colour = blue\n    public-key = \"" + examplePublicZ85 + "\"\nextra\n    secret-key = \"junk\"\n"},
		{name: "sections in any order", in: "curve\n    public-key = \"" + examplePublicZ85 + "\"\nmetadata\n    a = \"1\"\n", metadata: []Property{{"a", "1"}}},
		{name: "czmq null secret", in: "curve\n    public-key = \"" + examplePublicZ85 + "\"\n    secret-key = \"0000000000000000000000000000000000000000\"\n"},
		{
			name: "metadata forms",
			in: "metadata\n" +
				"    User-Id = \"alice\"\n" +
				"    pyzmq = written without quotes\n" +
				"    eq = a=b = c\n" +
				"\tempty =\n" +
				"    quoted-empty = \"\"\n" +
				"    spaces = \"  kept  \"\n" +
				"    hash = \"#not a comment\"\n" +
				"    apostrophe = it's\n" +
				"    plural = the students'\n" +
				"    dq = 'say \"hi\"'\n" +
				"curve\n    public-key = \"" + examplePublicZ85 + "\"\n",
			metadata: []Property{
				{"User-Id", "alice"}, {"pyzmq", "written without quotes"}, {"eq", "a=b = c"},
				{"empty", ""}, {"quoted-empty", ""}, {"spaces", "  kept  "},
				{"hash", "#not a comment"}, {"apostrophe", "it's"}, {"plural", "the students'"}, {"dq", `say "hi"`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.Public != pub {
				t.Errorf("public = %s, want %s", c.Public, pub)
			}
			switch {
			case tt.secret && c.Secret == nil:
				t.Error("secret key missing")
			case tt.secret && *c.Secret != sec:
				t.Errorf("secret = %s, want %s", *c.Secret, sec)
			case !tt.secret && c.Secret != nil:
				t.Errorf("unexpected secret key %s", *c.Secret)
			}
			if !reflect.DeepEqual(c.Metadata, tt.metadata) {
				t.Errorf("metadata = %q, want %q", c.Metadata, tt.metadata)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			// Whatever we accept must survive our own writer.
			again, err := Parse(c.MarshalPublic())
			if err != nil {
				t.Fatalf("re-parse: %v", err)
			}
			if again.Public != c.Public || !reflect.DeepEqual(again.Metadata, c.Metadata) {
				t.Errorf("re-parse gave %+v, want %+v", again, c)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	pubLine := "    public-key = \"" + examplePublicZ85 + "\"\n"
	// Secret key of RFC 7748's Bob, which does not match the example public key.
	otherSecret := Key(mustHexKey(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
	tests := []struct {
		name string
		in   string
		line int
		is   error  // sentinel the error must wrap, if any
		msg  string // text the message must contain
	}{
		{name: "empty", in: "", is: ErrNoPublicKey},
		{name: "key under metadata", in: "metadata\n" + pubLine, line: 2, is: ErrInvalidMetadata, msg: "reserved"},
		{name: "missing public key", in: "metadata\ncurve\n    secret-key = \"" + exampleSecretZ85 + "\"\n", is: ErrNoPublicKey},
		{name: "key in unknown section only", in: "keys\n" + pubLine, is: ErrNoPublicKey},
		{name: "bad Z85 character", in: "curve\n    public-key = \"" + examplePublicZ85[:39] + "~\"\n", line: 2, is: ErrInvalidZ85, msg: "'~' at offset 39"},
		{name: "short key", in: "curve\n    public-key = \"" + examplePublicZ85[:35] + "\"\n", line: 2, is: ErrInvalidZ85, msg: "got 35"},
		{name: "long key", in: "curve\n    public-key = \"" + examplePublicZ85 + "00000\"\n", line: 2, is: ErrInvalidZ85},
		{name: "empty key", in: "curve\n    public-key =\n", line: 2, is: ErrInvalidZ85},
		{name: "overflowing key", in: "curve\n    public-key = \"%nSc1" + examplePublicZ85[5:] + "\"\n", line: 2, is: ErrInvalidZ85, msg: "exceeds 32 bits"},
		{name: "bad secret key", in: "curve\n" + pubLine + "    secret-key = \"" + exampleSecretZ85[:39] + "\"\n", line: 3, is: ErrInvalidZ85, msg: "secret-key"},
		{name: "mismatched secret", in: "curve\n" + pubLine + "\n    secret-key = \"" + otherSecret.String() + "\"\n", line: 4, is: ErrKeyMismatch},
		{name: "duplicate public key", in: "curve\n" + pubLine + pubLine, line: 3, msg: "more than once"},
		{name: "duplicate across sections", in: "curve\n" + pubLine + "curve\n" + pubLine, line: 4, msg: "more than once"},
		{name: "missing closing quote", in: "curve\n    public-key = \"" + examplePublicZ85 + "\n", line: 2, msg: "missing closing \""},
		{name: "missing opening quote", in: "curve\n    public-key = " + examplePublicZ85 + "\"\n", line: 2, msg: "missing opening \""},
		{name: "text after quote", in: "curve\n    public-key = \"" + examplePublicZ85 + "\" extra\n", line: 2, msg: "after the closing quote"},
		{name: "key at column 0", in: "curve\npublic-key = \"" + examplePublicZ85 + "\"\n", line: 2, msg: "must be indented"},
		{name: "key before any section", in: "\n" + pubLine, line: 2, msg: "before any section"},
		{name: "property without value", in: "curve\n    public-key\n", line: 2, msg: "expected name = value"},
		{name: "property without name", in: "curve\n    = \"x\"\n", line: 2, msg: "no name"},
		{name: "metadata bad name", in: "metadata\n    user id = x\ncurve\n" + pubLine, line: 2, is: ErrInvalidMetadata},
		{name: "metadata control char", in: "metadata\n    a = \"x\x01y\"\ncurve\n" + pubLine, line: 2, is: ErrInvalidMetadata},
		{name: "metadata both quotes", in: "metadata\n    a = x\"y'z\ncurve\n" + pubLine, line: 2, is: ErrInvalidMetadata},
		{name: "metadata reserved name", in: "metadata\n    secret-key-backup = x\ncurve\n" + pubLine, line: 2, is: ErrInvalidMetadata},
		{name: "metadata long name", in: "metadata\n    " + strings.Repeat("n", 256) + " = x\ncurve\n" + pubLine, line: 2, is: ErrInvalidMetadata},
		{name: "huge", in: strings.Repeat("#", MaxSize+1), is: ErrTooLarge},
		{name: "too many lines", in: "curve\n" + pubLine + strings.Repeat("\n", MaxLines), line: MaxLines + 1, is: ErrTooLarge},
		{name: "grows past MaxSize when written", in: "metadata\n" + strings.Repeat(" a=0123456789\n", 4000) + "curve\n" + pubLine, is: ErrTooLarge, msg: "written back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if pe.Line != tt.line {
				t.Errorf("error %q: line %d, want %d", err, pe.Line, tt.line)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
			if tt.line > 0 && !strings.Contains(err.Error(), "line ") {
				t.Errorf("error %q does not name the line", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	var zero Key
	tests := []struct {
		name   string
		modify func(*Cert)
		is     error
	}{
		{"valid", func(*Cert) {}, nil},
		{"public only", func(c *Cert) { c.Secret = nil }, nil},
		{"mismatch", func(c *Cert) { c.Public[0] ^= 1 }, ErrKeyMismatch},
		{"zero secret", func(c *Cert) { c.Secret = &zero }, ErrNoSecretKey},
		{"empty name", func(c *Cert) { c.Metadata = []Property{{"", "x"}} }, ErrInvalidMetadata},
		{"newline in value", func(c *Cert) { c.Metadata = []Property{{"a", "x\ncurve"}} }, ErrInvalidMetadata},
		{"space in name", func(c *Cert) { c.Metadata = []Property{{"a b", "x"}} }, ErrInvalidMetadata},
		{"reserved name", func(c *Cert) { c.Metadata = []Property{{"public-key", "x"}} }, ErrInvalidMetadata},
		{"too large", func(c *Cert) { c.Metadata = []Property{{"a", strings.Repeat("x", MaxSize)}} }, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := exampleCert(t)
			tt.modify(c)
			err := c.Validate()
			if tt.is == nil && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("Validate = %v, want %v", err, tt.is)
			}
		})
	}
}

func TestParseErrorFormat(t *testing.T) {
	tests := []struct {
		err  ParseError
		want string
	}{
		{ParseError{Err: ErrNoPublicKey}, "zcert: no public-key in the curve section"},
		{ParseError{Line: 3, Err: ErrKeyMismatch}, "zcert: line 3: secret-key does not match public-key"},
		{ParseError{Path: "a.key", Err: ErrNoPublicKey}, "zcert: a.key: no public-key in the curve section"},
		{ParseError{Path: "a.key", Line: 3, Err: ErrKeyMismatch}, "zcert: a.key:3: secret-key does not match public-key"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
