package zcert

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// assertMode fails unless path has exactly the permission bits want.
func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %v, want %v", filepath.Base(path), got, want)
	}
}

// assertNoTempFiles fails if writeFile left a temporary file in dir.
func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c := exampleCert(t)
	c.Metadata = []Property{{"User-Id", "dynfw"}, {"x", "a=b"}}
	sp, pp := filepath.Join(dir, "s.key_secret"), filepath.Join(dir, "s.key")
	if err := c.SaveSecret(sp); err != nil {
		t.Fatal(err)
	}
	if err := c.SavePublic(pp); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(exampleSecretFile, "metadata\n", "metadata\n    User-Id = \"dynfw\"\n    x = \"a=b\"\n", 1)
	if data, _ := os.ReadFile(sp); string(data) != want {
		t.Errorf("secret file:\n%s\nwant:\n%s", data, want)
	}

	s, err := Load(sp)
	if err != nil {
		t.Fatal(err)
	}
	if s.Public != c.Public || s.Secret == nil || *s.Secret != *c.Secret || !reflect.DeepEqual(s.Metadata, c.Metadata) {
		t.Errorf("loaded secret certificate %+v, want %+v", s, c)
	}
	p, err := Load(pp)
	if err != nil {
		t.Fatal(err)
	}
	if p.Public != c.Public || p.Secret != nil || !reflect.DeepEqual(p.Metadata, c.Metadata) {
		t.Errorf("loaded public certificate %+v", p)
	}
	data, _ := os.ReadFile(pp)
	if strings.Contains(string(data), exampleSecretZ85) || strings.Contains(string(data), "secret-key") {
		t.Error("public file contains the secret key")
	}
	assertMode(t, sp, 0o600)
	assertMode(t, pp, 0o644)
	assertNoTempFiles(t, dir)
}

func TestSaveRejectsInvalid(t *testing.T) {
	dir := t.TempDir()
	c := exampleCert(t)
	c.Secret = nil
	if err := c.SaveSecret(filepath.Join(dir, "a")); !errors.Is(err, ErrNoSecretKey) {
		t.Errorf("SaveSecret without secret: %v, want ErrNoSecretKey", err)
	}
	c = exampleCert(t)
	c.Public[0] ^= 1
	if err := c.SaveSecret(filepath.Join(dir, "b")); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("SaveSecret with mismatched keys: %v, want ErrKeyMismatch", err)
	}
	c = exampleCert(t)
	c.Metadata = []Property{{"a", "line\nbreak"}}
	if err := c.SavePublic(filepath.Join(dir, "c")); !errors.Is(err, ErrInvalidMetadata) {
		t.Errorf("SavePublic with bad metadata: %v, want ErrInvalidMetadata", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("rejected saves left files: %v", entries)
	}
}

