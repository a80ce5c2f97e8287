package vip

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/carpd/carpd/internal/lab/labtest"
)

// testNS is a network namespace made for one test and deleted when the
// test ends.
type testNS struct {
	name string
	h    netns.NsHandle
	nl   *netlink.Handle
}

// requireRoot: the test needs root to create network namespaces; a
// failure with CI set (labtest.Missing).
func requireRoot(t *testing.T) {
	t.Helper()
	labtest.RequireRoot(t)
}

// newNS creates namespace "carpd-<tag>-<random>" with lo up.
func newNS(t *testing.T, tag string) *testNS {
	t.Helper()
	name := fmt.Sprintf("carpd-%s-%08x", tag, rand.Uint32())
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open namespace %s: %v", name, err)
	}
	t.Cleanup(func() { h.Close() })
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	t.Cleanup(nl.Close)
	mustRun(t, "ip", "-n", name, "link", "set", "lo", "up")
	return &testNS{name: name, h: h, nl: nl}
}

// do runs fn on an OS thread switched into the namespace. The thread is
// never switched back: it stays locked and exits with its goroutine.
func (n *testNS) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(n.h); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", n.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// vethUp makes the veth pair v0, v1 in the namespace, both up.
func (n *testNS) vethUp(t *testing.T) {
	t.Helper()
	n.ip(t, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	n.ip(t, "link", "set", "v0", "up")
	n.ip(t, "link", "set", "v1", "up")
}

// ip runs ip(8) inside the namespace.
func (n *testNS) ip(t *testing.T, args ...string) {
	t.Helper()
	mustRun(t, "ip", append([]string{"-n", n.name}, args...)...)
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}
