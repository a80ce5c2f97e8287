// Package daemon is carpd's event loop: the only place with goroutines and
// the clock. It feeds the vhids' electorates (internal/elect's surface,
// over internal/carp's and internal/vrrp's machines: internal/electorate)
// and carries out the actions they return through the adapters of a Host.
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
// and changes already queued go first, so that a backup a little behind
// does not take over from a master whose advert is waiting. The adverts
// and the link and address changes share one queue, taken in the order
// they arrived (arrival). The inputs already queued
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
	"github.com/carpd/carpd/internal/deadline"
	"github.com/carpd/carpd/internal/elect"
	"github.com/carpd/carpd/internal/electorate"
	"github.com/carpd/carpd/internal/etcd"
	"github.com/carpd/carpd/internal/mover"
	"github.com/carpd/carpd/internal/stream"
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
	cfg      config.VHID
	el       elect.Electorate
	drops    *electorate.DropSet // the counters of its protocol's drops
	wire     wire                // its transport
	log      *slog.Logger        // with the vhid and interface
	iface    *iface
	prefixes []netip.Prefix
	addrs    []netip.Addr
	hold     bool
	refresh  bool // queued in Daemon.toRefresh
	toLease  bool // queued in Daemon.toLease
	removing bool // removed by a reload, bowing out
	reaped   bool // removed by a reload, and gone
	// checkDemotion is the demotion of the failing checks of this vhid;
	// releases counts the failing checks that release it.
	checkDemotion, releases int
	stats                   vhostStats
	// refreshed is when the addresses' lifetime was last renewed.
	refreshed time.Time
	// until is the fence deadline of a held etcd vhid's addresses
	// (elect.HoldAddresses.Until): they carry a lifetime of their own
	// that ends before it (syncLeased). Zero: the daemon's lifetime.
	until time.Time
	// sentOK is the input that says an advert of v went out, made once.
	sentOK input
	// vmac is the virtual MAC interface that holds the addresses in
	// virtual MAC mode; nil otherwise.
	vmac *Link
	// mv runs the vhid's mover off the loop when it is not the loop's
	// own l2 (mover = "bgp"); nil otherwise.
	mv *mover.Runner
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
	// byNum are the vhids by slot (slot: an electorate of one family
	// numbers its own) and number.
	byNum [3][256]*vhost
	vips  []netip.Addr // every virtual address on this interface
	// counters are shared with the socket readers.
	counters *electorate.Counters
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
	// etcd is the one connection of the etcd vhids, closed when Run
	// returns.
	etcd *etcd.Shared

	// admit is what the socket readers check adverts against.
	admit atomic.Pointer[electorate.Admission]
	// drops counts the adverts dropped, for the readers and the loop.
	drops *electorate.Drops
	stats counters
	// pub is what the loop publishes for status, stats and the metrics.
	pub publisher

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
	seq       uint64     // of the last event
	subs      stream.Hub // the event stream's readers
	checks    map[string]*checkState
	queue     []input                // inputs caused by the one being handled
	next      time.Time              // the earliest deadline, as of the last handle
	deadlines *deadline.Heap[*vhost] // the vhosts by their machines' deadline (nextDeadline)
	stepped   bool                   // a machine stepped: next is to be computed again
	removals  int                    // vhids removed by a reload, still bowing out
	leaving   bool                   // Shutdown sent, waiting for every vhid to leave
	abort     bool                   // stop waiting: release everything now

	// catchUpFor is the due deadline the loop let the readers catch up
	// before, since catchUpSince (catchingUp).
	catchUpFor   time.Time
	catchUpSince time.Time
	// pacing: the holds of a batch are being synced; batchAt is the
	// batch's time, from batchStart on the clock (sendDue).
	pacing              bool
	batchAt, batchStart time.Time

	// toRefresh lists the masters that advertised while handling this
	// input, whose addresses' lifetime is renewed once it is done.
	toRefresh []*vhost
	// toSync lists the interfaces whose vhids' holds changed, and
	// toAnnounce the vhids to announce, while handling this input.
	toSync     []*iface
	toAnnounce []*vhost
	// toLease lists the held etcd vhids whose fence deadline moved:
	// their addresses' lifetime is renewed (renewLease), unless their
	// interface is synced anyway.
	toLease []*vhost
	// toMove lists the vhids with a mover whose holds changed, asked
	// once the addresses are synced (syncHolds).
	toMove []*vhost
	// toSend are the adverts asked for while handling this input, sent
	// once the holds are synced (flushSends); spareSend is a spent
	// toSend, reused.
	toSend, spareSend []pendingSend
	// acts are the machines' actions, reused (step).
	acts []elect.Action
	// from is the advert being handled, for the drops it causes.
	from advertIn
	// lastResyncLog and resyncsUnlogged limit the monitor's warnings.
	lastResyncLog   time.Time
	resyncsUnlogged int

	// Inputs from other goroutines.
	arrivals     chan arrival // from the socket readers and the monitor, in order, bounded
	hookResults  chan input
	checkResults chan input
	moverResults chan input // from the vhids' movers (mover.Runner)
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
		demotions:   map[demotionKey]*demotionEntry{},
		hookResults: make(chan input, 256), checkResults: make(chan input, 16), moverResults: make(chan input, 256), checks: map[string]*checkState{},
		byName: map[string]*iface{}, byIdx: map[int]*iface{}, vmacIdx: map[int]*iface{},
		arrivals: make(chan arrival, advertQueue),
		cmds:     make(chan commandIn),
		abortCh:  make(chan struct{}, 1),
		kick:     make(chan struct{}, 1),
		fatal:    make(chan error, 1),
		stopped:  make(chan struct{}),

		deadlines: deadline.New(func(v *vhost) time.Time { return v.el.NextDeadline() }),
	}
	if d.log == nil {
		d.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.clock == nil {
		d.clock = SystemClock{}
	}
	d.epoch = d.clock.Now()
	d.drops = electorate.NewDrops(d.log, d.clock)
	d.stats.loaded.Store(d.epoch.UnixNano())
	d.counter = o.Counter
	if d.counter == nil {
		d.counter = randomCounter
	}
	d.refreshEvery = refreshInterval(AddressLifetime(cfg))
	for _, vc := range cfg.VHIDs {
		vs, err := d.newVhosts(cfg, vc, d.counter)
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
	d.admit.Store(d.newAdmission())
	d.pub.ready = make(chan struct{})
	return d, nil
}

// familyOf is a's family.
func familyOf(a netip.Addr) carp.Family { return electorate.FamilyOf(a) }

// newVhosts builds vhid vc's electorates: one for a CARP vhid, one per
// address family for a VRRP one.
func (d *Daemon) newVhosts(cfg *config.Config, vc config.VHID, counter func() uint64) ([]*vhost, error) {
	if d.etcd == nil {
		d.etcd = &etcd.Shared{}
	}
	els, err := electorate.New(cfg, &vc, counter, d.etcd)
	if err != nil {
		return nil, err
	}
	vs := make([]*vhost, len(els))
	for i, el := range els {
		log := d.log.With("vhid", vc.VHID, "iface", vc.Interface)
		if af := el.Family(); af != "" {
			log = log.With("proto", el.Proto(), "af", af)
		}
		vs[i] = &vhost{cfg: vc, el: el, drops: electorate.DropsOf(el.Proto()), log: log}
		vs[i].setAddresses(electorate.Cut(vc.Addresses, el.Family()))
	}
	return vs, nil
}

// slot is where v is numbered on its interface: an electorate of one
// address family numbers its own (VRRP's VRIDs).
func (v *vhost) slot() int {
	switch v.el.Family() {
	case "inet":
		return 1
	case "inet6":
		return 2
	}
	return 0
}

// configured returns a vhost of vhid number n on ifc (CARP or VRRP: they
// share the numbers of an interface), or nil.
func (ifc *iface) configured(n uint8) *vhost {
	for _, by := range ifc.byNum {
		if by[n] != nil {
			return by[n]
		}
	}
	return nil
}

// proto is the vhid's protocol in the API's and the metrics' words.
func (v *vhost) proto() string { return v.el.Proto() }

// event is an event of v, of type typ: its vhid, interface, protocol and
// family.
func (v *vhost) event(typ string) api.Event {
	return api.Event{Type: typ, VHID: int(v.cfg.VHID), Interface: v.cfg.Interface, Proto: v.proto(), Family: v.el.Family()}
}

// state is the machine's state.
func (v *vhost) state() elect.State { return v.el.State() }

// hasFamily reports whether the vhid has addresses of family f.
func (v *vhost) hasFamily(f carp.Family) bool {
	return slices.ContainsFunc(v.addrs, func(a netip.Addr) bool { return familyOf(a) == f })
}

// advertises reports whether v sends and hears adverts of family f: it
// has an address of f and is not elected on etcd (no socket, no group).
func (v *vhost) advertises(f carp.Family) bool {
	return v.el.Proto() != "etcd" && v.hasFamily(f)
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
	return d.addIface(l), nil
}

// addIface adds interface l.
func (d *Daemon) addIface(l Link) *iface {
	ifc := &iface{link: l, src: map[netip.Addr]netip.Addr{}, counters: &electorate.Counters{}}
	d.byName[l.Name] = ifc
	d.byIdx[l.Index] = ifc
	d.ifaces = append(d.ifaces, ifc)
	return ifc
}

// attach adds v to ifc and to the daemon.
func (d *Daemon) attach(ifc *iface, v *vhost) {
	v.iface = ifc
	v.wire = wire{d, ifc, v}
	v.el.Attach(&v.wire, v.log)
	ifc.byNum[v.slot()][v.cfg.VHID] = v
	ifc.vhosts = append(ifc.vhosts, v)
	ifc.vips = append(ifc.vips, v.addrs...)
	d.startMover(v)
	for f := range d.families {
		d.families[f] = d.families[f] || v.advertises(carp.Family(f))
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

// do runs fn on the event loop, as one input, and waits for it to be done
// and for the snapshot that shows what it changed (publish).
func (d *Daemon) do(ctx context.Context, fn func(now time.Time)) error {
	ack := make(chan struct{})
	c := commandIn{run: func(now time.Time) { fn(now); d.pub.acks = append(d.pub.acks, ack) }, done: make(chan struct{})}
	select {
	case d.cmds <- c:
	case <-d.stopped:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	// The loop runs a command as soon as it takes it and closes done,
	// then ack at the end of its batch, before it can return.
	<-c.done
	<-ack
	return nil
}

// counters are the daemon's statistics, written by the loop, the socket
// readers and the hook runners.
type counters struct {
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
