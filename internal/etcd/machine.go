// Package etcd is carpd's etcd electorate: the holder of a vhid's addresses
// is elected on an etcd cluster rather than by CARP or VRRP adverts.
//
// Machine is the pure decision core (no I/O, no clock reads: the caller
// passes the time of every step); Client is the adapter that does the etcd
// calls (go.etcd.io/etcd/client/v3) and feeds their results back as events;
// Run is a small event loop joining the two, for tests and for a caller
// that wants the decisions only.
//
// The rules (docs in cloud-mode notes, §3.3 and §3.4):
//   - one lease per node, renewed by carpd's own timer (KeepAliveOnce every
//     Renew; Renew/RenewRetryDiv after a renewal that failed, so that after
//     an etcd leader change the first renewal the cluster can answer goes
//     out soon, not up to Renew later); t_s is the time the last
//     acknowledged renewal was sent, and the fence deadline is
//     D = t_s + TTL_granted - Margin;
//   - the holder holds its addresses only while now < D, and releases at D
//     whatever the network does; the addresses' kernel lifetime (Hold.Until)
//     ends before D;
//   - acquiring is the transaction If(CreateRevision(leader) == 0)
//     Then(Put(leader, node, lease)); the leader key's create revision is the
//     tenure;
//   - members keys <prefix><vhid>/members/<node> carry {advskew, demotion,
//     healthy}; when the leader key is absent a candidate campaigns at once
//     if no live member ranks better, else after rank × RankStep (and never
//     sooner than Listen after its own member key was written); a holder
//     with Preempt yields to a better healthy member seen for PreemptDelay;
//     an unhealthy node (its link down, released by a check) yields at
//     once to a healthy member, whatever Preempt, and does not campaign
//     while one is seen (it still holds when it is the only candidate);
//     a yield releases first, then deletes the leader key guarded by the
//     tenure (break before make);
//   - a planned stop releases, then deletes the leader key guarded by the
//     tenure, then revokes the lease.
package etcd

import (
	"fmt"
	"time"
)

// Config is a Machine's configuration; Validate checks it.
type Config struct {
	Node         string        // this node's name: the leader key's value
	AdvSkew      int           // 0..254; lower ranks better
	Preempt      bool          // the holder yields to a better healthy member
	PreemptDelay time.Duration // how long a better member must be seen first
	Renew        time.Duration // the lease renewal period
	Margin       time.Duration // the fence margin M: D = t_s + TTL - M
	RankStep     time.Duration // campaign delay per better-ranked live member
	Retry        time.Duration // wait before another Grant after a failure
	// Listen is how long after its own member key was first written (at
	// start, after a new lease) a node waits before its first campaign,
	// so that the members starting with it are seen and ranked; 0 means
	// RankStep.
	Listen time.Duration
}

// RenewRetryDiv divides Renew into the wait before another renewal after
// one that failed (no leader, a timeout, a connection lost): Renew/4, 200 ms
// at the 4 s TTL's 800 ms renewals. While etcd has no leader each try is
// answered at once (RequireLeader), so the retries cost little.
const RenewRetryDiv = 4

// DefaultRankStep is the campaign delay per better member.
const DefaultRankStep = 500 * time.Millisecond

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Node == "":
		return fmt.Errorf("etcd: empty node name")
	case !ValidNode(c.Node):
		return fmt.Errorf("etcd: bad node name %q", c.Node)
	case c.AdvSkew < 0 || c.AdvSkew > 254:
		return fmt.Errorf("etcd: advskew %d out of 0..254", c.AdvSkew)
	case c.Renew <= 0:
		return fmt.Errorf("etcd: renew period must be positive")
	case c.Margin <= 0:
		return fmt.Errorf("etcd: fence margin must be positive")
	case c.PreemptDelay < 0 || c.RankStep < 0 || c.Retry < 0 || c.Listen < 0:
		return fmt.Errorf("etcd: negative delay")
	}
	return nil
}

// ValidNode reports whether s can be a node name: 1..253 printable ASCII
// characters without '/'.
func ValidNode(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == '/' {
			return false
		}
	}
	return true
}

// Member is what a node publishes in its member key.
type Member struct {
	AdvSkew  int  `json:"advskew"`
	Demotion int  `json:"demotion"`
	Healthy  bool `json:"healthy"`
}

// Leader is the leader key as read: Present false when it is absent.
type Leader struct {
	Present   bool
	Node      string // "" when the value is not a valid node name
	CreateRev int64  // the tenure
	Lease     int64
}

