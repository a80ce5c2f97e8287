package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/stream"
)

// TestOperatorAPI: status, forced state, the operator's demotion with its
// sources and the persistent one in the state file, the event stream.
func TestOperatorAPI(t *testing.T) {
	f := newFakeHost()
	state := filepath.Join(t.TempDir(), "state.json")
	var logs lab.Buffer
	d, err := New(testConfig(), f.host(), Options{Log: testLog(&logs), StateFile: state})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, _ := started(t, d, f, ctx)
	bg := context.Background()

	sub, err := d.Subscribe(bg)
	if err != nil {
		t.Fatal(err)
	}
	snap := <-sub.C
	if snap.Type != "snapshot" || snap.State != "BACKUP" || snap.VHID != 100 || snap.Interface != "eth0" || *snap.Demotion != 0 {
		t.Fatalf("snapshot %+v", snap)
	}

	st, err := d.Status(bg)
	if err != nil {
		t.Fatal(err)
	}
	v := st.VHIDs[0]
	if v.State != "BACKUP" || v.AdvSkew != 200 || v.Peer != "224.0.0.18" || v.LastChange == nil || v.LastChange.Reason != "initialization complete" ||
		!strings.HasPrefix(v.Why, "BACKUP: no master heard yet") {
		t.Errorf("status %+v", v)
	}
	f.in <- advert("lampros", 1, 100, 255)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ = d.Status(bg)
		if st.VHIDs[0].Heard != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the advert was not recorded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, want := st.VHIDs[0].Why, "BACKUP: master 192.0.2.21 advertises advbase 1 advskew 100, ours 200"; got != want {
		t.Errorf("why = %q, want %q", got, want)
	}

	// Forced MASTER; an unknown vhid and a bad state are refused.
	if st, err = d.Force(bg, 100, "", "master"); err != nil || st.VHIDs[0].State != "MASTER" {
		t.Fatalf("Force = %+v, %v", st.VHIDs[0].State, err)
	}
	if _, err := d.Force(bg, 7, "", "master"); !errors.Is(err, ErrUnknownVHID) {
		t.Errorf("Force(7) = %v", err)
	}
	if _, err := d.Force(bg, 100, "eth9", "master"); !errors.Is(err, ErrUnknownVHID) {
		t.Errorf("Force(100@eth9) = %v", err)
	}
	if _, err := d.Force(bg, 100, "", "init"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Force(init) = %v", err)
	}

	// Demotion: runtime and persistent, listed by source.
	if _, err := d.DemoteOperator(bg, api.DemoteRequest{Delta: 10, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	st, err = d.DemoteOperator(bg, api.DemoteRequest{Delta: 240, Reason: "patching", Persist: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Demotion != 250 || len(st.Demotions) != 2 || st.Demotions[0].Source != "operator" || st.Demotions[1].Source != "operator (persistent)" ||
		st.Demotions[1].Delta != 240 || st.Demotions[1].Reason != "patching" || st.VHIDs[0].AdvertisedSkew != 240 {
		t.Errorf("demotions %+v", st)
	}
	if data, err := os.ReadFile(state); err != nil || !strings.Contains(string(data), `"demotion":240,"reason":"patching"`) {
		t.Errorf("state file %s: %v", data, err)
	}
	for _, bad := range []api.DemoteRequest{{}, {Delta: 1, Clear: true}, {Delta: 5000}} {
		if _, err := d.DemoteOperator(bg, bad); !errors.Is(err, ErrBadRequest) {
			t.Errorf("DemoteOperator(%+v) = %v", bad, err)
		}
	}
	if st, err = d.DemoteOperator(bg, api.DemoteRequest{Clear: true}); err != nil || st.Demotion != 0 || len(st.Demotions) != 0 {
		t.Errorf("clear: %+v, %v", st, err)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after clear: %v", err)
	}

	// The events since the snapshot, numbered without gaps.
	var evs []api.Event
	for len(evs) < 7 {
		select {
		case e := <-sub.C:
			evs = append(evs, e)
		case <-time.After(5 * time.Second):
			t.Fatalf("events so far: %+v", evs)
		}
	}
	var types []string
	for i, e := range evs {
		if e.Seq != snap.Seq+uint64(i)+1 {
			t.Errorf("event %d seq %d, want %d", i, e.Seq, snap.Seq+uint64(i)+1)
		}
		types = append(types, e.Type)
	}
	if got := strings.Join(types, " "); got != "transition announce demotion demotion demotion demotion announce" &&
		!strings.HasPrefix(got, "transition announce demotion demotion demotion") {
		t.Errorf("event types %s", got)
	}
	d.Unsubscribe(sub)
	if _, ok := <-sub.C; ok {
		// Drain what was queued before the close.
		for range sub.C {
		}
	}
	cancel()
	f.in <- advert("lampros", 1, 100, 255)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPersistentDemotionAtStart: the state file's demotion applies before
// the first advert; a corrupt one stops Run.
func TestPersistentDemotionAtStart(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	if err := os.WriteFile(state, []byte(`{"version":1,"demotion":240,"reason":"patching","since":"2026-01-01T00:00:00Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFakeHost()
	d, err := New(testConfig(), f.host(), Options{StateFile: state})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, _ := started(t, d, f, ctx)
	st, err := d.Status(context.Background())
	if err != nil || st.Demotion != 240 || st.VHIDs[0].AdvertisedSkew != 240 || st.Demotions[0].Source != "operator (persistent)" {
		t.Errorf("status %+v, %v", st, err)
	}
	cancel()
	<-done

	if err := os.WriteFile(state, []byte(`{"demotion":`), 0o644); err != nil {
		t.Fatal(err)
	}
	f = newFakeHost()
	d, _ = New(testConfig(), f.host(), Options{StateFile: state})
	done, _ = started(t, d, f, context.Background())
	if err := <-done; err == nil || !strings.Contains(err.Error(), "state file") {
		t.Errorf("Run with a corrupt state file = %v", err)
	}
}

// TestLaggedReader: a reader that does not read is dropped, and the loop
// never waits for it.
func TestLaggedReader(t *testing.T) {
	f := newFakeHost()
	d, err := New(testConfig(), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, _ := started(t, d, f, ctx)
	sub, err := d.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range stream.Buffer + 10 {
		if _, err := d.Demote(context.Background(), 1-2*(i%2), "flood"); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the loop waited for the reader: %v", took)
	}
	n := 0
	for range sub.C {
		n++
	}
	if !sub.Lagged() || n != stream.Buffer+1 {
		t.Errorf("lagged %v after %d events, want true after %d", sub.Lagged(), n, stream.Buffer+1)
	}
	cancel()
	<-done
}
