package main

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// The example configuration lists every option, and every line of it must
// be accepted once uncommented.
func TestExampleConfigMatchesOptions(t *testing.T) {
	b, err := os.ReadFile("../../contrib/dynfw-client.toml")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	seen := map[string]bool{}
	re := regexp.MustCompile(`^# ([a-z0-9-]+) = (.*?)(\s+#.*)?$`)
	for _, l := range strings.Split(string(b), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			lines = append(lines, m[1]+" = "+m[2])
			seen[m[1]] = true
		}
	}
	o := newOptions()
	for _, name := range o.set.Names() {
		if name != "config" && name != "version" && !seen[name] {
			t.Errorf("option %q is missing from contrib/dynfw-client.toml", name)
		}
	}
	file := filepath.Join(t.TempDir(), "c.toml")
	content := strings.Join(lines, "\n") + "\n"
	content = strings.Replace(content, `output = ""`, `output = "/tmp/x"`, 1)
	os.WriteFile(file, []byte(content), 0o644)
	if err := newOptions().parse([]string{"--config", file}); err != nil {
		t.Fatalf("the example, uncommented, is refused: %v\n%s", err, content)
	}
}

func TestSystemdUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		testenv.Skip(t, "needs systemd-analyze (package systemd)")
	}
	unit, err := os.ReadFile("../../contrib/systemd/dynfw-client.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "dynfw-client.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/dynfw-client", binary)), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestOpenWrtInitScriptParses(t *testing.T) {
	out, err := exec.Command("sh", "-n", "../../contrib/openwrt/dynfw-client.init").CombinedOutput()
	if err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
}

func TestFirewalldFiles(t *testing.T) {
	ipsets, _ := filepath.Glob("../../contrib/firewalld/ipsets/*.xml")
	names := map[string]bool{}
	for _, f := range ipsets {
		var s struct {
			Type    string `xml:"type,attr"`
			Options []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"option"`
		}
		b, _ := os.ReadFile(f)
		if err := xml.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if s.Type != "hash:ip" && s.Type != "hash:net" {
			t.Fatalf("%s: type %q", f, s.Type)
		}
		names[strings.TrimSuffix(filepath.Base(f), ".xml")] = true
	}
	// The ipset backend's default names, so the zone matches what it fills.
	for _, want := range []string{"turris-sn-dynfw-block", "turris-sn-dynfw-block-v6", "turris-sn-dynfw-block-net4", "turris-sn-dynfw-block-net6"} {
		if !names[want] {
			t.Errorf("no firewalld ipset %s", want)
		}
	}
	var z struct {
		Target  string `xml:"target,attr"`
		Sources []struct {
			Ipset string `xml:"ipset,attr"`
		} `xml:"source"`
	}
	b, _ := os.ReadFile("../../contrib/firewalld/zones/dynfw-block.xml")
	if err := xml.Unmarshal(b, &z); err != nil {
		t.Fatal(err)
	}
	if z.Target != "DROP" || len(z.Sources) != 4 {
		t.Fatalf("zone %+v", z)
	}
	for _, s := range z.Sources {
		if !names[s.Ipset] {
			t.Errorf("zone refers to ipset %q, which has no file of that name", s.Ipset)
		}
	}
}
