package electorate

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/elect"
	"github.com/carpd/carpd/internal/etcd"
)

// etcdVHID is a vhid elected on etcd (internal/etcd): no adverts. The
// adapter's results reach the loop as etcdEvents posted on the Wire; the
// etcd calls the machine asks for are etcdCalls that the loop hands back
// to Send once the addresses are synced, so that a resign follows the
// release of the addresses (break before make).
// Its HoldAddresses carry D (Until): the daemon gives the addresses a
// kernel lifetime that ends before it (etcd.AddressLifetime), renewed at
// each acknowledged renewal.
type etcdVHID struct {
	el     *etcd.Electorate
	w      elect.Wire
	log    *slog.Logger
	ttl    time.Duration
	state  elect.State
	ctx    context.Context
	cancel context.CancelFunc

	started, leaving, left bool
	// linkUp and released (by a failing check of action release) make
	// the health published in the member key: healthy is up and not
	// released.
	linkUp, released bool
	demotion         int
	leader           string
	tenure           int64
	// until is D while MASTER, and renewAt when its addresses' lifetime
	// is to be renewed once more before a later D comes
	// (etcd.RenewLifetimeAt).
	until, renewAt time.Time
}

// etcdEvent is a result of the etcd adapter, for the loop.
type etcdEvent struct{ etcd.Event }

func (etcdEvent) ElectEvent() {}

// etcdCall is an etcd request the machine asks for, carried out by Send.
type etcdCall struct{ etcd.Action }

func (etcdCall) ElectAction() {}

var _ elect.Electorate = (*etcdVHID)(nil)

func newEtcd(cfg *config.Config, vc *config.VHID, sh *etcd.Shared) (*etcdVHID, error) {
	if cfg.Etcd == nil {
		return nil, fmt.Errorf("vhid %d: electorate etcd without an [etcd] table", vc.VHID)
	}
	el, err := etcd.NewElectorate(cfg.Etcd, vc, cfg.PreemptOf(vc), cfg.PreemptDelay, discard, sh)
	if err != nil {
		return nil, err
	}
	return &etcdVHID{el: el, log: discard, ttl: cfg.Etcd.TTL}, nil
}

func (e *etcdVHID) Proto() string  { return "etcd" }
func (e *etcdVHID) Family() string { return "" }

// Attach starts forwarding the adapter's results to the loop.
func (e *etcdVHID) Attach(w elect.Wire, l *slog.Logger) {
	e.w, e.log = w, l
	e.ctx, e.cancel = context.WithCancel(context.Background())
	go func() {
		for {
			select {
			case <-e.ctx.Done():
				return
			case ev := <-e.el.Events():
				if e.w.Post(e.ctx, etcdEvent{ev}) != nil {
					return
				}
			}
		}
	}()
}

func (e *etcdVHID) State() elect.State { return e.state }

func (e *etcdVHID) NextDeadline() time.Time {
	next := e.el.NextDeadline()
	if !e.renewAt.IsZero() && (next.IsZero() || e.renewAt.Before(next)) {
		return e.renewAt
	}
	return next
}

func (e *etcdVHID) Left() bool { return e.left }

// MasterDownInterval is the TTL: a holder that died is replaced within it.
func (e *etcdVHID) MasterDownInterval() time.Duration { return e.ttl }

// AppendStep maps the loop's events to the election's.
func (e *etcdVHID) AppendStep(out []elect.Action, now time.Time, ev elect.Event) []elect.Action {
	var in etcd.Event
	switch ev := ev.(type) {
	case etcdEvent:
		in = ev.Event
	case elect.LinkUp:
		e.linkUp = true
		if e.started {
			in = e.health()
			break
		}
		e.started = true
		e.state = elect.Backup
		out = append(out, elect.Transition{From: elect.Init, To: elect.Backup, Reason: "initialization complete"})
		in = etcd.Start{}
		go e.el.C.Watch(e.ctx)
	case elect.LinkDown:
		e.linkUp = false
		in = e.health()
	case elect.Release:
		e.released = ev.On
		in = e.health()
	case elect.SetDemotion:
		e.demotion = max(ev.Demotion, 0)
		in = e.health()
	case elect.Tick:
		in = etcd.Tick{}
		if !e.renewAt.IsZero() && !now.Before(e.renewAt) {
			// The renewals are late: the addresses' lifetime, renewed
			// now, ends about a second before D.
			e.renewAt = time.Time{}
			if e.state == elect.Master {
				out = append(out, elect.HoldAddresses{Hold: true, Until: e.until})
			}
		}
	case elect.Shutdown:
		if e.leaving {
			return out
		}
		e.leaving = true
		for _, a := range e.el.M.Step(now, etcd.Stop{}) {
			out = e.act(now, out, a)
		}
		// The marker after the stop's calls: Left once Send reaches it.
		return append(out, etcdCall{etcd.Revoke{}})
	default:
		return out
	}
	for _, a := range e.el.M.Step(now, in) {
		out = e.act(now, out, a)
	}
	return out
}

// health is the member key's health and demotion: a node is unhealthy
// while its link is down or a check releases it, and then yields to a
// healthy member (etcd.Machine).
func (e *etcdVHID) health() etcd.SetHealth {
	return etcd.SetHealth{Healthy: e.linkUp && !e.released, Demotion: e.demotion}
}