// The secret file must be private from the moment it exists, before the
// secret is in it.
func TestSecretPrivateBeforeWrite(t *testing.T) {
	dir := t.TempDir()
	var seen []string
	testHookBeforeWrite = func(tmp string) {
		fi, err := os.Stat(tmp)
		if err != nil {
			t.Errorf("stat temporary file: %v", err)
			return
		}
		seen = append(seen, tmp)
		if fi.Size() != 0 {
			t.Errorf("temporary file already has %d bytes", fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("temporary secret file mode %v before writing, want 0600", fi.Mode().Perm())
		}
		if filepath.Dir(tmp) != dir {
			t.Errorf("temporary file %s not in the target directory %s", tmp, dir)
		}
	}
	defer func() { testHookBeforeWrite = nil }()
	if err := exampleCert(t).SaveSecret(filepath.Join(dir, "x.key_secret")); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 {
		t.Fatalf("hook saw %d temporary files, want 1", len(seen))
	}
	assertMode(t, filepath.Join(dir, "x.key_secret"), 0o600)
}

func TestAtomicReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.key_secret")
	if err := os.WriteFile(path, []byte("old contents\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A second name for the old file shows whether it was overwritten in
	// place (both names change) or replaced (only path changes).
	link := filepath.Join(dir, "old")
	if err := os.Link(path, link); err != nil {
		t.Skipf("hard links unsupported here: %v", err)
	}
	before, _ := os.Stat(path)

	c := exampleCert(t)
	if err := c.SaveSecret(path); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(link); string(data) != "old contents\n" {
		t.Errorf("old file was modified in place: %q", data)
	}
	if data, _ := os.ReadFile(path); string(data) != exampleSecretFile {
		t.Errorf("new contents %q", data)
	}
	after, _ := os.Stat(path)
	if os.SameFile(before, after) {
		t.Error("path still names the old file")
	}
	// The old file was 0644; the replacement must not inherit that.
	assertMode(t, path, 0o600)
	assertNoTempFiles(t, dir)
}

func TestSaveFailureCleansUp(t *testing.T) {
	dir := t.TempDir()
	// rename(2) cannot replace a non-empty directory with a file.
	target := filepath.Join(dir, "x.key")
	if err := os.MkdirAll(filepath.Join(target, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exampleCert(t).SavePublic(target); err == nil {
		t.Fatal("SavePublic over a directory succeeded")
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Errorf("target disturbed: %v %v", fi, err)
	}
	assertNoTempFiles(t, dir)

	if err := exampleCert(t).SavePublic(filepath.Join(dir, "missing", "x.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SavePublic into a missing directory: %v, want ErrNotExist", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of missing file: %v, want ErrNotExist", err)
	}

	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("#\n", MaxSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(big)
	var pe *ParseError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &pe) || pe.Path != big {
		t.Errorf("Load of huge file: %v, want ErrTooLarge naming the path", err)
	}

	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("curve\n    public-key = \"short\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if !errors.As(err, &pe) || pe.Path != bad || pe.Line != 2 || !strings.Contains(err.Error(), bad+":2: ") {
		t.Errorf("Load of bad file: %v, want error at %s:2", err, bad)
	}
}

func TestCreatePair(t *testing.T) {
	dir := t.TempDir()
	c, err := CreatePair(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	if c.Secret == nil || PublicFromSecret(*c.Secret) != c.Public {
		t.Fatal("CreatePair returned an inconsistent certificate")
	}
	s, err := Load(filepath.Join(dir, "server.key_secret"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Public != c.Public || *s.Secret != *c.Secret || p.Public != c.Public || p.Secret != nil {
		t.Error("files do not hold the returned key pair")
	}
	assertMode(t, filepath.Join(dir, "server.key_secret"), 0o600)
	assertMode(t, filepath.Join(dir, "server.key"), 0o644)

	// Both banners carry the same time, as pyzmq writes them.
	sd, _ := os.ReadFile(filepath.Join(dir, "server.key_secret"))
	pd, _ := os.ReadFile(filepath.Join(dir, "server.key"))
	sl, _, _ := strings.Cut(string(sd), "\n")
	pl, _, _ := strings.Cut(string(pd), "\n")
	if sl != pl || !strings.HasPrefix(sl, "#   ****  Generated on ") {
		t.Errorf("banners differ: %q vs %q", sl, pl)
	}

	again, err := CreatePair(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	if again.Public == c.Public {
		t.Error("CreatePair reused the old key")
	}
	assertNoTempFiles(t, dir)

	for _, name := range []string{"", ".", "..", "a/b", "../x", "a\x00b"} {
		if _, err := CreatePair(dir, name); err == nil {
			t.Errorf("CreatePair(%q) succeeded", name)
		}
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "curve")
	c, created, err := LoadOrCreate(dir, "dynfw")
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("first call did not report creating")
	}
	assertMode(t, dir, 0o700)
	secretPath, publicPath := filepath.Join(dir, "dynfw.key_secret"), filepath.Join(dir, "dynfw.key")
	assertMode(t, secretPath, 0o600)
	assertMode(t, publicPath, 0o644)

	reuse := func(what string) {
		t.Helper()
		got, created, err := LoadOrCreate(dir, "dynfw")
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if created || got.Public != c.Public || got.Secret == nil || *got.Secret != *c.Secret {
			t.Fatalf("%s: did not reuse the existing key pair (created=%v)", what, created)
		}
		p, err := Load(publicPath)
		if err != nil || p.Public != c.Public || p.Secret != nil {
			t.Fatalf("%s: public file not consistent: %v", what, err)
		}
	}
	reuse("second call")

	os.Remove(publicPath)
	reuse("public file missing")

	other, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := other.SavePublic(publicPath); err != nil {
		t.Fatal(err)
	}
	reuse("public file holds another key")

	// A copy of the secret certificate in the world-readable file.
	data, _ := os.ReadFile(secretPath)
	os.WriteFile(publicPath, data, 0o644)
	reuse("public file holds the secret")

	os.WriteFile(publicPath, []byte("garbage"), 0o644)
	reuse("public file malformed")
	assertNoTempFiles(t, dir)
}

func TestLoadOrCreateKeepsBadSecret(t *testing.T) {
	for name, contents := range map[string]string{
		"malformed":   "curve\n    public-key = \"oops\"\n",
		"public only": examplePublicFile,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			secretPath := filepath.Join(dir, "x.key_secret")
			os.WriteFile(secretPath, []byte(contents), 0o600)
			if _, _, err := LoadOrCreate(dir, "x"); err == nil {
				t.Fatal("LoadOrCreate accepted a bad secret certificate")
			}
			if data, _ := os.ReadFile(secretPath); string(data) != contents {
				t.Error("bad secret certificate was overwritten")
			}
			if _, err := os.Stat(filepath.Join(dir, "x.key")); !errors.Is(err, fs.ErrNotExist) {
				t.Error("public file written despite the error")
			}
		})
	}
}

func TestLoadOrCreateConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	var (
		wg      sync.WaitGroup
		certs   [n]*Cert
		created [n]bool
		errs    [n]error
	)
	for i := range n {
		wg.Go(func() { certs[i], created[i], errs[i] = LoadOrCreate(dir, "race") })
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if created[i] {
			creators++
		}
		if certs[i].Public != certs[0].Public || *certs[i].Secret != *certs[0].Secret {
			t.Errorf("caller %d got a different key pair", i)
		}
	}
	if creators != 1 {
		t.Errorf("%d callers report creating the key pair, want 1", creators)
	}
	s, err := Load(filepath.Join(dir, "race.key_secret"))
	if err != nil || s.Public != certs[0].Public {
		t.Errorf("stored key pair differs from the returned one: %v", err)
	}
	assertNoTempFiles(t, dir)
}

func TestLoadOrCreateNotADirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	if _, _, err := LoadOrCreate(file, "x"); err == nil {
		t.Error("LoadOrCreate with a file as directory succeeded")
	}
	if _, _, err := LoadOrCreate(t.TempDir(), "../x"); err == nil {
		t.Error("LoadOrCreate with a path as name succeeded")
	}
}
