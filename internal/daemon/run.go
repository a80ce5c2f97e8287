package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/elect"
	"github.com/carpd/carpd/internal/vrrp"
)

// Run runs the daemon until ctx is done, then bows out: masters send the
// bow-out advert and keep their addresses until the new masters are heard,
// and every virtual address is removed. It returns an error, having
// released every address, when it cannot run at all or can no longer run
// safely (a protocol socket fails, the monitor cannot subscribe again).
// Run closes the host's Conns when it returns. It may be called once.
func (d *Daemon) Run(ctx context.Context) error {
	if d.ran.Swap(true) {
		return errors.New("daemon: Run called twice")
	}
	loopCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		stop()
		d.closeConns()
		wg.Wait() // no goroutine outlives Run
		if d.etcd != nil {
			_ = d.etcd.Close()
		}
		d.tearDown()
		close(d.stopped)
	}()

	ended, err := d.host.Monitor.Subscribe(loopCtx, d.reportChange(loopCtx))
	if err != nil {
		return fmt.Errorf("watching links and addresses: %w", err)
	}
	if err := d.setUp(); err != nil {
		return err
	}
	for f, conn := range d.host.Conns {
		if !d.families[f] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.read(loopCtx, carp.Family(f), conn)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.watch(loopCtx, ended)
	}()
	var perr error
	d.handle(d.clock.Now(), commandIn{run: func(now time.Time) {
		if perr = d.loadPersistent(now); perr == nil {
			d.start(now)
		}
	}, done: make(chan struct{})})
	if perr != nil {
		return perr
	}
	d.tell("READY=1\nSTATUS=" + d.statusLine())
	err = d.loop(ctx)
	d.subs.Close()
	for _, v := range d.vhosts {
		d.releaseNow(v)
	}
	// A last check: nothing left behind.
	for _, ifc := range d.ifaces {
		d.syncAddresses(ifc)
	}
	return err
}

// setUp creates the virtual MAC interfaces, joins the multicast groups and
// removes virtual addresses left behind (by a crash, or by a peer's
// scripts) before any vhid is BACKUP.
func (d *Daemon) setUp() error {
	for _, v := range d.vhosts {
		if !v.cfg.VirtualMAC {
			continue
		}
		if d.host.VirtualMACs == nil {
			return fmt.Errorf("vhid %d on %s: virtual MAC mode is not available", v.cfg.VHID, v.cfg.Interface)
		}
		l, err := d.host.VirtualMACs.Ensure(v.cfg.Interface, v.cfg.VHID)
		if err != nil {
			return fmt.Errorf("vhid %d on %s: virtual MAC: %w", v.cfg.VHID, v.cfg.Interface, err)
		}
		v.vmac = &l
		d.vmacIdx[l.Index] = v.iface
		v.log.Info("carp: virtual MAC interface", "dev", l.Name, "mac", l.MAC.String())
	}
	for _, ifc := range d.ifaces {
		for f, conn := range d.host.Conns {
			if !d.families[f] {
				continue
			}
			if conn == nil {
				return fmt.Errorf("no %v protocol socket", carp.Family(f))
			}
			if err := conn.Join(ifc.link.Index); err != nil {
				return fmt.Errorf("joining %v on %s: %w", carp.Group(carp.Family(f)), ifc.link.Name, err)
			}
		}
		d.syncAddresses(ifc)
	}
	return nil
}

// tearDown removes the virtual MAC interfaces.
func (d *Daemon) tearDown() {
	for _, v := range d.vhosts {
		if v.vmac == nil {
			continue
		}
		if err := d.host.VirtualMACs.Remove(v.vmac.Name); err != nil {
			v.log.Warn("carp: removing the virtual MAC interface failed", "dev", v.vmac.Name, "err", err)
		}
	}
}

