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
)

// carpVHID is a CARP vhid: internal/carp's machine, its adverts sent to
// the group or the configured peer of each family.
type carpVHID struct {
	*carp.Machine
	w   elect.Wire
	log *slog.Logger
	buf []byte // the last advert, reused
}

var _ elect.Electorate = (*carpVHID)(nil)

// carpConfig is the state machine's configuration of CARP vhid vc.
func carpConfig(cfg *config.Config, vc *config.VHID) carp.Config {
	mc := carp.Config{
		VHID: vc.VHID, AdvBase: vc.AdvBase, AdvSkew: vc.AdvSkew,
		Password: vc.Password, Preempt: cfg.PreemptOf(vc), PreemptDelay: cfg.PreemptDelay,
		Peer4: vc.Peer, Peer6: vc.Peer6, ReplayProtection: vc.ReplayProtection,
		IfDownDemotion: cfg.IfDownDemotion, SendErrDemotion: cfg.SendErrDemotion,
	}
	for _, p := range vc.Addresses {
		mc.Addrs = append(mc.Addrs, p.Addr())
	}
	return mc
}

func (c *carpVHID) Proto() string                       { return "carp" }
func (c *carpVHID) Family() string                      { return "" }
func (c *carpVHID) Attach(w elect.Wire, l *slog.Logger) { c.w, c.log = w, l }

// AppendStep marks an advert from one of this host's addresses as its
// own (Self), gives the machine the addresses its adverts leave from
// before an advert is judged and when the link comes up, then steps it.
func (c *carpVHID) AppendStep(out []elect.Action, now time.Time, ev elect.Event) []elect.Action {
	switch e := ev.(type) {
	case carp.Received:
		e.Self = e.Self || c.w.Own(e.Src)
		ev = e
		out = c.syncSources(out, now)
	case carp.LinkUp:
		out = c.syncSources(out, now)
	}
	return c.Machine.AppendStep(out, now, ev)
}

// syncSources gives the machine the addresses its adverts leave from, for
// the tie-break between equal adverts and the master-down offset
// (carp.Config.Source4), when they changed. A family whose source is not
// known (no address yet) keeps the last known.
func (c *carpVHID) syncSources(out []elect.Action, now time.Time) []elect.Action {
	cfg := c.Config()
	src4, ok4 := c.source(carp.IPv4)
	src6, ok6 := c.source(carp.IPv6)
	if (!ok4 || src4 == cfg.Source4) && (!ok6 || src6 == cfg.Source6) {
		return out
	}
	if ok4 {
		cfg.Source4 = src4
	}
	if ok6 {
		cfg.Source6 = src6
	}
	acts, err := c.Machine.Reconfigure(now, cfg)
	if err != nil {
		c.log.Error("carp: advert source", "err", err)
		return out
	}
	c.log.Debug("carp: advert source", "v4", cfg.Source4, "v6", cfg.Source6)
	return append(out, acts...)
}

// dst is where adverts of family f go: the peer, or the group.
func (c *carpVHID) dst(f carp.Family) netip.Addr {
	if p := c.Peer(f); p.IsValid() {
		return p
	}
	return carp.Group(f)
}

// source is the address the adverts of family f leave from; ok is false
// if the vhid has no address of f or the interface none to send from.
func (c *carpVHID) source(f carp.Family) (netip.Addr, bool) {
	if !c.HasFamily(f) {
		return netip.Addr{}, false
	}
	src, err := c.w.Source(c.dst(f))
	return src, err == nil && src.IsValid()
}

// Send sends a carp.SendAdvert.
func (c *carpVHID) Send(a elect.Action) (int, error) {
	s, ok := a.(carp.SendAdvert)
	if !ok {
		return -1, fmt.Errorf("carp: cannot carry out %T", a)
	}
	dst := c.dst(s.Family)
	src, err := c.w.Source(dst)
	if err == nil {
		c.buf = s.Advert.AppendMarshal(c.buf[:0])
		err = c.w.Write(src, dst, c.buf)
	}
	if err != nil {
		c.log.Warn("carp: sending advert failed", "family", s.Family.String(), "dst", dst, "err", err)
	}
	return int(s.Family), err
}

