package lab_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
	"github.com/carpd/carpd/internal/probe"
)

func addHost(t *testing.T, l *lab.Lab, name string, addrs ...string) *lab.Host {
	t.Helper()
	var ps []netip.Prefix
	for _, a := range addrs {
		ps = append(ps, netip.MustParsePrefix(a))
	}
	h, err := l.AddHost(name, ps...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// ping sends probes from h to dst for d and returns the statistics.
func ping(t *testing.T, h *lab.Host, dst string, d time.Duration) probe.Stats {
	t.Helper()
	var p *probe.Prober
	if err := h.Do(func() (err error) {
		p, err = probe.Listen()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	rs, err := p.Run(ctx, netip.MustParseAddr(dst), 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	return probe.Summarize(rs)
}

func netnsList(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

func TestPingEachOther(t *testing.T) {
	l := labtest.New(t, "labtest")
	a := addHost(t, l, "alpha", "192.0.2.1/24")
	b := addHost(t, l, "bravo", "192.0.2.2/24")
	if a.MAC.String() == b.MAC.String() || len(a.MAC) != 6 {
		t.Fatalf("MACs %v and %v: want two distinct Ethernet addresses", a.MAC, b.MAC)
	}
	for _, c := range []struct {
		from *lab.Host
		to   string
	}{{a, "192.0.2.2"}, {b, "192.0.2.1"}} {
		if s := ping(t, c.from, c.to, 450*time.Millisecond); s.Received == 0 || !s.Recovered {
			t.Errorf("%s -> %s: %+v, want answers", c.from.Name, c.to, s)
		}
	}
	// After the ping, alpha has bravo's MAC in its neighbour table.
	mac, state, err := a.Neigh(netip.MustParseAddr("192.0.2.2"))
	if err != nil {
		t.Fatal(err)
	}
	if mac.String() != b.MAC.String() || state == "" {
		t.Errorf("alpha's neighbour 192.0.2.2 = %v %q, want %v", mac, state, b.MAC)
	}
	mac, state, err = a.Neigh(netip.MustParseAddr("192.0.2.77"))
	if err != nil || mac != nil || state != "" {
		t.Errorf("Neigh(unknown) = %v, %q, %v; want no entry", mac, state, err)
	}

	// Pulling bravo's cable cuts it off; plugging it in again heals.
	if err := b.PortDown(); err != nil {
		t.Fatal(err)
	}
	if s := ping(t, a, "192.0.2.2", 250*time.Millisecond); s.Received != 0 {
		t.Errorf("with bravo's port down: %+v, want no answer", s)
	}
	if err := b.PortUp(); err != nil {
		t.Fatal(err)
	}
	if s := ping(t, a, "192.0.2.2", 450*time.Millisecond); s.Received == 0 {
		t.Errorf("with bravo's port up again: %+v, want answers", s)
	}
}

func TestAddrs(t *testing.T) {
	l := labtest.New(t, "labtest")
	h := addHost(t, l, "host", "192.0.2.1/24")
	vip := netip.MustParsePrefix("192.0.2.50/32")
	v6 := netip.MustParsePrefix("2001:db8::5/64")
	holds := func(a netip.Addr) bool {
		t.Helper()
		ok, err := h.Holds(a)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if holds(vip.Addr()) {
		t.Fatal("holds the VIP before it was added")
	}
	for _, p := range []netip.Prefix{vip, v6} {
		if err := h.AddAddr(p); err != nil {
			t.Fatal(err)
		}
	}
	if !holds(vip.Addr()) || !holds(v6.Addr()) || !holds(netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("does not hold the addresses added")
	}
	ps, err := h.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ps, v6) || !slices.Contains(ps, vip) {
		t.Errorf("Addrs() = %v, want %v and %v among them", ps, vip, v6)
	}
	// DAD is off: the IPv6 address is usable at once, not tentative.
	out, err := h.Run(context.Background(), "ip", "-6", "addr", "show", "dev", "eth0", "tentative")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "" {
		t.Errorf("tentative addresses with DAD off:\n%s", out)
	}
	if err := h.DelAddr(vip); err != nil {
		t.Fatal(err)
	}
	if holds(vip.Addr()) {
		t.Error("holds the VIP after DelAddr")
	}
	if err := h.LinkDown(); err != nil {
		t.Fatal(err)
	}
	if err := h.FlushAddrs(); err != nil {
		t.Fatal(err)
	}
	if ps, err := h.Addrs(); err != nil || len(ps) != 0 {
		t.Errorf("after FlushAddrs: %v, %v; want none", ps, err)
	}
	if err := h.LinkUp(); err != nil {
		t.Fatal(err)
	}
}

func TestDo(t *testing.T) {
	l := labtest.New(t, "labtest")
	h := addHost(t, l, "host", "192.0.2.1/24")
	var inside []byte
	if err := h.Do(func() (err error) {
		inside, err = os.ReadFile("/proc/sys/net/ipv6/conf/eth0/accept_dad")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(inside)) != "0" {
		t.Errorf("accept_dad in the namespace = %q, want 0", inside)
	}
	want := errors.New("from f")
	if err := h.Do(func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Do returned %v, want f's error", err)
	}
}

func TestProcs(t *testing.T) {
	l := labtest.New(t, "labtest")
	h := addHost(t, l, "host", "192.0.2.1/24")

	// A process runs in the namespace and its output is captured.
	p, err := h.Start("show", "sh", "-c", "ip -o addr show dev eth0; echo ready; exec sleep 600")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitOutput(ctx, "ready"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Output(), "192.0.2.1/24") {
		t.Errorf("output %q does not show the namespace's address", p.Output())
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.Wait() == nil || p.ExitCode() != -1 {
		t.Errorf("killed process: Wait = %v, ExitCode = %d; want killed", p.Wait(), p.ExitCode())
	}

	// A process that exits on its own reports its code; WaitOutput gives up.
	q, err := h.Start("exit", "sh", "-c", "echo bye; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.WaitOutput(ctx, "never"); err == nil {
		t.Error("WaitOutput succeeded for output never written")
	}
	if q.ExitCode() != 3 {
		t.Errorf("ExitCode = %d, want 3", q.ExitCode())
	}
}

// TestClose checks that Close kills the processes and deletes every
// namespace, and that it is idempotent.
func TestClose(t *testing.T) {
	labtest.RequireRoot(t)
	l, err := lab.New("labtest")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h := addHost(t, l, "host", "192.0.2.1/24")
	addHost(t, l, "other")
	p, err := h.Start("sleep", "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	pid := p.PID()
	names := l.Namespaces()
	if len(names) != 3 {
		t.Fatalf("Namespaces() = %v, want switch and two hosts", names)
	}
	list := netnsList(t)
	for _, n := range names {
		if !strings.Contains(list, n) {
			t.Fatalf("namespace %s missing from ip netns list:\n%s", n, list)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Error("process still running after Close")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after Close = %v, want ESRCH", pid, err)
	}
	list = netnsList(t)
	if strings.Contains(list, l.ID) {
		t.Errorf("namespaces left after Close:\n%s", list)
	}
	if _, err := l.AddHost("late"); err == nil {
		t.Error("AddHost after Close succeeded")
	}
	if _, err := h.Start("late", "true"); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestBadNames(t *testing.T) {
	l := labtest.New(t, "labtest")
	for _, n := range []string{"", "sw", "br0", "Upper", "this-is-too-long", "sixteen-chars-xx", "a b"} {
		if _, err := l.AddHost(n); err == nil {
			t.Errorf("AddHost(%q) succeeded", n)
		}
	}
	addHost(t, l, "twin")
	if _, err := l.AddHost("twin"); err == nil {
		t.Error("AddHost of a duplicate name succeeded")
	}
}

// TestSweepDeadLabs: a lab whose process died before its Close (its
// marker names a process that is gone) loses its namespaces at the next
// New of the same prefix; a lab whose process lives keeps them.
func TestSweepDeadLabs(t *testing.T) {
	live := labtest.New(t, "labsweep")
	// Not labtest's: its Close fails once the sweep took its namespaces.
	dead, err := lab.New("labsweep")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	addHost(t, dead, "host")
	// dead's process "died": its marker names PID 0x7fffffff.
	marker := filepath.Join(lab.OwnerDir, "labsweep-"+dead.ID)
	if err := os.WriteFile(marker, []byte("2147483647 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := labtest.New(t, "labsweep")
	list := netnsList(t)
	if strings.Contains(list, dead.ID) {
		t.Errorf("the dead lab's namespaces are left after New:\n%s", list)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead lab's marker: %v, want it removed", err)
	}
	for _, n := range live.Namespaces() {
		if !strings.Contains(list, n) {
			t.Errorf("the live lab's namespace %s was deleted", n)
		}
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(lab.OwnerDir, "labsweep-"+other.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("marker after Close: %v, want it removed", err)
	}
}
