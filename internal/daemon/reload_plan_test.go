package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
)

// fakeVMACs are the fake host's virtual MAC interfaces: Ensure fails with
// fail when set.
type fakeVMACs struct {
	f    *fakeHost
	fail error
}

func (m *fakeVMACs) Ensure(parent string, vhid uint8) (Link, error) {
	m.f.record("vmac ensure %s %d", parent, vhid)
	if m.fail != nil {
		return Link{}, m.fail
	}
	return Link{Index: 50 + int(vhid)%100, Name: fmt.Sprintf("vmac%d", vhid), MAC: eth0.MAC, Up: true}, nil
}

func (m *fakeVMACs) Remove(name string) error { m.f.record("vmac remove %s", name); return nil }

// withVHID is testConfig with vhid 101 (its own address) added, in
// virtual MAC mode if vmac.
func withVHID(vmac bool) *config.Config {
	cfg := testConfig()
	cfg.VHIDs = append(cfg.VHIDs, config.VHID{Interface: "eth0", VHID: 101, AdvBase: 1, Password: "x", VirtualMAC: vmac,
		Addresses: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")}, Origin: "rc.conf:3"})
	return cfg
}

// TestReloadPlan: the plan says what a reload does, or refuses it with the
// reasons, and changes nothing, neither the daemon nor the host.
func TestReloadPlan(t *testing.T) {
	f := newFakeHost()
	h := f.host()
	h.VirtualMACs = &fakeVMACs{f: f}
	d, err := New(testConfig(), h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v100 := d.vhosts[0]
	type want = planWant
	vmac := testConfig()
	vmac.VHIDs[0].VirtualMAC = true
	skew := testConfig()
	skew.VHIDs[0].AdvSkew = 10
	twice := withVHID(false)
	twice.VHIDs[1].VHID = 100
	v6 := testConfig()
	v6.VHIDs[0].Addresses = append(v6.VHIDs[0].Addresses, netip.MustParsePrefix("2001:db8::50/128"))
	eth9 := withVHID(false)
	eth9.VHIDs[1].Interface = "eth9"
	badSkew := testConfig()
	badSkew.VHIDs[0].AdvBase = 0
	for _, tc := range []struct {
		name string
		cfg  *config.Config
		want want
	}{
		{"unchanged", testConfig(), want{kept: []string{"100@eth0"}}},
		{"changed in place", skew, want{kept: []string{"100@eth0"}}},
		{"added", withVHID(false), want{kept: []string{"100@eth0"}, added: []string{"101@eth0"}}},
		{"removed", &config.Config{VHIDs: withVHID(false).VHIDs[1:]}, want{added: []string{"101@eth0"}, removed: []string{"100@eth0"}}},
		{"virtual MAC toggled", vmac, want{restarted: []string{"100@eth0"}}},
		{"no vhid", &config.Config{}, want{err: "no vhid configured"}},
		{"twice", twice, want{err: "rc.conf:3"}},
		{"no IPv6 socket", v6, want{err: "no v6 protocol socket"}},
		{"no interface", eth9, want{err: "interface eth9"}},
		{"bad advbase", badSkew, want{err: "advbase"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := checkPlan(t, d, f, tc.cfg, tc.want)
			if len(d.vhosts) != 1 || d.vhosts[0] != v100 || v100.removing || v100.cfg.AdvSkew != 200 || v100.el.State() != v100.state() {
				t.Errorf("planning changed the daemon: %+v", d.vhosts)
			}
			if p == nil {
				return
			}
			for _, s := range p.steps {
				if s.next.iface != nil || s.vmac != nil {
					t.Errorf("%s: the plan attached it or made its virtual MAC", s.next.key())
				}
			}
		})
	}
}

// planWant is what a reload plan does, vhid by vhid, or the error it
// fails with.
type planWant struct {
	added, kept, restarted, removed []string
	err                             string
}

// checkPlan plans cfg on d (whose host is f) and compares the plan with
// want: planning does nothing to the host, and fails with want.err when
// that is set. It returns the plan (nil when it failed).
func checkPlan(t *testing.T, d *Daemon, f *fakeHost, cfg *config.Config, want planWant) *reloadPlan {
	t.Helper()
	n := f.count()
	p, err := d.plan(cfg)
	if ops := f.opsSince(n); len(ops) > 0 {
		t.Errorf("planning did %q", ops)
	}
	if want.err != "" {
		if err == nil || !strings.Contains(err.Error(), want.err) {
			t.Fatalf("plan: %v, want an error with %q", err, want.err)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var got planWant
	for _, s := range p.steps {
		k := s.next.key().String()
		switch {
		case s.old == nil:
			got.added = append(got.added, k)
		case s.restart:
			got.restarted = append(got.restarted, k)
		default:
			got.kept = append(got.kept, k)
		}
	}
	for _, v := range p.removed {
		got.removed = append(got.removed, v.key().String())
	}
	if !slices.Equal(got.added, want.added) || !slices.Equal(got.kept, want.kept) ||
		!slices.Equal(got.restarted, want.restarted) || !slices.Equal(got.removed, want.removed) {
		t.Errorf("plan %+v, want %+v", got, want)
	}
	return p
}

// masterDaemon runs a daemon of testConfig on f, with virtual MACs, and
// makes vhid 100 MASTER.
func masterDaemon(t *testing.T, f *fakeHost, vm *fakeVMACs) *Daemon {
	t.Helper()
	h := f.host()
	h.VirtualMACs = vm
	d, err := New(testConfig(), h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, _ := started(t, d, f, ctx)
	t.Cleanup(func() { cancel(); d.Abort(); <-done })
	f.in <- advert("lampros", 255, 255, 255) // the peer bows out: MASTER
	deadline := time.Now().Add(5 * time.Second)
	for !f.holds(vip50) {
		if time.Now().After(deadline) {
			t.Fatal("not MASTER")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return d
}

// TestReloadVirtualMACBowsOut: a MASTER whose virtual MAC mode a reload
// toggles bows out (its advert of advbase 255 advskew 255 goes out) before
// it releases its addresses, then starts afresh.
func TestReloadVirtualMACBowsOut(t *testing.T) {
	f := newFakeHost()
	d := masterDaemon(t, f, &fakeVMACs{f: f})
	cfg := testConfig()
	cfg.VHIDs[0].VirtualMAC = true
	n := f.count()
	res, err := d.Reload(context.Background(), cfg)
	if err != nil || !slices.Equal(res.Changed, []string{"100@eth0"}) {
		t.Fatalf("Reload = %+v, %v", res, err)
	}
	ops := f.opsSince(n)
	bowOut := slices.Index(ops, "advert if2 192.0.2.22->224.0.0.18 advbase=255 advskew=255")
	release := slices.Index(ops, "set eth0 managed=[192.0.2.50/32] want=[]")
	if bowOut < 0 || release < 0 || bowOut > release {
		t.Errorf("bow-out advert at %d, release at %d (want the advert first): %q", bowOut, release, ops)
	}
	if !slices.Contains(ops, "vmac ensure eth0 100") || !slices.Contains(ops[release:], "join if2") {
		t.Errorf("not started afresh on its virtual MAC interface: %q", ops)
	}
}

// TestReloadVirtualMACFailsRefused: a reload whose virtual MAC interface
// cannot be made is refused and changes nothing: the vhid it would remove
// stays MASTER, no bow-out, no address change.
func TestReloadVirtualMACFailsRefused(t *testing.T) {
	f := newFakeHost()
	vm := &fakeVMACs{f: f, fail: errors.New("macvlan: no such device")}
	d := masterDaemon(t, f, vm)
	cfg := &config.Config{VHIDs: withVHID(true).VHIDs[1:]} // 100 goes, 101 (virtual MAC) comes
	n := f.count()
	res, err := d.Reload(context.Background(), cfg)
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "no such device") {
		t.Fatalf("Reload = %+v, %v; want refused", res, err)
	}
	for _, op := range f.opsSince(n) {
		if op != "vmac ensure eth0 101" && !strings.HasPrefix(op, "refresh ") &&
			op != "advert if2 192.0.2.22->224.0.0.18 advbase=1 advskew=200" {
			t.Errorf("a refused reload did %q", op)
		}
	}
	st, err := d.Status(context.Background())
	if err != nil || len(st.VHIDs) != 1 || st.VHIDs[0].VHID != 100 || st.VHIDs[0].State != "MASTER" || !f.holds(vip50) {
		t.Errorf("after the refused reload: %+v, %v, holds %v", st.VHIDs, err, f.holds(vip50))
	}
}
