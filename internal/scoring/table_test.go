package scoring

import (
	"math/rand/v2"
	"testing"
)

// TestTable checks the index against a Go map through random inserts and
// swap-removals like the scorer's, with few distinct keys so that probe
// sequences cluster and wrap around the end of the slots.
func TestTable(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 50 {
		tb := newTable(0)
		if round%2 == 0 {
			tb.seed = [2]uint64{} // a fixed, poor hash: more clusters
		}
		var ents entries
		model := map[key]uint32{}
		for op := range 3000 {
			k := key{uint64(r.IntN(4)), uint64(r.IntN(200))}
			if p, ok := model[k]; ok {
				// Remove as Scorer.remove does.
				tb.remove(k, &ents)
				delete(model, k)
				if last := ents.n - 1; p != last {
					*ents.at(p) = *ents.at(last)
					tb.move(ents.at(p).k, p, &ents)
					model[ents.at(p).k] = p
				}
				ents.pop()
			} else {
				p := ents.grow()
				ents.at(p).k = k
				tb.insert(k, p)
				model[k] = p
			}
			if tb.n != len(model) {
				t.Fatalf("round %d op %d: n %d, want %d", round, op, tb.n, len(model))
			}
			if op%50 == 0 || round < 3 {
				for k, p := range model {
					if got, ok := tb.get(k, &ents); !ok || got != p {
						t.Fatalf("round %d op %d: %v at %d %v, want %d", round, op, k, got, ok, p)
					}
				}
				if _, ok := tb.get(key{9, 9}, &ents); ok {
					t.Fatal("absent key found")
				}
			}
		}
	}
}