// better reports whether member a (named an) ranks before b (named bn):
// healthy first, then the lower advskew + demotion, then the lower name.
func better(an string, a Member, bn string, b Member) bool {
	if a.Healthy != b.Healthy {
		return a.Healthy
	}
	if sa, sb := a.AdvSkew+a.Demotion, b.AdvSkew+b.Demotion; sa != sb {
		return sa < sb
	}
	return an < bn
}

// Event is an input to Machine.Step.
type Event interface{ isEvent() }

// Start starts the machine: it asks for a lease.
type Start struct{}

// Tick says NextDeadline has passed.
type Tick struct{}

// Granted is a lease grant: Sent is when the Grant request was sent, TTL
// the TTL granted.
type Granted struct {
	ID   int64
	TTL  time.Duration
	Sent time.Time
}

// GrantFailed says a Grant failed.
type GrantFailed struct{ Err error }

// Renewed is an acknowledged KeepAliveOnce of lease ID, sent at Sent; TTL
// is the TTL the server set.
type Renewed struct {
	ID   int64
	TTL  time.Duration
	Sent time.Time
}

// RenewFailed is a renewal that failed; Gone says the server answered that
// the lease does not exist (it expired), anything else is an error with no
// answer (timeout, no quorum, no connection).
type RenewFailed struct {
	ID   int64
	Gone bool
	Err  error
}

// MemberPut says the own member key was written (Err nil) or not.
type MemberPut struct{ Err error }

// View is the vhid's keys as read (a linearizable Get) or as updated by the
// watch: the leader key and the valid member keys, at revision Rev.
type View struct {
	Rev     int64
	Leader  Leader
	Members map[string]Member
}

// Campaigned is the result of the acquire transaction: Won with the
// tenure (the leader key's create revision), or lost, or Err when no
// answer came (the watch then tells whether it was written).
type Campaigned struct {
	Lease  int64
	Won    bool
	Tenure int64
	Err    error
}

// Resigned is the result of the guarded delete of the leader key.
type Resigned struct{ Err error }

// SetHealth sets the own demotion and health, published in the member key.
type SetHealth struct {
	Demotion int
	Healthy  bool
}

// Stop is a planned stop: release, delete the leader key guarded by the
// tenure, revoke the lease.
type Stop struct{}

// Reconfigure changes the ranking of a running machine (a reload): its
// advskew (published in the member key at once), Preempt and
// PreemptDelay. The rest of a Config comes from the [etcd] table, which
// a running machine keeps.
type Reconfigure struct {
	AdvSkew      int
	Preempt      bool
	PreemptDelay time.Duration
}

func (Start) isEvent()       {}
func (Tick) isEvent()        {}
func (Granted) isEvent()     {}
func (GrantFailed) isEvent() {}
func (Renewed) isEvent()     {}
func (RenewFailed) isEvent() {}
func (MemberPut) isEvent()   {}
func (View) isEvent()        {}
func (Campaigned) isEvent()  {}
func (Resigned) isEvent()    {}
func (SetHealth) isEvent()   {}
func (Stop) isEvent()        {}
func (Reconfigure) isEvent() {}

// Action is an output of Machine.Step, for the adapter or the caller.
type Action interface{ isAction() }

// Grant asks the adapter for a new lease of the configured TTL.
type Grant struct{}

// Renew asks for one KeepAliveOnce of lease ID; the adapter stamps the
// send time and answers Renewed or RenewFailed.
type Renew struct{ ID int64 }

// PutMember writes the own member key under lease ID.
type PutMember struct {
	ID     int64
	Member Member
}

// Campaign runs the acquire transaction with lease ID.
type Campaign struct{ ID int64 }

// Resign deletes the leader key if its create revision is still Tenure.
type Resign struct{ Tenure int64 }

// Revoke revokes lease ID (the member key goes with it).
type Revoke struct{ ID int64 }

// Hold is the decision about the addresses: On, hold them until Until (D,
// the fence deadline; their kernel lifetime must end before it), repeated
// with a later Until at each renewal; off, release them now. Reason says
// why, for logs.
type Hold struct {
	On     bool
	Until  time.Time
	Tenure int64
	Reason string
}

// Observe says who holds the leader key now (Node "" and Tenure 0: nobody),
// for status and logs.
type Observe struct {
	Node   string
	Tenure int64
}

func (Grant) isAction()     {}
func (Renew) isAction()     {}
func (PutMember) isAction() {}
func (Campaign) isAction()  {}
func (Resign) isAction()    {}
func (Revoke) isAction()    {}
func (Hold) isAction()      {}
func (Observe) isAction()   {}

