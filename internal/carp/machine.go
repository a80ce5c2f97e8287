package carp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/carpd/carpd/internal/elect"
)

// State is the state of a vhid (FreeBSD's carp_state): internal/elect's.
type State = elect.State

// The states of carp(4).
const (
	Init   = elect.Init
	Backup = elect.Backup
	Master = elect.Master
)

// Family is the address family of an advert.
type Family uint8

// The address families a vhid can advertise on.
const (
	IPv4 Family = iota
	IPv6
	numFamilies
)

func (f Family) String() string {
	if f == IPv6 {
		return "v6"
	}
	return "v4"
}

// Transition reasons, in FreeBSD's words (ip_carp.c).
const (
	ReasonInit         = "initialization complete"
	ReasonMoreFrequent = "more frequent advertisement received"
	ReasonPreempt      = "preempting a slower master"
	ReasonWillTimeOut  = "master will time out"
	ReasonTimedOut     = "master timed out"
	ReasonUser         = "user requested via ifconfig"
	ReasonLinkDown     = "hardware interface down"
	ReasonLinkUp       = "hardware interface up"
	ReasonShutdown     = "shutting down"
	ReasonDemoted      = "preempting a demoted master"
	ReasonReleased     = "released by a check"
	// ReasonTieBreak is carpd's own: FreeBSD has no tie-break (see
	// Config.Source4).
	ReasonTieBreak = "equal advertisement from a preferred address"
	// ReasonStalled is carpd's own too: a master that sent nothing for
	// longer than StallBound (a SIGSTOP, a VM pause) steps down rather
	// than displace the backup that took over meanwhile (see stalled).
	ReasonStalled = "stalled longer than a backup waits"
)

// demoteCount is the OpenBSD group demote count carpd sends in byte 4 and
// compares received ones against. carpd demotes FreeBSD's way, through the
// advertised advskew, so it sends 0 as FreeBSD does.
const demoteCount = 0

// Announcement timing: a new master announces its addresses at once and
// then AnnounceRepeats more times, AnnounceInterval apart, because some
// neighbours miss or ignore a single gratuitous ARP.
const (
	AnnounceRepeats  = 3
	AnnounceInterval = time.Second
)

// Config is the configuration of one vhid's state machine.
type Config struct {
	VHID    uint8
	AdvBase uint8 // seconds, 1..255
	AdvSkew uint8 // 0..254
	// Password is the passphrase; only its first 19 bytes count.
	Password string
	// Addrs are the virtual addresses, IPv4 and IPv6, in any order.
	Addrs []netip.Addr
	// Preempt lets this vhid take over from a slower master.
	Preempt bool
	// Peer4 and Peer6 are unicast peers (FreeBSD's `peer` and `peer6`);
	// the zero Addr means multicast. With a peer, adverts of that family
	// are accepted only from it and the TTL check is off, as FreeBSD does.
	Peer4, Peer6 netip.Addr
	// PreemptDelay holds preemption back for this long after the first
	// LinkUp, so that a rebooting primary with a flapping link does not
	// thrash (keepalived's preempt_delay).
	PreemptDelay time.Duration
	// IfDownDemotion and SendErrDemotion are the demotions this vhid asks
	// for while its interface is down and while its adverts fail to go out
	// (FreeBSD's ifdown_demotion_factor and senderr_demotion_factor, 240).
	IfDownDemotion, SendErrDemotion int
	// ReplayProtection drops an advert whose counter is not greater than
	// the last one accepted from its source, or falls in a sequence
	// already heard from any source (counted as `replay`), so that a
	// captured advert cannot be replayed, from any source address, to win
	// or hold an election. A new sequence (a source first heard, or
	// restarted with a new random counter) is accepted once confirmed:
	// by a second advert from that source with a counter greater than
	// the first and at most ReplayWindow above it, and, for a known
	// source, one and a half advert intervals (at least 1.5 s) after its
	// last accepted advert: a live source is never silent that long, so
	// its old adverts replayed between its new ones cannot start a new
	// sequence. Off by default: ucarp sends random counters.
	ReplayProtection bool
	// Source4 and Source6 are the addresses this host sends the vhid's
	// adverts of each family from (the daemon learns them from the
	// interface). Known, they break ties between equal adverts
	// (PreferredSource): a MASTER yields to an equal advert only from a
	// preferred source, and keeps MASTER against an equal advert from
	// any other, where FreeBSD and OpenBSD yield to every equal advert,
	// so that two equal masters whose adverts cross do not both yield
	// and leave the addresses unheld. A BACKUP's master-down timer runs
	// TieOffset longer, a little more the less preferred its source, so
	// that two equal backups do not time out at the same instant. The
	// zero Addr (unknown): FreeBSD's rule and no offset. Nothing on the
	// wire changes.
	Source4, Source6 netip.Addr
}

