package vrrp

import (
	"fmt"
	"net/netip"
)

// Event is an input to Machine.Step. The events are those of
// internal/carp's machine, so that the daemon drives both alike.
type Event interface{ isEvent() }

// LinkUp says the interface is up and running: RFC 5798's Startup event.
// Again is false for the first one (the reason is then "initialization
// complete").
type LinkUp struct{ Again bool }

// LinkDown says the interface lost its link or went down: the instance
// goes to INIT (RFC 5798's Shutdown event, without a priority-0 advert:
// it could not go out).
type LinkDown struct{}

// Tick says that NextDeadline has passed.
type Tick struct{}

// Received is an advert that arrived for this instance, already decoded
// by the codec (length, version, checksum), with the IP source address
// and the TTL or hop limit it came with.
type Received struct {
	Src    netip.Addr // the IP source address: the sender's primary address
	TTL    int
	Advert Advert
}

// Force is a forced state change (FreeBSD's `state master|backup`).
type Force struct{ State State }

// SetDemotion sets the demotion subtracted from the priority (see
// Machine.Priority for the rule).
type SetDemotion struct{ Demotion int }

// Shutdown says carpd is leaving. A master sends an advert of priority 0
// (RFC 5798 section 6.4.3) and keeps its addresses until it hears the new
// master (make before break) or LeaveTimeout passes; then Left is true.
type Shutdown struct{}

// SendResult reports whether the last SendAdvert went out, for FreeBSD's
// send-error demotion.
type SendResult struct{ Err bool }

// Release says whether the instance is to release its addresses and stay
// BACKUP (a failing health check with action release): a MASTER resigns
// with a priority-0 advert as at a shutdown, keeps the addresses until the
// new master is heard and becomes BACKUP; a released BACKUP never takes
// over. Forced states still act.
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

// SendAdvert asks to send an advert to 224.0.0.18 or ff02::12 (the
// instance's family) from the primary or link-local address, TTL 255.
type SendAdvert struct{ Advert Advert }

// HoldAddresses says whether the instance's addresses must be on the
// interface (MASTER) or not (any other state). It is declarative:
// carrying it out twice does no harm.
type HoldAddresses struct{ Hold bool }

// Announce asks for gratuitous ARP for every IPv4 address (unsolicited
// neighbour advertisements for IPv6 ones).
type Announce struct{}

// Transition reports a state change, for logs, metrics and hooks.
type Transition struct {
	From, To State
	Reason   string
}

// Drop reports an advert that failed a check; it changed nothing.
type Drop struct{ Reason DropReason }

// Demote asks to add Delta to the host's demotion, which the caller then
// hands to every machine with SetDemotion, as internal/carp's Demote.
// Source is DemoteIfDown or DemoteSendErr.
type Demote struct {
	Delta  int
	Source string
	Reason string
}

// The sources of the demotions a machine asks for: carp's, so that the
// daemon sums both protocols' demotions alike.
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

// DropReason says why the machine dropped a received advert. VRRP has its
// own reasons (and so its own counters, labelled proto="vrrp" by the
// daemon) rather than carp's: there is no HMAC, and the interval check is
// VRRP's. The names are those of the codec's DropReasonOf (FreeBSD's
// carpstats counters where one fits).
type DropReason uint8

// The drop reasons of the machine. The codec's (length, version,
// checksum, count) are the codec's business.
const (
	DropVRID     DropReason = iota + 1 // another VRID
	DropFamily                         // a source address of the other family (or none)
	DropTTL                            // TTL / hop limit not 255
	DropInterval                       // Max Advertise Interval 0 or above 4095
	DropLoop                           // our own advert came back (source is our primary address)

	// NumDropReasons is one more than the highest DropReason, for arrays
	// indexed by reason.
	NumDropReasons = iota + 1
)

func (r DropReason) String() string {
	switch r {
	case DropVRID:
		return "badvrid"
	case DropFamily:
		return "badaf"
	case DropTTL:
		return "badttl"
	case DropInterval:
		return "badinterval"
	case DropLoop:
		return "loop"
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}
