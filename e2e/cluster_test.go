// Package e2e runs the real carpd binary in network namespaces: two CARP
// hosts and a client on one bridged segment, as in FreeBSD's walkthrough.
// The tests need root; they are skipped otherwise.
package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
	"github.com/carpd/carpd/internal/probe"
	"golang.org/x/sys/unix"
)

var carpdBin, carpctlBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: not root: the namespace tests are skipped")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "carpd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// dir is readable by all, for the tests that run carpctl as another
	// user.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	carpdBin = filepath.Join(dir, "carpd")
	carpctlBin = filepath.Join(dir, "carpctl")
	for bin, pkg := range map[string]string{carpdBin: "../cmd/carpd", carpctlBin: "../cmd/carpctl"} {
		build := exec.Command("go", "build", "-o", bin+".link", pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		err := build.Run()
		if err == nil {
			err = installBinary(bin+".link", bin)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: building", pkg+":", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// installBinary copies the linker's output to dst, as a package installs
// a binary, and drops the copy from the page cache, so that the tests run
// it as read from disk after a boot. The RSS figures depend on it: a file
// written in one go (the Go linker's output, or os.WriteFile's) sits in
// the page cache in large folios that Linux 6.18 maps whole, in 2 MB
// pages, at the first touch, so that every page of carpd's text and
// read-only data counted in its RSS (30.6 MB idle with one vhid, against
// 23.4 MB for the same binary read from disk).
func installBinary(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync() // written back: the advice below drops clean pages only
	}
	if err == nil {
		err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	return os.Remove(src)
}

// The walkthrough's addresses, moved to the documentation range.
var (
	vip        = netip.MustParseAddr("192.0.2.50")
	masterAddr = netip.MustParsePrefix("192.0.2.21/24")
	backupAddr = netip.MustParsePrefix("192.0.2.22/24")
	clientAddr = netip.MustParsePrefix("192.0.2.100/24")
)

// masterDown is the backup's master-down interval: 3*advbase + advskew/256
// with advbase 1 and advskew 200.
const masterDown = 3*time.Second + 200*time.Second/256

// rcConf returns the seed's rc.conf lines for a host, em0 renamed to eth0.
func rcConf(own netip.Prefix, master bool) string {
	line := `ifconfig_eth0_alias0="inet alias 192.0.2.50/32 vhid 100 advskew 200 pass lampros"`
	if master {
		line = `ifconfig_eth0_alias0="inet 192.0.2.50/32 vhid 100 advskew 100 pass lampros"`
	}
	return fmt.Sprintf("ifconfig_eth0=\"inet %s netmask 255.255.255.0\"\n%s\n", own.Addr(), line)
}

type cluster struct {
	t                      testing.TB
	lab                    *lab.Lab
	master, backup, client *lab.Host
	dir                    string
	flags                  []string

	mu    sync.Mutex
	procs map[*lab.Host]*lab.Proc
}

// requireRoot: the test needs root (network namespaces); a failure with CI
// set (labtest.Missing).
func requireRoot(t testing.TB) {
	t.Helper()
	labtest.RequireRoot(t)
}

// newCluster builds the walkthrough's three hosts; flags are passed to both
// carpd processes.
func newCluster(t testing.TB, flags ...string) *cluster {
	t.Helper()
	requireRoot(t)
	l := labtest.New(t, "carpe2e")
	c := &cluster{t: t, lab: l, dir: t.TempDir(), flags: flags, procs: map[*lab.Host]*lab.Proc{}}
	for _, h := range []struct {
		name string
		p    netip.Prefix
		dst  **lab.Host
	}{{"master", masterAddr, &c.master}, {"backup", backupAddr, &c.backup}, {"client", clientAddr, &c.client}} {
		host, err := l.AddHost(h.name, h.p)
		if err != nil {
			t.Fatal(err)
		}
		*h.dst = host
	}
	for _, h := range []*lab.Host{c.master, c.backup} {
		own := masterAddr
		if h == c.backup {
			own = backupAddr
		}
		if err := os.WriteFile(c.rcPath(h), []byte(rcConf(own, h == c.master)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for h, p := range c.procs {
				t.Logf("carpd on %s:\n%s", h.Name, p.Output())
			}
		}
	})
	return c
}

func (c *cluster) rcPath(h *lab.Host) string { return filepath.Join(c.dir, h.Name+".rc.conf") }

// ownFiles returns the flags that give the carpd of configuration cfg its
// own control socket and state file, beside cfg.
func ownFiles(cfg string) []string {
	return []string{"--control", ownSock(cfg), "--state-file", cfg + ".state"}
}

// ownSock is the control socket ownFiles gives the carpd of cfg.
func ownSock(cfg string) string { return cfg + ".sock" }

// ctlPath is the control socket of h's carpd.
func (c *cluster) ctlPath(h *lab.Host) string { return filepath.Join(c.dir, h.Name+".sock") }

// start starts carpd on h with the cluster's flags.
func (c *cluster) start(h *lab.Host) *lab.Proc {
	c.t.Helper()
	return c.startCarpd(h, "--rc-conf", c.rcPath(h), "--log-level", "debug")
}

// startCarpd starts carpd on h with args and the cluster's flags, and
// records it as h's carpd.
func (c *cluster) startCarpd(h *lab.Host, args ...string) *lab.Proc {
	c.t.Helper()
	return c.startWrapped(h, nil, args...)
}

// startWrapped starts carpd on h as startCarpd does, its command line
// prefixed by wrap (env VAR=..., setpriv ...).
// runInstead is a wrap for startWrapped that runs bin in place of the
// carpd built for the tests, which the wrap is given first: an A/B of two
// builds in the benchmarks.
func runInstead(bin string) []string {
	return []string{"sh", "-c", `shift; exec "$0" "$@"`, bin}
}

func (c *cluster) startWrapped(h *lab.Host, wrap []string, args ...string) *lab.Proc {
	c.t.Helper()
	// Each carpd its own control socket and state file.
	if !slices.Contains(args, "--control") {
		args = append(args, "--control", c.ctlPath(h))
	}
	if !slices.Contains(args, "--state-file") {
		args = append(args, "--state-file", filepath.Join(c.dir, h.Name+".state"))
	}
	args = append(append(append(slices.Clone(wrap), carpdBin), args...), c.flags...)
	p, err := h.Start("carpd", args...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.procs[h] = p
	c.mu.Unlock()
	return p
}

// reboot takes h down as a power cut would: carpd SIGKILLed, the link down,
// its addresses gone.
func (c *cluster) reboot(h *lab.Host) {
	c.t.Helper()
	c.mu.Lock()
	p := c.procs[h]
	c.mu.Unlock()
	powerCut(c.t, h, p)
}

// powerCut takes h down as a power cut would: its carpd p SIGKILLed, its
// link down, its addresses gone.
func powerCut(t testing.TB, h *lab.Host, p *lab.Proc) {
	t.Helper()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.Wait()
	if err := h.LinkDown(); err != nil {
		t.Fatal(err)
	}
	if err := h.FlushAddrs(); err != nil {
		t.Fatal(err)
	}
}

// bootBack brings h back after reboot: link up, own address, carpd.
func (c *cluster) bootBack(h *lab.Host, own netip.Prefix) *lab.Proc {
	c.t.Helper()
	if err := h.LinkUp(); err != nil {
		c.t.Fatal(err)
	}
	if err := h.AddAddr(own); err != nil {
		c.t.Fatal(err)
	}
	return c.start(h)
}

// holders returns the names of the hosts that hold the virtual address.
func (c *cluster) holders() []string {
	c.t.Helper()
	return holdersOf(c.t, vip, c.master, c.backup)
}

// waitHolder polls until exactly host holds the VIP, and returns how long it took.
func (c *cluster) waitHolder(h *lab.Host, timeout time.Duration) (time.Duration, bool) {
	return waitSole(c.t, h, timeout, c.master, c.backup)
}

// holdersOf returns the names of those hosts that hold a.
func holdersOf(t testing.TB, a netip.Addr, hosts ...*lab.Host) []string {
	t.Helper()
	var names []string
	for _, h := range hosts {
		ok, err := h.Holds(a)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			names = append(names, h.Name)
		}
	}
	return names
}

// waitSole polls until h alone among hosts holds the VIP, and returns how
// long it took.
func waitSole(t testing.TB, h *lab.Host, timeout time.Duration, hosts ...*lab.Host) (time.Duration, bool) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if got := holdersOf(t, vip, hosts...); len(got) == 1 && got[0] == h.Name {
			return time.Since(start), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), false
}

// isolatePorts sets or clears the bridge's isolated flag on the switch
// ports of hosts: isolated ports exchange no frames with each other but
// still with the others (the client). Isolating both CARP hosts splits them
// without a carrier loss, as a multicast filter would.
func isolatePorts(t testing.TB, l *lab.Lab, on bool, hosts ...*lab.Host) {
	t.Helper()
	flag := map[bool]string{true: "on", false: "off"}[on]
	for _, h := range hosts {
		out, err := exec.Command("ip", "netns", "exec", l.Switch,
			"ip", "link", "set", "dev", h.Port, "type", "bridge_slave", "isolated", flag).CombinedOutput()
		if err != nil {
			t.Fatalf("isolated %s on switch port %s: %v: %s", flag, h.Port, err, out)
		}
	}
}

// prober pings the VIP from the client every interval until stop is called.
type prober struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	res    []probe.Result
	err    error
}

func (c *cluster) ping(interval time.Duration) *prober {
	c.t.Helper()
	return startPing(c.t, c.client, vip, interval)
}

// startPing pings dst from a host every interval until the prober is
// stopped (at the latest at cleanup).
func startPing(t testing.TB, from *lab.Host, dst netip.Addr, interval time.Duration) *prober {
	t.Helper()
	var p *probe.Prober
	if err := from.Do(func() (err error) { p, err = probe.Listen(); return err }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr := &prober{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(pr.done)
		defer p.Close()
		_, err := p.Run(ctx, dst, interval, func(r probe.Result) {
			pr.mu.Lock()
			pr.res = append(pr.res, r)
			pr.mu.Unlock()
		})
		pr.mu.Lock()
		pr.err = err
		pr.mu.Unlock()
	}()
	t.Cleanup(pr.stop)
	return pr
}

// results returns the results so far, in sequence order.
func (p *prober) results() []probe.Result {
	p.mu.Lock()
	res := append([]probe.Result(nil), p.res...)
	p.mu.Unlock()
	// Results arrive in completion order: a loss is known only after its
	// timeout, later answers before it.
	slices.SortFunc(res, func(a, b probe.Result) int { return a.Seq - b.Seq })
	return res
}

// stop ends the run and returns every result.
func (p *prober) stop() {
	p.cancel()
	<-p.done
}

// answeredSince reports whether a probe sent after t was answered.
func (p *prober) answeredSince(t time.Time) bool {
	for _, r := range p.results() {
		if !r.Lost && r.Sent.After(t) {
			return true
		}
	}
	return false
}

func transitions(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "carp: "); i >= 0 && strings.Contains(l, " -> ") {
			lines = append(lines, strings.SplitN(l[i:], `"`, 2)[0])
		}
	}
	return lines
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
