package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/probe"
)

// The hosts' IPv6 addresses, next to their IPv4 ones (the lab turns DAD
// off on eth0, so they are usable at once), and the IPv6 virtual address.
var (
	ipv6VIP    = netip.MustParseAddr("2001:db8::50")
	ipv6Master = netip.MustParsePrefix("2001:db8::21/64")
	ipv6Backup = netip.MustParsePrefix("2001:db8::22/64")
	ipv6Client = netip.MustParsePrefix("2001:db8::100/64")
)

// vhidTOML returns a carpd.toml with vhid 100 on eth0, pass lampros, the
// given advskew and addresses, and extra lines added to the [[vhid]] table.
func vhidTOML(advskew int, addrs []string, extra string) string {
	quoted := make([]string, len(addrs))
	for i, a := range addrs {
		quoted[i] = strconv.Quote(a)
	}
	return fmt.Sprintf(`log-level = "debug"

[[vhid]]
interface = "eth0"
vhid = 100
advskew = %d
password = "lampros"
addresses = [%s]
%s`, advskew, strings.Join(quoted, ", "), extra)
}

// newTOMLCluster builds the walkthrough's three hosts, gives each its IPv6
// address too, and writes the TOML configurations of master (advskew 100)
// and backup (advskew 200) for vhid 100 with addrs; extra is added to both
// [[vhid]] tables. Start carpd with startTOML.
func newTOMLCluster(t *testing.T, addrs []string, extra string) *cluster {
	t.Helper()
	c := newCluster(t)
	for h, p := range map[*lab.Host]netip.Prefix{c.master: ipv6Master, c.backup: ipv6Backup, c.client: ipv6Client} {
		if err := h.AddAddr(p); err != nil {
			t.Fatal(err)
		}
	}
	for h, skew := range map[*lab.Host]int{c.master: 100, c.backup: 200} {
		if err := os.WriteFile(c.tomlPath(h), []byte(vhidTOML(skew, addrs, extra)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *cluster) tomlPath(h *lab.Host) string { return filepath.Join(c.dir, h.Name+".toml") }

// startTOML starts carpd on h with its TOML configuration (and the
// cluster's flags), recorded as start records it.
func (c *cluster) startTOML(h *lab.Host) *lab.Proc {
	c.t.Helper()
	return c.startCarpd(h, "--config", c.tomlPath(h))
}

// bootBackDual is bootBack for a host with an IPv4 and an IPv6 address and
// a TOML configuration.
func (c *cluster) bootBackDual(h *lab.Host, own ...netip.Prefix) *lab.Proc {
	c.t.Helper()
	if err := h.LinkUp(); err != nil {
		c.t.Fatal(err)
	}
	for _, p := range own {
		if err := h.AddAddr(p); err != nil {
			c.t.Fatal(err)
		}
	}
	return c.startTOML(h)
}

// hostAddrs returns every address h holds, on any interface, mapped to the
// names of the interfaces that hold it.
func hostAddrs(t testing.TB, h *lab.Host) map[netip.Addr][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Run(ctx, "ip", "-j", "addr", "show")
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		IfName   string `json:"ifname"`
		AddrInfo []struct {
			Local string `json:"local"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("%s: parsing ip -j addr show: %v", h.Name, err)
	}
	held := map[netip.Addr][]string{}
	for _, l := range links {
		for _, ai := range l.AddrInfo {
			if a, err := netip.ParseAddr(ai.Local); err == nil {
				held[a] = append(held[a], l.IfName)
			}
		}
	}
	return held
}

// vipSample is how many of a vhid's addresses each CARP host held at one
// moment (on any interface).
type vipSample struct {
	at             time.Time
	master, backup int
}

func (s vipSample) String() string {
	return fmt.Sprintf("master %d, backup %d", s.master, s.backup)
}

// sampleVIPs counts the addresses of vips that master and backup hold.
func (c *cluster) sampleVIPs(vips []netip.Addr) vipSample {
	c.t.Helper()
	s := vipSample{at: time.Now()}
	for _, h := range []*lab.Host{c.master, c.backup} {
		held := hostAddrs(c.t, h)
		n := 0
		for _, a := range vips {
			if _, ok := held[a]; ok {
				n++
			}
		}
		if h == c.master {
			s.master = n
		} else {
			s.backup = n
		}
	}
	return s
}

// soleHolder reports whether the sample shows h holding all n addresses
// and the other host none.
func (c *cluster) soleHolder(s vipSample, h *lab.Host, n int) bool {
	if h == c.master {
		return s.master == n && s.backup == 0
	}
	return s.backup == n && s.master == 0
}

// waitSole polls until h alone holds all of vips, and returns how long it
// took.
func (c *cluster) waitSole(h *lab.Host, vips []netip.Addr, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < timeout {
		if c.soleHolder(c.sampleVIPs(vips), h, len(vips)) {
			return time.Since(start), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), false
}

// startTOMLPair starts carpd on both hosts and waits for the master alone
// to hold all of vips.
func startTOMLPair(t *testing.T, c *cluster, vips []netip.Addr) {
	t.Helper()
	// The backup once the master's master-down timer runs (its INIT ->
	// BACKUP): the master's is the shorter by 0.39 s only, and a start of
	// the master's carpd that a busy machine delays by more would let the
	// backup take the VIP first.
	if err := waitOutput(c.startTOML(c.master), "INIT -> BACKUP", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c.startTOML(c.backup)
	if took, ok := c.waitSole(c.master, vips, 15*time.Second); !ok {
		t.Fatalf("after %v the addresses are held as %v, want all on the master only", took, c.sampleVIPs(vips))
	}
}

// pingAddr pings dst from the client every interval until stopped (the
// cluster's ping is for the IPv4 walkthrough address).
func (c *cluster) pingAddr(dst netip.Addr, interval time.Duration) *prober {
	c.t.Helper()
	return startPing(c.t, c.client, dst, interval)
}

// waitAnswered waits up to timeout for a probe sent after since to be
// answered.
func (p *prober) waitAnswered(since time.Time, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !p.answeredSince(since) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	return p.answeredSince(since)
}

// frames decodes the frames of the capture that match the display filter
// ("" for all) with tshark, one map of the fields' values per frame, plus
// the frame's time under "time".
func (c *pcap) frames(t testing.TB, filter string, fields ...string) []map[string]string {
	t.Helper()
	args := []string{"-n", "-r", c.path, "-T", "fields"}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	rows := runTshark(t, "tshark", args, append([]string{"frame.time_epoch"}, fields...))
	for _, row := range rows {
		row["time"] = row["frame.time_epoch"]
		delete(row, "frame.time_epoch")
	}
	return rows
}

// frameTime returns the capture time of a row of pcap.frames.
func frameTime(t testing.TB, row map[string]string) time.Time {
	t.Helper()
	f, err := strconv.ParseFloat(row["time"], 64)
	if err != nil {
		t.Fatalf("frame time %q: %v", row["time"], err)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

// tsharkTrue reports whether a boolean field printed by tshark is set
// (tshark 4.0 prints 1, later versions True).
func tsharkTrue(v string) bool { return v == "1" || strings.EqualFold(v, "true") }

// advertFields and naFields are the fields the IPv6 test reads.
var (
	advertFields = []string{"eth.src", "eth.dst", "ipv6.src", "ipv6.dst", "ipv6.hlim", "ipv6.nxt"}
	naFields     = []string{"eth.src", "ipv6.dst", "ipv6.hlim", "icmpv6.nd.na.target_address",
		"icmpv6.nd.na.flag.o", "icmpv6.nd.na.flag.s", "icmpv6.nd.na.flag.r", "icmpv6.opt.linkaddr"}
)

// checkIPv6Adverts fails unless h sent at least atLeast adverts in rows, and
// every one went to ff02::12 (33:33:00:00:00:12) with hop limit 255 from a
// link-local address.
func checkIPv6Adverts(t *testing.T, h *lab.Host, rows []map[string]string, atLeast int) {
	t.Helper()
	n := 0
	for _, r := range rows {
		if r["eth.src"] != h.MAC.String() {
			continue
		}
		n++
		src, err := netip.ParseAddr(r["ipv6.src"])
		if r["ipv6.dst"] != "ff02::12" || r["eth.dst"] != "33:33:00:00:00:12" || r["ipv6.hlim"] != "255" ||
			err != nil || !src.IsLinkLocalUnicast() {
			t.Errorf("advert from %s: %v; want to ff02::12 (33:33:00:00:00:12), hop limit 255, from a link-local address", h.Name, r)
		}
	}
	if n < atLeast {
		t.Errorf("%d IPv6 adverts from %s captured, want at least %d", n, h.Name, atLeast)
	}
}

// checkNAs checks the unsolicited neighbour advertisements (Solicited flag
// clear; the kernel's answers to the client's solicitations are not
// carpd's) host sent for target after from: at least 4, spread over at least 2 s (carpd repeats
// them 4 times over 3 s), the first within a second of from, each to
// ff02::1 with hop limit 255, the Override flag, not Solicited, and the
// host's MAC as target link-layer address. It returns their times.
func checkNAs(t *testing.T, h *lab.Host, rows []map[string]string, target netip.Addr, from time.Time) []time.Time {
	t.Helper()
	var times []time.Time
	for _, r := range rows {
		at := frameTime(t, r)
		if r["eth.src"] != h.MAC.String() || r["icmpv6.nd.na.target_address"] != target.String() || at.Before(from) ||
			tsharkTrue(r["icmpv6.nd.na.flag.s"]) {
			continue
		}
		times = append(times, at)
		if r["ipv6.dst"] != "ff02::1" || r["ipv6.hlim"] != "255" || !tsharkTrue(r["icmpv6.nd.na.flag.o"]) ||
			tsharkTrue(r["icmpv6.nd.na.flag.r"]) || r["icmpv6.opt.linkaddr"] != h.MAC.String() {
			t.Errorf("unsolicited NA from %s for %v: %v; want to ff02::1, hop limit 255, Override, not Router, TLLA %v",
				h.Name, target, r, h.MAC)
		}
	}
	if len(times) < 4 {
		t.Errorf("%s sent %d unsolicited NAs for %v after %v, want at least 4", h.Name, len(times), target, from.Format(time.TimeOnly))
		return times
	}
	if first := times[0].Sub(from); first > time.Second {
		t.Errorf("%s's first NA for %v came %v after it took over, want within 1 s", h.Name, target, first)
	}
	if span := times[len(times)-1].Sub(times[0]); span < 2*time.Second || span > 5*time.Second {
		t.Errorf("%s's NAs for %v spread over %v, want about 3 s", h.Name, target, span)
	}
	return times
}

// TestIPv6Failover: vhid 100 with the IPv6 address 2001:db8::50 only. The
// master advertises to ff02::12 with hop limit 255 and holds the address;
// it "reboots": within the master-down interval + 1 s the backup holds it,
// having sent unsolicited NAs with the Override flag to ff02::1, the
// client's pings recover and its neighbour entry points at the backup. The
// old master returns (preempt off) and stays BACKUP.
func TestIPv6Failover(t *testing.T) {
	c := newTOMLCluster(t, []string{"2001:db8::50/128"}, "")
	vips := []netip.Addr{ipv6VIP}
	// The client's switch port sees every multicast frame of the segment.
	capture := startPcap(t, c.lab.Switch, c.client.Port, c.dir, "ip6 proto 112 or (icmp6 and ip6[40] == 136)")
	startTOMLPair(t, c, vips)
	masterUp := time.Now()
	pr := c.pingAddr(ipv6VIP, 100*time.Millisecond)
	if !pr.waitAnswered(masterUp, 5*time.Second) {
		t.Fatal("the client's pings to the IPv6 VIP are not answered by the master")
	}
	// Long enough for the master's series of NAs (3 s) and 3 adverts.
	time.Sleep(time.Until(masterUp.Add(4 * time.Second)))
	if mac, _, err := c.client.Neigh(ipv6VIP); err != nil {
		t.Fatal(err)
	} else if mac.String() != c.master.MAC.String() {
		t.Errorf("client's neighbour entry for %v is %v, want the master's %v", ipv6VIP, mac, c.master.MAC)
	}

	killed := time.Now()
	c.reboot(c.master)
	took, ok := c.waitSole(c.backup, vips, masterDown+5*time.Second)
	if !ok {
		t.Fatalf("backup does not hold the IPv6 VIP %v after the master died (%v)", took, c.sampleVIPs(vips))
	}
	if bound := masterDown + time.Second; took > bound {
		t.Errorf("backup took the IPv6 VIP after %v, want within %v", took, bound)
	}
	tookOver := killed.Add(took)
	if !pr.waitAnswered(tookOver, 5*time.Second) {
		t.Fatal("the client's pings did not recover after the takeover")
	}
	if mac, _, err := c.client.Neigh(ipv6VIP); err != nil {
		t.Fatal(err)
	} else if mac.String() != c.backup.MAC.String() {
		t.Errorf("client's neighbour entry for %v is %v, want the backup's %v", ipv6VIP, mac, c.backup.MAC)
	}
	if err := waitOutput(c.procs[c.backup], "carp: 100@eth0: BACKUP -> MASTER (master timed out)", time.Second); err != nil {
		t.Error(err)
	}
	t.Logf("IPv6 VIP on the backup %v after the kill", took)

	// The old master comes back; preempt is off.
	p := c.bootBackDual(c.master, masterAddr, ipv6Master)
	if err := waitOutput(p, "INIT -> BACKUP", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		if s := c.sampleVIPs(vips); !c.soleHolder(s, c.backup, 1) {
			t.Fatalf("after the old master returned, the IPv6 VIP is held as %v, want by the backup only", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pr.stop()
	if st := probe.Summarize(pr.results()); !st.Recovered || st.LostRuns != 1 {
		t.Errorf("client pings: %+v; want one run of losses, recovered", st)
	}
	capture.stop(t)

	adverts := capture.frames(t, "ipv6.nxt == 112", advertFields...)
	var before, after []map[string]string
	for _, r := range adverts {
		if frameTime(t, r).Before(killed) {
			before = append(before, r)
		} else {
			after = append(after, r)
		}
	}
	// The master advertised for 4 s before the kill (every 1.39 s), the
	// backup after the takeover for about 6 s (every 1.78 s); the returning
	// master stays silent.
	checkIPv6Adverts(t, c.master, before, 3)
	checkIPv6Adverts(t, c.backup, after, 3)
	for _, r := range before {
		if r["eth.src"] == c.backup.MAC.String() {
			t.Errorf("the backup advertised while the master was up: %v", r)
		}
	}
	for _, r := range after {
		if r["eth.src"] == c.master.MAC.String() {
			t.Errorf("the returned master advertised while BACKUP: %v", r)
		}
	}

	nas := capture.frames(t, "icmpv6.type == 136", naFields...)
	var fromBackupEarly []map[string]string
	for _, r := range nas {
		if r["eth.src"] == c.backup.MAC.String() && r["icmpv6.nd.na.target_address"] == ipv6VIP.String() &&
			frameTime(t, r).Before(tookOver.Add(-500*time.Millisecond)) {
			fromBackupEarly = append(fromBackupEarly, r)
		}
	}
	if len(fromBackupEarly) > 0 {
		t.Errorf("the backup sent NAs for %v before it took over: %v", ipv6VIP, fromBackupEarly)
	}
	// The master's NAs when it first took over, then the backup's. The
	// poll that saw a takeover is up to 20 ms (plus two ip(8) runs) late,
	// so each series is searched from a little earlier.
	mt := checkNAs(t, c.master, nas, ipv6VIP, masterUp.Add(-300*time.Millisecond))
	bt := checkNAs(t, c.backup, nas, ipv6VIP, tookOver.Add(-300*time.Millisecond))
	t.Logf("master's unsolicited NAs at %v after it was seen holding the VIP; backup's at %v after the kill",
		offsets(masterUp, mt), offsets(killed, bt))
}

// offsets formats times relative to base, rounded to milliseconds.
func offsets(base time.Time, ts []time.Time) []time.Duration {
	var ds []time.Duration
	for _, t := range ts {
		ds = append(ds, t.Sub(base).Round(time.Millisecond))
	}
	return ds
}

// The mixed vhid: two IPv4 addresses and one IPv6 address.
var mixedVIPs = []string{"192.0.2.50/32", "192.0.2.51/32", "2001:db8::50/128"}

// TestMixedAddressesMoveTogether: one vhid with 192.0.2.50, 192.0.2.51 and
// 2001:db8::50. In the steady state exactly one host holds all three and
// the other none; when the master reboots, the backup takes all three
// within the master-down interval + 1 s, at no sample do the two hosts
// share them, and the client's pings to each address recover, its
// neighbour entries pointing at the backup.
func TestMixedAddressesMoveTogether(t *testing.T) {
	c := newTOMLCluster(t, mixedVIPs, "")
	var vips []netip.Addr
	for _, s := range mixedVIPs {
		vips = append(vips, netip.MustParsePrefix(s).Addr())
	}
	startTOMLPair(t, c, vips)
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		if s := c.sampleVIPs(vips); !c.soleHolder(s, c.master, len(vips)) {
			t.Fatalf("steady state: addresses held as %v, want all 3 on the master only", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var probers []*prober
	for _, a := range vips {
		probers = append(probers, c.pingAddr(a, 100*time.Millisecond))
	}
	time.Sleep(time.Second)

	killed := time.Now()
	c.reboot(c.master)
	var samples []vipSample
	var took time.Duration
	for time.Since(killed) < masterDown+5*time.Second {
		s := c.sampleVIPs(vips)
		samples = append(samples, s)
		if c.soleHolder(s, c.backup, len(vips)) {
			took = s.at.Sub(killed)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took == 0 {
		t.Fatalf("the backup does not hold all 3 addresses %v after the kill: %v", time.Since(killed), samples[len(samples)-1])
	}
	if bound := masterDown + time.Second; took > bound {
		t.Errorf("backup took the addresses after %v, want within %v", took, bound)
	}
	// Then 5 s more of the backup holding all three alone.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		samples = append(samples, c.sampleVIPs(vips))
		time.Sleep(20 * time.Millisecond)
	}
	// A host adds or removes the addresses one netlink request at a time,
	// so a sample may catch it half-way (a few ms); two samples in a row
	// (20 ms apart) may not, and the hosts never share the addresses.
	partial := 0
	for i, s := range samples {
		if s.master > 0 && s.backup > 0 {
			t.Errorf("at %v after the kill the hosts share the addresses: %v", s.at.Sub(killed), s)
		}
		isPartial := (s.master > 0 && s.master < len(vips)) || (s.backup > 0 && s.backup < len(vips))
		if isPartial {
			partial++
			if i > 0 && samples[i-1].String() == s.String() {
				t.Errorf("at %v after the kill the addresses are split in two samples in a row: %v", s.at.Sub(killed), s)
			}
		}
		if s.at.Sub(killed) > took && !c.soleHolder(s, c.backup, len(vips)) {
			t.Errorf("at %v after the kill, after the takeover, the addresses are held as %v, want all 3 on the backup", s.at.Sub(killed), s)
		}
	}
	t.Logf("all 3 addresses on the backup %v after the kill; %d samples, %d caught a host half-way", took, len(samples), partial)

	for i, pr := range probers {
		if !pr.waitAnswered(killed.Add(took), 5*time.Second) {
			t.Errorf("the client's pings to %v did not recover after the takeover", vips[i])
		}
	}
	time.Sleep(500 * time.Millisecond)
	for i, pr := range probers {
		pr.stop()
		if st := probe.Summarize(pr.results()); !st.Recovered {
			t.Errorf("client pings to %v: %+v; want recovered", vips[i], st)
		}
		if mac, _, err := c.client.Neigh(vips[i]); err != nil {
			t.Fatal(err)
		} else if mac.String() != c.backup.MAC.String() {
			t.Errorf("client's neighbour entry for %v is %v, want the backup's %v", vips[i], mac, c.backup.MAC)
		}
	}
	if tr := transitions(c.procs[c.backup].Output()); !slices.Equal(tr, []string{
		"carp: 100@eth0: INIT -> BACKUP (initialization complete)",
		"carp: 100@eth0: BACKUP -> MASTER (master timed out)",
	}) {
		t.Errorf("backup's transitions = %q, want one vhid going INIT -> BACKUP -> MASTER", tr)
	}
}
