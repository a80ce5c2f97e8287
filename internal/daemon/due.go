package daemon

import (
	"net/netip"

	"github.com/carpd/carpd/internal/elect"
)

// A batch that changes many holds at once (255 vrids taking over) costs
// the loop its address changes, announcements and lifetime renewals, one
// request or frame per address: tens of milliseconds on a busy machine,
// more than a backup at 10 ms waits (issue 26: the backup took over vrids
// whose master was only busy adding the others' addresses). The masters
// already there must not wait for that work: sendDue sends their adverts
// that came due meanwhile, between its batches (pace).

// pacedSetter is implemented by an Addresses that calls between before
// each batch of the changes it asks the kernel for (vip.Manager).
type pacedSetter interface {
	SetPaced(ifname string, managed, want []netip.Prefix, between func()) ([]string, error)
}

// paceEvery is how many announcements or renewals go between two looks
// for due adverts (pace).
const paceEvery = 32

// set is Addresses.Set, paced while the holds of a batch are synced.
func (d *Daemon) set(ifname string, managed, want []netip.Prefix) ([]string, error) {
	if p, ok := d.host.Addresses.(pacedSetter); ok && d.pacing {
		return p.SetPaced(ifname, managed, want, d.sendDue)
	}
	return d.host.Addresses.Set(ifname, managed, want)
}

// pace sends the due adverts every paceEvery-th call of a batch's loop
// (i counts from 0).
func (d *Daemon) pace(i int) {
	if i%paceEvery == paceEvery-1 {
		d.sendDue()
	}
}

// sendDue steps the masters whose deadline (their next advert) has come,
// and sends the adverts they ask for at once. A vhid whose advert waits in
// d.toSend already (a new master, whose addresses may not be in place yet:
// make before break) is left for the batch; so is a backup, whose
// master-down deadline the loop handles after the adverts queued
// (handleDue). The results are queued as inputs. The time is the batch's,
// as handleQueued moves it on.
func (d *Daemon) sendDue() {
	now := d.batchAt.Add(d.clock.Now().Sub(d.batchStart))
	mark := len(d.toSend)
	for _, v := range d.vhosts {
		if v.reaped || v.el.State() != elect.Master {
			continue
		}
		if dl := v.el.NextDeadline(); dl.IsZero() || now.Before(dl) || d.waiting(v, mark) {
			continue
		}
		d.step(now, v, elect.Tick{})
	}
	sends := d.toSend[mark:]
	for _, s := range sends {
		f, err := s.v.el.Send(s.a)
		d.sent(now, s.v, f, err)
	}
	clear(sends)
	d.toSend = d.toSend[:mark]
}

// waiting reports whether one of the first n adverts of d.toSend is v's.
func (d *Daemon) waiting(v *vhost, n int) bool {
	for _, s := range d.toSend[:n] {
		if s.v == v {
			return true
		}
	}
	return false
}
