package systemd

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/probe"
)

// trace records, for the whole test, what a lost probe needs to be
// explained: a capture of ARP, ICMP and CARP (IP protocol 112) on eth0 of
// the client and of both containers' namespaces (tcpdump), and their
// address and neighbour changes (ip -ts monitor address neigh). explain
// prints the part around a lost probe.
type trace struct {
	dir   string
	hosts []*lab.Host
	procs []*lab.Proc
}

// traceFilter is what the captures keep.
const traceFilter = "arp or icmp or ip proto 112"

// startTrace starts the captures and monitors in the namespaces of hosts.
// A tool that cannot start leaves the trace without it (logged): the trace
// only explains, it proves nothing.
func startTrace(t *testing.T, hosts ...*lab.Host) *trace {
	t.Helper()
	tr := &trace{dir: t.TempDir(), hosts: hosts}
	for _, h := range hosts {
		for _, args := range [][]string{
			{"tcpdump", "-i", "eth0", "-n", "-U", "-s", "128", "-w", tr.pcap(h), traceFilter},
			{"ip", "-ts", "monitor", "address", "neigh"},
		} {
			if _, err := exec.LookPath(args[0]); err != nil {
				t.Logf("trace: no %s: %v", args[0], err)
				continue
			}
			p, err := h.Start(h.Name+"-"+args[0], args...)
			if err != nil {
				t.Logf("trace: %v", err)
				continue
			}
			tr.procs = append(tr.procs, p)
		}
	}
	// tcpdump opens its capture before it prints "listening on".
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range tr.procs {
		for !strings.Contains(p.Output(), "listening on") && strings.HasSuffix(p.Name, "-tcpdump") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return tr
}

func (tr *trace) pcap(h *lab.Host) string { return filepath.Join(tr.dir, h.Name+".pcap") }

// monitor returns the ip monitor lines of h stamped within [from, to].
func (tr *trace) monitor(h *lab.Host, from, to time.Time) []string {
	for _, p := range tr.procs {
		if p.Name == h.Name+"-ip" {
			return stamped(p.Output(), "[2006-01-02T15:04:05.000000]", from, to)
		}
	}
	return nil
}

// packets decodes h's capture (tcpdump -e: with the MAC addresses) within
// [from, to].
func (tr *trace) packets(h *lab.Host, from, to time.Time) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tcpdump", "-r", tr.pcap(h), "-n", "-e", "-tttt").Output()
	if err != nil && len(out) == 0 {
		return []string{fmt.Sprintf("tcpdump -r %s: %v", tr.pcap(h), err)}
	}
	return stamped(string(out), "2006-01-02 15:04:05.000000", from, to)
}

// stamped keeps the lines of out that start with a time in layout (local
// time) within [from, to]; a line without one (ip monitor's continuation
// lines) goes with the line before it.
func stamped(out, layout string, from, to time.Time) []string {
	var lines []string
	keep := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if len(l) >= len(layout) {
			if at, err := time.ParseInLocation(layout, l[:len(layout)], time.Local); err == nil {
				keep = !at.Before(from) && !at.After(to)
			}
		}
		if keep {
			lines = append(lines, l)
		}
	}
	return lines
}

// explain logs, for each lost probe of h, the traces around it: what the
// client sent and received (with MAC addresses: which host the request
// went to), what each host's eth0 saw, the address and neighbour changes,
// and the old master's journal over the hand-over.
func (p *pair) explain(t *testing.T, h handover) {
	t.Helper()
	if p.trace == nil {
		return
	}
	for _, c := range p.cs {
		t.Logf("trace: %s is %s, eth0 %s", c.name, map[bool]string{true: "the old master", false: "the old backup"}[c == h.master], c.host.MAC)
	}
	t.Logf("trace: client eth0 %s", p.client.MAC)
	for _, r := range h.lost {
		t.Logf("trace: probe seq %d sent %s lost", r.Seq, r.Sent.Format("15:04:05.000000"))
		from, to := r.Sent.Add(-150*time.Millisecond), r.Sent.Add(150*time.Millisecond)
		for _, host := range p.trace.hosts {
			t.Logf("trace: %s eth0, %s to %s:\n%s", host.Name, from.Format("15:04:05.000"), to.Format("15:04:05.000"),
				strings.Join(p.trace.packets(host, from, to), "\n"))
			t.Logf("trace: %s ip -ts monitor address neigh, %s to %s:\n%s", host.Name, h.from.Format("15:04:05.000"), to.Format("15:04:05.000"),
				strings.Join(p.trace.monitor(host, h.from, to), "\n"))
		}
	}
	if len(h.lost) > 0 {
		h.master.run(10*time.Second, fmt.Sprintf("journalctl --no-pager -u carpd -o short-iso-precise --since @%d", h.from.Unix()))
		h.backup.run(10*time.Second, fmt.Sprintf("journalctl --no-pager -u carpd -o short-iso-precise --since @%d", h.from.Unix()))
	}
}

// handover is one planned hand-over as the client saw it.
type handover struct {
	master, backup *container
	from           time.Time
	stats          probe.Stats
	lost           []probe.Result
}

