package carp

import "net/netip"

// Filter runs the receive checks of one vhid that need no state (FreeBSD's
// carp_input_c order after the vhid lookup): the vhid has addresses of the
// advert's family, the source is the unicast peer when one is configured,
// the TTL or hop limit is 255 otherwise, and the HMAC is right. It is
// immutable and safe for concurrent use, so that a socket reader can drop a
// forged advert before it reaches the event loop; the Machine runs the same
// checks again, then those that need its state.
type Filter struct {
	vhid     uint8
	families [numFamilies]bool
	peers    [numFamilies]netip.Addr
	auth     *Authenticator
}

// VHID returns the vhid the filter accepts adverts of.
func (f *Filter) VHID() uint8 { return f.vhid }

// Check returns the reason to drop r, or ok true when r passes.
func (f *Filter) Check(r Received) (reason DropReason, ok bool) {
	a := r.Advert
	switch {
	case a.VHID != f.vhid || r.Family >= numFamilies || !f.families[r.Family]:
		return DropVHID, false
	case f.peers[r.Family].IsValid() && r.Src != f.peers[r.Family]:
		return DropPeer, false
	case !f.peers[r.Family].IsValid() && r.TTL != TTL:
		return DropTTL, false
	case !f.auth.Verify(a.Counter, a.Digest):
		return DropAuth, false
	}
	return 0, true
}
