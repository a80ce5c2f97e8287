// Package daemon is carpd's event loop: the only place with goroutines and
// the real clock. It feeds the vhids' state machines (internal/carp) with
// received adverts, link changes and timer ticks, and carries out the
// actions they return through small adapters: the protocol socket, the
// address manager and the announcer.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/carpd/carpd/internal/advsock"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/netmon"
)

// AdvertConn sends and receives protocol-112 datagrams of one family
// (advsock.IPv4Conn, advsock.IPv6Conn).
type AdvertConn interface {
	// ReadPacket blocks until a datagram arrives or the conn is closed.
	ReadPacket() (advsock.Packet, error)
	// WriteAdvert sends payload from src to dst out of the interface.
	WriteAdvert(ifindex int, src, dst netip.Addr, payload []byte) error
	// Join joins the family's CARP multicast group on the interface.
	Join(ifindex int) error
	Close() error
}

// Addresses makes an interface hold exactly the wanted addresses among the
// managed ones (vip.Manager).
type Addresses interface {
	Set(ifname string, managed, want []netip.Prefix) ([]string, error)
	// Refresh renews the lifetime of addresses the interface holds.
	Refresh(ifname string, want []netip.Prefix) error
}

// Announcer announces that addresses moved to this host (announce.Announcer).
type Announcer interface {
	// Announce sends gratuitous ARP for the IPv4 addresses and unsolicited
	// neighbour advertisements for the IPv6 ones, from hw.
	Announce(ifindex int, hw net.HardwareAddr, addrs []netip.Addr) error
}

// OS is the set of adapters the daemon runs on.
type OS struct {
	// Conns are the protocol sockets, by family; one may be nil when no
	// vhid has addresses of that family.
	Conns     [2]AdvertConn
	Addresses Addresses
	Announcer Announcer
	// Source returns the source address of adverts to dst out of the
	// interface: its own address of dst's family, never a virtual one.
	Source func(ifindex int, dst netip.Addr, exclude []netip.Addr) (netip.Addr, error)
	// Links reports link changes; Link reads one link's state.
	Links func(ctx context.Context) (<-chan netmon.Link, error)
	Link  func(name string) (netmon.Link, error)
	// Addrs reports address changes (nil: not watched).
	Addrs func(ctx context.Context) (<-chan netmon.AddrChange, error)
	// VirtualMAC creates (or reuses) the virtual MAC interface of a vhid on
	// a parent and returns it; RemoveVirtualMAC deletes it. Needed only
	// for vhids in virtual MAC mode.
	VirtualMAC       func(parent string, vhid uint8) (netmon.Link, error)
	RemoveVirtualMAC func(name string) error
}

// AddressLifetime is the valid lifetime carpd gives the virtual addresses
// it holds: 3 × the largest advbase, and at least advbase + 2 s so that it
// outlasts one advert interval (advbase + advskew/256) by a second. A master refreshes it at every advert;
// when carpd is killed, the kernel removes the addresses within about a
// backup's master-down interval, so no stale address answers for the VIP.
func AddressLifetime(cfg *config.Config) time.Duration {
	var maxBase time.Duration
	for _, v := range cfg.VHIDs {
		maxBase = max(maxBase, time.Duration(v.AdvBase)*time.Second)
	}
	return max(3*maxBase, maxBase+2*time.Second)
}

// vhost is one configured vhid on one interface.
type vhost struct {
	cfg      config.VHID
	m        *carp.Machine
	iface    *iface
	prefixes []netip.Prefix
	addrs    []netip.Addr
	hold     bool
	refresh  bool // queued in Daemon.toRefresh
	// vmac is the virtual MAC interface that holds the addresses in
	// virtual MAC mode; nil otherwise.
	vmac *netmon.Link
}

// home is the interface that holds the vhid's addresses while MASTER: its
// virtual MAC interface, or the parent.
func (v *vhost) home() netmon.Link {
	if v.vmac != nil {
		return *v.vmac
	}
	return v.iface.link
}

func (v *vhost) name() string { return fmt.Sprintf("%d@%s", v.cfg.VHID, v.cfg.Interface) }

// iface is one interface that carries vhids.
type iface struct {
	link   netmon.Link
	vhosts []*vhost
	vips   []netip.Addr // every virtual address on this interface
	// src caches the source address of adverts by destination; an
	// address change on the interface clears it.
	src map[netip.Addr]netip.Addr
}