// act turns one of the election's actions into the loop's.
func (e *etcdVHID) act(now time.Time, out []elect.Action, a etcd.Action) []elect.Action {
	switch a := a.(type) {
	case etcd.Hold:
		to := elect.Backup
		if a.On {
			to = elect.Master
		}
		changed := to != e.state
		if changed {
			out = append(out, elect.Transition{From: e.state, To: to, Reason: a.Reason})
			e.state = to
		}
		if !a.On {
			e.until, e.renewAt = time.Time{}, time.Time{}
			return append(out, elect.HoldAddresses{})
		}
		e.until, e.renewAt = a.Until, etcd.RenewLifetimeAt(a.Until, now)
		e.log.Debug("etcd: holding the addresses until the fence deadline", "until", a.Until.Format(time.RFC3339Nano), "tenure", a.Tenure, "reason", a.Reason)
		out = append(out, elect.HoldAddresses{Hold: true, Until: a.Until})
		if changed {
			// The l2 mover: the neighbours learn the new holder.
			out = append(out, elect.Announce{})
		}
		return out
	case etcd.Observe:
		e.leader, e.tenure = a.Node, a.Tenure
		e.log.Info("etcd: leader key", "node", a.Node, "tenure", a.Tenure)
		return out
	}
	return append(out, etcdCall{a})
}

// Send carries out an etcd request in the background (the result comes
// back as an etcdEvent); during the stop, in order and waited for.
func (e *etcdVHID) Send(a elect.Action) (int, error) {
	c, ok := a.(etcdCall)
	if !ok {
		return -1, fmt.Errorf("etcd: cannot carry out %T", a)
	}
	if !e.leaving {
		e.el.C.Do(e.ctx, c.Action)
		return -1, nil
	}
	if r, ok := c.Action.(etcd.Revoke); ok && r.ID == 0 {
		// The marker after the stop's calls: done.
		if e.left {
			return -1, nil
		}
		e.left = true
		e.cancel()
		_ = e.el.C.Close()
		return -1, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	e.el.C.Exec(ctx, c.Action)
	return -1, nil
}

// Heard: an etcd vhid hears no adverts.
func (e *etcdVHID) Heard(time.Time, elect.Event) (api.Heard, netip.Addr, int, bool) {
	return api.Heard{}, netip.Addr{}, 0, false
}

// Reconfigure takes next's ranking (advskew, preempt, preempt-delay): the
// new advskew is published in the member key at once, and a holder that
// now ranks after a healthy member yields to it if preempt says so. The
// rest comes from the [etcd] table, which a reload cannot change (the
// shared connection refuses another table when next is built).
func (e *etcdVHID) Reconfigure(now time.Time, next elect.Electorate) ([]elect.Action, bool, string, error) {
	n, ok := next.(*etcdVHID)
	if !ok {
		return nil, false, "", fmt.Errorf("etcd: cannot become %s", next.Proto())
	}
	old, mc := e.el.M.Config(), n.el.M.Config()
	if mc.Node != old.Node || mc.Renew != old.Renew || mc.Margin != old.Margin || n.ttl != e.ttl {
		return nil, false, "", fmt.Errorf("etcd: the [etcd] table changed: restart carpd")
	}
	if mc.AdvSkew == old.AdvSkew && mc.Preempt == old.Preempt && mc.PreemptDelay == old.PreemptDelay {
		return nil, false, "", nil
	}
	var out []elect.Action
	for _, a := range e.el.M.Step(now, etcd.Reconfigure{AdvSkew: mc.AdvSkew, Preempt: mc.Preempt, PreemptDelay: mc.PreemptDelay}) {
		out = e.act(now, out, a)
	}
	e.log.Info("etcd: ranking changed", "advskew", mc.AdvSkew, "preempt", mc.Preempt, "preempt_delay", mc.PreemptDelay)
	return out, true, "", nil
}

// Why says who holds the leader key.
func (e *etcdVHID) Why(_ *api.Heard, leaving bool) string {
	st := e.el.Status(time.Now())
	switch {
	case leaving:
		return "leaving: addresses released, leader key being deleted"
	case st.Holding:
		return fmt.Sprintf("MASTER: holds the leader key (tenure %d), %v left to its fence deadline", st.Tenure, st.UntilD.Round(time.Millisecond))
	case e.leader != "":
		return fmt.Sprintf("BACKUP: %s holds the leader key (tenure %d)", e.leader, e.tenure)
	}
	return "BACKUP: nobody holds the leader key"
}

// Status fills in the advskew and the election's state.
func (e *etcdVHID) Status(s *api.VHID) {
	s.AdvSkew = e.el.M.AdvSkew()
	s.AdvertisedSkew = s.AdvSkew // no advert: as configured
	st := e.el.Status(time.Now())
	s.Etcd = &api.Etcd{
		Node: st.Node, Leader: st.Leader, Tenure: st.LeaderTenure, Lease: st.Lease,
		TTL: st.TTL.Seconds(), RenewLatency: st.RenewLatency.Seconds(),
		WatchRestarts: st.WatchRestarts, ReadFailures: st.ReadFailures, Dropped: st.Dropped,
	}
	if !st.Deadline.IsZero() {
		d := st.Deadline
		s.Etcd.FenceDeadline = &d
	}
}

// EtcdStatus is the election's state, for the metrics.
func (e *etcdVHID) EtcdStatus(now time.Time) etcd.Status { return e.el.Status(now) }

// Rank is the advskew, and 255 minus it.
func (e *etcdVHID) Rank() (int, int) { a := e.el.M.AdvSkew(); return a, 255 - a }
