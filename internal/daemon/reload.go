package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/vrrp"
)

// vhidKey names a vhid on an interface: a CARP vhid, or the VRRP
// instance of one address family (af "inet" or "inet6") of a carpver 3
// vhid.
type vhidKey struct {
	iface string
	vhid  uint8
	af    string // "" for CARP
}

func (v *vhost) key() vhidKey {
	k := vhidKey{iface: v.cfg.Interface, vhid: v.cfg.VHID}
	if v.vm != nil {
		k.af = afName(v.fam)
	}
	return k
}

func (k vhidKey) String() string {
	if k.af != "" {
		return fmt.Sprintf("%d@%s vrrp %s", k.vhid, k.iface, k.af)
	}
	return fmt.Sprintf("%d@%s", k.vhid, k.iface)
}

// Reload applies a new configuration, only the difference:
//   - a vhid whose configuration did not change keeps its state and its
//     timers: no transition, no advert, no announcement;
//   - a new vhid starts (INIT, then BACKUP);
//   - a vhid no longer configured bows out and releases its addresses
//     once a new master is heard, as at a planned stop;
//   - a changed vhid changes in place (carp.Machine.Reconfigure): a
//     MASTER advertises its new values at once; one whose interface or
//     virtual MAC mode changed is removed and started afresh;
//   - the demotions (interface down, send errors, operator, maintenance)
//     and the forced states in force stay.
//
// A change of the HMAC inputs (password, addresses) is returned as a
// warning: until the peers change too, each side drops the other's
// adverts as badauth. A configuration that cannot be applied here (an
// interface missing, a family without a socket, a virtual MAC that cannot
// be made) is refused and nothing changes.
func (d *Daemon) Reload(ctx context.Context, cfg *config.Config) (api.ReloadResult, error) {
	var res api.ReloadResult
	var rerr error
	err := d.do(ctx, func(now time.Time) {
		d.tell(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
		res, rerr = d.reload(now, cfg)
		d.tell("READY=1\nSTATUS=" + d.statusLine())
	})
	err = errors.Join(err, rerr)
	if err != nil {
		d.ReloadFailed()
	}
	return res, err
}

// ReloadFailed records a reload refused before it reached Reload (a file
// that does not parse): the metrics and the counters tell it until a
// reload succeeds.
func (d *Daemon) ReloadFailed() { d.stats.reloadFailed.Store(true) }

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants
// with RELOADING=1.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return ts.Nano() / 1000
}

