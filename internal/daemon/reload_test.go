package daemon

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/config"
)

// TestReload: unchanged vhids are left alone (no advert, no address
// change, no event), an added one starts, a removed one leaves and its
// addresses go, a changed advskew is advertised at once, a bad
// configuration changes nothing.
func TestReload(t *testing.T) {
	f := newFakeHost()
	var mu sync.Mutex
	var notes []string
	notify := func(s string) {
		mu.Lock()
		notes = append(notes, strings.SplitN(s, "\n", 2)[0])
		mu.Unlock()
	}
	d, err := New(testConfig(), f.host(), Options{Notify: notify})
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
	sub, err := d.Subscribe(bg)
	if err != nil {
		t.Fatal(err)
	}
	<-sub.C // the snapshot

	// Unchanged, ten times: nothing happens but the reload events.
	n := f.count()
	for range 10 {
		res, err := d.Reload(bg, testConfig())
		if err != nil || res.Unchanged != 1 || len(res.Added)+len(res.Removed)+len(res.Changed) != 0 {
			t.Fatalf("Reload = %+v, %v", res, err)
		}
	}
	for _, op := range f.opsSince(n) {
		if !strings.HasPrefix(op, "advert ") && !strings.HasPrefix(op, "refresh ") {
			t.Errorf("an unchanged reload did %q", op)
		}
	}
	for range 10 {
		if e := <-sub.C; e.Type != "reload" {
			t.Errorf("event %+v, want only reloads", e)
		}
	}

	// Added: vhid 101 with its address; it starts as BACKUP.
	two := testConfig()
	two.VHIDs = append(two.VHIDs, config.VHID{Interface: "eth0", VHID: 101, AdvBase: 1, AdvSkew: 0, Password: "x",
		Addresses: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")}, Origin: "rc.conf:3"})
	res, err := d.Reload(bg, two)
	if err != nil || !slices.Equal(res.Added, []string{"101@eth0"}) || res.Unchanged != 1 {
		t.Fatalf("add: %+v, %v", res, err)
	}
	st, _ := d.Status(bg)
	if len(st.VHIDs) != 2 || st.VHIDs[0].State != "MASTER" || st.VHIDs[1].State != "BACKUP" {
		t.Fatalf("after the add: %+v", st.VHIDs)
	}

	// Changed advskew of the master: advertised at once.
	changed := testConfig()
	changed.VHIDs[0].AdvSkew = 150
	changed.VHIDs = append(changed.VHIDs, two.VHIDs[1])
	n = f.count()
	if res, err = d.Reload(bg, changed); err != nil || !slices.Equal(res.Changed, []string{"100@eth0"}) {
		t.Fatalf("change: %+v, %v", res, err)
	}
	waitOps(t, f, n, "advert if2 192.0.2.22->224.0.0.18 advbase=1 advskew=150")
	if st, _ = d.Status(bg); st.VHIDs[0].State != "MASTER" {
		t.Errorf("the changed master is %s", st.VHIDs[0].State)
	}

	// A bad configuration: refused, nothing changes.
	bad := testConfig()
	bad.VHIDs[0].Interface = "eth9"
	if _, err := d.Reload(bg, bad); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "interface eth9") {
		t.Errorf("bad reload: %v", err)
	}
	if st, _ = d.Status(bg); len(st.VHIDs) != 2 || st.VHIDs[0].AdvSkew != 150 {
		t.Errorf("after the bad reload: %+v", st.VHIDs)
	}

	// Removed: vhid 100 (the master) bows out and goes, its address
	// released once a new master is heard.
	only101 := &config.Config{VHIDs: []config.VHID{two.VHIDs[1]}, IfDownDemotion: 240}
	n = f.count()
	if res, err = d.Reload(bg, only101); err != nil || !slices.Equal(res.Removed, []string{"100@eth0"}) {
		t.Fatalf("remove: %+v, %v", res, err)
	}
	waitOps(t, f, n, "advert if2 192.0.2.22->224.0.0.18 advbase=255 advskew=255")
	if !f.holds(vip50) {
		t.Error("the removed master released its address before a new master was heard")
	}
	f.in <- advert("lampros", 1, 100, 255)
	deadline = time.Now().Add(5 * time.Second)
	for {
		st, _ = d.Status(bg)
		if len(st.VHIDs) == 1 && !f.holds(vip50) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the removed vhid did not go: %+v, holds %v", st.VHIDs, f.holds(vip50))
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	if !slices.Contains(notes, "RELOADING=1") || notes[len(notes)-1] != "READY=1" && !strings.HasPrefix(notes[len(notes)-1], "STATUS=") {
		t.Errorf("notifications %q", notes)
	}
	mu.Unlock()
	d.Unsubscribe(sub)
	cancel()
	<-done
	_ = api.Version
}
