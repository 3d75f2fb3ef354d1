package events

import "testing"

func TestVocabulary(t *testing.T) {
	for _, name := range []string{"telnet_connect", "telnet_login", "telnet_invalid", "ftp_connect", "ftp_login", "ftp_invalid",
		"smtp_connect", "smtp_login", "smtp_invalid", "http_connect", "http_message", "http_login", "http_invalid",
		"haas_not_logged", "haas_logged", "haas_logged_active", "fwlogs_small_port_scan", "fwlogs_big_port_scan"} {
		typ, ok := Lookup(name)
		if !ok || typ.String() != name || !typ.Published() {
			t.Errorf("%s: %v %v", name, typ, ok)
		}
	}
	if FwlogsPacket.Published() || FwlogsPacket.Trap() != "" {
		t.Error("packets are observations, not events")
	}
	if FwlogsBigPortScan.Tag() != "port_scan" || HaasLogged.Tag() != "haas" || TelnetLogin.Trap() != "minipot_telnet" {
		t.Error("tags or traps wrong")
	}
	if len(Builtin()) != 19 {
		t.Errorf("%d published built-in types", len(Builtin()))
	}
}

func TestRegister(t *testing.T) {
	typ, err := Register("fail2ban_sshd", "ssh")
	if err != nil {
		t.Fatal(err)
	}
	if typ.String() != "fail2ban_sshd" || typ.Tag() != "ssh" || !typ.Published() {
		t.Fatalf("%v %q", typ, typ.Tag())
	}
	again, _ := Register("fail2ban_sshd", "other")
	if again != typ {
		t.Fatal("re-registering gave a new type")
	}
	if known, _ := Register("telnet_login", "x"); known != TelnetLogin {
		t.Fatal("a built-in name must keep its type")
	}
	for _, bad := range []string{"", "Upper", "with-dash", "1digit", string(make([]byte, 70))} {
		if _, err := Register(bad, ""); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestProbes(t *testing.T) {
	var ps Probes
	a := ps.ID(Probe{Name: "mqtt:0000000D300012AB", Serial: "0000000D300012AB"})
	b := ps.ID(Probe{Name: "http:fail2ban"})
	if a == 0 || b == 0 || a == b || ps.ID(Probe{Name: "mqtt:0000000D300012AB"}) != a {
		t.Fatalf("ids %d %d", a, b)
	}
	if p, ok := ps.Get(a); !ok || p.Serial != "0000000D300012AB" {
		t.Fatalf("%+v", p)
	}
	if _, ok := ps.Get(0); ok {
		t.Fatal("0 is unknown")
	}
}
