package carp

import (
	"errors"
	"fmt"
	"net/netip"
)

// Event is an input to Machine.Step.
type Event interface{ isEvent() }

// LinkUp says the interface is up and running. Again is false for the first
// one (the reason is then "initialization complete").
type LinkUp struct{ Again bool }

// LinkDown says the interface lost its link or went down.
type LinkDown struct{}

// Tick says that NextDeadline has passed.
type Tick struct{}

// Received is an advert that arrived for this vhid: already decoded by
// ParseAdvert (length, version, checksum), with the IP TTL or hop limit it
// came with and the family of the socket it came on.
type Received struct {
	Family Family
	Src    netip.Addr // the IP source address
	TTL    int
	Advert Advert
	// Self says that Src is this host's own address on the interface: the
	// advert is one of ours, reflected back (a hypervisor switch that
	// loops multicast).
	Self bool
}

// Force is a forced state change (FreeBSD's `state master|backup`).
type Force struct{ State State }

// SetDemotion sets the demotion added to the advertised advskew.
type SetDemotion struct{ Demotion int }

// Shutdown says carpd is leaving. A master bows out with an advert of
// advbase 255, advskew 255 and keeps its addresses until it hears the new
// master (make before break) or LeaveTimeout passes; then Left is true.
type Shutdown struct{}

// SendResult reports whether the last SendAdvert went out, for FreeBSD's
// send-error demotion.
type SendResult struct{ Err bool }

// Release says whether the vhid is to release its addresses and stay
// BACKUP (a failing health check with action release): a MASTER bows out
// as at a shutdown, keeps the addresses until the new master is heard and
// becomes BACKUP; a released BACKUP never takes over (its master-down
// timer and the preempt and "master will time out" rules are set aside).
// Forced states still act.
type Release struct{ On bool }

func (LinkUp) isEvent()      {}
func (LinkDown) isEvent()    {}
func (Tick) isEvent()        {}
func (Received) isEvent()    {}
func (Force) isEvent()       {}
func (SetDemotion) isEvent() {}
func (Shutdown) isEvent()    {}
func (SendResult) isEvent()  {}
func (Release) isEvent()     {}

// Action is an output of Machine.Step for the caller to carry out.
type Action interface{ isAction() }

// SendAdvert asks to send an advert of one family.
type SendAdvert struct {
	Family Family
	Advert Advert
}

// HoldAddresses says whether the vhid's addresses must be on the interface
// (MASTER) or not (any other state). It is declarative: carrying it out
// twice does no harm.
type HoldAddresses struct{ Hold bool }

// Announce asks for gratuitous ARP for every IPv4 address (and unsolicited
// neighbour advertisements for IPv6 ones).
type Announce struct{}

// Transition reports a state change, for logs, metrics and hooks.
type Transition struct {
	From, To State
	Reason   string
}

// Drop reports an advert that failed a check; it changed nothing.
type Drop struct{ Reason DropReason }

// Demote asks to add Delta to the host's demotion (FreeBSD's global
// net.inet.carp.demotion), which the caller then hands to every machine
// with SetDemotion. Source is DemoteIfDown or DemoteSendErr: the vhid's
// demotion of that source is the sum of the deltas it asked for.
type Demote struct {
	Delta  int
	Source string
	Reason string
}

// The sources of the demotions a machine asks for.
const (
	DemoteIfDown  = "interface down"
	DemoteSendErr = "send errors"
)

func (SendAdvert) isAction()    {}
func (HoldAddresses) isAction() {}
func (Announce) isAction()      {}
func (Transition) isAction()    {}
func (Drop) isAction()          {}
func (Demote) isAction()        {}

// DropReason says why a received packet was dropped. The names follow
// FreeBSD's carpstats counters.
type DropReason uint8

// The drop reasons.
const (
	DropShort    DropReason = iota + 1 // shorter than the header
	DropVersion                        // unknown version or type
	DropChecksum                       // bad checksum
	DropVHID                           // no such vhid with an address of that family
	DropTTL                            // TTL / hop limit not 255
	DropAuth                           // bad HMAC
	DropLoop                           // our own counter came back
	DropPeer                           // not from the configured unicast peer
	DropHeader                         // shorter than the 8-byte header (FreeBSD's hdrops)
	DropReplay                         // counter not greater than the source's last (replay protection)

	// NumDropReasons is one more than the highest DropReason, for arrays
	// indexed by reason.
	NumDropReasons = iota + 1
)

func (r DropReason) String() string {
	switch r {
	case DropShort:
		return "badlen"
	case DropVersion:
		return "badver"
	case DropChecksum:
		return "badsum"
	case DropVHID:
		return "badvhid"
	case DropTTL:
		return "badttl"
	case DropAuth:
		return "badauth"
	case DropLoop:
		return "loop"
	case DropPeer:
		return "badpeer"
	case DropHeader:
		return "hdrops"
	case DropReplay:
		return "replay"
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// DropReasonOf maps a ParseAdvert error to its drop reason. ok is false
// for ErrNotCARP: VRRPv3 on protocol 112 is someone else's and is ignored
// without counting.
func DropReasonOf(err error) (r DropReason, ok bool) {
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, ErrNotCARP):
		return 0, false
	case errors.Is(err, ErrHeader):
		return DropHeader, true
	case errors.Is(err, ErrShort):
		return DropShort, true
	case errors.Is(err, ErrChecksum):
		return DropChecksum, true
	default:
		return DropVersion, true
	}
}
