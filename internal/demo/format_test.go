package demo

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carpd/carpd/internal/probe"
)

func TestRCConf(t *testing.T) {
	tests := []struct {
		n    node
		want string
	}{
		{nodes[0], `ifconfig_eth0="inet 192.0.2.21 netmask 255.255.255.0"
ifconfig_eth0_alias0="inet 192.0.2.50/32 vhid 100 advskew 100 pass lampros"
`},
		{nodes[1], `ifconfig_eth0="inet 192.0.2.22 netmask 255.255.255.0"
ifconfig_eth0_alias0="inet alias 192.0.2.50/32 vhid 100 advskew 200 pass lampros"
`},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, rcConf(tt.n)); diff != "" {
			t.Errorf("rcConf(%s) (-want +got):\n%s", tt.n.name, diff)
		}
	}
}

func TestMasterDownBound(t *testing.T) {
	tests := []struct {
		advbase, advskew int
		want             time.Duration
	}{
		{1, 0, 3 * time.Second},
		{1, 200, 3*time.Second + 781250*time.Microsecond},
		{2, 128, 6500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := masterDownBound(tt.advbase, tt.advskew); got != tt.want {
			t.Errorf("masterDownBound(%d, %d) = %v, want %v", tt.advbase, tt.advskew, got, tt.want)
		}
	}
}

func TestFormatStats(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.50")
	bound := masterDownBound(1, 200)
	tests := []struct {
		name   string
		s      probe.Stats
		outage time.Duration
		want   string
	}{
		{
			name:   "failover",
			s:      probe.Stats{Sent: 25, Received: 21, Lost: 4, LostRuns: 1, Recovered: true},
			outage: 3420 * time.Millisecond,
			want: `Ping statistics for 192.0.2.50:
    Packets: Sent = 25, Received = 21, Lost = 4 (16% loss),
Outage: 3.4 s, measured by a probe every 100ms (CARP bound 3*advbase + advskew/256 = 3.78 s)
`,
		},
		{
			name: "no loss",
			s:    probe.Stats{Sent: 3, Received: 3, Recovered: true},
			want: `Ping statistics for 192.0.2.50:
    Packets: Sent = 3, Received = 3, Lost = 0 (0% loss),
Outage: none seen by a probe every 100ms (CARP bound 3*advbase + advskew/256 = 3.78 s)
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := formatStats(vip, tt.s, tt.outage, 100*time.Millisecond, bound, carpBound)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("formatStats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHeldBy(t *testing.T) {
	states := map[string]string{"master": "BACKUP", "backup": "MASTER"}
	tests := []struct {
		holders []string
		want    string
	}{
		{[]string{"backup"}, "backup (master is BACKUP)"},
		{[]string{"master"}, "master (backup is MASTER)"},
		{nil, "nobody (master is BACKUP, backup is MASTER)"},
		{[]string{"master", "backup"}, "master and backup (two masters!)"},
	}
	for _, tt := range tests {
		if got := heldBy(tt.holders, states); got != tt.want {
			t.Errorf("heldBy(%v) = %q, want %q", tt.holders, got, tt.want)
		}
	}
}

func TestLastState(t *testing.T) {
	tests := []struct {
		output, want string
	}{
		{"", "INIT"},
		{"starting\n", "INIT"},
		{"carp: 100@eth0: INIT -> BACKUP (initialization complete)\n", "BACKUP"},
		{`time=2024-01-01T00:00:00Z level=INFO msg="carp: 100@eth0: INIT -> BACKUP (initialization complete)"
time=2024-01-01T00:00:03Z level=INFO msg="carp: 100@eth0: BACKUP -> MASTER (master timed out)"
`, "MASTER"},
	}
	for _, tt := range tests {
		if got := lastState(tt.output); got != tt.want {
			t.Errorf("lastState(%q) = %q, want %q", tt.output, got, tt.want)
		}
	}
}

func TestOrderer(t *testing.T) {
	var b strings.Builder
	p := &printer{w: &b}
	var o orderer
	for _, seq := range []int{2, 1, 4, 5, 3} {
		o.add(seq, fmt.Sprintf("%d\n", seq), p)
	}
	if diff := cmp.Diff("1\n2\n3\n4\n5\n", b.String()); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	o.add(7, "7\n", p)
	if strings.Contains(b.String(), "7") {
		t.Error("line 7 printed before line 6")
	}
}

func TestLogLine(t *testing.T) {
	tests := []struct {
		line, want string
	}{
		{"carp: 100@eth0: INIT -> BACKUP (initialization complete)", "carp: 100@eth0: INIT -> BACKUP (initialization complete)"},
		{`time=2026-11-25T19:41:08.087Z level=INFO msg="carp: 100@eth0: BACKUP -> MASTER (master timed out)" vhid=100 iface=eth0 state=MASTER`,
			"19:41:08.087 carp: 100@eth0: BACKUP -> MASTER (master timed out)"},
		{`time=2026-11-25T19:41:08Z level=WARN msg="say \"hi\"" x=1`, `19:41:08.000 say "hi"`},
		{`time=bad level=INFO msg=plain`, "plain"},
		{"  padded  ", "padded"},
	}
	for _, tt := range tests {
		if got := logLine(tt.line); got != tt.want {
			t.Errorf("logLine(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}
