package view

import (
	"testing"

	"github.com/dynfw/sentinel/internal/store"
)

func TestLabels(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{trapLabel("minipot_telnet"), "Telnet honeypot"},
		{trapLabel("fwlogs"), "Firewall"},
		{trapLabel("my_sensor"), "my_sensor"},
		{actionLabel("small_port_scan"), "small port scan"},
		{actionLabel("some_new_thing"), "some new thing"},
		{eventLabel("telnet_login"), "Telnet honeypot: login attempt"},
		{eventLabel("fwlogs_big_port_scan"), "Firewall: big port scan"},
		{eventLabel("haas_logged_active"), "SSH honeypot (HaaS): logged in and ran commands"},
		{eventLabel("fail2ban_custom"), "fail2ban_custom"},
		{countryLabel("CZ"), "Czechia"},
		{countryLabel("cz"), "Czechia"},
		{countryLabel(""), "Unknown"},
		{countryLabel("XZ"), "XZ"},
		{countryLabel("KR"), "South Korea"},
		{countryLabel("ru"), "Russia"},
		{dimCell(store.DimCountry, "XZ").Text + "|" + dimCell(store.DimCountry, "XZ").Note, "XZ|"},
		{dimCell(store.DimCountry, "cz").Text + "|" + dimCell(store.DimCountry, "cz").Note, "Czechia|CZ"},
		{dimCell(store.DimCountry, "").Text, "Unknown"},
		{dimCell(store.DimTrap, "haas").Title, "haas"},
		{dimCell(store.DimAction, "big_port_scan").Text, "big port scan"},
		{dimCell(store.DimPort, "TCP/3389").Note, "RDP"},
		{dimCell(store.DimTrap, "a_custom_sensor_name").Text, "a_custom_sens…"},
		{portService("UDP/53"), "DNS"},
		{portService("23"), "Telnet"},
		{portService("7547"), "TR-069"},
		{portService("31337"), ""},
		{portService("x"), ""},
		{portService("70000"), ""},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
