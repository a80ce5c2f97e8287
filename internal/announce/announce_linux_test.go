package announce

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
)

// TestGratuitousARPNetns sends gratuitous ARP from one namespace and checks,
// in the other, the frames on the wire and that the kernel repointed its
// existing neighbour entry for the address at the announced MAC.
func TestGratuitousARPNetns(t *testing.T) {
	requireRoot(t)
	a := newNS(t, "garpA")
	b := newNS(t, "garpB")
	veth(t, a, "vA", b, "vB")
	a.ip(t, "addr", "add", "192.0.2.1/24", "dev", "vA")
	b.ip(t, "addr", "add", "192.0.2.2/24", "dev", "vB")
	vip := netip.MustParseAddr("192.0.2.50")
	stale := "02:00:00:00:00:99"
	// B believes the VIP is at some other node.
	b.ip(t, "neigh", "replace", vip.String(), "lladdr", stale, "dev", "vB", "nud", "stale")
	idxA, idxB := a.ifindex(t, "vA"), b.ifindex(t, "vB")
	linkA, err := a.nl.LinkByIndex(idxA)
	if err != nil {
		t.Fatal(err)
	}
	hwA := linkA.Attrs().HardwareAddr
	if len(hwA) != 6 {
		t.Fatalf("vA has MAC %q, want an Ethernet address", hwA)
	}

	// A second ARP client in B reads what arrives on vB.
	var capture *arp.Client
	err = b.do(func() error {
		ifi, err := net.InterfaceByIndex(idxB)
		if err != nil {
			return err
		}
		capture, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		t.Fatalf("capture in %s: %v", b.name, err)
	}
	t.Cleanup(func() { capture.Close() })

	ann := New()
	t.Cleanup(func() { ann.Close() })

	neighbour := func() string {
		neighs, err := b.nl.NeighList(idxB, netlink.FAMILY_V4)
		if err != nil {
			t.Fatalf("neighbours of vB: %v", err)
		}
		for _, n := range neighs {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == vip {
				return n.HardwareAddr.String()
			}
		}
		return ""
	}
	if got := neighbour(); got != stale {
		t.Fatalf("before: neighbour %v at %q, want %q", vip, got, stale)
	}

	for _, tc := range []struct {
		name string
		hw   net.HardwareAddr
	}{
		{"interface MAC", hwA},
		// The announced address is the one given, not the interface's: a
		// second announcement with CARP's virtual MAC for vhid 1 moves the
		// entry again (within the neighbour locktime, which gratuitous ARP
		// overrides).
		{"virtual MAC", net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.do(func() error { return ann.GratuitousARP(idxA, tc.hw, []netip.Addr{vip}) }); err != nil {
				t.Fatalf("GratuitousARP: %v", err)
			}
			type wire struct {
				EthSrc, EthDst     string
				Op                 arp.Operation
				SenderHW, SenderIP string
				TargetHW, TargetIP string
			}
			var got []wire
			if err := capture.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			for len(got) < 2 {
				p, f, err := capture.Read()
				if err != nil {
					if errors.Is(err, os.ErrDeadlineExceeded) {
						break
					}
					t.Fatalf("capture: %v", err)
				}
				if p.SenderIP != vip {
					continue
				}
				got = append(got, wire{
					EthSrc: f.Source.String(), EthDst: f.Destination.String(), Op: p.Operation,
					SenderHW: p.SenderHardwareAddr.String(), SenderIP: p.SenderIP.String(),
					TargetHW: p.TargetHardwareAddr.String(), TargetIP: p.TargetIP.String(),
				})
			}
			hw := tc.hw.String()
			want := []wire{
				{EthSrc: hw, EthDst: "ff:ff:ff:ff:ff:ff", Op: arp.OperationRequest, SenderHW: hw, SenderIP: vip.String(), TargetHW: "00:00:00:00:00:00", TargetIP: vip.String()},
				{EthSrc: hw, EthDst: "ff:ff:ff:ff:ff:ff", Op: arp.OperationReply, SenderHW: hw, SenderIP: vip.String(), TargetHW: "ff:ff:ff:ff:ff:ff", TargetIP: vip.String()},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("frames received on vB mismatch (-want +got):\n%s", diff)
			}

			deadline := time.Now().Add(5 * time.Second)
			for {
				n := neighbour()
				if n == hw {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after: neighbour %v at %q, want %q", vip, n, hw)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
