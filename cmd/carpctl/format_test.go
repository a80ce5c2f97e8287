package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
)

func TestFormatStatus(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 7, 16, 0, time.Local)
	changed := time.Date(2026, 1, 1, 12, 3, 4, 0, time.Local)
	st := api.Status{
		Demotion:  240,
		Demotions: []api.Demotion{{Source: "interface down", VHID: 101, Interface: "eth1", Delta: 240, Reason: "interface down"}},
		VHIDs: []api.VHID{{
			Interface: "eth0", VHID: 100, State: "MASTER", AdvBase: 1, AdvSkew: 100, AdvertisedSkew: 240, Demotion: 240,
			Peer: "224.0.0.18", Peer6: "ff02::12", Addresses: []string{"192.0.2.50/32", "2001:db8::50/64"},
			LastChange:  &api.Transition{Time: changed, From: "BACKUP", To: "MASTER", Reason: "master timed out"},
			MasterSince: &changed, Why: "MASTER: advertising advbase 1 advskew 240; no other host heard",
		}},
	}
	want := `demotion 240: +240 interface down (101@eth1)
eth0: carp: MASTER vhid 100 advbase 1 advskew 100
      peer 224.0.0.18 peer6 ff02::12
      inet 192.0.2.50/32 vhid 100
      inet6 2001:db8::50/64 vhid 100
      demotion 240 (advertising advskew 240); last change 12:03:04 BACKUP -> MASTER (master timed out); master since 4m12s
      MASTER: advertising advbase 1 advskew 240; no other host heard
`
	if got := formatStatus(st, now); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestFormatStatusVRRP: a VRRP instance in FreeBSD 15's words, with its
// family, primary address, preempt and tie-break, the master's interval
// when it differs, and the demoted priority advertised.
func TestFormatStatusVRRP(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 7, 16, 0, time.Local)
	st := api.Status{
		Demotion: 20,
		VHIDs: []api.VHID{{
			Interface: "eth0", VHID: 1, Protocol: "vrrp", Family: "inet6", State: "BACKUP", Priority: 100, AdvertisedPriority: 80, Demotion: 20,
			Interval: 100, MasterAdverInterval: 10, Preempt: true, TieBreak: true, Peer: "ff02::12", PrimaryAddress: "fe80::1",
			Addresses: []string{"2001:db8::50/64"},
			Why:       "BACKUP: master fe80::2 advertises priority 150 interval 10, ours 80; takes over after 36.875ms without it",
		}},
	}
	want := `demotion 20
eth0: vrrp: BACKUP vrid 1 prio 100 interval 100
      af inet6 group ff02::12 primary fe80::1 preempt tiebreak master_adver_interval 10
      inet6 2001:db8::50/64 vhid 1
      demotion 20 (advertising prio 80)
      BACKUP: master fe80::2 advertises priority 150 interval 10, ours 80; takes over after 36.875ms without it
`
	if got := formatStatus(st, now); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestFormatStatusVHIDDemotion: two vhids on two interfaces, a failing
// check of one: only its line shows a demotion, the host's (0) is shown
// once, first.
func TestFormatStatusVHIDDemotion(t *testing.T) {
	since := time.Date(2026, 1, 1, 12, 3, 4, 0, time.Local)
	st := api.Status{
		Demotion: 0,
		VHIDs: []api.VHID{
			{Interface: "eth0", VHID: 100, State: "MASTER", AdvBase: 1, AdvSkew: 100, AdvertisedSkew: 100, Why: "MASTER"},
			{Interface: "eth1", VHID: 101, State: "BACKUP", AdvBase: 1, AdvSkew: 100, AdvertisedSkew: 130, Demotion: 30, Why: "BACKUP"},
		},
		Checks: []api.Check{{Name: "web", Kind: "tcp", Target: "127.0.0.1:80", Since: since, Detail: "refused",
			Action: "demote", Weight: 30, Demotion: 30, VHIDs: []string{"101@eth1"}}},
	}
	got := formatStatus(st, since)
	var demotions []string
	for _, l := range strings.Split(got, "\n") {
		if strings.Contains(l, "demotion") {
			demotions = append(demotions, l)
		}
	}
	want := []string{
		"demotion 0",
		"      demotion 0",
		"      demotion 30 (host 0, its checks +30; advertising advskew 130)",
	}
	if strings.Join(demotions, "\n") != strings.Join(want, "\n") {
		t.Errorf("demotion lines:\n%s\nwant:\n%s\nin:\n%s", strings.Join(demotions, "\n"), strings.Join(want, "\n"), got)
	}
}

