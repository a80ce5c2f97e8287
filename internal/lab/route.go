package lab

import (
	"fmt"
	"net/netip"
)

// Routed topologies: a host on two segments (Attach) with forwarding on is
// a router, and hosts on each segment (AddHostOn) reach the other segment
// through it with a route. Packets the router forwards leave it with their
// TTL or hop limit one lower, as across any router.

// SetForwarding turns IPv4 and IPv6 forwarding on or off in the host's
// namespace (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding), so that
// it routes between its interfaces.
func (h *Host) SetForwarding(on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	for _, key := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"} {
		if err := h.lab.sysctl(h.NS, key, v); err != nil {
			return fmt.Errorf("lab: %s: forwarding %s: %w", h.Name, key, err)
		}
	}
	return nil
}

// AddRoute adds a route in the host's namespace to dst through the gateway
// gw, which must be reachable on one of the host's links: `ip route add dst
// via gw`. A dst of 0.0.0.0/0 or ::/0 is the default route. dst and gw must
// be of one family.
func (h *Host) AddRoute(dst netip.Prefix, gw netip.Addr) error {
	if !dst.IsValid() || !gw.IsValid() || dst.Addr().Is4() != gw.Is4() {
		return fmt.Errorf("lab: %s: route to %v via %v: bad or mixed-family addresses", h.Name, dst, gw)
	}
	family := "-4"
	if !gw.Is4() {
		family = "-6"
	}
	return h.lab.ip(h.NS, family, "route", "add", dst.Masked().String(), "via", gw.String())
}
