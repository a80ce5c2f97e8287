package bgp

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/carpd/carpd/internal/mover"
)

// AnnounceTime bounds how long an announcement takes to reach the peers
// and be installed there: Acquire announces only when that much time is
// left before the tenure's deadline.
const AnnounceTime = time.Second

// Mover is the bgp mover of one vhid: the addresses on the vhid's
// interface (so that this host answers for them; no gratuitous ARP, the
// peers route them here) and their host routes announced by the Speaker.
//
// The routes have a lifetime as the addresses do: an Acquire under a
// tenure with a deadline arms a timer of the Mover's own that withdraws
// the routes at the deadline unless a later Acquire moved it. The speaker's
// sessions keep running on their own goroutines, so without it a wedged
// event loop would keep the routes announced for ever.
type Mover struct {
	Speaker  *Speaker
	Iface    string
	Prefixes []netip.Prefix
	// Addresses holds the addresses on Iface (vip.Manager); their
	// lifetime is the dead-man switch as with the l2 mover. nil: the
	// caller keeps them on the interface (carpd's loop does, with its
	// monitor and renewals) and the Mover announces and withdraws the
	// routes only; the caller adds the addresses before Acquire and
	// removes them after Release.
	Addresses mover.Addresses
	// Now is the clock of the deadline checks (time.Now when nil).
	Now func() time.Time
	// Log gets the address changes (slog.Default when nil).
	Log *slog.Logger

	mu              sync.Mutex // guards the fields below: the fence fires on its own goroutine
	held, announced bool
	fence           *time.Timer
	fences          uint64 // how many fences were armed: the number of the last
	closed          bool
}

// errClosed is the error of an Acquire after Close.
var errClosed = errors.New("mover bgp: closed")

var _ mover.Mover = (*Mover)(nil)

func (m *Mover) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Acquire adds the addresses, then announces their routes; while
// holding, it renews the addresses' lifetimes (and announces what a
// failed first attempt left out).
func (m *Mover) Acquire(_ context.Context, t mover.Tenure) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	if err := mover.Fits(m.now(), t, mover.LocalActionTime); err != nil {
		return err
	}
	if m.Addresses == nil {
		m.held = true
	} else if m.held {
		if err := m.Addresses.Refresh(m.Iface, m.Prefixes); err != nil {
			return err
		}
	} else {
		changes, err := m.Addresses.Set(m.Iface, m.Prefixes, m.Prefixes)
		m.logChanges(changes)
		if err != nil {
			return err
		}
		m.held = true
	}
	if !m.announced {
		if err := mover.Fits(m.now(), t, AnnounceTime); err != nil {
			return err
		}
		if err := m.Speaker.Announce(m.Prefixes); err != nil {
			return err
		}
		m.announced = true
	}
	m.setFence(t.Deadline)
	return nil
}

// setFence arms the fence for deadline (none for the zero Time).
func (m *Mover) setFence(deadline time.Time) {
	if m.fence != nil {
		m.fence.Stop()
		m.fence = nil
	}
	if deadline.IsZero() {
		return
	}
	// The timer's function knows its fence by a number of its own, not
	// by the Timer, which it could only read before taking mu.
	m.fences++
	n := m.fences
	m.fence = time.AfterFunc(time.Until(deadline), func() { m.expire(n) })
}

// expire withdraws the routes when fence number n is still the armed one.
func (m *Mover) expire(n uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fence == nil || m.fences != n || !m.announced {
		return
	}
	m.fence = nil
	err := m.Speaker.Withdraw(m.Prefixes)
	if err == nil {
		m.announced = false
	}
	m.log().Warn("mover bgp: the tenure's deadline passed without renewal: routes withdrawn", "dev", m.Iface, "err", err)
}

// Release withdraws the routes, then removes the addresses: traffic stops
// coming before the addresses go.
func (m *Mover) Release(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setFence(time.Time{})
	var errs []error
	if m.announced {
		err := m.Speaker.Withdraw(m.Prefixes)
		if err == nil {
			m.announced = false
		}
		errs = append(errs, err)
	}
	if m.Addresses == nil {
		m.held = false
		return errors.Join(errs...)
	}
	changes, err := m.Addresses.Set(m.Iface, m.Prefixes, nil)
	m.logChanges(changes)
	if err == nil {
		m.held = false
	}
	errs = append(errs, err)
	return errors.Join(errs...)
}

// Holder reports the addresses missing on the interface or not announced
// to any established peer.
func (m *Mover) Holder(ctx context.Context) (mover.Holding, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	have := m.Prefixes
	if m.Addresses != nil {
		var err error
		if have, err = m.Addresses.List(m.Iface); err != nil {
			return mover.Holding{}, err
		}
	}
	st, err := m.Speaker.Status(ctx)
	if err != nil {
		return mover.Holding{}, err
	}
	if st.PeersUp == 0 {
		return mover.Compare(m.Prefixes, nil), nil
	}
	announced := map[netip.Prefix]bool{}
	for _, r := range st.Routes {
		announced[r] = true
	}
	var both []netip.Prefix
	for _, p := range have {
		if announced[HostRoute(p)] {
			both = append(both, p)
		}
	}
	return mover.Compare(m.Prefixes, both), nil
}

// Settle is zero: the peers get one UPDATE, which AnnounceTime covers.
func (m *Mover) Settle() time.Duration { return 0 }

// Close stops the fence and makes any later Acquire fail (Release still
// works); the Speaker and Addresses are the caller's.
func (m *Mover) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.setFence(time.Time{})
	return nil
}

func (m *Mover) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

func (m *Mover) logChanges(changes []string) {
	for _, c := range changes {
		m.log().Info("mover bgp: addresses changed", "dev", m.Iface, "cmd", c)
	}
}