// ReplayWindow bounds how far above the first advert of a new sequence the
// confirming one may be (see Config.ReplayProtection): a restarted peer
// sends consecutive counters.
const ReplayWindow = 16

// maxReplaySources bounds the sources remembered per vhid and family; the
// least recently heard is forgotten first.
const maxReplaySources = 8

// replaySource is what replay protection remembers of one source.
type replaySource struct {
	src      netip.Addr
	family   Family
	known    bool          // first and last are valid
	first    uint64        // the first counter accepted of the current sequence
	last     uint64        // the last counter accepted
	lastAt   time.Time     // when
	pending  bool          // cand is valid: a new sequence to confirm
	cand     uint64        // its first counter
	heardAt  time.Time     // last advert from this source, accepted or not
	interval time.Duration // advertised by the last accepted advert
}

// DefaultDemotionFactor is FreeBSD's default for both demotion factors.
const DefaultDemotionFactor = 240

// Send-error demotion thresholds (FreeBSD's CARP_SENDAD_MAX_ERRORS and
// CARP_SENDAD_MIN_SUCCESS).
const (
	sendErrorsToDemote     = 3
	sendSuccessesToRecover = 3
)

func (c Config) validate() error {
	switch {
	case c.VHID < MinVHID:
		return fmt.Errorf("vhid must be %d..%d", MinVHID, MaxVHID)
	case c.AdvBase < MinAdvBase:
		return fmt.Errorf("advbase must be %d..%d", MinAdvBase, MaxAdvBase)
	case c.AdvSkew > MaxAdvSkew:
		return fmt.Errorf("advskew must be 0..%d", MaxAdvSkew)
	case len(c.Addrs) == 0:
		return errors.New("no address")
	}
	for _, a := range c.Addrs {
		if !a.IsValid() {
			return errors.New("invalid address")
		}
	}
	return nil
}

// Machine is the state machine of one vhid. It is not safe for concurrent
// use; the daemon's event loop owns it.
type Machine struct {
	cfg      Config
	filter   *Filter
	families [numFamilies]bool

	state     State
	demotion  int
	counter   uint64 // the last counter sent
	first     uint64 // the random start: every counter sent is in (first, counter]
	windowed  uint64 // the last of our own last counters heard (replayed); first: none
	linkUp    bool
	adTimer   time.Time              // MASTER: next advert
	sentAt    time.Time              // when the last advert went out
	mdTimer   [numFamilies]time.Time // BACKUP: master-down, per family
	annTimer  time.Time              // MASTER: next announcement
	annRepeat int                    // announcements still to send

	started      time.Time // first LinkUp, for PreemptDelay
	leaving      bool      // bowed out, holding the addresses until a new master is heard
	releasing    bool      // leaving for BACKUP (Release), not for INIT (Shutdown)
	released     bool      // Release is on: never take over
	leaveTimer   time.Time // give up waiting for the new master; once heard, the end of HandOverHold
	heardNew     bool      // leaving: the new master was heard
	ifDownDemote int       // the IfDownDemotion in force (0: none)
	sendErrs     int       // consecutive send errors
	sendOKs      int       // consecutive successes while send-error demoted
	sendDemote   int       // the SendErrDemotion in force (0: none)
	replay       []replaySource
}

// NewMachine makes the machine of one vhid in state INIT. counter is the
// random starting value of the advert counter (FreeBSD draws it from
// arc4random); the caller supplies it so that the core stays deterministic.
// The counter goes up by one with every advert sent and is never taken from
// a peer's advert (FreeBSD adopts it), so that every counter this machine
// sent is in a range it knows: an advert of its own replayed by another
// host is told from a peer's (Sent).
func NewMachine(cfg Config, counter uint64) (*Machine, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("vhid %d: %w", cfg.VHID, err)
	}
	m := &Machine{cfg: cfg, counter: counter, first: counter, windowed: counter}
	m.cfg.Addrs = append([]netip.Addr(nil), cfg.Addrs...)
	for _, a := range cfg.Addrs {
		if a.Unmap().Is4() {
			m.families[IPv4] = true
		} else {
			m.families[IPv6] = true
		}
	}
	m.filter = &Filter{
		vhid:     cfg.VHID,
		families: m.families,
		peers:    [numFamilies]netip.Addr{IPv4: cfg.Peer4, IPv6: cfg.Peer6},
		auth:     NewAuthenticator(cfg.Password, cfg.VHID, cfg.Addrs),
	}
	return m, nil
}