// Daemon runs the vhids of one configuration.
type Daemon struct {
	log    *slog.Logger
	os     OS
	ifaces map[string]*iface
	byIdx  map[int]*iface // parents by index
	// vmacIdx maps virtual MAC interfaces to their parent, for address
	// changes only: adverts and link state are the parent's.
	vmacIdx map[int]*iface
	vhosts  []*vhost
	dropsMu sync.Mutex // drops is read from other goroutines
	drops   map[carp.DropReason]uint64

	demotion int         // FreeBSD's global net.inet.carp.demotion
	cmds     chan func() // calls run by the event loop
	leaving  bool        // Shutdown sent, waiting for every vhid to leave
	abort    bool        // stop waiting: release everything now
	families [2]bool     // some vhid has addresses of this family
	// toRefresh lists the masters that advertised in this turn of the
	// loop and whose addresses' lifetime is to be renewed.
	toRefresh []*vhost
}

// refreshAddresses renews the lifetime of the addresses of the masters
// that advertised. It runs after all the adverts that were due, so that
// with many vhids an advert does not wait behind the others' netlink
// requests.
func (d *Daemon) refreshAddresses() {
	for _, v := range d.toRefresh {
		v.refresh = false
		if !v.hold {
			continue
		}
		if err := d.os.Addresses.Refresh(v.home().Name, v.prefixes); err != nil {
			d.log.Error(fmt.Sprintf("carp: %s: %v", v.name(), err))
		}
	}
	d.toRefresh = d.toRefresh[:0]
}

// Families reports which address families the configuration uses, so that
// the caller opens only the sockets needed.
func (d *Daemon) Families() (ipv4, ipv6 bool) { return d.families[carp.IPv4], d.families[carp.IPv6] }

var groups = [2]netip.Addr{advsock.GroupIPv4, advsock.GroupIPv6}

// Abort makes a Run that is bowing out (its ctx is done) release every
// address at once and return, without waiting for the new masters' adverts:
// an operator's second Ctrl-C. It does not block.
func (d *Daemon) Abort() {
	go func() { d.cmds <- func() { d.abort = true } }()
}

// Demote adds delta to the host's demotion (FreeBSD's
// `sysctl net.inet.carp.demotion=delta`, which adds): every vhid's
// advertised advskew moves by it, clamped to 0..240, and masters advertise
// at once. It returns the new demotion, or an error if the daemon is not
// running.
func (d *Daemon) Demote(ctx context.Context, delta int, reason string) (int, error) {
	res := make(chan int, 1)
	select {
	case d.cmds <- func() { d.adjustDemotion(time.Now(), delta, reason); res <- d.demotion }:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case v := <-res:
		return v, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (d *Daemon) adjustDemotion(now time.Time, delta int, reason string) {
	if delta == 0 {
		return
	}
	d.demotion += delta
	d.log.Info(fmt.Sprintf("carp: demoted by %+d (%s): demotion %d", delta, reason, d.demotion))
	for _, v := range d.vhosts {
		d.step(now, v, carp.SetDemotion{Demotion: d.demotion})
	}
}

// DropCount returns the number of packets dropped for reason r.
func (d *Daemon) DropCount(r carp.DropReason) uint64 {
	d.dropsMu.Lock()
	defer d.dropsMu.Unlock()
	return d.drops[r]
}

// New checks the configuration against the host (interfaces exist) and
// builds the state machines. It changes nothing on the host.
func New(cfg *config.Config, osa OS, log *slog.Logger) (*Daemon, error) {
	if len(cfg.VHIDs) == 0 {
		return nil, errors.New("no vhid configured")
	}
	d := &Daemon{log: log, os: osa, ifaces: map[string]*iface{}, byIdx: map[int]*iface{}, vmacIdx: map[int]*iface{}, cmds: make(chan func())}
	d.drops = map[carp.DropReason]uint64{}
	for _, vc := range cfg.VHIDs {
		mc := carp.Config{
			VHID: vc.VHID, AdvBase: vc.AdvBase, AdvSkew: vc.AdvSkew,
			Password: vc.Password, Preempt: cfg.PreemptOf(&vc), PreemptDelay: cfg.PreemptDelay,
			Peer4: vc.Peer, Peer6: vc.Peer6,
			IfDownDemotion: cfg.IfDownDemotion, SendErrDemotion: cfg.SendErrDemotion,
		}
		v := &vhost{cfg: vc}
		for _, p := range vc.Addresses {
			mc.Addrs = append(mc.Addrs, p.Addr())
			v.addrs = append(v.addrs, p.Addr())
			v.prefixes = append(v.prefixes, p)
		}
		m, err := carp.NewMachine(mc, randomCounter())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", vc.Origin, err)
		}
		v.m = m
		ifc := d.ifaces[vc.Interface]
		if ifc == nil {
			l, err := osa.Link(vc.Interface)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", vc.Origin, err)
			}
			ifc = &iface{link: l, src: map[netip.Addr]netip.Addr{}}
			d.ifaces[vc.Interface] = ifc
			d.byIdx[l.Index] = ifc
		}
		for _, other := range ifc.vhosts {
			if other.cfg.VHID == vc.VHID {
				return nil, fmt.Errorf("%s: vhid %d configured twice on %s", vc.Origin, vc.VHID, vc.Interface)
			}
		}
		v.iface = ifc
		ifc.vhosts = append(ifc.vhosts, v)
		ifc.vips = append(ifc.vips, v.addrs...)
		for f := range d.families {
			d.families[f] = d.families[f] || m.HasFamily(carp.Family(f))
		}
		d.vhosts = append(d.vhosts, v)
	}
	return d, nil
}

