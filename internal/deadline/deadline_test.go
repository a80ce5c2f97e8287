package deadline

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestHeap: after random moves, some touched and some not (a deadline
// that only moves later may go untouched), items added and removed, Next
// and Top agree with a pass over every item.
func TestHeap(t *testing.T) {
	base := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	dl := map[int]time.Time{}
	h := New(func(v int) time.Time { return dl[v] })
	var vs []int
	for v := range 50 {
		vs = append(vs, v)
		dl[v] = base.Add(time.Duration(v) * time.Millisecond)
	}
	scan := func() (time.Time, bool) {
		var best time.Time
		for _, v := range vs {
			if d := dl[v]; !d.IsZero() && (best.IsZero() || d.Before(best)) {
				best = d
			}
		}
		return best, !best.IsZero()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		switch k := rng.IntN(20); {
		case k < 12: // moved, touched
			v := vs[rng.IntN(len(vs))]
			dl[v] = base.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
			if rng.IntN(10) == 0 {
				dl[v] = time.Time{}
			}
			h.Touch(v)
		case k < 16: // moved later, untouched
			v := vs[rng.IntN(len(vs))]
			if !dl[v].IsZero() {
				dl[v] = dl[v].Add(time.Duration(rng.IntN(100)) * time.Millisecond)
			}
		case k < 18: // a new item, touched
			v := 1000 + i
			vs = append(vs, v)
			dl[v] = base.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
			h.Touch(v)
		default: // an item gone
			j := rng.IntN(len(vs))
			vs = append(vs[:j], vs[j+1:]...)
			h.Invalidate()
		}
		want, ok := scan()
		if got := h.Next(vs); !got.Equal(want) {
			t.Fatalf("step %d: Next %v, want %v", i, got.Sub(base), want.Sub(base))
		}
		top, got := h.Top()
		if got != ok || ok && !dl[top].Equal(want) {
			t.Fatalf("step %d: Top %v (%v, deadline %v), want one with %v", i, top, got, dl[top].Sub(base), want.Sub(base))
		}
	}
}
