package testenv

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

//go:embed packb.py
var packbScript []byte

// Packb packs every case with the real msgpack-python (packb.py) and returns
// the bytes by case name. A case is any value that encodes to a JSON object
// with a "name" (no spaces) and the fields packb.py documents. Without a
// suitable python3 the test is skipped, or fails in strict mode.
func Packb[C any](t testing.TB, cases []C) map[string][]byte {
	t.Helper()
	py := Python(t)
	script := filepath.Join(t.TempDir(), "packb.py")
	if err := os.WriteFile(script, packbScript, 0o644); err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, c := range cases {
		if err := enc.Encode(c); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(py, script)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("packb.py: %v\n%s", err, stderr.Bytes())
	}
	got := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<26)
	for sc.Scan() {
		name, h, ok := strings.Cut(sc.Text(), " ")
		b, err := hex.DecodeString(h)
		if !ok || err != nil {
			t.Fatalf("bad packb.py output line %.80q", sc.Text())
		}
		got[name] = b
	}
	if len(got) != len(cases) {
		t.Fatalf("packb.py answered %d of %d cases (names must be unique and without spaces)", len(got), len(cases))
	}
	return got
}