func randomCounter() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return binary.BigEndian.Uint64(b[:])
}

type received struct {
	fam carp.Family
	pkt advsock.Packet
	at  time.Time
}

// Run runs the daemon until ctx is done, then bows out: masters send the
// bow-out advert and every virtual address is removed.
func (d *Daemon) Run(ctx context.Context) error {
	loopCtx, stop := context.WithCancel(context.Background())
	defer stop()
	links, err := d.os.Links(loopCtx)
	if err != nil {
		return err
	}
	var addrs <-chan netmon.AddrChange
	if d.os.Addrs != nil {
		if addrs, err = d.os.Addrs(loopCtx); err != nil {
			return err
		}
	}
	for _, v := range d.vhosts {
		if !v.cfg.VirtualMAC {
			continue
		}
		if d.os.VirtualMAC == nil {
			return fmt.Errorf("%s: virtual MAC mode is not available", v.name())
		}
		l, err := d.os.VirtualMAC(v.cfg.Interface, v.cfg.VHID)
		if err != nil {
			return fmt.Errorf("%s: %w", v.name(), err)
		}
		v.vmac = &l
		d.vmacIdx[l.Index] = v.iface
		d.log.Info(fmt.Sprintf("carp: %s: virtual MAC %v on %s", v.name(), l.MAC, l.Name))
		defer d.removeVirtualMAC(v)
	}
	for name, ifc := range d.ifaces {
		for f, conn := range d.os.Conns {
			if !d.families[f] {
				continue
			}
			if conn == nil {
				return fmt.Errorf("no %v socket", carp.Family(f))
			}
			if err := conn.Join(ifc.link.Index); err != nil {
				return fmt.Errorf("join %v on %s: %w", groups[f], name, err)
			}
		}
		// A virtual address left behind (by a crash, or by a peer's
		// scripts) must go before we are BACKUP.
		d.syncAddresses(ifc)
	}
	pkts := make(chan received, 256)
	var readers sync.WaitGroup
	for f, conn := range d.os.Conns {
		if !d.families[f] {
			continue
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				p, err := conn.ReadPacket()
				if err != nil {
					if loopCtx.Err() == nil {
						d.log.Error("reading adverts", "family", carp.Family(f).String(), "err", err)
					}
					return
				}
				select {
				case pkts <- received{fam: carp.Family(f), pkt: p, at: time.Now()}:
				case <-loopCtx.Done():
					return
				}
			}
		}()
	}
	readersDone := make(chan struct{})
	go func() { readers.Wait(); close(readersDone) }()

	now := time.Now()
	for _, ifc := range d.ifaces {
		// The state may have changed between New and the subscription.
		if l, err := d.os.Link(ifc.link.Name); err == nil {
			ifc.link = l
		}
		for _, v := range ifc.vhosts {
			if ifc.link.Up {
				d.step(now, v, carp.LinkUp{})
			} else {
				d.log.Info(fmt.Sprintf("carp: %s: waiting for the interface to be up and running", v.name()))
			}
			switch v.cfg.State {
			case "master":
				d.step(now, v, carp.Force{State: carp.Master})
			case "backup":
				d.step(now, v, carp.Force{State: carp.Backup})
			}
		}
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	done := ctx.Done()
	for {
		if d.leaving && (d.abort || d.allLeft()) {
			if d.abort {
				d.log.Warn("carp: releasing every address without waiting for the new masters")
				d.releaseAll()
			}
			for _, ifc := range d.ifaces {
				d.syncAddresses(ifc) // a last check: nothing left behind
			}
			stop()
			d.closeConns()
			return nil
		}
		d.refreshAddresses()
		d.resetTimer(timer)
		select {
		case <-done:
			// Masters bow out and keep their addresses until the new
			// master is heard (make before break); the loop goes on
			// until every vhid has left.
			done = nil
			d.leaving = true
			now := time.Now()
			for _, v := range d.vhosts {
				d.step(now, v, carp.Shutdown{})
			}
		case r := <-pkts:
			d.receive(r.at, r.fam, r.pkt)
		case <-readersDone:
			d.releaseAll()
			d.closeConns()
			return errors.New("advert socket failed")
		case l, ok := <-links:
			if !ok {
				links = nil
				continue
			}
			d.linkChanged(time.Now(), l)
		case c, ok := <-addrs:
			if !ok {
				addrs = nil
				continue
			}
			d.addrChanged(c)
		case f := <-d.cmds:
			f()
		case <-timer.C:
			now := time.Now()
			for _, v := range d.vhosts {
				if dl := v.m.NextDeadline(); !dl.IsZero() && !now.Before(dl) {
					d.step(now, v, carp.Tick{})
				}
			}
		}
	}
}