// Filter returns the vhid's stateless receive checks, for socket readers.
func (m *Machine) Filter() *Filter { return m.filter }

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Config returns the machine's configuration.
func (m *Machine) Config() Config { return m.cfg }

// HasFamily reports whether the vhid has addresses of family f, and so
// sends and accepts adverts of that family.
func (m *Machine) HasFamily(f Family) bool { return f < numFamilies && m.families[f] }

// Peer returns the unicast peer for family f, or the zero Addr for
// multicast.
func (m *Machine) Peer(f Family) netip.Addr {
	if f == IPv6 {
		return m.cfg.Peer6
	}
	return m.cfg.Peer4
}

// AdvSkew returns the advskew that is advertised: the configured one plus
// the demotion, clamped to 0..240 (FreeBSD's DEMOTE_ADVSKEW).
func (m *Machine) AdvSkew() uint8 {
	s := int(m.cfg.AdvSkew) + m.demotion
	return uint8(min(max(s, 0), MaxSkew))
}

// AdvertInterval is the time between two adverts of a master:
// advbase + advskew/256 seconds, with the demoted skew.
func (m *Machine) AdvertInterval() time.Duration {
	return interval(m.cfg.AdvBase, m.AdvSkew())
}

// MasterDownInterval is how long a backup waits for an advert before it
// takes over: 3*advbase + advskew/256 seconds, with its own values and the
// skew not tripled (FreeBSD).
func (m *Machine) MasterDownInterval() time.Duration {
	return 3*time.Duration(m.cfg.AdvBase)*time.Second + time.Duration(m.cfg.AdvSkew)*time.Second/256
}

// TieOffsetStep is the unit of the master-down offset (TieOffset).
const TieOffsetStep = 250 * time.Microsecond

// TieOffset is how much longer than MasterDownInterval a BACKUP waits for
// an advert: (1 + the last byte of its source address mod 16) x 250 us,
// 0.25 to 4 ms, the IPv4 source deciding when the vhid has one, 0 with no
// source known. Two backups with equal settings whose master dies restart
// their timers on its last advert, so without it they time out together
// and both become MASTER; with it, the one with the lower last byte
// (mod 16), the one PreferredSource prefers among neighbours numbered in
// a row, times out first, and its advert reaches the other before that
// one's timer fires, given a latency below the difference. Where it does
// not (a wrap of the modulo, equal offsets, a slow network), both become
// MASTER and the tie-break settles them within an advert's flight.
func (m *Machine) TieOffset() time.Duration {
	src := m.tieSource()
	if !src.IsValid() {
		return 0
	}
	return time.Duration(1+src.As16()[15]%16) * TieOffsetStep
}

// tieSource is the source whose adverts break ties: the IPv4 one when the
// vhid has IPv4 addresses and it is known, else the IPv6 one.
func (m *Machine) tieSource() netip.Addr {
	if m.families[IPv4] && m.cfg.Source4.IsValid() {
		return m.cfg.Source4
	}
	if m.families[IPv6] {
		return m.cfg.Source6
	}
	return netip.Addr{}
}

// StallBound is how long a MASTER may go without sending before it must
// assume that a backup took over: 3*advbase + 1 s. A backup of the same
// advbase takes over 3*advbase + advskew/256 s (advskew <= 254, so under
// 3*advbase + 0.993 s) plus its TieOffset (4 ms at most) after the last
// advert it heard, under the bound by 3.8 ms at least.
func (m *Machine) StallBound() time.Duration {
	return 3*time.Duration(m.cfg.AdvBase)*time.Second + time.Second
}

// stalled reports whether the machine is a MASTER that has sent no advert
// for longer than StallBound: the process was stopped or paused, its
// backups timed out and one of them is MASTER now. Sending now, with a
// better advskew and the state of before the stall, would displace it,
// and a stop that ends in a kill (systemd's watchdog sends SIGABRT and
// SIGCONT) would leave nobody MASTER for a master-down interval.
func (m *Machine) stalled(now time.Time) bool {
	return m.state == Master && !m.leaving && !m.sentAt.IsZero() && now.Sub(m.sentAt) > m.StallBound()
}

