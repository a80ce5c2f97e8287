// Package api is the schema of carpd's control API: the JSON documents
// that carpd serves on its control socket and carpctl reads. It holds
// types only. The schema is versioned: Version changes when a field
// changes meaning or goes away; fields are only ever added within a
// version.
//
// Endpoints (HTTP over the unix socket, as tailscale's LocalAPI):
//
//	GET  /v1/status      Status
//	GET  /v1/stats       Stats
//	GET  /v1/events      one Event per line (NDJSON), following
//	GET  /v1/version     VersionInfo
//	POST /v1/state       StateRequest        -> Status
//	POST /v1/demote      DemoteRequest       -> Status
//	POST /v1/log-level   LogLevelRequest     -> LogLevelRequest
//	POST /v1/reload      (no body)           -> ReloadResult
//
// Errors are an Error document with a 4xx or 5xx status.
package api

import "time"

// Version is the schema version, in every document's "version" field.
const Version = 1

// Status is the state of every vhid and of the host's demotion.
type Status struct {
	Version int `json:"version"`
	// Demotion is the host's demotion (FreeBSD's net.inet.carp.demotion),
	// the sum of Demotions.
	Demotion int `json:"demotion"`
	// Demotions are the sources of the demotion in force.
	Demotions []Demotion `json:"demotions"`
	VHIDs     []VHID     `json:"vhids"`
	// Checks are the health checks and their state.
	Checks []Check `json:"checks"`
	// BGP is the bgp mover's speaker, when some vhid has mover = "bgp".
	BGP *BGP `json:"bgp,omitempty"`
}

// BGP is the state of the bgp mover's speaker: its sessions and the host
// routes it announces.
type BGP struct {
	Peers []BGPPeer `json:"peers"`
	// Routes are the host routes announced to the peers.
	Routes []string `json:"routes"`
	// Error says why the speaker's state could not be read.
	Error string `json:"error,omitempty"`
}

// BGPPeer is one BGP session.
type BGPPeer struct {
	Address string `json:"address"`
	AS      uint32 `json:"as"`
	// State is the session's state in RFC 4271's words, lower case:
	// "idle", "connect", "active", "opensent", "openconfirm",
	// "established".
	State string `json:"state"`
	// Advertised counts the routes sent to the peer and not withdrawn.
	Advertised uint64 `json:"advertised"`
}

// Check is a health check's state.
type Check struct {
	Name   string    `json:"name"`
	Kind   string    `json:"kind"` // exec, shell, tcp, http, file
	Target string    `json:"target"`
	Up     bool      `json:"up"`
	Since  time.Time `json:"since"`
	Detail string    `json:"detail,omitempty"` // why it fails
	// Action is "demote" (by Weight; Demotion while failing) or
	// "release"; VHIDs are the vhids it acts on (none: the host).
	Action   string   `json:"action"`
	Weight   int      `json:"weight,omitempty"`
	Demotion int      `json:"demotion"`
	VHIDs    []string `json:"vhids,omitempty"`
}

// Demotion is one source of demotion.
type Demotion struct {
	// Source is "interface down", "send errors", "operator",
	// "operator (persistent)" or "check NAME".
	Source string `json:"source"`
	// VHID and Interface name the vhid that asked for it, for the
	// demotions a vhid causes (interface down, send errors).
	VHID      int       `json:"vhid,omitempty"`
	Interface string    `json:"iface,omitempty"`
	Delta     int       `json:"delta"`
	Reason    string    `json:"reason,omitempty"`
	Since     time.Time `json:"since"`
}

// VHID is the state of one vhid on one interface.
type VHID struct {
	Interface string `json:"iface"`
	VHID      int    `json:"vhid"`
	Protocol  string `json:"proto"` // "carp" or "vrrp"
	// Family is a VRRP instance's address family ("inet" or "inet6"): a
	// carpver 3 vhid runs one instance per family.
	Family  string `json:"af,omitempty"`
	State   string `json:"state"` // "INIT", "BACKUP" or "MASTER"
	AdvBase int    `json:"advbase,omitempty"`
	// AdvSkew is the configured advskew; AdvertisedSkew adds the
	// demotion (clamped to 0..240), as sent.
	AdvSkew        int `json:"advskew"`
	AdvertisedSkew int `json:"advertised_skew"`
	// VRRP's: the configured priority (vrrpprio) and the one advertised
	// (minus the demotion), the configured interval (vrrpinterval,
	// centiseconds) and Master_Adver_Interval (learnt from the master),
	// preempt, the RFC's tie-break, and the primary address adverts go
	// from.
	Priority            int    `json:"priority,omitempty"`
	AdvertisedPriority  int    `json:"advertised_priority,omitempty"`
	Interval            int    `json:"interval,omitempty"`
	MasterAdverInterval int    `json:"master_adver_interval,omitempty"`
	Preempt             bool   `json:"preempt,omitempty"`
	TieBreak            bool   `json:"tiebreak,omitempty"`
	PrimaryAddress      string `json:"primary_address,omitempty"`
	// Demotion is this vhid's: the host's and its checks'.
	Demotion int `json:"demotion"`
	// Released is true while a failing check releases the vhid.
	Released  bool     `json:"released,omitempty"`
	Peer      string   `json:"peer"`            // 224.0.0.18 or the unicast peer; a VRRP instance's group
	Peer6     string   `json:"peer6,omitempty"` // ff02::12 or the unicast peer
	Addresses []string `json:"addresses"`
	// LastChange is the last transition, if any.
	LastChange *Transition `json:"last_change,omitempty"`
	// MasterSince is when the vhid became MASTER, while it is.
	MasterSince *time.Time `json:"master_since,omitempty"`
	// Heard is the last valid advert heard from another host.
	Heard *Heard `json:"heard,omitempty"`
	// Why says in words why the vhid is in its state.
	Why      string       `json:"why"`
	Counters VHIDCounters `json:"counters"`
	// Mover is "bgp" for a vhid whose addresses the bgp mover announces;
	// "" for l2 (the addresses and gratuitous ARP).
	Mover string `json:"mover,omitempty"`
	// Etcd is an etcd vhid's election (electorate = "etcd").
	Etcd *Etcd `json:"etcd,omitempty"`
}