// Heard is a valid advert from another host.
func (c *carpVHID) Heard(now time.Time, ev elect.Event) (api.Heard, netip.Addr, int, bool) {
	r, ok := ev.(carp.Received)
	if !ok || r.Self || c.w.Own(r.Src) {
		return api.Heard{}, netip.Addr{}, 0, false
	}
	return api.Heard{Time: now, AdvBase: int(r.Advert.AdvBase), AdvSkew: int(r.Advert.AdvSkew)}, r.Src, int(r.Family), true
}

// Reconfigure takes next's configuration, keeping the advert sources
// learnt from the interface.
func (c *carpVHID) Reconfigure(now time.Time, next elect.Electorate) ([]elect.Action, bool, string, error) {
	n, ok := next.(*carpVHID)
	if !ok {
		return nil, false, "", fmt.Errorf("carp: cannot become %s", next.Proto())
	}
	old := c.Config()
	mc := n.Config()
	mc.Source4, mc.Source6 = old.Source4, old.Source6 // learnt from the interface, not configured
	acts, err := c.Machine.Reconfigure(now, mc)
	if err != nil {
		return nil, false, "", err
	}
	var warn string
	if old.Password != mc.Password || !equalAddrs(old.Addrs, mc.Addrs) {
		warn = "the password or the addresses changed: until every peer has the same, each side drops the other's adverts as badauth"
	}
	return acts, len(acts) > 0 || !sameCARP(old, c.Config()), warn, nil
}

func sameCARP(a, b carp.Config) bool {
	return a.AdvBase == b.AdvBase && a.AdvSkew == b.AdvSkew && a.Password == b.Password && a.Preempt == b.Preempt &&
		a.PreemptDelay == b.PreemptDelay && a.Peer4 == b.Peer4 && a.Peer6 == b.Peer6 &&
		a.IfDownDemotion == b.IfDownDemotion && a.SendErrDemotion == b.SendErrDemotion
}

func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Why says why the vhid is BACKUP or MASTER, in advbase and advskew.
func (c *carpVHID) Why(h *api.Heard, leaving bool) string {
	ours, base := c.AdvSkew(), c.Config().AdvBase
	if c.State() == carp.Backup {
		if h == nil {
			return fmt.Sprintf("BACKUP: no master heard yet; takes over after %v without one (advbase %d advskew %d)",
				c.MasterDownInterval(), base, ours)
		}
		return fmt.Sprintf("BACKUP: master %s advertises advbase %d advskew %d, ours %d", h.Source, h.AdvBase, h.AdvSkew, ours)
	}
	if leaving {
		return fmt.Sprintf("MASTER: bowed out, holding the addresses until a new master is heard (advskew %d)", ours)
	}
	if h != nil {
		return fmt.Sprintf("MASTER: advertising advbase %d advskew %d; last heard %s with advbase %d advskew %d",
			base, ours, h.Source, h.AdvBase, h.AdvSkew)
	}
	return fmt.Sprintf("MASTER: advertising advbase %d advskew %d; no other host heard", base, ours)
}

// Status fills in advbase, advskew and the peers.
func (c *carpVHID) Status(s *api.VHID) {
	cfg := c.Config()
	s.AdvBase, s.AdvSkew, s.AdvertisedSkew = int(cfg.AdvBase), int(cfg.AdvSkew), int(c.AdvSkew())
	s.Peer, s.Peer6 = c.dst(carp.IPv4).String(), c.dst(carp.IPv6).String()
}

// Rank is the advertised advskew, and 255 minus it.
func (c *carpVHID) Rank() (int, int) { return int(c.AdvSkew()), 255 - int(c.AdvSkew()) }