func (d *Daemon) closeConns() {
	for _, c := range d.host.Conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

// loop waits for the next input or deadline and handles it, until the
// bow-out is over or the daemon can run no more.
func (d *Daemon) loop(ctx context.Context) error {
	if d.host.Prioritize != nil {
		if err := d.host.Prioritize(); err != nil {
			d.log.Info("carp: carpd's scheduling priority could not be raised (in full)", "err", err)
		}
	}
	timer := d.clock.NewTimer(time.Hour)
	defer timer.Stop()
	done := ctx.Done()
	for !d.finished() {
		// A due deadline goes first: sending never waits behind received
		// input, but for the adverts already queued.
		now := d.clock.Now()
		if d.watchdog > 0 && !now.Before(d.nextPet) {
			// From the loop itself: a loop that is stuck is restarted.
			d.tell("WATCHDOG=1")
			d.nextPet = now.Add(d.watchdog)
		}
		next := d.next
		due := !next.IsZero() && !now.Before(next)
		if due && !d.catchingUp(now, next) {
			// The adverts that arrived before the deadline are taken
			// first, as the RFCs' timers would: a backup whose loop is
			// a few milliseconds behind must not take over from a
			// master whose advert is waiting in the queue. They are
			// checked already and cost about a microsecond each; the
			// queue holds at most advertQueue.
			d.handleDue(d.clock.Now())
			continue
		}
		if d.watchdog > 0 && (next.IsZero() || d.nextPet.Before(next)) {
			next = d.nextPet
		}
		wait := time.Hour
		switch {
		case due:
			// Catching up: the readers run while the loop waits.
			wait = catchUpPoll
		case !next.IsZero():
			wait = next.Sub(now)
		}
		d.due.Store(int64(now.Add(wait).Sub(d.epoch)))
		timer.Reset(wait)
		var in input
		select {
		case <-timer.C():
			continue
		case <-d.kick:
			continue
		case <-done:
			done = nil
			in = shutdownIn{}
		case <-d.abortCh:
			in = abortIn{}
		case a := <-d.arrivals:
			in = a.input()
		case c := <-d.cmds:
			in = c
		case h := <-d.hookResults:
			in = h
		case c := <-d.checkResults:
			in = c
		case m := <-d.moverResults:
			in = m
		case err := <-d.fatal:
			d.releaseAll()
			return err
		}
		switch in.(type) {
		case advertIn, addrIn, linkIn, linkGoneIn:
			d.handleBatch(d.clock.Now(), in)
		default:
			// A command (a reload) may change the vhosts and their
			// machines: their deadlines are read afresh.
			d.deadlines.Invalidate()
			d.handle(d.clock.Now(), in)
		}
	}
	if d.abort {
		d.log.Warn("carp: releasing every address without waiting for the new masters")
		d.releaseAll()
	}
	return nil
}

// A BACKUP's master-down deadline that comes due while datagrams wait in a
// protocol socket waits for the readers, at most catchUpMax after the loop
// found it due, polling every catchUpPoll (see catchingUp).
const (
	catchUpMax  = 20 * time.Millisecond
	catchUpPoll = time.Millisecond
)

// catchingUp reports whether the due deadline next waits for the readers:
// it is a BACKUP's (its master-down timer), datagrams wait unread in a
// protocol socket, and the loop found it due less than catchUpMax ago. The readers share
// the loop's one processor (GOMAXPROCS=1): while the loop was busy (255
// vrids stepping down at once, their addresses removed, on a busy machine:
// 100 ms and more) they read nothing, and the master's adverts of that
// time wait in the socket, not yet in d.arrivals, where handleDue looks.
// Ticked at once, the backup took over from a master whose adverts it had
// (the load benchmark's start: every vrid MASTER two or three times on the
// backup). A MASTER's deadline (its next advert) never waits; a master
// that did die is taken over from at most catchUpMax later, only while
// datagrams keep arriving (a flood).
func (d *Daemon) catchingUp(now, next time.Time) bool {
	if !next.Equal(d.catchUpFor) {
		// Measured from when the loop found it due, not from the
		// deadline: the readers lost all the time the loop was busy
		// past it.
		d.catchUpFor, d.catchUpSince = next, now
	}
	if now.Sub(d.catchUpSince) >= catchUpMax {
		return false
	}
	v, ok := d.deadlines.Top()
	if !ok || v.el.State() != elect.Backup {
		return false
	}
	for f, c := range d.host.Conns {
		if p, ok := c.(Pender); ok && d.families[f] && p.Pending() {
			return true
		}
	}
	return false
}

// arrival is one input from the socket readers or the link and address
// monitor. Both queue on one channel, d.arrivals, so that the loop takes
// them in the order they arrived: a link or address change is never
// overtaken by an advert that arrived after it. An advert is carried by
// value; change is nil for one.
type arrival struct {
	advert advertIn
	change input
}

func (a arrival) input() input {
	if a.change != nil {
		return a.change
	}
	return a.advert
}

// takeQueued queues the inputs already waiting in d.arrivals (at most what
// the channel holds), in their order, for the input about to be handled,
// in one batch: the machines step in order, and the holds that changed
// are synced once for the whole batch (flushSends, flushHolds). A backup
// whose loop fell behind, with 255 vrids stepping down one advert after
// another, so pays one address sync, not one per vrid, and catches up
// instead of falling further behind (it flapped for good before).
func (d *Daemon) takeQueued() {
	for n := len(d.arrivals); n > 0; n-- {
		d.queue = append(d.queue, (<-d.arrivals).input())
	}
}

// handleDue handles a due deadline: the adverts and changes already queued
// first, then the timers, in one batch.
func (d *Daemon) handleDue(now time.Time) {
	d.takeQueued()
	d.handle(now, tickIn{})
}

// handleBatch handles in and, in the same batch, the adverts and changes
// already queued behind it.
func (d *Daemon) handleBatch(now time.Time, in input) {
	d.queue = append(d.queue, in)
	d.takeQueued()
	d.handleQueued(now)
}

// readBatch is the number of datagrams a reader takes from its socket at
// once.
const readBatch = 64

// read reads one family's socket, in batches: each datagram is checked
// (admitPacket) and, if it passes, queued for the loop. A full queue drops
// and counts. The checks, the HMAC's included, run here, off the loop,
// which sends the adverts: receiving never delays sending.
func (d *Daemon) read(ctx context.Context, fam carp.Family, conn Conn) {
	ps := make([]Packet, readBatch)
	scratch := &vrrp.Advert{Addrs: make([]netip.Addr, 0, 255)}
	for {
		n, err := conn.ReadBatch(ps)
		if err != nil {
			if ctx.Err() == nil {
				d.fail(ctx, fmt.Errorf("reading %v adverts: %w", fam, err))
			}
			return
		}
		for _, p := range ps[:n] {
			in, ok := d.admitPacket(fam, p, scratch)
			if !ok {
				continue
			}
			select {
			case d.arrivals <- arrival{advert: in}:
			default:
				d.stats.queueFull.Add(1)
			}
		}
		d.yield(n == len(ps))
	}
}

// yield lets the loop run between two batches. carpd runs on one
// processor (GOMAXPROCS=1), and the loop's timer fires through the
// runtime's network poller, which the scheduler polls only when nothing
// else can run: a reader that never has to wait for its socket (a flood
// of forged adverts, dropped here, never queued) would keep the loop from
// its deadline until the runtime preempted it, 10 ms or more later. So a
// reader wakes the loop itself when the deadline is past, and gives up
// the processor after a full batch (more may be waiting).
func (d *Daemon) yield(full bool) {
	if d.clock.Now().Sub(d.epoch) >= time.Duration(d.due.Load()) {
		select {
		case d.kick <- struct{}{}:
		default:
		}
	}
	if full {
		runtime.Gosched()
	}
}

// fail reports that a reader or the monitor can go on no more.
func (d *Daemon) fail(ctx context.Context, err error) {
	select {
	case d.fatal <- err:
	case <-ctx.Done():
	}
}

// Resubscription: after a failed Subscribe, the monitor waits
// resubscribeFirst, twice as long after each further failure up to
// resubscribeMax, and gives up after resubscribeGiveUp without a
// subscription: the daemon then stops rather than run blind.
const (
	resubscribeFirst = 10 * time.Millisecond
	resubscribeMax   = time.Second
)

// resubscribeGiveUp is a variable for the tests.
var resubscribeGiveUp = 10 * time.Second

// reportChange returns the function the monitor calls with each change:
// it queues the change for the loop.
func (d *Daemon) reportChange(ctx context.Context) func(Change) {
	return func(c Change) {
		var in input = addrIn{c.Addr}
		if c.IsLink {
			in = linkIn{c.Link}
		}
		if c.IsLink && c.Deleted {
			in = linkGoneIn{c.Link}
		}
		// A change waits for room (it is never dropped), and a send
		// that waits is queued before any advert sent after it: Go's
		// channel hands a freed slot to the waiting sender first.
		select {
		case d.arrivals <- arrival{change: in}:
		case <-ctx.Done():
		}
	}
}

// watch waits for the monitor's subscription to end. When it failed (the
// kernel dropped notifications), watch subscribes again and then asks the
// loop to read afresh what may have been missed (resyncIn).
func (d *Daemon) watch(ctx context.Context, ended <-chan error) {
	for {
		var lost error
		select {
		case lost = <-ended:
		case <-ctx.Done():
			<-ended // the subscription ends with ctx
			return
		}
		if ctx.Err() != nil {
			return
		}
		if lost == nil {
			lost = errors.New("the subscription ended")
		}
		var err error
		if ended, err = d.resubscribe(ctx); err != nil {
			d.fail(ctx, fmt.Errorf("watching links and addresses: %w (after: %v)", err, lost))
			return
		}
		select {
		case d.arrivals <- arrival{change: resyncIn{cause: lost}}:
		case <-ctx.Done():
			<-ended
			return
		}
	}
}

// resubscribe subscribes again, retrying with a growing pause, for at most
// resubscribeGiveUp.
func (d *Daemon) resubscribe(ctx context.Context) (<-chan error, error) {
	pause := resubscribeFirst
	deadline := d.clock.Now().Add(resubscribeGiveUp)
	for {
		ended, err := d.host.Monitor.Subscribe(ctx, d.reportChange(ctx))
		if err == nil {
			return ended, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !d.clock.Now().Before(deadline) {
			return nil, err
		}
		t := d.clock.NewTimer(pause)
		select {
		case <-t.C():
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		pause = min(2*pause, resubscribeMax)
	}
}
