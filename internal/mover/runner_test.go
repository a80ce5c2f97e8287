package mover

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedMover records its calls; an Acquire waits for gate when it is set.
type gatedMover struct {
	mu    sync.Mutex
	calls []string
	gate  chan struct{}
}

func (m *gatedMover) record(s string) {
	m.mu.Lock()
	m.calls = append(m.calls, s)
	m.mu.Unlock()
}

func (m *gatedMover) log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.calls, " ")
}

func (m *gatedMover) Acquire(_ context.Context, t Tenure) error {
	if m.gate != nil {
		<-m.gate
	}
	if t.Deadline.IsZero() {
		m.record("acquire")
	} else {
		m.record("acquire-fenced")
	}
	return nil
}

func (m *gatedMover) Release(context.Context) error {
	m.record("release")
	return nil
}

func (m *gatedMover) Holder(context.Context) (Holding, error) { return Holding{}, nil }
func (m *gatedMover) Settle() time.Duration                   { return 0 }
func (m *gatedMover) Close() error                            { m.record("close"); return nil }

// start runs r's worker, its results on the returned channel.
func start(r *Runner) <-chan Result {
	out := make(chan Result, 16)
	go r.Run(func(res Result) bool { out <- res; return true })
	return out
}

// TestRunnerLatestWish: wishes that flap while an Acquire blocks end in the
// last one asked for; a Release that is the latest wish lets the
// addresses go (LetGo) unless the vhid holds again, an older result waits.
func TestRunnerLatestWish(t *testing.T) {
	gate := make(chan struct{})
	m := &gatedMover{gate: gate}
	r := NewRunner(m)
	results := start(r)
	r.Ask(true, time.Time{})
	if !r.Routed() {
		t.Fatal("not routed after an Acquire was asked for")
	}
	// The worker is in the Acquire (or about to be): flap.
	r.Ask(false, time.Time{})
	r.Ask(true, time.Now().Add(time.Minute))
	r.Ask(false, time.Time{})
	close(gate)
	var last Result
	for last.Seq != 4 {
		res := <-results
		if next := r.Done(res, false); res.Seq != 4 && next != Wait {
			t.Errorf("result %+v of an older wish: %v, want Wait", res, next)
		} else if res.Seq == 4 && next != LetGo {
			t.Errorf("the latest Release: %v, want LetGo", next)
		}
		last = res
	}
	if last.Acquire || r.Routed() {
		t.Errorf("last result %+v, routed %v: want a Release, not routed", last, r.Routed())
	}
	if got := m.log(); !strings.HasSuffix(got, "release") || strings.Count(got, "acquire") > 2 {
		t.Errorf("calls %q: want at most the first Acquire and one more, ending in a release", got)
	}

	// A Release while the vhid holds again leaves the addresses.
	r.Ask(true, time.Time{})
	r.Ask(false, time.Time{})
	for res := range results {
		if next := r.Done(res, true); next != Wait {
			t.Errorf("Done(%+v, hold) = %v, want Wait", res, next)
		}
		if res.Seq == 6 {
			break
		}
	}
	if !r.Routed() {
		t.Error("a Release done while holding cleared routed")
	}
	if cerr, rerr := r.Stop(); cerr != nil || rerr != nil {
		t.Errorf("Stop = %v, %v", cerr, rerr)
	}
	if got := m.log(); !strings.HasSuffix(got, "close release") {
		t.Errorf("calls %q: Stop closes, then releases", got)
	}
}

// TestRunnerWithdraw: a leaving vhid with routes withdraws them first, bows
// out once (BowOut) and is not announced again; one without routes does
// not wait.
func TestRunnerWithdraw(t *testing.T) {
	m := &gatedMover{}
	r := NewRunner(m)
	if r.Withdraw() {
		t.Fatal("Withdraw without routes: true, want false")
	}
	results := start(r)
	r.Ask(true, time.Time{})
	if next := r.Done(<-results, true); next != Wait {
		t.Fatalf("Acquire: %v, want Wait", next)
	}
	if !r.Withdraw() {
		t.Fatal("Withdraw with routes: false")
	}
	r.Ask(true, time.Time{}) // ignored: leaving
	if next := r.Done(<-results, true); next != BowOut {
		t.Fatalf("the withdrawal: %v, want BowOut", next)
	}
	if cerr, rerr := r.Stop(); cerr != nil || rerr != nil {
		t.Errorf("Stop = %v, %v", cerr, rerr)
	}
	if got := m.log(); got != "acquire release close release" {
		t.Errorf("calls %q, want acquire release close release", got)
	}
}