func (d *Daemon) resetTimer(t *time.Timer) {
	var next time.Time
	for _, v := range d.vhosts {
		if dl := v.m.NextDeadline(); !dl.IsZero() && (next.IsZero() || dl.Before(next)) {
			next = dl
		}
	}
	wait := time.Hour
	if !next.IsZero() {
		wait = max(time.Until(next), 0)
	}
	t.Reset(wait)
}

func (d *Daemon) removeVirtualMAC(v *vhost) {
	if err := d.os.RemoveVirtualMAC(v.vmac.Name); err != nil {
		d.log.Warn(fmt.Sprintf("carp: %s: %v", v.name(), err))
	}
}

func (d *Daemon) closeConns() {
	for _, c := range d.os.Conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

func (d *Daemon) allLeft() bool {
	for _, v := range d.vhosts {
		if !v.m.Left() {
			return false
		}
	}
	return true
}

// releaseAll removes every virtual address at once, for a daemon that can
// no longer run the protocol.
func (d *Daemon) releaseAll() {
	for _, v := range d.vhosts {
		v.hold = false
	}
	for _, ifc := range d.ifaces {
		d.syncAddresses(ifc)
	}
}

// addrChanged reacts to addresses changed underneath carpd (an `ip addr
// flush`, systemd-networkd): a virtual address removed from a master is put
// back and announced again; one added to a non-master is removed.
func (d *Daemon) addrChanged(c netmon.AddrChange) {
	ifc := d.byIdx[c.LinkIndex]
	if ifc == nil {
		ifc = d.vmacIdx[c.LinkIndex]
	}
	if ifc == nil {
		return
	}
	if c.LinkIndex == ifc.link.Index && !slices.Contains(ifc.vips, c.Prefix.Addr()) {
		clear(ifc.src) // the host's own addresses changed
	}
	for _, v := range ifc.vhosts {
		if !slices.Contains(v.prefixes, c.Prefix) {
			continue
		}
		atHome := c.LinkIndex == v.home().Index
		missing := c.Removed && atHome && v.hold    // ours went missing
		stray := !c.Removed && (!v.hold || !atHome) // one this host must not hold
		if !missing && !stray {
			continue
		}
		// The event may be older than the current state: sync, and
		// speak only if something had to change.
		if d.syncAddresses(ifc) > 0 {
			d.log.Warn(fmt.Sprintf("carp: %s: %v was %s underneath carpd; restored", v.name(), c.Prefix, map[bool]string{true: "removed", false: "added"}[c.Removed]))
			if v.hold {
				d.announce(v)
			}
		}
		return
	}
}

func (d *Daemon) linkChanged(now time.Time, l netmon.Link) {
	ifc := d.byIdx[l.Index]
	if ifc == nil {
		return
	}
	was := ifc.link.Up
	ifc.link = l
	clear(ifc.src)
	if was == l.Up {
		return
	}
	for _, v := range ifc.vhosts {
		if l.Up {
			d.step(now, v, carp.LinkUp{Again: true})
		} else {
			d.step(now, v, carp.LinkDown{})
		}
	}
}

func (d *Daemon) receive(now time.Time, fam carp.Family, p advsock.Packet) {
	ifc := d.byIdx[p.IfIndex]
	if ifc == nil {
		return // not an interface we run vhids on
	}
	a, err := carp.ParseAdvert(p.Payload)
	if err != nil {
		if r, counted := carp.DropReasonOf(err); counted {
			d.drop(r, ifc, p.Src, p.TTL, 0)
		}
		return
	}
	for _, v := range ifc.vhosts {
		if v.cfg.VHID == a.VHID {
			d.step(now, v, carp.Received{Family: fam, Src: p.Src, TTL: p.TTL, Advert: a})
			return
		}
	}
	d.drop(carp.DropVHID, ifc, p.Src, p.TTL, a.VHID)
}

func (d *Daemon) drop(r carp.DropReason, ifc *iface, src netip.Addr, ttl int, vhid uint8) {
	d.dropsMu.Lock()
	d.drops[r]++
	d.dropsMu.Unlock()
	d.log.Debug("carp: dropped advert", "reason", r.String(), "iface", ifc.link.Name, "src", src, "ttl", ttl, "vhid", vhid)
}

// step feeds one event to a vhid's machine and carries out its actions.
func (d *Daemon) step(now time.Time, v *vhost, ev carp.Event) {
	for _, a := range v.m.Step(now, ev) {
		switch a := a.(type) {
		case carp.Transition:
			d.log.Info(fmt.Sprintf("carp: %s: %s -> %s (%s)", v.name(), a.From, a.To, a.Reason),
				"vhid", v.cfg.VHID, "iface", v.cfg.Interface, "state", a.To.String())
		case carp.SendAdvert:
			err := d.sendAdvert(v, a)
			if v.hold && !v.refresh {
				// Renew the addresses' lifetime once the loop has sent
				// every advert that is due (see refreshAddresses).
				v.refresh = true
				d.toRefresh = append(d.toRefresh, v)
			}
			d.step(now, v, carp.SendResult{Err: err != nil})
		case carp.Demote:
			d.adjustDemotion(now, a.Delta, fmt.Sprintf("%s: %s", v.name(), a.Reason))
		case carp.HoldAddresses:
			if v.hold != a.Hold {
				v.hold = a.Hold
				d.syncAddresses(v.iface)
			}
		case carp.Announce:
			d.announce(v)
		case carp.Drop:
			r, _ := ev.(carp.Received)
			d.drop(a.Reason, v.iface, r.Src, r.TTL, v.cfg.VHID)
		}
	}
}

func (d *Daemon) announce(v *vhost) {
	home := v.home()
	if err := d.os.Announcer.Announce(home.Index, home.MAC, v.addrs); err != nil {
		d.log.Warn(fmt.Sprintf("carp: %s: announcing addresses: %v", v.name(), err))
	}
}

func (d *Daemon) sendAdvert(v *vhost, a carp.SendAdvert) error {
	ifc := v.iface
	dst := v.m.Peer(a.Family)
	if !dst.IsValid() {
		dst = groups[a.Family]
	}
	// Adverts leave from the parent, also in virtual MAC mode (as
	// keepalived's vmac_xmit_base): a Linux macvlan consumes multicast
	// whose source MAC is its own, so a peer's macvlan with the same
	// virtual MAC would hide the master's adverts from the backup.
	src, ok := ifc.src[dst]
	var err error
	if !ok {
		if src, err = d.os.Source(ifc.link.Index, dst, ifc.vips); err == nil {
			ifc.src[dst] = src
		}
	}
	if err == nil {
		err = d.os.Conns[a.Family].WriteAdvert(ifc.link.Index, src, dst, a.Advert.Marshal())
	}
	if err != nil {
		d.log.Warn(fmt.Sprintf("carp: %s: sending advert: %v", v.name(), err))
	}
	return err
}

// syncAddresses makes the interface hold the addresses of exactly the
// vhids that are MASTER.
// The parent never holds the addresses of a vhid in virtual MAC mode. It
// returns the number of addresses added or removed.
func (d *Daemon) syncAddresses(ifc *iface) int {
	var managed, want []netip.Prefix
	for _, v := range ifc.vhosts {
		managed = append(managed, v.prefixes...)
		if v.hold && v.vmac == nil {
			want = append(want, v.prefixes...)
		}
	}
	n := d.setAddresses(ifc.link.Name, slices.Clip(managed), want)
	for _, v := range ifc.vhosts {
		if v.vmac != nil {
			want = nil
			if v.hold {
				want = v.prefixes
			}
			n += d.setAddresses(v.vmac.Name, v.prefixes, want)
		}
	}
	return n
}

func (d *Daemon) setAddresses(ifname string, managed, want []netip.Prefix) int {
	changes, err := d.os.Addresses.Set(ifname, managed, want)
	for _, c := range changes {
		d.log.Info("carp: " + c)
	}
	if err != nil {
		d.log.Error(fmt.Sprintf("carp: %s: setting addresses: %v", ifname, err))
	}
	return len(changes)
}

// SetOS replaces the adapters, so that sockets are opened only once the
// configuration has been checked by New.
func (d *Daemon) SetOS(osa OS) { d.os = osa }
