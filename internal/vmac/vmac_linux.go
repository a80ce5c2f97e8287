// Package vmac manages the virtual MAC interfaces of vhids that run in
// virtual MAC mode (FreeBSD's behaviour, keepalived's use_vmac): a macvlan
// on the parent interface with the CARP virtual MAC 00:00:5e:00:01:<vhid>.
// The master holds the virtual addresses on it, so clients keep the same
// MAC in their neighbour caches across failovers.
package vmac

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

// MAC returns the CARP virtual MAC of a vhid, 00:00:5e:00:01:<vhid>.
func MAC(vhid uint8) net.HardwareAddr {
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, vhid}
}

// Name returns the name of the virtual MAC interface of a vhid on the
// parent with index parent: "carp<parent>.<vhid>", at most 13 bytes.
func Name(parent int, vhid uint8) string {
	return "carp" + strconv.Itoa(parent) + "." + strconv.Itoa(int(vhid))
}

// Ensure creates (or reuses) the virtual MAC interface of vhid on parent and
// brings it up. It sets arp_ignore=1 on the parent, so that the parent does
// not answer ARP for the addresses the macvlan holds with its own MAC, and
// arp_announce=2, so that the host's own ARP requests do not announce a
// virtual address with the parent's MAC. It returns the macvlan's name and
// index.
func Ensure(parent string, vhid uint8) (name string, index int, err error) {
	p, err := netlink.LinkByName(parent)
	if err != nil {
		return "", 0, fmt.Errorf("parent %s: %w", parent, err)
	}
	name = Name(p.Attrs().Index, vhid)
	l, err := netlink.LinkByName(name)
	if err != nil {
		mv := &netlink.Macvlan{
			LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: p.Attrs().Index, HardwareAddr: MAC(vhid)},
			Mode:      netlink.MACVLAN_MODE_PRIVATE,
		}
		if err := netlink.LinkAdd(mv); err != nil {
			return "", 0, fmt.Errorf("ip link add %s link %s type macvlan mode private address %v: %w", name, parent, MAC(vhid), err)
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return "", 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	if l.Type() != "macvlan" || l.Attrs().HardwareAddr.String() != MAC(vhid).String() {
		return "", 0, fmt.Errorf("%s exists and is not carpd's macvlan with %v", name, MAC(vhid))
	}
	for _, s := range []struct{ iface, key, val string }{
		{parent, "arp_ignore", "1"},
		// ARP requests of the host carry its own address, never a
		// virtual one: else neighbours learn the VIP at the parent's MAC.
		{parent, "arp_announce", "2"},
		{name, "arp_ignore", "1"},
	} {
		if err := sysctl(s.iface, s.key, s.val); err != nil {
			return "", 0, err
		}
	}
	// Both hosts' macvlans have the same MAC, so the same EUI-64
	// link-local address: generate none (IPv6 adverts and neighbour
	// advertisements use the parent's).
	agm := filepath.Join("/proc/sys/net/ipv6/conf", name, "addr_gen_mode")
	if cur, err := os.ReadFile(agm); err == nil && strings.TrimSpace(string(cur)) == "1" {
		// Already so.
	} else if err := os.WriteFile(agm, []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", 0, fmt.Errorf("sysctl net.ipv6.conf.%s.addr_gen_mode=1: %w", name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return "", 0, fmt.Errorf("ip link set %s up: %w", name, err)
	}
	return name, l.Attrs().Index, nil
}

// Remove deletes the virtual MAC interface; one that is gone is no error.
func Remove(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("ip link del %s: %w", name, err)
	}
	return nil
}

// sysctl sets net.ipv4.conf.<iface>.<key>, writing only when the value
// differs: an unprivileged carpd (systemd's unit) cannot write /proc/sys,
// and the operator may have set it with sysctl.d.
func sysctl(iface, key, val string) error {
	path := filepath.Join("/proc/sys/net/ipv4/conf", iface, key)
	if cur, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(cur)) == val {
		return nil
	}
	if err := os.WriteFile(path, []byte(val), 0o644); err != nil {
		return fmt.Errorf("sysctl net.ipv4.conf.%s.%s=%s: %w", iface, key, val, err)
	}
	return nil
}