// masterDown is the master-down interval the timers run: the protocol's
// and the tie offset.
func (m *Machine) masterDown() time.Duration { return m.MasterDownInterval() + m.TieOffset() }

// PreferredSource reports whether a source address a wins a tie against
// b, of the same family: the lower one, the bytes compared from the last to
// the first. That is ucarp 1.5.2's rule, a MASTER yields to an equal
// advert from a lower source, with its comparison of two in_addr's s_addr
// (stored in network byte order) as native integers on a little-endian
// host (x86, ARM), where the last byte weighs most. Among addresses of one
// /24 (or one IPv6 /120) it is the numeric order.
func PreferredSource(a, b netip.Addr) bool {
	x, y := a.Unmap().As16(), b.Unmap().As16()
	for i := len(x) - 1; i >= 0; i-- {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return false
}

// yieldsTie reports whether a MASTER yields to r, an advert equal to its
// own. FreeBSD's rule (yield) when the source of r's family is not known.
// In a vhid with IPv4 and IPv6 addresses the IPv4 adverts decide, the
// orders of the two families' sources may differ: an equal IPv6 advert
// leaves a MASTER with a known IPv4 source as it is.
func (m *Machine) yieldsTie(r Received) bool {
	if r.Family == IPv6 && m.families[IPv4] && m.cfg.Source4.IsValid() {
		return false
	}
	own := m.ownSource(r.Family)
	if !own.IsValid() || !r.Src.IsValid() {
		return true
	}
	return PreferredSource(r.Src, own)
}

// ownSource is this host's source of the adverts of family f, if known.
func (m *Machine) ownSource(f Family) netip.Addr {
	if f == IPv6 {
		return m.cfg.Source6
	}
	return m.cfg.Source4
}

func interval(advbase, advskew uint8) time.Duration {
	return time.Duration(advbase)*time.Second + time.Duration(advskew)*time.Second/256
}

// rank orders (advbase, advskew) pairs as FreeBSD compares timevals: lower
// is better (more frequent).
func rank(advbase, advskew int) int { return advbase*256 + advskew }

// NextDeadline returns the earliest time at which the machine wants a Tick,
// or the zero time if it waits for nothing.
func (m *Machine) NextDeadline() time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	consider(m.adTimer)
	consider(m.annTimer)
	consider(m.leaveTimer)
	for _, t := range m.mdTimer {
		consider(t)
	}
	return next
}

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
		// a worse advert queued while it stood still, a demotion) nor
		// announces. As a BACKUP it hears the new master and stays,
		// or preempts by the ordinary rule, or times out and takes
		// over again when nobody did.
		out = m.becomeBackup(now, ReasonStalled, out)
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
		if m.leaving {
			break
		}
		if m.state == Init {
			reason := ReasonInit
			if ev.Again {
				reason = ReasonLinkUp
			}
			out = m.becomeBackup(now, reason, out)
		}
	case LinkDown:
		m.linkUp = false
		if m.ifDownDemote == 0 && m.cfg.IfDownDemotion != 0 {
			m.ifDownDemote = m.cfg.IfDownDemotion
			out = append(out, Demote{Delta: m.cfg.IfDownDemotion, Source: DemoteIfDown, Reason: "interface down"})
		}
		if m.leaving && !m.releasing {
			return m.leave(now, out)
		}
		// A release in progress ends here: the link is gone.
		m.leaving, m.releasing = false, false
		if m.state != Init {
			out = m.setState(Init, ReasonLinkDown, out)
			out = append(out, HoldAddresses{Hold: false})
			m.stopTimers()
		}
	case Tick:
		out = m.tick(now, out)
	case Received:
		out = m.receive(now, ev, out)
	case Force:
		out = m.force(now, ev.State, out)
	case SetDemotion:
		out = m.setDemotion(now, ev.Demotion, out)
	case Shutdown:
		if m.state == Master && !m.leaving {
			// Make before break: bow out, but keep answering for the
			// addresses until the new master is heard (or LeaveTimeout).
			out = m.appendAdvert(out, now, BowOutAdvBase, BowOutAdvSkew)
			m.stopTimers()
			m.leaving, m.heardNew = true, false
			m.leaveTimer = now.Add(m.LeaveTimeout())
			return out
		}
		m.releasing = false // leaving for good now
		if !m.leaving {
			out = m.leave(now, out)
		}
	case SendResult:
		out = m.sendResult(ev.Err, out)
	case Release:
		m.released = ev.On
		if ev.On && m.state == Master && !m.leaving {
			// As a shutdown's bow-out, but to BACKUP.
			out = m.appendAdvert(out, now, BowOutAdvBase, BowOutAdvSkew)
			m.stopTimers()
			m.leaving, m.releasing, m.heardNew = true, true, false
			m.leaveTimer = now.Add(m.LeaveTimeout())
		}
	}
	return out
}