func (d *Daemon) reload(now time.Time, cfg *config.Config) (api.ReloadResult, error) {
	res := api.ReloadResult{Version: api.Version}
	if len(cfg.VHIDs) == 0 {
		return res, fmt.Errorf("%w: no vhid configured", ErrBadRequest)
	}
	if d.leaving {
		return res, fmt.Errorf("%w: carpd is stopping", ErrBadRequest)
	}
	old := map[vhidKey]*vhost{}
	for _, v := range d.vhosts {
		if !v.removing {
			old[v.key()] = v
		}
	}
	// Check everything first: nothing changes unless all of it applies.
	type plan struct {
		vc      config.VHID
		k       vhidKey
		mc      carp.Config // CARP
		vmc     vrrp.Config // VRRP, of family fam
		fam     carp.Family
		v       *vhost // existing, to change in place; nil: to add
		restart bool   // existing, to remove and add afresh
	}
	var plans []plan
	var errs []error
	newKeys := map[vhidKey]bool{}
	numbers := map[vhidKey]*config.VHID{} // by interface and number, of either protocol
	newIfaces := map[string]Link{}
	for _, vc := range cfg.VHIDs {
		n := vhidKey{iface: vc.Interface, vhid: vc.VHID}
		if w := numbers[n]; w != nil {
			errs = append(errs, config.Twice(w, &vc))
			continue
		}
		numbers[n] = &vc
		var ps []plan
		if vc.IsVRRP() {
			for _, f := range []carp.Family{carp.IPv4, carp.IPv6} {
				vmc, ok := vrrpConfig(cfg, &vc, f)
				if !ok {
					continue
				}
				if _, err := vrrp.NewMachine(vmc); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", vc.Origin, err))
					continue
				}
				ps = append(ps, plan{vc: vc, k: vhidKey{vc.Interface, vc.VHID, afName(f)}, vmc: vmc, fam: f})
			}
		} else {
			mc := machineConfig(cfg, &vc)
			if _, err := carp.NewMachine(mc, 0); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", vc.Origin, err))
				continue
			}
			ps = append(ps, plan{vc: vc, k: n, mc: mc})
		}
		for f := range d.families {
			hasFamily := false
			for _, p := range vc.Addresses {
				hasFamily = hasFamily || familyOf(p.Addr()) == carp.Family(f)
			}
			if hasFamily && d.host.Conns[f] == nil {
				errs = append(errs, fmt.Errorf("%s: no %v protocol socket: restart carpd for the first vhid of this family", vc.Origin, carp.Family(f)))
			}
		}
		if vc.VirtualMAC && d.host.VirtualMACs == nil {
			errs = append(errs, fmt.Errorf("%s: virtual MAC mode is not available", vc.Origin))
		}
		if _, known := d.byName[vc.Interface]; !known {
			if _, seen := newIfaces[vc.Interface]; !seen {
				l, err := d.host.Links.Link(vc.Interface)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: interface %s: %w", vc.Origin, vc.Interface, err))
					continue
				}
				newIfaces[vc.Interface] = l
			}
		}
		for _, p := range ps {
			newKeys[p.k] = true
			p.v = old[p.k]
			if p.v != nil && p.v.cfg.VirtualMAC != vc.VirtualMAC {
				p.restart = true
			}
			plans = append(plans, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}

	// Apply.
	if d.level != nil {
		var l slog.Level
		if l.UnmarshalText([]byte(cfg.LogLevel)) == nil {
			d.level.Set(l)
		}
	}
	d.host.Addresses.SetLifetime(AddressLifetime(cfg))
	for _, k := range sortedKeys(old) {
		if !newKeys[k] {
			d.remove(now, old[k])
			res.Removed = append(res.Removed, k.String())
		}
	}
	d.refreshEvery = refreshInterval(AddressLifetime(cfg))
	for _, p := range plans {
		k := p.k
		switch {
		case p.v == nil:
			if err := d.add(now, cfg, p.vc, p.fam); err != nil {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s: not started: %v", k, err))
				continue
			}
			res.Added = append(res.Added, k.String())
		case p.restart:
			d.remove(now, p.v)
			d.reap(now, true)
			if err := d.add(now, cfg, p.vc, p.fam); err != nil {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s: not restarted: %v", k, err))
				continue
			}
			res.Changed = append(res.Changed, k.String())
		default:
			var changed bool
			var warn string
			if p.v.vm != nil {
				changed = d.reconfigureVRRP(now, p.v, p.vc, p.vmc)
			} else {
				changed, warn = d.reconfigure(now, p.v, p.vc, p.mc)
			}
			if changed {
				res.Changed = append(res.Changed, k.String())
			} else {
				res.Unchanged++
			}
			if warn != "" {
				res.Warnings = append(res.Warnings, warn)
			}
		}
	}
	d.setChecks(now, cfg.Checks)
	d.admit.Store(d.newAdmitTable())
	d.stats.reloads.Add(1)
	d.stats.loaded.Store(now.UnixNano())
	d.stats.reloadFailed.Store(false)
	for _, w := range res.Warnings {
		d.log.Warn("carpd: reload: " + w)
	}
	d.log.Info("carpd: configuration reloaded", "added", res.Added, "removed", res.Removed, "changed", res.Changed, "unchanged", res.Unchanged)
	d.emit(now, api.Event{Type: "reload", Reason: fmt.Sprintf("added %d, removed %d, changed %d, unchanged %d",
		len(res.Added), len(res.Removed), len(res.Changed), res.Unchanged)})
	return res, nil
}

