package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestVHIDLateness: the lateness of one vhid's adverts on the wire, and
// the errors TestHangingCheck and BenchmarkHookAdvertLateness now assert
// (they threw advertLateness's away): adverts missing from the window,
// adverts of two vhids, too few to measure.
func TestVHIDLateness(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ads := func(vhid int, offsets ...time.Duration) []wireAdvert {
		var as []wireAdvert
		for _, o := range offsets {
			as = append(as, wireAdvert{At: t0.Add(o), VHID: vhid, AdvBase: 1})
		}
		return as
	}
	s := time.Second
	onTime := ads(100, 0, s, 2*s, 3*s, 4*s, 5*s)
	lates, err := vhidLateness(onTime, 6*time.Second)
	if err != nil || len(lates) != 5 || lates[0] != 0 || lates[4] != 0 {
		t.Errorf("adverts on time: %v, %v; want 5 gaps of lateness 0", lates, err)
	}
	// Given out of order, one 300 ms late.
	lates, err = vhidLateness(ads(100, 2*s+300*time.Millisecond, 0, s, 3*s, 4*s, 5*s), 6*time.Second)
	if err != nil || len(lates) != 5 || lates[1] != 0.3 || lates[2] != -0.3 {
		t.Errorf("one advert 300 ms late: %v, %v; want lateness 0.3 then -0.3", lates, err)
	}
	for _, tt := range []struct {
		name   string
		ads    []wireAdvert
		window time.Duration
		want   string
	}{
		{"adverts missing", ads(100, 0, 4*s, 5*s), 6 * time.Second, "3 adverts in 6s, want >= 5"},
		{"two vhids", append(ads(100, 0, s, 2*s), ads(7, 3*s)...), 4 * time.Second, "adverts of vhids 100 and 7"},
		{"one advert", ads(100, 0), 6 * time.Second, "1 adverts captured"},
	} {
		if _, err := vhidLateness(tt.ads, tt.window); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestSpreadMissed: a benchmark's target check fails on a median or a
// maximum over its bound, and on no values at all.
func TestSpreadMissed(t *testing.T) {
	for _, tt := range []struct {
		vals         []float64
		median, most float64
		want         string // "" when the target is met
	}{
		{[]float64{0, 0, 1, 0, 2}, 0, 2, ""},
		{[]float64{0, 1, 1, 0, 2}, 0, 2, "median 1, want at most 0"},
		{[]float64{0, 0, 3, 0, 0}, 0, 2, "max 3, want at most 2"},
		{[]float64{0.5, 0.9, 1.2}, 1, noBound, ""},
		{[]float64{0.5, 1.1, 1.2}, 1, noBound, "median 1.1"},
		{nil, noBound, noBound, "no values"},
	} {
		s := &spread{name: "lost", vals: tt.vals}
		got := s.missed(tt.median, tt.most)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%v against median %v, max %v: %q, want %q", tt.vals, tt.median, tt.most, got, tt.want)
		}
	}
}
