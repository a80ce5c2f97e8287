package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/carpd/carpd/internal/carp"
)

// State is internal/carp's State: VRRP's Initialize, Backup and Master
// states are carp(4)'s INIT, BACKUP and MASTER, and one type lets the
// daemon's status, events, hooks and metrics treat a VRRP instance as a
// CARP vhid without a conversion.
type State = carp.State

// The states of RFC 5798 section 6.4.
const (
	Init   = carp.Init
	Backup = carp.Backup
	Master = carp.Master
)

// Transition reasons: carp's (FreeBSD's words) where the event is the
// same, and these where VRRP has its own rule.
const (
	ReasonInit           = carp.ReasonInit
	ReasonTimedOut       = carp.ReasonTimedOut
	ReasonUser           = carp.ReasonUser
	ReasonLinkDown       = carp.ReasonLinkDown
	ReasonLinkUp         = carp.ReasonLinkUp
	ReasonShutdown       = carp.ReasonShutdown
	ReasonReleased       = carp.ReasonReleased
	ReasonHigherPriority = "higher priority advertisement received"
	ReasonTieBreak       = "equal priority advertisement from a greater address"
	ReasonPreempt        = "preempting a lower priority master"
	ReasonResigned       = "master resigned (priority 0)"
	ReasonStalled        = carp.ReasonStalled
)

// Priorities and intervals (RFC 5798 sections 5.2.4 and 5.2.7).
const (
	// OwnerPriority is the priority of the address owner: it becomes
	// MASTER at once when it starts and always preempts.
	OwnerPriority = 255
	// ResignPriority, advertised by a master that stops, makes the
	// backups take over after Skew_Time.
	ResignPriority  = 0
	MinPriority     = 1
	DefaultPriority = 100
	// Intervals are in centiseconds, 12 bits on the wire, up to
	// MaxInterval (advert.go).
	MinInterval     = 1
	DefaultInterval = 100
)

// Config is the configuration of one VRRP instance: one VRID in one
// address family. A vhid with IPv4 and IPv6 addresses runs two machines.
type Config struct {
	VRID     uint8
	Priority uint8  // 1..255; 255 is the address owner
	Interval uint16 // Advertisement_Interval in centiseconds, 1..4095
	// Addrs are the virtual addresses, all of one family.
	Addrs []netip.Addr
	// PrimaryIP is this router's own address on the interface (the
	// source of its adverts: the primary IPv4 address or the IPv6
	// link-local one), for the tie-break. The zero Addr compares below
	// every address: with TieBreak, such a master yields to any equal
	// priority.
	PrimaryIP netip.Addr
	// Preempt is RFC 5798's Preempt_Mode: a backup takes over from a
	// master of lower priority. The owner (priority 255) always preempts.
	Preempt bool
	// PreemptDelay holds preemption back for this long after the first
	// LinkUp (keepalived's preempt_delay, carp's PreemptDelay).
	PreemptDelay time.Duration
	// TieBreak is RFC 5798's rule that a master yields to an equal
	// priority advert from a greater primary address. FreeBSD 15 has no
	// tie-break (equal priority stays MASTER): false to peer with it.
	TieBreak bool
	// IfDownDemotion and SendErrDemotion are the demotions this instance
	// asks for while its interface is down and while its adverts fail to
	// go out, as internal/carp's.
	IfDownDemotion, SendErrDemotion int
}

// Send-error demotion thresholds, carp's (FreeBSD's CARP_SENDAD_MAX_ERRORS
// and CARP_SENDAD_MIN_SUCCESS).
const (
	sendErrorsToDemote     = 3
	sendSuccessesToRecover = 3
)