// Reasons of Hold actions.
const (
	ReasonWon       = "won the election"
	ReasonRenewed   = "lease renewed"
	ReasonFence     = "fence deadline reached"
	ReasonLeaseGone = "lease expired on the server"
	ReasonLostKey   = "leader key no longer ours"
	ReasonPreempted = "a better member preempts"
	ReasonUnhealthy = "unhealthy, a healthy member takes over"
	ReasonStop      = "planned stop"
)

// Machine is the election of one vhid on one node.
type Machine struct {
	cfg Config

	started, stopped bool
	own              Member

	lease     int64
	ttl       time.Duration
	deadline  time.Time // D; zero without an acknowledged renewal
	lastSent  time.Time // t_s of the last acknowledged renewal
	nextRenew time.Time
	renewing  bool
	granting  bool
	nextGrant time.Time

	memberDirty bool // the own member key needs writing
	memberOut   bool // a PutMember is in flight

	view       View
	haveView   bool
	absentAt   time.Time // when the leader key was first seen absent
	campaignAt time.Time // when the pending campaign is due (for NextDeadline)
	retryAt    time.Time // no campaign before (after a lost or failed one)
	memberAt   time.Time // when the own member key was first written under this lease
	campaining bool      // a Campaign is in flight

	tenure   int64 // create revision of our leader key; 0: not ours
	holding  bool  // the addresses are held (a Hold On is in force)
	observed Leader

	preemptAt time.Time

	resigned      int64 // the last tenure given up: never adopted again
	resignPending int64 // a tenure whose guarded delete is to be done
	resignOut     bool  // a Resign is in flight
}

// NewMachine returns a machine for cfg.
func NewMachine(cfg Config) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RankStep == 0 {
		cfg.RankStep = DefaultRankStep
	}
	if cfg.Listen == 0 {
		cfg.Listen = cfg.RankStep
	}
	if cfg.Retry == 0 {
		cfg.Retry = cfg.Renew
	}
	return &Machine{cfg: cfg, own: Member{AdvSkew: cfg.AdvSkew, Healthy: true}}, nil
}

// Holding reports whether the addresses are held.
func (m *Machine) Holding() bool { return m.holding }

// Tenure returns the create revision of the leader key while this node
// holds it, else 0.
func (m *Machine) Tenure() int64 { return m.tenure }

// Deadline returns D, the fence deadline (zero before the first
// acknowledged renewal).
func (m *Machine) Deadline() time.Time { return m.deadline }

// AdvSkew returns the configured advskew.
func (m *Machine) AdvSkew() int { return m.cfg.AdvSkew }

// Config returns the machine's configuration, its defaults filled in.
func (m *Machine) Config() Config { return m.cfg }

// Healthy reports whether the node publishes itself healthy.
func (m *Machine) Healthy() bool { return m.own.Healthy }

// reconfigure takes a reload's ranking; a new advskew is published.
func (m *Machine) reconfigure(r Reconfigure) {
	if r.AdvSkew < 0 || r.AdvSkew > 254 || r.PreemptDelay < 0 {
		return // Validate refused it when the reload built its Config
	}
	m.cfg.Preempt, m.cfg.PreemptDelay = r.Preempt, r.PreemptDelay
	if !m.cfg.Preempt {
		m.preemptAt = time.Time{}
	}
	if r.AdvSkew != m.cfg.AdvSkew {
		m.cfg.AdvSkew, m.own.AdvSkew = r.AdvSkew, r.AdvSkew
		m.memberDirty = true
		m.preemptAt = time.Time{}
	}
}

// Lease returns the lease ID (0: none).
func (m *Machine) Lease() int64 { return m.lease }

// NextDeadline returns the earliest time at which the machine wants a Tick,
// or the zero time if it waits for nothing.
func (m *Machine) NextDeadline() time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if m.stopped {
		return next
	}
	if m.holding {
		consider(m.deadline)
	}
	if m.lease != 0 && !m.renewing {
		consider(m.nextRenew)
	}
	if m.lease == 0 && !m.granting {
		consider(m.nextGrant)
	}
	consider(m.campaignAt)
	consider(m.preemptAt)
	return next
}

