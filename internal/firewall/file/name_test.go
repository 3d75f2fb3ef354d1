package file

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidNames checks the hand-written name checks against the regular
// expressions they replace, on every string of up to three bytes over an
// alphabet of the interesting cases, and at the length limit.
func TestValidNames(t *testing.T) {
	nft := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_./-]{0,254}$`)
	ipset := regexp.MustCompile(`^[A-Za-z0-9_.:+-]+$`)
	cases := []string{strings.Repeat("a", 255), strings.Repeat("a", 256), "_" + strings.Repeat("9", 254)}
	alphabet := "aZz_09.-/:+ \n\xc3\x00"
	for n, prev := 0, []string{""}; n < 3; n++ {
		var next []string
		for _, p := range prev {
			for i := 0; i < len(alphabet); i++ {
				next = append(next, p+alphabet[i:i+1])
			}
		}
		cases = append(cases, next...)
		prev = next
	}
	for _, s := range append(cases, "") {
		if got, want := validNftName(s), nft.MatchString(s); got != want {
			t.Errorf("validNftName(%q) = %v, want %v", s, got, want)
		}
		if got, want := validIpsetName(s), ipset.MatchString(s); got != want {
			t.Errorf("validIpsetName(%q) = %v, want %v", s, got, want)
		}
	}
}
