package probe

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// results builds probes sent every second from t0; pattern has one byte per
// probe: '.' answered, 'x' lost.
func results(pattern string) []Result {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var rs []Result
	for i, c := range pattern {
		r := Result{Seq: i + 1, Sent: t0.Add(time.Duration(i) * time.Second)}
		if c == 'x' {
			r.Lost = true
		} else {
			r.RTT = time.Millisecond
		}
		rs = append(rs, r)
	}
	return rs
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		pattern string
		want    Stats
	}{
		{"", Stats{}},
		{".", Stats{Sent: 1, Received: 1, Recovered: true}},
		{"x", Stats{Sent: 1, Lost: 1, LostRuns: 1}},
		{"....", Stats{Sent: 4, Received: 4, Recovered: true}},
		// One lost probe between answered ones: 2 s from the last answer
		// before to the first answer after.
		{"..x..", Stats{Sent: 5, Received: 4, Lost: 1, LostRuns: 1, Outage: 2 * time.Second, Recovered: true}},
		// The longest of two runs counts.
		{".x..xxx.", Stats{Sent: 8, Received: 4, Lost: 4, LostRuns: 2, Outage: 4 * time.Second, Recovered: true}},
		// A run at the start is measured from its first probe.
		{"xx..", Stats{Sent: 4, Received: 2, Lost: 2, LostRuns: 1, Outage: 2 * time.Second, Recovered: true}},
		// A run at the end is open: measured up to its last probe.
		{"..xxx", Stats{Sent: 5, Received: 2, Lost: 3, LostRuns: 1, Outage: 3 * time.Second}},
		{"xxx", Stats{Sent: 3, Lost: 3, LostRuns: 1, Outage: 2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got := Summarize(results(tt.pattern))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Summarize(%q) (-want +got):\n%s", tt.pattern, diff)
			}
		})
	}
}

func TestLossPercent(t *testing.T) {
	tests := []struct {
		s    Stats
		want int
	}{
		{Stats{}, 0},
		{Stats{Sent: 25, Lost: 4}, 16},
		{Stats{Sent: 3, Lost: 2}, 66},
		{Stats{Sent: 3, Lost: 3}, 100},
	}
	for _, tt := range tests {
		if got := tt.s.LossPercent(); got != tt.want {
			t.Errorf("%+v.LossPercent() = %d, want %d", tt.s, got, tt.want)
		}
	}
}

func TestTimeout(t *testing.T) {
	if got := Timeout(100 * time.Millisecond); got != time.Second {
		t.Errorf("Timeout(100ms) = %v, want 1s", got)
	}
	if got := Timeout(time.Second); got != 3*time.Second {
		t.Errorf("Timeout(1s) = %v, want 3s", got)
	}
}
