// Package daemon is carpd's event loop: the only place with goroutines and
// the clock. It feeds the vhids' state machines (internal/carp, and
// internal/vrrp for the carpver 3 ones) and carries
// out the actions they return through the adapters of a Host.
//
// Every input (a received advert, a link or address change, a timer, an
// operator's command, the shutdown) goes through handle(now, input), one at
// a time, on the loop's goroutine. The actions a machine returns are
// carried out in order; what they cause in turn (the result of a send, a
// demotion change) is queued behind them, never handled by re-entering the
// machine. Run is a thin loop around handle: it waits for the next input or
// deadline. The socket readers run the stateless checks (carp.Filter,
// including the HMAC; VRRP's codec) before queueing, so that forged adverts
// never reach the loop, and a due timer is handled before any other queued
// input, so that sending never waits behind receiving; only the adverts
// already queued go first, so that a backup a little behind does not take
// over from a master whose advert is waiting. The inputs already queued
// are handled as one batch (handleBatch, handleDue): the addresses of the
// vhids that changed state are synced once per batch, before the adverts
// it caused go out (make before break), and announced after.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/vrrp"
)

// Options are the daemon's optional settings.
type Options struct {
	// Log receives the daemon's log; nil discards it.
	Log *slog.Logger
	// Clock is the daemon's time; nil is the system's.
	Clock Clock
	// Counter returns the random starting value of a vhid's advert
	// counter; nil draws it from crypto/rand (FreeBSD's arc4random).
	Counter func() uint64
	// Level is the log's level, which SetLogLevel changes; nil: fixed.
	Level *slog.LevelVar
	// StateFile keeps the operator's persistent (maintenance) demotion
	// across restarts; "" keeps none.
	StateFile string
	// UnmanagedAddresses leaves the virtual addresses to the operator's
	// scripts, as ucarp does: carpd neither adds nor removes them (nor
	// watches them), and still announces them.
	UnmanagedAddresses bool
	// Notify tells the service manager about carpd's life, in sd_notify's
	// words (READY=1, STATUS=..., RELOADING=1, STOPPING=1, WATCHDOG=1);
	// nil: nobody to tell.
	Notify func(state string)
	// Watchdog is how often the event loop itself sends WATCHDOG=1 (half
	// systemd's WatchdogSec); 0: never.
	Watchdog time.Duration
}

// AddressLifetime is the valid lifetime carpd gives the virtual addresses
// it holds: 3 × the largest advert interval (advbase, or a VRRP vhid's
// vrrpinterval), and at least that interval + 2 s so that it outlasts one
// advert interval (advbase + advskew/256) by a second. A master renews it
// as it advertises (at most every refreshInterval of it); when carpd is
// killed, the kernel removes the addresses within about a backup's
// master-down interval (CARP), or within 2 s (VRRP at sub-second
// intervals: the kernel counts lifetimes in whole seconds), so no stale
// address answers for the VIP.
func AddressLifetime(cfg *config.Config) time.Duration {
	var maxBase time.Duration
	for _, v := range cfg.VHIDs {
		if v.IsVRRP() {
			maxBase = max(maxBase, time.Duration(v.VRRPInterval)*10*time.Millisecond)
		} else {
			maxBase = max(maxBase, time.Duration(v.AdvBase)*time.Second)
		}
	}
	return max(3*maxBase, maxBase+2*time.Second)
}

// refreshInterval is the least time between two renewals of a master's
// addresses' lifetime: a quarter of it, so that a CARP master (advbase 1,
// lifetime 3 s) renews at every advert and a VRRP master at 10 ms does
// not send 100 netlink requests a second.
func refreshInterval(lifetime time.Duration) time.Duration { return lifetime / 4 }

// ErrNotRunning is returned by the operator calls when Run has returned.
var ErrNotRunning = errors.New("carpd is not running")

