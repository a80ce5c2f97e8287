// Package config holds carpd's configuration and reads it from carpd's own
// TOML file (toml.go) or from a FreeBSD rc.conf (the
// ifconfig_<iface>_alias<N> lines that carry a vhid, rcconf.go).
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
	// DefaultDSCP is FreeBSD's net.inet.carp.dscp: class selector 7
	// (network control), TOS byte 0xE0.
	DefaultDSCP = 56
	// DefaultLogLevel is the level of carpd's log unless configured.
	DefaultLogLevel = "info"
)

// Default returns a Config without vhids that holds the defaults of the
// global settings: preempt off, no preempt delay, both demotion factors 240
// and FreeBSD's DSCP 56, logging at level info. ParseTOML starts from it;
// ParseRCConf does not (rc.conf has none of these settings, and leaves them
// zero for the caller to fill in).
func Default() *Config {
	return &Config{
		IfDownDemotion:  DefaultDemotionFactor,
		SendErrDemotion: DefaultDemotionFactor,
		DSCP:            DefaultDSCP,
		LogLevel:        DefaultLogLevel,
	}
}

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
	// DSCP is the DiffServ code point (0..63) of adverts, FreeBSD's
	// net.inet.carp.dscp (56 there); the IPv4 TOS byte is DSCP<<2.
	// ParseRCConf leaves it 0.
	DSCP int
	// LogLevel is "debug", "info", "warn" or "error"; ParseRCConf leaves it
	// "".
	LogLevel string
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
	// Preempt overrides Config.Preempt for this vhid when not nil (only the
	// TOML file can set it).
	Preempt *bool
	// VirtualMAC asks for carp(4)'s virtual MAC address 00:00:5e:00:01:<vhid>
	// (FreeBSD's behaviour in multicast mode); off by default, when the
	// interface's own MAC answers for the addresses. Only the TOML file can
	// set it.
	VirtualMAC bool
	// Origin is "file:line" of the line that first named this vhid.
	Origin string
}

// PreemptOf reports whether vhid v preempts: v.Preempt when set, else
// c.Preempt.
func (c *Config) PreemptOf(v *VHID) bool {
	if v.Preempt != nil {
		return *v.Preempt
	}
	return c.Preempt
}
