package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
)

// execIn returns the command args run in namespace ns.
func execIn(ctx context.Context, ns string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// cliGoodTOML uses most keys, IPv4 and IPv6 addresses, a peer and the
// virtual MAC: a checker must accept it and must not act on it.
const cliGoodTOML = `preempt = true
preempt-delay = "5s"
dscp = 56
log-level = "debug"

[[vhid]]
interface = "eth0"
vhid = 100
advskew = 100
password = "lampros"
addresses = ["192.0.2.50/32", "192.0.2.51/32", "2001:db8::50/128"]
virtual-mac = true

[[vhid]]
interface = "eth0"
vhid = 101
advbase = 2
addresses = ["198.51.100.7"]
peer = "198.51.100.2"
preempt = false
`

// cliBadTOML has three errors, on lines 5, 7 and 8.
const cliBadTOML = `preempt = true

[[vhid]]
interface = "eth0"
vhid = 300
advskew = 100
addresses = ["192.0.2.50/33", "2001:db8::50/128"]
advskeww = 10
`

// cliBadRC has two errors, on lines 2 and 3.
const cliBadRC = `ifconfig_eth0="inet 192.0.2.22 netmask 255.255.255.0"
ifconfig_eth0_alias0="inet 192.0.2.50/32 vhid 256 pass lampros"
ifconfig_eth0_alias1="inet 192.0.2.51/32 vhid 100 advskew 255 pass lampros"
`

// cliMissingIface is good as a file but names eth9, which lab hosts lack.
const cliMissingIface = `[[vhid]]
interface = "eth9"
vhid = 100
addresses = ["192.0.2.50/32"]
`

// TestCommandLine runs carpd's checks and bad command lines in a lab host
// that holds the VIP 192.0.2.50/32 on eth0: each exits with the documented
// status and messages, and none touches the host (the VIP stays, no
// macvlan appears, eth0's ARP settings are unchanged).
func TestCommandLine(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	requireRoot(t)
	l := labtest.New(t, "carpcli")
	h, err := l.AddHost("host", backupAddr, netipPrefix("2001:db8::22/64"), netipPrefix("192.0.2.50/32"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.toml", cliGoodTOML)
	bad := write("bad.toml", cliBadTOML)
	badRC := write("bad.rc.conf", cliBadRC)
	missing := write("missing.toml", cliMissingIface)
	example, err := filepath.Abs("../examples/carpd.toml")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		// want are regular expressions that must each match a line of
		// the output.
		want []string
	}{
		{"check-config good TOML", []string{"--check-config", good}, 0,
			[]string{`good\.toml: configuration OK \(2 vhid\(s\)\)`}},
		{"check-config the example", []string{"--check-config", example}, 0,
			[]string{`carpd\.toml: configuration OK`}},
		{"check-config TOML with 3 errors", []string{"--check-config", bad}, 2, []string{
			`^carpd: .*/bad\.toml:5: "vhid = 300": .*1\.\.255`,
			`^carpd: .*/bad\.toml:7: "192\.0\.2\.50/33": `,
			`^carpd: .*/bad\.toml:8: "advskeww": unknown key`,
		}},
		{"check-config bad rc.conf", []string{"--check-config", badRC}, 2, []string{
			`^carpd: .*/bad\.rc\.conf:2: "vhid 256": .*1\.\.255`,
			`^carpd: .*/bad\.rc\.conf:3: "advskew 255": .*0\.\.254`,
		}},
		{"config with check", []string{"--config", good, "--check"}, 0,
			[]string{`good\.toml: configuration OK`}},
		{"config with check, missing interface", []string{"--config", missing, "--check"}, 2,
			[]string{`^carpd: .*missing\.toml.*eth9`}},
		{"config, missing interface", []string{"--config", missing}, 78,
			[]string{`^carpd: .*missing\.toml.*eth9`}},
		{"rc-conf, bad", []string{"--rc-conf", badRC}, 78,
			[]string{`^carpd: .*/bad\.rc\.conf:2: "vhid 256"`}},
		{"unknown flag", []string{"--config", good, "--frobnicate"}, 64,
			[]string{`frobnicate`}},
		{"no configuration", nil, 64,
			[]string{`^carpd: no configuration: neither /etc/carpd/carpd\.toml nor /etc/carpd/rc\.conf exists`}},
		{"two configurations", []string{"--config", good, "--rc-conf", badRC}, 64,
			[]string{`^carpd: give one of --config`}},
		{"stray argument", []string{"--config", good, "extra"}, 64,
			[]string{`^carpd: .*"extra"`}},
		{"missing file", []string{"--check-config", filepath.Join(dir, "nonexistent.toml")}, 2,
			[]string{`nonexistent\.toml`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := execIn(ctx, h.NS, append([]string{carpdBin}, tc.args...)...).CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("carpd %q still running after 10 s; output:\n%s", tc.args, out)
			}
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Errorf("carpd %q: exit status %d, want %d; output:\n%s", tc.args, code, tc.code, out)
			}
			lines := strings.Split(string(out), "\n")
			for _, w := range tc.want {
				re := regexp.MustCompile(w)
				if !matchAny(re, lines) {
					t.Errorf("carpd %q: no line matches %q; output:\n%s", tc.args, w, out)
				}
			}
			checkUntouched(t, h)
		})
	}
}

// TestCheckConfigIsFileOnly: --check-config checks the file, not the host
// (--check does that): a good file naming an interface this host lacks
// passes, so that configurations can be checked anywhere.
func TestCheckConfigIsFileOnly(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	requireRoot(t)
	l := labtest.New(t, "carpcli")
	h, err := l.AddHost("host", backupAddr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-host.toml")
	if err := os.WriteFile(path, []byte(cliMissingIface), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := execIn(ctx, h.NS, carpdBin, "--check-config", path).CombinedOutput()
	if err != nil {
		t.Errorf("carpd --check-config on a good file naming eth9: %v, want exit status 0; output:\n%s", err, out)
	}
}

func matchAny(re *regexp.Regexp, lines []string) bool {
	for _, l := range lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// checkUntouched fails unless h still holds 192.0.2.50 on eth0, has no
// macvlan and eth0's ARP settings are the kernel's defaults.
func checkUntouched(t *testing.T, h *lab.Host) {
	t.Helper()
	if on := hostAddrs(t, h)[vip]; !slices.Equal(on, []string{h.Iface}) {
		t.Errorf("after the command %s holds %v on %q, want on %s only", h.Name, vip, on, h.Iface)
	}
	for name, l := range hostLinks(t, h) {
		if l.Kind == "macvlan" {
			t.Errorf("after the command %s has a macvlan %s", h.Name, name)
		}
	}
	for _, key := range []string{"arp_ignore", "arp_announce"} {
		if got := hostSysctl(t, h, "net/ipv4/conf/eth0/"+key); got != "0" {
			t.Errorf("after the command %s: net.ipv4.conf.eth0.%s = %s, want 0", h.Name, key, got)
		}
	}
}
