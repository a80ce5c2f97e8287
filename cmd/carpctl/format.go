package main

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/api"
)

// formatStatus prints the host's demotion and its sources once, then the
// vhids in FreeBSD's ifconfig words:
//
//	demotion 0
//	eth0: carp: MASTER vhid 100 advbase 1 advskew 100
//	      peer 224.0.0.18 peer6 ff02::12
//	      inet 192.0.2.50/32 vhid 100
//	      demotion 0; last change 12:03:04 BACKUP -> MASTER (master timed out); master since 4m12s
//	      MASTER: advertising advbase 1 advskew 100; no other host heard
//
// and a VRRP instance (carpver 3) in FreeBSD 15's:
//
//	eth0: vrrp: MASTER vrid 1 prio 100 interval 100
//	      af inet group 224.0.0.18 primary 192.0.2.21 preempt tiebreak
//	      inet 192.0.2.50/32 vhid 1
//	      ...
//
// Each vhid's demotion line is that vhid's: the host's plus its own
// checks', split up when they differ. The checks follow.
func formatStatus(st api.Status, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "demotion %d%s\n", st.Demotion, formatSources(st.Demotions))
	for _, v := range st.VHIDs {
		head := v.Interface + ": "
		pad := strings.Repeat(" ", len(head))
		if v.Protocol == "vrrp" {
			fmt.Fprintf(&b, "%svrrp: %s vrid %d prio %d interval %d\n", head, v.State, v.VHID, v.Priority, v.Interval)
			fmt.Fprintf(&b, "%saf %s group %s primary %s", pad, v.Family, v.Peer, cmp.Or(v.PrimaryAddress, "(none)"))
			if v.Preempt {
				b.WriteString(" preempt")
			}
			if v.TieBreak {
				b.WriteString(" tiebreak")
			}
			if v.MasterAdverInterval != 0 && v.MasterAdverInterval != v.Interval {
				fmt.Fprintf(&b, " master_adver_interval %d", v.MasterAdverInterval)
			}
			b.WriteString("\n")
		} else if v.Etcd != nil {
			fmt.Fprintf(&b, "%setcd: %s vhid %d advskew %d\n", head, v.State, v.VHID, v.AdvSkew)
			fmt.Fprintf(&b, "%s%s\n", pad, formatEtcd(v.Etcd, now))
		} else {
			fmt.Fprintf(&b, "%scarp: %s vhid %d advbase %d advskew %d\n", head, v.State, v.VHID, v.AdvBase, v.AdvSkew)
			fmt.Fprintf(&b, "%speer %s peer6 %s\n", pad, v.Peer, v.Peer6)
		}
		for _, a := range v.Addresses {
			fam := "inet"
			if strings.Contains(a, ":") {
				fam = "inet6"
			}
			fmt.Fprintf(&b, "%s%s %s vhid %d\n", pad, fam, a, v.VHID)
		}
		fmt.Fprintf(&b, "%sdemotion %d%s", pad, v.Demotion, demotionDetail(st.Demotion, v))
		if lc := v.LastChange; lc != nil {
			fmt.Fprintf(&b, "; last change %s %s -> %s (%s)", lc.Time.Local().Format("15:04:05"), lc.From, lc.To, lc.Reason)
		}
		if v.MasterSince != nil {
			fmt.Fprintf(&b, "; master since %s", since(now.Sub(*v.MasterSince)))
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "%s%s\n", pad, v.Why)
		if v.Mover != "" {
			fmt.Fprintf(&b, "%smover %s\n", pad, v.Mover)
		}
	}
	for _, c := range st.Checks {
		state := "up"
		if !c.Up {
			state = "FAILING"
			if c.Detail != "" {
				state += " (" + c.Detail + ")"
			}
		}
		scope := "the host"
		if len(c.VHIDs) > 0 {
			scope = "vhid " + strings.Join(c.VHIDs, ", ")
		}
		action := fmt.Sprintf("demotes %s by %d while failing", scope, c.Weight)
		if c.Action == "release" {
			action = "releases " + scope + " while failing"
		} else if c.Weight == 0 {
			action = fmt.Sprintf("demotes %s by the file's number", scope)
		}
		fmt.Fprintf(&b, "check %s: %s %s: %s since %s; %s\n", c.Name, c.Kind, c.Target, state, c.Since.Local().Format("15:04:05"), action)
	}
	formatBGP(&b, st.BGP)
	return b.String()
}

