package events

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStorable(t *testing.T) {
	euro := strings.Repeat("€", 341) // 1023 bytes
	for _, c := range []struct {
		name, in string
		limit    int
		want     string
	}{
		{"plain", "hunter2", MaxText, "hunter2"},
		{"empty", "", MaxText, ""},
		{"unicode", "heslo čeština 密码 🔑", MaxText, "heslo čeština 密码 🔑"},
		{"tab and newline stay", "a\tb\nc", MaxText, "a\tb\nc"},
		{"replacement character stays", "\uFFFD", MaxText, "\uFFFD"},
		{"NUL", "a\x00b", MaxText, `a\x00b`},
		{"controls", "\r\x1b[31m\x7f", MaxText, `\x0d\x1b[31m\x7f`},
		{"C1 control", "a\u009bb", MaxText, `a\xc2\x9bb`},
		{"invalid byte", "pw\xff", MaxText, `pw\xff`},
		{"truncated rune", "u\xc3", MaxText, `u\xc3`},
		{"surrogate", "\xed\xa0\x80", MaxText, `\xed\xa0\x80`},
		{"overlong", "\xc0\xaf", MaxText, `\xc0\xaf`},
		{"backslashes stay", `C:\Users\\x \xZZ \x4`, MaxText, `C:\Users\\x \xZZ \x4`},
		{"backslash before an escape", `\x41 \xfF`, MaxText, `\x5cx41 \x5cxfF`},
		{"backslash before NUL", "\\\x00", MaxText, `\\x00`},
		// The 1024-byte cut falls inside a rune: the rune goes.
		{"cut mid-character", euro + "€", MaxText, euro},
		{"cut before an escape", strings.Repeat("a", 1021) + "\x00", MaxText, strings.Repeat("a", 1021)},
		{"escape just fits", strings.Repeat("a", 1020) + "\x00", MaxText, strings.Repeat("a", 1020) + `\x00`},
		{"long clean", strings.Repeat("a", 5000), MaxText, strings.Repeat("a", 1024)},
		{"no limit", strings.Repeat("\x00", 300), 0, strings.Repeat(`\x00`, 300)},
	} {
		got := Storable(c.in, c.limit)
		if got != c.want {
			t.Errorf("%s: Storable(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
		if b := StorableBytes([]byte(c.in), c.limit); b != got {
			t.Errorf("%s: StorableBytes = %q, Storable = %q", c.name, b, got)
		}
		uncut := got == Storable(c.in, 0)
		if o := Original(got); !bytes.HasPrefix([]byte(c.in), o) || uncut && string(o) != c.in {
			t.Errorf("%s: Original(%q) = %q, not the start of %q", c.name, got, o, c.in)
		}
	}
}

// TestStorableAllocs: clean short strings, nearly all of them, are
// returned as they are.
func TestStorableAllocs(t *testing.T) {
	s := strings.Repeat("password", 8)
	if n := testing.AllocsPerRun(100, func() { _ = Storable(s, MaxText) }); n != 0 {
		t.Errorf("%v allocations for a clean string", n)
	}
}

// FuzzStorable checks the guarantees for any input: valid UTF-8 without
// NUL, at most limit bytes, a prefix of the uncut form, and reversible.
func FuzzStorable(f *testing.F) {
	for _, s := range []string{"", "root", "a\x00b", "\xff\xfe", `\x41`, "\\\x00", "€€€", "\u009b", "a\\"} {
		f.Add(s, 8)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = limit%64 + 1
		if limit <= 0 {
			limit += 64
		}
		full := Storable(s, 0)
		if !utf8.ValidString(full) || strings.ContainsRune(full, 0) {
			t.Fatalf("Storable(%q) = %q: not storable", s, full)
		}
		if o := Original(full); string(o) != s {
			t.Fatalf("Original(Storable(%q)) = %q", s, o)
		}
		cut := Storable(s, limit)
		if len(cut) > limit || !strings.HasPrefix(full, cut) || !utf8.ValidString(cut) {
			t.Fatalf("Storable(%q, %d) = %q, uncut %q", s, limit, cut, full)
		}
		if len(full) > limit && len(cut) < limit-2*utf8.UTFMax {
			t.Fatalf("Storable(%q, %d) = %q cut too soon", s, limit, cut)
		}
		if o := Original(cut); !strings.HasPrefix(s, string(o)) {
			t.Fatalf("Original(Storable(%q, %d)) = %q", s, limit, o)
		}
		if b := StorableBytes([]byte(s), limit); b != cut {
			t.Fatalf("StorableBytes(%q, %d) = %q, Storable %q", s, limit, b, cut)
		}
	})
}
