package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
)

// This file is what an operator sees and changes: the status and counters
// of the vhids, the sources of the demotion, forced states, the event
// stream and the persistent maintenance demotion. Every call goes through
// the event loop (do).

// vhostStats are one vhid's counters and history, owned by the loop.
type vhostStats struct {
	sent, received   [2]uint64 // by family
	sendFailed       uint64
	transitions      map[transitionKey]uint64
	announcements    uint64
	restores         uint64
	lastChange       *api.Transition
	masterSince      time.Time
	transitionsTotal uint64
	// heard is the last valid advert from another host (when heardOK),
	// from heardSrc: recorded in place, its Source string made once per
	// source, so that an advert heard allocates nothing.
	heard    api.Heard
	heardSrc netip.Addr
	heardOK  bool
}

// setHeard records h, an advert heard from src.
func (st *vhostStats) setHeard(src netip.Addr, h api.Heard) {
	if st.heardOK && src == st.heardSrc {
		h.Source = st.heard.Source
	} else {
		h.Source = src.String()
	}
	st.heard, st.heardSrc, st.heardOK = h, src, true
}

// lastHeard returns a copy of the last advert heard, nil if none.
func (st *vhostStats) lastHeard() *api.Heard {
	if !st.heardOK {
		return nil
	}
	h := st.heard
	return &h
}

type transitionKey struct{ to, reason string }

// ifaceCounters are one interface's drop and receive counters, written by
// the socket readers and the loop.
type ifaceCounters struct {
	drops    [carp.NumDropReasons]atomic.Uint64
	received [2]atomic.Uint64 // datagrams, by family
	dropLogs [carp.NumDropReasons]dropLog
	// VRRP's, of the datagrams that went to VRRP (version 3 on an
	// interface with VRRP instances).
	vrrpDrops    [numVRRPDrops]atomic.Uint64
	vrrpReceived [2]atomic.Uint64
	vrrpDropLogs [numVRRPDrops]dropLog
}

// demotionKey names one source of demotion.
type demotionKey struct {
	source string
	v      *vhost // for the sources of a vhid
}

type demotionEntry struct {
	delta  int
	reason string
	since  time.Time
}

// The operator's demotion sources.
const (
	sourceOperator   = "operator"
	sourcePersistent = "operator (persistent)"
)

// ErrUnknownVHID is returned for a vhid that is not configured.
var ErrUnknownVHID = errors.New("no such vhid")

// ErrBadRequest wraps the errors of a request that makes no sense.
var ErrBadRequest = errors.New("bad request")

// Status returns the state of every vhid and of the demotion.
func (d *Daemon) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	err := d.do(ctx, func(now time.Time) { st = d.status(now) })
	return st, err
}

