package carp

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/carpd/carpd/internal/elect"
)

// The events and actions are internal/elect's, which the daemon feeds and
// carries out alike for every electorate; Received and SendAdvert are
// CARP's own.
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

// SendAdvert asks to send an advert of one family.
type SendAdvert struct {
	Family Family
	Advert Advert
}

func (Received) ElectEvent()    {}
func (SendAdvert) ElectAction() {}

// drop is the Drop action of reason r.
func drop(r DropReason) Drop { return Drop{Reason: r.String()} }

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
