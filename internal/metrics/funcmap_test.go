package metrics

import (
	"strings"
	"testing"
)

func TestCounterMapFunc(t *testing.T) {
	r := NewRegistry()
	n := uint64(0)
	r.CounterMapFunc("drops_total", "Drops by reason.", "reason", func() map[string]uint64 {
		n++
		return map[string]uint64{"too_large": n, "bad_topic": 0, `q"uote`: 1}
	})
	var b strings.Builder
	r.WriteTo(&b)
	want := `# HELP drops_total Drops by reason.
# TYPE drops_total counter
drops_total{reason="bad_topic"} 0
drops_total{reason="q\"uote"} 1
drops_total{reason="too_large"} 1
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a name registered twice must panic")
		}
	}()
	r.CounterMapFunc("drops_total", "", "reason", nil)
}