// LeaveTimeout is how long a master that bowed out keeps its addresses
// while no new master is heard: a peer's master-down interval at most
// (3*advbase + 255/256 s), so that a peer that ignores the bow-out advert
// still takes over before the addresses go.
func (m *Machine) LeaveTimeout() time.Duration {
	return 3*time.Duration(m.cfg.AdvBase)*time.Second + time.Second
}

// HandOverHold is how long a master that bowed out keeps its addresses
// after it heard the new master: the new master may send its first advert
// before its gratuitous ARP or unsolicited neighbour advertisement
// (FreeBSD's carp, keepalived and ucarp do; carpd announces first), and a
// client's packet sent to the old master's MAC meanwhile must still find
// the address there. Measured on a loaded 2-core machine: keepalived's
// gratuitous ARP came 0.12 to 1.18 ms after its first advert in 24 of 25
// stops, 14.2 ms once (TestKeepalivedNewMasterHold); carpd's own, when
// it still announced after its advert, 0.4 to 6.8 ms (median 0.8 ms, 40
// hand-overs under systemd). Both hosts hold the addresses for that long:
// the old one answers for them until the neighbours have moved. The
// overlap of two holders in a planned hand-over grows by as much (the
// e2e tests' maxOverlap, 50 ms, allows it).
const HandOverHold = 10 * time.Millisecond

// heardNewMaster notes, while leaving, that the new master was heard: the
// addresses go HandOverHold later (or at the leave timeout, if sooner).
func (m *Machine) heardNewMaster(now time.Time) {
	if m.heardNew {
		return
	}
	m.heardNew = true
	if t := now.Add(HandOverHold); t.Before(m.leaveTimer) {
		m.leaveTimer = t
	}
}

// Left reports whether a Shutdown has completed: the addresses are released
// and nothing more will be sent.
func (m *Machine) Left() bool { return m.state == Init && !m.leaving }

func (m *Machine) leave(now time.Time, out []Action) []Action {
	m.leaving = false
	if m.releasing {
		m.releasing = false
		return m.becomeBackup(now, ReasonReleased, out)
	}
	m.stopTimers()
	if m.state != Init {
		out = m.setState(Init, ReasonShutdown, out)
		out = append(out, HoldAddresses{Hold: false})
	}
	return out
}

// sendResult counts consecutive send errors and successes: 3 errors in a
// row demote the vhid, 3 successes after that lift it (FreeBSD).
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
	m.leaveTimer = time.Time{}
	m.adTimer = time.Time{}
	m.annTimer = time.Time{}
	m.annRepeat = 0
	m.mdTimer = [numFamilies]time.Time{}
}

func (m *Machine) setState(s State, reason string, out []Action) []Action {
	if s == m.state {
		return out
	}
	out = append(out, Transition{From: m.state, To: s, Reason: reason})
	m.state = s
	return out
}

// becomeBackup enters BACKUP: addresses released, master-down timers of
// every family started.
func (m *Machine) becomeBackup(now time.Time, reason string, out []Action) []Action {
	out = m.setState(Backup, reason, out)
	out = append(out, HoldAddresses{Hold: false})
	m.stopTimers()
	for f := range numFamilies {
		if m.families[f] {
			m.mdTimer[f] = now.Add(m.masterDown())
		}
	}
	return out
}

// becomeMaster enters MASTER (FreeBSD's carp_master_down_locked): the
// addresses taken, an advert at once, the addresses announced, adverts
// scheduled.
func (m *Machine) becomeMaster(now time.Time, reason string, out []Action) []Action {
	out = m.setState(Master, reason, out)
	m.stopTimers()
	// The addresses first: a master that bowed out releases its own when
	// it hears this advert (make before break).
	out = append(out, HoldAddresses{Hold: true})
	out = m.appendAdvert(out, now, m.cfg.AdvBase, m.AdvSkew())
	out = append(out, Announce{})
	m.adTimer = now.Add(m.AdvertInterval())
	m.annRepeat = AnnounceRepeats
	m.annTimer = now.Add(AnnounceInterval)
	return out
}

