// Package config holds carpd's configuration and reads it from carpd's own
// TOML file (toml.go) or from a FreeBSD rc.conf (the
// ifconfig_<iface>_alias<N> lines that carry a vhid, rcconf.go). Both
// front ends produce the same positioned vhids, which one check validates
// (check.go).
package config

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// checkListen checks a host:port to listen on; it returns what is wrong,
// or "".
func checkListen(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return `want HOST:PORT, like "127.0.0.1:9657"`
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "the port must be 0..65535"
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return "the host must be an IP address (or empty for every address)"
		}
	}
	return ""
}

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
	// DefaultControl is the control socket's path.
	DefaultControl = "/run/carpd/carpd.sock"
	// DefaultStateFile keeps the persistent (maintenance) demotion.
	DefaultStateFile = "/var/lib/carpd/state.json"
	// DefaultHookTimeout bounds each hook run.
	DefaultHookTimeout = 30 * time.Second
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
		Control:         DefaultControl,
		StateFile:       DefaultStateFile,
		HookTimeout:     DefaultHookTimeout,
		ManageAddresses: true,
	}
}

// Config is carpd's whole configuration.
type Config struct {
	// Preempt lets a better BACKUP take over from a slower MASTER
	// (FreeBSD's net.inet.carp.preempt, off by default).
	Preempt bool
	// PreemptGiven says that Preempt was set explicitly, by the file's
	// global preempt key or the --preempt flag. Unset, a VRRP vhid
	// preempts (the default of RFC 5798 and keepalived) while a CARP vhid
	// follows Preempt (off); see PreemptOf.
	PreemptGiven bool
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
	// Control is the control socket's path; ControlGroup the group whose
	// members may read carpd's state through it ("" for none).
	Control, ControlGroup string
	// StateFile keeps the persistent (maintenance) demotion; "" for none.
	StateFile string
	// MetricsListen is the address of the Prometheus metrics and /healthz
	// ("" for none).
	MetricsListen string
	// Hooks are the hooks of every vhid that does not set its own.
	Hooks Hooks
	// HookTimeout bounds each hook run; HookUser runs them as that user.
	HookTimeout time.Duration
	HookUser    string
	// HookUserOrigin is "file:line" of the hook-user key ("" when none).
	HookUserOrigin string
	// ManageAddresses is true when carpd adds and removes the virtual
	// addresses itself; false leaves them to the hooks (ucarp's way).
	ManageAddresses bool
	// VHIDs lists the virtual hosts, in the order they were first named.
	VHIDs []VHID
	// Etcd is the [etcd] table (only the TOML file has it); nil when
	// there is none.
	Etcd *Etcd
	// Checks are the health checks (only the TOML file has them).
	Checks []Check
	// BGP is the speaker of the bgp mover (the TOML file's [bgp]); nil
	// when there is none.
	BGP *BGP
	// Files are the files the configuration names, where it names them:
	// password files, hooks, the programs of exec checks. `carpd --check`
	// checks each as the service's user meets it.
	Files []FileRef
}

// FileRef is a file the configuration names.
type FileRef struct {
	// Path is the file, absolute (a relative password-file is taken from
	// the configuration file's directory).
	Path string
	// Key is the key or flag that names it: "password-file", "upscript",
	// "exec", "--upscript".
	Key string
	// Origin is "file:line" of the key, or the flag.
	Origin string
	// Program says that carpd runs the file (a hook, an exec check's
	// program) rather than reads it.
	Program bool
}

// Hooks are the scripts run on state changes (internal/hooks), in the
// three conventions.
type Hooks struct {
	Devd       string // devd's: SCRIPT <vhid>@<iface> MASTER|BACKUP|INIT
	UpScript   string // ucarp's: SCRIPT IFACE VIP [XPARAM]
	DownScript string
	XParam     string
	Neutral    bool   // ucarp's --neutral: no down script at start
	Notify     string // keepalived's: SCRIPT INSTANCE NAME STATE PRIORITY
	// keepalived's notify_master, notify_backup, notify_fault and
	// notify_stop: a command (program and its own arguments), run with no
	// argument added on entering MASTER, BACKUP, FAULT (INIT with the
	// interface down) or when carpd stops.
	NotifyMaster, NotifyBackup, NotifyFault, NotifyStop []string
}

