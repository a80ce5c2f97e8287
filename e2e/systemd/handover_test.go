package systemd

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestSystemdHandovers repeats the planned hand-overs of TestSystemd,
// CARPD_SYSTEMD_HANDOVERS times each: `systemctl stop` of the master (then
// `systemctl start`, back as BACKUP), and `dpkg -i` over the master of the
// other package than it has, the newer or the older (an upgrade or a
// downgrade: each restarts carpd). Every lost probe fails it and is
// explained from the trace, and so does a new master whose advert goes out
// before its gratuitous ARP (checkOrder); the summary gives how long
// before its advert the new master announced the VIP. Without the
// variable it is skipped: scripts/systemd-test.sh runs TestSystemd, which
// does each once; this is for measuring (CARPD_SYSTEMD_HANDOVERS=20
// scripts/systemd-test.sh -run TestSystemdHandovers).
func TestSystemdHandovers(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CARPD_SYSTEMD_HANDOVERS"))
	if n <= 0 {
		t.Skip("CARPD_SYSTEMD_HANDOVERS is not set: the number of hand-overs of each kind to run")
	}
	p, newVersion, ok := setUp(t)
	if !ok {
		return
	}
	lost := map[string][]int{}
	took := map[string][]time.Duration{}
	leads := map[string][]time.Duration{}
	for i := range n {
		t.Run("stop-"+strconv.Itoa(i+1), func(t *testing.T) {
			p.withT(t)
			h := p.stopMaster(t)
			tl := p.checkOrder(t, h)
			if l, ok := tl.lead(); ok {
				leads["stop"] = append(leads["stop"], l)
			}
			lost["stop"] = append(lost["stop"], h.stats.Lost)
			took["stop"] = append(took["stop"], h.stats.Outage)
			if h.stats.Lost > 0 {
				t.Errorf("%d probes lost on systemctl stop of the master", h.stats.Lost)
				p.explain(t, h)
			}
			p.startBackup(t, h.master)
		})
	}
	for i := range n {
		t.Run("install-"+strconv.Itoa(i+1), func(t *testing.T) {
			p.withT(t)
			// The other version than the master's: an upgrade or a
			// downgrade, never a reinstall.
			master, _ := p.roles(t)
			deb := "carpd-newer.deb"
			if v, _ := master.quiet("dpkg-query -W -f '${Version}' carpd"); v == newVersion {
				deb = "carpd.deb"
			}
			h, _, _ := p.installOver(t, deb)
			tl := p.checkOrder(t, h)
			if l, ok := tl.lead(); ok {
				leads["upgrade"] = append(leads["upgrade"], l)
			}
			lost["upgrade"] = append(lost["upgrade"], h.stats.Lost)
			took["upgrade"] = append(took["upgrade"], h.stats.Outage)
			if h.stats.Lost > 0 {
				t.Errorf("%d probes lost on dpkg -i %s over the master", h.stats.Lost, deb)
				p.explain(t, h)
			}
			p.roles(t)
		})
	}
	for _, kind := range []string{"stop", "upgrade"} {
		ls := lost[kind]
		bad := 0
		for _, l := range ls {
			if l > 0 {
				bad++
			}
		}
		t.Logf("%s: %d hand-overs, %d with lost probes; lost per hand-over %v; longest outage %v",
			kind, len(ls), bad, ls, slices.Max(append(took[kind], 0)))
		ds := slices.Sorted(slices.Values(leads[kind]))
		late := 0
		for _, d := range ds {
			if d < 0 {
				late++
			}
		}
		if len(ds) > 0 {
			t.Logf("%s: the new master's gratuitous ARP before its advert (lead) over %d: %d after it, min %v median %v max %v",
				kind, len(ds), late, ds[0], ds[len(ds)/2], ds[len(ds)-1])
		}
	}
}