// formatEtcd is an etcd vhid's election in a line: "node h1 leader h1
// tenure 42 lease 694d7a1b2c3d ttl 10s; fence deadline in 7.412s;
// renewal 1.2ms; watch restarts 0".
func formatEtcd(e *api.Etcd, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node %s leader %s", e.Node, cmp.Or(e.Leader, "(none)"))
	if e.Tenure != 0 {
		fmt.Fprintf(&b, " tenure %d", e.Tenure)
	}
	if e.Lease != 0 {
		fmt.Fprintf(&b, " lease %x ttl %v", e.Lease, time.Duration(e.TTL*float64(time.Second)).Round(time.Second))
	}
	if e.FenceDeadline != nil {
		fmt.Fprintf(&b, "; fence deadline in %v", max(e.FenceDeadline.Sub(now), 0).Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "; renewal %v; watch restarts %d", time.Duration(e.RenewLatency*float64(time.Second)).Round(100*time.Microsecond), e.WatchRestarts)
	return b.String()
}

// demotionDetail says what a vhid's demotion is made of, when it is not
// the host's alone, and what the vhid advertises when demoted: " (host
// 240, its checks +30; advertising advskew 240)".
func demotionDetail(host int, v api.VHID) string {
	var parts []string
	if v.Demotion != host {
		parts = append(parts, fmt.Sprintf("host %d, its checks %+d", host, v.Demotion-host))
	}
	if v.Protocol == "vrrp" && v.AdvertisedPriority != v.Priority {
		parts = append(parts, fmt.Sprintf("advertising prio %d", v.AdvertisedPriority))
	} else if v.Protocol != "vrrp" && v.AdvertisedSkew != v.AdvSkew {
		parts = append(parts, fmt.Sprintf("advertising advskew %d", v.AdvertisedSkew))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// formatSources lists the sources of a demotion: ": +240 interface down
// (101@eth1), +50 operator (patching)".
func formatSources(ds []api.Demotion) string {
	if len(ds) == 0 {
		return ""
	}
	var parts []string
	for _, d := range ds {
		s := fmt.Sprintf("%+d %s", d.Delta, d.Source)
		var detail []string
		if d.Interface != "" {
			detail = append(detail, fmt.Sprintf("%d@%s", d.VHID, d.Interface))
		}
		if d.Reason != "" && d.Reason != d.Source && d.Reason != "operator" {
			detail = append(detail, d.Reason)
		}
		if len(detail) > 0 {
			s += " (" + strings.Join(detail, ": ") + ")"
		}
		parts = append(parts, s)
	}
	return ": " + strings.Join(parts, ", ")
}

// since prints a duration as ifconfig-like "4m12s", to the second.
func since(d time.Duration) string {
	return d.Round(time.Second).String()
}

// formatStats prints the counters in FreeBSD's netstat -s -p carp words,
// then carpd's own.
func formatStats(st api.Stats) string {
	var b strings.Builder
	p := func(indent string, n uint64, one, many string) {
		w := many
		if n == 1 {
			w = one
		}
		fmt.Fprintf(&b, "%s%d %s\n", indent, n, w)
	}
	b.WriteString("carp:\n")
	p("\t", st.ReceivedInet, "packet received (IPv4)", "packets received (IPv4)")
	p("\t", st.ReceivedInet6, "packet received (IPv6)", "packets received (IPv6)")
	p("\t\t", st.DroppedWrongTTL, "packet discarded for wrong TTL", "packets discarded for wrong TTL")
	p("\t\t", st.DroppedShortHeader, "packet shorter than header", "packets shorter than header")
	p("\t\t", st.DroppedBadChecksum, "discarded for bad checksum", "discarded for bad checksums")
	p("\t\t", st.DroppedBadVersion, "discarded packet with a bad version", "discarded packets with a bad version")
	p("\t\t", st.DroppedShortPacket, "discarded because packet too short", "discarded because packet too short")
	p("\t\t", st.DroppedBadAuth, "discarded for bad authentication", "discarded for bad authentication")
	p("\t\t", st.DroppedBadVHID, "discarded for bad vhid", "discarded for bad vhid")
	p("\t\t", st.DroppedBadAddrList, "discarded because of a bad address list", "discarded because of a bad address list")
	p("\t", st.SentInet, "packet sent (IPv4)", "packets sent (IPv4)")
	p("\t", st.SentInet6, "packet sent (IPv6)", "packets sent (IPv6)")
	p("\t\t", st.SendFailed, "send failed", "send failed")
	if vr := st.VRRP; vr.ReceivedInet+vr.ReceivedInet6+vr.SentInet+vr.SentInet6+vr.SendFailed > 0 {
		b.WriteString("vrrp:\n")
		p("\t", vr.ReceivedInet, "packet received (IPv4)", "packets received (IPv4)")
		p("\t", vr.ReceivedInet6, "packet received (IPv6)", "packets received (IPv6)")
		for _, r := range vrrpDrops {
			p("\t\t", vr.Drops[r.key], r.one, r.many)
		}
		p("\t", vr.SentInet, "packet sent (IPv4)", "packets sent (IPv4)")
		p("\t", vr.SentInet6, "packet sent (IPv6)", "packets sent (IPv6)")
		p("\t\t", vr.SendFailed, "send failed", "send failed")
	}
	b.WriteString("carpd:\n")
	p("\t", st.DroppedLoop, "discarded as our own advert reflected or replayed (loop)", "discarded as our own adverts reflected or replayed (loop)")
	p("\t", st.DroppedReplay, "discarded by replay protection (replay)", "discarded by replay protection (replay)")
	p("\t", st.DroppedBadPeer, "discarded from another host than the unicast peer", "discarded from other hosts than the unicast peer")
	p("\t", st.DroppedQueueFull, "discarded because the event loop was behind", "discarded because the event loop was behind")
	p("\t", st.Transitions, "state transition", "state transitions")
	p("\t", st.Announcements, "announcement (gratuitous ARP / neighbour advertisement)", "announcements (gratuitous ARP / neighbour advertisements)")
	p("\t", st.AddressRestores, "address put right underneath", "addresses put right underneath")
	p("\t", st.MonitorResyncs, "link and address monitor resynchronisation", "link and address monitor resynchronisations")
	p("\t", st.HookRuns, "hook run", "hook runs")
	p("\t\t", st.HookFailures, "failed or timed out", "failed or timed out")
	return b.String()
}

// vrrpDrops are the VRRP drop reasons, in netstat's words.
var vrrpDrops = []struct{ key, one, many string }{
	{"badttl", "packet discarded for wrong TTL", "packets discarded for wrong TTL"},
	{"hdrops", "packet shorter than header", "packets shorter than header"},
	{"badsum", "discarded for bad checksum", "discarded for bad checksums"},
	{"badver", "discarded packet with a bad version", "discarded packets with a bad version"},
	{"badlen", "discarded because the length does not match the address count", "discarded because the length does not match the address count"},
	{"badinterval", "discarded for an interval of 0", "discarded for an interval of 0"},
	{"badaf", "discarded for a bad address family", "discarded for a bad address family"},
	{"badvrid", "discarded for bad vrid", "discarded for bad vrid"},
	{"loop", "discarded as our own advert reflected (loop)", "discarded as our own adverts reflected (loop)"},
}

// formatBGP prints the bgp mover's speaker: each session and the routes
// announced.
//
//	bgp peer 192.0.2.1 as 65000: established, 1 route advertised
//	bgp routes announced: 203.0.113.50/32
func formatBGP(b *strings.Builder, g *api.BGP) {
	if g == nil {
		return
	}
	if g.Error != "" {
		fmt.Fprintf(b, "bgp: state unreadable: %s\n", g.Error)
	}
	for _, p := range g.Peers {
		s := "s"
		if p.Advertised == 1 {
			s = ""
		}
		fmt.Fprintf(b, "bgp peer %s as %d: %s, %d route%s advertised\n", p.Address, p.AS, p.State, p.Advertised, s)
	}
	routes := "none"
	if len(g.Routes) > 0 {
		routes = strings.Join(g.Routes, " ")
	}
	fmt.Fprintf(b, "bgp routes announced: %s\n", routes)
}
