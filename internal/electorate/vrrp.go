package electorate

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/elect"
	"github.com/carpd/carpd/internal/vrrp"
)

// vrrpInstance is the VRRPv3 instance of one address family of a carpver 3
// vhid: internal/vrrp's machine, its adverts sent to 224.0.0.18 or
// ff02::12 from the interface's primary or link-local address, which the
// checksum's pseudo-header needs and the machine learns (syncPrimary).
type vrrpInstance struct {
	*vrrp.Machine
	fam carp.Family
	w   elect.Wire
	log *slog.Logger
	buf []byte // the last advert, reused
	// ownerDemoted says that an address owner's demotion was logged.
	ownerDemoted bool
}

var _ elect.Electorate = (*vrrpInstance)(nil)

func newVRRP(mc vrrp.Config, f carp.Family) (*vrrpInstance, error) {
	m, err := vrrp.NewMachine(mc)
	if err != nil {
		return nil, err
	}
	return &vrrpInstance{Machine: m, fam: f, log: discard}, nil
}

// vrrpConfig is the configuration of the VRRP instance of family f of
// vhid vc (carpver 3), without its primary address, which is learnt from
// the interface. ok is false if vc has no address of f.
func vrrpConfig(cfg *config.Config, vc *config.VHID, f carp.Family) (c vrrp.Config, ok bool) {
	c = vrrp.Config{
		VRID: vc.VHID, Priority: vc.VRRPPriority, Interval: vc.VRRPInterval,
		Preempt: cfg.PreemptOf(vc), PreemptDelay: cfg.PreemptDelay, TieBreak: vc.VRRPTieBreak,
		IfDownDemotion: cfg.IfDownDemotion, SendErrDemotion: cfg.SendErrDemotion,
	}
	for _, p := range vc.Addresses {
		if FamilyOf(p.Addr()) == f {
			c.Addrs = append(c.Addrs, p.Addr())
		}
	}
	return c, len(c.Addrs) > 0
}

func (v *vrrpInstance) Proto() string                       { return "vrrp" }
func (v *vrrpInstance) Family() string                      { return AFName(v.fam) }
func (v *vrrpInstance) Attach(w elect.Wire, l *slog.Logger) { v.w, v.log = w, l }

// AppendStep gives the machine the interface's primary address first, then
// steps it; after a demotion, it tells when the address owner is demoted.
func (v *vrrpInstance) AppendStep(out []elect.Action, now time.Time, ev elect.Event) []elect.Action {
	out = v.syncPrimary(out, now)
	out = v.Machine.AppendStep(out, now, ev)
	if _, ok := ev.(elect.SetDemotion); ok {
		v.noteOwner()
	}
	return out
}

// syncPrimary gives the machine the interface's primary address of its
// family (the source of its adverts: the primary IPv4 address, the IPv6
// link-local one), for the tie-break and to know its own adverts, when it
// changed. An interface without one leaves the last known.
func (v *vrrpInstance) syncPrimary(out []elect.Action, now time.Time) []elect.Action {
	src, err := v.w.Source(carp.Group(v.fam))
	cfg := v.Config()
	if err != nil || src == cfg.PrimaryIP {
		return out
	}
	cfg.PrimaryIP = src
	acts, err := v.Machine.Reconfigure(now, cfg)
	if err != nil {
		v.log.Error("vrrp: primary address", "addr", src, "err", err)
		return out
	}
	v.log.Debug("vrrp: primary address", "addr", src)
	return append(out, acts...)
}

// noteOwner logs when the address owner (vrrpprio 255) is demoted below
// the owner rule, and when it is the owner again: a demoted owner is an
// ordinary router (it no longer takes over at once nor always preempts).
func (v *vrrpInstance) noteOwner() {
	if v.Config().Priority != vrrp.OwnerPriority {
		return
	}
	demoted := v.Priority() != vrrp.OwnerPriority
	if demoted == v.ownerDemoted {
		return
	}
	v.ownerDemoted = demoted
	if demoted {
		v.log.Warn("vrrp: the address owner (priority 255) is demoted: it advertises a lower priority and is an ordinary router until the demotion is gone",
			"priority", v.Priority())
	} else {
		v.log.Info("vrrp: the address owner (priority 255) is no longer demoted")
	}
}

