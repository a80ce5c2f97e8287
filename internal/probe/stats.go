package probe

import "time"

// Stats summarises a run of probes.
type Stats struct {
	Sent, Received, Lost int
	// LostRuns counts the runs of consecutive lost probes.
	LostRuns int
	// Outage is the longest run of losses, measured from the send time of
	// the last answered probe before it to the send time of the first
	// answered probe after it. A run at the start is measured from its own
	// first probe; a run at the end (not recovered) up to its last probe.
	Outage time.Duration
	// Recovered reports whether the last probe was answered: no run of
	// losses is still open. It is false when nothing was sent.
	Recovered bool
}

// LossPercent is the share of lost probes in percent, rounded down as
// ping(8) does (0 when nothing was sent).
func (s Stats) LossPercent() int {
	if s.Sent == 0 {
		return 0
	}
	return s.Lost * 100 / s.Sent
}

// Summarize computes the statistics of results, which must be in Seq order
// (as Run returns them).
func Summarize(results []Result) Stats {
	var s Stats
	s.Sent = len(results)
	lastAnswered := -1 // index of the last answered probe seen
	runStart := -1     // index of the first probe of the open run of losses
	for i, r := range results {
		if r.Lost {
			s.Lost++
			if runStart < 0 {
				runStart = i
				s.LostRuns++
			}
			continue
		}
		s.Received++
		if runStart >= 0 {
			from := results[runStart].Sent
			if lastAnswered >= 0 {
				from = results[lastAnswered].Sent
			}
			s.Outage = max(s.Outage, r.Sent.Sub(from))
			runStart = -1
		}
		lastAnswered = i
	}
	if runStart >= 0 {
		from := results[runStart].Sent
		if lastAnswered >= 0 {
			from = results[lastAnswered].Sent
		}
		s.Outage = max(s.Outage, results[len(results)-1].Sent.Sub(from))
	}
	s.Recovered = s.Sent > 0 && !results[len(results)-1].Lost
	return s
}