// reconfigure changes v in place. It reports whether anything changed,
// and a warning when the HMAC inputs did.
func (d *Daemon) reconfigure(now time.Time, v *vhost, vc config.VHID, mc carp.Config) (bool, string) {
	oldMC := v.m.Config()
	mc.Source4, mc.Source6 = oldMC.Source4, oldMC.Source6 // learnt from the interface, not configured
	sameCfg := v.cfg.AdvBase == vc.AdvBase && v.cfg.AdvSkew == vc.AdvSkew && v.cfg.Password == vc.Password &&
		slices.Equal(v.prefixes, vc.Addresses) && v.cfg.Peer == vc.Peer && v.cfg.Peer6 == vc.Peer6 &&
		v.cfg.State == vc.State && samePtr(v.cfg.Preempt, vc.Preempt) && v.cfg.Hooks.Equal(vc.Hooks) && v.cfg.Name == vc.Name
	acts, err := v.m.Reconfigure(now, mc)
	if err != nil {
		// Checked before: not expected.
		v.log.Error("carpd: reload", "err", err)
		return false, ""
	}
	origin := vc.Origin
	vc.Origin = v.cfg.Origin
	changed := !sameCfg || len(acts) > 0 || !sameMachine(oldMC, v.m.Config())
	v.cfg = vc
	v.cfg.Origin = origin
	var warn string
	if oldMC.Password != mc.Password || !slices.Equal(v.prefixes, vc.Addresses) {
		warn = fmt.Sprintf("%s: the password or the addresses changed: until every peer has the same, each side drops the other's adverts as badauth", v.key())
	}
	d.readdress(v, vc.Addresses)
	d.runActions(now, v, acts, nil)
	return changed, warn
}

// readdress gives v the addresses ps, after a reload: those no longer
// configured go, the new ones come if held, and are announced.
func (d *Daemon) readdress(v *vhost, ps []netip.Prefix) {
	if slices.Equal(v.prefixes, ps) {
		return
	}
	ifc := v.iface
	gone := slices.DeleteFunc(slices.Clone(v.prefixes), func(p netip.Prefix) bool { return slices.Contains(ps, p) })
	v.setAddresses(ps)
	ifc.vips = ifc.vips[:0]
	for _, w := range ifc.vhosts {
		ifc.vips = append(ifc.vips, w.addrs...)
	}
	clear(ifc.src)
	if len(gone) > 0 {
		d.setAddresses(v.home().Name, gone, nil)
	}
	d.syncAddresses(ifc)
	if v.hold {
		d.announce(v)
	}
	for f := range d.families {
		d.families[f] = d.families[f] || v.hasFamily(carp.Family(f))
	}
}

// reconfigureVRRP changes VRRP instance v in place (its family's share of
// vc, mc). It reports whether anything changed.
func (d *Daemon) reconfigureVRRP(now time.Time, v *vhost, vc config.VHID, mc vrrp.Config) bool {
	old := v.vm.Config()
	mc.PrimaryIP = old.PrimaryIP
	acts, err := v.vm.Reconfigure(now, mc)
	if err != nil {
		// Checked before: not expected.
		v.log.Error("carpd: reload", "err", err)
		return false
	}
	var ps []netip.Prefix
	for _, p := range vc.Addresses {
		if familyOf(p.Addr()) == v.fam {
			ps = append(ps, p)
		}
	}
	changed := len(acts) > 0 || !slices.Equal(v.prefixes, ps) || old.Priority != mc.Priority ||
		old.Interval != mc.Interval || old.Preempt != mc.Preempt || old.PreemptDelay != mc.PreemptDelay ||
		old.TieBreak != mc.TieBreak || old.IfDownDemotion != mc.IfDownDemotion || old.SendErrDemotion != mc.SendErrDemotion ||
		v.cfg.State != vc.State || !samePtr(v.cfg.Preempt, vc.Preempt) || !v.cfg.Hooks.Equal(vc.Hooks) || v.cfg.Name != vc.Name
	origin := vc.Origin
	v.cfg = vc
	v.cfg.Origin = origin
	d.readdress(v, ps)
	d.runVRRPActions(now, v, acts, nil)
	return changed
}

