// Package electorate adapts the pure machines of internal/carp and
// internal/vrrp to the surface the event loop drives (elect.Electorate):
// it builds them from the configuration, keeps the addresses their adverts
// leave from up to date, encodes and sends their adverts on the
// interface's Wire, and says in words what they are doing; and an etcd
// vhid (internal/etcd), which sends no advert: its election's results
// reach the loop through the Wire's Post, and its holds carry the fence
// deadline D that bounds the addresses' lifetime. The socket readers
// check a received datagram against an Admission before the loop sees it,
// and count what fails in Drops.
package electorate

import (
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/elect"
	"github.com/carpd/carpd/internal/etcd"
)

// New builds vhid vc's electorates, never driven yet: one for a CARP vhid,
// one per address family for a VRRP one, one for an etcd vhid (on sh's
// connection, or its own when sh is nil). counter draws the random start
// of a CARP advert counter. It changes nothing on the host.
func New(cfg *config.Config, vc *config.VHID, counter func() uint64, sh *etcd.Shared) ([]elect.Electorate, error) {
	var els []elect.Electorate
	if vc.IsEtcd() {
		el, err := newEtcd(cfg, vc, sh)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", vc.Origin, err)
		}
		return append(els, el), nil
	}
	if !vc.IsVRRP() {
		m, err := carp.NewMachine(carpConfig(cfg, vc), counter())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", vc.Origin, err)
		}
		return append(els, &carpVHID{Machine: m, log: discard}), nil
	}
	for _, f := range []carp.Family{carp.IPv4, carp.IPv6} {
		mc, ok := vrrpConfig(cfg, vc, f)
		if !ok {
			continue
		}
		el, err := newVRRP(mc, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", vc.Origin, err)
		}
		els = append(els, el)
	}
	if len(els) == 0 {
		return nil, fmt.Errorf("%s: vhid %d: no address", vc.Origin, vc.VHID)
	}
	return els, nil
}

var discard = slog.New(slog.DiscardHandler)

// FamilyOf is a's family.
func FamilyOf(a netip.Addr) carp.Family {
	if a.Unmap().Is4() {
		return carp.IPv4
	}
	return carp.IPv6
}

// AFName is family f in ifconfig's words: "inet" or "inet6".
func AFName(f carp.Family) string {
	if f == carp.IPv6 {
		return "inet6"
	}
	return "inet"
}

// Cut is the part of ps of family af ("inet", "inet6"), or all of ps for
// af "".
func Cut(ps []netip.Prefix, af string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if af == "" || AFName(FamilyOf(p.Addr())) == af {
			out = append(out, p)
		}
	}
	return out
}
