package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/elect"
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
	return vhidKey{iface: v.cfg.Interface, vhid: v.cfg.VHID, af: v.el.Family()}
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
//   - a changed vhid changes in place (elect.Electorate.Reconfigure): a
//     MASTER advertises its new values at once; one whose interface or
//     virtual MAC mode changed is removed (a MASTER bows out first) and
//     started afresh;
//   - the demotions (interface down, send errors, operator, maintenance)
//     and the forced states in force stay.
//
// A change of the HMAC inputs (password, addresses) is returned as a
// warning: until the peers change too, each side drops the other's
// adverts as badauth. A configuration that cannot be applied here (an
// interface missing, a family without a socket, a virtual MAC that cannot
// be made) is refused and nothing changes: the reload is planned (plan)
// before anything is applied (apply).
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
	p, err := d.plan(cfg)
	if err != nil {
		return api.ReloadResult{Version: api.Version}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return d.apply(now, p)
}

// reloadPlan is what a reload does, decided before anything changes: the
// vhids that go, and each vhid of the new configuration, in order.
type reloadPlan struct {
	cfg     *config.Config
	removed []*vhost // no longer configured: they bow out
	steps   []reloadStep
	links   map[string]Link // the interfaces read: new ones, those of restarts
}

// reloadStep is one vhid of the new configuration: next is built from it
// (not attached); old is the running vhid of the same key, nil for one to
// add; restart says old is removed and next started afresh (its virtual
// MAC mode changed); vmac is next's virtual MAC interface, made by apply.
type reloadStep struct {
	next, old *vhost
	restart   bool
	vmac      *Link
}