// Step feeds one event to the machine at time now and returns what the
// caller must do, in order.
func (m *Machine) Step(now time.Time, ev Event) []Action {
	if m.stopped {
		return nil
	}
	var out []Action
	switch ev := ev.(type) {
	case Start:
		if !m.started {
			m.started = true
			m.nextGrant = now
		}
	case Tick:
	case Granted:
		m.granted(now, ev)
	case GrantFailed:
		m.granting = false
		m.nextGrant = now.Add(m.cfg.Retry)
	case Renewed:
		if ev.ID == m.lease {
			m.renewing = false
			prev := m.deadline
			m.acknowledged(ev.Sent, ev.TTL)
			if m.holding && m.deadline.After(prev) && now.Before(m.deadline) {
				out = append(out, Hold{On: true, Until: m.deadline, Tenure: m.tenure, Reason: ReasonRenewed})
			}
		}
	case RenewFailed:
		if ev.ID == m.lease {
			m.renewing = false
			if ev.Gone {
				out = m.leaseGone(now, out)
			} else if retry := now.Add(m.cfg.Renew / RenewRetryDiv); retry.Before(m.nextRenew) {
				m.nextRenew = retry
			}
		}
	case MemberPut:
		m.memberOut = false
		switch {
		case ev.Err != nil:
			m.memberDirty = true
		case m.memberAt.IsZero() && m.lease != 0:
			m.memberAt = now
		}
	case View:
		out = m.viewed(now, ev, out)
	case Campaigned:
		m.campaining = false
		if ev.Won && ev.Lease == m.lease && m.lease != 0 {
			m.tenure = ev.Tenure
		} else {
			// Lost (the watch shows the winner soon) or no answer:
			// not again before a rank step.
			m.retryAt = now.Add(m.cfg.RankStep)
		}
	case Resigned:
		m.resignOut = false
		if ev.Err == nil {
			m.resignPending = 0
		}
	case SetHealth:
		if m.own.Demotion != ev.Demotion || m.own.Healthy != ev.Healthy {
			m.own.Demotion, m.own.Healthy = ev.Demotion, ev.Healthy
			m.memberDirty = true
		}
	case Reconfigure:
		m.reconfigure(ev)
	case Stop:
		return m.stop(out)
	}
	return m.settle(now, out)
}

func (m *Machine) granted(now time.Time, ev Granted) {
	m.granting = false
	if m.lease != 0 || ev.ID == 0 {
		return
	}
	m.lease = ev.ID
	m.deadline, m.lastSent = time.Time{}, time.Time{}
	m.acknowledged(ev.Sent, ev.TTL)
	m.nextRenew = ev.Sent.Add(m.cfg.Renew)
	m.memberDirty = true
}

// acknowledged records a renewal sent at sent that the server acknowledged
// with ttl: D moves to sent + ttl - margin, never back.
func (m *Machine) acknowledged(sent time.Time, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	m.ttl = ttl
	d := sent.Add(ttl - m.cfg.Margin)
	if d.After(m.deadline) {
		m.deadline, m.lastSent = d, sent
	}
}

// leaseGone: the server says the lease expired. Everything under it is
// gone; the addresses go now and a new lease is asked for.
func (m *Machine) leaseGone(now time.Time, out []Action) []Action {
	if m.holding {
		out = m.release(ReasonLeaseGone, out)
	}
	m.lease, m.tenure = 0, 0
	m.deadline, m.lastSent = time.Time{}, time.Time{}
	m.nextGrant = now
	m.memberOut, m.memberAt = false, time.Time{}
	return out
}

func (m *Machine) viewed(now time.Time, v View, out []Action) []Action {
	if m.haveView && v.Rev < m.view.Rev {
		return out // an older read than the one applied
	}
	m.view, m.haveView = v, true
	l := v.Leader
	if !l.Present {
		if m.absentAt.IsZero() {
			m.absentAt = now
		}
	} else {
		m.absentAt, m.campaignAt = time.Time{}, time.Time{}
	}
	mine := l.Present && m.lease != 0 && l.Lease == m.lease && l.Node == m.cfg.Node
	switch {
	case mine && m.tenure == 0 && l.CreateRev != m.resigned:
		// A Campaign whose answer was lost did write the key.
		m.tenure = l.CreateRev
	case !mine && m.tenure != 0:
		if m.holding {
			out = m.release(ReasonLostKey, out)
		}
		m.tenure = 0
	}
	if m.resignPending != 0 && (!l.Present || l.CreateRev != m.resignPending) {
		m.resignPending = 0
	}
	if l.Present != m.observed.Present || l.Node != m.observed.Node || l.CreateRev != m.observed.CreateRev {
		m.observed = l
		out = append(out, Observe{Node: l.Node, Tenure: l.CreateRev})
	}
	return out
}