// appendAdvert appends one advert per family the vhid has, with the next
// counter.
func (m *Machine) appendAdvert(out []Action, now time.Time, advbase, advskew uint8) []Action {
	m.counter++
	m.sentAt = now
	a := Advert{VHID: m.cfg.VHID, AdvSkew: advskew, AdvBase: advbase, Counter: m.counter}
	a.Digest = m.filter.auth.Digest(m.counter)
	for f := range numFamilies {
		if m.families[f] {
			out = append(out, SendAdvert{Family: f, Advert: a})
		}
	}
	return out
}

func (m *Machine) tick(now time.Time, out []Action) []Action {
	if m.leaving {
		if !now.Before(m.leaveTimer) {
			out = m.leave(now, out)
		}
		return out
	}
	switch m.state {
	case Master:
		if !m.adTimer.IsZero() && !now.Before(m.adTimer) {
			out = m.appendAdvert(out, now, m.cfg.AdvBase, m.AdvSkew())
			// From the deadline, not from now: the loop's lateness
			// (a millisecond with 255 vhids due at once) must not
			// add up into a longer interval. An advert more than an
			// interval late is not followed by a burst.
			m.adTimer = m.adTimer.Add(m.AdvertInterval())
			if !m.adTimer.After(now) {
				m.adTimer = now.Add(m.AdvertInterval())
			}
		}
		if !m.annTimer.IsZero() && !now.Before(m.annTimer) {
			out = append(out, Announce{})
			m.annRepeat--
			m.annTimer = time.Time{}
			if m.annRepeat > 0 {
				m.annTimer = now.Add(AnnounceInterval)
			}
		}
	case Backup:
		for f, t := range m.mdTimer {
			if !t.IsZero() && !now.Before(t) {
				if m.released {
					m.mdTimer[f] = now.Add(m.masterDown())
					continue
				}
				return m.becomeMaster(now, ReasonTimedOut, out)
			}
		}
	}
	return out
}

// Sent reports whether this machine has sent an advert with counter c
// since it was made (a reload keeps the counter and its range).
func (m *Machine) Sent(c uint64) bool {
	return c-m.first-1 < m.counter-m.first // (first, counter], modulo 2^64
}

// OwnWindow is how many of our last counters may also be a peer's (see
// replayed).
const OwnWindow = 8

// replayed reports whether an advert with counter c (and a right HMAC) is
// one of ours, sent earlier and replayed by another host: c is a counter
// we sent. The last OwnWindow of them may be a peer's, though: FreeBSD
// and ucarp adopt the counter of every advert they accept, so a peer that
// takes over beside us (a split) continues our sequence from the counter
// it heard last, a master-down interval (3 to 4 of our adverts) behind
// ours, and goes on at our pace. Those are heard, if each is greater than
// the last one heard so: a replay of our last adverts is accepted at most
// once each. With replay protection on, every counter we sent is ours
// (its peers are expected not to adopt counters, as carpd does not).
func (m *Machine) replayed(c uint64) bool {
	if !m.Sent(c) {
		return false
	}
	if m.cfg.ReplayProtection || m.counter-c >= OwnWindow || c-m.first <= m.windowed-m.first {
		return true
	}
	m.windowed = c
	return false
}

// fresh runs replay protection (Config.ReplayProtection) on an advert that
// passed every other check, and records it.
func (m *Machine) fresh(now time.Time, r Received) bool {
	c := r.Advert.Counter
	s := m.replaySource(now, r.Src, r.Family)
	// An advert of a sequence already heard, from any source, is a
	// replay; so is an old one of the source's own sequence.
	for i := range m.replay {
		o := &m.replay[i]
		if o.known && o.family == r.Family && c-o.first <= o.last-o.first && (o != s || c <= o.last) {
			return false
		}
	}
	// The least silence of a known source before it may start a new
	// sequence: half an interval more than the one it advertised last
	// (a live source is never that silent), and never less than that of
	// advbase 1 (the advbase of a replayed advert is the attacker's).
	silence := max(s.interval, time.Second) * 3 / 2
	switch {
	case s.known && c > s.last:
		// The sequence goes on.
	case s.pending && c > s.cand && c-s.cand <= ReplayWindow && (!s.known || now.Sub(s.lastAt) >= silence):
		// A new sequence, confirmed: a source restarted, or first heard.
		s.first = s.cand
	default:
		if !s.pending || c <= s.cand || c-s.cand > ReplayWindow {
			s.pending, s.cand = true, c
		}
		return false
	}
	s.known, s.last, s.lastAt, s.pending = true, c, now, false
	s.interval = interval(r.Advert.AdvBase, r.Advert.AdvSkew)
	return true
}

