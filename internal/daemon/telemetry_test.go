package daemon

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/config"
)

// twoIfaceHost is the fake host with a second interface, eth1.
type twoIfaceHost struct{ *fakeHost }

var eth1 = Link{Index: 3, Name: "eth1", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, Up: true}

func (h twoIfaceHost) Link(name string) (Link, error) {
	if name == "eth1" {
		return eth1, nil
	}
	return h.fakeHost.Link(name)
}

func (h twoIfaceHost) host() *Host {
	hh := h.fakeHost.host()
	hh.Links = h
	return hh
}

// TestVHIDDemotion: two vhids on two interfaces, a failing check of one
// of them: that vhid's status carries the check's demotion, the other's
// and the host's stay 0.
func TestVHIDDemotion(t *testing.T) {
	h := twoIfaceHost{newFakeHost()}
	cfg := testConfig()
	cfg.VHIDs = append(cfg.VHIDs, config.VHID{Interface: "eth1", VHID: 101, AdvBase: 1, AdvSkew: 100, Password: "x",
		Addresses: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")}, Origin: "rc.conf:3"})
	cfg.Checks = []config.Check{{Name: "web", Kind: config.CheckTCP, Target: "127.0.0.1:2", Weight: 30,
		VHIDs: []config.CheckVHID{{VHID: 101, Interface: "eth1"}}}}
	d, err := New(cfg, h.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, _ := started(t, d, h.fakeHost, ctx)
	d.CheckChanged(context.Background(), "web", false, 0, "refused")
	demotions := func(st api.Status) map[string]int {
		m := map[string]int{"host": st.Demotion}
		for _, v := range st.VHIDs {
			m[v.Interface] = v.Demotion
		}
		return m
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := d.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := demotions(st)
		if got["eth1"] == 30 {
			if got["host"] != 0 || got["eth0"] != 0 {
				t.Errorf("demotions %v: want only 101@eth1's", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failing check did not demote 101@eth1: %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The event stream's snapshot says the same.
	sub, err := d.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e := <-sub.C
		want := map[string]int{"eth0": 0, "eth1": 30}[e.Interface]
		if e.Type != "snapshot" || e.Demotion == nil || *e.Demotion != want {
			t.Errorf("snapshot %+v (demotion %v), want demotion %d", e, e.Demotion, want)
		}
	}
	d.Unsubscribe(sub)
	cancel()
	<-done
}

// TestReloadResult: the counters carry the last reload's result and when
// the configuration in force was loaded (at start, then by a good
// reload); a refused reload keeps the time.
func TestReloadResult(t *testing.T) {
	f := newFakeHost()
	before := time.Now()
	d, err := New(testConfig(), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, _ := started(t, d, f, ctx)
	bg := context.Background()
	stats := func() api.Stats {
		t.Helper()
		st, err := d.Stats(bg)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := stats()
	start := st.ConfigLastReloadSuccess
	if !st.ConfigLastReloadSuccessful || start.Before(before) || start.After(time.Now()) {
		t.Fatalf("at start: %v %v, want true and the start's time", st.ConfigLastReloadSuccessful, start)
	}
	time.Sleep(2 * time.Millisecond)
	if _, err := d.Reload(bg, &config.Config{}); err == nil {
		t.Fatal("a configuration without vhids was accepted")
	}
	if st := stats(); st.ConfigLastReloadSuccessful || !st.ConfigLastReloadSuccess.Equal(start) {
		t.Errorf("after a refused reload: %v %v, want false and %v", st.ConfigLastReloadSuccessful, st.ConfigLastReloadSuccess, start)
	}
	if _, err := d.Reload(bg, testConfig()); err != nil {
		t.Fatal(err)
	}
	if st := stats(); !st.ConfigLastReloadSuccessful || !st.ConfigLastReloadSuccess.After(start) {
		t.Errorf("after a good reload: %v %v, want true and after %v", st.ConfigLastReloadSuccessful, st.ConfigLastReloadSuccess, start)
	}
	d.ReloadFailed() // the file did not parse: refused before Reload
	if st := stats(); st.ConfigLastReloadSuccessful {
		t.Error("ReloadFailed: still successful")
	}
	cancel()
	<-done
}
