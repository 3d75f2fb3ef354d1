package server

import (
	"strings"
	"testing"
)

// TestAdminBlockRefusesNonGlobal: the admin API refuses with a clear 400
// to list what no router may block, including the 6to4, NAT64 and Teredo
// forms of such IPv4 addresses; with list-non-global the floor (loopback,
// link-local, multicast, unspecified) still holds.
func TestAdminBlockRefusesNonGlobal(t *testing.T) {
	for _, listNonGlobal := range []bool{false, true} {
		ts := startServer(t, t.TempDir(), func(c *Config) { c.Scoring.ListNonGlobal = listNonGlobal })
		for _, tc := range []struct{ ip, why string }{
			{"127.0.0.1", "loopback"},
			{"::1", "loopback"},
			{"0.0.0.0", "unspecified"},
			{"fe80::1", "link-local"},
			{"ff02::1", "multicast"},
			{"2002:7f00:1::1", "loopback, 6to4 form"},
			{"64:ff9b::7f00:1", "loopback, nat64 form"},
			{"2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback, teredo form"},
			{"::ffff:127.0.0.1", "loopback"},
			{"10.1.2.3", "private"},
			{"2002:a00:1::1", "private, 6to4 form"},
			{"fd00::1", "unique-local"},
			{"100.64.0.1", "cgnat"},
			{"192.0.2.1", "special-purpose"},
		} {
			code, res := post(t, ts.http+"/api/v1/admin/block", adminToken, `{"ip":"`+tc.ip+`","duration":"1h"}`)
			refused := code == 400
			wantRefused := !listNonGlobal || !strings.Contains("private unique-local cgnat special-purpose", strings.SplitN(tc.why, ",", 2)[0])
			if refused != wantRefused {
				t.Errorf("list-non-global %v: block %s: %d %v", listNonGlobal, tc.ip, code, res)
				continue
			}
			if msg, _ := res["error"].(string); refused && !strings.Contains(msg, "non-global address: "+tc.why+")") {
				t.Errorf("block %s: error %q does not say %q", tc.ip, msg, tc.why)
			}
		}
		if code, res := post(t, ts.http+"/api/v1/admin/block", adminToken, `{"ip":"2002:b901:101::1","duration":"1h"}`); code != 200 {
			t.Errorf("6to4 of a global address refused: %d %v", code, res)
		}
	}
}
