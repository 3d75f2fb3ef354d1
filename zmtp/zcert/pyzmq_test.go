package zcert

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// These tests check interoperability against pyzmq (and through it libzmq),
// the implementation that wrote the certificates deployed today.

// runPython runs script with args and returns its output lines.
func runPython(t *testing.T, script string, args ...string) []string {
	t.Helper()
	py := testenv.Python(t)
	cmd := exec.CommandContext(t.Context(), py, append([]string{"-c", script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// Print both keys as pyzmq's load_certificate reads them, one file per line.
const pyLoadCertificates = `
import sys, zmq.auth
for f in sys.argv[1:]:
    p, s = zmq.auth.load_certificate(f)
    print(p.decode(), s.decode() if s else "-")
`

func TestPyzmqCertificatesLoadHere(t *testing.T) {
	dir := t.TempDir()
	lines := runPython(t, `
import sys, zmq.auth
pub, sec = zmq.auth.create_certificates(sys.argv[1], "x", metadata={"User-Id": "alice", "note": "a = b"})
for f in (pub, sec):
    p, s = zmq.auth.load_certificate(f)
    print(p.decode(), s.decode() if s else "-")
`, dir)
	if len(lines) != 2 {
		t.Fatalf("python printed %q", lines)
	}
	pyPublic, pyNone, _ := strings.Cut(lines[0], " ")
	pyPublic2, pySecret, _ := strings.Cut(lines[1], " ")
	if pyNone != "-" || pyPublic2 != pyPublic {
		t.Fatalf("unexpected python output %q", lines)
	}

	pub, err := Load(filepath.Join(dir, "x.key"))
	if err != nil {
		t.Fatalf("loading pyzmq public certificate: %v", err)
	}
	if pub.Public.String() != pyPublic || pub.Secret != nil {
		t.Errorf("public certificate: got %s (secret %v), pyzmq read %s", pub.Public, pub.Secret != nil, pyPublic)
	}
	// Load also checks that the pair is consistent, which pyzmq does not.
	sec, err := Load(filepath.Join(dir, "x.key_secret"))
	if err != nil {
		t.Fatalf("loading pyzmq secret certificate: %v", err)
	}
	if sec.Public.String() != pyPublic || sec.Secret == nil || sec.Secret.String() != pySecret {
		t.Errorf("secret certificate: got %s, pyzmq read %s %s", sec.Public, pyPublic, pySecret)
	}
	// pyzmq writes metadata unquoted, and only into the secret file.
	want := []Property{{"User-Id", "alice"}, {"note", "a = b"}}
	if !reflect.DeepEqual(sec.Metadata, want) {
		t.Errorf("metadata = %q, want %q", sec.Metadata, want)
	}
}

func TestOurCertificatesLoadInPyzmq(t *testing.T) {
	dir := t.TempDir()
	fresh, err := New()
	if err != nil {
		t.Fatal(err)
	}
	fresh.Metadata = []Property{{"User-Id", "dynfw"}, {"x", `"quoted" = yes`}}
	var files []string
	var want []string
	// The example pair has '=' inside the secret key, which is what trips
	// parsers that split at the last '='.
	for i, c := range []*Cert{fresh, exampleCert(t)} {
		base := filepath.Join(dir, string(rune('a'+i)))
		if err := c.SaveSecret(base + SecretSuffix); err != nil {
			t.Fatal(err)
		}
		if err := c.SavePublic(base + PublicSuffix); err != nil {
			t.Fatal(err)
		}
		files = append(files, base+SecretSuffix, base+PublicSuffix)
		want = append(want, c.Public.String()+" "+c.Secret.String(), c.Public.String()+" -")
	}
	got := runPython(t, pyLoadCertificates, files...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pyzmq read %q, want %q", got, want)
	}
}

func TestKeyPairsAgreeWithLibzmq(t *testing.T) {
	const n = 16
	var secrets, want []string
	for range n {
		pub, sec, err := GenerateKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, sec.String())
		want = append(want, pub.String())
	}
	got := runPython(t, `
import sys, zmq
for s in sys.argv[1:]:
    print(zmq.curve_public(s.encode()).decode())
`, secrets...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("zmq.curve_public gave %q, want %q", got, want)
	}

	// And the other way: pairs libzmq generates satisfy PublicFromSecret.
	lines := runPython(t, `
import zmq
for _ in range(16):
    p, s = zmq.curve_keypair()
    print(p.decode(), s.decode())
`)
	for _, l := range lines {
		p, s, _ := strings.Cut(l, " ")
		if got := PublicFromSecret(mustKey(t, s)); got.String() != p {
			t.Errorf("PublicFromSecret(%s) = %s, libzmq says %s", s, got, p)
		}
	}
}

func TestZ85AgreesWithPyzmq(t *testing.T) {
	var inputs, want []string
	for n := 0; n <= 64; n += 4 {
		b := make([]byte, n)
		rand.Read(b)
		if n == 8 {
			b = []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0} // group extremes
		}
		enc, err := EncodeZ85(b)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, hex.EncodeToString(b))
		want = append(want, enc)
	}
	got := runPython(t, `
import sys
from zmq.utils import z85
for h in sys.argv[1:]:
    print(z85.encode(bytes.fromhex(h)).decode())
`, inputs...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pyzmq z85.encode gave %q, want %q", got, want)
	}
}
