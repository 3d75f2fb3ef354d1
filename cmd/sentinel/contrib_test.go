package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// The example configuration, uncommented, is a valid configuration that
// names every option.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../../contrib/sentinel.toml")
	if err != nil {
		t.Fatal(err)
	}
	kv := regexp.MustCompile(`^# ([a-z0-9_-]+ = .*?)(\s+#.*)?$`)
	header := regexp.MustCompile(`^# (\[\[[a-z.]+\]\])$`)
	seen := map[string]bool{}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case kv.MatchString(l):
			m := kv.FindStringSubmatch(l)
			out = append(out, m[1])
			seen[strings.Fields(m[1])[0]] = true
		case header.MatchString(l):
			out = append(out, header.FindStringSubmatch(l)[1])
		default:
			out = append(out, l)
		}
	}
	o := newRunOptions()
	for _, name := range o.set.Names() {
		if name != "config" && !seen[name] {
			t.Errorf("option %q is missing from contrib/sentinel.toml", name)
		}
	}
	file := filepath.Join(t.TempDir(), "sentinel.toml")
	content := strings.Join(out, "\n")
	content = strings.Replace(content, `data = "/var/lib/sentinel"`, `data = "`+t.TempDir()+`"`, 1)
	os.WriteFile(file, []byte(content), 0o644)
	o = newRunOptions()
	if err := o.parse([]string{"--config", file}); err != nil {
		t.Fatalf("the example, uncommented, is refused: %v", err)
	}
	cfg, err := o.serverConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.HTTPTokens) != 1 || cfg.Scoring.Weights["haas_logged_active"] != 8 || cfg.Scoring.Entry != 10 {
		t.Fatalf("decoded %+v", cfg.Scoring)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"unknown weight":     "[scoring.weights]\nnope_login = 1\n",
		"misspelt key":       "[scoring]\nentry-treshold = 1\n",
		"bad allow":          "[scoring]\nallow = [\"10.0.0.0/99\"]\n",
		"bad duration":       "[scoring]\nhalf-life = \"soon\"\n",
		"token without name": "[[http.tokens]]\ntoken = \"0123456789abcdef\"\n",
		"bad event name":     "[events]\n\"Bad-Name\" = \"x\"\n",
	} {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".toml")
		os.WriteFile(file, []byte(content), 0o644)
		o := newRunOptions()
		err := o.parse([]string{"--config", file})
		if err == nil {
			_, err = o.serverConfig()
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestServerUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		testenv.Skip(t, "needs systemd-analyze (package systemd)")
	}
	unit, _ := os.ReadFile("../../contrib/systemd/sentinel.service")
	path := filepath.Join(t.TempDir(), "sentinel.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/sentinel", filepath.Join(binDir, "sentinel"))), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