// plan decides what reloading cfg does, or refuses it with every reason.
// It builds the vhids as New does (newVhosts) and changes nothing, neither
// the daemon nor the host: it only reads the interfaces new to carpd and
// those of the vhids to restart (their interface may go with them).
func (d *Daemon) plan(cfg *config.Config) (*reloadPlan, error) {
	if len(cfg.VHIDs) == 0 {
		return nil, errors.New("no vhid configured")
	}
	if d.leaving {
		return nil, errors.New("carpd is stopping")
	}
	old := map[vhidKey]*vhost{}
	for _, v := range d.vhosts {
		if !v.removing {
			old[v.key()] = v
		}
	}
	p := &reloadPlan{cfg: cfg, links: map[string]Link{}}
	errs := []error{d.canRoute(cfg)}
	kept := map[vhidKey]bool{}
	numbers := map[vhidKey]*config.VHID{} // by interface and number, of either protocol
	for _, vc := range cfg.VHIDs {
		n := vhidKey{iface: vc.Interface, vhid: vc.VHID}
		if w := numbers[n]; w != nil {
			errs = append(errs, config.Twice(w, &vc))
			continue
		}
		numbers[n] = &vc
		if err := d.canRun(p, &vc); err != nil {
			errs = append(errs, err)
			continue
		}
		vs, err := d.newVhosts(cfg, vc, d.counter)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, v := range vs {
			s := reloadStep{next: v, old: old[v.key()]}
			s.restart = s.old != nil && (s.old.cfg.VirtualMAC != vc.VirtualMAC || s.old.cfg.MoverOf() != vc.MoverOf())
			if s.restart {
				// Its interface may go with it (reap): read as a new one.
				errs = append(errs, d.readLink(p, &vc))
			}
			kept[v.key()] = true
			p.steps = append(p.steps, s)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(old) {
		if !kept[k] {
			p.removed = append(p.removed, old[k])
		}
	}
	return p, nil
}

// canRun checks that vhid vc can run here: a protocol socket for each of
// its families (but an etcd vhid's, which sends no advert), virtual MAC mode if it asks for it, its interface (new
// ones are read into p.links).
func (d *Daemon) canRun(p *reloadPlan, vc *config.VHID) error {
	var errs []error
	for f, conn := range d.host.Conns {
		if conn == nil && !vc.IsEtcd() && slices.ContainsFunc(vc.Addresses, func(a netip.Prefix) bool { return familyOf(a.Addr()) == carp.Family(f) }) {
			errs = append(errs, fmt.Errorf("%s: no %v protocol socket: restart carpd for the first vhid of this family", vc.Origin, carp.Family(f)))
		}
	}
	if vc.VirtualMAC && d.host.VirtualMACs == nil {
		errs = append(errs, fmt.Errorf("%s: virtual MAC mode is not available", vc.Origin))
	}
	if _, known := d.byName[vc.Interface]; !known {
		errs = append(errs, d.readLink(p, vc))
	}
	return errors.Join(errs...)
}

// readLink reads vc's interface into p.links.
func (d *Daemon) readLink(p *reloadPlan, vc *config.VHID) error {
	if _, seen := p.links[vc.Interface]; seen {
		return nil
	}
	l, err := d.host.Links.Link(vc.Interface)
	if err != nil {
		return fmt.Errorf("%s: interface %s: %w", vc.Origin, vc.Interface, err)
	}
	p.links[vc.Interface] = l
	return nil
}

// apply carries out plan p. What can fail on the host comes first, the
// virtual MAC interfaces of the vhids to start: if one cannot be made, the
// reload is refused and those made are removed, before anything else
// changed.
func (d *Daemon) apply(now time.Time, p *reloadPlan) (api.ReloadResult, error) {
	res := api.ReloadResult{Version: api.Version}
	if err := d.makeVMACs(p); err != nil {
		return res, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if d.level != nil {
		var l slog.Level
		if l.UnmarshalText([]byte(p.cfg.LogLevel)) == nil {
			d.level.Set(l)
		}
	}
	d.host.Addresses.SetLifetime(AddressLifetime(p.cfg))
	d.refreshEvery = refreshInterval(AddressLifetime(p.cfg))
	for _, v := range p.removed {
		d.remove(now, v)
		res.Removed = append(res.Removed, v.key().String())
	}
	for _, s := range p.steps {
		k := s.next.key().String()
		switch {
		case s.old == nil:
			d.add(now, p, s)
			res.Added = append(res.Added, k)
		case s.restart:
			// The bow-out goes out before the addresses go.
			d.remove(now, s.old)
			d.flushSends(now)
			d.reap(now, true)
			d.add(now, p, s)
			res.Changed = append(res.Changed, k)
		default:
			changed, warn := d.reconfigure(now, s.old, s.next)
			if changed {
				res.Changed = append(res.Changed, k)
			} else {
				res.Unchanged++
			}
			if warn != "" {
				res.Warnings = append(res.Warnings, k+": "+warn)
			}
		}
	}
	d.setChecks(now, p.cfg.Checks)
	d.admit.Store(d.newAdmission())
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

// makeVMACs makes the virtual MAC interfaces of the vhids p starts, or
// removes those it made and fails.
func (d *Daemon) makeVMACs(p *reloadPlan) error {
	for i := range p.steps {
		s := &p.steps[i]
		if !s.next.cfg.VirtualMAC || (s.old != nil && !s.restart) {
			continue
		}
		l, err := d.host.VirtualMACs.Ensure(s.next.cfg.Interface, s.next.cfg.VHID)
		if err == nil {
			s.vmac = &l
			continue
		}
		for _, made := range p.steps[:i] {
			if made.vmac != nil {
				if rerr := d.host.VirtualMACs.Remove(made.vmac.Name); rerr != nil {
					d.log.Warn("carp: removing the virtual MAC interface failed", "dev", made.vmac.Name, "err", rerr)
				}
			}
		}
		return fmt.Errorf("%s: virtual MAC: %w", s.next.cfg.Origin, err)
	}
	return nil
}

// reconfigure changes v in place to next's configuration. It reports
// whether anything changed, and a warning for the operator.
func (d *Daemon) reconfigure(now time.Time, v, next *vhost) (bool, string) {
	acts, changed, warn, err := v.el.Reconfigure(now, next.el)
	if err != nil {
		// Checked before: not expected.
		v.log.Error("carpd: reload", "err", err)
		return false, ""
	}
	vc := next.cfg
	changed = changed || !slices.Equal(v.prefixes, next.prefixes) || v.cfg.State != vc.State ||
		!samePtr(v.cfg.Preempt, vc.Preempt) || !v.cfg.Hooks.Equal(vc.Hooks) || v.cfg.Name != vc.Name
	v.cfg = vc
	d.readdress(v, next.prefixes)
	d.runActions(now, v, acts)
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
		d.families[f] = d.families[f] || v.advertises(carp.Family(f))
	}
}

func samePtr(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// add starts step s's vhid: its interface (joined, if new), its virtual
// MAC, its machine in INIT, then BACKUP if the interface is up.
func (d *Daemon) add(now time.Time, p *reloadPlan, s reloadStep) {
	v := s.next
	ifc := d.byName[v.cfg.Interface]
	if ifc == nil {
		ifc = d.addIface(p.links[v.cfg.Interface])
		for f, conn := range d.host.Conns {
			if conn != nil {
				if err := conn.Join(ifc.link.Index); err != nil && v.hasFamily(carp.Family(f)) {
					v.log.Warn("carpd: joining the group failed", "family", carp.Family(f).String(), "err", err)
				}
			}
		}
	}
	if s.vmac != nil {
		v.vmac = s.vmac
		d.vmacIdx[s.vmac.Index] = ifc
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
		d.step(now, v, elect.LinkUp{})
	}
	d.step(now, v, elect.SetDemotion{Demotion: d.demotionOf(v)})
	if v.releases > 0 {
		d.step(now, v, elect.Release{On: true})
	}
}

// remove makes a vhid bow out; reap drops it once it has left.
func (d *Daemon) remove(now time.Time, v *vhost) {
	v.removing = true
	d.removals++
	v.log.Info("carpd: vhid removed; bowing out")
	d.step(now, v, elect.Shutdown{})
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
		if v.removing && (force || v.el.Left()) {
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
		d.releaseNow(v)
		managed := v.prefixes
		d.setAddresses(v.home().Name, managed, nil)
		ifc.vhosts = slices.DeleteFunc(ifc.vhosts, func(w *vhost) bool { return w == v })
		ifc.byNum[v.slot()][v.cfg.VHID] = nil
		v.reaped = true
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
		d.step(now, v, elect.SetDemotion{Demotion: d.demotionOf(v)})
	}
	d.admit.Store(d.newAdmission())
	return true
}

func sortedKeys(m map[vhidKey]*vhost) []vhidKey {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b vhidKey) int {
		return cmp.Or(strings.Compare(a.iface, b.iface), cmp.Compare(a.vhid, b.vhid), strings.Compare(a.af, b.af))
	})
	return keys
}

// canRoute refuses a reload that the running bgp speaker cannot carry out:
// the speaker starts with carpd, from the [bgp] table it read then, and
// does not change its peers under a running daemon.
func (d *Daemon) canRoute(cfg *config.Config) error {
	uses := slices.ContainsFunc(cfg.VHIDs, func(v config.VHID) bool { return v.MoverOf() == config.MoverBGP })
	r := d.host.Routes
	switch {
	case !uses:
		return nil
	case d.unmanaged:
		return nil // the hooks hold the addresses; no mover runs
	case r == nil:
		return errors.New(`mover = "bgp": the bgp speaker starts with carpd: restart carpd for the first vhid with mover = "bgp"`)
	case !config.SameBGP(r.Config(), cfg.BGP):
		return fmt.Errorf("%s: the [bgp] table changed: the bgp speaker takes it when carpd restarts (reload refused)", cfg.BGP.Origin)
	}
	return nil
}
