package daemon

import (
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/electorate"
	"github.com/carpd/carpd/internal/vrrp"
)

// newAdmission builds what the socket readers check a received datagram
// against (electorate.Admission) from the interfaces and their vhids; the
// loop stores a new one when they change.
func (d *Daemon) newAdmission() *electorate.Admission {
	t := electorate.NewAdmission(d.drops)
	for _, ifc := range d.ifaces {
		ai := t.Interface(ifc.link.Index, ifc.link.Name, ifc.counters)
		for _, v := range ifc.vhosts {
			ai.Add(v.cfg.VHID, v.el)
		}
	}
	return t
}

// admitPacket runs a socket reader's checks of a received datagram
// (electorate.Admission.Admit), scratch being the reader's own.
func (d *Daemon) admitPacket(fam carp.Family, p Packet, scratch *vrrp.Advert) (advertIn, bool) {
	a, ok := d.admit.Load().Admit(fam, p, scratch)
	return advertIn{a}, ok
}