func (c Config) validate() error {
	switch {
	case c.VRID < 1:
		return errors.New("vrid must be 1..255")
	case c.Priority < MinPriority:
		return fmt.Errorf("priority must be %d..%d", MinPriority, OwnerPriority)
	case c.Interval < MinInterval || c.Interval > MaxInterval:
		return fmt.Errorf("interval must be %d..%d centiseconds", MinInterval, MaxInterval)
	case len(c.Addrs) == 0:
		return errors.New("no address")
	}
	v6 := c.Addrs[0].Unmap().Is6()
	for _, a := range c.Addrs {
		if !a.IsValid() {
			return errors.New("invalid address")
		}
		if a.Unmap().Is6() != v6 {
			return errors.New("addresses of both families: one instance per family")
		}
	}
	if c.PrimaryIP.IsValid() && c.PrimaryIP.Unmap().Is6() != v6 {
		return fmt.Errorf("primary address %s is not of the instance's family", c.PrimaryIP)
	}
	return nil
}

// Machine is the state machine of one VRRP instance (RFC 5798 section
// 6.4), with carpd's additions of internal/carp (make-before-break stop,
// release, demotion, forced states, announcement repeats). It is not safe
// for concurrent use; the daemon's event loop owns it.
type Machine struct {
	cfg Config
	v6  bool

	state    State
	demotion int
	linkUp   bool
	// mai is Master_Adver_Interval in centiseconds: the configured
	// interval at Initialize, then the interval of the master's adverts.
	mai     uint16
	learned bool // mai was taken from an advert

	adTimer   time.Time // MASTER: Adver_Timer
	sentAt    time.Time // when the last advert went out
	mdTimer   time.Time // BACKUP: Master_Down_Timer
	annTimer  time.Time // MASTER: next announcement
	annRepeat int       // announcements still to send
	lastAnn   time.Time // last announcement, to bound re-announcements
	resigned  bool      // mdTimer was set to Skew_Time by a priority-0 advert
	discarded bool      // the last advert was a lower priority's, discarded to preempt

	started      time.Time // first LinkUp, for PreemptDelay
	leaving      bool      // resigned, holding the addresses until a new master is heard
	releasing    bool      // leaving for BACKUP (Release), not for INIT (Shutdown)
	released     bool      // Release is on: never take over
	leaveTimer   time.Time // give up waiting for the new master; once heard, the end of carp.HandOverHold
	heardNew     bool      // leaving: the new master was heard
	heardMAI     uint16    // its Master_Adver_Interval
	ifDownDemote int
	sendErrs     int
	sendOKs      int
	sendDemote   int
}

// NewMachine makes the machine of one VRRP instance in state INIT.
func NewMachine(cfg Config) (*Machine, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("vrid %d: %w", cfg.VRID, err)
	}
	cfg.Addrs = slices.Clone(cfg.Addrs)
	return &Machine{cfg: cfg, v6: cfg.Addrs[0].Unmap().Is6(), mai: cfg.Interval}, nil
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Config returns the machine's configuration.
func (m *Machine) Config() Config { return m.cfg }

// IPv6 reports whether the instance is of the IPv6 family.
func (m *Machine) IPv6() bool { return m.v6 }

// Priority returns the priority in force: the configured one minus the
// demotion, floored at 1 and capped at 254. A demotion of 0 or less leaves
// the owner (255) the owner; any positive demotion makes it an ordinary
// router of priority 255-demotion: it preempts only if Preempt says so,
// yields to a greater priority, and starts as BACKUP at the next
// Initialize. A negative demotion raises a non-owner's priority, never to
// 255: only the configuration makes an owner. The daemon should log the
// owner's demotion (Priority below 255 with Config().Priority 255).
func (m *Machine) Priority() uint8 {
	p, d := int(m.cfg.Priority), m.demotion
	if d == 0 || (p == OwnerPriority && d < 0) {
		return uint8(p)
	}
	return uint8(min(max(p-d, MinPriority), OwnerPriority-1))
}

// MasterAdverInterval returns Master_Adver_Interval in centiseconds.
func (m *Machine) MasterAdverInterval() uint16 { return m.mai }

// centiseconds converts a count of centiseconds to a Duration, exactly.
func centiseconds(n int) time.Duration { return time.Duration(n) * 10 * time.Millisecond }