// Etcd is the state of an etcd vhid's election.
type Etcd struct {
	Node string `json:"node"` // this host's name in the election
	// Leader is the leader key's holder as last read ("" none), and
	// Tenure the key's create revision (the holder's tenure).
	Leader string `json:"leader"`
	Tenure int64  `json:"tenure,omitempty"`
	// Lease is this host's lease ID (0: none) and TTL its granted TTL.
	Lease int64   `json:"lease,omitempty"`
	TTL   float64 `json:"ttl_seconds,omitempty"`
	// FenceDeadline is D while this host holds the leader key: it
	// releases the addresses then whatever the network does.
	FenceDeadline *time.Time `json:"fence_deadline,omitempty"`
	// RenewLatency is the round trip of the last acknowledged renewal.
	RenewLatency  float64 `json:"renew_latency_seconds"`
	WatchRestarts uint64  `json:"watch_restarts"`
	ReadFailures  uint64  `json:"read_failures"`
	Dropped       uint64  `json:"dropped"`
}

// Transition is one state change.
type Transition struct {
	Time   time.Time `json:"time"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// Heard is an advert heard from another host: CARP's advbase and
// advskew, or VRRP's priority and interval (centiseconds).
type Heard struct {
	Time     time.Time `json:"time"`
	Source   string    `json:"src"`
	AdvBase  int       `json:"advbase,omitempty"`
	AdvSkew  int       `json:"advskew"`
	Priority int       `json:"priority,omitempty"`
	Interval int       `json:"interval,omitempty"`
}

// VHIDCounters are the counters of one vhid since carpd started.
type VHIDCounters struct {
	SentInet        uint64 `json:"sent-inet-packets"`
	SentInet6       uint64 `json:"sent-inet6-packets"`
	SendFailed      uint64 `json:"send-failed"`
	ReceivedInet    uint64 `json:"received-inet-packets"`
	ReceivedInet6   uint64 `json:"received-inet6-packets"`
	Transitions     uint64 `json:"transitions"`
	Announcements   uint64 `json:"announcements"`
	AddressRestores uint64 `json:"address-restores"`
	// MoverFailures counts the mover's calls that failed (an
	// announcement or a withdrawal of mover = "bgp"), retried at the
	// next renewal.
	MoverFailures     uint64            `json:"mover-failures,omitempty"`
	TransitionsByKind []TransitionCount `json:"transitions-by-kind,omitempty"`
}

// TransitionCount counts the transitions to one state for one reason.
type TransitionCount struct {
	To     string `json:"to"`
	Reason string `json:"reason"`
	Count  uint64 `json:"count"`
}

// Stats are the protocol counters of the host in FreeBSD's netstat -s -p
// carp words (libxo keys), and carpd's own in the same style.
type Stats struct {
	Version int `json:"version"`
	// FreeBSD's carpstats.
	ReceivedInet       uint64 `json:"received-inet-packets"`
	ReceivedInet6      uint64 `json:"received-inet6-packets"`
	DroppedWrongTTL    uint64 `json:"dropped-wrong-ttl"`
	DroppedShortHeader uint64 `json:"dropped-short-header"`
	DroppedBadChecksum uint64 `json:"dropped-bad-checksum"`
	DroppedBadVersion  uint64 `json:"dropped-bad-version"`
	DroppedShortPacket uint64 `json:"dropped-short-packet"`
	DroppedBadAuth     uint64 `json:"dropped-bad-authentication"`
	DroppedBadVHID     uint64 `json:"dropped-bad-vhid"`
	DroppedBadAddrList uint64 `json:"dropped-bad-address-list"`
	SentInet           uint64 `json:"sent-inet-packets"`
	SentInet6          uint64 `json:"sent-inet6-packets"`
	SendFailed         uint64 `json:"send-failed"`
	// carpd's own.
	DroppedLoop      uint64 `json:"dropped-loop"`
	DroppedReplay    uint64 `json:"dropped-replay"`
	DroppedBadPeer   uint64 `json:"dropped-bad-peer"`
	DroppedQueueFull uint64 `json:"dropped-queue-full"`
	Transitions      uint64 `json:"transitions"`
	Announcements    uint64 `json:"announcements"`
	AddressRestores  uint64 `json:"address-restores"`
	MonitorResyncs   uint64 `json:"monitor-resyncs"`
	HookRuns         uint64 `json:"hook-runs"`
	HookFailures     uint64 `json:"hook-failures"`
	// ConfigLastReloadSuccessful is false when the last reload (SIGHUP,
	// carpctl reload) was refused; ConfigLastReloadSuccess is when the
	// configuration in force was loaded (at start, or by the last
	// reload that succeeded), as Prometheus's own
	// prometheus_config_last_reload_success_timestamp_seconds.
	ConfigLastReloadSuccessful bool      `json:"config-last-reload-successful"`
	ConfigLastReloadSuccess    time.Time `json:"config-last-reload-success-time"`
	// VRRP's (carpver 3): the version-3 datagrams received on interfaces
	// with VRRP instances, the adverts sent, and the drops by reason
	// (hdrops, badver, badlen, badsum, badinterval, badaf, badttl,
	// badvrid, loop). The CARP counters above count CARP only.
	VRRP VRRPStats `json:"vrrp"`
	// Drops by interface and reason (badlen, badttl, ...), for metrics:
	// CARP's, and VRRP's (Proto "vrrp") on interfaces with VRRP instances.
	DropsByInterface []InterfaceDrops `json:"drops-by-interface,omitempty"`
}

// VRRPStats are the VRRP counters of the host.
type VRRPStats struct {
	ReceivedInet  uint64            `json:"received-inet-packets"`
	ReceivedInet6 uint64            `json:"received-inet6-packets"`
	SentInet      uint64            `json:"sent-inet-packets"`
	SentInet6     uint64            `json:"sent-inet6-packets"`
	SendFailed    uint64            `json:"send-failed"`
	Drops         map[string]uint64 `json:"drops"`
}

// InterfaceDrops are the drops on one interface, of one protocol.
type InterfaceDrops struct {
	Interface string            `json:"iface"`
	Proto     string            `json:"proto,omitempty"` // "" is "carp"
	Drops     map[string]uint64 `json:"drops"`
}

// Event is one line of the event stream.
type Event struct {
	Version int       `json:"version"`
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	// Type is "snapshot" (one per vhid first, with the seq of the last
	// event before it), "transition", "demotion", "address-restored",
	// "announce", "hook", "resync", "reload" or "lagged" (the last line
	// for a reader that fell behind).
	Type      string `json:"type"`
	VHID      int    `json:"vhid,omitempty"`
	Interface string `json:"iface,omitempty"`
	// Proto and Family tell a VRRP instance's events ("vrrp", "inet" or
	// "inet6") from a CARP vhid's (Proto "carp", no Family).
	Proto     string   `json:"proto,omitempty"`
	Family    string   `json:"af,omitempty"`
	State     string   `json:"state,omitempty"` // snapshot
	From      string   `json:"from,omitempty"`
	To        string   `json:"to,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	Delta     int      `json:"delta,omitempty"`
	Demotion  *int     `json:"demotion,omitempty"`
	Source    string   `json:"source,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	// Hook results.
	Hook     string `json:"hook,omitempty"` // devd, upscript, downscript, notify
	Command  string `json:"command,omitempty"`
	Result   string `json:"result,omitempty"` // ok, failed, timeout, error
	Exit     *int   `json:"exit,omitempty"`
	Duration string `json:"duration,omitempty"`
	Error    string `json:"error,omitempty"`
}

// StateRequest forces a vhid's state (FreeBSD's ifconfig ... state).
type StateRequest struct {
	VHID      int    `json:"vhid"`
	Interface string `json:"iface,omitempty"` // needed when the vhid is on several
	State     string `json:"state"`           // "master" or "backup"
}

// DemoteRequest changes the operator's demotion (FreeBSD's additive
// sysctl net.inet.carp.demotion).
type DemoteRequest struct {
	Delta  int    `json:"delta"`
	Reason string `json:"reason,omitempty"`
	// Persist keeps the demotion across restarts and reboots (the state
	// file) until cleared: maintenance mode.
	Persist bool `json:"persist,omitempty"`
	// Clear removes every operator demotion, persistent ones included.
	Clear bool `json:"clear,omitempty"`
}

// LogLevelRequest sets (and answers) the log level.
type LogLevelRequest struct {
	Level string `json:"level"`
}

// ReloadResult is what a reload changed.
type ReloadResult struct {
	Version   int      `json:"version"`
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Changed   []string `json:"changed"`
	Unchanged int      `json:"unchanged"`
	Warnings  []string `json:"warnings"`
}

// VersionInfo is carpd's version.
type VersionInfo struct {
	Version   int    `json:"version"`
	Carpd     string `json:"carpd"`
	GoVersion string `json:"go"`
}

// Error is the body of a failed request.
type Error struct {
	Version int    `json:"version"`
	Error   string `json:"error"`
}