func TestFormatStats(t *testing.T) {
	got := formatStats(api.Stats{ReceivedInet: 1, DroppedBadAuth: 3, SentInet: 12})
	for _, want := range []string{
		"carp:\n\t1 packet received (IPv4)\n\t0 packets received (IPv6)\n",
		"\t\t3 discarded for bad authentication\n",
		"\t12 packets sent (IPv4)\n",
		"carpd:\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("stats lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "vrrp:") {
		t.Errorf("a host without VRRP gets VRRP counters:\n%s", got)
	}
	got = formatStats(api.Stats{VRRP: api.VRRPStats{ReceivedInet6: 5, SentInet: 7, Drops: map[string]uint64{"badsum": 2, "badvrid": 1}}})
	for _, want := range []string{
		"vrrp:\n\t0 packets received (IPv4)\n\t5 packets received (IPv6)\n",
		"\t\t2 discarded for bad checksums\n",
		"\t\t1 discarded for bad vrid\n",
		"\t7 packets sent (IPv4)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("stats lack %q:\n%s", want, got)
		}
	}
}

// TestCommandLine: usage errors and the exit status when no carpd runs.
func TestCommandLine(t *testing.T) {
	sock := t.TempDir() + "/none.sock"
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "usage: carpctl"},
		{[]string{"--control", sock, "frob"}, exitUsage, `unknown command "frob"`},
		{[]string{"--control", sock, "state", "100"}, exitUsage, "usage: carpctl state"},
		{[]string{"--control", sock, "state", "0", "master"}, exitUsage, "want VHID[@IFACE]"},
		{[]string{"--control", sock, "demote"}, exitUsage, "usage: carpctl demote"},
		{[]string{"--control", sock, "demote", "+1", "--clear"}, exitUsage, "usage: carpctl demote"},
		{[]string{"--control", sock, "demote", "abc"}, exitUsage, `unexpected argument "abc"`},
		{[]string{"--control", sock, "status", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"--control", sock, "status"}, exitNotRunning, "carpd is not running"},
		{[]string{"--control", sock, "demote", "-240"}, exitNotRunning, "carpd is not running"},
		{[]string{"--control", sock, "is-master", "100"}, exitNotRunning, "carpd is not running"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("carpctl %v: exit %d, %q; want %d, %q", tc.args, code, errOut.String(), tc.code, tc.want)
		}
	}
}

// TestFormatStatusEtcd: an etcd vhid shows its election: this node, the
// leader and its tenure, the lease and TTL, the time left to D, the last
// renewal's round trip and the watch restarts; no peer line.
func TestFormatStatusEtcd(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 7, 16, 0, time.Local)
	d := now.Add(2412 * time.Millisecond)
	st := api.Status{VHIDs: []api.VHID{{
		Interface: "eth0", VHID: 100, Protocol: "etcd", State: "MASTER", AdvSkew: 0,
		Addresses: []string{"192.0.2.50/32"}, Why: "MASTER: holds the leader key (tenure 42), 2.412s left to its fence deadline",
		Etcd: &api.Etcd{Node: "h1", Leader: "h1", Tenure: 42, Lease: 0x694d7a1b, TTL: 4, FenceDeadline: &d, RenewLatency: 0.00123, WatchRestarts: 1},
	}}}
	want := `demotion 0
eth0: etcd: MASTER vhid 100 advskew 0
      node h1 leader h1 tenure 42 lease 694d7a1b ttl 4s; fence deadline in 2.412s; renewal 1.2ms; watch restarts 1
      inet 192.0.2.50/32 vhid 100
      demotion 0
      MASTER: holds the leader key (tenure 42), 2.412s left to its fence deadline
`
	if got := formatStatus(st, now); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
