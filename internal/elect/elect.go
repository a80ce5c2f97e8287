// Package elect is the one surface between carpd's event loop
// (internal/daemon) and the machines that elect a vhid's master: CARP's
// (internal/carp), VRRPv3's (internal/vrrp) and any later electorate (an
// etcd lease). It holds the vocabulary both sides speak, the events the
// loop feeds a machine and the actions a machine returns, and the two
// interfaces the loop drives: Machine, the pure decisions, and Electorate,
// a Machine with what the loop needs around it (its transport, its status,
// reloading).
//
// The loop knows no protocol: it feeds every vhid the same events, carries
// out the actions of this package itself (addresses, announcements,
// transitions, demotions) and hands every other action (an advert to
// send) to the vhid's Electorate once the addresses are synced, through a
// Wire. A protocol's own events (an advert received, a lease granted) and
// actions (an advert to send) are its package's types, marked as an Event
// or an Action by the ElectEvent and ElectAction methods.
package elect

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/carpd/carpd/internal/api"
)

// State is the state of a vhid (FreeBSD's carp_state; VRRP's Initialize,
// Backup and Master).
type State uint8

// The states.
const (
	Init State = iota
	Backup
	Master
)

func (s State) String() string {
	switch s {
	case Init:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Event is an input to a Machine. The events of this package are fed to
// every machine alike; a protocol's own (an advert received) implement
// ElectEvent too.
type Event interface{ ElectEvent() }

// LinkUp says the interface is up and running. Again is false for the first
// one (the reason is then "initialization complete").
type LinkUp struct{ Again bool }

// LinkDown says the interface lost its link or went down: the machine goes
// to INIT and its addresses go.
type LinkDown struct{}

// Tick says that the machine's NextDeadline has passed.
type Tick struct{}

// Force is a forced state change (FreeBSD's `state master|backup`).
type Force struct{ State State }

// SetDemotion sets the vhid's demotion (the host's and the vhid's own
// checks): CARP adds it to the advertised advskew, VRRP subtracts it from
// the priority, an etcd electorate ranks its candidacy by it.
type SetDemotion struct{ Demotion int }

// Shutdown says carpd is leaving (or the vhid is removed by a reload). The
// machine releases its addresses in its own way (CARP and VRRP bow out and
// keep them until the new master is heard or LeaveTimeout passes) and then
// reports Left.
type Shutdown struct{}

// SendResult reports whether the last message the Electorate sent (Send)
// went out, for FreeBSD's send-error demotion.
type SendResult struct{ Err bool }

// Release says whether the vhid is to release its addresses and stay
// BACKUP (a failing health check with action release, SIGUSR2's hold): a
// MASTER gives them up, a released BACKUP never takes over. Forced states
// still act.
type Release struct{ On bool }

func (LinkUp) ElectEvent()      {}
func (LinkDown) ElectEvent()    {}
func (Tick) ElectEvent()        {}
func (Force) ElectEvent()       {}
func (SetDemotion) ElectEvent() {}
func (Shutdown) ElectEvent()    {}
func (SendResult) ElectEvent()  {}
func (Release) ElectEvent()     {}

// Action is an output of a Machine for the loop to carry out, in order.
// The loop carries out the actions of this package itself; every other
// action (an advert to send) is the Electorate's: the loop queues it and
// hands it to Electorate.Send once the addresses whose hold changed are
// synced (make before break), then feeds the result back as a SendResult.
type Action interface{ ElectAction() }

// HoldAddresses says whether the vhid's addresses must be on the interface
// (MASTER) or not (any other state). It is declarative: carrying it out
// twice does no harm.
//
// Until, when not zero, is a fence deadline (an etcd holder's D): the
// addresses are held with a kernel valid lifetime that ends before it
// (whole seconds, rounded down, less one), renewed by each HoldAddresses
// with an Until (carrying one out again renews the lifetime), and never
// added or renewed once less than a second of lifetime would remain. The zero Until is the daemon's own lifetime
// (CARP, VRRP), renewed as adverts go out.
type HoldAddresses struct {
	Hold  bool
	Until time.Time
}

// Announce asks for gratuitous ARP for every IPv4 address (and unsolicited
// neighbour advertisements for IPv6 ones).
type Announce struct{}

// Transition reports a state change, for logs, metrics and hooks.
type Transition struct {
	From, To State
	Reason   string
}

// Drop reports a received message that failed a check; it changed
// nothing. Reason is the name of the protocol's counter (CARP's "loop",
// VRRP's "badvrid").
type Drop struct{ Reason string }

// Demote asks to add Delta to the host's demotion (FreeBSD's global
// net.inet.carp.demotion), which the loop then hands to every machine
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

func (HoldAddresses) ElectAction() {}
func (Announce) ElectAction()      {}
func (Transition) ElectAction()    {}
func (Drop) ElectAction()          {}
func (Demote) ElectAction()        {}

// Machine is a vhid's pure state machine: no I/O, no clock reads, no
// goroutines. *carp.Machine and *vrrp.Machine are Machines.
type Machine interface {
	// AppendStep handles ev at now and appends the actions to out, in
	// the order they are to be carried out.
	AppendStep(out []Action, now time.Time, ev Event) []Action
	// State is the machine's state.
	State() State
	// NextDeadline is when the machine wants a Tick, or the zero time.
	NextDeadline() time.Time
	// Left reports whether the machine has finished leaving after a
	// Shutdown (its addresses released).
	Left() bool
	// MasterDownInterval is how long a BACKUP waits without hearing a
	// master before it takes over (SIGUSR2's hold adds it to ucarp's
	// pause).
	MasterDownInterval() time.Duration
}

// Electorate is one vhid's Machine as the daemon drives it: one per CARP
// vhid, one per address family of a VRRP vhid, one per etcd vhid. The loop
// calls its methods on its own goroutine only, one at a time.
//
// To add an electorate (etcd): implement Machine with its own events (a
// lease granted or lost, the leader key's watch; made Events by an
// ElectEvent method, and queued for the loop by the electorate's own
// goroutines through Wire.Post) and the actions of this package (HoldAddresses when it wins,
// HoldAddresses{false} at the fence deadline, which NextDeadline returns so
// that the loop ticks it then). Its Send is never called if it returns no
// action of its own; if it does (a campaign request), Send carries it out
// without blocking the loop.
type Electorate interface {
	Machine
	// Proto is the vhid's protocol in the API's, the logs' and the
	// metrics' words: "carp", "vrrp", "etcd".
	Proto() string
	// Family is the address family the machine is limited to ("inet"
	// or "inet6": a VRRP instance), or "" when it holds all of the
	// vhid's addresses.
	Family() string
	// Attach is called once, before the first step, with the
	// transport of the vhid's interface and the vhid's logger.
	Attach(w Wire, log *slog.Logger)
	// Send carries out an action of the machine's own (one not of this
	// package), queued by the loop until the addresses were synced, and
	// returns the address family it went out on (for the counters; -1:
	// none) and whether it failed. A failure is also the electorate's
	// to log.
	Send(a Action) (family int, err error)
	// Heard says whether ev is a message from another host, to show in
	// the status as the last one heard.
	Heard(now time.Time, ev Event) (h api.Heard, src netip.Addr, family int, ok bool)
	// Reconfigure takes next's configuration (an Electorate of the same
	// Proto and Family, built from the reloaded configuration and never
	// driven) in place, keeping the state and the timers. It returns the
	// actions to carry out, whether anything changed, and a warning for
	// the operator (or "").
	Reconfigure(now time.Time, next Electorate) (acts []Action, changed bool, warn string, err error)
	// Why says in words why the machine is in its state, which is not
	// INIT (the loop says why INIT): h is the last message heard from
	// another host, or nil; leaving says carpd is bowing out.
	Why(h *api.Heard, leaving bool) string
	// Status fills in the protocol's fields of the vhid's status.
	Status(s *api.VHID)
	// Rank is what the hooks are told of the vhid's standing: CARP's
	// advertised advskew (and 255 minus it as priority), VRRP's
	// advertised priority.
	Rank() (advSkew, priority int)
}

// Wire is a vhid's transport, which the daemon gives its Electorate: the
// protocol-112 sockets on its interface, and the loop itself for an
// electorate whose events come from goroutines of its own.
type Wire interface {
	// Post queues ev for the vhid's Electorate, as one input of the loop,
	// from any goroutine but the loop's (an etcd watch or lease keeper):
	// it returns once the loop has stepped the machine with it and
	// carried out its actions, or with an error when ctx is done or the
	// loop has returned. Events for a vhid removed meanwhile are dropped.
	Post(ctx context.Context, ev Event) error
	// Source is the address on the interface that packets to dst leave
	// from (the primary IPv4 address, or the IPv6 link-local one).
	Source(dst netip.Addr) (netip.Addr, error)
	// Own reports whether a is an address this host sends from on the
	// interface: a message from it is one of ours, reflected back.
	Own(a netip.Addr) bool
	// Write sends payload b from src to dst on the interface.
	Write(src, dst netip.Addr, b []byte) error
}