// AdvertInterval is the time between two adverts of a master:
// Advertisement_Interval.
func (m *Machine) AdvertInterval() time.Duration { return centiseconds(int(m.cfg.Interval)) }

// SkewTime is ((256 - Priority) * Master_Adver_Interval) / 256
// centiseconds, with the priority in force. It is not rounded to whole
// centiseconds (FreeBSD and keepalived keep the fraction too): the exact
// value, truncated to the nanosecond, less than 1 ns off. Priority 55 at
// 10 ms: 201 * 10 ms / 256 = 7.8515625 ms, 7851562 ns.
func (m *Machine) SkewTime() time.Duration {
	return time.Duration(256-int(m.Priority())) * centiseconds(int(m.mai)) / 256
}

// MasterDownInterval is 3 * Master_Adver_Interval + Skew_Time: how long a
// backup waits for an advert before it takes over (37.851562 ms for
// priority 55 at 10 ms).
func (m *Machine) MasterDownInterval() time.Duration {
	return 3*centiseconds(int(m.mai)) + m.SkewTime()
}

// LeaveTimeout is how long a master that resigned keeps its addresses
// while no new master is heard: 4 advert intervals, more than the
// master-down interval of any peer that learnt our interval and ignores
// priority 0 (3 * interval + Skew_Time, the skew below one interval).
func (m *Machine) LeaveTimeout() time.Duration { return 4 * m.AdvertInterval() }

// StallBound is how long a MASTER may go without sending before it must
// assume that a backup took over: 4 advert intervals. A backup that learnt
// our interval takes over 3 * Master_Adver_Interval + Skew_Time after the
// last advert it heard, Skew_Time = (256 - Priority) / 256 of the interval
// (Priority >= 1): under 4 intervals.
func (m *Machine) StallBound() time.Duration { return 4 * m.AdvertInterval() }

// stalled reports whether the machine is a MASTER that has sent no advert
// for longer than StallBound: the process was stopped or paused, its
// backups timed out and one of them is MASTER now. Sending now, with a
// higher priority and the state of before the stall, would displace it,
// and a stop that ends in a kill (systemd's watchdog sends SIGABRT and
// SIGCONT) would leave nobody MASTER for a master-down interval.
func (m *Machine) stalled(now time.Time) bool {
	return m.state == Master && !m.leaving && !m.sentAt.IsZero() && now.Sub(m.sentAt) > m.StallBound()
}

