package vrrp

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
)

var capture = flag.Bool("capture", false, "regenerate testdata/keepalived-*.pcap by running keepalived in namespaces (root)")

// keepalivedConf is the configuration of one keepalived running all of
// captureCases, each its own vrrp_instance.
func keepalivedConf() string {
	var b strings.Builder
	b.WriteString("global_defs {\n\tvrrp_version 3\n}\n")
	for _, c := range captureCases {
		fmt.Fprintf(&b, "vrrp_instance V%d {\n\tinterface %s\n\tstate MASTER\n\tvirtual_router_id %d\n\tpriority %d\n\tadvert_int %s\n\tvirtual_ipaddress {\n",
			c.vrid, lab.Iface, c.vrid, c.priority, c.advert)
		for _, v := range c.vips {
			bits := 32
			if strings.Contains(v, ":") {
				bits = 128
			}
			fmt.Fprintf(&b, "\t\t%s/%d\n", v, bits)
		}
		b.WriteString("\t}\n}\n")
	}
	return b.String()
}

// TestCaptureKeepalived regenerates the captures TestKeepalivedPcaps
// reads: `go test ./internal/vrrp/ -run TestCaptureKeepalived -capture` as
// root. One keepalived (Debian's 2.2.7) runs the instances of captureCases
// as MASTER in a namespace on a lab segment (192.0.2.1/24, 2001:db8::1/64
// and a link-local address); a tcpdump per instance, in a second host on
// the segment, keeps the first adverts of its VRID.
func TestCaptureKeepalived(t *testing.T) {
	if !*capture {
		t.Skip("-capture not given")
	}
	labtest.RequireRoot(t)
	keepalived := "/usr/sbin/keepalived"
	labtest.File(t, keepalived)
	l, err := lab.New("vrrpcap")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ka, err := l.AddHost("ka", netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::1/64"))
	if err != nil {
		t.Fatal(err)
	}
	obs, err := l.AddHost("obs", netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("2001:db8::2/64"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(testdata, 0o755); err != nil {
		t.Fatal(err)
	}
	var dumps []*lab.Proc
	for _, c := range captureCases {
		// Byte 1 of the VRRP header is the VRID; IPv4 headers without
		// options (keepalived sends none) and IPv6 without extensions.
		filter := fmt.Sprintf("ip proto 112 and ip[21] = %d", c.vrid)
		if c.is6() {
			filter = fmt.Sprintf("ip6 and ip6[6] = 112 and ip6[41] = %d", c.vrid)
		}
		p, err := obs.Start("tcpdump "+c.name, "tcpdump", "-i", lab.Iface, "-n", "-Z", "root", "--immediate-mode", "-U",
			"-c", fmt.Sprint(c.packets), "-w", filepath.Join(testdata, c.name+".pcap"), filter)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitOutput(ctx, "listening on"); err != nil {
			t.Fatal(err)
		}
		dumps = append(dumps, p)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(keepalivedConf()), 0o644); err != nil {
		t.Fatal(err)
	}
	kp, err := ka.Start("keepalived", keepalived, "--dont-fork", "--log-console", "--no-syslog", "--vrrp",
		"--use-file="+conf, "--pid="+filepath.Join(dir, "k.pid"), "--vrrp_pid="+filepath.Join(dir, "v.pid"),
		"--checkers_pid="+filepath.Join(dir, "c.pid"))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range dumps {
		select {
		case <-p.Done():
			if p.ExitCode() != 0 {
				t.Fatalf("%s: exit %d: %s", p.Name, p.ExitCode(), p.Output())
			}
		case <-ctx.Done():
			t.Fatalf("%s: %d adverts not captured in time; keepalived:\n%s", captureCases[i].name, captureCases[i].packets, kp.Output())
		}
	}
	_ = kp.Kill()
	t.Logf("keepalived:\n%s", kp.Output())
}