// settle acts on the state after an event: renew, grant, write the member
// key, fence, campaign, preempt.
func (m *Machine) settle(now time.Time, out []Action) []Action {
	if !m.started {
		return out
	}
	if m.lease == 0 {
		if !m.granting && !m.nextGrant.IsZero() && !now.Before(m.nextGrant) {
			m.granting = true
			out = append(out, Grant{})
		}
		return out
	}
	if !m.renewing && !now.Before(m.nextRenew) {
		m.renewing = true
		m.nextRenew = now.Add(m.cfg.Renew)
		out = append(out, Renew{ID: m.lease})
	}
	if m.memberDirty && !m.memberOut {
		m.memberDirty, m.memberOut = false, true
		out = append(out, PutMember{ID: m.lease, Member: m.own})
	}
	live := now.Before(m.deadline)
	switch {
	case m.holding && !live:
		out = m.release(ReasonFence, out)
	case m.holding:
		out = m.preempt(now, out)
	case m.tenure != 0 && live:
		m.holding = true
		out = append(out, Hold{On: true, Until: m.deadline, Tenure: m.tenure, Reason: ReasonWon})
	case m.tenure == 0 && live:
		out = m.campaign(now, out)
	}
	if m.resignPending != 0 && !m.resignOut {
		m.resignOut = true
		out = append(out, Resign{Tenure: m.resignPending})
	}
	return out
}

// release gives the addresses up now.
func (m *Machine) release(reason string, out []Action) []Action {
	m.holding = false
	m.preemptAt = time.Time{}
	return append(out, Hold{On: false, Tenure: m.tenure, Reason: reason})
}

// campaign decides whether to run the acquire transaction now.
func (m *Machine) campaign(now time.Time, out []Action) []Action {
	m.campaignAt = time.Time{}
	if !m.haveView || m.view.Leader.Present || m.campaining || m.resignPending != 0 || m.memberAt.IsZero() {
		return out
	}
	if !m.own.Healthy && m.rankHealthy() > 0 {
		return out // a healthy member takes it; a new view brings this back
	}
	// Rank × step after the key went absent, or after Listen past the
	// own member key's first write if that is later, so that the members
	// that started with this one are seen and ranked (CARP too listens
	// before it takes over).
	due := m.absentAt
	if t := m.memberAt.Add(m.cfg.Listen); t.After(due) {
		due = t
	}
	due = due.Add(time.Duration(m.rank()) * m.cfg.RankStep)
	if m.retryAt.After(due) {
		due = m.retryAt
	}
	if now.Before(due) {
		m.campaignAt = due
		return out
	}
	m.campaining = true
	return append(out, Campaign{ID: m.lease})
}

// rank counts the live members that rank better than this node.
func (m *Machine) rank() int {
	n := 0
	for name, mb := range m.view.Members {
		if name != m.cfg.Node && better(name, mb, m.cfg.Node, m.own) {
			n++
		}
	}
	return n
}

// preempt: a holder yields (releases, then resigns) to a better healthy
// member: at once when it is unhealthy itself, whatever Preempt; with
// Preempt, once that member has been seen for PreemptDelay.
func (m *Machine) preempt(now time.Time, out []Action) []Action {
	if m.rankHealthy() == 0 {
		m.preemptAt = time.Time{}
		return out
	}
	if !m.own.Healthy {
		return m.yield(ReasonUnhealthy, out)
	}
	if !m.cfg.Preempt {
		m.preemptAt = time.Time{}
		return out
	}
	if m.preemptAt.IsZero() {
		m.preemptAt = now.Add(m.cfg.PreemptDelay)
	}
	if now.Before(m.preemptAt) {
		return out
	}
	return m.yield(ReasonPreempted, out)
}

// yield releases the addresses, then has the leader key deleted guarded
// by the tenure (settle asks for the Resign after the Hold off).
func (m *Machine) yield(reason string, out []Action) []Action {
	out = m.release(reason, out)
	m.resigned, m.resignPending, m.tenure = m.tenure, m.tenure, 0
	return out
}

func (m *Machine) rankHealthy() int {
	n := 0
	for name, mb := range m.view.Members {
		if name != m.cfg.Node && mb.Healthy && better(name, mb, m.cfg.Node, m.own) {
			n++
		}
	}
	return n
}

func (m *Machine) stop(out []Action) []Action {
	m.stopped = true
	if m.holding {
		out = m.release(ReasonStop, out)
	}
	if m.tenure != 0 {
		out = append(out, Resign{Tenure: m.tenure})
		m.tenure = 0
	}
	if m.lease != 0 {
		out = append(out, Revoke{ID: m.lease})
	}
	return out
}
