package vrrp

import (
	"fmt"
	"net/netip"

	"github.com/carpd/carpd/internal/elect"
)

// The events and actions are internal/elect's, which the daemon feeds and
// carries out alike for every electorate; Received and SendAdvert are
// VRRP's own.
type (
	Event         = elect.Event
	LinkUp        = elect.LinkUp
	LinkDown      = elect.LinkDown
	Tick          = elect.Tick
	Force         = elect.Force
	SetDemotion   = elect.SetDemotion
	Shutdown      = elect.Shutdown
	SendResult    = elect.SendResult
	Release       = elect.Release
	Action        = elect.Action
	HoldAddresses = elect.HoldAddresses
	Announce      = elect.Announce
	Transition    = elect.Transition
	Drop          = elect.Drop
	Demote        = elect.Demote
)

// The sources of the demotions a machine asks for.
const (
	DemoteIfDown  = elect.DemoteIfDown
	DemoteSendErr = elect.DemoteSendErr
)

// Received is an advert that arrived for this instance, already decoded
// by the codec (length, version, checksum), with the IP source address
// and the TTL or hop limit it came with. (LinkUp is RFC 5798's Startup
// event; LinkDown its Shutdown event without a priority-0 advert, which
// could not go out; Shutdown sends one, section 6.4.3.)
type Received struct {
	Src    netip.Addr // the IP source address: the sender's primary address
	TTL    int
	Advert Advert
}

// SendAdvert asks to send an advert to 224.0.0.18 or ff02::12 (the
// instance's family) from the primary or link-local address, TTL 255.
type SendAdvert struct{ Advert Advert }

func (Received) ElectEvent()    {}
func (SendAdvert) ElectAction() {}

// drop is the Drop action of reason r.
func drop(r DropReason) Drop { return Drop{Reason: r.String()} }

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
