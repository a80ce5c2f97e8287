package advsock

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
)

// segment is the name of the lab segment the socket tests send on.
const segment = "adv"

// twoHosts builds a lab whose hosts a and b are cabled to one segment
// through their interfaces eth1, carrying addrsA and addrsB in that order,
// and returns the hosts and the indexes of their eth1. b gets a spare veth
// pair first, so that the two indexes differ and a wrong Packet.IfIndex
// cannot pass by chance. The test is skipped unless it runs as root; the
// lab is closed when it ends.
func twoHosts(t testing.TB, addrsA, addrsB []string) (a, b *lab.Host, idxA, idxB int) {
	t.Helper()
	l := labtest.New(t, "advsock")
	var err error
	if a, err = l.AddHost("a"); err != nil {
		t.Fatal(err)
	}
	if b, err = l.AddHost("b"); err != nil {
		t.Fatal(err)
	}
	if err := l.AddSegment(segment); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Run(ctx, "ip", "link", "add", "spare0", "type", "veth", "peer", "name", "spare1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Attach(segment, "eth1", prefixes(t, addrsA)...); err != nil {
		t.Fatal(err)
	}
	if err := b.Attach(segment, "eth1", prefixes(t, addrsB)...); err != nil {
		t.Fatal(err)
	}
	idxA, idxB = ifindex(t, a, "eth1"), ifindex(t, b, "eth1")
	if idxA == idxB {
		t.Fatalf("a and b both have eth1 at index %d", idxA)
	}
	return a, b, idxA, idxB
}

func prefixes(t testing.TB, ss []string) []netip.Prefix {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// ifindex returns the index of interface name in h's namespace.
func ifindex(t testing.TB, h *lab.Host, name string) int {
	t.Helper()
	var idx int
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		idx = ifi.Index
		return nil
	})
	if err != nil {
		t.Fatalf("%s on %s: %v", name, h.Name, err)
	}
	return idx
}
