package e2e

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/probe"
)

// virtualMAC100 is carp(4)'s virtual MAC of vhid 100 (0x64).
const virtualMAC100 = "00:00:5e:00:01:64"

// linkInfo is the part of `ip -j link show` the virtual MAC tests read.
type linkInfo struct {
	Index   int    `json:"ifindex"`
	Name    string `json:"ifname"`
	Address string `json:"address"`
	Kind    string // from linkinfo.info_kind
}

// hostLinks returns h's interfaces by name.
func hostLinks(t testing.TB, h *lab.Host) map[string]linkInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Run(ctx, "ip", "-d", "-j", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	var raw []struct {
		linkInfo
		LinkInfo struct {
			Kind string `json:"info_kind"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("%s: parsing ip -j link show: %v", h.Name, err)
	}
	links := map[string]linkInfo{}
	for _, l := range raw {
		l.linkInfo.Kind = l.LinkInfo.Kind
		links[l.Name] = l.linkInfo
	}
	return links
}

// vmacName returns the name carpd gives vhid 100's virtual MAC interface
// on h's eth0: carp<eth0's index>.100.
func vmacName(t testing.TB, h *lab.Host) string {
	t.Helper()
	eth0, ok := hostLinks(t, h)[h.Iface]
	if !ok {
		t.Fatalf("%s has no %s", h.Name, h.Iface)
	}
	return "carp" + strconv.Itoa(eth0.Index) + ".100"
}

// hostSysctl reads /proc/sys/<key> in h's namespace.
func hostSysctl(t testing.TB, h *lab.Host, key string) string {
	t.Helper()
	var v []byte
	if err := h.Do(func() (err error) { v, err = os.ReadFile("/proc/sys/" + key); return err }); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(v))
}

// checkVMACHolder fails unless h holds the VIP on its virtual MAC
// interface, a macvlan with MAC 00:00:5e:00:01:64, and not on eth0, whose
// ARP settings keep it from answering for the VIP with its own MAC.
func checkVMACHolder(t *testing.T, h *lab.Host) {
	t.Helper()
	name := vmacName(t, h)
	if on := hostAddrs(t, h)[vip]; !slices.Equal(on, []string{name}) {
		t.Errorf("%s holds %v on %q, want on %s only", h.Name, vip, on, name)
	}
	l, ok := hostLinks(t, h)[name]
	if !ok || l.Kind != "macvlan" || l.Address != virtualMAC100 {
		t.Errorf("%s's %s is %+v (exists %v), want a macvlan with MAC %s", h.Name, name, l, ok, virtualMAC100)
	}
	for key, want := range map[string]string{"arp_ignore": "1", "arp_announce": "2"} {
		if got := hostSysctl(t, h, "net/ipv4/conf/eth0/"+key); got != want {
			t.Errorf("%s: net.ipv4.conf.eth0.%s = %s, want %s", h.Name, key, got, want)
		}
	}
}

// fdbPorts returns the switch ports on which br0 has learnt mac.
func fdbPorts(t testing.TB, c *cluster, mac string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := runIn(ctx, c.lab.Switch, "bridge", "-j", "fdb", "show", "br", lab.Bridge)
	if err != nil {
		t.Fatalf("bridge fdb show: %v: %s", err, out)
	}
	var entries []struct {
		MAC string `json:"mac"`
		Dev string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("parsing bridge -j fdb show: %v", err)
	}
	var ports []string
	for _, e := range entries {
		if e.MAC == mac {
			ports = append(ports, e.Dev)
		}
	}
	return ports
}

// TestVirtualMAC: virtual-mac = true on both hosts. The master holds the
// VIP on its macvlan carp<index>.100 (MAC 00:00:5e:00:01:64), not on eth0,
// and the client's ARP entry is the virtual MAC. The master reboots (its
// macvlan gone with it): the backup takes the VIP on its own macvlan
// within the master-down interval + 1 s, the switch learns the virtual MAC
// on the backup's port, the client's pings recover and its ARP entry is
// still the virtual MAC. carpd on the new master exits on SIGTERM with
// status 0 and removes its macvlan.
func TestVirtualMAC(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newTOMLCluster(t, []string{"192.0.2.50/32"}, "virtual-mac = true\n")
	vips := []netip.Addr{vip}
	// What each CARP host sends: its adverts and anything from the
	// virtual MAC.
	filter := "ip proto 112 or ether src " + virtualMAC100
	sent := map[*lab.Host]*pcap{
		c.master: startPcap(t, c.lab.Switch, c.master.Port, c.dir, filter, "-Q", "in"),
		c.backup: startPcap(t, c.lab.Switch, c.backup.Port, c.dir, filter, "-Q", "in"),
	}
	startTOMLPair(t, c, vips)
	checkVMACHolder(t, c.master)
	masterUp := time.Now()
	pr := c.ping(100 * time.Millisecond)
	if !pr.waitAnswered(masterUp, 5*time.Second) {
		t.Fatal("the client's pings are not answered by the master")
	}
	if mac, _, err := c.client.Neigh(vip); err != nil {
		t.Fatal(err)
	} else if mac.String() != virtualMAC100 {
		t.Errorf("under the first master the client's ARP entry for %v is %v, want %s", vip, mac, virtualMAC100)
	}
	if ports := fdbPorts(t, c, virtualMAC100); len(ports) != 1 || ports[0] != c.master.Port {
		t.Errorf("the switch has learnt %s on ports %v, want only the master's %q", virtualMAC100, ports, c.master.Port)
	}
	time.Sleep(time.Second)

	killed := time.Now()
	c.reboot(c.master)
	// A reboot loses the macvlan too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := c.master.Run(ctx, "ip", "link", "del", vmacName(t, c.master)); err != nil {
		t.Fatalf("deleting the rebooted master's macvlan: %v: %s", err, out)
	}
	took, ok := c.waitSole(c.backup, vips, masterDown+5*time.Second)
	if !ok {
		t.Fatalf("backup does not hold the VIP %v after the master died (%v)", took, c.sampleVIPs(vips))
	}
	if bound := masterDown + time.Second; took > bound {
		t.Errorf("backup took the VIP after %v, want within %v", took, bound)
	}
	checkVMACHolder(t, c.backup)
	if !pr.waitAnswered(killed.Add(took), 5*time.Second) {
		t.Fatal("the client's pings did not recover after the takeover")
	}
	if mac, _, err := c.client.Neigh(vip); err != nil {
		t.Fatal(err)
	} else if mac.String() != virtualMAC100 {
		t.Errorf("after the failover the client's ARP entry for %v is %v, want still %s", vip, mac, virtualMAC100)
	}
	if ports := fdbPorts(t, c, virtualMAC100); len(ports) != 1 || ports[0] != c.backup.Port {
		t.Errorf("after the failover the switch has learnt %s on ports %v, want only the backup's %q", virtualMAC100, ports, c.backup.Port)
	}
	t.Logf("VIP on the backup's macvlan %v after the kill", took)
	checkVMACFrames(t, c, sent, masterUp, killed.Add(took))
	time.Sleep(time.Second)
	pr.stop()
	if st := probe.Summarize(pr.results()); !st.Recovered || st.LostRuns != 1 {
		t.Errorf("client pings: %+v; want one run of losses, recovered", st)
	}

	// SIGTERM: carpd exits 0 and takes its macvlan (and the VIP) with it.
	name := vmacName(t, c.backup)
	p := c.procs[c.backup]
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("carpd did not exit after SIGTERM")
	}
	if code := p.ExitCode(); code != 0 {
		t.Errorf("carpd exit status %d after SIGTERM, want 0", code)
	}
	if l, ok := hostLinks(t, c.backup)[name]; ok {
		t.Errorf("after carpd exited, %s still has %+v", c.backup.Name, l)
	}
	if on, ok := hostAddrs(t, c.backup)[vip]; ok {
		t.Errorf("after carpd exited, %s still holds %v on %s", c.backup.Name, vip, on)
	}
}

// checkVMACFrames stops the captures of what master and backup sent and
// checks them: every advert comes from the host's own MAC (a Linux macvlan
// would drop multicast from its own MAC, so adverts from the virtual MAC
// would not reach a peer's macvlan); the master sent from the virtual MAC
// (its gratuitous ARP) when it took over, the backup nothing while BACKUP
// and something when it took over. masterUp and tookOver are when the
// tests saw the master and then the backup hold the VIP; a poll sees the
// address a little after carpd added and announced it.
func checkVMACFrames(t *testing.T, c *cluster, sent map[*lab.Host]*pcap, masterUp, tookOver time.Time) {
	t.Helper()
	early := 500 * time.Millisecond
	for _, h := range []*lab.Host{c.master, c.backup} {
		// Let the announcement's repeats be captured too.
		time.Sleep(100 * time.Millisecond)
		sent[h].stop(t)
		rows := sent[h].frames(t, "", "eth.src", "ip.proto", "arp.opcode", "arp.src.proto_ipv4", "arp.src.hw_mac", "arp.dst.proto_ipv4")
		var adverts, fromVMAC, garps int
		start := masterUp
		if h == c.backup {
			start = tookOver
		}
		for _, r := range rows {
			at := frameTime(t, r)
			if r["ip.proto"] == "112" {
				adverts++
				if r["eth.src"] != h.MAC.String() {
					t.Errorf("%s sent an advert from %s, want from its own %v", h.Name, r["eth.src"], h.MAC)
				}
				continue
			}
			fromVMAC++
			if h == c.backup && at.Before(tookOver.Add(-early)) {
				t.Errorf("the backup sent a frame from the virtual MAC %v before it took over: %v", tookOver.Sub(at), r)
			}
			if at.After(start.Add(-early)) && r["arp.src.proto_ipv4"] == vip.String() && r["arp.dst.proto_ipv4"] == vip.String() &&
				r["arp.src.hw_mac"] == virtualMAC100 {
				garps++
			}
		}
		if adverts == 0 {
			t.Errorf("no advert from %s captured", h.Name)
		}
		if garps == 0 {
			t.Errorf("%s sent no gratuitous ARP for %v from %s when it took over", h.Name, vip, virtualMAC100)
		}
		t.Logf("%s sent %d adverts, %d frames from the virtual MAC (%d gratuitous ARP after its takeover)", h.Name, adverts, fromVMAC, garps)
	}
}

// TestVirtualMACOff: with virtual-mac = false (the default) the master
// answers for the VIP with eth0's own MAC and makes no macvlan.
func TestVirtualMACOff(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newTOMLCluster(t, []string{"192.0.2.50/32"}, "virtual-mac = false\n")
	startTOMLPair(t, c, []netip.Addr{vip})
	since := time.Now()
	pr := c.ping(100 * time.Millisecond)
	if !pr.waitAnswered(since, 5*time.Second) {
		t.Fatal("the client's pings are not answered by the master")
	}
	pr.stop()
	if mac, _, err := c.client.Neigh(vip); err != nil {
		t.Fatal(err)
	} else if mac.String() != c.master.MAC.String() {
		t.Errorf("client's ARP entry for %v is %v, want the master's own %v", vip, mac, c.master.MAC)
	}
	if on := hostAddrs(t, c.master)[vip]; !slices.Equal(on, []string{c.master.Iface}) {
		t.Errorf("the master holds %v on %q, want on %s only", vip, on, c.master.Iface)
	}
	for name, l := range hostLinks(t, c.master) {
		if l.Kind == "macvlan" {
			t.Errorf("without virtual-mac the master has a macvlan %s: %+v", name, l)
		}
	}
}

// runIn runs a command in namespace ns and returns its combined output.
func runIn(ctx context.Context, ns string, args ...string) (string, error) {
	out, err := execIn(ctx, ns, args...).CombinedOutput()
	return string(out), err
}