// vhost is one configured vhid on one interface: a CARP vhid, or one
// VRRP instance (one address family of a carpver 3 vhid).
type vhost struct {
	cfg config.VHID
	// m is a CARP vhid's machine; vm is a VRRP instance's, of family fam
	// (the other is nil).
	m        *carp.Machine
	vm       *vrrp.Machine
	fam      carp.Family
	log      *slog.Logger // with the vhid and interface
	iface    *iface
	prefixes []netip.Prefix
	addrs    []netip.Addr
	hold     bool
	refresh  bool // queued in Daemon.toRefresh
	removing bool // removed by a reload, bowing out
	// checkDemotion is the demotion of the failing checks of this vhid;
	// releases counts the failing checks that release it.
	checkDemotion, releases int
	stats                   vhostStats
	// refreshed is when the addresses' lifetime was last renewed.
	refreshed time.Time
	// sendBuf holds the vhid's last advert, reused.
	sendBuf []byte
	// sentOK is the input that says an advert of v went out, made once.
	sentOK input
	// ownerDemoted says that a VRRP address owner's demotion was logged.
	ownerDemoted bool
	// vmac is the virtual MAC interface that holds the addresses in
	// virtual MAC mode; nil otherwise.
	vmac *Link
}

// home is the interface that holds the vhid's addresses while MASTER: its
// virtual MAC interface, or the parent.
func (v *vhost) home() Link {
	if v.vmac != nil {
		return *v.vmac
	}
	return v.iface.link
}

// iface is one interface that carries vhids.
type iface struct {
	link   Link
	vhosts []*vhost
	byVHID [256]*vhost // CARP vhids
	// byVRID are the VRRP instances, by family and VRID.
	byVRID [2][256]*vhost
	vips   []netip.Addr // every virtual address on this interface
	// counters are shared with the socket readers.
	counters *ifaceCounters
	// src caches the source address of adverts by destination; a change
	// of the interface or of its addresses clears it.
	src map[netip.Addr]netip.Addr
	// gone says that no interface has the configured name (deleted or
	// renamed away): link has no index, and the vhids wait in INIT.
	gone bool
	// joined is the index on which the protocol sockets last joined the
	// groups through ready (setUp joins at start).
	joined int
	// toSync says it is queued in Daemon.toSync.
	toSync bool
}

// Daemon runs the vhids of one configuration.
type Daemon struct {
	log    *slog.Logger
	host   *Host
	clock  Clock
	epoch  time.Time         // the clock when New ran
	ifaces []*iface          // in configuration order
	byName map[string]*iface // parents by name
	byIdx  map[int]*iface    // parents by index
	// vmacIdx maps virtual MAC interfaces to their parent, for address
	// changes only: adverts and link state are the parent's.
	vmacIdx  map[int]*iface
	vhosts   []*vhost
	families [2]bool // some vhid has addresses of this family

	// admit is what the socket readers check adverts against.
	admit atomic.Pointer[admitTable]
	stats counters

	level     *slog.LevelVar
	notify    func(string)
	watchdog  time.Duration
	nextPet   time.Time // the next WATCHDOG=1
	counter   func() uint64
	stateFile string
	unmanaged bool // the addresses are the scripts' business
	// refreshEvery is the least time between two renewals of a master's
	// addresses' lifetime (refreshInterval).
	refreshEvery time.Duration

	// The loop's state, owned by its goroutine.
	demotion  int // FreeBSD's global net.inet.carp.demotion, the sum of demotions
	demotions map[demotionKey]*demotionEntry
	seq       uint64 // of the last event
	subs      map[*Sub]struct{}
	checks    map[string]*checkState
	queue     []input   // inputs caused by the one being handled
	next      time.Time // the earliest deadline, as of the last handle
	stepped   bool      // a machine stepped: next is to be computed again
	removals  int       // vhids removed by a reload, still bowing out
	leaving   bool      // Shutdown sent, waiting for every vhid to leave
	abort     bool      // stop waiting: release everything now
	// toRefresh lists the masters that advertised while handling this
	// input, whose addresses' lifetime is renewed once it is done.
	toRefresh []*vhost
	// toSync lists the interfaces whose vhids' holds changed, and
	// toAnnounce the vhids to announce, while handling this input.
	toSync     []*iface
	toAnnounce []*vhost
	// toSend are the adverts asked for while handling this input, sent
	// once the holds are synced (flushSends); spareSend is a spent
	// toSend, reused.
	toSend, spareSend []pendingSend
	// carpActs and vrrpActs are the machines' actions, reused (step).
	carpActs []carp.Action
	vrrpActs []vrrp.Action
	// lastResyncLog and resyncsUnlogged limit the monitor's warnings.
	lastResyncLog   time.Time
	resyncsUnlogged int

	// Inputs from other goroutines.
	adverts      chan advertIn // from the socket readers, bounded
	changes      chan input    // from the link and address monitor
	hookResults  chan input
	checkResults chan input
	cmds         chan commandIn
	abortCh      chan struct{}
	kick         chan struct{} // from a busy reader: the deadline is past (see read)
	fatal        chan error    // a reader or the monitor can go on no more
	stopped      chan struct{} // closed when Run returns
	ran          atomic.Bool
	due          atomic.Int64 // the loop's next deadline, nanoseconds after epoch
}