func samePtr(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func sameMachine(a, b carp.Config) bool {
	return a.AdvBase == b.AdvBase && a.AdvSkew == b.AdvSkew && a.Password == b.Password && a.Preempt == b.Preempt &&
		a.PreemptDelay == b.PreemptDelay && a.Peer4 == b.Peer4 && a.Peer6 == b.Peer6 &&
		a.IfDownDemotion == b.IfDownDemotion && a.SendErrDemotion == b.SendErrDemotion
}

// add starts a vhid (a VRRP vhid's instance of family fam): its interface
// (joined, if new), its virtual MAC, its machine in INIT, then BACKUP if
// the interface is up.
func (d *Daemon) add(now time.Time, cfg *config.Config, vc config.VHID, fam carp.Family) error {
	vs, err := d.newVhosts(cfg, vc)
	if err != nil {
		return err
	}
	v := vs[0]
	if len(vs) > 1 && vs[1].fam == fam {
		v = vs[1]
	}
	ifc := d.byName[vc.Interface]
	if ifc == nil {
		if ifc, err = d.newIface(vc.Interface); err != nil {
			return err
		}
		for f, conn := range d.host.Conns {
			if conn != nil {
				if err := conn.Join(ifc.link.Index); err != nil && v.hasFamily(carp.Family(f)) {
					v.log.Warn("carpd: joining the group failed", "family", carp.Family(f).String(), "err", err)
				}
			}
		}
	}
	if vc.VirtualMAC {
		l, err := d.host.VirtualMACs.Ensure(vc.Interface, vc.VHID)
		if err != nil {
			return fmt.Errorf("virtual MAC: %w", err)
		}
		v.vmac = &l
		d.vmacIdx[l.Index] = ifc
	}
	d.attach(ifc, v)
	for _, cs := range d.checks {
		if len(cs.cfg.VHIDs) > 0 && !cs.up && cs.cfg.Matches(v.cfg.VHID, v.cfg.Interface) {
			v.checkDemotion += cs.demotion
			if cs.cfg.Release {
				v.releases++
			}
		}
	}
	d.syncAddresses(ifc) // a leftover of the new vhid goes
	v.log.Info("carpd: vhid added")
	if ifc.link.Up {
		d.step(now, v, carp.LinkUp{})
	}
	d.step(now, v, carp.SetDemotion{Demotion: d.demotionOf(v)})
	if v.releases > 0 {
		d.step(now, v, carp.Release{On: true})
	}
	return nil
}

// remove makes a vhid bow out; reap drops it once it has left.
func (d *Daemon) remove(now time.Time, v *vhost) {
	v.removing = true
	d.removals++
	v.log.Info("carpd: vhid removed; bowing out")
	d.step(now, v, carp.Shutdown{})
}

// reap drops the removed vhids that have left (all of them with force,
// releasing their addresses), and the interfaces left without vhids. It
// reports whether it dropped any.
func (d *Daemon) reap(now time.Time, force bool) bool {
	if d.removals == 0 {
		return false
	}
	var gone []*vhost
	for _, v := range d.vhosts {
		if v.removing && (force || v.left()) {
			gone = append(gone, v)
		}
	}
	if len(gone) == 0 {
		return false
	}
	d.removals -= len(gone)
	for _, v := range gone {
		ifc := v.iface
		v.hold = false
		managed := v.prefixes
		d.setAddresses(v.home().Name, managed, nil)
		ifc.vhosts = slices.DeleteFunc(ifc.vhosts, func(w *vhost) bool { return w == v })
		if v.vm != nil {
			ifc.byVRID[v.fam][v.cfg.VHID] = nil
		} else {
			ifc.byVHID[v.cfg.VHID] = nil
		}
		ifc.vips = ifc.vips[:0]
		for _, w := range ifc.vhosts {
			ifc.vips = append(ifc.vips, w.addrs...)
		}
		if v.vmac != nil {
			delete(d.vmacIdx, v.vmac.Index)
			if err := d.host.VirtualMACs.Remove(v.vmac.Name); err != nil {
				v.log.Warn("carp: removing the virtual MAC interface failed", "dev", v.vmac.Name, "err", err)
			}
		}
		d.vhosts = slices.DeleteFunc(d.vhosts, func(w *vhost) bool { return w == v })
		for k := range d.demotions {
			if k.v == v {
				// The demotions it asked for go with it.
				d.demotion -= d.demotions[k].delta
				delete(d.demotions, k)
			}
		}
		if len(ifc.vhosts) == 0 {
			delete(d.byName, ifc.link.Name)
			delete(d.byIdx, ifc.link.Index)
			d.ifaces = slices.DeleteFunc(d.ifaces, func(i *iface) bool { return i == ifc })
		}
		v.log.Info("carpd: vhid gone")
	}
	for _, v := range d.vhosts {
		d.step(now, v, carp.SetDemotion{Demotion: d.demotionOf(v)})
	}
	d.admit.Store(d.newAdmitTable())
	return true
}

func sortedKeys(m map[vhidKey]*vhost) []vhidKey {
	keys := make([]vhidKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b vhidKey) int {
		if a.iface != b.iface {
			if a.iface < b.iface {
				return -1
			}
			return 1
		}
		if a.vhid != b.vhid {
			return int(a.vhid) - int(b.vhid)
		}
		return strings.Compare(a.af, b.af)
	})
	return keys
}
