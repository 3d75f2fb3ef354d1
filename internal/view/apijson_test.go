package view

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/stats"
)

// encodingJSON is what encoding/json writes for v, as the API did.
func encodingJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkJSONString(t testing.TB, s string) {
	t.Helper()
	if got, want := string(appendJSONString(nil, s)), encodingJSON(t, s); got != want {
		t.Errorf("%q: wrote %s, encoding/json %s", s, got, want)
	}
}

func TestJSONStringLikeEncodingJSON(t *testing.T) {
	for c := range 256 {
		checkJSONString(t, string([]byte{byte(c)}))
		checkJSONString(t, "a"+string([]byte{byte(c)})+"b")
	}
	for _, s := range []string{"", "plain", xssPassword, xssUsername, csvPassword, "\xff\xfe", "é\xc3", "\u2028\u2029", "ř/+?éab>", "\x7f", "\U0001F600", "\xed\xa0\x80"} {
		checkJSONString(t, s)
	}
}

func FuzzJSONString(f *testing.F) {
	f.Add("<a href=\"x\">&amp;</a>\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) { checkJSONString(t, s) })
}

// TestDataJSONKeyOrder: items' keys come in encoding/json's (string)
// order however many series a multi-line graph has, and in field order
// for lists whatever the catalogue's field order.
func TestDataJSONKeyOrder(t *testing.T) {
	multi := stats.Catalog["top_traps_by_incidents_graph"]
	m := stats.TopSeries{Buckets: []string{"b0", "b1"}}
	// The struct the rows replaced.
	var legacy struct {
		Labels []string         `json:"labels"`
		YKeys  []int            `json:"ykeys"`
		Data   []map[string]any `json:"data"`
	}
	for j := range 12 {
		m.Labels = append(m.Labels, "l"+strconv.Itoa(j))
		legacy.YKeys = append(legacy.YKeys, j)
	}
	legacy.Labels = m.Labels
	for i, b := range m.Buckets {
		row := make([]int64, len(m.Labels))
		item := map[string]any{"bucket": b}
		for j := range row {
			row[j] = int64(i*100 + j)
			item[strconv.Itoa(j)] = row[j]
		}
		m.Counts = append(m.Counts, row)
		legacy.Data = append(legacy.Data, item)
	}
	r := stats.Result{Resource: multi, Multi: m}
	if got, want := string(AppendDataJSON(nil, &r)), encodingJSON(t, legacy); got != want {
		t.Errorf("multi-line graph:\n%s\nencoding/json:\n%s", got, want)
	}
	list := &stats.Resource{Shape: stats.List, Fields: []string{"zeta", "alpha", "count2", "country"}}
	r = stats.Result{Resource: list, List: []stats.ListRow{{Fields: []string{"z", "a", "c2", "<CZ>"}, Count: 7}}}
	want := encodingJSON(t, []map[string]any{{"zeta": "z", "alpha": "a", "count2": "c2", "country": "<CZ>", "count": 7}})
	if got := string(AppendDataJSON(nil, &r)); got != want {
		t.Errorf("list:\n%s\nencoding/json:\n%s", got, want)
	}
	seen := stats.Catalog["selected_attacker_seen"]
	sd := stats.SeenData{First: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), Last: time.Date(2025, 1, 2, 4, 0, 0, 0, time.FixedZone("x", 3600))}
	r = stats.Result{Resource: seen, Seen: &sd}
	want = encodingJSON(t, map[string]time.Time{"first": sd.First, "last": sd.Last})
	if got := string(AppendDataJSON(nil, &r)); got != want {
		t.Errorf("seen:\n%s\nencoding/json:\n%s", got, want)
	}
}
