package announce

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// twoHosts builds a lab with hosts a and b on one segment, a's eth0
// holding addrA and b's addrB, and returns them with the index of a's eth0.
// The test is skipped unless it runs as root; the lab is closed when it
// ends.
func twoHosts(t *testing.T, addrA, addrB string) (a, b *lab.Host, idxA int) {
	t.Helper()
	l := labtest.New(t, "announce")
	var err error
	if a, err = l.AddHost("a", netip.MustParsePrefix(addrA)); err != nil {
		t.Fatal(err)
	}
	if b, err = l.AddHost("b", netip.MustParsePrefix(addrB)); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(func() error {
		ifi, err := net.InterfaceByName(a.Iface)
		if err != nil {
			return err
		}
		idxA = ifi.Index
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return a, b, idxA
}

// misdirect makes b believe that vip is at some other node, with a stale
// neighbour entry, and returns that node's MAC.
func misdirect(t *testing.T, b *lab.Host, vip netip.Addr) net.HardwareAddr {
	t.Helper()
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Run(ctx, "ip", "neigh", "replace", vip.String(), "lladdr", other.String(), "dev", b.Iface, "nud", "stale"); err != nil {
		t.Fatal(err)
	}
	if got, _, err := b.Neigh(vip); err != nil || got.String() != other.String() {
		t.Fatalf("before: b has neighbour %v at %v (%v), want %v", vip, got, err, other)
	}
	return other
}

// waitNeigh waits until b's neighbour entry for ip points at hw.
func waitNeigh(t *testing.T, b *lab.Host, ip netip.Addr, hw net.HardwareAddr) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, state, err := b.Neigh(ip)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() == hw.String() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after: b has neighbour %v at %v (%s), want %v", ip, got, state, hw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// virtualMAC is CARP's virtual MAC for vhid 1. Announcing it after the
// interface's own MAC shows that the announced address is the one given,
// not the interface's, and that a second announcement moves the entry
// again.
var virtualMAC = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x01}

// TestGratuitousARPNetns sends gratuitous ARP from one host and checks, on
// the other, the frames on the wire and that the kernel repointed its
// existing neighbour entry for the address at the announced MAC.
func TestGratuitousARPNetns(t *testing.T) {
	a, b, idxA := twoHosts(t, "192.0.2.1/24", "192.0.2.2/24")
	vip := netip.MustParseAddr("192.0.2.50")
	misdirect(t, b, vip)

	// A second ARP client in b reads what arrives on its eth0.
	var capture *arp.Client
	err := b.Do(func() error {
		ifi, err := net.InterfaceByName(b.Iface)
		if err != nil {
			return err
		}
		capture, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		t.Fatalf("capture in %s: %v", b.NS, err)
	}
	t.Cleanup(func() { capture.Close() })

	ann := New()
	t.Cleanup(func() { ann.Close() })

	for _, tc := range []struct {
		name string
		hw   net.HardwareAddr
	}{
		{"interface MAC", a.MAC},
		// Within the neighbour locktime, which gratuitous ARP overrides.
		{"virtual MAC", virtualMAC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.Do(func() error { return ann.GratuitousARP(idxA, tc.hw, []netip.Addr{vip}) }); err != nil {
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
				t.Errorf("frames received on b mismatch (-want +got):\n%s", diff)
			}
			waitNeigh(t, b, vip, tc.hw)
		})
	}
}

// TestUnsolicitedNANetns sends unsolicited neighbour advertisements from
// one host and checks, on the other, the message on the wire (source a's
// link-local address, destination ff02::1, hop limit 255, flags, target,
// target link-layer address) and that the kernel repointed its existing
// neighbour entry for the address at the announced MAC: Linux takes an
// unsolicited advertisement with the Override flag for an entry it has.
func TestUnsolicitedNANetns(t *testing.T) {
	a, b, idxA := twoHosts(t, "2001:db8::1/64", "2001:db8::2/64")
	vip := netip.MustParseAddr("2001:db8::50")
	misdirect(t, b, vip)
	var linkLocalA netip.Addr
	addrsA, err := a.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range addrsA {
		if p.Addr().IsLinkLocalUnicast() {
			linkLocalA = p.Addr()
		}
	}
	if !linkLocalA.IsValid() {
		t.Fatalf("a has no link-local address: %v", addrsA)
	}

	// An ICMPv6 socket in b reads the neighbour advertisements that arrive,
	// with the IPv6 header fields.
	var capture *ipv6.PacketConn
	err = b.Do(func() error {
		c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
		if err != nil {
			return err
		}
		capture = ipv6.NewPacketConn(c)
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeNeighborAdvertisement)
		if err := capture.SetICMPFilter(&f); err != nil {
			return err
		}
		return capture.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true)
	})
	if capture != nil {
		t.Cleanup(func() { capture.Close() })
	}
	if err != nil {
		t.Fatalf("capture in %s: %v", b.NS, err)
	}

	ann := New()
	t.Cleanup(func() { ann.Close() })

	type wire struct {
		Src, Dst                    string
		HopLimit                    int
		Router, Solicited, Override bool
		Target, TLLA                string
	}
	// read returns the next advertisement for vip that b receives.
	read := func() wire {
		t.Helper()
		if err := capture.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		for {
			n, cm, src, err := capture.ReadFrom(buf)
			if err != nil {
				t.Fatalf("capture: %v", err)
			}
			m, err := ndp.ParseMessage(buf[:n])
			if err != nil {
				t.Fatalf("capture: %v", err)
			}
			na, ok := m.(*ndp.NeighborAdvertisement)
			if !ok || na.TargetAddress != vip || cm == nil {
				continue
			}
			w := wire{
				Src: src.(*net.IPAddr).IP.String(), Dst: cm.Dst.String(), HopLimit: cm.HopLimit,
				Router: na.Router, Solicited: na.Solicited, Override: na.Override,
				Target: na.TargetAddress.String(),
			}
			for _, o := range na.Options {
				if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
					w.TLLA = lla.Addr.String()
				}
			}
			return w
		}
	}

	for _, tc := range []struct {
		name string
		hw   net.HardwareAddr
	}{
		{"interface MAC", a.MAC},
		{"virtual MAC", virtualMAC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.Do(func() error { return ann.UnsolicitedNA(idxA, tc.hw, []netip.Addr{vip}) }); err != nil {
				t.Fatalf("UnsolicitedNA: %v", err)
			}
			want := wire{
				Src: linkLocalA.String(), Dst: "ff02::1", HopLimit: 255,
				Override: true, Target: vip.String(), TLLA: tc.hw.String(),
			}
			if diff := cmp.Diff(want, read()); diff != "" {
				t.Errorf("advertisement received on b mismatch (-want +got):\n%s", diff)
			}
			waitNeigh(t, b, vip, tc.hw)
		})
	}
}

// TestUnknownInterface checks that opening a connection on an interface
// that does not exist fails, for ARP and NDP alike.
func TestUnknownInterface(t *testing.T) {
	ann := New()
	defer ann.Close()
	const ifindex = 1 << 30
	hw := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	if err := ann.GratuitousARP(ifindex, hw, []netip.Addr{netip.MustParseAddr("192.0.2.50")}); err == nil {
		t.Error("GratuitousARP on an unknown interface succeeded")
	}
	if err := ann.UnsolicitedNA(ifindex, hw, []netip.Addr{netip.MustParseAddr("2001:db8::50")}); err == nil {
		t.Error("UnsolicitedNA on an unknown interface succeeded")
	}
}
