package daemon

import (
	"net/netip"
)

// AddressLister is implemented by an Addresses that can list what an
// interface holds (the kernel's view).
type AddressLister interface {
	List(ifname string) ([]netip.Prefix, error)
}

// shownAddresses are the addresses status shows for v. carpd's own, when
// it manages them: it holds them while MASTER and puts them back when
// they go. With manage-addresses = false the hooks hold them, and
// status shows only those of v's addresses the interface really holds
// (with the length it holds them with), read from the kernel: an up
// script that failed shows no address.
func (d *Daemon) shownAddresses(v *vhost) []string {
	l, ok := d.host.Addresses.(AddressLister)
	if !d.unmanaged || !ok {
		return v.addrStrings()
	}
	held, err := l.List(v.home().Name)
	if err != nil {
		v.log.Debug("carpd: listing the addresses for status", "err", err)
		return []string{}
	}
	return heldOf(v.prefixes, held)
}

// heldOf returns, for each of want's addresses that held has (of any
// length), the prefix held has it with.
func heldOf(want, held []netip.Prefix) []string {
	out := []string{}
	for _, w := range want {
		for _, h := range held {
			if h.Addr() == w.Addr() {
				out = append(out, h.String())
				break
			}
		}
	}
	return out
}