// Equal reports whether h and o are the same hooks.
func (h Hooks) Equal(o Hooks) bool {
	return h.Devd == o.Devd && h.UpScript == o.UpScript && h.DownScript == o.DownScript &&
		h.XParam == o.XParam && h.Neutral == o.Neutral && h.Notify == o.Notify &&
		slices.Equal(h.NotifyMaster, o.NotifyMaster) && slices.Equal(h.NotifyBackup, o.NotifyBackup) &&
		slices.Equal(h.NotifyFault, o.NotifyFault) && slices.Equal(h.NotifyStop, o.NotifyStop)
}

// HooksOf returns the hooks of vhid v: each one it sets, else the global
// one.
func (c *Config) HooksOf(v *VHID) Hooks {
	h := c.Hooks
	for _, f := range []struct{ dst, src *string }{
		{&h.Devd, &v.Hooks.Devd}, {&h.UpScript, &v.Hooks.UpScript}, {&h.DownScript, &v.Hooks.DownScript},
		{&h.XParam, &v.Hooks.XParam}, {&h.Notify, &v.Hooks.Notify},
	} {
		if *f.src != "" {
			*f.dst = *f.src
		}
	}
	for _, f := range []struct{ dst, src *[]string }{
		{&h.NotifyMaster, &v.Hooks.NotifyMaster}, {&h.NotifyBackup, &v.Hooks.NotifyBackup},
		{&h.NotifyFault, &v.Hooks.NotifyFault}, {&h.NotifyStop, &v.Hooks.NotifyStop},
	} {
		if len(*f.src) > 0 {
			*f.dst = *f.src
		}
	}
	return h
}

// TOS is the IPv4 TOS / IPv6 traffic class byte of adverts: the DSCP in
// its upper six bits (0xE0 for FreeBSD's 56), the ECN bits clear.
func (c *Config) TOS() int { return c.DSCP << 2 }

