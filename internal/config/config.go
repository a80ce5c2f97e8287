// Package config holds carpd's configuration and reads it from a FreeBSD
// rc.conf (the ifconfig_<iface>_alias<N> lines that carry a vhid).
package config

import (
	"net/netip"
	"time"
)

// Defaults of carp(4) as documented in FreeBSD's ifconfig(8) and carp(4).
const (
	DefaultAdvBase        = 1 // seconds
	DefaultAdvSkew        = 0
	DefaultDemotionFactor = 240
)

// Config is carpd's whole configuration.
type Config struct {
	// Preempt lets a better BACKUP take over from a slower MASTER
	// (FreeBSD's net.inet.carp.preempt, off by default).
	Preempt bool
	// PreemptDelay holds preemption back for this long after start
	// (keepalived's preempt_delay).
	PreemptDelay time.Duration
	// IfDownDemotion and SendErrDemotion are FreeBSD's
	// net.inet.carp.ifdown_demotion_factor and senderr_demotion_factor
	// (240 there); 0 turns that demotion off.
	IfDownDemotion, SendErrDemotion int
	// VHIDs lists the virtual hosts, in the order they were first named.
	VHIDs []VHID
}

// VHID is one virtual host (a vhid on one interface) and its addresses.
type VHID struct {
	Interface string
	VHID      uint8
	AdvBase   uint8  // 1..255 seconds
	AdvSkew   uint8  // 0..254
	Password  string // as written; the protocol core cuts it to 19 bytes
	// State is the forced state at start: "" (none), "master" or "backup".
	State string
	// Addresses are the virtual addresses in configuration order, with
	// their prefix length (/32 or /128 when none was given).
	Addresses []netip.Prefix
	// Peer and Peer6 are unicast peers (FreeBSD "peer"/"peer6"); the zero
	// Addr means multicast (224.0.0.18, ff02::12).
	Peer, Peer6 netip.Addr
	// Origin is "file:line" of the line that first named this vhid.
	Origin string
}