func (d *Daemon) status(now time.Time) api.Status {
	st := api.Status{Version: api.Version, Demotion: d.demotion, Demotions: []api.Demotion{}, VHIDs: []api.VHID{}}
	for k, e := range d.demotions {
		dm := api.Demotion{Source: k.source, Delta: e.delta, Reason: e.reason, Since: e.since}
		if k.v != nil {
			dm.VHID, dm.Interface = int(k.v.cfg.VHID), k.v.cfg.Interface
		}
		st.Demotions = append(st.Demotions, dm)
	}
	sort.Slice(st.Demotions, func(i, j int) bool {
		a, b := st.Demotions[i], st.Demotions[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.Interface != b.Interface {
			return a.Interface < b.Interface
		}
		return a.VHID < b.VHID
	})
	for _, v := range d.vhosts {
		st.VHIDs = append(st.VHIDs, d.vhidStatus(now, v))
	}
	st.Checks = d.checkStatus()
	return st
}

func (d *Daemon) vhidStatus(now time.Time, v *vhost) api.VHID {
	s := api.VHID{
		Interface: v.cfg.Interface, VHID: int(v.cfg.VHID), Protocol: v.proto(),
		State: v.state().String(), Demotion: d.demotionOf(v), Released: v.releases > 0,
		LastChange: v.stats.lastChange, Heard: v.stats.lastHeard(),
	}
	if v.vm != nil {
		c := v.vm.Config()
		s.Family = afName(v.fam)
		s.Priority, s.AdvertisedPriority = int(c.Priority), int(v.vm.Priority())
		s.Interval, s.MasterAdverInterval = int(c.Interval), int(v.vm.MasterAdverInterval())
		s.Preempt, s.TieBreak = c.Preempt, c.TieBreak
		s.Peer = carp.Group(v.fam).String()
		if c.PrimaryIP.IsValid() {
			s.PrimaryAddress = c.PrimaryIP.String()
		}
	} else {
		peer := func(f carp.Family) string {
			if p := v.m.Peer(f); p.IsValid() {
				return p.String()
			}
			return carp.Group(f).String()
		}
		s.AdvBase, s.AdvSkew, s.AdvertisedSkew = int(v.cfg.AdvBase), int(v.cfg.AdvSkew), int(v.m.AdvSkew())
		s.Peer, s.Peer6 = peer(carp.IPv4), peer(carp.IPv6)
	}
	s.Addresses = d.shownAddresses(v)
	if v.state() == carp.Master && !v.stats.masterSince.IsZero() {
		t := v.stats.masterSince
		s.MasterSince = &t
	}
	s.Why = d.why(v)
	c := &s.Counters
	c.SentInet, c.SentInet6 = v.stats.sent[carp.IPv4], v.stats.sent[carp.IPv6]
	c.SendFailed = v.stats.sendFailed
	c.ReceivedInet, c.ReceivedInet6 = v.stats.received[carp.IPv4], v.stats.received[carp.IPv6]
	c.Transitions = v.stats.transitionsTotal
	c.Announcements, c.AddressRestores = v.stats.announcements, v.stats.restores
	for k, n := range v.stats.transitions {
		c.TransitionsByKind = append(c.TransitionsByKind, api.TransitionCount{To: k.to, Reason: k.reason, Count: n})
	}
	sort.Slice(c.TransitionsByKind, func(i, j int) bool {
		a, b := c.TransitionsByKind[i], c.TransitionsByKind[j]
		return a.To+a.Reason < b.To+b.Reason
	})
	return s
}

// why says in words why v is in its state.
func (d *Daemon) why(v *vhost) string {
	if v.state() == carp.Init {
		if !v.iface.link.Up {
			return fmt.Sprintf("INIT: %s is not up and running", v.cfg.Interface)
		}
		if d.leaving {
			return "INIT: carpd is leaving"
		}
		return "INIT"
	}
	if v.vm != nil {
		return d.whyVRRP(v)
	}
	ours := v.m.AdvSkew()
	h := v.stats.lastHeard()
	switch v.m.State() {
	case carp.Backup:
		if h == nil {
			return fmt.Sprintf("BACKUP: no master heard yet; takes over after %v without one (advbase %d advskew %d)",
				v.m.MasterDownInterval(), v.cfg.AdvBase, ours)
		}
		return fmt.Sprintf("BACKUP: master %s advertises advbase %d advskew %d, ours %d", h.Source, h.AdvBase, h.AdvSkew, ours)
	default:
		if d.leaving {
			return fmt.Sprintf("MASTER: bowed out, holding the addresses until a new master is heard (advskew %d)", ours)
		}
		if h != nil {
			return fmt.Sprintf("MASTER: advertising advbase %d advskew %d; last heard %s with advbase %d advskew %d",
				v.cfg.AdvBase, ours, h.Source, h.AdvBase, h.AdvSkew)
		}
		return fmt.Sprintf("MASTER: advertising advbase %d advskew %d; no other host heard", v.cfg.AdvBase, ours)
	}
}

// whyVRRP is why for a VRRP instance, in its words: priorities and
// intervals (centiseconds).
func (d *Daemon) whyVRRP(v *vhost) string {
	m := v.vm
	ours := m.Priority()
	h := v.stats.lastHeard()
	if m.State() == carp.Backup {
		if h == nil {
			return fmt.Sprintf("BACKUP: no master heard yet; takes over after %v without one (priority %d)", m.MasterDownInterval(), ours)
		}
		return fmt.Sprintf("BACKUP: master %s advertises priority %d interval %d, ours %d; takes over after %v without it",
			h.Source, h.Priority, h.Interval, ours, m.MasterDownInterval())
	}
	if d.leaving {
		return "MASTER: resigned (priority 0), holding the addresses until a new master is heard"
	}
	if h != nil {
		return fmt.Sprintf("MASTER: advertising priority %d interval %d; last heard %s with priority %d interval %d",
			ours, m.Config().Interval, h.Source, h.Priority, h.Interval)
	}
	return fmt.Sprintf("MASTER: advertising priority %d interval %d; no other router heard", ours, m.Config().Interval)
}

// Stats returns the host's counters.
func (d *Daemon) Stats(ctx context.Context) (api.Stats, error) {
	var st api.Stats
	err := d.do(ctx, func(time.Time) { st = d.stats.snapshot(d) })
	return st, err
}

func (c *counters) snapshot(d *Daemon) api.Stats {
	st := api.Stats{Version: api.Version}
	drops := map[carp.DropReason]uint64{}
	for _, ifc := range d.ifaces {
		ic := ifc.counters
		st.ReceivedInet += ic.received[carp.IPv4].Load()
		st.ReceivedInet6 += ic.received[carp.IPv6].Load()
		byReason := map[string]uint64{}
		for r := carp.DropReason(1); r < carp.NumDropReasons; r++ {
			n := ic.drops[r].Load()
			drops[r] += n
			byReason[r.String()] = n
		}
		st.DropsByInterface = append(st.DropsByInterface, api.InterfaceDrops{Interface: ifc.link.Name, Drops: byReason})
		if !slices.ContainsFunc(ifc.vhosts, func(v *vhost) bool { return v.vm != nil }) {
			continue
		}
		st.VRRP.ReceivedInet += ic.vrrpReceived[carp.IPv4].Load()
		st.VRRP.ReceivedInet6 += ic.vrrpReceived[carp.IPv6].Load()
		byReason = map[string]uint64{}
		for r := range vrrpDrop(numVRRPDrops) {
			byReason[r.String()] = ic.vrrpDrops[r].Load()
		}
		st.DropsByInterface = append(st.DropsByInterface, api.InterfaceDrops{Interface: ifc.link.Name, Proto: "vrrp", Drops: byReason})
	}
	st.VRRP.Drops = map[string]uint64{}
	for r := range vrrpDrop(numVRRPDrops) {
		st.VRRP.Drops[r.String()] = c.vrrpDrops[r].Load()
	}
	st.DroppedWrongTTL = drops[carp.DropTTL]
	st.DroppedShortHeader = drops[carp.DropHeader]
	st.DroppedBadChecksum = drops[carp.DropChecksum]
	st.DroppedBadVersion = drops[carp.DropVersion]
	st.DroppedShortPacket = drops[carp.DropShort]
	st.DroppedBadAuth = drops[carp.DropAuth]
	st.DroppedBadVHID = drops[carp.DropVHID]
	st.DroppedLoop = drops[carp.DropLoop]
	st.DroppedReplay = drops[carp.DropReplay]
	st.DroppedBadPeer = drops[carp.DropPeer]
	for _, v := range d.vhosts {
		if v.vm != nil {
			st.VRRP.SentInet += v.stats.sent[carp.IPv4]
			st.VRRP.SentInet6 += v.stats.sent[carp.IPv6]
			st.VRRP.SendFailed += v.stats.sendFailed
		} else {
			st.SentInet += v.stats.sent[carp.IPv4]
			st.SentInet6 += v.stats.sent[carp.IPv6]
			st.SendFailed += v.stats.sendFailed
		}
		st.Transitions += v.stats.transitionsTotal
		st.Announcements += v.stats.announcements
		st.AddressRestores += v.stats.restores
	}
	st.DroppedQueueFull = c.queueFull.Load()
	st.MonitorResyncs = c.resyncs.Load()
	st.HookRuns = c.hookRuns.Load()
	st.HookFailures = c.hookFailures.Load()
	st.ConfigLastReloadSuccessful = !c.reloadFailed.Load()
	st.ConfigLastReloadSuccess = time.Unix(0, c.loaded.Load())
	return st
}

// Force forces a vhid's state (FreeBSD's `ifconfig ... state master`):
// not sticky, the protocol corrects it. iface may be "" when the vhid is
// on one interface only.
func (d *Daemon) Force(ctx context.Context, vhid int, iface, state string) (api.Status, error) {
	var st api.Status
	var ferr error
	var s carp.State
	switch state {
	case "master":
		s = carp.Master
	case "backup":
		s = carp.Backup
	default:
		return st, fmt.Errorf("%w: state must be master or backup, not %q", ErrBadRequest, state)
	}
	err := d.do(ctx, func(now time.Time) {
		vs, err := d.find(vhid, iface)
		if err != nil {
			ferr = err
			return
		}
		for _, v := range vs {
			v.log.Info("carp: forced state requested", "state", state)
			d.step(now, v, carp.Force{State: s})
		}
		st = d.status(now)
	})
	return st, errors.Join(err, ferr)
}

// find returns the vhid on iface, or the only one with that number: one
// vhost, or a VRRP vhid's instances (one per family).
func (d *Daemon) find(vhid int, iface string) ([]*vhost, error) {
	var found []*vhost
	for _, v := range d.vhosts {
		if int(v.cfg.VHID) == vhid && (iface == "" || v.cfg.Interface == iface) {
			found = append(found, v)
		}
	}
	oneIface := len(found) > 0
	for _, v := range found {
		oneIface = oneIface && v.cfg.Interface == found[0].cfg.Interface
	}
	switch {
	case oneIface:
		return found, nil
	case len(found) == 0 && iface != "":
		return nil, fmt.Errorf("%w %d on %s", ErrUnknownVHID, vhid, iface)
	case len(found) == 0:
		return nil, fmt.Errorf("%w %d", ErrUnknownVHID, vhid)
	}
	var names []string
	for _, v := range found {
		names = append(names, fmt.Sprintf("%d@%s", vhid, v.cfg.Interface))
	}
	return nil, fmt.Errorf("%w: vhid %d is on several interfaces: say which (%s)", ErrBadRequest, vhid, strings.Join(names, ", "))
}

// DemoteOperator changes the operator's demotion: adds req.Delta (to the
// persistent maintenance demotion with req.Persist, which the state file
// keeps across restarts), or clears both with req.Clear.
func (d *Daemon) DemoteOperator(ctx context.Context, req api.DemoteRequest) (api.Status, error) {
	var st api.Status
	var derr error
	if req.Clear && req.Delta != 0 {
		return st, fmt.Errorf("%w: give a demotion or clear, not both", ErrBadRequest)
	}
	if !req.Clear && req.Delta == 0 {
		return st, fmt.Errorf("%w: a demotion of 0 changes nothing", ErrBadRequest)
	}
	if req.Delta > 1000 || req.Delta < -1000 {
		return st, fmt.Errorf("%w: demotion %+d out of range -1000..1000", ErrBadRequest, req.Delta)
	}
	err := d.do(ctx, func(now time.Time) {
		if req.Clear {
			for _, src := range []string{sourceOperator, sourcePersistent} {
				if e := d.demotions[demotionKey{source: src}]; e != nil {
					d.adjustDemotion(now, -e.delta, "cleared by the operator", src, nil)
				}
			}
			derr = d.savePersistent()
			st = d.status(now)
			return
		}
		src := sourceOperator
		if req.Persist {
			src = sourcePersistent
		}
		reason := req.Reason
		if reason == "" {
			reason = "operator"
		}
		d.adjustDemotion(now, req.Delta, reason, src, nil)
		if req.Persist {
			derr = d.savePersistent()
		}
		st = d.status(now)
	})
	return st, errors.Join(err, derr)
}

// SetLogLevel sets the log level ("debug", "info", "warn", "error").
func (d *Daemon) SetLogLevel(ctx context.Context, level string) error {
	if d.level == nil {
		return errors.New("the log level cannot be changed")
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("%w: log level %q: want debug, info, warn or error", ErrBadRequest, level)
	}
	return d.do(ctx, func(time.Time) {
		d.level.Set(l)
		d.log.Warn("carpd: log level set", "level", strings.ToLower(l.String()))
	})
}

// persistentState is the state file's document.
type persistentState struct {
	Version  int       `json:"version"`
	Demotion int       `json:"demotion"`
	Reason   string    `json:"reason,omitempty"`
	Since    time.Time `json:"since"`
}

// loadPersistent applies the persistent demotion of the state file, if
// there is one. A state file that cannot be read is an error: a host in
// maintenance must not come up undemoted.
func (d *Daemon) loadPersistent(now time.Time) error {
	if d.stateFile == "" {
		return nil
	}
	data, err := os.ReadFile(d.stateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	var ps persistentState
	if err := json.Unmarshal(data, &ps); err != nil {
		return fmt.Errorf("state file %s: %w (fix it or remove it to clear the maintenance demotion)", d.stateFile, err)
	}
	if ps.Demotion != 0 {
		d.adjustDemotion(now, ps.Demotion, ps.Reason, sourcePersistent, nil)
		d.demotions[demotionKey{source: sourcePersistent}].since = ps.Since
	}
	return nil
}

// savePersistent writes the persistent demotion to the state file
// (atomically: a new file renamed over the old), or removes the file when
// there is none.
func (d *Daemon) savePersistent() error {
	if d.stateFile == "" {
		return errors.New("no state file configured: the demotion lasts until carpd stops")
	}
	e := d.demotions[demotionKey{source: sourcePersistent}]
	if e == nil {
		if err := os.Remove(d.stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("state file: %w", err)
		}
		return nil
	}
	data, err := json.Marshal(persistentState{Version: 1, Demotion: e.delta, Reason: e.reason, Since: e.since})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(d.stateFile), 0o755); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp := d.stateFile + ".new"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp, d.stateFile); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

// Sub is one reader of the event stream.
type Sub struct {
	// C delivers the events; it is closed when the reader fell behind
	// (Lagged) or carpd stopped.
	C      <-chan api.Event
	c      chan api.Event
	lagged atomic.Bool
}

// Lagged reports, once C is closed, whether the reader was dropped for
// falling behind.
func (s *Sub) Lagged() bool { return s.lagged.Load() }

// subBuffer is how many events wait for a slow reader before it is
// dropped.
const subBuffer = 1024

// Subscribe starts a reader of the event stream: first one snapshot event
// per vhid (with the sequence number of the last event so far), then every
// event as it happens. A reader that falls behind by subBuffer events is
// dropped: C closes and Lagged is true. The daemon never waits for a
// reader.
func (d *Daemon) Subscribe(ctx context.Context) (*Sub, error) {
	s := &Sub{}
	err := d.do(ctx, func(now time.Time) {
		s.c = make(chan api.Event, subBuffer+len(d.vhosts))
		s.C = s.c
		for _, v := range d.vhosts {
			dem := d.demotionOf(v) // the vhid's: the host's and its checks'
			e := v.event("snapshot")
			e.Version, e.Seq, e.Time = api.Version, d.seq, now
			e.State, e.Demotion, e.Addresses = v.state().String(), &dem, v.addrStrings()
			s.c <- e
		}
		d.subs[s] = struct{}{}
	})
	return s, err
}

// Unsubscribe ends a reader's stream.
func (d *Daemon) Unsubscribe(s *Sub) {
	_ = d.do(context.Background(), func(time.Time) {
		if _, ok := d.subs[s]; ok {
			delete(d.subs, s)
			close(s.c)
		}
	})
}

// emit numbers an event and hands it to every reader, dropping the ones
// that fell behind.
func (d *Daemon) emit(now time.Time, e api.Event) {
	d.seq++
	e.Version, e.Seq, e.Time = api.Version, d.seq, now
	for s := range d.subs {
		select {
		case s.c <- e:
		default:
			s.lagged.Store(true)
			delete(d.subs, s)
			close(s.c)
		}
	}
}

// closeSubs ends every stream, when Run returns.
func (d *Daemon) closeSubs() {
	for s := range d.subs {
		delete(d.subs, s)
		close(s.c)
	}
}

func (v *vhost) addrStrings() []string {
	out := make([]string, len(v.prefixes))
	for i, p := range v.prefixes {
		out[i] = p.String()
	}
	return out
}

// heardFrom records a valid advert from another host.
func (v *vhost) heardFrom(now time.Time, r carp.Received) {
	v.stats.received[r.Family]++
	v.stats.setHeard(r.Src, api.Heard{Time: now, AdvBase: int(r.Advert.AdvBase), AdvSkew: int(r.Advert.AdvSkew)})
}

// transitioned records a transition: counters, history, event, hooks.
func (d *Daemon) transitioned(now time.Time, v *vhost, t carp.Transition) {
	st := &v.stats
	if st.transitions == nil {
		st.transitions = map[transitionKey]uint64{}
	}
	st.transitions[transitionKey{t.To.String(), t.Reason}]++
	st.transitionsTotal++
	st.lastChange = &api.Transition{Time: now, From: t.From.String(), To: t.To.String(), Reason: t.Reason}
	if t.To == carp.Master {
		st.masterSince = now
	}
	e := v.event("transition")
	e.From, e.To, e.Reason = t.From.String(), t.To.String(), t.Reason
	d.emit(now, e)
	if !d.leaving {
		d.tell("STATUS=" + d.statusLine())
	}
	if d.host.Hooks != nil {
		var advSkew, prio int
		if v.vm != nil {
			prio = int(v.vm.Priority())
		} else {
			advSkew = int(v.m.AdvSkew())
			prio = 255 - advSkew
		}
		d.host.Hooks.Transition(HookEvent{
			VHID: v.cfg.VHID, Interface: v.cfg.Interface,
			From: t.From.String(), To: t.To.String(), Reason: t.Reason,
			Addresses: slices.Clone(v.prefixes), AdvSkew: advSkew, Proto: v.proto(), Priority: prio,
		})
	}
}

// tell sends a notification to the service manager, if any.
func (d *Daemon) tell(state string) {
	if d.notify != nil {
		d.notify(state)
	}
}

// statusLine sums the vhids up for systemd's STATUS=: "2 vhids: 1 MASTER,
// 1 BACKUP".
func (d *Daemon) statusLine() string {
	var n [3]int
	for _, v := range d.vhosts {
		n[v.state()]++
	}
	parts := []string{}
	for _, s := range []carp.State{carp.Master, carp.Backup, carp.Init} {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %v", n[s], s))
		}
	}
	word := "vhids"
	if len(d.vhosts) == 1 {
		word = "vhid"
	}
	return fmt.Sprintf("%d %s: %s", len(d.vhosts), word, strings.Join(parts, ", "))
}