// NextDeadline returns the earliest time at which the machine wants a Tick,
// or the zero time if it waits for nothing.
func (m *Machine) NextDeadline() time.Time {
	var next time.Time
	for _, t := range []time.Time{m.adTimer, m.mdTimer, m.annTimer, m.leaveTimer} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// Left reports whether a Shutdown has completed: the addresses are
// released and nothing more will be sent.
func (m *Machine) Left() bool { return m.state == Init && !m.leaving }

// Step feeds one event to the machine at time now and returns what the
// caller must do, in order.
func (m *Machine) Step(now time.Time, ev Event) []Action {
	return m.AppendStep(nil, now, ev)
}

// AppendStep is Step that appends the actions to out: a caller that reuses
// its slice allocates nothing for them.
func (m *Machine) AppendStep(out []Action, now time.Time, ev Event) []Action {
	if r, ok := ev.(SendResult); ok && !r.Err && m.state == Master && !m.leaving && !m.sentAt.IsZero() {
		// The advert went out: the caller hands its result over at the
		// time it was sent, which is later than the step that asked for
		// it by the work done in between (255 vrids becoming MASTER at
		// once have their addresses added first). A stall is measured
		// from there, not from the step: else that work, longer than
		// StallBound on a busy machine, reads as a stall and the new
		// master steps down after its first advert.
		m.sentAt = now
	}
	// A Shutdown bows out all the same (the bow-out advert, the addresses
	// kept until the new master is heard): a backup that took over during
	// the stall is heard at once, one that did not takes over now rather
	// than a master-down interval after the addresses went (the stall can
	// be the stop's own: a loop held up past StallBound at 10 ms as the
	// signal came).
	if _, stop := ev.(Shutdown); m.stalled(now) && !stop {
		// Before any other event: a stalled master neither sends (a tick,
		// an advert queued while it stood still, a demotion) nor
		// announces. As a BACKUP it hears the new master and stays,
		// or preempts by the ordinary rule, or times out and takes
		// over again when nobody did.
		out = m.becomeBackup(now, ReasonStalled, m.cfg.Interval, false, out)
	}
	switch ev := ev.(type) {
	case LinkUp:
		m.linkUp = true
		if m.started.IsZero() {
			m.started = now
		}
		if m.ifDownDemote != 0 {
			out = append(out, Demote{Delta: -m.ifDownDemote, Source: DemoteIfDown, Reason: "interface up"})
			m.ifDownDemote = 0
		}
		if m.leaving || m.state != Init {
			break
		}
		reason := ReasonInit
		if ev.Again {
			reason = ReasonLinkUp
		}
		out = m.initialize(now, reason, out)
	case LinkDown:
		m.linkUp = false
		if m.ifDownDemote == 0 && m.cfg.IfDownDemotion != 0 {
			m.ifDownDemote = m.cfg.IfDownDemotion
			out = append(out, Demote{Delta: m.cfg.IfDownDemotion, Source: DemoteIfDown, Reason: "interface down"})
		}
		if m.leaving && !m.releasing {
			return m.leave(now, m.cfg.Interval, false, out)
		}
		// A release in progress ends here: the link is gone.
		m.leaving, m.releasing = false, false
		m.stopTimers()
		if m.state != Init {
			out = m.setState(Init, ReasonLinkDown, out)
			out = append(out, HoldAddresses{Hold: false})
		}
	case Tick:
		out = m.tick(now, out)
	case Received:
		out = m.receive(now, ev, out)
	case Force:
		switch {
		case m.leaving:
		case ev.State == Master && m.state == Backup:
			out = m.becomeMaster(now, ReasonUser, out)
		case ev.State == Backup && m.state == Master:
			out = m.becomeBackup(now, ReasonUser, m.cfg.Interval, false, out)
		}
	case SetDemotion:
		// A master advertises a new priority at once; a backup's
		// running Master_Down_Timer keeps its deadline, the new
		// Skew_Time counting from its next reset.
		old := m.Priority()
		m.demotion = ev.Demotion
		if m.state == Master && !m.leaving && m.Priority() != old {
			out = append(out, m.send(now, m.Priority()))
			m.adTimer = now.Add(m.AdvertInterval())
		}
	case Shutdown:
		if m.state == Master && !m.leaving {
			out = m.resign(now, false, out)
			break
		}
		m.releasing = false // leaving for good now
		if !m.leaving {
			out = m.leave(now, m.cfg.Interval, false, out)
		}
	case SendResult:
		out = m.sendResult(ev.Err, out)
	case Release:
		m.released = ev.On
		if ev.On && m.state == Master && !m.leaving {
			out = m.resign(now, true, out)
		}
	}
	return out
}

// initialize is RFC 5798 section 6.4.1: the owner becomes MASTER at once,
// any other router BACKUP with Master_Adver_Interval set to its own
// Advertisement_Interval.
func (m *Machine) initialize(now time.Time, reason string, out []Action) []Action {
	if m.Priority() == OwnerPriority && !m.released {
		return m.becomeMaster(now, reason, out)
	}
	return m.becomeBackup(now, reason, m.cfg.Interval, false, out)
}

// resign sends the priority-0 advert of a master that stops (section
// 6.4.3) and keeps the addresses until the new master is heard or
// LeaveTimeout passes (make before break).
func (m *Machine) resign(now time.Time, release bool, out []Action) []Action {
	out = append(out, m.send(now, ResignPriority))
	m.stopTimers()
	m.leaving, m.releasing, m.heardNew = true, release, false
	m.leaveTimer = now.Add(m.LeaveTimeout())
	return out
}

// leave ends a resignation: to BACKUP with Master_Adver_Interval mai for
// a release (learned: the new master's), to INIT otherwise.
func (m *Machine) leave(now time.Time, mai uint16, learned bool, out []Action) []Action {
	m.leaving = false
	if m.releasing {
		m.releasing = false
		return m.becomeBackup(now, ReasonReleased, mai, learned, out)
	}
	m.stopTimers()
	if m.state != Init {
		out = m.setState(Init, ReasonShutdown, out)
		out = append(out, HoldAddresses{Hold: false})
	}
	return out
}

func (m *Machine) sendResult(failed bool, out []Action) []Action {
	if failed {
		m.sendOKs = 0
		m.sendErrs++
		if m.sendErrs >= sendErrorsToDemote && m.sendDemote == 0 && m.cfg.SendErrDemotion != 0 {
			m.sendDemote = m.cfg.SendErrDemotion
			out = append(out, Demote{Delta: m.cfg.SendErrDemotion, Source: DemoteSendErr, Reason: "send error"})
		}
		return out
	}
	m.sendErrs = 0
	if m.sendDemote != 0 {
		m.sendOKs++
		if m.sendOKs >= sendSuccessesToRecover {
			out = append(out, Demote{Delta: -m.sendDemote, Source: DemoteSendErr, Reason: "send ok"})
			m.sendDemote, m.sendOKs = 0, 0
		}
	}
	return out
}

func (m *Machine) stopTimers() {
	m.adTimer, m.mdTimer, m.annTimer, m.leaveTimer = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	m.annRepeat = 0
	m.resigned, m.discarded = false, false
}

func (m *Machine) setState(s State, reason string, out []Action) []Action {
	if s == m.state {
		return out
	}
	out = append(out, Transition{From: m.state, To: s, Reason: reason})
	m.state = s
	return out
}

// becomeBackup enters BACKUP: addresses released, Master_Adver_Interval
// set to mai (learned: from a master's advert), Master_Down_Timer started.
func (m *Machine) becomeBackup(now time.Time, reason string, mai uint16, learned bool, out []Action) []Action {
	out = m.setState(Backup, reason, out)
	out = append(out, HoldAddresses{Hold: false})
	m.stopTimers()
	m.mai, m.learned = mai, learned
	m.mdTimer = now.Add(m.MasterDownInterval())
	return out
}

// becomeMaster enters MASTER: the addresses taken, an advert at once, the
// addresses announced (and again carp.AnnounceRepeats times,
// carp.AnnounceInterval apart), Adver_Timer started.
func (m *Machine) becomeMaster(now time.Time, reason string, out []Action) []Action {
	out = m.setState(Master, reason, out)
	m.stopTimers()
	// The addresses first: a master that resigned releases its own when
	// it hears this advert (make before break).
	out = append(out, HoldAddresses{Hold: true}, m.send(now, m.Priority()), Announce{})
	m.adTimer = now.Add(m.AdvertInterval())
	m.annRepeat = carp.AnnounceRepeats
	m.annTimer = now.Add(carp.AnnounceInterval)
	m.lastAnn = now
	return out
}

// send makes an advert with the given priority, sent at now. Its Addrs is
// the machine's own slice: the caller must not modify it.
func (m *Machine) send(now time.Time, prio uint8) Action {
	m.sentAt = now
	return SendAdvert{Advert: Advert{VRID: m.cfg.VRID, Priority: prio, Interval: m.cfg.Interval, Addrs: m.cfg.Addrs}}
}

func (m *Machine) tick(now time.Time, out []Action) []Action {
	if m.leaving {
		if !now.Before(m.leaveTimer) {
			if m.heardNew {
				return m.leave(now, m.heardMAI, true, out)
			}
			out = m.leave(now, m.cfg.Interval, false, out)
		}
		return out
	}
	switch m.state {
	case Master:
		if !m.adTimer.IsZero() && !now.Before(m.adTimer) {
			out = append(out, m.send(now, m.Priority()))
			// From the deadline, not from now: the daemon's lateness
			// (a fraction of a millisecond per advert) must not
			// accumulate into a longer interval (10.2 ms at 10 ms
			// before). An advert more than an interval late is not
			// followed by a burst: the next is an interval away.
			m.adTimer = m.adTimer.Add(m.AdvertInterval())
			if !m.adTimer.After(now) {
				m.adTimer = now.Add(m.AdvertInterval())
			}
		}
		if !m.annTimer.IsZero() && !now.Before(m.annTimer) {
			out = append(out, Announce{})
			m.lastAnn = now
			m.annRepeat--
			m.annTimer = time.Time{}
			if m.annRepeat > 0 {
				m.annTimer = now.Add(carp.AnnounceInterval)
			}
		}
	case Backup:
		if !m.mdTimer.IsZero() && !now.Before(m.mdTimer) {
			if m.released {
				m.mdTimer = now.Add(m.MasterDownInterval())
				return out
			}
			reason := ReasonTimedOut
			switch {
			case m.resigned:
				reason = ReasonResigned
			case m.discarded:
				reason = ReasonPreempt
			}
			return m.becomeMaster(now, reason, out)
		}
	}
	return out
}

// check runs the checks of RFC 5798 section 7.1 that belong to an
// instance: VRID and family, TTL 255, an interval the codec should have
// refused already, and our own advert reflected back.
func (m *Machine) check(r Received) (DropReason, bool) {
	a := r.Advert
	switch {
	case a.VRID != m.cfg.VRID:
		return DropVRID, false
	case !r.Src.IsValid() || r.Src.Unmap().Is6() != m.v6:
		return DropFamily, false
	case r.TTL != TTL:
		return DropTTL, false
	case a.Interval < MinInterval || a.Interval > MaxInterval:
		return DropInterval, false
	case m.cfg.PrimaryIP.IsValid() && addrKey(r.Src) == addrKey(m.cfg.PrimaryIP):
		return DropLoop, false
	}
	return 0, true
}

// addrKey is an address as the tie-break compares it: no zone, IPv4
// unmapped.
func addrKey(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// greater reports whether src is greater than our primary address,
// compared as unsigned integers in network byte order (RFC 5798 section
// 6.4.3). The zero PrimaryIP is below every address.
func (m *Machine) greater(src netip.Addr) bool {
	if !m.cfg.PrimaryIP.IsValid() {
		return true
	}
	return addrKey(src).Compare(addrKey(m.cfg.PrimaryIP)) > 0
}

// receive runs the instance's checks and then section 6.4.2 (BACKUP) or
// 6.4.3 (MASTER).
func (m *Machine) receive(now time.Time, r Received, out []Action) []Action {
	if reason, ok := m.check(r); !ok {
		return append(out, drop(reason))
	}
	a := r.Advert
	if m.leaving {
		// A new master speaks: the addresses can go now. Another
		// resigning master's advert is not one.
		if a.Priority != ResignPriority && !m.heardNew {
			// The addresses go carp.HandOverHold from now: the new
			// master's gratuitous ARP may follow its advert.
			m.heardNew, m.heardMAI = true, a.Interval
			if t := now.Add(carp.HandOverHold); t.Before(m.leaveTimer) {
				m.leaveTimer = t
			}
		}
		return out
	}
	ours := m.Priority()
	switch m.state {
	case Master:
		switch {
		case a.Priority == ResignPriority:
			// Another master stops: advertise at once so that the
			// backups keep us rather than take over after Skew_Time.
			out = append(out, m.send(now, ours))
			m.adTimer = now.Add(m.AdvertInterval())
		case a.Priority > ours:
			out = m.becomeBackup(now, ReasonHigherPriority, a.Interval, true, out)
		case a.Priority == ours && m.cfg.TieBreak && m.greater(r.Src):
			out = m.becomeBackup(now, ReasonTieBreak, a.Interval, true, out)
		case a.Priority < ours && !now.Before(m.lastAnn.Add(carp.AnnounceInterval)):
			// Discarded (the RFC), but another master of lower
			// priority is a healed partition: it yields at our next
			// advert, while the neighbours may still point at it.
			// Announce again (as carp mode and keepalived do), at
			// most once per announcement interval.
			out = append(out, Announce{})
			m.lastAnn = now
		}
	case Backup:
		mayPreempt := (m.cfg.Preempt && !now.Before(m.started.Add(m.cfg.PreemptDelay))) || ours == OwnerPriority
		switch {
		case m.released:
			if a.Priority != ResignPriority {
				m.mai, m.learned = a.Interval, true
			}
			m.mdTimer = now.Add(m.MasterDownInterval())
		case a.Priority == ResignPriority:
			m.mdTimer = now.Add(m.SkewTime())
			m.resigned, m.discarded = true, false
		case !mayPreempt || a.Priority >= ours:
			m.mai, m.learned = a.Interval, true
			m.mdTimer = now.Add(m.MasterDownInterval())
			m.resigned, m.discarded = false, false
		default:
			// Preempt: discard, so that Master_Down_Timer runs out.
			m.discarded = true
		}
	}
	return out
}

// Reconfigure changes the instance's configuration in place, for a
// reload: the state, the timers and the demotions in force stay. A
// configuration equal to the current one changes nothing and returns no
// action. Of a changed one, only what changed acts: a MASTER whose adverts
// change (priority, interval, addresses) advertises at once; a BACKUP
// keeps the time already waited on its Master_Down_Timer, which moves by
// the change of the interval (Master_Adver_Interval follows the
// configured interval until a master was heard) and of Skew_Time. The
// VRID and the family cannot change: the daemon makes a new machine.
func (m *Machine) Reconfigure(now time.Time, cfg Config) ([]Action, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("vrid %d: %w", cfg.VRID, err)
	}
	if cfg.VRID != m.cfg.VRID {
		return nil, fmt.Errorf("vrid %d: cannot become vrid %d", m.cfg.VRID, cfg.VRID)
	}
	if cfg.Addrs[0].Unmap().Is6() != m.v6 {
		return nil, fmt.Errorf("vrid %d: cannot change address family", m.cfg.VRID)
	}
	old := m.cfg
	if sameConfig(old, cfg) {
		return nil, nil
	}
	var out []Action
	if m.stalled(now) {
		// As in AppendStep: no advert of a changed configuration.
		out = m.becomeBackup(now, ReasonStalled, m.cfg.Interval, false, out)
	}
	oldPrio, oldMD, oldSkew := m.Priority(), m.MasterDownInterval(), m.SkewTime()
	cfg.Addrs = slices.Clone(cfg.Addrs)
	m.cfg = cfg
	if !m.learned {
		m.mai = cfg.Interval
	}
	if m.leaving {
		return out, nil
	}
	switch m.state {
	case Master:
		if m.Priority() != oldPrio || old.Interval != cfg.Interval || !sameAddrs(old.Addrs, cfg.Addrs) {
			out = append(out, m.send(now, m.Priority()))
			m.adTimer = now.Add(m.AdvertInterval())
		}
	case Backup:
		shift := m.MasterDownInterval() - oldMD
		if m.resigned {
			shift = m.SkewTime() - oldSkew
		}
		if !m.mdTimer.IsZero() {
			m.mdTimer = m.mdTimer.Add(shift)
			if m.mdTimer.Before(now) {
				m.mdTimer = now
			}
		}
	}
	return out, nil
}

func sameConfig(a, b Config) bool {
	return a.VRID == b.VRID && a.Priority == b.Priority && a.Interval == b.Interval && a.PrimaryIP == b.PrimaryIP &&
		a.Preempt == b.Preempt && a.PreemptDelay == b.PreemptDelay && a.TieBreak == b.TieBreak &&
		a.IfDownDemotion == b.IfDownDemotion && a.SendErrDemotion == b.SendErrDemotion && sameAddrs(a.Addrs, b.Addrs)
}

func sameAddrs(a, b []netip.Addr) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.SortFunc(x, netip.Addr.Compare)
	slices.SortFunc(y, netip.Addr.Compare)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
