package e2e

// Interop with ucarp 1.5.2 (Debian's package): the real ucarp and carpd on
// one segment, vhid 100, pass lampros, VIP 192.0.2.50, advbase 1. ucarp's
// up and down scripts add and remove the VIP and announce it with arping.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// backupMasterDown is the master-down interval of a backup with advbase 1
// and advskew 200, for carpd (FreeBSD: 3*advbase + advskew/256) and ucarp
// (deadratio*advbase + advskew/256, deadratio 3) alike.
const backupMasterDown = 3*time.Second + 200*time.Second/256

// ucarpStartMaster bounds the time a fresh ucarp with advskew 100 waits before
// it becomes MASTER, plus room for its up script.
const ucarpStartMaster = 3*time.Second + 100*time.Second/256 + 6*time.Second

// TestInteropUcarpMasterCarpdBackup: ucarp (advskew 100) is MASTER, carpd
// (advskew 200) joins as BACKUP. For 20 s nothing changes and neither
// rejects the other's adverts. Then ucarp's host dies and carpd takes over
// within its master-down interval + 1 s; the client's pings recover.
func TestInteropUcarpMasterCarpdBackup(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	p := newPeers(t, true)
	uc := p.startUcarp(100)
	if took, ok := p.waitSole(p.ucarp, ucarpStartMaster); !ok {
		t.Fatalf("ucarp does not hold the VIP alone after %v (holders %v)", took, p.holders())
	}
	cd := p.startCarpd(200)
	if err := waitOutput(cd, "INIT -> BACKUP", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ucBefore := ucarpStates(uc.Output())
	pr := pingVIP(t, p.client, 100*time.Millisecond)
	p.steady(p.ucarp, 20*time.Second)
	checkNoLoss(t, pr, 150)

	if got := ucarpStates(uc.Output()); !slices.Equal(got, ucBefore) {
		t.Errorf("ucarp changed state while carpd was BACKUP: %q, want %q", got, ucBefore)
	}
	if got, want := transitions(cd.Output()), []string{"carp: 100@eth0: INIT -> BACKUP (initialization complete)"}; !slices.Equal(got, want) {
		t.Errorf("carpd's transitions = %q, want %q", got, want)
	}
	checkClean(t, cd, uc)

	pr = pingVIP(t, p.client, 100*time.Millisecond)
	if !pr.waitAnswered(time.Now(), 5*time.Second) {
		t.Fatal("the client's pings of the VIP are not answered before ucarp's host dies")
	}
	killed := die(t, p.ucarp, uc)
	bound := backupMasterDown + time.Second
	took, ok := waitHolds(t, p.carpd, killed, bound+5*time.Second)
	if !ok {
		t.Fatalf("carpd does not hold the VIP %v after ucarp's host died", took)
	}
	if took > bound {
		t.Errorf("carpd took the VIP %v after ucarp's host died, want within %v", took, bound)
	}
	if err := waitOutput(cd, "BACKUP -> MASTER (master timed out)", time.Second); err != nil {
		t.Error(err)
	}
	rec := pr.waitRecovered(t, killed.Add(took), 5*time.Second)
	t.Logf("carpd took over %v after ucarp's host died (bound %v); first answered ping sent %v after that", took, bound, rec)
	mac, _, err := p.client.Neigh(vip)
	if err != nil {
		t.Fatal(err)
	}
	if mac.String() != p.carpd.MAC.String() {
		t.Errorf("client's ARP entry for %v is %v, want carpd's %v", vip, mac, p.carpd.MAC)
	}
}

// ucarpLateness is how much later than its nominal master-down interval
// ucarp 1.5.2 takes over, scripts included. It reads adverts through a
// pcap handle that hands them over only on its 1 s buffer timeout, so it
// restarts its master-down timer up to 1 s late, and it checks that timer
// only when its 1 s poll(2) returns. Measured: 4.5 to 5.9 s after the
// master's death for a nominal 3.78 s.
const ucarpLateness = 3 * time.Second

// TestInteropCarpdMasterUcarpBackup: carpd (advskew 100) is MASTER, ucarp
// (advskew 200) joins as BACKUP. For 20 s nothing changes and neither
// rejects the other's adverts. Then carpd's host dies and ucarp takes over
// within its own master-down interval + ucarpLateness; the client's pings
// recover.
func TestInteropCarpdMasterUcarpBackup(t *testing.T) {
	p := newPeers(t, true)
	cd := p.startCarpd(100)
	if took, ok := p.waitSole(p.carpd, 10*time.Second); !ok {
		t.Fatalf("carpd does not hold the VIP alone after %v (holders %v)", took, p.holders())
	}
	uc := p.startUcarp(200)
	if err := waitOutput(uc, "Switching to state: BACKUP", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// ucarp runs its down script (which removes the VIP from its host)
	// right after that line: carpd's host alone holds the VIP then.
	if took, ok := p.waitSole(p.carpd, 5*time.Second); !ok {
		t.Fatalf("ucarp BACKUP: the VIP held by %v %v later, want only carpd", p.holders(), took)
	}
	ucBefore := ucarpStates(uc.Output())
	cdBefore := transitions(cd.Output())
	pr := pingVIP(t, p.client, 100*time.Millisecond)
	p.steady(p.carpd, 20*time.Second)
	checkNoLoss(t, pr, 150)

	if got, want := ucarpStates(uc.Output()), []string{"BACKUP"}; !slices.Equal(got, want) || !slices.Equal(ucBefore, want) {
		t.Errorf("ucarp's states = %q, want only %q", got, want)
	}
	want := []string{
		"carp: 100@eth0: INIT -> BACKUP (initialization complete)",
		"carp: 100@eth0: BACKUP -> MASTER (master timed out)",
	}
	if got := transitions(cd.Output()); !slices.Equal(got, want) || !slices.Equal(cdBefore, want) {
		t.Errorf("carpd's transitions = %q, want %q", got, want)
	}
	checkClean(t, cd, uc)

	pr = pingVIP(t, p.client, 100*time.Millisecond)
	if !pr.waitAnswered(time.Now(), 5*time.Second) {
		t.Fatal("the client's pings of the VIP are not answered before carpd's host dies")
	}
	killed := die(t, p.carpd, cd)
	bound := backupMasterDown + ucarpLateness
	took, ok := waitHolds(t, p.ucarp, killed, bound+5*time.Second)
	if !ok {
		t.Fatalf("ucarp does not hold the VIP %v after carpd's host died", took)
	}
	if took > bound {
		t.Errorf("ucarp took the VIP %v after carpd's host died, want within %v", took, bound)
	}
	if got := ucarpStates(uc.Output()); !slices.Equal(got, []string{"BACKUP", "MASTER"}) {
		t.Errorf("ucarp's states = %q, want BACKUP, MASTER", got)
	}
	rec := pr.waitRecovered(t, killed.Add(took), 5*time.Second)
	t.Logf("ucarp took over %v after carpd's host died (bound %v); first answered ping sent %v after that", took, bound, rec)
	mac, _, err := p.client.Neigh(vip)
	if err != nil {
		t.Fatal(err)
	}
	if mac.String() != p.ucarp.MAC.String() {
		t.Errorf("client's ARP entry for %v is %v, want ucarp's %v", vip, mac, p.ucarp.MAC)
	}
}

// TestInteropCarpdJoinsUcarpMaster: carpd with a better advskew (50) joins
// a cluster where ucarp (advskew 100) is MASTER. With --preempt it takes
// the VIP over and ucarp goes BACKUP, running its down script, so that
// exactly one host holds the VIP; without, carpd stays BACKUP.
func TestInteropCarpdJoinsUcarpMaster(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	t.Run("preempt", func(t *testing.T) {
		p := newPeers(t, true)
		uc := p.startUcarp(100)
		if took, ok := p.waitSole(p.ucarp, ucarpStartMaster); !ok {
			t.Fatalf("ucarp does not hold the VIP alone after %v (holders %v)", took, p.holders())
		}
		cd := p.startCarpd(50, "--preempt")
		// carpd goes BACKUP at once, preempts on ucarp's next advert (at
		// most 1.4 s later); ucarp then hears a better advert.
		took, ok := p.waitSole(p.carpd, 6*time.Second)
		if !ok {
			t.Fatalf("carpd does not hold the VIP alone %v after it started (holders %v)", took, p.holders())
		}
		t.Logf("carpd alone holds the VIP %v after it started", took)
		if err := waitOutput(cd, "BACKUP -> MASTER (preempting a slower master)", time.Second); err != nil {
			t.Error(err)
		}
		p.steady(p.carpd, 5*time.Second)
		if got, want := ucarpStates(uc.Output()), []string{"BACKUP", "MASTER", "BACKUP"}; !slices.Equal(got, want) {
			t.Errorf("ucarp's states = %q, want %q", got, want)
		}
		if got := transitions(cd.Output()); len(got) != 2 {
			t.Errorf("carpd's transitions = %q, want INIT -> BACKUP, BACKUP -> MASTER", got)
		}
		checkClean(t, cd, uc)
	})
	t.Run("no-preempt", func(t *testing.T) {
		p := newPeers(t, true)
		uc := p.startUcarp(100)
		if took, ok := p.waitSole(p.ucarp, ucarpStartMaster); !ok {
			t.Fatalf("ucarp does not hold the VIP alone after %v (holders %v)", took, p.holders())
		}
		cd := p.startCarpd(50)
		if err := waitOutput(cd, "INIT -> BACKUP", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		p.steady(p.ucarp, 10*time.Second)
		if got, want := ucarpStates(uc.Output()), []string{"BACKUP", "MASTER"}; !slices.Equal(got, want) {
			t.Errorf("ucarp's states = %q, want %q", got, want)
		}
		if got, want := transitions(cd.Output()), []string{"carp: 100@eth0: INIT -> BACKUP (initialization complete)"}; !slices.Equal(got, want) {
			t.Errorf("carpd's transitions = %q, want %q", got, want)
		}
		checkClean(t, cd, uc)
	})
}

// TestInteropEqualSkew: carpd and ucarp both with advskew 100. carpd
// breaks ties as ucarp does (a MASTER yields to an equal advert only from
// a lower source address, compared from the last byte). The pair starts
// together and settles; then a split (both switch ports isolated, carrier
// up) makes both MASTER, and the heal makes each hear the other's equal
// adverts. The pair must settle again with one holder, the one with the
// lower address, the VIP held at every moment (polled every 20 ms), and
// then make no transition at all in equalSteady, the VIP held by that one
// host alone throughout. Both address orders. (With FreeBSD's rule, as
// carpd had before, carpd on the lower address yielded at the heal to
// ucarp's equal advert while ucarp yielded to the lower source, and no
// host held the VIP until carpd's master-down timer fired.)
func TestInteropEqualSkew(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	// equalSettle is the time one host alone must hold the VIP to count
	// as settled: over two adverts at advbase 1, advskew 100 (1.39 s).
	// equalSteady is the window after it: over two of the loser's
	// master-down intervals (3 x 1.39 s + 0.39 s = 4.56 s), in which a
	// wrong tie-break (both yielding, or the loser preempting) shows as a
	// transition. Both were 5 s and 30 s (49 s a subtest); the meaning is
	// the same.
	const equalSettle, equalSteady = 3 * time.Second, 10 * time.Second
	for _, tc := range []struct {
		name     string
		ucarpLow bool
	}{{"ucarp-lower-ip", true}, {"ucarp-higher-ip", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPeers(t, tc.ucarpLow)
			uc := p.startUcarp(100)
			cd := p.startCarpd(100)
			states := func() string {
				return fmt.Sprintf("carpd %q, ucarp %q", transitions(cd.Output()), ucarpStates(uc.Output()))
			}
			holder, took, _ := p.settle(equalSettle, 30*time.Second)
			if holder == "" {
				t.Fatalf("the pair has not settled after %v: holders %v; %s", took, p.holders(), states())
			}
			t.Logf("started together: settled after %v with %s holding the VIP; %s", took, holder, states())

			// Split: both MASTER.
			p.isolate(true, p.carpd, p.ucarp)
			split := time.Now()
			for len(p.holders()) != 2 {
				if time.Since(split) > 10*time.Second {
					t.Fatalf("split: both hosts do not hold the VIP after %v (holders %v); %s", time.Since(split), p.holders(), states())
				}
				time.Sleep(50 * time.Millisecond)
			}
			// The log lines of the split in the output buffers: both
			// MASTER.
			if !waitCond(5*time.Second, func() bool {
				cdT, ucS := transitions(cd.Output()), ucarpStates(uc.Output())
				return len(cdT) > 0 && strings.Contains(cdT[len(cdT)-1], "-> MASTER") && len(ucS) > 0 && ucS[len(ucS)-1] == "MASTER"
			}) {
				t.Fatalf("split: both hold the VIP but have not both logged MASTER within 5 s; %s", states())
			}
			cdBefore, ucBefore := len(transitions(cd.Output())), len(ucarpStates(uc.Output()))
			p.isolate(false, p.carpd, p.ucarp)
			holder, took, gap := p.settle(equalSettle, 30*time.Second)
			healCD, healUC := transitions(cd.Output())[cdBefore:], ucarpStates(uc.Output())[ucBefore:]
			if holder == "" {
				t.Fatalf("healed: the pair has not settled after %v: holders %v; since the heal carpd %q, ucarp %q",
					took, p.holders(), healCD, healUC)
			}
			t.Logf("healed: settled after %v with %s holding the VIP, longest time with no holder %v; since the heal carpd %q, ucarp %q",
				took, holder, gap, healCD, healUC)
			if gap > 0 {
				// Both yielded to the other's equal advert: show the logs.
				t.Errorf("no host held the VIP for %v after the heal; carpd:\n%s\nucarp:\n%s", gap,
					strings.Join(tail(cd.Output(), 6), "\n"), strings.Join(tail(uc.Output(), 10), "\n"))
			}
			if want := map[bool]string{true: "ucarp", false: "carpd"}[tc.ucarpLow]; holder != want {
				t.Errorf("healed: %s holds the VIP, want %s, on the lower address", holder, want)
			}

			// The steady window: the holder alone holds the VIP at every
			// sample, and neither side makes any transition.
			cdBefore, ucBefore = len(transitions(cd.Output())), len(ucarpStates(uc.Output()))
			hold := p.ucarp
			if holder == p.carpd.Name {
				hold = p.carpd
			}
			p.steady(hold, equalSteady)
			cdNew, ucNew := transitions(cd.Output())[cdBefore:], ucarpStates(uc.Output())[ucBefore:]
			if n := len(cdNew) + len(ucNew); n > 0 {
				t.Errorf("%d transitions in %v after settling, want none: carpd %q, ucarp %q", n, equalSteady, cdNew, ucNew)
			}
			checkClean(t, cd, uc)
		})
	}
}
