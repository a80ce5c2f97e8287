// Package mover moves a vhid's virtual addresses to this host and away
// from it: the part of failover that acts once an electorate (CARP, VRRP,
// etcd) has decided who holds them.
//
// A Mover serves one vhid. The l2 mover (L2) is carpd's classic way: the
// addresses on the interface and gratuitous ARP / unsolicited neighbour
// advertisements. The bgp mover (package mover/bgp) announces each address
// as a host route to BGP peers. Cloud-provider movers (an API call that
// reassigns an address or a route, asynchronous, with a settle time) fit
// the same interface: Acquire checks the tenure's deadline before every
// action that makes this host a holder, and Settle tells the caller how
// long a new holder re-asserts.
package mover

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Mover holds or releases one vhid's addresses. Its methods are called
// from one goroutine (the daemon's loop, or a worker it owns); they may
// block for the length of ctx.
type Mover interface {
	// Acquire makes this host the holder of the addresses under tenure
	// t. Before every action that makes this host a holder (an address
	// added or its lifetime renewed, an announcement, a route, an API
	// call) it checks that the action ends before t.Deadline (Fits), and
	// returns an error wrapping ErrFenced when not, without acting.
	// Calling Acquire again while holding re-asserts what may have been
	// lost (an address removed underneath, a lifetime) and is cheap: the
	// daemon calls it at each renewal.
	Acquire(ctx context.Context, t Tenure) error
	// Release stops holding: routes are withdrawn, addresses removed. It
	// is idempotent, and does what it can when part of it fails (the
	// error joins the failures).
	Release(ctx context.Context) error
	// Holder reports what the mover's anchor (the interface, the RIB,
	// the provider) says about the addresses now.
	Holder(ctx context.Context) (Holding, error)
	// Settle is how long an acquisition may take to take effect
	// everywhere after Acquire returned (a provider's asynchronous
	// remapping); a new holder calls Acquire again for that long, so that
	// a late action of the old holder cannot win last. Zero for movers
	// whose effect is complete when Acquire returns.
	Settle() time.Duration
	// Close releases the mover's resources (not the addresses: Release
	// does that).
	Close() error
}

// Tenure is the mandate under which a Mover acquires.
type Tenure struct {
	// Token identifies the tenure: the etcd leader key's create revision,
	// 0 under CARP and VRRP. Providers that can store it (a tag) do.
	Token int64
	// Deadline is when the tenure ends for sure (the fence D = t_s + TTL
	// - margin): no action that makes this host a holder may take effect
	// after it. It must carry a monotonic reading (a time.Now() plus a
	// duration). The zero Time means no deadline (CARP, VRRP).
	Deadline time.Time
}

// ErrFenced is wrapped by the error of an Acquire that did not act because
// its action could not end before the tenure's deadline.
var ErrFenced = errors.New("past the tenure's deadline")

// Fits returns nil when an action that starts at now and takes up to need
// ends before t's deadline, and an error wrapping ErrFenced otherwise. A
// tenure without deadline fits any action.
func Fits(now time.Time, t Tenure, need time.Duration) error {
	if t.Deadline.IsZero() {
		return nil
	}
	if end := now.Add(need); end.Before(t.Deadline) {
		return nil
	}
	return fmt.Errorf("tenure %d: %w (%v left, the action needs %v)", t.Token, ErrFenced, t.Deadline.Sub(now).Round(time.Millisecond), need)
}

// Holding is what a mover's anchor says about a vhid's addresses.
type Holding struct {
	// Here says that the anchor shows this host holding every address.
	Here bool
	// Missing lists the addresses this host has not got (all of them
	// when it holds none).
	Missing []netip.Prefix
	// Elsewhere names another holder when the anchor tells (a provider's
	// instance id); "" when it does not or there is none.
	Elsewhere string
}