// replaySource returns the replay protection's record of a source, made
// if new; the least recently heard is forgotten when there are too many.
func (m *Machine) replaySource(now time.Time, src netip.Addr, f Family) *replaySource {
	for i := range m.replay {
		if m.replay[i].src == src && m.replay[i].family == f {
			m.replay[i].heardAt = now
			return &m.replay[i]
		}
	}
	if len(m.replay) >= maxReplaySources {
		oldest := 0
		for i := range m.replay {
			if m.replay[i].heardAt.Before(m.replay[oldest].heardAt) {
				oldest = i
			}
		}
		m.replay = slices.Delete(m.replay, oldest, oldest+1)
	}
	m.replay = append(m.replay, replaySource{src: src, family: f, heardAt: now})
	return &m.replay[len(m.replay)-1]
}

// receive runs FreeBSD's carp_input_c checks that belong to a vhid (family,
// TTL, HMAC) and then the state machine.
func (m *Machine) receive(now time.Time, r Received, out []Action) []Action {
	a := r.Advert
	if reason, ok := m.filter.Check(r); !ok {
		return append(out, drop(reason))
	}
	if r.Self || m.replayed(a.Counter) {
		// Our own advert coming back: reflected by a switch (OpenBSD's
		// "replay or network loop"), told by its source, this host's
		// own address; or replayed by another host, told by its
		// counter (see replayed). A master would otherwise yield to
		// its own earlier advert.
		return append(out, drop(DropLoop))
	}
	if m.cfg.ReplayProtection && !m.fresh(now, r) {
		return append(out, drop(DropReplay))
	}
	if m.leaving {
		// A new master speaks (or the bow-out found nobody better):
		// the addresses go HandOverHold from now.
		if a.AdvBase != BowOutAdvBase {
			m.heardNewMaster(now)
		}
		return out
	}
	ours := rank(int(m.cfg.AdvBase), int(m.AdvSkew()))
	theirs := rank(int(a.AdvBase), int(a.AdvSkew))
	switch m.state {
	case Master:
		// OpenBSD: never yield to a master with a higher demote count;
		// always yield to one with a lower count.
		switch {
		case (theirs < ours && a.Demote <= demoteCount) || a.Demote < demoteCount:
			if theirs < ours {
				// Step-down advert: after a partition heals, the better
				// master may speak first, so it would never hear us
				// and never re-announce; this worse advert makes it do
				// so. Peers that are not carpd ignore a worse advert.
				out = m.appendAdvert(out, now, m.cfg.AdvBase, m.AdvSkew())
			}
			out = m.becomeBackup(now, ReasonMoreFrequent, out)
		case theirs == ours && a.Demote == demoteCount && m.yieldsTie(r):
			// An equal master, preferred (or FreeBSD's rule): yield,
			// without a step-down advert, which FreeBSD and OpenBSD,
			// yielding to any equal advert, would yield to as well.
			reason := ReasonTieBreak
			if !m.ownSource(r.Family).IsValid() {
				reason = ReasonMoreFrequent
			}
			out = m.becomeBackup(now, reason, out)
		default:
			// Another master, worse than us or equal and not
			// preferred: a healed partition. It will step down, but
			// the neighbours may still point at it: announce again
			// (ucarp does; FreeBSD does not).
			out = append(out, Announce{})
		}
	case Backup:
		mayPreempt := m.cfg.Preempt && !now.Before(m.started.Add(m.cfg.PreemptDelay))
		switch {
		case m.released:
			m.mdTimer[r.Family] = now.Add(m.masterDown())
		case mayPreempt && ours < theirs && a.Demote >= demoteCount:
			out = m.becomeMaster(now, ReasonPreempt, out)
		case a.Demote > demoteCount:
			// OpenBSD: take over from a master with a higher demote
			// count, whatever preempt says.
			out = m.becomeMaster(now, ReasonDemoted, out)
		case rank(3*int(m.cfg.AdvBase), int(m.AdvSkew())) < theirs:
			out = m.becomeMaster(now, ReasonWillTimeOut, out)
		default:
			m.mdTimer[r.Family] = now.Add(m.masterDown())
		}
	}
	return out
}

