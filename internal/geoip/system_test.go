package geoip

import (
	"bufio"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// TestSystemFiles reads every range of the installed tor-geoipdb files and
// checks that Open maps both of its ends to its country, and so does the
// embedded table when it was generated from the same export. The always-run
// tests (TestKnown and the fixtures) cover the same ground on samples; this
// one covers all 660,000 ranges where the package is installed.
func TestSystemFiles(t *testing.T) {
	for _, path := range []string{"/usr/share/tor/geoip", "/usr/share/tor/geoip6"} {
		t.Run(path[strings.LastIndexByte(path, '/')+1:], func(t *testing.T) {
			if _, err := os.Stat(path); err != nil {
				testenv.Skip(t, "needs Debian's tor-geoipdb: "+err.Error())
			}
			db, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			dbs := []DB{db}
			if strings.HasSuffix(db.(*Table).Version(), knownSourceGenerated) {
				dbs = append(dbs, Default())
			} else {
				t.Logf("%s is from another export than the embedded data (%q); checking Open only", path, db.(*Table).Version())
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			line, n := 0, 0
			for sc.Scan() {
				line++
				s := sc.Text()
				if s == "" || s[0] == '#' {
					continue
				}
				fields := strings.Split(s, ",")
				if len(fields) != 3 {
					t.Fatalf("%s:%d: %q", path, line, s)
				}
				want := canonical(fields[2])
				for _, a := range []netip.Addr{systemAddr(t, fields[0]), systemAddr(t, fields[1])} {
					w := want
					if !public(a) {
						w = ""
					}
					for i, db := range dbs {
						if got := db.Country(a); got != w {
							t.Errorf("%s:%d: db %d: Country(%s) = %q, want %q", path, line, i, a, got, w)
							if n++; n > 20 {
								t.FailNow()
							}
						}
					}
				}
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func systemAddr(t *testing.T, s string) netip.Addr {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return u32Addr(uint32(n))
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