// HookEvent is a state change as the hooks see it.
type HookEvent struct {
	VHID      uint8
	Interface string
	From, To  string // INIT, BACKUP, MASTER
	Reason    string
	Addresses []netip.Prefix
	// AdvSkew is the advertised skew of a CARP vhid.
	AdvSkew int
	// Proto is "carp" or "vrrp".
	Proto string
	// Priority is what keepalived's notify gets as the priority: a VRRP
	// instance's priority in force, 255 - advskew for a CARP vhid.
	Priority int
}

// Hooks runs the operator's scripts on state changes.
type Hooks interface {
	// Transition queues the hooks of a state change. It never blocks: the
	// hooks run on their own, strictly in order for each vhid.
	Transition(HookEvent)
}

// hookIn is the result of a hook, reported back for the events and the
// counters.
type hookIn struct{ e api.Event }

func (hookIn) isInput() {}

// HookDone reports the result of a hook run (Type "hook"): it is counted
// and goes into the event stream. It never blocks; results that find the
// queue full are counted only.
func (d *Daemon) HookDone(e api.Event) {
	d.stats.hookRuns.Add(1)
	if e.Result != "ok" {
		d.stats.hookFailures.Add(1)
	}
	select {
	case d.hookResults <- hookIn{e}:
	default:
	}
}
