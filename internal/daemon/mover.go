package daemon

import (
	"context"
	"net/netip"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/elect"
	"github.com/carpd/carpd/internal/mover"
)

// Routes is the bgp mover's speaker as the daemon needs it
// (internal/mover/bgp's Speaker, through internal/host): one per daemon,
// serving every vhid with mover = "bgp".
type Routes interface {
	// Mover returns the mover of a vhid's routes (the addresses stay the
	// loop's: syncAddresses). Its Acquire and Release may block on the
	// speaker; the daemon calls them off the loop (moverRun).
	Mover(prefixes []netip.Prefix) mover.Mover
	// Status returns the sessions' state and the routes announced.
	Status(ctx context.Context) (RoutesStatus, error)
	// Config is the [bgp] table the speaker was started with: a reload
	// that changes it is refused.
	Config() *config.BGP
}

// RoutesStatus is the speaker's state for status and the metrics.
type RoutesStatus struct {
	Peers  []PeerStatus
	Routes []netip.Prefix
}

// PeerStatus is one BGP session.
type PeerStatus struct {
	Address netip.Addr
	AS      uint32
	// State is the session's state in RFC 4271's words, lower case.
	State      string
	Up         bool
	Advertised uint64
}

// moverIn is the result of a vhid's mover (mover.Runner), for the loop.
type moverIn struct {
	v *vhost
	mover.Result
}

func (moverIn) isInput() {}

// startMover gives v its mover when its configuration asks for bgp, and
// starts its worker, which reports to the loop until it stops.
func (d *Daemon) startMover(v *vhost) {
	if v.cfg.MoverOf() != config.MoverBGP || d.host.Routes == nil || d.unmanaged {
		return
	}
	r := mover.NewRunner(d.host.Routes.Mover(v.prefixes))
	v.mv = r
	go r.Run(func(res mover.Result) bool {
		select {
		case d.moverResults <- moverIn{v: v, Result: res}:
			return true
		case <-d.stopped:
			return false
		}
	})
}

// moved handles a mover's result in the loop: a Release that is still the
// latest wish lets the addresses go, or bows a leaving vhid out.
func (d *Daemon) moved(now time.Time, in moverIn) {
	v, r := in.v, in.v.mv
	if r == nil || v.reaped {
		return
	}
	what := "acquire"
	if !in.Acquire {
		what = "release"
	}
	if in.Err != nil {
		v.stats.moverFailures++
		v.log.Error("carp: mover bgp: "+what+" failed", "err", in.Err)
	} else {
		v.log.Debug("carp: mover bgp: " + what + " done")
	}
	switch r.Done(in.Result, v.hold) {
	case mover.BowOut:
		d.step(now, v, elect.Shutdown{})
	case mover.LetGo:
		if !v.iface.toSync {
			v.iface.toSync = true
			d.toSync = append(d.toSync, v.iface)
		}
		d.pub.changed = true
	}
}

// holds says whether the interface keeps v's addresses: while MASTER,
// and while its routes may still be announced.
func (v *vhost) holds() bool { return v.hold || v.mv != nil && v.mv.Routed() }

// releaseNow stops v's mover and withdraws v's routes at once
// (mover.Runner.Stop): for the paths that remove the addresses at once (a
// vhid reaped, releaseAll, the end of Run).
func (d *Daemon) releaseNow(v *vhost) {
	r := v.mv
	if r == nil {
		return
	}
	v.mv = nil
	cerr, rerr := r.Stop()
	if cerr != nil {
		v.log.Warn("carp: mover bgp: close failed", "err", cerr)
	}
	if rerr != nil {
		v.log.Error("carp: mover bgp: release failed", "err", rerr)
	}
}

// withdrawFirst starts a stopping carpd's bow-out of a vhid whose routes
// may be announced by withdrawing them (mover.Runner.Withdraw), and
// reports whether it did: the vhid is told to bow out (and sends the
// advert that makes the backup take over) once the withdrawal is done
// (moved).
func (d *Daemon) withdrawFirst(v *vhost) bool { return v.mv != nil && v.mv.Withdraw() }

// routesStatus reads the bgp speaker's state for Status, on the caller's
// goroutine (the speaker's methods are safe for concurrent use): nil
// without a speaker.
func (d *Daemon) routesStatus(ctx context.Context) *api.BGP {
	if d.host.Routes == nil {
		return nil
	}
	rs, err := d.host.Routes.Status(ctx)
	st := &api.BGP{Peers: []api.BGPPeer{}, Routes: []string{}}
	if err != nil {
		st.Error = err.Error()
	}
	for _, p := range rs.Peers {
		st.Peers = append(st.Peers, api.BGPPeer{Address: p.Address.String(), AS: p.AS, State: p.State, Advertised: p.Advertised})
	}
	for _, r := range rs.Routes {
		st.Routes = append(st.Routes, r.String())
	}
	return st
}