// Send sends a vrrp.SendAdvert.
func (v *vrrpInstance) Send(a elect.Action) (int, error) {
	s, ok := a.(vrrp.SendAdvert)
	if !ok {
		return -1, fmt.Errorf("vrrp: cannot carry out %T", a)
	}
	dst := carp.Group(v.fam)
	src, err := v.w.Source(dst)
	if err == nil {
		v.buf, err = s.Advert.AppendMarshal(v.buf[:0], src, dst)
	}
	if err == nil {
		err = v.w.Write(src, dst, v.buf)
	}
	if err != nil {
		v.log.Warn("vrrp: sending advert failed", "family", v.fam.String(), "dst", dst, "err", err)
	}
	return int(v.fam), err
}

// Heard is an advert from another router (not from our primary address).
func (v *vrrpInstance) Heard(now time.Time, ev elect.Event) (api.Heard, netip.Addr, int, bool) {
	r, ok := ev.(vrrp.Received)
	if !ok || r.Src == v.Config().PrimaryIP {
		return api.Heard{}, netip.Addr{}, 0, false
	}
	return api.Heard{Time: now, Priority: int(r.Advert.Priority), Interval: int(r.Advert.Interval)}, r.Src, int(v.fam), true
}

// Reconfigure takes next's configuration, keeping the primary address
// learnt from the interface.
func (v *vrrpInstance) Reconfigure(now time.Time, next elect.Electorate) ([]elect.Action, bool, string, error) {
	n, ok := next.(*vrrpInstance)
	if !ok || n.fam != v.fam {
		return nil, false, "", fmt.Errorf("vrrp %s: cannot become %s %s", v.Family(), next.Proto(), next.Family())
	}
	old, mc := v.Config(), n.Config()
	mc.PrimaryIP = old.PrimaryIP
	acts, err := v.Machine.Reconfigure(now, mc)
	if err != nil {
		return nil, false, "", err
	}
	changed := len(acts) > 0 || old.Priority != mc.Priority || old.Interval != mc.Interval || old.Preempt != mc.Preempt ||
		old.PreemptDelay != mc.PreemptDelay || old.TieBreak != mc.TieBreak ||
		old.IfDownDemotion != mc.IfDownDemotion || old.SendErrDemotion != mc.SendErrDemotion
	return acts, changed, "", nil
}

// Why says why the instance is BACKUP or MASTER, in priorities and
// intervals (centiseconds).
func (v *vrrpInstance) Why(h *api.Heard, leaving bool) string {
	ours := v.Priority()
	if v.State() == carp.Backup {
		if h == nil {
			return fmt.Sprintf("BACKUP: no master heard yet; takes over after %v without one (priority %d)", v.MasterDownInterval(), ours)
		}
		return fmt.Sprintf("BACKUP: master %s advertises priority %d interval %d, ours %d; takes over after %v without it",
			h.Source, h.Priority, h.Interval, ours, v.MasterDownInterval())
	}
	if leaving {
		return "MASTER: resigned (priority 0), holding the addresses until a new master is heard"
	}
	if h != nil {
		return fmt.Sprintf("MASTER: advertising priority %d interval %d; last heard %s with priority %d interval %d",
			ours, v.Config().Interval, h.Source, h.Priority, h.Interval)
	}
	return fmt.Sprintf("MASTER: advertising priority %d interval %d; no other router heard", ours, v.Config().Interval)
}

// Status fills in the family, the priorities, the intervals and the
// primary address.
func (v *vrrpInstance) Status(s *api.VHID) {
	c := v.Config()
	s.Family = v.Family()
	s.Priority, s.AdvertisedPriority = int(c.Priority), int(v.Priority())
	s.Interval, s.MasterAdverInterval = int(c.Interval), int(v.MasterAdverInterval())
	s.Preempt, s.TieBreak = c.Preempt, c.TieBreak
	s.Peer = carp.Group(v.fam).String()
	if c.PrimaryIP.IsValid() {
		s.PrimaryAddress = c.PrimaryIP.String()
	}
}

// Rank is the advertised priority.
func (v *vrrpInstance) Rank() (int, int) { return 0, int(v.Priority()) }