// force is `ifconfig ... state master|backup`: not sticky, the protocol
// corrects it. Forcing MASTER acts only from BACKUP, as in FreeBSD.
func (m *Machine) force(now time.Time, s State, out []Action) []Action {
	switch {
	case m.leaving:
		// Bowed out: nothing to force any more.
	case s == Master && m.state == Backup:
		return m.becomeMaster(now, ReasonUser, out)
	case s == Backup && m.state == Master:
		return m.becomeBackup(now, ReasonUser, out)
	}
	return out
}

// setDemotion changes the demotion added to the advertised advskew. A
// master advertises the new value at once.
func (m *Machine) setDemotion(now time.Time, d int, out []Action) []Action {
	old := m.AdvSkew()
	m.demotion = d
	if m.state == Master && !m.leaving && m.AdvSkew() != old {
		out = m.appendAdvert(out, now, m.cfg.AdvBase, m.AdvSkew())
		m.adTimer = now.Add(m.AdvertInterval())
	}
	return out
}

// Reconfigure changes the vhid's configuration in place, for a reload:
// the state, the timers, the advert counter and the demotions in force
// stay. A configuration equal to the current one changes nothing and
// returns no action, so that a reload leaves an unchanged vhid alone. Of
// a changed one, only what changed acts: a MASTER whose adverts change
// (advbase, advskew, addresses, password) advertises at once; a BACKUP
// keeps the time already waited on its master-down timers, which move by
// the change of the interval; a family the vhid gains gets its timer, one
// it loses drops it. The vhid number cannot change.
func (m *Machine) Reconfigure(now time.Time, cfg Config) ([]Action, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("vhid %d: %w", cfg.VHID, err)
	}
	if cfg.VHID != m.cfg.VHID {
		return nil, fmt.Errorf("vhid %d: cannot become vhid %d", m.cfg.VHID, cfg.VHID)
	}
	old := m.cfg
	if sameConfig(old, cfg) {
		return nil, nil
	}
	var out []Action
	if m.stalled(now) {
		// As in AppendStep: no advert of a changed configuration.
		out = m.becomeBackup(now, ReasonStalled, out)
	}
	oldMD := m.masterDown()
	advertChanged := old.AdvBase != cfg.AdvBase || old.AdvSkew != cfg.AdvSkew || old.Password != cfg.Password ||
		!sameAddrs(old.Addrs, cfg.Addrs)
	fresh, err := NewMachine(cfg, 0)
	if err != nil {
		return nil, err
	}
	oldFamilies := m.families
	m.cfg, m.families, m.filter = fresh.cfg, fresh.families, fresh.filter
	if advertChanged || !cfg.ReplayProtection {
		// New HMACs (or no protection): what was learnt is void.
		m.replay = nil
	}
	if m.leaving {
		return out, nil
	}
	switch m.state {
	case Master:
		if advertChanged {
			out = m.appendAdvert(out, now, m.cfg.AdvBase, m.AdvSkew())
			m.adTimer = now.Add(m.AdvertInterval())
		}
	case Backup:
		shift := m.masterDown() - oldMD
		for f := range numFamilies {
			switch {
			case !m.families[f]:
				m.mdTimer[f] = time.Time{}
			case !oldFamilies[f] || m.mdTimer[f].IsZero():
				m.mdTimer[f] = now.Add(m.masterDown())
			default:
				m.mdTimer[f] = m.mdTimer[f].Add(shift)
			}
		}
	}
	return out, nil
}

// sameConfig reports whether two configurations are the same, the order
// of the addresses aside.
func sameConfig(a, b Config) bool {
	return a.VHID == b.VHID && a.AdvBase == b.AdvBase && a.AdvSkew == b.AdvSkew && a.Password == b.Password &&
		a.Preempt == b.Preempt && a.Peer4 == b.Peer4 && a.Peer6 == b.Peer6 && a.PreemptDelay == b.PreemptDelay &&
		a.IfDownDemotion == b.IfDownDemotion && a.SendErrDemotion == b.SendErrDemotion && sameAddrs(a.Addrs, b.Addrs) &&
		a.ReplayProtection == b.ReplayProtection && a.Source4 == b.Source4 && a.Source6 == b.Source6
}

func sameAddrs(a, b []netip.Addr) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.SortFunc(x, netip.Addr.Compare)
	slices.SortFunc(y, netip.Addr.Compare)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
