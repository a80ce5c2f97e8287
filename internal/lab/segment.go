package lab

import (
	"fmt"
	"net/netip"
	"regexp"
)

// More segments: a Lab starts with one segment, br0, which every host's eth0
// is cabled to. AddSegment adds another bridge to the switch namespace and
// Host.Attach cables a host to it through a further interface (eth1, ...),
// so that a host can sit on two segments, as a router or a CARP host with
// vhids on two interfaces does. The switch-side end of such a cable is the
// port "<host>-<iface>" (for example "master-eth1"), which PortDownOn and
// PortUpOn pull and plug like PortDown and PortUp do for eth0.

// segmentName restricts segment (bridge) names; "sw" and br0 are taken.
var segmentName = regexp.MustCompile(`^[a-z][a-z0-9]{0,14}$`)

// ifaceName restricts the names of the interfaces Attach creates.
var ifaceName = regexp.MustCompile(`^[a-z][a-z0-9]{0,14}$`)

// AddSegment creates a further Ethernet segment: a bridge called name in
// the switch namespace, configured as br0 is (no STP, no forwarding delay,
// multicast snooping off so that 224.0.0.18 and ff02::12 are flooded). The
// name must be a lowercase letter followed by up to 14 lowercase letters or
// digits, and must not be br0, "sw" or the name of a host (a host's switch
// port carries its name).
func (l *Lab) AddSegment(name string) error {
	if !segmentName.MatchString(name) || name == Bridge || name == "sw" {
		return fmt.Errorf("lab: bad segment name %q", name)
	}
	if l.Host(name) != nil {
		return fmt.Errorf("lab: segment name %q is a host's port", name)
	}
	steps := [][]string{
		{"link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"},
		{"link", "set", "dev", name, "up"},
	}
	for _, s := range steps {
		if err := l.ip(l.Switch, s...); err != nil {
			return fmt.Errorf("lab: segment %s: %w", name, err)
		}
	}
	return nil
}

// PortName returns the name of the switch port that cables the host's
// interface iface: the host's name for eth0, "<host>-<iface>" for the
// interfaces made by Attach. It does not check that the port exists.
func (h *Host) PortName(iface string) string {
	if iface == h.Iface {
		return h.Port
	}
	return h.Name + "-" + iface
}

// Attach cables the host to segment (made by AddSegment) through a new
// interface iface: a veth pair whose switch-side end, the port
// "<host>-<iface>", is enslaved to the segment's bridge. Like eth0, iface
// gets IPv6 duplicate address detection off, is set up, and gets addrs.
// iface must be a lowercase letter followed by lowercase letters or digits,
// other than eth0, and the port name must fit in 15 bytes (IFNAMSIZ-1):
// len(host name) + len(iface) <= 14.
func (h *Host) Attach(segment, iface string, addrs ...netip.Prefix) error {
	if !ifaceName.MatchString(iface) || iface == h.Iface || iface == "lo" {
		return fmt.Errorf("lab: %s: bad interface name %q", h.Name, iface)
	}
	port := h.PortName(iface)
	if len(port) > 15 {
		return fmt.Errorf("lab: %s: switch port name %q is longer than 15 bytes", h.Name, port)
	}
	l := h.lab
	if err := l.ip(l.Switch, "link", "add", "name", port, "type", "veth", "peer", "name", iface, "netns", h.NS); err != nil {
		return err
	}
	for _, s := range [][]string{
		{"link", "set", "dev", port, "master", segment},
		{"link", "set", "dev", port, "up"},
	} {
		if err := l.ip(l.Switch, s...); err != nil {
			// Deleting one end deletes the pair: a retry starts afresh.
			_ = l.ip(l.Switch, "link", "del", "dev", port)
			return fmt.Errorf("lab: %s: attach to segment %s: %w", h.Name, segment, err)
		}
	}
	if err := l.sysctl(h.NS, "net/ipv6/conf/"+iface+"/accept_dad", "0"); err != nil {
		return fmt.Errorf("lab: host %s: %s accept_dad: %w", h.Name, iface, err)
	}
	if err := l.ip(h.NS, "link", "set", "dev", iface, "up"); err != nil {
		return err
	}
	for _, a := range addrs {
		if err := l.ip(h.NS, "addr", "add", a.String(), "dev", iface); err != nil {
			return err
		}
	}
	return nil
}

// PortDownOn sets the switch-side end of the cable of the host's interface
// iface down (PortDown for eth0): iface loses carrier but stays
// administratively up.
func (h *Host) PortDownOn(iface string) error {
	return h.lab.ip(h.lab.Switch, "link", "set", "dev", h.PortName(iface), "down")
}

// PortUpOn sets the switch-side end of the cable of the host's interface
// iface up again.
func (h *Host) PortUpOn(iface string) error {
	return h.lab.ip(h.lab.Switch, "link", "set", "dev", h.PortName(iface), "up")
}

// AddrsOn returns the addresses the host's interface iface holds, with
// their prefix lengths (Addrs for eth0).
func (h *Host) AddrsOn(iface string) ([]netip.Prefix, error) {
	link, err := h.showAddr(iface)
	if err != nil {
		return nil, err
	}
	var ps []netip.Prefix
	for _, ai := range link.AddrInfo {
		a, err := netip.ParseAddr(ai.Local)
		if err != nil {
			return nil, fmt.Errorf("lab: %s: address %q: %w", h.Name, ai.Local, err)
		}
		ps = append(ps, netip.PrefixFrom(a, ai.PrefixLen))
	}
	return ps, nil
}

// HoldsOn reports whether the host's interface iface holds address a (any
// prefix length).
func (h *Host) HoldsOn(iface string, a netip.Addr) (bool, error) {
	ps, err := h.AddrsOn(iface)
	if err != nil {
		return false, err
	}
	for _, p := range ps {
		if p.Addr() == a {
			return true, nil
		}
	}
	return false, nil
}