// Families reports whether some vhid has IPv4 addresses and whether some
// has IPv6 ones: the protocol sockets to open (an etcd vhid needs none).
func (c *Config) Families() (ipv4, ipv6 bool) {
	for _, v := range c.VHIDs {
		if v.IsEtcd() {
			continue
		}
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
	// The control socket, the state file, the metrics listener.
	Control, StateFile, MetricsListen *string
	// ucarp's script flags.
	UpScript, DownScript, XParam *string
	Neutral                      *bool
}

// Apply applies o to c, checking each value as the file's is checked. On
// error c is unchanged.
func (c *Config) Apply(o Overrides) error {
	n := *c
	if o.Preempt != nil {
		n.Preempt, n.PreemptGiven = *o.Preempt, true
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
	for _, f := range []struct {
		flag string
		dst  *string
		v    *string
		path bool
	}{
		{"--control", &n.Control, o.Control, true},
		{"--state-file", &n.StateFile, o.StateFile, true},
		{"--metrics-listen", &n.MetricsListen, o.MetricsListen, false},
		{"--upscript", &n.Hooks.UpScript, o.UpScript, true},
		{"--downscript", &n.Hooks.DownScript, o.DownScript, true},
		{"--xparam", &n.Hooks.XParam, o.XParam, false},
	} {
		if f.v == nil {
			continue
		}
		if f.path && *f.v != "" && !filepath.IsAbs(*f.v) {
			return fmt.Errorf("%s %q: want an absolute path", f.flag, *f.v)
		}
		if f.flag == "--metrics-listen" && *f.v != "" {
			if msg := checkListen(*f.v); msg != "" {
				return fmt.Errorf("--metrics-listen %q: %s", *f.v, msg)
			}
		}
		*f.dst = *f.v
		if hook := f.dst == &n.Hooks.UpScript || f.dst == &n.Hooks.DownScript; hook && *f.v != "" {
			n.Files = append(slices.Clip(n.Files), FileRef{Path: *f.v, Key: f.flag, Origin: f.flag, Program: true})
		}
	}
	if o.Neutral != nil {
		n.Hooks.Neutral = *o.Neutral
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
	// Version is the protocol the vhid speaks: 2 for CARP (the default)
	// or 3 for VRRPv3 (RFC 5798), FreeBSD 15's ifconfig keyword carpver.
	// A VRRP vhid has no AdvBase, AdvSkew, Password, Peer, Peer6 or
	// ReplayProtection (the parsers refuse them; they stay zero).
	Version int
	// VRRPPriority is a VRRP vhid's priority, 1..255 (FreeBSD's
	// vrrpprio, default 100): the higher wins, 255 is the address owner.
	// It is 0 for a CARP vhid.
	VRRPPriority uint8
	// VRRPInterval is a VRRP vhid's advertisement interval in centiseconds,
	// 1..4095 (FreeBSD's vrrpinterval, default 100 = 1 s). It is 0 for a
	// CARP vhid.
	VRRPInterval uint16
	// VRRPTieBreak applies RFC 5798's tie-break on equal priority (the
	// greater primary address wins, as keepalived does); false is FreeBSD
	// 15's behaviour (an equal priority leaves the MASTER be). True by
	// default for a VRRP vhid, false for a CARP vhid; only the TOML file
	// can turn it off.
	VRRPTieBreak bool
	// VirtualMAC asks for carp(4)'s virtual MAC address 00:00:5e:00:01:<vhid>
	// (FreeBSD's behaviour in multicast mode); off by default, when the
	// interface's own MAC answers for the addresses. Only the TOML file can
	// set it.
	VirtualMAC bool
	// ReplayProtection accepts only adverts whose counter is greater
	// than the last accepted from their source (carp.Config); off by
	// default, since ucarp sends random counters. Only the TOML file can
	// set it.
	ReplayProtection bool
	// Hooks are the vhid's own hooks (see Config.HooksOf); Name is the
	// instance name keepalived's notify gets ("" for <vhid>@<iface>).
	// Only the TOML file can set them.
	Hooks Hooks
	Name  string
	// Electorate is how the holder is elected, as written: "" or
	// ElectorateCARP (adverts; Version says CARP or VRRPv3), or
	// ElectorateEtcd (a leader key on Config.Etcd; no adverts). Mover is
	// how the addresses move to the holder, as written: "" or MoverL2, or
	// MoverBGP; see MoverOf. Only the TOML file can set them.
	Electorate, Mover string
	// Origin is "file:line" of the line that first named this vhid.
	Origin string
}

// Protocol versions of a vhid (VHID.Version): the version nibble of the
// adverts.
const (
	VersionCARP = 2 // CARP, carpver 2
	VersionVRRP = 3 // VRRPv3 (RFC 5798), carpver 3
)

// Defaults of a VRRP vhid, FreeBSD 15's and RFC 5798's.
const (
	DefaultVRRPPriority = 100
	DefaultVRRPInterval = 100 // centiseconds: 1 s
)

// IsVRRP reports whether v speaks VRRPv3 (carpver 3).
func (v *VHID) IsVRRP() bool { return v.Version == VersionVRRP }

// IsEtcd reports whether the vhid is elected on etcd (it sends no adverts).
func (v *VHID) IsEtcd() bool { return v.Electorate == ElectorateEtcd }

// MoverOf returns the vhid's mover, MoverL2 when none was given.
func (v *VHID) MoverOf() string { return cmp.Or(v.Mover, MoverL2) }

// Twice is carpd's one definition of a vhid configured twice: it returns
// the error of v when first, defined before it, has its number on its
// interface (the vhid numbers of an interface are one space for CARP and
// VRRP), nil otherwise.
func Twice(first, v *VHID) error {
	if first.Interface != v.Interface || first.VHID != v.VHID {
		return nil
	}
	return fmt.Errorf("%s: %s", v.Origin, twiceMessage(int(v.VHID), v.Interface, first.Origin, first.IsVRRP() != v.IsVRRP()))
}

// twiceMessage is the message of vhid n on iface defined again, first at
// firstAt; mixed: one of the two is CARP, the other VRRP.
func twiceMessage(n int, iface, firstAt string, mixed bool) string {
	msg := fmt.Sprintf("vhid %d on %s is already defined at %s", n, iface, firstAt)
	if mixed {
		msg += ": a CARP vhid and a VRRP vrid (carpver 3) share the numbers of an interface"
	}
	return msg
}

// PreemptOf reports whether vhid v preempts: v.Preempt when set, else
// c.Preempt when it was given (PreemptGiven), else the protocol's default:
// on for VRRP (RFC 5798 and keepalived), c.Preempt (off unless set) for
// CARP (FreeBSD's net.inet.carp.preempt, 0 by default).
func (c *Config) PreemptOf(v *VHID) bool {
	switch {
	case v.Preempt != nil:
		return *v.Preempt
	case v.IsVRRP() && !c.PreemptGiven:
		return true
	}
	return c.Preempt
}
