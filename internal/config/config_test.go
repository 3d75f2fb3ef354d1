package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type opts struct {
	server  string
	port    int
	once    bool
	batch   time.Duration
	allow   []netip.Prefix
	config  string
	verbose bool
}

func newOpts(o *opts) *Options {
	s := New("test", "TESTCFG_")
	s.String(&o.config, "config", nil, "", "config file")
	s.String(&o.server, "server", []string{"s"}, "default.example", "server")
	s.Int(&o.port, "port", []string{"p"}, 7087, "port")
	s.Bool(&o.once, "once", nil, false, "once")
	s.Bool(&o.verbose, "verbose", []string{"v"}, false, "verbose")
	s.Duration(&o.batch, "batch-interval", nil, 50*time.Millisecond, "tick")
	s.Prefixes(&o.allow, "allow", nil, "allow-list")
	return s
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.toml")
	os.WriteFile(file, []byte("server = \"file.example\"\nport = 1000\nbatch-interval = \"1s\"\nallow = [\"10.0.0.0/8\", \"192.168.1.1\"]\nonce = true\n"), 0o644)
	t.Setenv("TESTCFG_PORT", "2000")
	t.Setenv("TESTCFG_ALLOW", "172.16.0.0/12")
	var o opts
	s := newOpts(&o)
	if err := s.Parse([]string{"--config", file, "-s", "flag.example", "-v"}, "config", ""); err != nil {
		t.Fatal(err)
	}
	if o.server != "flag.example" || o.port != 2000 || o.batch != time.Second || !o.once || !o.verbose {
		t.Fatalf("got %+v", o)
	}
	if len(o.allow) != 1 || o.allow[0].String() != "172.16.0.0/12" {
		t.Fatalf("env must replace the file's list: %v", o.allow)
	}
	if set, by := s.Set("server"); !set || by != "flag" {
		t.Fatalf("server set by %q", by)
	}
	if set, by := s.Set("batch-interval"); !set || by != "file" {
		t.Fatalf("batch-interval set by %q", by)
	}
	// Flags replace env lists too, and repeat.
	o = opts{}
	s = newOpts(&o)
	if err := s.Parse([]string{"--allow", "1.1.1.1", "--allow=2.2.0.0/16"}, "config", ""); err != nil {
		t.Fatal(err)
	}
	if len(o.allow) != 2 || o.allow[0].String() != "1.1.1.1/32" {
		t.Fatalf("allow %v", o.allow)
	}
}

func TestDefaultFileIsOptional(t *testing.T) {
	var o opts
	if err := newOpts(&o).Parse(nil, "config", "/nonexistent/dynfw.toml"); err != nil {
		t.Fatalf("missing default file: %v", err)
	}
	if o.server != "default.example" || o.port != 7087 {
		t.Fatalf("defaults %+v", o)
	}
	if err := newOpts(&o).Parse([]string{"--config", "/nonexistent/x.toml"}, "config", ""); err == nil {
		t.Fatal("a missing explicit config file must be an error")
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"unknown key":   "nope = 1\n",
		"bad type":      "port = \"many\"\n",
		"list to one":   "server = [\"a\"]\n",
		"bad prefix":    "allow = [\"10.0.0.0/99\"]\n",
		"toml syntax":   "server = \n",
		"short in file": "s = \"x\"\n",
	}
	for name, content := range cases {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".toml")
		os.WriteFile(file, []byte(content), 0o644)
		var o opts
		if err := newOpts(&o).Parse([]string{"--config=" + file}, "config", ""); err == nil {
			t.Errorf("%s: accepted %q", name, content)
		}
	}
	var o opts
	if err := newOpts(&o).Parse([]string{"--port", "x"}, "config", ""); err == nil {
		t.Error("bad flag value accepted")
	}
	t.Setenv("TESTCFG_BATCH_INTERVAL", "soon")
	if err := newOpts(&o).Parse(nil, "config", ""); err == nil || !strings.Contains(err.Error(), "TESTCFG_BATCH_INTERVAL") {
		t.Errorf("bad env value: %v", err)
	}
}

