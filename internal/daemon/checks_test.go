package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/config"
)

// TestChecks: a failing host check demotes the host by its weight, a
// failing vhid check demotes its vhid alone, a release check releases its
// vhid (a MASTER bows out); up again, everything is given back.
func TestChecks(t *testing.T) {
	f := newFakeHost()
	cfg := testConfig()
	cfg.Checks = []config.Check{
		{Name: "host", Kind: config.CheckTCP, Target: "127.0.0.1:1", Weight: 50},
		{Name: "web", Kind: config.CheckTCP, Target: "127.0.0.1:2", Weight: 30, VHIDs: []config.CheckVHID{{VHID: 100}}},
		{Name: "db", Kind: config.CheckTCP, Target: "127.0.0.1:3", Release: true, VHIDs: []config.CheckVHID{{VHID: 100, Interface: "eth0"}}},
	}
	d, err := New(cfg, f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, _ := started(t, d, f, ctx)
	bg := context.Background()
	f.in <- advert("lampros", 255, 255, 255) // MASTER
	deadline := time.Now().Add(5 * time.Second)
	for !f.holds(vip50) {
		if time.Now().After(deadline) {
			t.Fatal("not MASTER")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The results reach the loop on their own channel: wait for them.
	waitStatus := func(what string, ok func(api.Status) bool) api.Status {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, err := d.Status(bg)
			if err == nil && ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, st)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	d.CheckChanged(context.Background(), "host", false, 0, "refused")
	d.CheckChanged(context.Background(), "web", false, 0, "refused")
	st := waitStatus("demoted", func(st api.Status) bool {
		v := st.VHIDs[0]
		return st.Demotion == 50 && v.Demotion == 80 && v.AdvertisedSkew == 240 && len(st.Checks) == 3
	})
	for _, c := range st.Checks {
		if want := c.Name == "db"; c.Up != want {
			t.Errorf("check %s up = %v", c.Name, c.Up)
		}
	}
	n := f.count()
	d.CheckChanged(context.Background(), "db", false, 0, "refused")
	waitOps(t, f, n, "advert if2 192.0.2.22->224.0.0.18 advbase=255 advskew=255")
	waitStatus("released", func(st api.Status) bool { return st.VHIDs[0].Released })
	f.in <- advert("lampros", 1, 100, 255) // the new master
	deadline = time.Now().Add(5 * time.Second)
	for {
		if st, _ = d.Status(bg); st.VHIDs[0].State == "BACKUP" && !f.holds(vip50) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("released master: %+v", st.VHIDs[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, name := range []string{"host", "web", "db"} {
		d.CheckChanged(context.Background(), name, true, 0, "")
	}
	waitStatus("all up", func(st api.Status) bool {
		return st.Demotion == 0 && st.VHIDs[0].Demotion == 0 && !st.VHIDs[0].Released
	})
	cancel()
	<-done
}

// TestCheckChangedHonoursContext: a report that finds the loop's queue
// full (the loop busy, or not running yet) returns when its context is
// done: the checks runner can stop a check that is reporting.
func TestCheckChangedHonoursContext(t *testing.T) {
	d, err := New(testConfig(), newFakeHost().host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range cap(d.checkResults) {
		d.CheckChanged(context.Background(), "web", false, 0, "refused")
	}
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() {
		d.CheckChanged(ctx, "web", true, 0, "")
		close(returned)
	}()
	cancel()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("CheckChanged blocks after its context is done")
	}
}
