package daemon

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/metrics"
	"github.com/carpd/carpd/internal/stream"
)

// TestReadsWhileLoopBlocked: status, stats and the health check answer at
// once from the published snapshot while the loop is busy (here, blocked
// in an operator's call); the health check says that it is stuck once it
// has been busy for more than stuckAfter.
func TestReadsWhileLoopBlocked(t *testing.T) {
	defer func(was time.Duration) { stuckAfter = was }(stuckAfter)
	stuckAfter = 200 * time.Millisecond
	f := newFakeHost()
	d, err := New(testConfig(), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := d.Healthy(); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("Healthy = %v before Run", err)
	}
	done, _ := started(t, d, f, ctx)
	waitFor(t, "healthy", func() bool { return d.Healthy() == nil })
	block, blocked := make(chan struct{}), make(chan struct{})
	go func() {
		_ = d.do(context.Background(), func(time.Time) { close(blocked); <-block })
	}()
	<-blocked
	rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
	defer rcancel()
	start := time.Now()
	st, err := d.Status(rctx)
	if err != nil || len(st.VHIDs) != 1 || st.VHIDs[0].State != "BACKUP" {
		t.Errorf("Status while the loop is blocked = %+v, %v", st.VHIDs, err)
	}
	if _, err := d.Stats(rctx); err != nil {
		t.Errorf("Stats while the loop is blocked: %v", err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("the reads took %v: they waited for the loop", took)
	}
	// What a scraper gets meanwhile: the metrics at once, and carpd_up
	// and /healthz tell that the loop is stuck once it is.
	h := metrics.Handler(d, testLog(&lab.Buffer{}))
	get := func(path string) (int, string) {
		start := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Errorf("%s took %v: it waited for the loop", path, took)
		}
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "carpd_up 1") || !strings.Contains(body, `carpd_vhid_state{af="",iface="eth0",proto="carp",vhid="100"} 1`) {
		t.Errorf("/metrics with the loop just blocked: %d\n%s", code, body)
	}
	time.Sleep(stuckAfter + 100*time.Millisecond)
	if err := d.Healthy(); err == nil || !strings.Contains(err.Error(), "busy with one input") {
		t.Errorf("Healthy = %v with the loop blocked for %v", err, stuckAfter+100*time.Millisecond)
	}
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "busy with one input") {
		t.Errorf("/healthz with the loop stuck: %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "carpd_up 0") || !strings.Contains(body, "carpd_vhid_state{") {
		t.Errorf("/metrics with the loop stuck: %d\n%s", code, body)
	}
	close(block)
	waitFor(t, "healthy again", func() bool { return d.Healthy() == nil })
	cancel()
	<-done
	if _, err := d.Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Status after Run = %v, want ErrNotRunning", err)
	}
	if err := d.Healthy(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Healthy after Run = %v, want ErrNotRunning", err)
	}
}

// TestSnapshotPublished: an operator's change shows in the status read
// right after it; adverts of the same master move the counters that
// status reads without a new snapshot (no per-advert build), and a new
// master's adverts make one.
func TestSnapshotPublished(t *testing.T) {
	f := newFakeHost()
	d, err := New(testConfig(), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, _ := started(t, d, f, ctx)
	bg := context.Background()
	if _, err := d.Demote(bg, 7, "test"); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.Status(bg); st.Demotion != 7 || st.VHIDs[0].AdvertisedSkew != 207 {
		t.Errorf("after Demote(7): demotion %d, advertised skew %d; want 7 and 207", st.Demotion, st.VHIDs[0].AdvertisedSkew)
	}
	f.in <- advert("lampros", 1, 100, 255)
	waitFor(t, "the first advert", func() bool { st, _ := d.Status(bg); return st.VHIDs[0].Counters.ReceivedInet == 1 })
	first := d.pub.snap.Load()
	st, _ := d.Status(bg)
	if st.VHIDs[0].Heard == nil || !strings.Contains(st.VHIDs[0].Why, "192.0.2.21") {
		t.Fatalf("status after the first advert: %+v", st.VHIDs[0])
	}
	heard := st.VHIDs[0].Heard.Time
	for range 5 {
		f.in <- advert("lampros", 1, 100, 255)
	}
	waitFor(t, "five more adverts", func() bool { st, _ := d.Status(bg); return st.VHIDs[0].Counters.ReceivedInet == 6 })
	if d.pub.snap.Load() != first {
		t.Error("adverts of the same master built a new snapshot")
	}
	if st, _ := d.Status(bg); !st.VHIDs[0].Heard.Time.After(heard) {
		t.Errorf("the time last heard did not move: %v, first %v", st.VHIDs[0].Heard.Time, heard)
	}
	stats, _ := d.Stats(bg)
	if stats.SentInet != st.VHIDs[0].Counters.SentInet {
		t.Errorf("Stats sent %d, status %d", stats.SentInet, st.VHIDs[0].Counters.SentInet)
	}
	f.in <- advert("lampros", 1, 50, 255) // the master advertises another skew
	waitFor(t, "the new skew", func() bool { st, _ := d.Status(bg); return strings.Contains(st.VHIDs[0].Why, "advskew 50") })
	cancel()
	<-done
}

// TestSubscriberCap: carpd serves stream.MaxSubs readers of the event stream;
// the next is refused with a clear error until one ends.
func TestSubscriberCap(t *testing.T) {
	f := newFakeHost()
	d, err := New(testConfig(), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, _ := started(t, d, f, ctx)
	bg := context.Background()
	var subs []*Sub
	for range stream.MaxSubs {
		s, err := d.Subscribe(bg)
		if err != nil {
			t.Fatalf("reader %d: %v", len(subs)+1, err)
		}
		subs = append(subs, s)
	}
	s, err := d.Subscribe(bg)
	if !errors.Is(err, ErrTooManyReaders) || s != nil || !strings.Contains(err.Error(), "64 are reading") {
		t.Fatalf("reader %d: %v, %v; want ErrTooManyReaders", stream.MaxSubs+1, s, err)
	}
	d.Unsubscribe(subs[0])
	if _, err := d.Subscribe(bg); err != nil {
		t.Errorf("a reader after one ended: %v", err)
	}
	cancel()
	<-done
}

// waitFor waits up to 5 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