func TestSections(t *testing.T) {
	type weights map[string]float64
	var sec struct {
		Entry   float64  `toml:"entry-threshold"`
		Weights weights  `toml:"weights"`
		Allow   []string `toml:"allow"`
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "c.toml")
	os.WriteFile(file, []byte("server = \"x\"\n[scoring]\nentry-threshold = 40\nallow = [\"10.0.0.0/8\"]\n[scoring.weights]\ntelnet_login = 12.5\n"), 0o644)
	var o opts
	s := newOpts(&o)
	s.Section("scoring", &sec)
	if err := s.Parse([]string{"--config", file}, "config", ""); err != nil {
		t.Fatal(err)
	}
	if sec.Entry != 40 || sec.Weights["telnet_login"] != 12.5 || len(sec.Allow) != 1 || o.server != "x" {
		t.Fatalf("%+v %+v", sec, o)
	}
	os.WriteFile(file, []byte("[scoring]\nentry-treshold = 40\n"), 0o644)
	s = newOpts(&o)
	s.Section("scoring", &sec)
	if err := s.Parse([]string{"--config", file}, "config", ""); err == nil || !strings.Contains(err.Error(), "entry-treshold") {
		t.Fatalf("a misspelt key in a section: %v", err)
	}
	os.WriteFile(file, []byte("[other]\na = 1\n"), 0o644)
	s = newOpts(&o)
	s.Section("scoring", &sec)
	if err := s.Parse([]string{"--config", file}, "config", ""); err == nil {
		t.Fatal("an unknown section was accepted")
	}
}

func TestStrings(t *testing.T) {
	var eps []string
	s := New("t", "TESTCFG_")
	s.Strings(&eps, "listen", nil, []string{"tcp://*:1"}, "")
	if err := s.Parse(nil, "config", ""); err != nil || len(eps) != 1 {
		t.Fatalf("default %v %v", eps, err)
	}
	s = New("t", "TESTCFG_")
	s.Strings(&eps, "listen", nil, []string{"tcp://*:1"}, "")
	if err := s.Parse([]string{"--listen", "a", "--listen", "b"}, "config", ""); err != nil || len(eps) != 2 || eps[0] != "a" {
		t.Fatalf("flags %v %v", eps, err)
	}
	t.Setenv("TESTCFG_LISTEN", "x, y,z")
	s = New("t", "TESTCFG_")
	s.Strings(&eps, "listen", nil, []string{"tcp://*:1"}, "")
	if err := s.Parse(nil, "config", ""); err != nil || len(eps) != 3 || eps[1] != "y" {
		t.Fatalf("env %v %v", eps, err)
	}
}

// TestFlagErrors: the command line's errors name options as the usage
// does (--name), not in the flag package's words.
func TestFlagErrors(t *testing.T) {
	cases := map[string][]string{
		"unknown option --bogus":        {"--bogus"},
		"unknown option -x":             {"-x"},
		"option --server needs a value": {"--server"},
		`--port: "x" is not an integer`: {"--port", "x"},
		`--once: `:                      {"--once=maybe"},
	}
	for want, args := range cases {
		var o opts
		err := newOpts(&o).Parse(args, "config", "")
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%v: %v, want %q", args, err, want)
		}
	}
}

// TestLenient: a lenient set reads its own keys of another command's file
// and ignores the rest, but still checks the values of its own.
func TestLenient(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.toml")
	os.WriteFile(file, []byte("port = 9\nother = \"x\"\n[scoring]\nentry = 3\n"), 0o644)
	var o opts
	s := newOpts(&o)
	s.Lenient = true
	if err := s.Parse([]string{"--config", file}, "config", ""); err != nil || o.port != 9 {
		t.Fatalf("lenient parse: %v, port %d", err, o.port)
	}
	os.WriteFile(file, []byte("port = \"many\"\nother = 1\n"), 0o644)
	s = newOpts(&o)
	s.Lenient = true
	if err := s.Parse([]string{"--config", file}, "config", ""); err == nil {
		t.Fatal("a bad value of a known key must still be refused")
	}
}

// TestUsageWithoutFile: a set without a config option does not offer one.
func TestUsageWithoutFile(t *testing.T) {
	var port int
	s := New("x", "X_")
	s.Int(&port, "port", nil, 1, "port")
	var b strings.Builder
	s.Usage(&b)
	if strings.Contains(b.String(), "config file") || !strings.Contains(b.String(), "environment (X_NAME)") {
		t.Fatalf("usage: %s", b.String())
	}
}

// TestArgsAmongOptions: with AllowArgs, arguments may come before, after
// or between the options; after "--" everything is an argument.
func TestArgsAmongOptions(t *testing.T) {
	var o opts
	s := newOpts(&o)
	s.AllowArgs = true
	if err := s.Parse([]string{"a", "--port", "9", "b", "-v", "--", "-c", "--once"}, "config", ""); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.Args()) != "[a b -c --once]" || o.port != 9 || !o.verbose || o.once {
		t.Fatalf("args %q, options %+v", s.Args(), o)
	}
	s = newOpts(&o)
	if err := s.Parse([]string{"--port", "9", "extra"}, "config", ""); err == nil || !strings.Contains(err.Error(), `unexpected argument "extra"`) {
		t.Fatalf("an argument without AllowArgs: %v", err)
	}
}