// advertQueue is how many checked adverts may wait for the loop. They
// passed the HMAC, so only a replay flood fills it; what does not fit is
// dropped and counted.
const advertQueue = 1024

// New checks the configuration against the host (the interfaces exist)
// and builds the state machines. It changes nothing on the host and uses
// only h.Links.
func New(cfg *config.Config, h *Host, o Options) (*Daemon, error) {
	if len(cfg.VHIDs) == 0 {
		return nil, errors.New("no vhid configured")
	}
	d := &Daemon{
		log: o.Log, host: h, clock: o.Clock, level: o.Level, stateFile: o.StateFile, unmanaged: o.UnmanagedAddresses,
		notify: o.Notify, watchdog: o.Watchdog,
		demotions: map[demotionKey]*demotionEntry{}, subs: map[*Sub]struct{}{},
		hookResults: make(chan input, 256), checkResults: make(chan input, 16), checks: map[string]*checkState{},
		byName: map[string]*iface{}, byIdx: map[int]*iface{}, vmacIdx: map[int]*iface{},
		adverts: make(chan advertIn, advertQueue),
		changes: make(chan input, 64),
		cmds:    make(chan commandIn),
		abortCh: make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
		fatal:   make(chan error, 1),
		stopped: make(chan struct{}),
	}
	if d.log == nil {
		d.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.clock == nil {
		d.clock = SystemClock{}
	}
	d.epoch = d.clock.Now()
	d.stats.loaded.Store(d.epoch.UnixNano())
	d.counter = o.Counter
	if d.counter == nil {
		d.counter = randomCounter
	}
	d.refreshEvery = refreshInterval(AddressLifetime(cfg))
	for _, vc := range cfg.VHIDs {
		vs, err := d.newVhosts(cfg, vc)
		if err != nil {
			return nil, err
		}
		ifc := d.byName[vc.Interface]
		if ifc == nil {
			if ifc, err = d.newIface(vc.Interface); err != nil {
				return nil, fmt.Errorf("%s: %w", vc.Origin, err)
			}
		}
		if w := ifc.configured(vc.VHID); w != nil {
			return nil, config.Twice(&w.cfg, &vc)
		}
		for _, v := range vs {
			d.attach(ifc, v)
		}
	}
	d.setChecks(time.Time{}, cfg.Checks)
	d.admit.Store(d.newAdmitTable())
	return d, nil
}

// machineConfig is the state machine's configuration of CARP vhid vc.
func machineConfig(cfg *config.Config, vc *config.VHID) carp.Config {
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

// vrrpConfig is the configuration of the VRRP instance of family f of
// vhid vc (carpver 3), without its primary address, which the daemon
// learns from the interface. ok is false if vc has no address of f.
func vrrpConfig(cfg *config.Config, vc *config.VHID, f carp.Family) (c vrrp.Config, ok bool) {
	c = vrrp.Config{
		VRID: vc.VHID, Priority: vc.VRRPPriority, Interval: vc.VRRPInterval,
		Preempt: cfg.PreemptOf(vc), PreemptDelay: cfg.PreemptDelay, TieBreak: vc.VRRPTieBreak,
		IfDownDemotion: cfg.IfDownDemotion, SendErrDemotion: cfg.SendErrDemotion,
	}
	for _, p := range vc.Addresses {
		if familyOf(p.Addr()) == f {
			c.Addrs = append(c.Addrs, p.Addr())
		}
	}
	return c, len(c.Addrs) > 0
}

// afName is family f in ifconfig's words: "inet" or "inet6".
func afName(f carp.Family) string {
	if f == carp.IPv6 {
		return "inet6"
	}
	return "inet"
}

// familyOf is a's family.
func familyOf(a netip.Addr) carp.Family {
	if a.Unmap().Is4() {
		return carp.IPv4
	}
	return carp.IPv6
}

// newVhosts builds vhid vc's machine: one for a CARP vhid, one per address
// family for a VRRP one.
func (d *Daemon) newVhosts(cfg *config.Config, vc config.VHID) ([]*vhost, error) {
	if !vc.IsVRRP() {
		v := &vhost{cfg: vc, log: d.log.With("vhid", vc.VHID, "iface", vc.Interface)}
		v.setAddresses(vc.Addresses)
		m, err := carp.NewMachine(machineConfig(cfg, &vc), d.counter())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", vc.Origin, err)
		}
		v.m = m
		return []*vhost{v}, nil
	}
	var vs []*vhost
	for _, f := range []carp.Family{carp.IPv4, carp.IPv6} {
		mc, ok := vrrpConfig(cfg, &vc, f)
		if !ok {
			continue
		}
		m, err := vrrp.NewMachine(mc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", vc.Origin, err)
		}
		v := &vhost{cfg: vc, vm: m, fam: f,
			log: d.log.With("vhid", vc.VHID, "iface", vc.Interface, "proto", "vrrp", "af", afName(f))}
		v.setAddresses(slices.DeleteFunc(slices.Clone(vc.Addresses), func(p netip.Prefix) bool { return familyOf(p.Addr()) != f }))
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s: vhid %d: no address", vc.Origin, vc.VHID)
	}
	return vs, nil
}

// configured returns a vhost of vhid number n on ifc (CARP or VRRP: they
// share the numbers of an interface), or nil.
func (ifc *iface) configured(n uint8) *vhost {
	if v := ifc.byVHID[n]; v != nil {
		return v
	}
	if v := ifc.byVRID[carp.IPv4][n]; v != nil {
		return v
	}
	return ifc.byVRID[carp.IPv6][n]
}

// proto is the vhid's protocol in the API's and the metrics' words.
func (v *vhost) proto() string {
	if v.vm != nil {
		return "vrrp"
	}
	return "carp"
}

// event is an event of v, of type typ: its vhid, interface, protocol and
// family.
func (v *vhost) event(typ string) api.Event {
	e := api.Event{Type: typ, VHID: int(v.cfg.VHID), Interface: v.cfg.Interface, Proto: v.proto()}
	if v.vm != nil {
		e.Family = afName(v.fam)
	}
	return e
}

// state is the machine's state.
func (v *vhost) state() carp.State {
	if v.vm != nil {
		return v.vm.State()
	}
	return v.m.State()
}

// nextDeadline is the machine's next deadline.
func (v *vhost) nextDeadline() time.Time {
	if v.vm != nil {
		return v.vm.NextDeadline()
	}
	return v.m.NextDeadline()
}

// left reports whether the machine has left after a Shutdown.
func (v *vhost) left() bool {
	if v.vm != nil {
		return v.vm.Left()
	}
	return v.m.Left()
}

// hasFamily reports whether the vhid has addresses of family f.
func (v *vhost) hasFamily(f carp.Family) bool {
	if v.vm != nil {
		return v.fam == f
	}
	return v.m.HasFamily(f)
}

// setAddresses sets the vhid's addresses.
func (v *vhost) setAddresses(ps []netip.Prefix) {
	v.prefixes = slices.Clone(ps)
	v.addrs = nil
	for _, p := range ps {
		v.addrs = append(v.addrs, p.Addr())
	}
}

// newIface reads the named interface and adds it.
func (d *Daemon) newIface(name string) (*iface, error) {
	l, err := d.host.Links.Link(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	ifc := &iface{link: l, src: map[netip.Addr]netip.Addr{}, counters: &ifaceCounters{}}
	d.byName[name] = ifc
	d.byIdx[l.Index] = ifc
	d.ifaces = append(d.ifaces, ifc)
	return ifc, nil
}

// attach adds v to ifc and to the daemon.
func (d *Daemon) attach(ifc *iface, v *vhost) {
	v.iface = ifc
	if v.vm != nil {
		ifc.byVRID[v.fam][v.cfg.VHID] = v
	} else {
		ifc.byVHID[v.cfg.VHID] = v
	}
	ifc.vhosts = append(ifc.vhosts, v)
	ifc.vips = append(ifc.vips, v.addrs...)
	for f := range d.families {
		d.families[f] = d.families[f] || v.hasFamily(carp.Family(f))
	}
	d.vhosts = append(d.vhosts, v)
}

func randomCounter() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return binary.BigEndian.Uint64(b[:])
}

// Abort makes a Run that is bowing out (its ctx is done) release every
// address at once and return, without waiting for the new masters' adverts:
// an operator's second Ctrl-C. It never blocks.
func (d *Daemon) Abort() {
	select {
	case d.abortCh <- struct{}{}:
	default: // one is pending already
	}
}

// Demote adds delta to the host's demotion (FreeBSD's
// `sysctl net.inet.carp.demotion=delta`, which adds): every vhid's
// advertised advskew moves by it, clamped to 0..240, and masters advertise
// at once. It returns the new demotion. It goes through the event loop:
// it waits for Run to take it, and fails with ErrNotRunning once Run has
// returned.
func (d *Daemon) Demote(ctx context.Context, delta int, reason string) (int, error) {
	var demotion int
	err := d.do(ctx, func(now time.Time) {
		d.adjustDemotion(now, delta, reason, sourceOperator, nil)
		demotion = d.demotion
	})
	return demotion, err
}

// do runs fn on the event loop, as one input, and waits for it to be done.
func (d *Daemon) do(ctx context.Context, fn func(now time.Time)) error {
	c := commandIn{run: fn, done: make(chan struct{})}
	select {
	case d.cmds <- c:
	case <-d.stopped:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	// The loop runs a command as soon as it takes it and closes done
	// before it can return.
	<-c.done
	return nil
}

// counters are the daemon's statistics, written by the loop, the socket
// readers and the hook runners.
type counters struct {
	drops     [carp.NumDropReasons]atomic.Uint64
	vrrpDrops [numVRRPDrops]atomic.Uint64
	// hookRuns and hookFailures count the hooks run, and those that did
	// not exit 0 in time.
	hookRuns, hookFailures atomic.Uint64
	// queueFull counts checked adverts dropped because the loop was
	// behind.
	queueFull atomic.Uint64
	// resyncs counts the times the link and address monitor lost changes
	// and was resubscribed.
	resyncs atomic.Uint64
	// reloads counts the configurations reloaded.
	reloads atomic.Uint64
	// reloadFailed is true when the last reload was refused; loaded is
	// when the configuration in force was loaded (unix nanoseconds): at
	// New, then at each reload that succeeds.
	reloadFailed atomic.Bool
	loaded       atomic.Int64
}

// Check checks the configuration against the host's interfaces, as New
// does, without building anything else: `carpd --check`.
func Check(cfg *config.Config, links Links) error {
	_, err := New(cfg, &Host{Links: links}, Options{})
	return err
}
