// Package config holds carpd's configuration and reads it from carpd's own
// TOML file (toml.go) or from a FreeBSD rc.conf (the
// ifconfig_<iface>_alias<N> lines that carry a vhid, rcconf.go). Both
// front ends produce the same positioned vhids, which one check validates
// (check.go).
package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
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

// globalRanges are the limits of the numeric global settings, for the file
// and for the flags that override them.
var globalRanges = map[string][2]int{
	// 6 bits of the IPv4 TOS / IPv6 traffic class byte.
	"dscp": {0, 63},
	// FreeBSD clamps the advertised advskew plus demotion to 240
	// (CARP_MAXSKEW): no larger factor makes a difference.
	"ifdown-demotion-factor":  {0, 240},
	"senderr-demotion-factor": {0, 240},
}

// setGlobal stores the numeric global setting key, already checked.
func setGlobal(c *Config, key string, x int) {
	switch key {
	case "dscp":
		c.DSCP = x
	case "ifdown-demotion-factor":
		c.IfDownDemotion = x
	case "senderr-demotion-factor":
		c.SendErrDemotion = x
	}
}

// logLevels are the values of log-level, the levels of log/slog.
var logLevels = []string{"debug", "info", "warn", "error"}

// parseLogLevel returns the log level s names (in any case), or a message
// saying what is wrong.
func parseLogLevel(s string) (string, string) {
	if s = strings.ToLower(s); !slices.Contains(logLevels, s) {
		return "", "log-level must be debug, info, warn or error"
	}
	return s, ""
}

// Default returns a Config without vhids that holds the defaults of the
// global settings: preempt off, no preempt delay, both demotion factors 240
// and FreeBSD's DSCP 56, logging at level info. Both front ends start from
// it (rc.conf has none of these settings).
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
	// net.inet.carp.dscp (56 there).
	DSCP int
	// LogLevel is "debug", "info", "warn" or "error".
	LogLevel string
	// VHIDs lists the virtual hosts, in the order they were first named.
	VHIDs []VHID
}

// TOS is the IPv4 TOS / IPv6 traffic class byte of adverts: the DSCP in
// its upper six bits (0xE0 for FreeBSD's 56), the ECN bits clear.
func (c *Config) TOS() int { return c.DSCP << 2 }

// Families reports whether some vhid has IPv4 addresses and whether some
// has IPv6 ones: the protocol sockets to open.
func (c *Config) Families() (ipv4, ipv6 bool) {
	for _, v := range c.VHIDs {
		for _, p := range v.Addresses {
			if p.Addr().Is4() {
				ipv4 = true
			} else {
				ipv6 = true
			}
		}
	}
	return ipv4, ipv6
}

// Overrides are global settings given on the command line, which take
// precedence over the file's; nil means not given.
type Overrides struct {
	Preempt         *bool
	PreemptDelay    *time.Duration
	IfDownDemotion  *int
	SendErrDemotion *int
	LogLevel        *string
	// TOS is the whole TOS byte (ucarp's and OpenBSD's 0x10); it sets
	// the DSCP, and must leave the two ECN bits clear.
	TOS *int
}

// Apply applies o to c, checking each value as the file's is checked. On
// error c is unchanged.
func (c *Config) Apply(o Overrides) error {
	n := *c
	if o.Preempt != nil {
		n.Preempt = *o.Preempt
	}
	if o.PreemptDelay != nil {
		if *o.PreemptDelay < 0 {
			return fmt.Errorf("--preempt-delay %v: must not be negative", *o.PreemptDelay)
		}
		n.PreemptDelay = *o.PreemptDelay
	}
	for _, f := range []struct {
		flag, key string
		v         *int
	}{
		{"--ifdown-demotion", "ifdown-demotion-factor", o.IfDownDemotion},
		{"--senderr-demotion", "senderr-demotion-factor", o.SendErrDemotion},
	} {
		if f.v == nil {
			continue
		}
		if r := globalRanges[f.key]; *f.v < r[0] || *f.v > r[1] {
			return fmt.Errorf("%s %d: must be %d..%d", f.flag, *f.v, r[0], r[1])
		}
		setGlobal(&n, f.key, *f.v)
	}
	if o.LogLevel != nil {
		level, msg := parseLogLevel(*o.LogLevel)
		if msg != "" {
			return fmt.Errorf("--log-level %q: want debug, info, warn or error", *o.LogLevel)
		}
		n.LogLevel = level
	}
	if o.TOS != nil {
		tos := *o.TOS
		if tos < 0 || tos > 255 || tos&3 != 0 {
			return fmt.Errorf("--tos %d: want 0..255 with the two ECN bits clear (a multiple of 4)", tos)
		}
		n.DSCP = tos >> 2
	}
	*c = n
	return nil
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