// timeline is one hand-over as the traces show it. The packet times are
// the kernel's (tcpdump); the address and neighbour changes are stamped by
// ip monitor when it reads them, late by as much as the machine is loaded
// (tens of ms seen here), so they only order what is far apart. Zero times
// were not seen.
type timeline struct {
	bowOut   time.Time // the old master's bow-out advert (advbase 255), on the client's eth0
	advert   time.Time // the new master's first advert, on the old master's eth0
	garp     time.Time // the new master's first gratuitous ARP, on the old master's eth0
	released time.Time // the VIP deleted on the old master (ip monitor)
	// toOld and toOldLost count the echo requests the client sent to the
	// old master's MAC after the new master's advert, and those the old
	// master did not answer.
	toOld, toOldLost int
}

// lead is how long before its advert the new master's gratuitous ARP went
// out, on the old master's segment: the old master lets the VIP go when it
// hears the advert, so a negative lead is a window in which the client
// still sends to the old master's MAC and a probe sent then is lost.
func (tl timeline) lead() (time.Duration, bool) {
	if tl.advert.IsZero() || tl.garp.IsZero() {
		return 0, false
	}
	return tl.advert.Sub(tl.garp), true
}

func (tl timeline) String() string {
	at := func(x time.Time) string {
		if x.IsZero() {
			return "unseen"
		}
		return x.Format("15:04:05.000000")
	}
	rel := func(x time.Time) string {
		if x.IsZero() || tl.advert.IsZero() {
			return ""
		}
		return fmt.Sprintf(" (advert%+.3fms)", float64(x.Sub(tl.advert))/float64(time.Millisecond))
	}
	s := fmt.Sprintf("bow-out %s; new master's advert %s, its gratuitous ARP %s%s; old master released the VIP %s%s (ip monitor); "+
		"after the advert the client sent %d requests to the old MAC, %d unanswered",
		at(tl.bowOut), at(tl.advert), at(tl.garp), rel(tl.garp), at(tl.released), rel(tl.released), tl.toOld, tl.toOldLost)
	if l, ok := tl.lead(); ok {
		s += fmt.Sprintf("; lead %+.3fms", float64(l)/float64(time.Millisecond))
	}
	return s
}

// timeline reads h's hand-over from the traces, from h.from to to.
func (p *pair) timeline(h handover, to time.Time) timeline {
	var tl timeline
	if p.trace == nil {
		return tl
	}
	oldMAC, newMAC := h.master.host.MAC.String(), h.backup.host.MAC.String()
	vipS := vip.String()
	const pcapLayout = "2006-01-02 15:04:05.000000"
	at := func(l string) time.Time {
		x, _ := time.ParseInLocation(pcapLayout, l[:len(pcapLayout)], time.Local)
		return x
	}
	// macs returns a tcpdump -e line's source and destination MACs.
	macs := func(l string) (src, dst string) {
		f := strings.Fields(l)
		if len(f) < 5 {
			return "", ""
		}
		return f[2], strings.TrimSuffix(f[4], ",")
	}
	// The new master's advert and gratuitous ARP as the old master's
	// eth0 saw them.
	for _, l := range p.trace.packets(h.master.host, h.from, to) {
		src, _ := macs(l)
		if src != newMAC {
			continue
		}
		switch {
		case tl.advert.IsZero() && strings.Contains(l, "224.0.0.18") && !strings.Contains(l, "intvl 255s"):
			tl.advert = at(l)
		case tl.garp.IsZero() && strings.Contains(l, "who-has "+vipS+" tell "+vipS):
			tl.garp = at(l)
		}
	}
	requested, answered := map[string]bool{}, map[string]bool{}
	for _, l := range p.trace.packets(p.client, h.from, to) {
		src, dst := macs(l)
		switch {
		case tl.bowOut.IsZero() && src == oldMAC && strings.Contains(l, "intvl 255s"):
			tl.bowOut = at(l)
		case dst == oldMAC && strings.Contains(l, "ICMP echo request") && !tl.advert.IsZero() && at(l).After(tl.advert):
			requested[seqOf(l)] = true
		case src == oldMAC && strings.Contains(l, "ICMP echo reply"):
			answered[seqOf(l)] = true
		}
	}
	for seq := range requested {
		tl.toOld++
		if !answered[seq] {
			tl.toOldLost++
		}
	}
	const monLayout = "[2006-01-02T15:04:05.000000]"
	for _, l := range p.trace.monitor(h.master.host, h.from, to) {
		if tl.released.IsZero() && strings.Contains(l, "Deleted") && strings.Contains(l, "inet "+vipS+"/") {
			tl.released, _ = time.ParseInLocation(monLayout, l[:len(monLayout)], time.Local)
		}
	}
	return tl
}

// checkOrder checks, from the capture on the old master's eth0, that the
// new master's gratuitous ARP went out before its first advert, and logs
// the hand-over's timeline. The old master releases the VIP when it hears
// that advert: announced after it, the client goes on sending to the old
// master's MAC for as long as the two are apart (0.5 to 7 ms here) and
// loses the probes sent then.
func (p *pair) checkOrder(t *testing.T, h handover) timeline {
	t.Helper()
	tl := p.timeline(h, time.Now())
	t.Logf("trace: %v", tl)
	if l, ok := tl.lead(); !ok {
		t.Errorf("the new master's advert or gratuitous ARP is not in the capture on %s's eth0", h.master.name)
	} else if l < 0 {
		t.Errorf("the new master's gratuitous ARP reached %s %v after its advert: the old master lets the VIP go while the client still sends to it",
			h.master.name, -l)
	}
	return tl
}

// seqOf is the "seq N" of a tcpdump ICMP echo line.
func seqOf(l string) string {
	_, after, ok := strings.Cut(l, " seq ")
	if !ok {
		return ""
	}
	s, _, _ := strings.Cut(after, ",")
	return s
}
